"""Sharded passes (``sicore.sharding``): plans, shard + gather == unsharded, errors, killed shards, CLI, SI.

The data are small real files: a 2-segment int16 binary recording (gains, offsets, probe, a time vector
on segment 1) saved in tmp_path, a sorting with spikes at segment and shard borders, and binary_folder
and zarr analyzers on it. Plans use ``chunk_size=900``: segment 0 (7000 samples) ends with a shorter
chunk, so shards have uneven lengths and one of them spans the segment border.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import sicore as si
from sicore.sharding import (
    ShardError,
    add_shard_commands,
    count_shards,
    gather_analyzer_pass,
    gather_save_recording,
    plan_shards,
    shard_analyzer_pass,
    shard_folders,
    shard_save_recording,
)

FS = 10000.0
LENGTHS = (7000, 4500)
CHUNK = 900
JOB = {"chunk_size": CHUNK, "progress_bar": False}
NOISE = {"random_slices_kwargs": {"seed": 7, "num_chunks_per_segment": 6, "chunk_size": 400}}
REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------ data
def make_source(folder: Path, name: str, with_times: bool) -> list[np.ndarray]:
    """Save a 2-segment, 6-channel int16 recording (gains, offsets, probe) in ``folder``; its traces."""
    rng = np.random.default_rng(0)
    traces = [rng.integers(-300, 300, size=(n, 6)).astype("int16") for n in LENGTHS]
    rec = si.NumpyRecording(traces, FS, channel_ids=[f"c{i}" for i in range(6)])
    rec.set_channel_gains(np.array([0.195, 0.3, 0.7, 1.1, 0.45, 2.5]))
    rec.set_channel_offsets(np.arange(6, dtype=float) - 2.0)
    rec.set_dummy_probe_from_locations(np.stack([np.zeros(6), 25.0 * np.arange(6)], axis=1))
    if with_times:
        rec.set_times(10.0 + np.arange(LENGTHS[1]) / FS + 1e-7 * np.arange(LENGTHS[1]) ** 1.5, segment_index=1)
    rec.annotate(name=name)
    rec.save(folder=folder, progress_bar=False)
    return traces


@pytest.fixture(scope="module")
def source_folder(tmp_path_factory):
    """A saved binary recording (2 segments, 6 channels, gains, probe, time vector on segment 1)."""
    folder = tmp_path_factory.mktemp("src") / "rec"
    make_source(folder, "sharding test", with_times=True)
    return folder


@pytest.fixture
def source(source_folder):
    # a fresh object per test: computing noise levels caches them as a property of the recording object
    return si.load(source_folder)


@pytest.fixture(scope="module")
def sorting():
    rng = np.random.default_rng(1)
    times, labels = [], []
    for n in LENGTHS:
        t = [np.sort(rng.choice(np.arange(n), size=30 + 8 * u, replace=False)) for u in range(4)]
        # segment borders and shard borders of the 3- and 4-shard plans (seg 0: 2700, 3600, 5400; seg 1: 900, 1800)
        borders = [0, 1, n - 2, n - 1, 899, 900, 1799, 1800, 2699, 2700, 3599, 3600, 5399, 5400]
        t[0] = np.unique(np.concatenate([t[0], borders]))
        t[0] = t[0][t[0] < n]
        times.append(np.concatenate(t))
        labels.append(np.concatenate([np.full(x.size, "abcd"[u]) for u, x in enumerate(t)]))
    return si.NumpySorting.from_times_labels(times, labels, FS, unit_ids=["a", "b", "c", "d"])


def make_analyzer(source, sorting, folder, fmt="binary_folder", return_scaled=True):
    analyzer = si.create_sorting_analyzer(sorting, source, format=fmt, folder=folder, radius_um=40,
                                          return_scaled=return_scaled, progress_bar=False)
    analyzer.compute("random_spikes", method="all")
    return analyzer


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_folders(a: Path, b: Path, ignore=()) -> None:
    fa, fb = files_of(a), files_of(b)
    assert sorted(fa) == sorted(fb)
    differ = [name for name in fa if fa[name] != fb[name] and name not in ignore]
    assert not differ, f"files differ: {differ}"


def run_shards(kind: str, num_shards: int, root: Path, **kwargs) -> list[Path]:
    folders = shard_folders(root, num_shards)
    for i, folder in enumerate(folders):
        if kind == "save_recording":
            shard_save_recording(kwargs["recording"], folder, i, num_shards=num_shards,
                                 **{k: v for k, v in kwargs.items() if k != "recording"})
        else:
            shard_analyzer_pass(kind, shard_folder=folder, shard_index=i, num_shards=num_shards, **kwargs)
    return folders


# ------------------------------------------------------------------------------------------ plan
@pytest.mark.parametrize("num_shards", [1, 2, 3, 4, 7, 20])
def test_plan_tiles_the_timeline_on_chunk_borders(source, num_shards):
    plan = plan_shards(source, num_shards=num_shards, chunk_size=CHUNK)
    assert len(plan) == num_shards and [s.index for s in plan] == list(range(num_shards))
    assert plan == plan_shards(source, num_shards=num_shards, chunk_size=CHUNK)  # deterministic
    assert plan[0].start == 0 and plan[-1].stop == sum(LENGTHS)
    for a, b in zip(plan[:-1], plan[1:]):
        assert a.stop == b.start
    for shard in plan:
        assert shard.num_frames == sum(e - s for _, s, e in shard.ranges)
        for seg, start, end in shard.ranges:
            assert start % CHUNK == 0 and (end % CHUNK == 0 or end == LENGTHS[seg])
    # the pieces are exactly the segments, cut on chunk borders: the chunk slices are the unsharded chunks
    chunks = [c for shard in plan for c in shard.chunk_slices(CHUNK)]
    assert chunks == si.divide_recording_into_chunks(source, CHUNK)
    empty = sum(1 for s in plan if not s.ranges)
    num_chunks = len(chunks)
    assert empty == max(0, num_shards - num_chunks)


def test_plan_uneven_and_across_segments(source, sorting):
    plan = plan_shards(source, num_shards=3, chunk_size=CHUNK)
    # borders nearest to 11500 / 3 and 2 * 11500 / 3 on the chunk grid; shard 1 spans the segment border
    assert [s.num_frames for s in plan] == [3600, 4300, 3600]
    assert plan[1].ranges == ((0, 3600, 7000), (1, 0, 900))
    # shard_duration gives ceil(total / duration) shards; the analyzer plans like its recording
    assert count_shards(source, "0.3s") == 4 and len(plan_shards(source, shard_duration=0.3, chunk_size=CHUNK)) == 4
    default = plan_shards(source, num_shards=2)  # global chunk_duration "1s" = 10000 samples
    assert [s.ranges for s in default] == [((0, 0, 7000),), ((1, 0, 4500),)]
    analyzer = si.create_sorting_analyzer(sorting, source, sparse=False)
    assert plan_shards(analyzer, num_shards=3, chunk_size=CHUNK) == plan


def test_plan_errors(source):
    with pytest.raises(ValueError, match="exactly one of num_shards and shard_duration"):
        plan_shards(source)
    with pytest.raises(ValueError, match="exactly one of num_shards and shard_duration"):
        plan_shards(source, num_shards=2, shard_duration="1s")
    with pytest.raises(ValueError, match="num_shards must be an int >= 1"):
        plan_shards(source, num_shards=0)
    with pytest.raises(ValueError, match="shard_duration"):
        plan_shards(source, shard_duration="soon")
    with pytest.raises(ValueError, match=r"shard_index must be an int in \[0, 3\)"):
        shard_save_recording(source, "x", 3, num_shards=3)


# ------------------------------------------------------------------------------------------ save_recording
@pytest.mark.parametrize("num_shards", [1, 3, 4])
@pytest.mark.parametrize("fmt", ["binary", "zarr"])
def test_save_recording_sharded_equals_unsharded(source, tmp_path, fmt, num_shards):
    options = {"channel_chunk_size": 4} if fmt == "zarr" and num_shards == 3 else {}
    expected = source.save(folder=tmp_path / "unsharded", format=fmt, **options, **JOB)
    folders = run_shards("save_recording", num_shards, tmp_path / "shards", recording=source, format=fmt,
                         **options, **JOB)
    saved = gather_save_recording(source, folders, tmp_path / "sharded", num_shards=num_shards, format=fmt,
                                  **options, **JOB)
    suffix = ".zarr" if fmt == "zarr" else ""
    # every file, byte for byte (traces, times, probe, properties, provenance, JSON / zarr metadata)
    assert_same_folders(tmp_path / f"unsharded{suffix}", tmp_path / f"sharded{suffix}")
    loaded = si.load(tmp_path / f"sharded{suffix}")
    assert type(loaded) is type(expected) is type(saved)
    for seg in range(2):
        np.testing.assert_array_equal(loaded.get_traces(segment_index=seg), source.get_traces(segment_index=seg))
    np.testing.assert_array_equal(loaded.get_times(1), source.get_times(1))
    assert loaded.get_annotation("name") == "sharding test" and loaded.has_probe()


@pytest.mark.parametrize("fmt", ["binary", "zarr"])
def test_gather_without_hard_links(source, tmp_path, monkeypatch, fmt):
    """File systems without hard links (zarr chunk files are then copied) give the same bytes."""
    def unsupported(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    import sicore.sharding_recording

    monkeypatch.setattr(sicore.sharding_recording, "_hard_link", unsupported)
    suffix = ".zarr" if fmt == "zarr" else ""
    source.save(folder=tmp_path / "unsharded", format=fmt, **JOB)
    folders = run_shards("save_recording", 3, tmp_path / "shards", recording=source, format=fmt, **JOB)
    gather_save_recording(source, folders, tmp_path / "sharded", num_shards=3, format=fmt, n_jobs=2, **JOB)
    assert_same_folders(tmp_path / f"unsharded{suffix}", tmp_path / f"sharded{suffix}")


def test_save_recording_with_dtype_and_shard_duration(source, tmp_path):
    source.save(folder=tmp_path / "unsharded", dtype="float32", **JOB)
    n = count_shards(source, "0.25s")
    folders = run_shards("save_recording", n, tmp_path / "shards", recording=source, dtype="float32", **JOB)
    gather_save_recording(source, folders, tmp_path / "sharded", shard_duration="0.25s", dtype="float32", **JOB)
    assert_same_folders(tmp_path / "unsharded", tmp_path / "sharded")


# ------------------------------------------------------------------------------------------ analyzer passes
def _extension_folder(analyzer, name: str) -> Path:
    return Path(analyzer.folder) / "extensions" / name


def _compare_extension(expected, got, name, fmt, ignore_runtime=True):
    """Same params and data arrays (bit for bit); run_info only differs by its runtime."""
    assert got.params == expected.params
    assert sorted(got.data) == sorted(expected.data)
    for key in expected.data:
        a, b = np.asarray(expected.data[key]), np.asarray(got.data[key])
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), (name, key)
    assert got.run_info["run_completed"]


@pytest.mark.parametrize("fmt", ["binary_folder", "zarr"])
def test_analyzer_passes_sharded_equal_unsharded(source, sorting, tmp_path, fmt):
    suffix = ".zarr" if fmt == "zarr" else ""
    reference = make_analyzer(source, sorting, tmp_path / f"ref{suffix}", fmt)
    params = {"noise_levels": NOISE, "templates": {}, "waveforms": {"ms_before": 0.7, "ms_after": 1.3}}
    expected, expected_files = {}, {}
    for name in ("noise_levels", "templates", "waveforms"):
        expected[name] = reference.compute(name, **params[name], **JOB)
        expected_files[name] = files_of(_extension_folder(reference, name))
    analyzer_folder = tmp_path / f"an{suffix}"
    make_analyzer(source, sorting, analyzer_folder, fmt)
    for num_shards in (1, 3, 4):
        for name in ("noise_levels", "templates", "waveforms"):
            folders = run_shards(name, num_shards, tmp_path / f"{name}_{num_shards}", analyzer=analyzer_folder,
                                 params=params[name], **JOB)
            gather_analyzer_pass(name, analyzer_folder, folders, num_shards=num_shards, params=params[name], **JOB)
            loaded = si.load_sorting_analyzer(analyzer_folder)
            _compare_extension(expected[name], loaded.get_extension(name), name, fmt)
            # the extension folder holds the same files (run_info: its runtime only; zarr: byte-identical chunks)
            got_files = files_of(_extension_folder(loaded, name))
            assert sorted(got_files) == sorted(expected_files[name])
            differ = [f for f in got_files if got_files[f] != expected_files[name][f]]
            assert differ == (["run_info.json"] if fmt == "binary_folder" else [".zattrs"]), differ
        # gathering waveforms deleted the templates (a child), as compute("waveforms") does
        assert not si.load_sorting_analyzer(analyzer_folder).has_extension("templates")
        si.load_sorting_analyzer(analyzer_folder).delete_extension("waveforms")


@pytest.mark.parametrize("num_shards, n_jobs", [(20, 1), (3, 2)])
def test_waveforms_shards_without_spikes_and_with_workers(source, sorting, tmp_path, num_shards, n_jobs):
    """20 shards over 13 chunks: 7 shards hold no spike (their waveforms.npy is empty). 3 shards of 4-5
    chunks with 2 workers: the workers write their rows into the shard's file. The gathered file is the
    unsharded one."""
    reference = make_analyzer(source, sorting, tmp_path / "ref")
    expected = files_of(_extension_folder(reference.compute("waveforms", **JOB).sorting_analyzer, "waveforms"))
    make_analyzer(source, sorting, tmp_path / "an")
    folders = shard_folders(tmp_path / "shards", num_shards)
    for i, folder in enumerate(folders):
        shard_analyzer_pass("waveforms", tmp_path / "an", folder, i, num_shards=num_shards, n_jobs=n_jobs, **JOB)
    sizes = [np.load(folder / "waveforms.npy", mmap_mode="r").shape[0] for folder in folders]
    assert sizes.count(0) == max(0, num_shards - 13)
    assert sum(sizes) == reference.get_extension("random_spikes").data["random_spikes_indices"].size
    gather_analyzer_pass("waveforms", tmp_path / "an", folders, num_shards=num_shards, **JOB)
    got = files_of(_extension_folder(si.load_sorting_analyzer(tmp_path / "an"), "waveforms"))
    assert got["waveforms.npy"] == expected["waveforms.npy"] and got["params.json"] == expected["params.json"]


def test_templates_tolerance_and_integer_identity(source, sorting, tmp_path):
    """Integer cut-outs: bit for bit; µV cut-outs: within 1 float32 ulp (+ the stated std allowance)."""
    for scaled in (False, True):
        reference = make_analyzer(source, sorting, tmp_path / f"ref_{scaled}", return_scaled=scaled)
        expected = reference.compute("templates", **JOB)
        analyzer_folder = tmp_path / f"an_{scaled}"
        make_analyzer(source, sorting, analyzer_folder, return_scaled=scaled)
        for num_shards in (3, 4):
            folders = run_shards("templates", num_shards, tmp_path / f"t_{scaled}_{num_shards}",
                                 analyzer=analyzer_folder, **JOB)
            got = gather_analyzer_pass("templates", analyzer_folder, folders, num_shards=num_shards, **JOB)
            for key in ("average", "std"):
                a, b = np.asarray(expected.data[key]), np.asarray(got.data[key])
                if not scaled:
                    assert a.tobytes() == b.tobytes(), key
                else:
                    scale = np.abs(expected.data["average"]).max()
                    ulp = np.spacing(np.abs(a).astype(np.float32))
                    allowance = ulp if key == "average" else ulp + 1e-6 * scale
                    assert np.all(np.abs(a - b) <= allowance), key


def test_sharded_templates_when_waveforms_exist(source, sorting, tmp_path):
    analyzer = make_analyzer(source, sorting, tmp_path / "an")
    analyzer.compute("waveforms", **JOB)
    with pytest.raises(ValueError, match="computed from them without reading the recording"):
        shard_analyzer_pass("templates", tmp_path / "an", tmp_path / "s0", 0, num_shards=2)
    # from_random_spikes: from the recording anyway, as `sicore compute templates --from random_spikes`
    reference = make_analyzer(source, sorting, tmp_path / "ref")
    expected = reference.compute("templates", **JOB)
    folders = run_shards("templates", 2, tmp_path / "shards", analyzer=tmp_path / "an", from_random_spikes=True, **JOB)
    got = gather_analyzer_pass("templates", tmp_path / "an", folders, num_shards=2, from_random_spikes=True, **JOB)
    for key in ("average", "std"):
        assert np.asarray(got.data[key]).tobytes() == np.asarray(expected.data[key]).tobytes()
    assert si.load_sorting_analyzer(tmp_path / "an").has_extension("waveforms")  # untouched


def test_noise_levels_need_a_seed_and_dependencies(source, sorting, tmp_path):
    analyzer = si.create_sorting_analyzer(sorting, source, format="binary_folder", folder=tmp_path / "an",
                                          sparse=False)
    with pytest.raises(ValueError, match="explicit seed"):
        shard_analyzer_pass("noise_levels", analyzer, tmp_path / "s0", 0, num_shards=2)
    with pytest.raises(ValueError, match="depends on 'random_spikes'"):
        shard_analyzer_pass("waveforms", analyzer, tmp_path / "s0", 0, num_shards=2)


# ------------------------------------------------------------------------------------------ failures
def test_gather_names_missing_incomplete_and_foreign_shards(source, sorting, tmp_path):
    folders = run_shards("save_recording", 4, tmp_path / "shards", recording=source, **JOB)
    os.rename(folders[2], folders[2].with_name("elsewhere"))
    (folders[1] / "shard.json").unlink()  # as if its marker had never been written
    with pytest.raises(ShardError) as err:
        gather_save_recording(source, folders, tmp_path / "out", num_shards=4, **JOB)
    message = str(err.value)
    assert "shard 2 of 4" in message and "missing" in message and str(folders[2]) in message
    assert "shard 1 of 4" in message and "incomplete" in message
    assert "shard 0 of 4" not in message and not (tmp_path / "out").exists()
    # a shard of another plan / other params
    os.rename(folders[2].with_name("elsewhere"), folders[2])
    shard_save_recording(source, folders[1], 1, num_shards=4, **JOB)
    with pytest.raises(ShardError, match=r"shard 0 of 3 .*computed for another plan"):
        gather_save_recording(source, folders[:3], tmp_path / "out", num_shards=3, **JOB)
    with pytest.raises(ShardError, match=r"params: shard has .*'<i2'.*gather expects .*'<f4'"):
        gather_save_recording(source, folders, tmp_path / "out", num_shards=4, dtype="float32", **JOB)
    # a truncated piece inside a complete-looking shard
    piece = folders[3] / "traces_seg1.raw"
    os.truncate(piece, piece.stat().st_size - 12)
    with pytest.raises(ShardError, match=r"shard 3 of 4 .*traces_seg1.raw has \d+ bytes, expected"):
        gather_save_recording(source, folders, tmp_path / "out", num_shards=4, **JOB)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.sicore-tmp-*"))


def test_gather_rejects_shards_of_other_random_spikes(source, sorting, tmp_path):
    analyzer = make_analyzer(source, sorting, tmp_path / "an")
    folders = run_shards("waveforms", 2, tmp_path / "shards", analyzer=tmp_path / "an", **JOB)
    analyzer.compute("random_spikes", max_spikes_per_unit=10, seed=0)
    with pytest.raises(ShardError, match="random_spikes"):
        gather_analyzer_pass("waveforms", tmp_path / "an", folders, num_shards=2, **JOB)


_KILL_SCRIPT = """
import os, signal, sys
import numpy as np
import sicore as si
from sicore import sharding_recording, sharding_analyzer
kind, where, shard_folder = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "save_recording":
    original = sharding_recording._write_piece_chunk
    def killing(*args):
        original(*args)
        os.kill(os.getpid(), signal.SIGKILL)  # dies with a half-written piece
    sharding_recording._write_piece_chunk = killing
    sharding_recording.shard_save_recording(where, shard_folder, 1, num_shards=3, chunk_size=900)
else:
    def killing(file, array, *args, **kwargs):
        with open(file, "wb") as f:
            f.write(b"half")
        os.kill(os.getpid(), signal.SIGKILL)
    sharding_analyzer.np.save = killing
    sharding_analyzer.shard_analyzer_pass("waveforms", where, shard_folder, 1, num_shards=3, chunk_size=900)
"""


@pytest.mark.parametrize("kind", ["save_recording", "waveforms"])
def test_killed_shard_is_ignored_then_recomputed(source, sorting, tmp_path, kind):
    if kind == "save_recording":
        where = Path(source._kwargs["folder_path"])
        source.save(folder=tmp_path / "unsharded", **JOB)
    else:
        where = tmp_path / "an"
        make_analyzer(source, sorting, where)
        expected = np.array(make_analyzer(source, sorting, tmp_path / "ref").compute("waveforms", **JOB)
                            .data["waveforms"])
    folders = shard_folders(tmp_path / "shards", 3)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, kind, str(where), str(folders[1])], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    leftovers = list(folders[1].parent.glob(f".{folders[1].name}.sicore-tmp-*"))
    assert not folders[1].exists() and len(leftovers) == 1  # only a hidden temporary, never the shard folder
    for i in (0, 2):
        if kind == "save_recording":
            shard_save_recording(source, folders[i], i, num_shards=3, **JOB)
        else:
            shard_analyzer_pass(kind, where, folders[i], i, num_shards=3, **JOB)

    def gather():
        if kind == "save_recording":
            return gather_save_recording(source, folders, tmp_path / "sharded", num_shards=3, **JOB)
        return gather_analyzer_pass(kind, where, folders, num_shards=3, **JOB)

    with pytest.raises(ShardError, match="shard 1 of 3 .*missing .*interrupted"):
        gather()
    # the resubmitted job removes the leftover and recomputes cleanly
    if kind == "save_recording":
        shard_save_recording(source, folders[1], 1, num_shards=3, **JOB)
    else:
        shard_analyzer_pass(kind, where, folders[1], 1, num_shards=3, **JOB)
    assert not list(folders[1].parent.glob(f".{folders[1].name}.sicore-tmp-*"))
    result = gather()
    if kind == "save_recording":
        assert_same_folders(tmp_path / "unsharded", tmp_path / "sharded")
    else:
        assert result.data["waveforms"].tobytes() == expected.tobytes()


def test_rerun_of_a_complete_shard_replaces_it(source, tmp_path):
    folders = run_shards("save_recording", 2, tmp_path / "shards", recording=source, **JOB)
    before = (folders[0] / "shard.json").read_text()
    shard_save_recording(source, folders[0], 0, num_shards=2, **JOB)
    after = json.loads((folders[0] / "shard.json").read_text())
    assert after["shard"] == json.loads(before)["shard"] and after["completed"]
    assert not list(folders[0].parent.glob(".*sicore-*"))
    gather_save_recording(source, folders, tmp_path / "out", num_shards=2, **JOB)
    source.save(folder=tmp_path / "unsharded", **JOB)
    assert_same_folders(tmp_path / "unsharded", tmp_path / "out")


@pytest.mark.parametrize("fmt", ["binary", "zarr"])
def test_gather_consuming_its_shards(source, tmp_path, monkeypatch, fmt):
    """remove_shards: shards are deleted by a successful gather, and count as missing after a failed one."""
    suffix = ".zarr" if fmt == "zarr" else ""
    source.save(folder=tmp_path / "unsharded", format=fmt, **JOB)
    folders = run_shards("save_recording", 3, tmp_path / "shards", recording=source, format=fmt, **JOB)
    import sicore.io.binary_folder
    import sicore.io.zarr_recording

    def broken(*args, **kwargs):
        raise OSError("disk full")

    module = sicore.io.binary_folder if fmt == "binary" else sicore.io.zarr_recording
    name = "write_binary_folder_metadata" if fmt == "binary" else "finish_zarr_store"
    with monkeypatch.context() as patch:
        patch.setattr(module, name, broken)
        with pytest.raises(OSError, match="disk full"):
            gather_save_recording(source, folders, tmp_path / "sharded", num_shards=3, format=fmt,
                                  remove_shards=True, **JOB)
    assert not any(f.exists() for f in folders) and not (tmp_path / f"sharded{suffix}").exists()
    assert not list((tmp_path / "shards").iterdir()) and not list(tmp_path.glob(".sharded*"))
    with pytest.raises(ShardError, match="shard 0 of 3 .*missing"):
        gather_save_recording(source, folders, tmp_path / "sharded", num_shards=3, format=fmt, **JOB)
    folders = run_shards("save_recording", 3, tmp_path / "shards", recording=source, format=fmt, **JOB)
    gather_save_recording(source, folders, tmp_path / "sharded", num_shards=3, format=fmt, remove_shards=True,
                          **JOB)
    assert_same_folders(tmp_path / f"unsharded{suffix}", tmp_path / f"sharded{suffix}")
    assert not list((tmp_path / "shards").iterdir())


@pytest.mark.parametrize("can_rename", [True, False])
def test_consuming_gather_renames_each_first_piece_into_place(source, tmp_path, monkeypatch, can_rename):
    """remove_shards: a file's first piece is moved into place (copied where renames fail), the rest copied."""
    import sicore.sharding_recording

    source.save(folder=tmp_path / "unsharded", **JOB)
    folders = run_shards("save_recording", 3, tmp_path / "shards", recording=source, **JOB)
    plan = plan_shards(source, num_shards=3, **JOB)
    # (inode of the piece at frame 0 of each segment) -> segment; the move keeps the inode
    first = {(folders[s.index] / f"traces_seg{seg}.raw").stat().st_ino: seg
             for s in plan for seg, start, _ in s.ranges if start == 0}
    assert sorted(first.values()) == [0, 1]
    if not can_rename:
        def cross_device(*args, **kwargs):
            raise OSError(18, "Invalid cross-device link")

        monkeypatch.setattr(sicore.sharding_recording, "_move", cross_device)
    gather_save_recording(source, folders, tmp_path / "sharded", num_shards=3, remove_shards=True, n_jobs=2, **JOB)
    assert_same_folders(tmp_path / "unsharded", tmp_path / "sharded")
    inodes = {seg: (tmp_path / "sharded" / f"traces_cached_seg{seg}.raw").stat().st_ino for seg in range(2)}
    assert (sorted(first) == sorted(inodes.values())) is can_rename
    assert not list((tmp_path / "shards").iterdir())


def test_shards_of_a_plain_binary_source_defer_the_copy(tmp_path, monkeypatch):
    """A plain binary source saved with its own dtype: the shards write only their marker (nothing to compute)
    and the gather copies the source's bytes once in the kernel; the folder equals an unsharded save."""
    import sicore.sharding_recording

    rng = np.random.default_rng(3)
    files, lengths = [tmp_path / "seg0.raw", tmp_path / "seg1.raw"], (2500, 1700)
    traces = [rng.integers(-2000, 2000, size=(n, 5)).astype("int16") for n in lengths]
    for file, data in zip(files, traces):
        with open(file, "wb") as f:
            f.write(b"H" * 10)  # a header: file_offset
            f.write(data.tobytes())
    source = si.read_binary(files, sampling_frequency=FS, dtype="int16", num_channels=5, file_offset=10)
    source.save(folder=tmp_path / "unsharded", **JOB)

    def no_chunks(*args, **kwargs):
        raise AssertionError("a plain binary shard must not go chunk by chunk")

    monkeypatch.setattr(sicore.sharding_recording, "_executor", no_chunks)
    folders = run_shards("save_recording", 3, tmp_path / "shards", recording=source, **JOB)
    for folder in folders:  # no piece files: only the marker
        assert sorted(p.name for p in Path(folder).iterdir()) == ["shard.json"]
    gather_save_recording(source, folders, tmp_path / "sharded", num_shards=3, remove_shards=True, **JOB)
    assert_same_folders(tmp_path / "unsharded", tmp_path / "sharded")
    for segment, expected in enumerate(traces):  # the bytes themselves, read with numpy
        got = np.fromfile(tmp_path / "sharded" / f"traces_cached_seg{segment}.raw", dtype="int16").reshape(-1, 5)
        np.testing.assert_array_equal(got, expected)

    # shards of a plain source and of a cast one are not interchangeable: the gather names the mismatch
    monkeypatch.undo()  # the cast shards go chunk by chunk
    cast_folders = run_shards("save_recording", 3, tmp_path / "cast_shards", recording=source, dtype="int32", **JOB)
    with pytest.raises(ShardError, match="another plan or other inputs"):
        gather_save_recording(source, cast_folders, tmp_path / "mixed", num_shards=3, **JOB)

    # a source truncated after it was opened fails the shard that needs the missing bytes, naming the file
    with open(files[1], "r+b") as f:
        f.truncate(10 + 1000 * 5 * 2)
    with pytest.raises(ValueError, match="seg1.raw"):
        run_shards("save_recording", 3, tmp_path / "short_shards", recording=source, **JOB)


# ------------------------------------------------------------------------------------------ pieces layout
@pytest.fixture(scope="module")
def timeless_folder(tmp_path_factory):
    """The source's traces and metadata without the time vector: what the pieces layout can hold."""
    folder = tmp_path_factory.mktemp("timeless") / "rec"
    return folder, make_source(folder, "pieces test", with_times=False)


def raw_pieces(folder: Path, segment: int, num_channels: int, dtype) -> np.ndarray:
    """A segment's traces read with numpy from the pieces' raw files, in time order."""
    pieces = sorted((folder / "pieces").glob(f"seg{segment}_shard*"))
    return np.concatenate([np.fromfile(p / "traces_cached_seg0.raw", dtype=dtype).reshape(-1, num_channels)
                           for p in pieces])


@pytest.mark.parametrize("num_shards, dtype", [(3, None), (4, "float32"), (1, None)])
def test_pieces_layout_loads_as_the_saved_recording(timeless_folder, tmp_path, num_shards, dtype):
    folder, traces = timeless_folder
    source = si.load(folder)
    folders = run_shards("save_recording", num_shards, tmp_path / "shards", recording=source, dtype=dtype,
                         binary_layout="pieces", **JOB)
    saved = gather_save_recording(source, folders, tmp_path / "sharded", num_shards=num_shards, dtype=dtype,
                                  binary_layout="pieces", **JOB)
    expected = source.save(folder=tmp_path / "unsharded", dtype=dtype, **JOB)
    # the pieces hold the traces, end to end (read with numpy), and nothing else holds traces
    target = np.dtype(dtype or "int16")
    for segment, data in enumerate(traces):
        np.testing.assert_array_equal(raw_pieces(tmp_path / "sharded", segment, 6, target), data.astype(target))
    assert not list((tmp_path / "sharded").glob("*.raw"))
    # the probe is stored once, in the first piece (the joined recording takes it from there)
    assert [p.parent.name for p in (tmp_path / "sharded" / "pieces").glob("*/probegroup.json")] == ["seg0_shard000"]
    # the returned recording, and the folder moved elsewhere, are the same recording as an unsharded save
    checked = [saved]
    for loaded in checked:
        assert loaded.get_num_segments() == 2 and loaded.get_dtype() == target
        for segment in range(2):
            got = loaded.get_traces(segment_index=segment)
            assert got.tobytes() == expected.get_traces(segment_index=segment).tobytes()
            # reads across piece borders too
            np.testing.assert_array_equal(loaded.get_traces(segment_index=segment, start_frame=850, end_frame=2750),
                                          traces[segment][850:2750].astype(target))
            np.testing.assert_array_equal(loaded.get_times(segment), np.arange(LENGTHS[segment]) / FS)
        assert list(loaded.channel_ids) == list(expected.channel_ids)
        np.testing.assert_array_equal(loaded.get_channel_gains(), expected.get_channel_gains())
        np.testing.assert_array_equal(loaded.get_channel_offsets(), expected.get_channel_offsets())
        np.testing.assert_array_equal(loaded.get_channel_locations(), expected.get_channel_locations())
        assert loaded.get_annotation("name") == "pieces test"
        if len(checked) == 1:
            (tmp_path / "sharded").rename(tmp_path / "moved")
            checked.append(si.load(tmp_path / "moved"))


@pytest.mark.parametrize("remove_shards", [True, False])
def test_pieces_gather_moves_or_links_and_copies_nothing(timeless_folder, tmp_path, monkeypatch, remove_shards):
    import sicore.io.file_copy
    import sicore.sharding_recording

    def no_copy(*args, **kwargs):
        raise AssertionError("the pieces gather must not copy traces")

    monkeypatch.setattr(sicore.io.file_copy, "copy_range", no_copy)
    monkeypatch.setattr(sicore.sharding_recording.shutil, "copyfile", no_copy)
    source = si.load(timeless_folder[0])
    folders = run_shards("save_recording", 3, tmp_path / "shards", recording=source, binary_layout="pieces", **JOB)
    inodes = sorted(p.stat().st_ino for f in folders for p in Path(f).glob("*.raw"))
    gather_save_recording(source, folders, tmp_path / "sharded", num_shards=3, binary_layout="pieces",
                          remove_shards=remove_shards, **JOB)
    placed = sorted((tmp_path / "sharded" / "pieces").glob("*/*.raw"))
    assert sorted(p.stat().st_ino for p in placed) == inodes  # the shards' own files, moved or linked
    assert all(p.stat().st_nlink == (1 if remove_shards else 2) for p in placed)
    assert bool(list((tmp_path / "shards").iterdir())) is not remove_shards


def test_pieces_gather_copies_where_links_are_impossible(timeless_folder, tmp_path, monkeypatch):
    import sicore.sharding_recording

    def unsupported(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(sicore.sharding_recording, "_hard_link", unsupported)
    monkeypatch.setattr(sicore.sharding_recording, "_move", unsupported)
    source = si.load(timeless_folder[0])
    for remove_shards in (False, True):
        out = tmp_path / f"sharded{remove_shards}"
        folders = run_shards("save_recording", 3, tmp_path / f"shards{remove_shards}", recording=source,
                             binary_layout="pieces", **JOB)
        saved = gather_save_recording(source, folders, out, num_shards=3, binary_layout="pieces",
                                      remove_shards=remove_shards, **JOB)
        assert all(p.stat().st_nlink == 1 for p in (out / "pieces").glob("*/*.raw"))
        for segment, data in enumerate(timeless_folder[1]):
            np.testing.assert_array_equal(saved.get_traces(segment_index=segment), data)


def test_pieces_layout_of_a_plain_binary_source_copies_in_the_shards(tmp_path):
    """A byte copy (deferred to the gather by single_file) is done by the shards, each its own range."""
    rng = np.random.default_rng(5)
    file = tmp_path / "plain.raw"
    data = rng.integers(-2000, 2000, size=(4000, 5)).astype("int16")
    file.write_bytes(data.tobytes())
    source = si.read_binary(file, sampling_frequency=FS, dtype="int16", num_channels=5)
    folders = run_shards("save_recording", 3, tmp_path / "shards", recording=source, binary_layout="pieces", **JOB)
    assert sum(Path(f, "traces_seg0.raw").stat().st_size for f in folders) == data.nbytes
    gather_save_recording(source, folders, tmp_path / "sharded", num_shards=3, binary_layout="pieces", **JOB)
    np.testing.assert_array_equal(raw_pieces(tmp_path / "sharded", 0, 5, "int16"), data)
    np.testing.assert_array_equal(si.load(tmp_path / "sharded").get_traces(), data)


def test_pieces_layout_falls_back_for_times_and_checks_pieces(source, timeless_folder, tmp_path):
    # a time vector cannot be carried by the concatenation: the save is single_file, as unsharded
    with pytest.warns(UserWarning, match="saving as 'single_file'"):
        folders = run_shards("save_recording", 3, tmp_path / "shards", recording=source, binary_layout="pieces",
                             **JOB)
    with pytest.warns(UserWarning, match="saving as 'single_file'"):
        gather_save_recording(source, folders, tmp_path / "sharded", num_shards=3, binary_layout="pieces", **JOB)
    source.save(folder=tmp_path / "unsharded", **JOB)
    assert_same_folders(tmp_path / "unsharded", tmp_path / "sharded")

    with pytest.raises(ValueError, match="binary_layout must be one of"):
        shard_save_recording(source, tmp_path / "x", 0, num_shards=2, binary_layout="split", **JOB)
    # shards of the other layout are refused, and a short piece is named
    timeless = si.load(timeless_folder[0])
    single = run_shards("save_recording", 3, tmp_path / "single", recording=timeless, **JOB)
    with pytest.raises(ShardError, match="another plan or other inputs"):
        gather_save_recording(timeless, single, tmp_path / "mixed", num_shards=3, binary_layout="pieces", **JOB)
    folders = run_shards("save_recording", 3, tmp_path / "pieces", recording=timeless, binary_layout="pieces",
                         **JOB)
    with open(Path(folders[1]) / "traces_seg0.raw", "r+b") as f:
        f.truncate(100)
    with pytest.raises(ShardError, match=r"shard 1 of 3 .*traces_seg0.raw has 100 bytes"):
        gather_save_recording(timeless, folders, tmp_path / "short", num_shards=3, binary_layout="pieces", **JOB)
    assert not (tmp_path / "short").exists()


# ------------------------------------------------------------------------------------------ CLI
def test_cli_commands(source, sorting, tmp_path):
    parser = argparse.ArgumentParser(prog="sicore")
    add_shard_commands(parser.add_subparsers(dest="command", required=True))
    from numcodecs import Blosc

    src = source._kwargs["folder_path"]
    # codec names in --params are mapped as `sicore save-recording` maps them
    codecs = json.dumps({"format": "zarr", "compressor": "lz4", "compression_level": 3, "shuffle": "byte"})
    for i in range(2):
        args = parser.parse_args(["shard", "save-recording", "--recording", src, "--shard", str(i), "--num-shards",
                                  "2", "--shard-folder", str(tmp_path / f"s{i}"), "--chunk-size", "900",
                                  "--params", codecs, "--no-progress-bar"])
        assert args.func(args) == 0
    args = parser.parse_args(["gather", "save-recording", "--recording", src, "--num-shards", "2", "--shard-folders",
                              str(tmp_path / "s0"), str(tmp_path / "s1"), "--folder", str(tmp_path / "out"),
                              "--chunk-size", "900", "--params", codecs, "--remove-shards", "--n-jobs", "2"])
    assert args.func(args) == 0
    source.save(folder=tmp_path / "unsharded", format="zarr", compressor=Blosc(cname="lz4", clevel=3, shuffle=1),
                **JOB)
    assert_same_folders(tmp_path / "unsharded.zarr", tmp_path / "out.zarr")
    assert not (tmp_path / "s0").exists()

    analyzer = make_analyzer(source, sorting, tmp_path / "an")
    expected = analyzer.compute("noise_levels", **NOISE).data["noise_levels"]
    analyzer.delete_extension("noise_levels")
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps(NOISE))
    for i in range(3):
        args = parser.parse_args(["shard", "noise-levels", "--analyzer", str(tmp_path / "an"), "--shard", str(i),
                                  "--shard-duration", "0.4s", "--shard-folder", str(tmp_path / f"n{i}"),
                                  "--params", json.dumps(NOISE), "--n-jobs", "2"])
        args.func(args)
    args = parser.parse_args(["gather", "noise-levels", "--analyzer", str(tmp_path / "an"), "--shard-duration",
                              "0.4s", "--shard-folders", *[str(tmp_path / f"n{i}") for i in range(3)],
                              "--params", f"@{params_file}"])
    args.func(args)
    got = si.load_sorting_analyzer(tmp_path / "an").get_extension("noise_levels").data["noise_levels"]
    assert np.asarray(got).tobytes() == np.asarray(expected).tobytes()


def test_cli_binary_layout(timeless_folder, tmp_path):
    parser = argparse.ArgumentParser(prog="sicore")
    add_shard_commands(parser.add_subparsers(dest="command", required=True))
    folder, traces = timeless_folder
    common = ["--recording", str(folder), "--num-shards", "2", "--chunk-size", "900", "--binary-layout", "pieces",
              "--no-progress-bar"]
    for i in range(2):
        args = parser.parse_args(["shard", "save-recording", *common, "--shard", str(i),
                                  "--shard-folder", str(tmp_path / f"s{i}")])
        assert args.func(args) == 0
    args = parser.parse_args(["gather", "save-recording", *common, "--shard-folders", str(tmp_path / "s0"),
                              str(tmp_path / "s1"), "--folder", str(tmp_path / "out"), "--remove-shards"])
    assert args.func(args) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "pieces").iterdir()) == [
        "seg0_shard000", "seg0_shard001", "seg1_shard001"]
    for segment, data in enumerate(traces):
        np.testing.assert_array_equal(raw_pieces(tmp_path / "out", segment, 6, "int16"), data)
    with pytest.raises(SystemExit):
        parser.parse_args(["gather", "save-recording", *common[:-2], "--binary-layout", "split"])


# ------------------------------------------------------------------------------------------ SpikeInterface
_SI_SCRIPT = """
import numpy as np, spikeinterface.core as si
rec = si.load("rec_sharded")
an = si.load_sorting_analyzer("an")
out = {"traces0": rec.get_traces(segment_index=0), "traces1": rec.get_traces(segment_index=1),
       "times1": rec.get_times(1), "has_recording": np.array(an.has_recording())}
for name in ("noise_levels", "waveforms", "templates"):
    for key, value in an.get_extension(name).data.items():
        out[name + "::" + key] = np.asarray(value)
np.savez("dump.npz", **out)
"""

_SI_PIECES_SCRIPT = """
import numpy as np, spikeinterface.core as si
rec = si.load("pieces")
an = si.load_sorting_analyzer("an_pieces")
assert an.has_recording()
arec = an.recording
np.savez("pieces.npz", traces0=rec.get_traces(segment_index=0), traces1=rec.get_traces(segment_index=1),
         gains=rec.get_channel_gains(), offsets=rec.get_channel_offsets(), locations=rec.get_channel_locations(),
         ids=np.asarray(rec.channel_ids), an_traces1=arec.get_traces(segment_index=1, start_frame=800, end_frame=2000),
         segments=np.array(rec.get_num_segments()), name=np.array(rec.get_annotation("name")))
"""


def test_sharded_outputs_load_in_spikeinterface(source, sorting, tmp_path):
    from reference_env import run_reference

    folders = run_shards("save_recording", 3, tmp_path / "shards", recording=source, **JOB)
    saved = gather_save_recording(source, folders, tmp_path / "rec_sharded", num_shards=3, **JOB)
    make_analyzer(source, sorting, tmp_path / "an")
    params = {"noise_levels": NOISE, "waveforms": {}, "templates": {"operators": ["average", "std"]}}
    for name in ("noise_levels", "waveforms"):
        folders = run_shards(name, 4, tmp_path / name, analyzer=tmp_path / "an", params=params[name], **JOB)
        gather_analyzer_pass(name, tmp_path / "an", folders, num_shards=4, params=params[name], remove_shards=True,
                             **JOB)
        assert not list((tmp_path / name).iterdir())
    si.load_sorting_analyzer(tmp_path / "an").compute("templates")  # from the gathered waveforms
    run_reference(textwrap.dedent(_SI_SCRIPT), cwd=tmp_path)
    dump = np.load(tmp_path / "dump.npz")
    np.testing.assert_array_equal(dump["traces0"], saved.get_traces(segment_index=0))
    np.testing.assert_array_equal(dump["traces1"], saved.get_traces(segment_index=1))
    np.testing.assert_array_equal(dump["times1"], saved.get_times(1))
    assert bool(dump["has_recording"])
    analyzer = si.load_sorting_analyzer(tmp_path / "an")
    for name in ("noise_levels", "waveforms", "templates"):
        for key, value in analyzer.get_extension(name).data.items():
            np.testing.assert_array_equal(dump[f"{name}::{key}"], value)


def test_pieces_layout_loads_in_spikeinterface(timeless_folder, sorting, tmp_path):
    """SpikeInterface 0.105.3 loads a pieces folder (moved), and an analyzer on it, with the same traces."""
    from reference_env import run_reference

    folder, traces = timeless_folder
    source = si.load(folder)
    folders = run_shards("save_recording", 3, tmp_path / "shards", recording=source, binary_layout="pieces", **JOB)
    gather_save_recording(source, folders, tmp_path / "built", num_shards=3, binary_layout="pieces", **JOB)
    (tmp_path / "built").rename(tmp_path / "pieces")
    si.create_sorting_analyzer(sorting, si.load(tmp_path / "pieces"), format="binary_folder",
                               folder=tmp_path / "an_pieces", sparse=False, progress_bar=False)
    run_reference(textwrap.dedent(_SI_PIECES_SCRIPT), cwd=tmp_path)
    dump = np.load(tmp_path / "pieces.npz")
    expected = source.save(folder=tmp_path / "unsharded", **JOB)
    assert int(dump["segments"]) == 2 and str(dump["name"]) == "pieces test"
    for segment, data in enumerate(traces):
        np.testing.assert_array_equal(dump[f"traces{segment}"], data)
    np.testing.assert_array_equal(dump["an_traces1"], traces[1][800:2000])
    np.testing.assert_array_equal(dump["gains"], expected.get_channel_gains())
    np.testing.assert_array_equal(dump["offsets"], expected.get_channel_offsets())
    np.testing.assert_array_equal(dump["locations"], expected.get_channel_locations())
    assert dump["ids"].tolist() == list(expected.channel_ids)
