"""The reference SpikeInterface 0.105.3 environment, for compatibility tests run as subprocesses.

It needs zarr 2, so it lives in its own virtual environment (created once, then reused). sicore never
imports SpikeInterface; tests call ``run_reference(script)`` to execute code in that environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import pytest

PINS = ["spikeinterface==0.105.3", "zarr>=2.18,<3", "numcodecs<0.16", "probeinterface", "tqdm"]


def reference_python() -> str:
    """Path of the reference environment's python, creating the environment if needed.

    ``SI_REFERENCE_VENV`` overrides its location (default: ``$TMPDIR/spikeinterface-0.105.3``).
    Skips the calling test with the reason when the environment cannot be created.
    """
    dest = Path(os.environ.get("SI_REFERENCE_VENV", Path(tempfile.gettempdir()) / "spikeinterface-0.105.3"))
    python = dest / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import spikeinterface"],
                                          capture_output=True).returncode == 0:
        return str(python)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(dest)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True, capture_output=True,
                       timeout=900)
    except (subprocess.SubprocessError, OSError) as err:
        if os.environ.get("SICORE_REQUIRE_REFERENCE"):
            raise
        pytest.skip(f"reference SpikeInterface environment unavailable: {err}")
    return str(python)


def run_reference(script: str, cwd: str | Path, timeout: float = 600) -> str:
    """Run ``script`` with the reference python in ``cwd``; returns stdout, fails the test on error."""
    result = subprocess.run([reference_python(), "-c", script], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"reference SpikeInterface script failed:\n{result.stderr[-4000:]}")
    return result.stdout


if __name__ == "__main__":
    sys.stdout.write(reference_python() + "\n")
