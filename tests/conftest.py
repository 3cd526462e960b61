"""Shared fixtures: small in-memory objects whose raw arrays the tests keep for independent checks."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def traces_list(rng):
    """Two segments of int16 traces, 8 channels."""
    return [
        rng.integers(-2000, 2000, size=(3000, 8)).astype("int16"),
        rng.integers(-2000, 2000, size=(1700, 8)).astype("int16"),
    ]


@pytest.fixture
def recording(traces_list):
    from sicore.numpy_objects import NumpyRecording

    rec = NumpyRecording(traces_list, sampling_frequency=30000.0, channel_ids=[f"ch{i}" for i in range(8)])
    rec.set_property("gain_to_uV", np.linspace(0.1, 0.8, 8))
    rec.set_property("offset_to_uV", np.arange(8, dtype=float) - 4)
    return rec
