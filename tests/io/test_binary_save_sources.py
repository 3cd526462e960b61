"""Binary save of binary sources (plain files, views on them, probes): byte equality, and clear failures."""

import json
import os

import numpy as np
import pytest

import sicore.io.binary_folder as binary_folder
from sicore.io import BinaryFolderRecording, load_extractor, save_recording
from sicore.io.binary import read_binary

JOB = dict(chunk_size=700, progress_bar=False)
HEADER = 123  # bytes of a header before the samples (file_offset)


@pytest.fixture
def raw_source(tmp_path):
    """A 2-segment int16 raw source (5 channels) with a header, and its traces."""
    rng = np.random.default_rng(3)
    traces = [rng.integers(-2000, 2000, size=(n, 5)).astype("<i2") for n in (3001, 1200)]
    paths = []
    for i, t in enumerate(traces):
        path = tmp_path / f"src{i}.raw"
        path.write_bytes(bytes(range(HEADER)) + t.tobytes())
        paths.append(path)
    rec = read_binary(paths, sampling_frequency=10000.0, dtype="int16", num_channels=5, file_offset=HEADER,
                      channel_ids=["a", "b", "c", "d", "e"], gain_to_uV=0.5, offset_to_uV=1.0, t_starts=[2.0, 9.0])
    return rec, traces


def _raw(folder, i, num_channels):
    return np.fromfile(folder / f"traces_cached_seg{i}.raw", dtype="<i2").reshape(-1, num_channels)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_plain_binary_is_saved_byte_for_byte(tmp_path, raw_source, n_jobs):
    rec, traces = raw_source
    saved = save_recording(rec, folder=tmp_path / "out", n_jobs=n_jobs, **JOB)
    for i, t in enumerate(traces):
        assert (tmp_path / "out" / f"traces_cached_seg{i}.raw").read_bytes() == t.tobytes()
        np.testing.assert_array_equal(saved.get_traces(segment_index=i), t)
        assert saved.get_start_time(i) == rec.get_start_time(i)
    info = json.loads((tmp_path / "out" / "sicore_info.json").read_text())
    assert info["num_samples"] == [3001, 1200]
    binary = json.loads((tmp_path / "out" / "binary.json").read_text())["kwargs"]
    assert binary["file_offset"] == 0 and binary["channel_ids"] == ["a", "b", "c", "d", "e"]
    np.testing.assert_array_equal(saved.get_channel_gains(), rec.get_channel_gains())
    assert not list(tmp_path.glob(".out*"))  # no temporary folder left


def test_binary_folder_source_is_saved_with_its_times(tmp_path, raw_source):
    rec, traces = raw_source
    times = 2.0 + np.arange(traces[1].shape[0]) / 10000.0
    times[600:] += 1.0
    rec.set_times(times, segment_index=1)
    first = save_recording(rec, folder=tmp_path / "first", **JOB)
    assert isinstance(first, BinaryFolderRecording)
    second = save_recording(load_extractor(tmp_path / "first"), folder=tmp_path / "second", n_jobs=2, **JOB)
    for folder in ("first", "second"):
        for i, t in enumerate(traces):
            np.testing.assert_array_equal(_raw(tmp_path / folder, i, 5), t)
        np.testing.assert_array_equal(np.fromfile(tmp_path / folder / "times_cached_seg1.raw"), times)
    np.testing.assert_array_equal(second.get_times(1), times)
    assert not second.has_time_vector(0) and second.get_start_time(0) == 2.0


@pytest.mark.parametrize("view", ["frame_slice", "channel_slice", "reordered", "dtype", "time_axis", "subclass"])
def test_views_of_binary_sources(tmp_path, raw_source, view):
    rec, traces = raw_source
    kwargs, expected = {}, [t for t in traces]
    if view == "frame_slice":
        one = read_binary(tmp_path / "src0.raw", sampling_frequency=10000.0, dtype="int16", num_channels=5,
                          file_offset=HEADER)
        rec, expected = one.frame_slice(100, 2100), [traces[0][100:2100]]
    elif view == "channel_slice":
        rec, expected = rec.channel_slice(["b", "d"]), [t[:, [1, 3]] for t in traces]
    elif view == "reordered":
        rec, expected = rec.channel_slice(["e", "d", "c", "b", "a"]), [t[:, ::-1] for t in traces]
    elif view == "dtype":
        kwargs, expected = {"dtype": "int32"}, [t.astype("int32") for t in traces]
    elif view == "time_axis":
        path = tmp_path / "channel_major.raw"
        traces[0].T.copy().tofile(path)
        rec, expected = read_binary(path, sampling_frequency=10000.0, dtype="int16", num_channels=5,
                                    time_axis=1), [traces[0]]
    else:
        class Doubled(type(rec)):
            """A subclass may change the traces: never copied."""

        rec.__class__ = Doubled
    saved = save_recording(rec, folder=tmp_path / "out", **kwargs, **JOB)
    for i, t in enumerate(expected):
        np.testing.assert_array_equal(saved.get_traces(segment_index=i), t)
        raw = np.fromfile(tmp_path / "out" / f"traces_cached_seg{i}.raw", dtype=t.dtype).reshape(t.shape)
        np.testing.assert_array_equal(raw, t)


def test_truncated_source_is_a_clear_error(tmp_path, raw_source):
    rec, _ = raw_source
    source = tmp_path / "src1.raw"
    os.truncate(source, source.stat().st_size - 5 * 2 * 10)  # 10 frames lost after the recording was opened
    with pytest.raises(OSError, match=r"src1\.raw.*truncated"):
        save_recording(rec, folder=tmp_path / "out", **JOB)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_save_with_progress_bar_and_verbose(tmp_path, raw_source, capsys):
    rec, traces = raw_source
    save_recording(rec, folder=tmp_path / "out", chunk_size=700, progress_bar=True, verbose=True)
    assert "write_binary" in capsys.readouterr().out
    np.testing.assert_array_equal(_raw(tmp_path / "out", 0, 5), traces[0])


def test_invalid_job_kwargs_still_fail(tmp_path, raw_source):
    rec, _ = raw_source
    with pytest.raises(ValueError, match="n_jobs"):
        save_recording(rec, folder=tmp_path / "out", n_jobs=0, progress_bar=False)
    with pytest.raises(ValueError):
        save_recording(rec, folder=tmp_path / "out", chunk_duration="abc", progress_bar=False)


def _linear_probe(num_channels: int, device_channel_indices):
    from probeinterface import generate_linear_probe

    probe = generate_linear_probe(num_elec=num_channels, ypitch=20)
    probe.set_device_channel_indices(device_channel_indices)
    return probe


def test_probe_in_channel_order_is_a_plain_source(tmp_path, raw_source):
    """Attaching a probe wired to channels 0..n-1 in order (a channel slice keeping every channel) leaves a
    plain source (what the sharded save checks before deferring its copy); the saved folder has the probe."""
    rec, traces = raw_source
    with_probe = rec.set_probe(_linear_probe(5, np.arange(5)))
    assert binary_folder.raw_copy_sources(with_probe, np.dtype("int16")) is not None
    saved = save_recording(with_probe, folder=tmp_path / "out", **JOB)
    for i, t in enumerate(traces):
        np.testing.assert_array_equal(_raw(tmp_path / "out", i, 5), t)
    np.testing.assert_array_equal(saved.get_channel_locations(), with_probe.get_channel_locations())


def test_probe_dropping_a_channel(tmp_path, raw_source):
    """A probe with an unwired contact drops its channel: not a plain source; the saved traces hold the others."""
    rec, traces = raw_source
    with_probe = rec.set_probe(_linear_probe(5, [3, 0, -1, 1, 4]))  # channel 2 is wired to no contact
    assert list(with_probe.channel_ids) == ["a", "b", "d", "e"]
    assert binary_folder.raw_copy_sources(with_probe, np.dtype("int16")) is None
    save_recording(with_probe, folder=tmp_path / "out", **JOB)
    for i, t in enumerate(traces):
        np.testing.assert_array_equal(_raw(tmp_path / "out", i, 4), t[:, [0, 1, 3, 4]])
