"""Tests of sicore.job: job kwargs, global job kwargs, chunking and the chunk executor."""

from __future__ import annotations

import os
import pickle
import re
import time
from pathlib import Path

import numpy as np
import pytest

import sicore.job as job
from sicore.io.binary import read_binary
from sicore.job import (
    ChunkRecordingExecutor,
    TimeSeriesChunkExecutor,
    WorkerError,
    _shared_job_kwargs_doc,
    divide_recording_into_chunks,
    divide_segment_into_chunks,
    ensure_chunk_size,
    ensure_n_jobs,
    fix_job_kwargs,
    get_global_job_kwargs,
    job_keys,
    reset_global_job_kwargs,
    set_global_job_kwargs,
    split_job_kwargs,
)
from sicore.numpy_objects import NumpyRecording

FS = 10_000.0
NUM_CHANNELS = 4


@pytest.fixture(autouse=True)
def restore_global_job_kwargs():
    saved = get_global_job_kwargs()
    yield
    reset_global_job_kwargs()
    set_global_job_kwargs(**saved)


@pytest.fixture(scope="module")
def binary_recording(tmp_path_factory):
    """A two-segment int16 binary recording and its traces (one array per segment)."""
    folder = tmp_path_factory.mktemp("binary")
    rng = np.random.default_rng(0)
    traces_list = [rng.integers(-1000, 1000, size=(n, NUM_CHANNELS)).astype("int16") for n in (25_013, 9_001)]
    paths = []
    for i, traces in enumerate(traces_list):
        path = folder / f"traces_{i}.raw"
        traces.tofile(path)
        paths.append(path)
    recording = read_binary(paths, sampling_frequency=FS, dtype="int16", num_channels=NUM_CHANNELS)
    return recording, traces_list


# ----------------------------------------------------------- worker functions (module level: picklable)

def init_keep_recording(recording):
    return {"recording": recording}


def chunk_sums(segment_index, start_frame, end_frame, worker_dict):
    traces = worker_dict["recording"].get_traces(segment_index=segment_index, start_frame=start_frame,
                                                  end_frame=end_frame)
    return segment_index, start_frame, end_frame, traces.astype("int64").sum(axis=0)


def chunk_frames_slow_first(segment_index, start_frame, end_frame, worker_dict):
    # Early chunks take longest, so workers finish later chunks first.
    time.sleep(max(0.0, 0.03 - start_frame * 1e-5))
    return segment_index, start_frame, end_frame


def failing_chunk_func(segment_index, start_frame, end_frame, worker_dict):
    if start_frame >= 2000:
        raise ZeroDivisionError(f"chunk at frame {start_frame} refuses to be processed")
    return start_frame


def missing_key_chunk_func(segment_index, start_frame, end_frame, worker_dict):
    return worker_dict["no_such_key"]


def failing_init(recording):
    raise RuntimeError("init_func could not open its resources")


def chunk_worker_info(segment_index, start_frame, end_frame, worker_dict):
    recording = worker_dict["recording"]
    traces = recording._recording_segments[0]._traces if isinstance(recording, NumpyRecording) else None
    return {
        "pid": os.getpid(),
        "class": type(recording).__name__,
        "traces_address": None if traces is None else traces.ctypes.data,
        "omp": os.environ.get("OMP_NUM_THREADS"),
    }


def init_with_folder(recording, folder):
    return {"recording": recording, "folder": Path(folder)}


def chunk_mark_started(segment_index, start_frame, end_frame, worker_dict):
    (worker_dict["folder"] / f"{segment_index}_{start_frame}").touch()
    return start_frame


# ------------------------------------------------------------------------------- job kwargs

def test_global_job_kwargs_defaults_set_get_reset():
    reset_global_job_kwargs()
    defaults = get_global_job_kwargs()
    assert defaults["n_jobs"] == 1 and defaults["chunk_duration"] == "1s" and defaults["progress_bar"] is True
    assert set(defaults) <= set(job_keys)

    set_global_job_kwargs(n_jobs=16, chunk_duration="5s", progress_bar=False)
    got = get_global_job_kwargs()
    assert (got["n_jobs"], got["chunk_duration"], got["progress_bar"]) == (16, "5s", False)
    got["n_jobs"] = 99  # a copy: the globals do not change
    assert get_global_job_kwargs()["n_jobs"] == 16

    # a new chunking option replaces the global one
    set_global_job_kwargs(chunk_size=1234)
    got = get_global_job_kwargs()
    assert got["chunk_size"] == 1234 and "chunk_duration" not in got

    # invalid values change nothing
    with pytest.raises(ValueError, match="not_a_key"):
        set_global_job_kwargs(n_jobs=2, not_a_key=1)
    with pytest.raises(ValueError, match="n_jobs"):
        set_global_job_kwargs(n_jobs=0)
    assert get_global_job_kwargs()["n_jobs"] == 16

    # n_jobs=-1 is kept as given and resolved when used
    set_global_job_kwargs(n_jobs=-1)
    assert get_global_job_kwargs()["n_jobs"] == -1
    assert fix_job_kwargs({})["n_jobs"] == job.get_usable_cpu_count()

    reset_global_job_kwargs()
    assert get_global_job_kwargs() == defaults


def test_fix_job_kwargs_merges_and_applies_chunk_precedence():
    reset_global_job_kwargs()
    set_global_job_kwargs(n_jobs=2, chunk_duration="2s")
    # a runtime chunking option replaces the global one
    fixed = fix_job_kwargs({"chunk_size": 500})
    assert fixed["chunk_size"] == 500 and "chunk_duration" not in fixed and fixed["n_jobs"] == 2
    fixed = fix_job_kwargs({"total_memory": "1G"})
    assert fixed["total_memory"] == "1G" and "chunk_duration" not in fixed
    # without one, the global one is used; None values are ignored
    fixed = fix_job_kwargs({"n_jobs": 1, "chunk_size": None, "progress_bar": None})
    assert fixed["chunk_duration"] == "2s" and fixed["n_jobs"] == 1 and fixed["progress_bar"] is True
    assert fix_job_kwargs(None)["n_jobs"] == 2


@pytest.mark.parametrize(
    "n_jobs, expected",
    [(1, 1), (3, 3), (np.int64(5), 5), (-1, 8), (-2, 7), (-100, 1), (0.5, 4), (0.25, 2), (1.0, 8), (0.01, 1),
     (2.0, 2), (None, 1)],
)
def test_n_jobs_resolution(monkeypatch, n_jobs, expected):
    monkeypatch.setattr(job, "get_usable_cpu_count", lambda: 8)
    assert ensure_n_jobs(None, n_jobs) == expected
    if n_jobs is not None:
        assert fix_job_kwargs({"n_jobs": n_jobs})["n_jobs"] == expected


def test_n_jobs_uses_real_cpu_count():
    cpus = job.get_usable_cpu_count()
    assert 1 <= cpus <= (os.cpu_count() or 1)
    assert ensure_n_jobs(None, -1) == cpus
    assert ensure_n_jobs(None, 1.0) == cpus


@pytest.mark.parametrize(
    "kwargs, key, expected_text",
    [
        ({"foo": 1}, "foo", "not a job keyword"),
        ({"n_jobs": 0}, "n_jobs", "non-zero int"),
        ({"n_jobs": 1.5}, "n_jobs", r"\(0, 1\]"),
        ({"n_jobs": -0.5}, "n_jobs", r"\(0, 1\]"),
        ({"n_jobs": "4"}, "n_jobs", "int"),
        ({"n_jobs": True}, "n_jobs", "int"),
        ({"chunk_size": 0}, "chunk_size", "positive int"),
        ({"chunk_size": 10.5}, "chunk_size", "positive int"),
        ({"chunk_size": "100"}, "chunk_size", "positive int"),
        ({"chunk_duration": "1 hour"}, "chunk_duration", "'s' or 'ms'"),
        ({"chunk_duration": "2"}, "chunk_duration", "'s' or 'ms'"),
        ({"chunk_duration": -1.0}, "chunk_duration", "positive"),
        ({"chunk_memory": "lots"}, "chunk_memory", "memory size"),
        ({"chunk_memory": "10X"}, "chunk_memory", "memory size"),
        ({"total_memory": 0}, "total_memory", "memory size"),
        ({"progress_bar": "yes"}, "progress_bar", "True or False"),
        ({"mp_context": "threads"}, "mp_context", "fork"),
        ({"max_threads_per_worker": 0}, "max_threads_per_worker", "positive int"),
    ],
)
def test_fix_job_kwargs_errors_name_the_key(kwargs, key, expected_text):
    with pytest.raises(ValueError, match=key) as info:
        fix_job_kwargs(kwargs)
    assert re.search(expected_text, str(info.value))


def test_valid_values_accepted():
    for kwargs in ({"chunk_duration": 0.5}, {"chunk_duration": "500ms"}, {"chunk_duration": "1.5s"},
                   {"chunk_memory": "100M"}, {"chunk_memory": "1GiB"}, {"total_memory": "2G"},
                   {"chunk_memory": 4096}, {"mp_context": "spawn"}, {"mp_context": "forkserver"},
                   {"max_threads_per_worker": 4}, {"progress_bar": False}, {"chunk_size": np.int32(7)}):
        fixed = fix_job_kwargs(kwargs)
        for key, value in kwargs.items():
            assert fixed[key] == value


def test_split_job_kwargs():
    reset_global_job_kwargs()
    specific, job_kwargs = split_job_kwargs({"ms_before": 1.0, "n_jobs": 2, "chunk_size": 300, "dtype": None})
    assert specific == {"ms_before": 1.0, "dtype": None}
    assert job_kwargs["n_jobs"] == 2 and job_kwargs["chunk_size"] == 300 and "chunk_duration" not in job_kwargs
    assert job_kwargs["progress_bar"] is True
    with pytest.raises(ValueError, match="n_jobs"):
        split_job_kwargs({"n_jobs": "many"})


def test_shared_job_kwargs_doc_mentions_every_key():
    for key in job_keys:
        assert key in _shared_job_kwargs_doc


# ------------------------------------------------------------------------------ chunk sizes

def test_ensure_chunk_size_every_unit(binary_recording):
    recording, _ = binary_recording  # 4 channels x int16 = 8 bytes per sample, 10 kHz
    assert ensure_chunk_size(recording, chunk_size=777) == 777
    assert ensure_chunk_size(recording, chunk_duration="1s") == 10_000
    assert ensure_chunk_size(recording, chunk_duration="500ms") == 5_000
    assert ensure_chunk_size(recording, chunk_duration="1.5s") == 15_000
    assert ensure_chunk_size(recording, chunk_duration=0.25) == 2_500
    assert ensure_chunk_size(recording, chunk_duration=2) == 20_000
    assert ensure_chunk_size(recording, chunk_memory="1M") == 125_000
    assert ensure_chunk_size(recording, chunk_memory="1MiB") == 131_072
    assert ensure_chunk_size(recording, chunk_memory="8k") == 1_000
    assert ensure_chunk_size(recording, chunk_memory="1Ki") == 128
    assert ensure_chunk_size(recording, chunk_memory="1G") == 125_000_000
    assert ensure_chunk_size(recording, chunk_memory=800) == 100
    # total_memory is divided by n_jobs
    assert ensure_chunk_size(recording, total_memory="2M", n_jobs=1) == 250_000
    assert ensure_chunk_size(recording, total_memory="2M", n_jobs=2) == 125_000
    assert ensure_chunk_size(recording, total_memory="2M", n_jobs=4) == 62_500
    # nothing given: the longest segment in one chunk
    assert ensure_chunk_size(recording) == 25_013
    # job kwargs can be passed through
    assert ensure_chunk_size(recording, **fix_job_kwargs({"chunk_duration": "100ms", "n_jobs": 2})) == 1_000


def test_ensure_chunk_size_precedence_and_errors(binary_recording):
    recording, _ = binary_recording
    assert ensure_chunk_size(recording, chunk_size=10, chunk_memory="1M", chunk_duration="1s") == 10
    assert ensure_chunk_size(recording, chunk_memory="8k", chunk_duration="1s") == 1_000
    assert ensure_chunk_size(recording, total_memory="16k", n_jobs=2, chunk_duration="1s") == 1_000
    with pytest.raises(ValueError, match="chunk_memory and total_memory"):
        ensure_chunk_size(recording, chunk_memory="1M", total_memory="1M")
    with pytest.raises(ValueError, match="chunk_memory"):
        ensure_chunk_size(recording, chunk_memory="4")  # less than one sample (8 bytes)
    with pytest.raises(ValueError, match="chunk_size"):
        ensure_chunk_size(recording, chunk_size=-5)
    with pytest.raises(ValueError, match="chunk_duration"):
        ensure_chunk_size(recording, chunk_duration="fast")


def test_divide_segment_covers_every_sample_once():
    rng = np.random.default_rng(42)
    for _ in range(300):
        num_frames = int(rng.integers(0, 5_000))
        chunk_size = int(rng.integers(1, 700))
        chunks = divide_segment_into_chunks(num_frames, chunk_size)
        covered = np.zeros(num_frames, dtype=np.int64)
        for start, end in chunks:
            assert 0 <= start < end <= num_frames
            covered[start:end] += 1
        assert np.all(covered == 1)
        assert [s for s, _ in chunks] == sorted(s for s, _ in chunks)
        assert all(e - s == chunk_size for s, e in chunks[:-1])
        assert len(chunks) == -(-num_frames // chunk_size)
    assert divide_segment_into_chunks(10, 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert divide_segment_into_chunks(10, None) == [(0, 10)]
    assert divide_segment_into_chunks(0, 3) == []
    with pytest.raises(ValueError, match="chunk_size"):
        divide_segment_into_chunks(10, 0)


def test_divide_recording_into_chunks(binary_recording, tmp_path):
    recording, traces_list = binary_recording
    chunks = divide_recording_into_chunks(recording, 10_000)
    assert chunks == [(0, 0, 10_000), (0, 10_000, 20_000), (0, 20_000, 25_013), (1, 0, 9_001)]
    rng = np.random.default_rng(1)
    for _ in range(20):
        chunk_size = int(rng.integers(1, 30_000))
        chunks = divide_recording_into_chunks(recording, chunk_size)
        for segment_index, traces in enumerate(traces_list):
            seg_chunks = [(s, e) for seg, s, e in chunks if seg == segment_index]
            assert seg_chunks == divide_segment_into_chunks(traces.shape[0], chunk_size)
    # an empty segment has no chunk
    (tmp_path / "empty.raw").write_bytes(b"")
    np.zeros((5, 2), dtype="int16").tofile(tmp_path / "five.raw")
    rec = read_binary([tmp_path / "empty.raw", tmp_path / "five.raw"], sampling_frequency=FS, dtype="int16",
                      num_channels=2)
    assert divide_recording_into_chunks(rec, 2) == [(1, 0, 2), (1, 2, 4), (1, 4, 5)]


# --------------------------------------------------------------------------------- executor

def _expected_chunk_sums(traces_list, chunks):
    return [traces_list[seg][s:e].astype("int64").sum(axis=0) for seg, s, e in chunks]


def test_binary_recording_travels_as_provenance(binary_recording):
    # Premise of spawn-safe workers: a file-backed recording pickles to its small provenance.
    recording, traces_list = binary_recording
    assert len(pickle.dumps(recording)) < 10_000 < sum(t.nbytes for t in traces_list)


@pytest.mark.parametrize("chunk_size", [1, 997, 10_000, 100_000])
def test_executor_results_identical_for_any_n_jobs(binary_recording, chunk_size):
    recording, traces_list = binary_recording
    if chunk_size == 1:  # one sample per chunk: keep it short
        recording = recording.frame_slice(0, 300)
        traces_list = [t[:300] for t in traces_list]
    outputs = {}
    for n_jobs in (1, 2):
        gathered = []
        returns = ChunkRecordingExecutor(
            recording, chunk_sums, init_keep_recording, (recording,), handle_returns=True,
            gather_func=gathered.append, n_jobs=n_jobs, chunk_size=chunk_size, mp_context="fork",
        ).run()
        assert len(returns) == len(gathered)
        for a, b in zip(returns, gathered):
            assert a[:3] == b[:3] and np.array_equal(a[3], b[3])
        outputs[n_jobs] = returns
    chunks = divide_recording_into_chunks(recording, chunk_size)
    expected = _expected_chunk_sums(traces_list, chunks)
    for n_jobs, returns in outputs.items():
        assert [r[:3] for r in returns] == chunks
        assert all(np.array_equal(r[3], e) for r, e in zip(returns, expected))
    totals = sum(r[3] for r in outputs[2])
    assert np.array_equal(totals, sum(t.astype("int64").sum(axis=0) for t in traces_list))


@pytest.mark.parametrize("mp_context", ["fork", "spawn", "forkserver"])
def test_every_mp_context_with_binary_recording(binary_recording, mp_context):
    recording, traces_list = binary_recording
    returns = TimeSeriesChunkExecutor(
        recording, chunk_sums, init_keep_recording, (recording,), handle_returns=True, n_jobs=2,
        chunk_duration="0.4s", mp_context=mp_context,
    ).run()
    chunks = divide_recording_into_chunks(recording, 4_000)
    assert [r[:3] for r in returns] == chunks
    assert all(np.array_equal(r[3], e) for r, e in zip(returns, _expected_chunk_sums(traces_list, chunks)))


def test_spawn_with_in_memory_recording_gives_clear_error(binary_recording):
    _, traces_list = binary_recording
    recording = NumpyRecording(traces_list, sampling_frequency=FS)
    for mp_context in ("spawn", "forkserver"):
        executor = ChunkRecordingExecutor(recording, chunk_sums, init_keep_recording, (recording,), n_jobs=2,
                                          chunk_size=1000, mp_context=mp_context)
        with pytest.raises(ValueError, match=r"NumpyRecording.*save\(\).*fork"):
            executor.run()
    # also when the in-memory recording only appears in init_args
    binary = binary_recording[0]
    executor = ChunkRecordingExecutor(binary, chunk_sums, init_keep_recording, (recording,), n_jobs=2,
                                      chunk_size=1000, mp_context="spawn")
    with pytest.raises(ValueError, match="in memory"):
        executor.run()


def test_spawn_with_unpicklable_func_gives_clear_error(binary_recording):
    recording, _ = binary_recording
    executor = ChunkRecordingExecutor(recording, lambda *args: None, init_keep_recording, (recording,), n_jobs=2,
                                      chunk_size=1000, mp_context="spawn")
    with pytest.raises(ValueError, match="module-level functions"):
        executor.run()


def test_fork_with_in_memory_recording_inherits_it(binary_recording):
    _, traces_list = binary_recording
    recording = NumpyRecording(traces_list, sampling_frequency=FS)
    returns = ChunkRecordingExecutor(recording, chunk_sums, init_keep_recording, (recording,), handle_returns=True,
                                     n_jobs=2, chunk_size=3_000, mp_context="fork").run()
    chunks = divide_recording_into_chunks(recording, 3_000)
    assert all(np.array_equal(r[3], e) for r, e in zip(returns, _expected_chunk_sums(traces_list, chunks)))
    # the workers read the parent's arrays (same address after fork): nothing was copied
    infos = ChunkRecordingExecutor(recording, chunk_worker_info, init_keep_recording, (recording,),
                                   handle_returns=True, n_jobs=2, chunk_size=3_000, mp_context="fork").run()
    parent_address = recording._recording_segments[0]._traces.ctypes.data
    assert {info["traces_address"] for info in infos} == {parent_address}
    assert all(info["pid"] != os.getpid() for info in infos)


def test_fork_rebuilds_file_backed_recording_from_provenance(binary_recording):
    recording, _ = binary_recording
    infos = ChunkRecordingExecutor(recording, chunk_worker_info, init_keep_recording, (recording,),
                                   handle_returns=True, n_jobs=2, chunk_size=5_000, mp_context="fork",
                                   max_threads_per_worker=1).run()
    assert {info["class"] for info in infos} == {"BinaryRecordingExtractor"}
    assert {info["omp"] for info in infos} == {"1"}
    assert len({info["pid"] for info in infos} - {os.getpid()}) >= 1


def test_returns_delivered_in_chunk_order(binary_recording):
    recording, _ = binary_recording
    gathered = []
    returns = ChunkRecordingExecutor(recording, chunk_frames_slow_first, init_keep_recording, (recording,),
                                     handle_returns=True, gather_func=gathered.append, n_jobs=2,
                                     chunk_size=500, mp_context="fork").run(
        recording_slices=[(0, 0, 500), (0, 500, 1000), (1, 0, 10), (0, 2500, 3000), (0, 1000, 1500)]
    )
    expected = [(0, 0, 500), (0, 500, 1000), (1, 0, 10), (0, 2500, 3000), (0, 1000, 1500)]
    assert returns == expected and gathered == expected


def test_bounded_number_of_chunks_in_flight(binary_recording, tmp_path):
    recording, _ = binary_recording
    num_workers = 2
    window = num_workers * job._IN_FLIGHT_PER_WORKER
    started_counts = []

    def slow_gather(start_frame):
        started_counts.append(len(list(tmp_path.iterdir())))
        time.sleep(0.004)  # a slow caller: unbounded submission would let workers run far ahead

    ChunkRecordingExecutor(recording, chunk_mark_started, init_with_folder, (recording, str(tmp_path)),
                           gather_func=slow_gather, n_jobs=num_workers, chunk_size=250, mp_context="fork").run(
        recording_slices=[(0, s, s + 250) for s in range(0, 20_000, 250)]
    )
    assert len(started_counts) == 80
    for delivered, started in enumerate(started_counts):
        assert started <= window + delivered + 1


def test_worker_error_surfaces_with_traceback(binary_recording):
    recording, _ = binary_recording
    executor = ChunkRecordingExecutor(recording, failing_chunk_func, init_keep_recording, (recording,),
                                      n_jobs=2, chunk_size=1000, mp_context="fork", job_name="failing job")
    with pytest.raises(ZeroDivisionError) as info:
        executor.run()
    message = str(info.value)
    assert "refuses to be processed" in message
    assert "failing_chunk_func" in message and "test_job.py" in message  # the worker's traceback
    assert 'raise ZeroDivisionError(f"chunk at frame' in message
    assert "frames [2000, 3000)" in message and "failing job" in message
    assert "failing_chunk_func" in info.value.worker_traceback
    # n_jobs=1 raises the same type, with its own traceback
    with pytest.raises(ZeroDivisionError, match="refuses"):
        ChunkRecordingExecutor(recording, failing_chunk_func, init_keep_recording, (recording,), n_jobs=1,
                               chunk_size=1000).run()


def test_worker_key_error_and_init_error(binary_recording):
    recording, _ = binary_recording
    with pytest.raises(KeyError) as info:
        ChunkRecordingExecutor(recording, missing_key_chunk_func, init_keep_recording, (recording,), n_jobs=2,
                               chunk_size=10_000, mp_context="fork").run()
    assert isinstance(info.value, WorkerError)
    assert "no_such_key" in str(info.value) and "missing_key_chunk_func" in str(info.value)
    with pytest.raises(RuntimeError) as info:
        ChunkRecordingExecutor(recording, chunk_sums, failing_init, (recording,), n_jobs=2, chunk_size=10_000,
                               mp_context="fork").run()
    assert "could not open its resources" in str(info.value) and "failing_init" in str(info.value)
    assert "init_func" in str(info.value)


def test_executor_handles_no_returns_progress_bar_and_verbose(binary_recording, capsys):
    recording, _ = binary_recording
    result = ChunkRecordingExecutor(recording, chunk_sums, init_keep_recording, (recording,), n_jobs=1,
                                    chunk_size=5_000, progress_bar=True, verbose=True, job_name="my job").run()
    assert result is None
    captured = capsys.readouterr()
    assert "my job" in captured.err and "8/8" in captured.err
    assert "samples_per_chunk=5,000" in captured.out


def test_executor_argument_errors(binary_recording):
    recording, _ = binary_recording
    executor = ChunkRecordingExecutor(recording, chunk_sums, init_keep_recording, (recording,), chunk_size=100)
    with pytest.raises(ValueError, match="segment_index 5"):
        executor.run(recording_slices=[(5, 0, 10)])
    with pytest.raises(ValueError, match="out of range"):
        executor.run(recording_slices=[(1, 0, 9_002)])
    with pytest.raises(ValueError, match="recording_slices"):
        executor.run(recording_slices=[(0, 1)])
    assert executor.run(recording_slices=[]) is None
    with pytest.raises(ValueError, match="mp_context"):
        ChunkRecordingExecutor(recording, chunk_sums, init_keep_recording, (recording,), mp_context="thread")
    with pytest.raises(ValueError, match="n_jobs"):
        ChunkRecordingExecutor(recording, chunk_sums, init_keep_recording, (recording,), n_jobs=0)
    with pytest.raises(ValueError, match="init_args"):
        ChunkRecordingExecutor(recording, chunk_sums, init_keep_recording, recording)
