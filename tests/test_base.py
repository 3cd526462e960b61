import json

import numpy as np
import pytest

from sicore.base import BaseExtractor, get_registered_class
from sicore.io.binary import BinaryRecordingExtractor
from sicore.numpy_objects import NumpyRecording


def test_properties_set_get_partial_and_missing_values(recording):
    recording.set_property("quality", ["good"] * 8)
    assert recording.get_property("quality").tolist() == ["good"] * 8
    assert "quality" in recording.get_property_keys()
    recording.set_property("depth", [1.5, 2.5], ids=["ch1", "ch3"])
    depth = recording.get_property("depth")
    assert depth[1] == 1.5 and depth[3] == 2.5 and np.isnan(depth[0])
    assert recording.get_property("depth", ids=["ch3", "ch1"]).tolist() == [2.5, 1.5]
    with pytest.raises(ValueError, match="missing_value"):
        recording.set_property("count", [1], ids=["ch0"])
    recording.set_property("count", [1], ids=["ch0"], missing_value=0)
    assert recording.get_property("count").tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="one per id"):
        recording.set_property("bad", [1, 2, 3])
    with pytest.raises(KeyError, match="nope"):
        recording.get_property("quality", ids=["nope"])
    assert recording.get_property("not_set") is None


def test_annotations(recording):
    recording.annotate(date="today", nested={"a": [1, 2]})
    assert recording.get_annotation("date") == "today"
    copy = recording.get_annotation("nested")
    copy["a"].append(3)
    assert recording.get_annotation("nested") == {"a": [1, 2]}
    with pytest.raises(KeyError, match="missing"):
        recording.get_annotation("missing")
    with pytest.raises(ValueError, match="overwrite"):
        recording.set_annotation("date", "tomorrow", overwrite=False)


def test_ids_must_be_unique():
    with pytest.raises(ValueError, match="unique"):
        NumpyRecording([np.zeros((10, 2))], sampling_frequency=1000.0, channel_ids=["a", "a"])


def test_registry_never_imports_named_modules():
    with pytest.raises(ValueError, match="not a registered sicore class"):
        get_registered_class("os.system")
    with pytest.raises(ValueError, match="not a registered sicore class"):
        BaseExtractor.from_dict({"class": "subprocess.Popen", "module": "subprocess", "kwargs": {"args": "ls"}})
    # SpikeInterface spellings of known classes resolve to sicore classes
    cls = get_registered_class("spikeinterface.core.binaryrecordingextractor.BinaryRecordingExtractor")
    assert cls is BinaryRecordingExtractor


def test_to_dict_relative_paths_and_move(tmp_path, rng):
    data = rng.integers(-100, 100, size=(500, 3)).astype("int16")
    folder = tmp_path / "a"
    folder.mkdir()
    data.tofile(folder / "x.raw")
    rec = BinaryRecordingExtractor(folder / "x.raw", 1000.0, "int16", 3)
    rec.annotate(subject="m1")
    d = rec.to_dict(include_annotations=True, include_properties=True, relative_to=folder)
    text = json.dumps(d)
    assert d["relative_paths"] is True and d["kwargs"]["file_paths"] == ["x.raw"]
    moved = tmp_path / "b"
    folder.rename(moved)
    rebuilt = BaseExtractor.from_dict(json.loads(text), base_folder=moved)
    np.testing.assert_array_equal(rebuilt.get_traces(), data)
    assert rebuilt.get_annotation("subject") == "m1"
    with pytest.raises(ValueError, match="base_folder"):
        BaseExtractor.from_dict(json.loads(text))


def test_in_memory_objects_are_not_json_serializable(recording):
    assert not recording.is_json_serializable()
    assert not recording.channel_slice(["ch0"]).is_json_serializable()
