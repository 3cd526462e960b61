"""The workflow on a real SLURM cluster (profiles/slurm) gives exactly what a local run gives, sharded or not.

A session fixture (conftest.py) starts a single-node cluster with .ci/slurm_cluster.sh. That cluster
has no accounting database, so the runs add ``--slurm-status-command squeue``. Two records outside
Snakemake show that each rule ran as a SLURM job: slurmctld's job table (``squeue -t all``; finished
jobs stay in it for MinJobAge=300 s; each job's comment names its rule) and jobcomp/filetxt's log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from slurm_helpers import REPO, TIMINGS, read_jobcomp, snakemake_env

pytestmark = pytest.mark.cluster

PROFILE = REPO / "profiles" / "slurm"
SNAKEFILE = REPO / "workflow" / "Snakefile"
CONFIG = REPO / "config" / "config.yaml"
RUN_TIMEOUT = 420  # seconds for one whole workflow run: a hanging cluster must not hang CI

# Where the CI cluster differs from a real site: no slurmdbd (status via squeue), short jobs (first
# status query 3 s after a submission instead of 20 s), 2 CPUs (rules asking for more get 2).
CLUSTER_ARGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "3",
                "--slurm-keep-successful-logs", "--max-threads", str(os.cpu_count() or 1)]

SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.", re.M)
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", re.M)
LOCALRULE = re.compile(r"^localrule (\w+):", re.M)
FAILED_JOB_LOG = re.compile(r"^Logfile .*:\n={40,}\n.*?^={40,}\n", re.M | re.S)  # --show-failed-logs


def snakemake(args, cwd: Path, env: dict, timeout: float = RUN_TIMEOUT, phase: str = "") -> str:
    """Run snakemake in ``cwd``; returns its output (also kept in ``cwd/snakemake.out``)."""
    cmd = ["timeout", "-k", "10", str(timeout), sys.executable, "-m", "snakemake", *map(str, args)]
    t0 = time.monotonic()
    result = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if phase:
        TIMINGS[phase] = time.monotonic() - t0
    (cwd / "snakemake.out").write_text(result.stdout)
    if result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(map(str, args))} exited with {result.returncode} "
                             f"(124: timed out after {timeout} s); output ends with:\n{result.stdout[-6000:]}")
    return result.stdout


def parse_run(log: str):
    """What the main Snakemake process did: ({jobid: rule} of finished jobs, {jobid: [SLURM job ids]}
    in submission order (a retried job is submitted again), names of the rules run locally)."""
    log = FAILED_JOB_LOG.sub("", log)  # a failed job's log holds the job's own inner Snakemake run
    finished = dict(FINISHED.findall(log))
    submissions: dict[str, list[str]] = {}
    for jobid, slurm_id, _ in SUBMITTED.findall(log):
        submissions.setdefault(jobid, []).append(slurm_id)
    return finished, submissions, set(LOCALRULE.findall(log))


def threads_passed(log: str) -> dict[str, str]:
    """{jobid: N} for the jobs whose shell command has ``--n-jobs N`` (the rules pass their threads)."""
    found = {}
    for block in re.split(r"^(?=Job \d+: )", FAILED_JOB_LOG.sub("", log), flags=re.M):
        match = re.match(r"Job (\d+): (?:.*\n)*?Shell command: (.*)", block)
        if match and (n := re.search(r" --n-jobs (\d+)", match.group(2))):
            found[match.group(1)] = n.group(1)
    return found


def slurm_job_table() -> dict[str, dict[str, str]]:
    """slurmctld's view of every job it still remembers (finished ones for MinJobAge)."""
    fields = ("id", "comment", "state", "partition", "cpus", "memory", "time_limit", "workdir")
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%k|%T|%P|%C|%m|%l|%Z"], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return {row["id"]: row for row in (dict(zip(fields, line.split("|"))) for line in out.splitlines())}


# -------------------------------------------------------------------------------- the default workflow
@pytest.fixture(scope="module")
def runs(slurm_cluster, slurm_plugin, tmp_path_factory):
    """The default workflow run through SLURM with profiles/slurm, and run locally with 2 cores."""
    cluster_dir, local_dir = tmp_path_factory.mktemp("slurm_run"), tmp_path_factory.mktemp("local_run")
    workflow = ["--snakefile", SNAKEFILE, "--configfile", CONFIG]
    cluster_env = snakemake_env(SICORE_SLURM_PARTITION=slurm_cluster["partition"])
    cluster_log = snakemake([*workflow, "--profile", PROFILE, *CLUSTER_ARGS], cluster_dir, cluster_env,
                            phase="workflow on SLURM")
    table = slurm_job_table()  # right away: finished jobs leave it after MinJobAge (300 s)
    local_log = snakemake([*workflow, "--cores", "2"], local_dir, snakemake_env(), phase="workflow locally")
    return {"cluster_dir": cluster_dir, "cluster_log": cluster_log, "slurm_table": table,
            "local_dir": local_dir, "local_log": local_log, "partition": slurm_cluster["partition"]}


def test_every_rule_ran_as_a_slurm_job(runs):
    finished, submissions, local_rules = parse_run(runs["cluster_log"])
    local_finished, _, _ = parse_run(runs["local_log"])
    assert sorted(finished.values()) == sorted(local_finished.values()), "the two runs ran different jobs"
    # only the aggregating target (no action) runs on the submit host
    assert local_rules == {"all"}, f"rules run outside SLURM: {local_rules}"
    table, jobcomp = runs["slurm_table"], read_jobcomp()
    cluster_dir = str(runs["cluster_dir"])
    n_jobs = threads_passed(runs["cluster_log"])
    checked = set()
    for jobid, rule in finished.items():
        if rule in local_rules:
            assert jobid not in submissions
            continue
        assert len(submissions.get(jobid, [])) == 1, (
            f"job {jobid} ({rule}): expected one SLURM submission, got {submissions.get(jobid)} "
            f"(a retry means the rule's memory or time estimate was too small)")
        (slurm_id,) = submissions[jobid]
        job = table.get(slurm_id)
        assert job is not None, f"SLURM job {slurm_id} ({rule}) is not known to slurmctld: {sorted(table)}"
        assert job["comment"].startswith(f"rule_{rule}"), job
        assert (job["state"], job["partition"], job["workdir"]) == ("COMPLETED", runs["partition"], cluster_dir), job
        assert job["time_limit"] not in ("UNLIMITED", "INVALID") and job["memory"].endswith("M"), job
        if jobid in n_jobs:  # the rule passes `--n-jobs {threads}`: SLURM allocated that many CPUs
            assert job["cpus"] == n_jobs[jobid], (rule, job, n_jobs[jobid])
        record = jobcomp.get(slurm_id)
        assert record is not None and (record["JobState"], record["WorkDir"]) == ("COMPLETED", cluster_dir), record
        # the job's own log: Snakemake ran the rule inside the allocation, on the cluster's node
        job_log = Path(re.search(rf"SLURM jobid {slurm_id} \(log: (\S+)\)\.", runs["cluster_log"]).group(1))
        assert f"Finished jobid: 0 (Rule: {rule})" in job_log.read_text()
        checked.add(rule)
    assert checked == set(finished.values()) - local_rules and len(checked) >= 5, checked


# files that legitimately differ between two runs: timings and logs
VOLATILE = re.compile(r"(^|/)(logs|benchmarks)/|(^|/)run_info\.json$")


def test_results_identical_to_a_local_run(runs):
    cluster, local = runs["cluster_dir"] / "results", runs["local_dir"] / "results"
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(cluster)) for p in cluster.rglob("*") if p.is_file())
    compared = [name for name in files if not VOLATILE.search(name)]
    assert any(name.endswith(".npy") for name in compared)
    for name in compared:
        a, b = (local / name).read_bytes(), (cluster / name).read_bytes()
        if name.endswith((".json", ".html", ".csv")):  # the report names the absolute analyzer folder
            a = a.replace(str(runs["local_dir"]).encode(), b"WORKDIR")
            b = b.replace(str(runs["cluster_dir"]).encode(), b"WORKDIR")
        assert a == b, f"results/{name} differs between the local and the SLURM run"

    # and through the library: recordings, sortings and every extension's arrays
    import sicore as si

    analyzers = sorted(p.parent for p in local.glob("*/*/extensions"))
    assert analyzers, "no analyzer in the results"
    for folder in analyzers:
        session = folder.parent.name
        mine, theirs = (si.load_sorting_analyzer(root / session / folder.name) for root in (local, cluster))
        assert mine.get_saved_extension_names() == theirs.get_saved_extension_names()
        assert {"random_spikes", "waveforms", "templates", "noise_levels"} <= set(mine.get_saved_extension_names())
        for name in mine.get_saved_extension_names():
            ext_a, ext_b = mine.get_extension(name), theirs.get_extension(name)
            assert json.dumps(ext_a.params, sort_keys=True, default=str) == json.dumps(ext_b.params, sort_keys=True,
                                                                                       default=str), name
            assert sorted(ext_a.data) == sorted(ext_b.data), name
            for key in ext_a.data:
                np.testing.assert_array_equal(np.asarray(ext_a.data[key]), np.asarray(ext_b.data[key]),
                                              err_msg=f"{session}: {name}.{key}")
        np.testing.assert_array_equal(mine.sorting.to_spike_vector(), theirs.sorting.to_spike_vector())
        if mine.is_sparse():
            np.testing.assert_array_equal(mine.sparsity_mask, theirs.sparsity_mask)
        for kind in ("recording", "recording.zarr", "sorting"):
            if (local / session / kind).exists():
                a, b = si.load_extractor(local / session / kind), si.load_extractor(cluster / session / kind)
                if kind == "sorting":
                    np.testing.assert_array_equal(a.to_spike_vector(), b.to_spike_vector())
                    np.testing.assert_array_equal(a.unit_ids, b.unit_ids)
                else:
                    for segment in range(a.get_num_segments()):
                        np.testing.assert_array_equal(a.get_traces(segment_index=segment),
                                                      b.get_traces(segment_index=segment))
                    np.testing.assert_array_equal(a.get_channel_locations(), b.get_channel_locations())


# ------------------------------------------------------------------------------------- OOM retry
OOM_SNAKEFILE = """
rule all:
    input: "big.txt"

rule big:
    output: "big.txt"
    resources:
        mem_mb=lambda wildcards, attempt: 500 * attempt,
        runtime=5,
    shell:
        "python -c 'import time; block = bytearray(700 * 2**20); time.sleep(4)' && "
        "echo mem_mb={resources.mem_mb} job=$SLURM_JOB_ID > {output}"
"""


def test_out_of_memory_is_retried_with_more_memory(slurm_cluster, slurm_plugin, tmp_path):
    """The profile's retries with ``mem_mb = base * attempt``: a job over its --mem is killed by SLURM,
    resubmitted with twice the memory, and then succeeds."""
    (tmp_path / "Snakefile").write_text(OOM_SNAKEFILE)
    log = snakemake(["--profile", PROFILE, *CLUSTER_ARGS], tmp_path,
                    snakemake_env(SICORE_SLURM_PARTITION=slurm_cluster["partition"]), timeout=300,
                    phase="out-of-memory retry on SLURM")
    finished, submissions, _ = parse_run(log)
    (big_jobid,) = [jobid for jobid, rule in finished.items() if rule == "big"]
    slurm_ids = submissions[big_jobid]
    assert len(slurm_ids) == 2, f"expected one failed and one retried SLURM job, got {slurm_ids}:\n{log}"
    done = read_jobcomp()
    first, second = done[slurm_ids[0]], done[slurm_ids[1]]
    assert first["JobState"] in ("FAILED", "OUT_OF_MEMORY"), first
    assert "mem=500M" in first["Tres"] and "mem=1000M" in second["Tres"], (first["Tres"], second["Tres"])
    assert second["JobState"] == "COMPLETED" and second["Partition"] == slurm_cluster["partition"]
    assert (tmp_path / "big.txt").read_text().split() == ["mem_mb=1000", f"job={slurm_ids[1]}"]


# ------------------------------------------------------------------------------ sharded passes on SLURM
SHARDS = 2


@pytest.fixture(scope="module")
def sharded_run(runs, tmp_path_factory):
    """The default workflow with ``sharding: {shards: 2}`` through SLURM: each shard is its own sbatch job."""
    folder = tmp_path_factory.mktemp("slurm_sharded")
    config = yaml.safe_load(CONFIG.read_text())
    config["sharding"]["shards"] = SHARDS
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = snakemake_env(SICORE_SLURM_PARTITION=runs["partition"])
    log = snakemake(["--snakefile", SNAKEFILE, "--configfile", folder / "config.yaml", "--profile", PROFILE,
                     *CLUSTER_ARGS], folder, env, phase="sharded workflow on SLURM")
    return {"dir": folder, "log": log, "slurm_table": slurm_job_table()}


def test_shards_ran_as_separate_slurm_jobs(sharded_run):
    finished, submissions, local_rules = parse_run(sharded_run["log"])
    assert local_rules == {"all"}, f"rules run outside SLURM: {local_rules}"
    rules = sorted(finished.values())
    # the default config shards save_recording, noise_levels and waveforms (templates come from waveforms)
    for pass_name in ("save_recording", "noise_levels", "waveforms"):
        assert rules.count(f"shard_{pass_name}") == SHARDS and rules.count(f"gather_{pass_name}") == 1, rules
        assert pass_name not in rules, rules
    slurm_ids = set()
    for jobid, rule in finished.items():
        if rule == "all":
            continue
        (slurm_id,) = submissions[jobid]
        job = sharded_run["slurm_table"][slurm_id]
        assert job["comment"].startswith(f"rule_{rule}") and job["state"] == "COMPLETED", job
        slurm_ids.add(slurm_id)
    assert len(slurm_ids) == len(finished) - 1  # every job its own allocation
    # the shard folders were temporary: consumed by the gathers
    assert not list((sharded_run["dir"] / "results").glob("*/shards/*/*/shard-*"))


def test_sharded_results_identical_to_the_unsharded_local_run(runs, sharded_run):
    local, sharded = runs["local_dir"] / "results", sharded_run["dir"] / "results"
    compared = 0
    for path in sorted(local.rglob("*")):
        name = str(path.relative_to(local))
        if not path.is_file() or VOLATILE.search(name) or "/report/" in f"/{name}":
            continue
        if "/recording/" in f"/{name}":
            continue  # the sharded save keeps its pieces (binary_layout: pieces): compared below
        if name.endswith((".raw", ".npy", ".npz")):
            assert (sharded / name).read_bytes() == path.read_bytes(), f"results/{name} differs"
            compared += 1
    assert compared >= 8, compared
    # the saved traces: the pieces' raw files end to end are the local run's raw file, byte for byte
    for raw in sorted(local.glob("*/recording/traces_cached_seg*.raw")):
        session, segment = raw.parent.parent.name, raw.name[len("traces_cached_seg"):-len(".raw")]
        pieces = sorted((sharded / session / "recording" / "pieces").glob(f"seg{segment}_shard*"))
        assert len(pieces) == SHARDS, pieces
        joined = b"".join((piece / "traces_cached_seg0.raw").read_bytes() for piece in pieces)
        assert joined == raw.read_bytes(), f"{session} segment {segment}: the pieces differ from the local save"
