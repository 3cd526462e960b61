import numpy as np
import pytest

from sicore.numpy_objects import NumpyRecording, NumpySorting
from sicore.sorting import SPIKE_VECTOR_DTYPE


@pytest.fixture
def trains(rng):
    """Per segment {unit_id: sorted sample indices}."""
    out = []
    for num_samples in (30000, 12000):
        out.append({u: np.sort(rng.choice(num_samples, size=n, replace=False))
                    for u, n in zip(["a", "b", "c", "d"], (50, 120, 0, 7))})
    return out


@pytest.fixture
def sorting(trains):
    return NumpySorting.from_unit_dict(trains, sampling_frequency=30000.0)


def _expected_spike_vector(trains, unit_ids):
    rows = []
    for seg, d in enumerate(trains):
        for u, t in d.items():
            rows += [(s, list(unit_ids).index(u), seg) for s in t]
    rows.sort(key=lambda r: (r[2], r[0], r[1]))
    return np.array(rows, dtype=SPIKE_VECTOR_DTYPE)


def test_getters_and_trains(sorting, trains):
    assert sorting.unit_ids.tolist() == ["a", "b", "c", "d"]
    assert sorting.get_num_units() == 4 and sorting.get_num_segments() == 2
    for seg, d in enumerate(trains):
        for u, t in d.items():
            np.testing.assert_array_equal(sorting.get_unit_spike_train(u, segment_index=seg), t)
            np.testing.assert_array_equal(sorting.get_unit_spike_train(u, segment_index=seg, use_cache=False), t)
    t = trains[0]["b"]
    np.testing.assert_array_equal(
        sorting.get_unit_spike_train("b", segment_index=0, start_frame=1000, end_frame=20000),
        t[(t >= 1000) & (t < 20000)],
    )
    with pytest.raises(ValueError, match="segment_index is required"):
        sorting.get_unit_spike_train("a")
    with pytest.raises(KeyError, match="zz"):
        sorting.get_unit_spike_train("zz", segment_index=0)


def test_spike_vector_sorted_and_equal_to_numpy(sorting, trains):
    spikes = sorting.to_spike_vector()
    expected = _expected_spike_vector(trains, sorting.unit_ids)
    np.testing.assert_array_equal(spikes, expected)
    per_segment = sorting.to_spike_vector(concatenated=False)
    assert len(per_segment) == 2 and per_segment[1]["segment_index"].tolist() == [1] * per_segment[1].size
    with_channels = sorting.to_spike_vector(extremum_channel_inds={"a": 3, "b": 1, "c": 0, "d": 2})
    np.testing.assert_array_equal(with_channels["channel_index"], np.array([3, 1, 0, 2])[expected["unit_index"]])


def test_count_num_spikes(sorting):
    assert sorting.count_num_spikes_per_unit() == {"a": 100, "b": 240, "c": 0, "d": 14}
    assert sorting.count_num_spikes_per_unit(outputs="array").tolist() == [100, 240, 0, 14]
    assert sorting.get_non_empty_unit_ids().tolist() == ["a", "b", "d"]


def test_from_times_labels_in_samples_and_aliases():
    times = [30, 10, 20, 10, 40]
    labels = [1, 0, 1, 1, 0]
    s = NumpySorting.from_times_labels(times=times, labels=labels, sampling_frequency=1000.0)
    assert s.unit_ids.tolist() == [0, 1]
    np.testing.assert_array_equal(s.get_unit_spike_train(1), [10, 20, 30])
    s2 = NumpySorting.from_samples_and_labels([np.array(times)], [np.array(labels)], 1000.0)
    np.testing.assert_array_equal(s2.to_spike_vector(), s.to_spike_vector())
    s3 = NumpySorting.from_times_and_labels([np.array(times) / 1000.0], [np.array(labels)], 1000.0)
    np.testing.assert_array_equal(s3.to_spike_vector(), s.to_spike_vector())
    with pytest.raises(ValueError, match="sample indices"):
        NumpySorting.from_times_labels([0.5, 1.2], [0, 0], 1000.0)
    with pytest.raises(ValueError, match="shape"):
        NumpySorting.from_times_labels([1, 2, 3], [0, 0], 1000.0)
    with pytest.raises(KeyError, match="7"):
        NumpySorting.from_times_labels([1, 2], [0, 7], 1000.0, unit_ids=[0, 1])


def test_properties_annotations_and_select_remove(sorting, trains):
    sorting.set_property("quality", ["good", "mua", "good", "noise"])
    sorting.annotate(date="today")
    sub = sorting.select_units(["d", "a"])
    assert sub.unit_ids.tolist() == ["d", "a"]
    assert sub.get_property("quality").tolist() == ["noise", "good"]
    assert sub.get_annotation("date") == "today"
    np.testing.assert_array_equal(sub.get_unit_spike_train("a", segment_index=1), trains[1]["a"])
    spikes = sub.to_spike_vector()
    assert np.all(np.diff(spikes["segment_index"]) >= 0)
    expected = _expected_spike_vector([{k: d[k] for k in ("d", "a")} for d in trains], ["d", "a"])
    np.testing.assert_array_equal(spikes, expected)
    removed = sorting.remove_units(["b", "c"])
    assert removed.unit_ids.tolist() == ["a", "d"]
    renamed = sorting.select_units(["a", "b"], renamed_unit_ids=[10, 11])
    np.testing.assert_array_equal(renamed.get_unit_spike_train(11, segment_index=0), trains[0]["b"])


def test_frame_slice(sorting, trains):
    sliced = sorting.frame_slice(start_frame=1000, end_frame=9000)
    for seg in range(2):
        t = trains[seg]["b"]
        np.testing.assert_array_equal(sliced.get_unit_spike_train("b", segment_index=seg),
                                      t[(t >= 1000) & (t < 9000)] - 1000)
    spikes = sliced.to_spike_vector()
    assert spikes["sample_index"].min() >= 0 and spikes["sample_index"].max() < 8000
    view_of_view = sliced.frame_slice(500, 1500).select_units(["b"])
    t = trains[0]["b"]
    np.testing.assert_array_equal(view_of_view.get_unit_spike_train("b", segment_index=0),
                                  t[(t >= 1500) & (t < 2500)] - 1500)


def test_register_recording_and_times(sorting, trains):
    recording = NumpyRecording([np.zeros((30000, 2)), np.zeros((12000, 2))], sampling_frequency=30000.0)
    t = trains[0]["a"]
    np.testing.assert_allclose(sorting.get_unit_spike_train("a", segment_index=0, return_times=True), t / 30000.0)
    times = np.arange(30000) / 30000.0 + 300.0
    recording.set_times(times, segment_index=0)
    sorting.register_recording(recording)
    assert sorting.has_recording()
    np.testing.assert_array_equal(sorting.get_unit_spike_train("a", segment_index=0, return_times=True), times[t])
    assert sorting.get_num_samples(segment_index=1) == 12000
    short = NumpyRecording([np.zeros((100, 2)), np.zeros((100, 2))], sampling_frequency=30000.0)
    with pytest.raises(ValueError, match="spike at sample"):
        sorting.register_recording(short)
    with pytest.raises(ValueError, match="sampling_frequency"):
        sorting.register_recording(NumpyRecording([np.zeros((30000, 2))] * 2, sampling_frequency=20000.0))
    with pytest.raises(ValueError, match="segments"):
        sorting.register_recording(NumpyRecording([np.zeros((30000, 2))], sampling_frequency=30000.0))


def test_caches_are_built_from_each_other(trains):
    s = NumpySorting.from_unit_dict(trains, 30000.0)
    assert s._cached_spike_vector is not None and not s._cached_spike_trains
    s.precompute_spike_trains()
    assert set(s._cached_spike_trains[1]) == {"a", "b", "c", "d"}
    view = s.select_units(["b"])
    assert view._cached_spike_vector is None
    np.testing.assert_array_equal(view.get_unit_spike_train("b", segment_index=0), trains[0]["b"])
    assert "b" in view._cached_spike_trains[0]


def test_to_numpy_sorting_keeps_metadata(sorting):
    sorting.set_property("quality", ["g"] * 4)
    view = sorting.select_units(["a", "b"])
    np_sorting = view.to_numpy_sorting()
    assert np_sorting.get_property("quality").tolist() == ["g", "g"]
    np.testing.assert_array_equal(np_sorting.to_spike_vector(), view.to_spike_vector())
