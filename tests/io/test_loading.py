"""load_extractor: dicts, files and folders; registry-only classes; paths confined to the folder."""

import json
import os
import pickle

import numpy as np
import pytest

from sicore.io import CorruptFolderError, load, load_extractor, save_recording

JOB = dict(chunk_size=1000, progress_bar=False)


@pytest.fixture
def saved(tmp_path, rich_recording):
    return save_recording(rich_recording, folder=tmp_path / "rec", **JOB)


def test_alias():
    assert load is load_extractor


def test_from_dict_and_json_file(tmp_path, saved, rich_traces):
    rec = load_extractor(saved.to_dict())
    np.testing.assert_array_equal(rec.get_traces(segment_index=1), rich_traces[1])
    view = saved.channel_slice(["ch4", "ch1"])
    (tmp_path / "view.json").write_text(json.dumps(view.to_dict(relative_to=tmp_path)))
    loaded = load_extractor(tmp_path / "view.json")
    np.testing.assert_array_equal(loaded.get_traces(segment_index=0), rich_traces[0][:, [4, 1]])
    relative = view.to_dict(relative_to=tmp_path)
    with pytest.raises(ValueError, match="base_folder"):
        load_extractor(relative)
    np.testing.assert_array_equal(load_extractor(relative, base_folder=tmp_path).get_traces(segment_index=0),
                                  rich_traces[0][:, [4, 1]])


def test_folder_without_si_folder_json_dispatches_on_binary_json(saved, rich_traces):
    folder = saved._kwargs["folder_path"]
    os.remove(os.path.join(folder, "si_folder.json"))
    np.testing.assert_array_equal(load_extractor(folder).get_traces(segment_index=0), rich_traces[0])


def test_class_not_in_registry_is_refused(tmp_path, saved):
    si_folder = tmp_path / "rec" / "si_folder.json"
    d = json.loads(si_folder.read_text())
    d["class"] = "os.system"
    d["kwargs"] = {"command": "touch pwned"}
    si_folder.write_text(json.dumps(d))
    with pytest.raises(CorruptFolderError, match="si_folder.json.*os.system"):
        load_extractor(tmp_path / "rec")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "prov.json").write_text(json.dumps(d))
    with pytest.raises(CorruptFolderError, match="prov.json.*os.system"):
        load_extractor(tmp_path / "prov.json")


def test_nested_unregistered_class_is_refused(tmp_path, saved):
    si_folder = tmp_path / "rec" / "si_folder.json"
    nested = {"class": "spikeinterface.core.channelslice.ChannelSliceRecording", "module": "spikeinterface",
              "kwargs": {"parent_recording": {"class": "subprocess.Popen", "module": "subprocess",
                                              "kwargs": {"args": ["true"]}}}}
    si_folder.write_text(json.dumps(nested))
    with pytest.raises(CorruptFolderError, match="si_folder.json.*subprocess.Popen"):
        load_extractor(tmp_path / "rec")


@pytest.mark.parametrize("folder_path", ["..", "../other", "/etc"])
def test_folder_json_paths_stay_inside(tmp_path, saved, folder_path):
    (tmp_path / "other").mkdir()
    si_folder = tmp_path / "rec" / "si_folder.json"
    d = json.loads(si_folder.read_text())
    d["kwargs"]["folder_path"] = folder_path
    si_folder.write_text(json.dumps(d))
    with pytest.raises(CorruptFolderError, match="si_folder.json"):
        load_extractor(tmp_path / "rec")


def test_pickle_files_are_never_loaded(tmp_path):
    (tmp_path / "obj.pkl").write_bytes(pickle.dumps({"class": "x"}))
    with pytest.raises(ValueError, match="never unpickles"):
        load_extractor(tmp_path / "obj.pkl")


def test_missing_and_unknown_paths_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        load_extractor(tmp_path / "nothing_here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorruptFolderError, match="empty.*not a saved"):
        load_extractor(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="notes.txt"):
        load_extractor(tmp_path / "notes.txt")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(CorruptFolderError, match="broken.json.*broken JSON"):
        load_extractor(tmp_path / "broken.json")
    with pytest.raises(ValueError, match="file_or_folder_or_dict"):
        load_extractor(42)
