import gc
import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from sicore.numpy_objects import NumpySorting, SharedMemorySorting


def _unit_train_in_worker(sorting, unit_id, segment_index):
    return sorting.get_unit_spike_train(unit_id, segment_index=segment_index), sorting.shm_name


@pytest.fixture
def sorting(rng):
    times = [np.sort(rng.integers(0, 100000, 3000)), np.sort(rng.integers(0, 50000, 1000))]
    labels = [rng.integers(0, 5, 3000), rng.integers(0, 5, 1000)]
    s = NumpySorting.from_times_labels(times, labels, 30000.0)
    s.set_property("quality", ["good"] * 5)
    return s


def test_shared_memory_sorting_same_spikes_and_metadata(sorting):
    shm = sorting.to_shared_memory_sorting()
    assert isinstance(shm, SharedMemorySorting)
    np.testing.assert_array_equal(shm.to_spike_vector(), sorting.to_spike_vector())
    assert shm.get_property("quality").tolist() == ["good"] * 5
    # pickling sends only the block name (not the spikes)
    assert len(pickle.dumps(shm)) < 2000 < sorting.to_spike_vector().nbytes


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_shared_memory_sorting_is_usable_from_worker_processes(sorting, context):
    shm = sorting.to_shared_memory_sorting()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(context)) as pool:
        futures = [pool.submit(_unit_train_in_worker, shm, u, seg) for u in range(5) for seg in range(2)]
        results = [f.result() for f in futures]
    for (train, name), (u, seg) in zip(results, [(u, seg) for u in range(5) for seg in range(2)]):
        assert name == shm.shm_name
        np.testing.assert_array_equal(train, sorting.get_unit_spike_train(u, segment_index=seg))
    # the workers exiting did not free the owner's block
    np.testing.assert_array_equal(shm.to_spike_vector(), sorting.to_spike_vector())


def test_owner_frees_the_block(sorting):
    shm = sorting.to_shared_memory_sorting()
    path = f"/dev/shm/{shm.shm_name}"
    assert os.path.exists(path)
    del shm
    gc.collect()
    assert not os.path.exists(path)


def test_numpy_sorting_validates_spikes():
    bad = np.zeros(3, dtype=[("sample_index", "int64"), ("unit_index", "int64"), ("segment_index", "int64")])
    bad["unit_index"] = [0, 1, 5]
    with pytest.raises(ValueError, match="unit_index"):
        NumpySorting(bad, 30000.0, unit_ids=[0, 1])
    with pytest.raises(ValueError, match="structured"):
        NumpySorting(np.zeros(3), 30000.0, unit_ids=[0])
    unsorted = np.zeros(3, dtype=bad.dtype)
    unsorted["sample_index"] = [5, 1, 3]
    s = NumpySorting(unsorted, 30000.0, unit_ids=[0])
    assert s.get_unit_spike_train(0).tolist() == [1, 3, 5]


def test_from_unit_dict_requires_same_units_per_segment():
    with pytest.raises(ValueError, match="unit ids"):
        NumpySorting.from_unit_dict([{0: [1, 2]}, {1: [3]}], 1000.0)
    s = NumpySorting.from_unit_dict({"x": [5, 1], "y": []}, 1000.0)
    assert s.get_unit_spike_train("x").tolist() == [1, 5] and s.get_unit_spike_train("y").size == 0
