"""Helpers of the SLURM cluster tests (a module with its own name: every conftest.py is "conftest")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "slurm_cluster.sh"
SLURM_PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")
PLUGIN = "snakemake-executor-plugin-slurm"
# The scripts's record of every finished job (jobcomp/filetxt), see .ci/slurm_cluster.sh.
JOBCOMP_LOG = Path(os.environ.get("SLURM_CI_JOBCOMP", "/var/log/slurm/jobcomp.log"))
PARTITION = "debug"
# The cluster is one per machine: concurrent test sessions take turns (the later one waits).
LOCK_FILE = Path("/run/lock/sicore-slurm-cluster.lock")
LOCK_WAIT = 1200  # seconds
# wall-clock seconds of the phases, printed at the end of the pytest run (conftest.py)
TIMINGS: dict[str, float] = {}


def skip_or_fail(reason: str):
    """Skip with ``reason``, or fail when CI requires the cluster tests to run."""
    if os.environ.get("SICORE_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"SICORE_REQUIRE_CLUSTER=1 but the SLURM cluster tests cannot run: {reason}")
    pytest.skip(reason)


def _packages_installed() -> bool:
    if not shutil.which("dpkg-query"):
        return False
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Status}\n", *SLURM_PACKAGES], capture_output=True,
                         text=True).stdout
    return out.count("install ok installed") == len(SLURM_PACKAGES)


def why_not_runnable() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the SLURM cluster tests need Linux"
    if os.geteuid() != 0:
        return ("the SLURM cluster tests need root (they install Debian's slurm packages and start "
                "munged/slurmctld/slurmd); run as root, or deselect with -m 'not cluster'")
    if not _packages_installed() and not shutil.which("apt-get"):
        return "the SLURM packages are not installed and there is no apt-get to install them"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and "written by sicore .ci/slurm_cluster.sh" not in conf.read_text(errors="replace"):
        return f"{conf} belongs to a real SLURM installation; the tests do not replace it"
    return None


def run_script(action: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=timeout)


def snakemake_env(**extra: str) -> dict:
    """Environment for a snakemake run: this venv's bin first on PATH, since SLURM jobs inherit PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SNAKEMAKE_PROFILE", None)
    env.update(extra)
    return env


def read_jobcomp() -> dict[str, dict[str, str]]:
    """Finished SLURM jobs by id, each a dict of the jobcomp/filetxt fields (JobState, Tres, WorkDir...)."""
    jobs = {}
    if JOBCOMP_LOG.exists():
        for line in JOBCOMP_LOG.read_text(errors="replace").splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            if "JobId" in fields:
                jobs[fields["JobId"]] = fields
    return jobs
