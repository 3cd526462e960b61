"""Zarr stores: format-2 layout, compression options, chunking, metadata round trips and corruption."""

import json
import shutil

import numpy as np
import pytest
from numcodecs import LZMA, Blosc, Delta

from sicore.io import CorruptFolderError, ZarrRecordingExtractor, load_extractor, read_zarr, save_recording

from io_helpers import assert_same_recording

JOB = dict(chunk_size=700, progress_bar=False)


def _zarray(folder, name):
    return json.loads((folder / name / ".zarray").read_text())


def test_round_trip_and_suffix(tmp_path, rich_recording, rich_traces):
    saved = save_recording(rich_recording, folder=tmp_path / "rec", format="zarr", **JOB)
    assert isinstance(saved, ZarrRecordingExtractor)
    assert (tmp_path / "rec.zarr").is_dir() and not (tmp_path / "rec").exists()
    assert_same_recording(saved, rich_recording, rich_traces)
    assert_same_recording(load_extractor(tmp_path / "rec.zarr"), rich_recording, rich_traces)
    assert_same_recording(read_zarr(tmp_path / "rec.zarr"), rich_recording, rich_traces)
    # ".zarr" is appended, never substituted for another suffix
    save_recording(rich_recording, folder=tmp_path / "rec.v2", format="zarr", **JOB)
    assert (tmp_path / "rec.v2.zarr").is_dir()


def test_default_layout_matches_spikeinterface(tmp_path, rich_recording):
    save_recording(rich_recording, folder=tmp_path / "rec.zarr", format="zarr", **JOB)
    store = tmp_path / "rec.zarr"
    traces = _zarray(store, "traces_seg0")
    assert traces["zarr_format"] == 2 and traces["dtype"] == "<i2"
    assert traces["chunks"] == [700, 6] and traces["shape"] == [2500, 6]
    assert traces["compressor"]["id"] == "blosc" and traces["compressor"]["cname"] == "zstd"
    assert traces["compressor"]["clevel"] == 5 and traces["compressor"]["shuffle"] == Blosc.BITSHUFFLE
    assert traces["filters"] is None
    assert _zarray(store, "channel_ids")["compressor"] is None
    attrs = json.loads((store / ".zattrs").read_text())
    assert {"annotations", "num_segments", "probegroup", "provenance", "sampling_frequency",
            "zarr_class_info"} <= set(attrs)
    assert attrs["zarr_class_info"]["class"] == "spikeinterface.core.zarrextractors.ZarrRecordingExtractor"
    assert (store / "times_seg1").is_dir() and not (store / "times_seg0").exists()
    assert sorted(p.name for p in (store / "traces_seg0").iterdir() if not p.name.startswith(".")) == [
        f"{i}.0" for i in range(4)]


def test_lzma_delta_and_channel_chunks(tmp_path, rich_recording, rich_traces):
    saved = save_recording(rich_recording, folder=tmp_path / "rec", format="zarr", compressor=LZMA(),
                           filters=[Delta(dtype="int16")], channel_chunk_size=4, n_jobs=2, **JOB)
    assert_same_recording(saved, rich_recording, rich_traces)
    traces = _zarray(tmp_path / "rec.zarr", "traces_seg1")
    assert traces["compressor"]["id"] == "lzma"
    assert traces["filters"] == [{"id": "delta", "dtype": "<i2", "astype": "<i2"}]
    assert traces["chunks"] == [700, 4]
    assert _zarray(tmp_path / "rec.zarr", "times_seg1")["filters"] is None  # Delta(int16) would corrupt times


def test_uncompressed_and_compression_ratio(tmp_path, rich_recording, rich_traces):
    save_recording(rich_recording, folder=tmp_path / "rec", format="zarr", compressor=None, **JOB)
    assert _zarray(tmp_path / "rec.zarr", "traces_seg0")["compressor"] is None
    rec = ZarrRecordingExtractor(tmp_path / "rec.zarr", load_compression_ratio=True)
    # uncompressed: stored bytes are the full (padded) chunks plus metadata
    assert 0.85 < rec.get_annotation("compression_ratio") <= 1.0


def test_float_to_int_cast(tmp_path):
    from sicore.numpy_objects import NumpyRecording

    traces = np.array([[0.5, 1.5], [-2.5, 40000.0], [2.6, -1e6]] * 5, dtype="float32")
    saved = save_recording(NumpyRecording([traces], sampling_frequency=100.0), folder=tmp_path / "r",
                           format="zarr", dtype="int16", **JOB)
    np.testing.assert_array_equal(saved.get_traces(), np.clip(np.rint(traces), -32768, 32767).astype("int16"))


def test_moved_store_loads(tmp_path, rich_recording, rich_traces):
    save_recording(rich_recording, folder=tmp_path / "a" / "rec", format="zarr", **JOB)
    shutil.move(tmp_path / "a", tmp_path / "b")
    assert_same_recording(load_extractor(tmp_path / "b" / "rec.zarr"), rich_recording, rich_traces)


def test_invalid_options(tmp_path, rich_recording):
    with pytest.raises(ValueError, match="compressor"):
        save_recording(rich_recording, folder=tmp_path / "r", format="zarr", compressor="lzma", **JOB)
    with pytest.raises(ValueError, match="filters_by_dataset"):
        save_recording(rich_recording, folder=tmp_path / "r", format="zarr", filters_by_dataset={"x": []}, **JOB)
    with pytest.raises(TypeError, match="bogus"):
        save_recording(rich_recording, folder=tmp_path / "r", format="zarr", bogus=1, **JOB)
    assert not list(tmp_path.iterdir())


def test_missing_chunk_is_detected(tmp_path, rich_recording):
    save_recording(rich_recording, folder=tmp_path / "rec", format="zarr", **JOB)
    (tmp_path / "rec.zarr" / "traces_seg0" / "2.0").unlink()
    with pytest.raises(CorruptFolderError, match="traces_seg0.*3 of 4 chunks"):
        load_extractor(tmp_path / "rec.zarr")


def test_broken_metadata_is_named(tmp_path, rich_recording):
    save_recording(rich_recording, folder=tmp_path / "rec", format="zarr", **JOB)
    (tmp_path / "rec.zarr" / ".zattrs").write_text("{broken")
    with pytest.raises(CorruptFolderError, match="rec.zarr"):
        load_extractor(tmp_path / "rec.zarr")


def test_unregistered_zarr_class_is_refused(tmp_path, rich_recording):
    save_recording(rich_recording, folder=tmp_path / "rec", format="zarr", **JOB)
    attrs_file = tmp_path / "rec.zarr" / ".zattrs"
    attrs = json.loads(attrs_file.read_text())
    attrs["zarr_class_info"]["class"] = "os.system"
    attrs_file.write_text(json.dumps(attrs))
    with pytest.raises(CorruptFolderError, match="os.system"):
        load_extractor(tmp_path / "rec.zarr")
