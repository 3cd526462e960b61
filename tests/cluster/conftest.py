"""A real single-node SLURM cluster for the tests in this folder (started by .ci/slurm_cluster.sh).

The tests need root (the script installs Debian's slurm packages and starts munged, slurmctld and
slurmd). Elsewhere they skip with the reason; ``SICORE_REQUIRE_CLUSTER=1`` (set by .ci/run) turns
every such skip into a failure. They carry the ``cluster`` marker: deselect them with ``-m "not cluster"``.
"""

from __future__ import annotations

import fcntl
import importlib.util
import subprocess
import sys
import time

import pytest

from slurm_helpers import (JOBCOMP_LOG, LOCK_FILE, LOCK_WAIT, PARTITION, PLUGIN, SCRIPT, TIMINGS, run_script,
                           skip_or_fail, why_not_runnable)


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: runs on a real single-node SLURM cluster "
                            "(needs root and apt; .ci/slurm_cluster.sh)")


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_sep("-", "SLURM cluster tests: wall-clock seconds")
        terminalreporter.write_line(", ".join(f"{phase}: {seconds:.0f}" for phase, seconds in TIMINGS.items()))


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running cluster (started here unless it already ran; stopped again at the end of the session)."""
    reason = why_not_runnable()
    if reason:
        skip_or_fail(reason)
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as lock:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test session held the SLURM cluster ({LOCK_FILE}) for {LOCK_WAIT} s")
                time.sleep(2)
        TIMINGS["waiting for the cluster lock"] = time.monotonic() - deadline + LOCK_WAIT
        t0 = time.monotonic()
        was_running = run_script("status", 60).returncode == 0
        try:
            if not was_running:
                started = run_script("start", 600)
                if started.returncode == 2:
                    skip_or_fail(f"{SCRIPT.name} start: {started.stderr.strip()}")
                assert started.returncode == 0, f"{SCRIPT.name} start failed:\n{started.stdout}\n{started.stderr}"
            TIMINGS["cluster start" + ("" if not was_running else " (was running)")] = time.monotonic() - t0
            yield {"partition": PARTITION, "start_seconds": time.monotonic() - t0, "jobcomp": JOBCOMP_LOG}
        finally:
            if not was_running:  # a cluster someone else started keeps running
                t0 = time.monotonic()
                stopped = run_script("stop", 120)
                TIMINGS["cluster stop"] = time.monotonic() - t0
                assert stopped.returncode == 0, f"{SCRIPT.name} stop failed:\n{stopped.stdout}\n{stopped.stderr}"


@pytest.fixture(scope="session")
def slurm_plugin(slurm_cluster):
    """Make sure the executor plugin is importable by this interpreter (it is in the ``test`` extra)."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", PLUGIN], check=True, timeout=600)
    return PLUGIN


