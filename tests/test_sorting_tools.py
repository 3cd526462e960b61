"""random_spikes_selection: counts, margins, determinism, speed and agreement with SpikeInterface."""


import numpy as np
import pytest

from reference_env import run_reference
from sicore.numpy_objects import NumpyRecording, NumpySorting
from sicore.sorting_tools import random_spikes_selection

FS = 30000.0
LENGTHS = [30000, 20000]


@pytest.fixture
def sorting():
    """Two segments, four units with 800, 300, 5 and 0 spikes (unit 3 empty)."""
    rng = np.random.default_rng(3)
    samples, labels = [], []
    for length in LENGTHS:
        seg_samples, seg_labels = [], []
        for unit, count in zip([0, 1, 2], [400, 150, 2]):
            seg_samples.append(rng.choice(length, size=count, replace=False))
            seg_labels.append(np.full(count, unit))
        samples.append(np.concatenate(seg_samples))
        labels.append(np.concatenate(seg_labels))
    samples[0][:3] = [0, 5, LENGTHS[0] - 1]  # spikes at the borders
    return NumpySorting.from_times_labels(samples, labels, FS, unit_ids=[0, 1, 2, 3])


def test_uniform_counts_and_order(sorting):
    spikes = sorting.to_spike_vector()
    indices = random_spikes_selection(sorting, method="uniform", max_spikes_per_unit=200, seed=0)
    assert indices.dtype == np.int64
    assert np.all(np.diff(indices) > 0)  # sorted, unique
    counts = np.bincount(spikes["unit_index"][indices], minlength=4)
    np.testing.assert_array_equal(counts, [200, 200, 4, 0])
    # all spikes of small units are kept
    assert set(indices[spikes["unit_index"][indices] == 2]) == set(np.flatnonzero(spikes["unit_index"] == 2))


def test_uniform_is_seeded(sorting):
    a = random_spikes_selection(sorting, max_spikes_per_unit=50, seed=42)
    b = random_spikes_selection(sorting, max_spikes_per_unit=50, seed=42)
    c = random_spikes_selection(sorting, max_spikes_per_unit=50, seed=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_all_and_default(sorting):
    n = sorting.to_spike_vector().size
    np.testing.assert_array_equal(random_spikes_selection(sorting, method="all"), np.arange(n))
    # default: uniform with 500 per unit
    counts = np.bincount(sorting.to_spike_vector()["unit_index"][random_spikes_selection(sorting)], minlength=4)
    np.testing.assert_array_equal(counts, [500, 300, 4, 0])


def test_margin_drops_border_spikes(sorting):
    spikes = sorting.to_spike_vector()
    margin = 100
    lengths = np.array(LENGTHS)
    near_border = (spikes["sample_index"] < margin) | (spikes["sample_index"] >= lengths[spikes["segment_index"]] - margin)
    assert near_border.sum() >= 3
    for method in ("uniform", "all"):
        indices = random_spikes_selection(sorting, num_samples=LENGTHS, method=method, max_spikes_per_unit=10_000,
                                          margin_size=margin, seed=1)
        np.testing.assert_array_equal(indices, np.flatnonzero(~near_border))


def test_margin_needs_num_samples(sorting):
    with pytest.raises(ValueError, match="num_samples"):
        random_spikes_selection(sorting, margin_size=10)
    with pytest.raises(ValueError, match="one length per segment"):
        random_spikes_selection(sorting, num_samples=[30000], margin_size=10)
    # a registered recording gives the lengths
    recording = NumpyRecording([np.zeros((n, 1), dtype="int16") for n in LENGTHS], sampling_frequency=FS)
    sorting.register_recording(recording)
    a = random_spikes_selection(sorting, margin_size=10, seed=2)
    b = random_spikes_selection(sorting, num_samples=LENGTHS, margin_size=10, seed=2)
    np.testing.assert_array_equal(a, b)


def test_percentage_and_maximum_rate(sorting):
    spikes = sorting.to_spike_vector()
    indices = random_spikes_selection(sorting, method="percentage", percentage=0.5, seed=0)
    np.testing.assert_array_equal(np.bincount(spikes["unit_index"][indices], minlength=4), [400, 150, 2, 0])
    duration = sum(LENGTHS) / FS  # 1.667 s
    indices = random_spikes_selection(sorting, num_samples=LENGTHS, method="maximum_rate", maximum_rate=60, seed=0)
    expected = min(int(duration * 60), 500)
    np.testing.assert_array_equal(np.bincount(spikes["unit_index"][indices], minlength=4), [expected, expected, 4, 0])
    with pytest.raises(ValueError, match="percentage"):
        random_spikes_selection(sorting, method="percentage")
    with pytest.raises(ValueError, match="maximum_rate"):
        random_spikes_selection(sorting, num_samples=LENGTHS, method="maximum_rate")


def test_bad_arguments(sorting):
    with pytest.raises(ValueError, match="method"):
        random_spikes_selection(sorting, method="random")
    with pytest.raises(ValueError, match="max_spikes_per_unit"):
        random_spikes_selection(sorting, max_spikes_per_unit=-1)
    with pytest.raises(ValueError, match="margin_size"):
        random_spikes_selection(sorting, num_samples=LENGTHS, margin_size=1.5)


def test_empty_sorting():
    empty = NumpySorting.from_times_labels([np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], FS,
                                           unit_ids=np.zeros(0, dtype=np.int64))
    assert random_spikes_selection(empty, seed=0).size == 0


def test_large_selection_respects_the_per_unit_maximum():
    rng = np.random.default_rng(0)
    n = 2_000_000
    samples = np.sort(rng.integers(0, 10**9, n))
    labels = rng.integers(0, 200, n)
    sorting = NumpySorting.from_times_labels(samples, labels, FS)
    sorting.to_spike_vector()
    indices = random_spikes_selection(sorting, num_samples=[10**9], margin_size=100, seed=0)
    assert indices.size == 200 * 500
    assert np.all(np.diff(indices) > 0)
    assert np.all(np.bincount(sorting.to_spike_vector()["unit_index"][indices], minlength=200) == 500)


def test_same_selection_as_spikeinterface(tmp_path, sorting):
    spikes = sorting.to_spike_vector()
    np.save(tmp_path / "spikes.npy", spikes)
    script = f"""
import numpy as np
from spikeinterface.core import NumpySorting
from spikeinterface.core.sorting_tools import random_spikes_selection
spikes = np.load("spikes.npy")
sorting = NumpySorting(spikes, {FS}, [0, 1, 2, 3])
for kwargs in [dict(max_spikes_per_unit=37, seed=11),
               dict(num_samples={LENGTHS}, max_spikes_per_unit=120, margin_size=250, seed=2205)]:
    np.save("si_%d_%d.npy" % (kwargs["max_spikes_per_unit"], kwargs["seed"]), random_spikes_selection(sorting, **kwargs))
"""
    run_reference(script, tmp_path)
    ours = random_spikes_selection(sorting, max_spikes_per_unit=37, seed=11)
    np.testing.assert_array_equal(ours, np.load(tmp_path / "si_37_11.npy"))
    ours = random_spikes_selection(sorting, num_samples=LENGTHS, max_spikes_per_unit=120, margin_size=250, seed=2205)
    np.testing.assert_array_equal(ours, np.load(tmp_path / "si_120_2205.npy"))
