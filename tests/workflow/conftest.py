"""Helpers of the workflow tests: run the real Snakemake workflow (a subprocess) in a temporary folder."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "workflow" / "Snakefile"
BIN = Path(sys.executable).parent
EXTENSIONS = ("random_spikes", "waveforms", "templates", "noise_levels")

# tiny generated data: every job takes about a second, most of it starting Python
TINY = {"type": "generated", "durations": [3.0], "num_channels": 8, "num_units": 4, "seed": 2205}
# on tiny data one process per job is fastest, and it lets independent jobs run side by side
ONE_THREAD = ("--set-threads", "save_recording=1", "estimate_sparsity=1", "waveforms=1", "templates=1")
NO_REPORT = {"report": {"enabled": False}}


def snakemake_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def snakemake_command(workdir: Path, *args, cores: int = 2) -> list[str]:
    """Run the workflow in ``workdir`` on its ``config.yaml`` (no profile, so every option is explicit)."""
    return [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
            "--configfile", str(workdir / "config.yaml"), "--workflow-profile", "none", "--cores", str(cores),
            *map(str, args)]


def snakemake(workdir: Path, *args, cores: int = 2, check: bool = True, timeout: float = 300
              ) -> subprocess.CompletedProcess:
    """Run snakemake (see ``snakemake_command``); ``stdout`` holds stdout and stderr, in order."""
    result = subprocess.run(snakemake_command(workdir, *args, cores=cores), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=timeout, env=snakemake_env())
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}")
    return result


def write_config(workdir: Path, sessions: dict | None = None, **sections) -> dict:
    """Write ``workdir/config.yaml``: the sessions (default: one tiny generated session 's') and sections."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {"sessions": copy.deepcopy(sessions) if sessions else {"s": {"recording": dict(TINY)}}}
    config.update(copy.deepcopy(sections))
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def summary(workdir: Path, *args) -> dict[str, tuple[str, str]]:
    """``snakemake --dry-run --summary``: {output path: (status, plan)}."""
    result = snakemake(workdir, "--dry-run", "--summary", *args)
    rows = {}
    for line in result.stdout.splitlines():
        fields = line.split("\t")
        if len(fields) == 6 and fields[0] != "output_file":
            rows[fields[0]] = (fields[4], fields[5])
    assert rows, result.stdout
    return rows


def pending(rows: dict) -> set[str]:
    """The outputs a summary plans to update."""
    return {path for path, (_, plan) in rows.items() if plan == "update pending"}


def stamps(workdir: Path, session: str = "s", analyzer: str = "analyzer") -> dict[str, int | None]:
    """When Snakemake last completed each extension folder (its ``.snakemake_timestamp``), None if absent."""
    result = {}
    for name in EXTENSIONS:
        stamp = workdir / "results" / session / analyzer / "extensions" / name / ".snakemake_timestamp"
        result[name] = stamp.stat().st_mtime_ns if stamp.exists() else None
    return result


def extension_arrays(folder: Path) -> dict:
    """{extension: {key: array}} of every extension of a saved analyzer, and its params."""
    import numpy as np

    import sicore

    analyzer = sicore.load_sorting_analyzer(folder)
    arrays = {}
    for name in analyzer.get_loaded_extension_names():
        extension = analyzer.get_extension(name)
        arrays[name] = {key: np.asarray(value) for key, value in extension.data.items()}
        arrays[name]["params"] = extension.params
    return arrays


def assert_same_extensions(a: dict, b: dict) -> None:
    import numpy as np

    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name]["params"] == b[name]["params"], name
        for key in a[name]:
            if key != "params":
                np.testing.assert_array_equal(a[name][key], b[name][key], err_msg=f"{name}/{key}")


@pytest.fixture
def workdir(tmp_path):
    return tmp_path / "run"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A completed sequential run (one core) of one tiny session (binary_folder analyzer, no report).

    Copy it with ``copy_run`` to change it.
    """
    folder = tmp_path_factory.mktemp("tiny") / "run"
    write_config(folder, **NO_REPORT)
    snakemake(folder, *ONE_THREAD, cores=1)
    return folder


def copy_run(source: Path, target: Path) -> Path:
    """A copy of a run folder with its Snakemake metadata and file times (so it is up to date)."""
    shutil.copytree(source, target, symlinks=True, copy_function=shutil.copy2)
    return target
