"""read_binary's segments: the file descriptor they read through is closed with them, and survives copies."""

import copy
import gc
import os
import pickle
import warnings

import numpy as np

from sicore.io.binary import read_binary


def _descriptors_of(path) -> int:
    """How many of this process's descriptors are open on ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:  # closed meanwhile
            pass
    return count


def test_the_descriptor_is_closed_with_the_recording_without_a_warning(tmp_path):
    traces = np.arange(6000, dtype=np.int16).reshape(-1, 6)
    path = tmp_path / "traces.raw"
    traces.tofile(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recording = read_binary(path, sampling_frequency=1000.0, dtype="int16", num_channels=6)
        np.testing.assert_array_equal(recording.get_traces(start_frame=10, end_frame=20), traces[10:20])
        assert _descriptors_of(path) == 1  # opened on first read
        # deepcopy and pickle copies open their own descriptor, copy.copy shares the segments: freeing the
        # original leaves them all working
        copies = [copy.copy(recording), copy.deepcopy(recording), pickle.loads(pickle.dumps(recording))]
        del recording
        gc.collect()
        for other in copies:
            np.testing.assert_array_equal(other.get_traces(start_frame=990, end_frame=1000), traces[990:1000])
        del copies, other
        gc.collect()
    assert _descriptors_of(path) == 0
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
