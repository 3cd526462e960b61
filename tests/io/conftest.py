"""Fixtures of the io tests: a recording carrying every kind of metadata, and the reference SpikeInterface."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from io_helpers import make_rich_recording

REFERENCE_SCRIPT = Path("/work/shared/tools/reference-venv.sh")


@pytest.fixture
def rich_traces():
    """Two int16 segments of 6 channels (raw arrays kept for independent checks)."""
    rng = np.random.default_rng(7)
    return [rng.integers(-3000, 3000, size=(2500, 6)).astype("int16"),
            rng.integers(-3000, 3000, size=(1300, 6)).astype("int16")]


@pytest.fixture(scope="session")
def reference_python():
    """The reference SpikeInterface 0.105.3 python (skips the test when it cannot be set up)."""
    try:
        result = subprocess.run(["bash", str(REFERENCE_SCRIPT)], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"SpikeInterface compatibility tests skipped: {REFERENCE_SCRIPT} failed ({err})")
    python = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0 or not Path(python).exists():
        pytest.skip(f"SpikeInterface compatibility tests skipped: {REFERENCE_SCRIPT} failed "
                    f"(exit {result.returncode}): {result.stderr[-500:]}")
    return python


@pytest.fixture
def rich_recording(rich_traces):
    return make_rich_recording(rich_traces)
