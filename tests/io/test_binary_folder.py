"""Binary folders: bytes on disk, metadata round trips, dtype casts, moves, overwrite and corruption."""

import json
import shutil

import numpy as np
import pytest

from sicore.io import BinaryFolderRecording, CorruptFolderError, load_extractor, save_recording
from sicore.numpy_objects import NumpyRecording

from io_helpers import assert_same_recording

JOB = dict(chunk_size=700, progress_bar=False)


def test_bytes_on_disk_are_the_traces(tmp_path, rich_recording, rich_traces):
    saved = save_recording(rich_recording, folder=tmp_path / "rec", **JOB)
    for i, traces in enumerate(rich_traces):
        raw = np.fromfile(tmp_path / "rec" / f"traces_cached_seg{i}.raw", dtype="<i2").reshape(-1, 6)
        np.testing.assert_array_equal(raw, traces)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "rec" / "times_cached_seg1.raw"), rich_recording.get_times(1))
    assert isinstance(saved, BinaryFolderRecording)


def test_metadata_probe_and_times_survive(tmp_path, rich_recording, rich_traces):
    saved = save_recording(rich_recording, folder=tmp_path / "rec", **JOB)
    assert_same_recording(saved, rich_recording, rich_traces)
    assert not saved.has_time_vector(0) and saved.get_start_time(0) == 1.5
    assert_same_recording(load_extractor(tmp_path / "rec"), rich_recording, rich_traces)


def test_si_shaped_json(tmp_path, rich_recording):
    save_recording(rich_recording, folder=tmp_path / "rec", **JOB)
    binary = json.loads((tmp_path / "rec" / "binary.json").read_text())
    assert binary["class"] == "spikeinterface.core.binaryrecordingextractor.BinaryRecordingExtractor"
    assert binary["relative_paths"] is True
    assert set(binary["kwargs"]) == {"file_paths", "sampling_frequency", "t_starts", "num_channels", "dtype",
                                     "channel_ids", "time_axis", "file_offset", "gain_to_uV", "offset_to_uV",
                                     "is_filtered", "file_timestamps_paths"}
    assert binary["kwargs"]["file_paths"] == ["traces_cached_seg0.raw", "traces_cached_seg1.raw"]
    assert binary["kwargs"]["file_timestamps_paths"] == ["times_cached_seg0.raw", "times_cached_seg1.raw"]
    si_folder = json.loads((tmp_path / "rec" / "si_folder.json").read_text())
    assert si_folder["class"] == "spikeinterface.core.binaryfolder.BinaryFolderRecording"
    assert si_folder["kwargs"] == {"folder_path": "."}
    assert not (tmp_path / "rec" / "provenance.json").exists()  # an in-memory source has no provenance


def test_provenance_relative_and_moved_folder_loads(tmp_path, rich_recording, rich_traces):
    first = save_recording(rich_recording, folder=tmp_path / "a" / "rec", **JOB)
    second = save_recording(first.frame_slice(100, 900), folder=tmp_path / "a" / "sliced", **JOB)
    provenance = json.loads((tmp_path / "a" / "sliced" / "provenance.json").read_text())
    assert provenance["relative_paths"] is True
    assert provenance["kwargs"]["parent_recording"]["kwargs"]["folder_path"] == "../rec"
    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = load_extractor(tmp_path / "b" / "sliced")
    np.testing.assert_array_equal(moved.get_traces(segment_index=0), rich_traces[0][100:900])
    from_provenance = load_extractor(tmp_path / "b" / "sliced" / "provenance.json")
    np.testing.assert_array_equal(from_provenance.get_traces(segment_index=0), rich_traces[0][100:900])
    assert second.get_num_samples(0) == 800


def test_parallel_save_is_identical(tmp_path, rich_recording, rich_traces):
    saved = save_recording(rich_recording, folder=tmp_path / "rec", n_jobs=2, chunk_size=333, progress_bar=False)
    assert_same_recording(saved, rich_recording, rich_traces)


@pytest.mark.parametrize("dtype", ["int16", "uint8", "int32"])
def test_float_to_int_rounds_half_even_and_clips(tmp_path, dtype):
    values = np.array([[-40000.6, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4999, 70000.2, 3e9]], dtype="float64")
    traces = np.repeat(values, 10, axis=0)
    rec = NumpyRecording([traces], sampling_frequency=1000.0)
    saved = save_recording(rec, folder=tmp_path / "rec", dtype=dtype, **JOB)
    info = np.iinfo(dtype)
    expected = np.clip(np.rint(traces), info.min, info.max).astype(dtype)
    np.testing.assert_array_equal(saved.get_traces(), expected)
    assert saved.get_dtype() == np.dtype(dtype)


def test_nan_cannot_be_saved_as_int(tmp_path):
    traces = np.zeros((20, 2), dtype="float32")
    traces[3, 1] = np.nan
    rec = NumpyRecording([traces], sampling_frequency=1000.0)
    with pytest.raises(ValueError, match="NaN"):
        save_recording(rec, folder=tmp_path / "rec", dtype="int16", **JOB)
    assert not (tmp_path / "rec").exists()
    assert list(tmp_path.iterdir()) == []  # the temporary sibling is cleaned up too


def test_existing_folder_needs_overwrite(tmp_path, rich_recording, rich_traces):
    save_recording(rich_recording, folder=tmp_path / "rec", **JOB)
    with pytest.raises(FileExistsError, match="rec"):
        save_recording(rich_recording, folder=tmp_path / "rec", **JOB)
    other = NumpyRecording([np.ones((50, 3), dtype="int16")], sampling_frequency=1000.0)
    replaced = save_recording(other, folder=tmp_path / "rec", overwrite=True, **JOB)
    assert replaced.get_num_channels() == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_overwrite_own_source(tmp_path, rich_recording, rich_traces):
    saved = save_recording(rich_recording, folder=tmp_path / "rec", **JOB)
    again = save_recording(saved, folder=tmp_path / "rec", overwrite=True, **JOB)
    assert_same_recording(again, rich_recording, rich_traces)


# --------------------------------------------------------------- corruption
@pytest.fixture
def saved_folder(tmp_path, rich_recording):
    save_recording(rich_recording, folder=tmp_path / "rec", **JOB)
    return tmp_path / "rec"


def test_truncated_raw_file_is_detected(saved_folder):
    raw = saved_folder / "traces_cached_seg0.raw"
    data = raw.read_bytes()
    raw.write_bytes(data[: len(data) - 6 * 2 * 10])  # ten whole frames short: only sicore_info.json can tell
    with pytest.raises(CorruptFolderError, match="traces_cached_seg0.raw.*truncated"):
        load_extractor(saved_folder)


def test_padded_raw_file_is_detected(saved_folder):
    with open(saved_folder / "traces_cached_seg1.raw", "ab") as f:
        f.write(b"\0" * 12)
    with pytest.raises(CorruptFolderError, match="traces_cached_seg1.raw.*padded"):
        load_extractor(saved_folder)


def test_partial_frame_is_detected_without_sicore_info(saved_folder):
    (saved_folder / "sicore_info.json").unlink()
    with open(saved_folder / "traces_cached_seg0.raw", "ab") as f:
        f.write(b"\0" * 3)
    with pytest.raises(ValueError, match="traces_cached_seg0.raw"):
        load_extractor(saved_folder)


def test_missing_raw_file_is_named(saved_folder):
    (saved_folder / "traces_cached_seg1.raw").unlink()
    with pytest.raises(FileNotFoundError, match="traces_cached_seg1.raw"):
        load_extractor(saved_folder)


def test_truncated_times_file_is_named(saved_folder):
    times = saved_folder / "times_cached_seg1.raw"
    times.write_bytes(times.read_bytes()[:-8])
    with pytest.raises(CorruptFolderError, match="times_cached_seg1.raw"):
        load_extractor(saved_folder)


@pytest.mark.parametrize("name", ["binary.json", "si_folder.json", "annotations.json", "probegroup.json",
                                  "sicore_info.json"])
def test_broken_json_is_named(saved_folder, name):
    (saved_folder / name).write_text('{"class": "BinaryFolderRecording", ')
    with pytest.raises(CorruptFolderError, match=name):
        load_extractor(saved_folder)


def test_path_escaping_the_folder_is_refused(saved_folder, tmp_path):
    outside = tmp_path / "outside.raw"
    shutil.copy(saved_folder / "traces_cached_seg0.raw", outside)
    binary = json.loads((saved_folder / "binary.json").read_text())
    binary["kwargs"]["file_paths"][0] = "../outside.raw"
    (saved_folder / "binary.json").write_text(json.dumps(binary))
    with pytest.raises(CorruptFolderError, match="binary.json.*outside"):
        BinaryFolderRecording(saved_folder)
    binary["kwargs"]["file_paths"][0] = str(outside)
    (saved_folder / "binary.json").write_text(json.dumps(binary))
    with pytest.raises(CorruptFolderError, match="binary.json.*absolute"):
        BinaryFolderRecording(saved_folder)


def test_pickled_property_is_never_loaded(saved_folder):
    np.save(saved_folder / "properties" / "evil.npy", np.array([object()] * 6, dtype=object), allow_pickle=True)
    with pytest.warns(UserWarning, match="evil.npy.*never unpickles"):
        rec = load_extractor(saved_folder)
    assert "evil" not in rec.get_property_keys()


def test_property_of_wrong_length_is_named(saved_folder):
    np.save(saved_folder / "properties" / "short.npy", np.arange(3))
    with pytest.raises(CorruptFolderError, match="short.npy"):
        load_extractor(saved_folder)


def test_legacy_npy_times_and_unknown_kwargs(saved_folder, rich_recording):
    binary = json.loads((saved_folder / "binary.json").read_text())
    binary["kwargs"]["file_timestamps_paths"] = None  # SpikeInterface < 0.105 kept times in .npy files
    binary["kwargs"]["future_option"] = 1
    (saved_folder / "binary.json").write_text(json.dumps(binary))
    np.save(saved_folder / "times_cached_seg1.npy", rich_recording.get_times(1))
    with pytest.warns(UserWarning, match="future_option"):
        rec = BinaryFolderRecording(saved_folder)
    np.testing.assert_array_equal(rec.get_times(1), rich_recording.get_times(1))
    assert not rec.has_time_vector(0)
