"""Sharded heavy passes (config `sharding`): N shard jobs + a gather per pass, identical to the unsharded run.

One Snakemake run processes five sessions of the same generated recording (two segments, so shards
cross a segment border): unsharded and sharded (``shards: 3``), each in binary and in zarr (the zarr
one sharded by ``shard_duration: 1s``, a per-session override; the binary one with
``binary_layout: single_file``), and binary sharded with the default ``binary_layout: pieces``. The
sharded sessions' outputs are compared with the unsharded ones as arrays and files read directly
(numpy, zarr, bytes):

* saved traces: every file of the saved recording byte for byte (binary raw file; zarr chunk files); for
  the pieces layout, the pieces' raw files end to end equal the unsharded raw file;
* noise_levels and waveforms: bit for bit;
* templates (from the recording, float32 µV): the gather adds the shards' float64 sums, a regrouping of
  the unsharded sums, so ``average`` is within 1 float32 ulp and ``std`` within 1 ulp + 1e-6 x max
  |average| (the tolerance the library states, sicore/sharding_analyzer.py).
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from conftest import REPO, TINY, snakemake, snakemake_command, snakemake_env, write_config

sys.path.insert(0, str(REPO / "workflow"))
from sicore_workflow import build_sessions  # noqa: E402

SOURCE = {**TINY, "durations": [2.0, 1.5]}  # 25 kHz: chunks of 1 s, shards across the segment border
# templates from the recording, so all four heavy passes run (and are sharded)
SETTINGS = {"templates": {"source": "random_spikes"}, "report": {"enabled": False}}
ZARR = {"save_recording": {"format": "zarr"}, "analyzer": {"format": "zarr"}}
SESSIONS = {
    "plain": {"recording": SOURCE},
    "sharded": {"recording": SOURCE, "overrides": {"sharding": {"shards": 3, "binary_layout": "single_file"}}},
    "shardedp": {"recording": SOURCE, "overrides": {"sharding": {"shards": 3}}},  # binary_layout: pieces
    "plainz": {"recording": SOURCE, "overrides": ZARR},
    "shardedz": {"recording": SOURCE, "overrides": {**ZARR, "sharding": {"shard_duration": "1s"}}},
}
PASSES = ("save_recording", "noise_levels", "templates", "waveforms")


def job_counts(output: str) -> dict[str, int]:
    """``{rule: jobs}`` from the "Job stats" table of a Snakemake (dry) run."""
    table = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def saved_files(folder: Path) -> dict[str, bytes]:
    """Every file of a saved recording folder (but Snakemake's timestamp), relative path -> bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".snakemake_timestamp"}


def extension_array(analyzer: Path, extension: str, name: str) -> np.ndarray:
    """An extension's array read directly: ``.npy`` in a binary_folder analyzer, a zarr array otherwise."""
    if analyzer.suffix == ".zarr":
        return zarr.open_group(str(analyzer), mode="r")["extensions"][extension][name][...]
    return np.load(analyzer / "extensions" / extension / f"{name}.npy")


def assert_same_analyzer_results(reference: Path, sharded: Path) -> None:
    for extension, name in (("random_spikes", "random_spikes_indices"), ("noise_levels", "noise_levels"),
                            ("waveforms", "waveforms")):
        expected, got = extension_array(reference, extension, name), extension_array(sharded, extension, name)
        assert got.dtype == expected.dtype and got.shape == expected.shape, f"{extension}/{name}"
        assert got.tobytes() == expected.tobytes(), f"{extension}/{name} differs"
    average, std = (extension_array(reference, "templates", name) for name in ("average", "std"))
    got_average, got_std = (extension_array(sharded, "templates", name) for name in ("average", "std"))
    assert got_average.dtype == average.dtype == np.float32 and got_average.shape == average.shape
    assert np.abs(average).max() > 1.0  # real templates, not zeros
    np.testing.assert_array_max_ulp(got_average, average, maxulp=1)
    tolerance = np.spacing(np.abs(std)) + 1e-6 * np.abs(average).max()
    assert np.all(np.abs(got_std.astype(np.float64) - std) <= tolerance)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    """The four sessions run once (two cores, every job single-threaded as on tiny data)."""
    folder = tmp_path_factory.mktemp("sharding") / "run"
    write_config(folder, SESSIONS, **SETTINGS)
    result = snakemake(folder, "--set-threads", "save_recording=1", "estimate_sparsity=1", "waveforms=1",
                       "gather_save_recording=1", cores=2)
    return folder, result.stdout


def test_each_sharded_pass_runs_as_shards_plus_a_gather(run):
    _, output = run
    counts = job_counts(output)
    # 3 shards for "sharded" and "shardedp"; 1 s shards of 3.5 s for "shardedz": 4
    for name in PASSES:
        assert counts[f"shard_{name}"] == 3 + 3 + 4, (name, counts)
        assert counts[f"gather_{name}"] == 3, (name, counts)
        assert counts.get(name, 0) == 2, (name, counts)  # the unsharded sessions' jobs
    assert "shard 002 of 003" in output and "shard 003 of 004" in output


def test_sharded_results_equal_the_unsharded_ones(run):
    folder, _ = run
    results = folder / "results"
    for plain, sharded, recording, analyzer in (("plain", "sharded", "recording", "analyzer"),
                                                ("plainz", "shardedz", "recording.zarr", "analyzer.zarr")):
        expected = saved_files(results / plain / recording)
        got = saved_files(results / sharded / recording)
        assert sorted(got) == sorted(expected), sharded
        for name in expected:
            assert got[name] == expected[name], f"{sharded}/{recording}/{name} differs"
        assert_same_analyzer_results(results / plain / analyzer, results / sharded / analyzer)
    # the pieces layout: the pieces' raw files end to end are the unsharded raw file, and the analyzer's
    # results are the same
    for segment in range(len(SOURCE["durations"])):
        pieces = sorted((results / "shardedp" / "recording" / "pieces").glob(f"seg{segment}_shard*"))
        assert len(pieces) >= 1
        joined = b"".join((piece / "traces_cached_seg0.raw").read_bytes() for piece in pieces)
        assert joined == (results / "plain" / "recording" / f"traces_cached_seg{segment}.raw").read_bytes()
    # 4 chunks of 1 s (2 + 2) in 3 shards: the third shard holds segment 1
    assert sorted(p.name for p in (results / "shardedp" / "recording" / "pieces").iterdir()) == \
        ["seg0_shard000", "seg0_shard001", "seg1_shard002"]
    assert_same_analyzer_results(results / "plain" / "analyzer", results / "shardedp" / "analyzer")

    # the saved traces against the source itself, read with numpy (int(duration x 25 kHz) frames x 8 channels)
    import sicore

    source = sicore.generate_ground_truth_recording(
        durations=SOURCE["durations"], num_channels=8, num_units=4, seed=2205, sampling_frequency=25000.0,
        generate_sorting_kwargs={"firing_rate": 15.0, "refractory_period": 4.0},
        noise_kwargs={"noise_levels": 5.0, "strategy": "on_the_fly"})[0]
    for segment, duration in enumerate(SOURCE["durations"]):
        raw = sorted((results / "sharded" / "recording").glob(f"traces_cached_seg{segment}.raw"))
        assert raw, "no raw file"
        traces = np.fromfile(raw[0], dtype=np.float32).reshape(int(duration * 25000), 8)
        np.testing.assert_array_equal(traces, source.get_traces(segment_index=segment))


def test_shard_folders_are_temporary_and_outside_the_outputs(run):
    folder, output = run
    for session in ("sharded", "shardedz"):
        assert not (folder / "results" / session / "shards").exists() or \
            not [p for p in (folder / "results" / session / "shards").rglob("*") if p.is_file()]
        extensions = folder / "results" / session / ("analyzer.zarr" if session.endswith("z") else "analyzer") \
            / "extensions"
        assert sorted(p.name for p in extensions.iterdir() if not p.name.startswith(".")) == \
            ["noise_levels", "random_spikes", "templates", "waveforms"]
    assert "Removing temporary output results/sharded/shards/analyzer/waveforms/shard-000-of-003" in output
    # every shard job has its own log and benchmark
    logs = folder / "results" / "sharded" / "logs"
    assert len(list((logs / "analyzer" / "waveforms").glob("shard-*-of-003.log"))) == 3
    assert (logs / "analyzer" / "waveforms.gather.log").is_file()
    # up to date afterwards, although the shards are gone
    assert "Nothing to be done" in snakemake(folder, "--dry-run").stdout


def test_dry_run_shows_the_shard_jobs_of_the_configured_passes(workdir):
    # default templates come from the waveforms (no trace reading): never sharded
    write_config(workdir, sharding={"shards": 5}, **{"report": {"enabled": False}})
    counts = job_counts(snakemake(workdir, "--dry-run").stdout)
    assert counts["shard_save_recording"] == counts["shard_waveforms"] == counts["shard_noise_levels"] == 5
    assert counts["gather_save_recording"] == counts["gather_waveforms"] == counts["gather_noise_levels"] == 1
    assert counts["templates"] == 1 and "shard_templates" not in counts and "save_recording" not in counts
    write_config(workdir, sharding={"shard_duration": "1.2s", "passes": ["waveforms"]}, **SETTINGS)
    counts = job_counts(snakemake(workdir, "--dry-run").stdout)  # TINY is 3 s long: ceil(3 / 1.2) = 3 shards
    assert counts == {"save_sorting": 1, "save_recording": 1, "estimate_sparsity": 1, "create_analyzer": 1,
                      "random_spikes": 1, "shard_waveforms": 3, "gather_waveforms": 1, "templates": 1,
                      "noise_levels": 1, "all": 1}


@pytest.mark.parametrize("layout, fmt, threads", [("pieces", "binary", 1), ("single_file", "binary", 2),
                                                  ("pieces", "zarr", 1)])
def test_save_gather_asks_for_threads_only_when_it_copies(workdir, layout, fmt, threads):
    write_config(workdir, sharding={"shards": 2, "binary_layout": layout}, save_recording={"format": fmt})
    result = snakemake(workdir, "--dry-run", "--printshellcmds", cores=4)
    lines = [line.split() for line in result.stdout.splitlines() if "gather save-recording" in line]
    assert lines and all(int(words[words.index("--n-jobs") + 1]) == threads for words in lines), result.stdout


def load(config: dict) -> dict:
    from snakemake.utils import validate

    raw = copy.deepcopy(config)
    validate(config, str(REPO / "config" / "schema.yaml"))
    return build_sessions(config, raw)


def test_sharding_settings_defaults_and_per_session_overrides():
    config = {"sessions": {"a": {"recording": dict(TINY)},
                           "b": {"recording": dict(TINY), "overrides": {"sharding": {"shards": 4}}},
                           "c": {"recording": dict(TINY), "overrides": {"sharding": {"passes": ["waveforms"]}}}},
              "sharding": {"shard_duration": "500ms"}}
    sessions = load(config)
    assert config["sharding"] == {"shards": None, "shard_duration": "500ms", "passes": list(PASSES),
                                  "binary_layout": "pieces"}
    a, b, c = sessions["a"], sessions["b"], sessions["c"]
    assert a.binary_layout == "pieces"
    assert a.num_shards("save_recording") == 6 and a.num_shards("waveforms") == 6  # 3 s / 0.5 s
    assert a.num_shards("templates") == 1  # from waveforms: not a heavy pass
    # a session's `shards` replaces the global `shard_duration`
    assert b.settings["sharding"]["shard_duration"] is None and b.num_shards("noise_levels") == 4
    assert c.num_shards("waveforms") == 6 and not c.sharded("save_recording")
    assert b.shard_folders("waveforms") == [f"results/b/shards/analyzer/waveforms/shard-{i:03d}-of-004"
                                            for i in range(4)]
    # off by default, and the unsharded params do not depend on sharding
    plain = load({"sessions": {"a": {"recording": dict(TINY)}}})["a"]
    assert not any(plain.sharded(name) for name in PASSES)
    assert all(plain.params_json(name) == a.params_json(name) for name in PASSES)
    for unit, seconds in (("2min", 120.0), ("1h", 3600.0), ("250ms", 0.25), (7, 7.0)):
        from sicore_workflow.settings import duration_seconds

        assert duration_seconds(unit) == seconds


def test_shard_resources_are_a_share_of_the_pass():
    from sicore_workflow import resources

    large = load({"sessions": {"l": {"recording": {**TINY, "durations": [3600.0], "num_channels": 384,
                                                    "num_units": 400}}}, "sharding": {"shards": 8},
                  "templates": {"source": "random_spikes"}})["l"]
    # waveforms: 400 units x 500 spikes x 75 samples x 384 channels x 4 bytes, an eighth per shard
    buffer = 400 * 500 * 75 * 384 * 4 / 1e6
    assert resources.mem_mb(large, "waveforms", 1) > buffer
    assert buffer / 8 < resources.shard_mem_mb(large, "waveforms", 8) - resources.BASE_MB < buffer / 4
    for operation in ("save_recording", "waveforms", "noise_levels", "templates"):
        whole = resources.runtime_min(large, operation, 1)
        assert resources.shard_runtime_min(large, operation, 8) <= max(resources.MIN_RUNTIME_MIN, whole // 8 + 1)
    assert resources.shard_runtime_min(large, "save_recording", 8, attempt=2) == \
        2 * resources.shard_runtime_min(large, "save_recording", 8)


@pytest.mark.parametrize("sharding, message", [
    ({"shards": 0}, "['sharding']['shards']"),
    ({"shards": "four"}, "['sharding']['shards']"),
    ({"shard_duration": "ten minutes"}, "['sharding']['shard_duration']"),
    ({"passes": ["report"]}, "['sharding']['passes']"),
    ({"binary_layout": "split"}, "['sharding']['binary_layout']"),
    ({"shard": 4}, "'shard' was unexpected"),
    ({"shards": 2, "shard_duration": "1s"}, "give either sharding.shards (2) or sharding.shard_duration ('1s')"),
])
def test_bad_sharding_values_name_the_key(sharding, message):
    with pytest.raises(Exception) as err:
        load({"sessions": {"s": {"recording": dict(TINY)}}, "sharding": sharding})
    assert message in str(err.value)


def test_sharding_config_errors_in_overrides_and_in_snakemake(workdir):
    with pytest.raises(ValueError, match=r"sessions\.s\.overrides\.sharding: give either sharding\.shards"):
        load({"sessions": {"s": {"recording": dict(TINY), "overrides": {
            "sharding": {"shards": 2, "shard_duration": "1s"}}}}})
    with pytest.raises(ValueError, match=r"sessions\.s: noise_levels\.seed is null, but sharding\.passes"):
        load({"sessions": {"s": {"recording": dict(TINY)}}, "sharding": {"shards": 2},
              "noise_levels": {"seed": None}})
    missing = {"type": "binary", "file_paths": "data/none.raw", "sampling_frequency": 30000.0, "num_channels": 4,
               "dtype": "int16"}
    with pytest.raises(ValueError, match=r"sessions\.s: sharding\.shard_duration: cannot read the length of "
                                         r"sessions\.s\.recording \(.*data/none\.raw"):
        load({"sessions": {"s": {"recording": missing, "sorting": {"type": "npz", "file_path": "x.npz"}}},
              "sharding": {"shard_duration": "10min"}})
    write_config(workdir, sharding={"shards": 2, "shard_duration": "1s"})
    result = snakemake(workdir, "--dry-run", check=False)
    assert result.returncode != 0 and "give either sharding.shards (2) or sharding.shard_duration" in result.stdout
    write_config(workdir, sharding={"shards": -1})
    result = snakemake(workdir, "--dry-run", check=False)
    assert result.returncode != 0 and "On instance['sharding']['shards']" in result.stdout


def test_killed_sharded_run_then_rerun_recomputes_cleanly(workdir, run):
    """SIGKILL of the whole workflow while shard jobs run; a stale temporary of a killed shard is planted."""
    write_config(workdir, {"sharded": SESSIONS["sharded"]}, **SETTINGS)
    shard_logs = workdir / "results" / "sharded" / "logs" / "analyzer" / "waveforms"
    with open(workdir / "killed.log", "w") as output:
        process = subprocess.Popen(snakemake_command(workdir, cores=2), stdout=output, stderr=subprocess.STDOUT,
                                   env=snakemake_env(), start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while not (shard_logs.is_dir() and any(shard_logs.iterdir())):
                assert process.poll() is None, (workdir / "killed.log").read_text()
                assert time.monotonic() < deadline, "no waveforms shard started"
                time.sleep(0.02)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert not (workdir / "results" / "sharded" / "analyzer" / "extensions" / "waveforms").exists()
    shards = workdir / "results" / "sharded" / "shards" / "analyzer" / "waveforms"
    shards.mkdir(parents=True, exist_ok=True)
    stale = shards / ".shard-002-of-003.sicore-tmp-killed"  # a shard not yet complete at the kill
    stale.mkdir()
    (stale / "waveforms.npy").write_bytes(b"partial")

    snakemake(workdir, "--unlock")
    rerun = snakemake(workdir, "--rerun-incomplete").stdout
    assert "gather_waveforms" in rerun
    assert not stale.exists(), "the shard's rerun removes its killed predecessor's temporary"
    assert "Nothing to be done" in snakemake(workdir, "--dry-run").stdout
    reference, _ = run
    assert_same_analyzer_results(reference / "results" / "plain" / "analyzer",
                                 workdir / "results" / "sharded" / "analyzer")
    assert saved_files(workdir / "results" / "sharded" / "recording") == \
        saved_files(reference / "results" / "plain" / "recording")
    info = json.loads((workdir / "results" / "sharded" / "analyzer" / "extensions" / "waveforms" /
                       "run_info.json").read_text())
    assert info["run_completed"] is True
