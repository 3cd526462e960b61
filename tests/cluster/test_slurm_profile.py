"""profiles/slurm as Snakemake reads it (no cluster needed): run from the repository root, where
Snakemake also applies the workflow profile profiles/default on top of it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from slurm_helpers import REPO, snakemake_env

PARSE = """
import json, sys
from snakemake.cli import parse_args
_, args = parse_args(sys.argv[1:])
print(json.dumps({"executor": args.executor, "jobs": args.jobs, "local_cores": args.local_cores,
                  "retries": args.retries, "latency_wait": args.latency_wait,
                  "max_status_checks_per_second": args.max_status_checks_per_second,
                  "init_seconds": args.slurm_init_seconds_before_status_checks,
                  "rerun_incomplete": args.rerun_incomplete, "keep_going": args.keep_going,
                  "default_resources": args.default_resources.args}))
"""


def effective_settings(**env) -> dict:
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (it is in the `test` extra)")
    out = subprocess.run([sys.executable, "-c", PARSE, "--profile", "profiles/slurm", "--dry-run"], cwd=REPO,
                         env=snakemake_env(**env), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_profile_settings_survive_the_default_workflow_profile():
    settings = effective_settings()
    assert settings["executor"] == "slurm"
    assert settings["retries"] == 2 and settings["rerun_incomplete"] and settings["keep_going"]
    # a shared file system's latency: must not be lowered by profiles/default
    assert settings["latency_wait"] == 60, "profiles/default overrides profiles/slurm's latency-wait"
    assert (settings["jobs"], settings["local_cores"], settings["init_seconds"]) == (100, 1, 20)
    assert settings["max_status_checks_per_second"] == 1


def test_partition_and_account_come_from_the_environment():
    resources = effective_settings(SICORE_SLURM_PARTITION="bigmem", SICORE_SLURM_ACCOUNT="lab-42")["default_resources"]
    assert "slurm_partition='bigmem'" in resources and "slurm_account='lab-42'" in resources
    resources = effective_settings(SICORE_SLURM_PARTITION="", SICORE_SLURM_ACCOUNT="")["default_resources"]
    # empty: the plugin falls back to the cluster's default partition and guesses the account
    assert "slurm_partition=''" in resources and "slurm_account=''" in resources
    assert "runtime=60" in resources
    assert any(item.startswith("mem_mb=") and "attempt" in item for item in resources)


def test_without_root_the_cluster_tests_skip_with_the_reason_unless_required(monkeypatch):
    import slurm_helpers

    monkeypatch.setattr(slurm_helpers.os, "geteuid", lambda: 1000)
    reason = slurm_helpers.why_not_runnable()
    assert reason and "need root" in reason and "-m 'not cluster'" in reason
    monkeypatch.delenv("SICORE_REQUIRE_CLUSTER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="need root"):
        slurm_helpers.skip_or_fail(reason)
    monkeypatch.setenv("SICORE_REQUIRE_CLUSTER", "1")
    with pytest.raises(pytest.fail.Exception, match="SICORE_REQUIRE_CLUSTER=1 but"):
        slurm_helpers.skip_or_fail(reason)
