"""Zarr saves encode chunk files themselves: the files must be the ones zarr writes, for every layout."""

import numpy as np
import pytest
import zarr
from numcodecs import LZMA, Blosc, Delta

import sicore.io.zarr_recording as zarr_recording
from sicore.io import save_recording

JOB = dict(chunk_size=700, progress_bar=False)


def _chunk_files(array_folder):
    return {p.name: p.read_bytes() for p in sorted(array_folder.iterdir()) if not p.name.startswith(".")}


def _reference_store(folder, recording, compressor, filters, channel_chunk):
    """The same arrays written by zarr itself (chunk by chunk, like the executor)."""
    root = zarr.open_group(str(folder), mode="w", zarr_format=2)
    for i in range(recording.get_num_segments()):
        n = recording.get_num_samples(i)
        array = root.create_array(f"traces_seg{i}", shape=(n, recording.get_num_channels()), dtype="<i2",
                                  chunks=(700, channel_chunk), compressors=compressor, filters=filters,
                                  fill_value=0, config={"write_empty_chunks": True})
        for start in range(0, n, 700):
            end = min(start + 700, n)
            array[start:end] = recording.get_traces(segment_index=i, start_frame=start, end_frame=end)
        if recording.has_time_vector(i):
            times = root.create_array(f"times_seg{i}", shape=(n,), dtype="<f8", chunks=(700,),
                                      compressors=compressor, fill_value=0, config={"write_empty_chunks": True})
            times[:] = recording.get_times(i)
    return folder


@pytest.mark.parametrize(("codecs", "channel_chunk", "n_jobs"), [
    ("default", None, 1), ("default", None, 2), ("lzma_delta", 4, 1), ("none", 4, 2)])
def test_chunk_files_equal_zarr_own(tmp_path, rich_recording, codecs, channel_chunk, n_jobs):
    compressor, filters = {
        "default": (Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE), None),
        "lzma_delta": (LZMA(), [Delta(dtype="int16")]),
        "none": (None, None),
    }[codecs]
    save_recording(rich_recording, folder=tmp_path / "sicore", format="zarr", compressor=compressor,
                   filters=filters, channel_chunk_size=channel_chunk, n_jobs=n_jobs, **JOB)
    reference = _reference_store(tmp_path / "zarr.zarr", rich_recording, compressor, filters, channel_chunk or 6)
    for name in ("traces_seg0", "traces_seg1", "times_seg1"):
        ours, theirs = _chunk_files(tmp_path / "sicore.zarr" / name), _chunk_files(reference / name)
        assert ours.keys() == theirs.keys(), name
        for key in ours:  # edge chunks included: padded to the full chunk shape like zarr does
            assert ours[key] == theirs[key], f"{name}/{key}"
    # zarr itself decodes the files to the traces
    root = zarr.open_group(str(tmp_path / "sicore.zarr"), mode="r")
    for i in range(2):
        np.testing.assert_array_equal(root[f"traces_seg{i}"][:], rich_recording.get_traces(segment_index=i))


def test_large_in_process_save_pipelines_and_matches(tmp_path):
    """Many chunks through the in-process encoding threads arrive complete and in place."""
    from sicore.numpy_objects import NumpyRecording

    traces = np.random.default_rng(5).normal(0, 30, size=(70_123, 8)).astype("int16")
    rec = NumpyRecording([traces], sampling_frequency=30000.0)
    saved = save_recording(rec, folder=tmp_path / "big", format="zarr", chunk_size=1000, progress_bar=False)
    np.testing.assert_array_equal(saved.get_traces(), traces)
    assert len(_chunk_files(tmp_path / "big.zarr" / "traces_seg0")) == 71


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_encoding_error_fails_the_save(tmp_path, rich_recording, monkeypatch, n_jobs):
    original = zarr_recording._ChunkFileWriter.write_rows

    def failing(self, start_frame, data):
        if start_frame == 1400:
            raise OSError("disk full")
        return original(self, start_frame, data)

    monkeypatch.setattr(zarr_recording._ChunkFileWriter, "write_rows", failing)
    with pytest.raises(OSError, match="disk full"):
        save_recording(rich_recording, folder=tmp_path / "rec", format="zarr", n_jobs=n_jobs,
                       mp_context="fork", **JOB)
    assert not (tmp_path / "rec.zarr").exists() and not list(tmp_path.glob(".rec*"))


def test_unaligned_rows_are_refused(tmp_path, rich_recording):
    save_recording(rich_recording, folder=tmp_path / "rec", format="zarr", **JOB)
    root = zarr.open_group(str(tmp_path / "rec.zarr"), mode="r")
    writer = zarr_recording._ChunkFileWriter(root["traces_seg0"], tmp_path / "rec.zarr")
    with pytest.raises(RuntimeError, match="not whole chunks"):
        writer.write_rows(350, np.zeros((700, 6), dtype="int16"))
