"""append / concatenate / split / select segments of recordings and sortings, checked against numpy."""

import json
import warnings

import numpy as np
import pytest

from sicore.base import BaseExtractor
from sicore.numpy_objects import NumpyRecording, NumpyRecordingSegment, NumpySorting
from sicore.recording import BaseRecording
from sicore.segments import (
    append_recordings,
    append_sortings,
    concatenate_recordings,
    concatenate_sortings,
    select_segment_recording,
    select_segment_sorting,
    split_recording,
    split_sorting,
)
from sicore.sorting import SPIKE_VECTOR_DTYPE, BaseSorting, BaseSortingSegment

FS = 1000.0
UNITS = ["u0", "u1", "u2"]


# ------------------------------------------------------------------ JSON-serialisable test objects
class SegmentsTestSeededRecording(BaseRecording):
    """Traces are a deterministic function of (seed, segment): to_dict() rebuilds it exactly."""

    def __init__(self, num_samples_list, num_channels, sampling_frequency, seed):
        BaseRecording.__init__(self, sampling_frequency, [f"c{i}" for i in range(num_channels)], "int16")
        self.arrays = [
            np.random.default_rng([seed, i]).integers(-1000, 1000, size=(n, num_channels)).astype("int16")
            for i, n in enumerate(num_samples_list)
        ]
        for arr in self.arrays:
            self.add_recording_segment(NumpyRecordingSegment(arr, sampling_frequency, None))
        self._kwargs = {"num_samples_list": list(num_samples_list), "num_channels": num_channels,
                        "sampling_frequency": sampling_frequency, "seed": seed}


class _DictSortingSegment(BaseSortingSegment):
    def __init__(self, trains):
        self._trains = trains

    def get_unit_spike_train(self, unit_id, start_frame, end_frame):
        t = np.asarray(self._trains[unit_id], dtype=np.int64)
        lo = 0 if start_frame is None else np.searchsorted(t, start_frame)
        hi = t.size if end_frame is None else np.searchsorted(t, end_frame)
        return t[lo:hi]


class SegmentsTestDictSorting(BaseSorting):
    """Spike trains held as plain lists in its kwargs (JSON-serialisable)."""

    def __init__(self, trains_list, sampling_frequency, unit_ids):
        BaseSorting.__init__(self, sampling_frequency, unit_ids)
        for trains in trains_list:
            self.add_sorting_segment(_DictSortingSegment(trains))
        self._kwargs = {"trains_list": trains_list, "sampling_frequency": sampling_frequency, "unit_ids": unit_ids}


# ------------------------------------------------------------------------------------- fixtures
def _arrays(rng, lengths, num_channels=4):
    return [rng.integers(-3000, 3000, size=(n, num_channels)).astype("int16") for n in lengths]


@pytest.fixture
def arrays2(rng):
    return _arrays(rng, (300, 170))


@pytest.fixture
def arrays3(rng):
    # an empty middle segment exercises the boundary search
    return _arrays(rng, (120, 0, 205))


@pytest.fixture
def rec2(arrays2):
    rec = NumpyRecording(arrays2, sampling_frequency=FS, t_starts=[10.0, 50.0])
    rec.set_property("quality", np.array(["a", "b", "c", "d"]))
    rec.set_channel_gains(0.5)
    rec.set_channel_offsets(1.0)
    rec.annotate(subject="m1")
    return rec


@pytest.fixture
def rec3(arrays3):
    return NumpyRecording(arrays3, sampling_frequency=FS)


def _random_trains(rng, lengths):
    return [{u: np.sort(rng.choice(n, size=min(n, k), replace=False)) for u, k in zip(UNITS, (15, 30, 0))}
            for n in lengths]


def _sorting(trains):
    return NumpySorting.from_unit_dict([{u: t[u] for u in UNITS} for t in trains], sampling_frequency=FS)


def _expected_vector(trains_by_segment, unit_ids=UNITS):
    rows = [(int(s), unit_ids.index(u), seg)
            for seg, d in enumerate(trains_by_segment) for u, t in d.items() for s in t]
    rows.sort(key=lambda r: (r[2], r[0], r[1]))
    return np.array(rows, dtype=SPIKE_VECTOR_DTYPE)


def _generic_vector(sorting):
    """The spike vector built from unit spike trains by the base class (independent of the overrides)."""
    return BaseSorting._compute_spike_vector(sorting)


# ------------------------------------------------------------------------------ append_recordings
def test_append_recordings_segments_traces_and_metadata(rec2, rec3, arrays2, arrays3):
    rec = append_recordings([rec2, rec3])
    expected = arrays2 + arrays3
    assert rec.get_num_segments() == 5
    assert rec.channel_ids.tolist() == rec2.channel_ids.tolist()
    for i, arr in enumerate(expected):
        assert rec.get_num_samples(i) == arr.shape[0]
        np.testing.assert_array_equal(rec.get_traces(segment_index=i), arr)
    assert rec.get_traces(segment_index=3, channel_ids=[3, 1]).shape == (0, 2)
    np.testing.assert_array_equal(rec.get_traces(segment_index=4, start_frame=7, end_frame=90, channel_ids=[3, 1]),
                                  arrays3[2][7:90][:, [3, 1]])
    # a view copies nothing
    assert np.shares_memory(rec.get_traces(segment_index=1), arrays2[1])
    # metadata of the first recording, scaled traces
    assert rec.get_property("quality").tolist() == ["a", "b", "c", "d"]
    assert rec.get_annotation("subject") == "m1"
    np.testing.assert_allclose(rec.get_traces(segment_index=4, return_scaled=True),
                               arrays3[2].astype("float32") * 0.5 + 1.0)
    # times: each segment keeps its own
    assert [rec.get_start_time(i) for i in range(5)] == [10.0, 50.0, 0.0, 0.0, 0.0]
    # provenance holds the parents; in-memory parents are not JSON-serialisable
    assert rec._kwargs["recording_list"][0] is rec2
    assert not rec.is_json_serializable()


def test_append_recordings_keeps_time_vectors_and_view_times_are_independent(rec2, rec3):
    times = np.sort(np.random.default_rng(0).uniform(0, 5, rec3.get_num_samples(2)))
    rec3.set_times(times, segment_index=2)
    rec = append_recordings([rec2, rec3])
    assert rec.has_time_vector(4) and not rec.has_time_vector(0)
    np.testing.assert_array_equal(rec.get_times(4), times)
    rec.set_times(np.arange(300) / FS + 99.0, segment_index=0)
    assert rec2.get_start_time(0) == 10.0  # the parent's times are untouched


@pytest.mark.parametrize("func", [append_recordings, concatenate_recordings])
def test_time_axis_joins_check_inputs(func, rec2, rec3, arrays2):
    other_fs = NumpyRecording(arrays2, sampling_frequency=FS + 0.5)
    with pytest.raises(ValueError, match=r"recording_list\[1\] has sampling_frequency 1000.5"):
        func([rec2, other_fs])
    with pytest.warns(UserWarning, match="sampling_frequency"):
        assert func([rec2, other_fs], sampling_frequency_max_diff=1.0).sampling_frequency == FS
    other_ids = NumpyRecording(arrays2, sampling_frequency=FS, channel_ids=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"recording_list\[1\] has channel_ids"):
        func([rec2, other_ids])
    other_dtype = NumpyRecording([a.astype("float32") for a in arrays2], sampling_frequency=FS)
    with pytest.raises(ValueError, match=r"recording_list\[2\] has dtype float32"):
        func([rec2, rec3, other_dtype])
    with pytest.raises(ValueError, match="recording_list is empty"):
        func([])
    with pytest.raises(ValueError, match="must be a list"):
        func(rec2)
    with pytest.raises(ValueError, match=r"recording_list\[1\] must be a BaseRecording"):
        func([rec2, "x"])


# ------------------------------------------------------------------------- concatenate_recordings
def test_concatenate_recordings_traces_across_boundaries(rec2, rec3, arrays2, arrays3):
    rec = concatenate_recordings([rec2, rec3])
    full = np.concatenate(arrays2 + arrays3, axis=0)
    assert rec.get_num_segments() == 1
    assert rec.get_num_samples() == full.shape[0] == 795
    np.testing.assert_array_equal(rec.get_traces(), full)
    bounds = np.cumsum([0] + [a.shape[0] for a in arrays2 + arrays3])
    rng = np.random.default_rng(5)
    windows = [(0, 0), (795, 795), (299, 301), (300, 470), (469, 471), (470, 590), (589, 591), (0, 795)]
    windows += [(b, b) for b in bounds] + [tuple(sorted(rng.integers(0, 796, size=2))) for _ in range(30)]
    for start, end in windows:
        for channel_ids in (None, [2], [3, 0, 1]):
            expected = full[start:end] if channel_ids is None else full[start:end][:, channel_ids]
            got = rec.get_traces(start_frame=int(start), end_frame=int(end), channel_ids=channel_ids)
            assert got.shape == expected.shape and got.dtype == np.int16
            np.testing.assert_array_equal(got, expected)
    # a read inside one piece is the parent's own memory
    assert np.shares_memory(rec.get_traces(start_frame=310, end_frame=400), arrays2[1])
    np.testing.assert_allclose(rec.get_traces(start_frame=250, end_frame=350, return_scaled=True),
                               full[250:350].astype("float32") * 0.5 + 1.0)
    assert rec.get_property("quality").tolist() == ["a", "b", "c", "d"]
    assert rec._kwargs["recording_list"][1] is rec3 and rec._kwargs["ignore_times"] is True


def test_concatenate_recordings_times(arrays2, arrays3):
    # ignore_times=True: plain sample / fs
    rec = NumpyRecording(arrays2, sampling_frequency=FS, t_starts=[10.0, 30.0])
    cat = concatenate_recordings([rec])
    assert cat.get_start_time() == 0.0 and not cat.has_time_vector()
    # contiguous pieces: the first start time is kept, no time vector
    contiguous = NumpyRecording(arrays2, sampling_frequency=FS, t_starts=[10.0, 10.3])
    cat = concatenate_recordings([contiguous], ignore_times=False)
    assert cat.get_start_time() == 10.0 and not cat.has_time_vector()
    np.testing.assert_allclose(cat.get_times(), 10.0 + np.arange(470) / FS)
    # a gap: the pieces' own times as a time vector
    cat = concatenate_recordings([rec], ignore_times=False)
    assert cat.has_time_vector()
    np.testing.assert_allclose(cat.get_times(), np.concatenate([10 + np.arange(300) / FS, 30 + np.arange(170) / FS]))
    # pieces without times continue the previous one; time vectors are kept
    other = NumpyRecording(arrays3, sampling_frequency=FS)
    other.set_times(40.0 + np.arange(205) / FS, segment_index=2)
    cat = concatenate_recordings([rec, other], ignore_times=False)
    last_of_rec = 30 + 169 / FS
    expected = np.concatenate([10 + np.arange(300) / FS, 30 + np.arange(170) / FS,
                               last_of_rec + (np.arange(120) + 1) / FS, 40.0 + np.arange(205) / FS])
    np.testing.assert_allclose(cat.get_times(), expected)
    # times going backwards are an error naming the piece
    backwards = NumpyRecording(arrays2, sampling_frequency=FS, t_starts=[10.0, 5.0])
    with pytest.raises(ValueError, match=r"recording_list\[0\] segment 1 starts at 5.0"):
        concatenate_recordings([backwards], ignore_times=False)
    assert concatenate_recordings([backwards]).get_num_samples() == 470


# ------------------------------------------------------------------------ split / select segments
def test_split_and_select_segment_recording(rec2, rec3, arrays2, arrays3):
    rec5 = append_recordings([rec2, rec3])
    expected = arrays2 + arrays3
    parts = split_recording(rec5)
    assert len(parts) == 5
    for part, arr in zip(parts, expected):
        assert part.get_num_segments() == 1
        np.testing.assert_array_equal(part.get_traces(), arr)
        assert part.get_property("quality").tolist() == ["a", "b", "c", "d"]
    assert parts[1].get_start_time() == 50.0
    one = select_segment_recording(rec5, segment_indices=3)
    assert one.get_num_segments() == 1 and one.get_num_samples() == 0
    two = select_segment_recording(rec5, segment_indices=[4, 0])
    np.testing.assert_array_equal(two.get_traces(segment_index=0), arrays3[2])
    np.testing.assert_array_equal(two.get_traces(segment_index=1), arrays2[0])
    assert two.get_start_time(1) == 10.0
    assert two._kwargs == {"recording": rec5, "segment_indices": [4, 0]}
    for bad, match in [(5, "out of range"), ([0, 7], "out of range"), (-1, "out of range"), ([], "empty"),
                       (True, "int"), (1.0, "int"), (["0"], "ints")]:
        with pytest.raises(ValueError, match=match):
            select_segment_recording(rec5, bad)
    with pytest.raises(ValueError, match="recording must be a BaseRecording"):
        split_recording([rec2])


def test_recording_views_of_views_equal_numpy(rec2, rec3, arrays2, arrays3):
    all_arrays = arrays2 + arrays3
    rec5 = append_recordings([rec2, rec3])
    picked = select_segment_recording(rec5, [4, 1, 0])
    mono = concatenate_recordings([picked, split_recording(rec2)[1]])
    expected = np.concatenate([all_arrays[4], all_arrays[1], all_arrays[0], arrays2[1]], axis=0)
    np.testing.assert_array_equal(mono.get_traces(), expected)
    sliced = mono.frame_slice(200, 600).channel_slice([3, 0])
    np.testing.assert_array_equal(sliced.get_traces(), expected[200:600][:, [3, 0]])
    twice = concatenate_recordings([mono, mono])
    np.testing.assert_array_equal(twice.get_traces(start_frame=700, end_frame=1000),
                                  np.concatenate([expected, expected])[700:1000])
    again = append_recordings([select_segment_recording(twice, 0), rec2.frame_slice(5, 25)])
    np.testing.assert_array_equal(again.get_traces(segment_index=2), arrays2[1][5:25])


def test_probe_propagates_through_segment_views(arrays2):
    from probeinterface import generate_linear_probe

    probe = generate_linear_probe(num_elec=4, ypitch=25)
    probe.set_device_channel_indices([3, 2, 1, 0])
    rec = NumpyRecording(arrays2, sampling_frequency=FS).set_probe(probe)
    for view in (append_recordings([rec, rec]), concatenate_recordings([rec]), split_recording(rec)[1],
                 select_segment_recording(rec, [1, 0])):
        assert view.has_probe()
        np.testing.assert_array_equal(view.get_channel_locations(), rec.get_channel_locations())
        np.testing.assert_array_equal(view.get_probe().contact_positions, rec.get_probe().contact_positions)


def test_recording_views_to_dict_round_trip():
    a = SegmentsTestSeededRecording([100, 60], 3, FS, seed=1)
    b = SegmentsTestSeededRecording([80], 3, FS, seed=2)
    full = np.concatenate(a.arrays + b.arrays)
    views = {
        "append": (append_recordings([a, b]), a.arrays + b.arrays),
        "concatenate": (concatenate_recordings([a, b]), [full]),
        "select": (select_segment_recording(a, [1, 0]), [a.arrays[1], a.arrays[0]]),
        "split": (split_recording(a)[1], [a.arrays[1]]),
        "nested": (concatenate_recordings([select_segment_recording(append_recordings([a, b]), [2, 0])]),
                   [np.concatenate([b.arrays[0], a.arrays[0]])]),
    }
    for name, (view, expected) in views.items():
        assert view.is_json_serializable(), name
        rebuilt = BaseExtractor.from_dict(json.loads(json.dumps(view.to_dict())))
        assert type(rebuilt) is type(view)
        assert rebuilt.get_num_segments() == len(expected)
        for i, arr in enumerate(expected):
            np.testing.assert_array_equal(rebuilt.get_traces(segment_index=i), arr)


# ------------------------------------------------------------------------------------ sortings
@pytest.fixture
def trains2(rng):
    return _random_trains(rng, (300, 170))


@pytest.fixture
def trains3(rng):
    return _random_trains(rng, (120, 0, 205))


@pytest.fixture
def sort2(trains2, rec2):
    sorting = _sorting(trains2)
    sorting.register_recording(rec2)
    sorting.set_property("snr", np.array([1.0, 2.0, 3.0]))
    sorting.annotate(sorter="ks")
    return sorting


@pytest.fixture
def sort3(trains3, rec3):
    sorting = _sorting(trains3)
    sorting.register_recording(rec3)
    return sorting


def test_append_sortings(sort2, sort3, trains2, trains3):
    sorting = append_sortings([sort2, sort3])
    all_trains = trains2 + trains3
    assert sorting.get_num_segments() == 5 and sorting.unit_ids.tolist() == UNITS
    for seg, trains in enumerate(all_trains):
        for u in UNITS:
            np.testing.assert_array_equal(sorting.get_unit_spike_train(u, segment_index=seg, use_cache=False),
                                          trains[u])
    spikes = sorting.to_spike_vector()
    np.testing.assert_array_equal(spikes, _expected_vector(all_trains))
    np.testing.assert_array_equal(spikes, _generic_vector(sorting))
    assert sorting.get_property("snr").tolist() == [1.0, 2.0, 3.0] and sorting.get_annotation("sorter") == "ks"
    # the appended recordings are registered: lengths and times follow
    assert sorting.has_recording()
    assert [sorting.get_num_samples(i) for i in range(5)] == [300, 170, 120, 0, 205]
    t = trains2[1]["u1"]
    np.testing.assert_allclose(sorting.get_unit_spike_train("u1", segment_index=1, return_times=True), 50.0 + t / FS)
    # no registered recording when one input lacks it
    assert not append_sortings([sort2, _sorting(trains3)]).has_recording()
    assert sorting._kwargs["sorting_list"] == [sort2, sort3]


def test_sorting_joins_check_inputs(sort2, trains2):
    other_units = NumpySorting.from_unit_dict([{"x": t["u0"], "y": t["u1"], "z": t["u2"]} for t in trains2], FS)
    other_fs = NumpySorting.from_unit_dict([{u: t[u] for u in UNITS} for t in trains2], FS * 2)
    for func in (append_sortings, concatenate_sortings):
        with pytest.raises(ValueError, match=r"sorting_list\[1\] has unit_ids"):
            func([sort2, other_units])
        with pytest.raises(ValueError, match=r"sorting_list\[1\] has sampling_frequency 2000.0"):
            func([sort2, other_fs])
        with pytest.raises(ValueError, match="sorting_list is empty"):
            func([])


def test_concatenate_sortings_with_registered_recordings(sort2, sort3, trains2, trains3, rec2, rec3):
    sorting = concatenate_sortings([sort2, sort3])
    all_trains = trains2 + trains3
    offsets = np.cumsum([0, 300, 170, 120, 0])
    assert sorting.get_num_segments() == 1 and sorting.get_num_samples() == 795
    expected = {u: np.concatenate([t[u] + off for t, off in zip(all_trains, offsets)]) for u in UNITS}
    for u in UNITS:
        np.testing.assert_array_equal(sorting.get_unit_spike_train(u, use_cache=False), expected[u])
        np.testing.assert_array_equal(sorting.get_unit_spike_train(u), expected[u])
        for start, end in [(250, 480), (300, 300), (470, 795), (0, 1), (590, 591)]:
            e = expected[u]
            got = sorting.get_unit_spike_train(u, start_frame=start, end_frame=end, use_cache=False)
            np.testing.assert_array_equal(got, e[(e >= start) & (e < end)])
    spikes = sorting.to_spike_vector()
    np.testing.assert_array_equal(spikes, _expected_vector([expected]))
    assert np.all(np.diff(spikes["sample_index"]) >= 0)
    np.testing.assert_array_equal(spikes, _generic_vector(sorting))
    # the concatenated recording is registered
    recording = sorting.get_recording()
    assert recording.get_num_samples() == 795
    np.testing.assert_array_equal(recording.get_traces(start_frame=460, end_frame=480),
                                  concatenate_recordings([rec2, rec3]).get_traces(start_frame=460, end_frame=480))
    assert sorting._kwargs["total_samples_list"] == [300, 170, 120, 0, 205]


def test_concatenate_sortings_needs_lengths(trains2, trains3):
    s2, s3 = _sorting(trains2), _sorting(trains3)
    with pytest.raises(ValueError, match=r"sorting_list\[0\] has no registered recording.*total_samples_list"):
        concatenate_sortings([s2, s3])
    flat = concatenate_sortings([s2, s3], total_samples_list=[300, 170, 120, 0, 205])
    nested = concatenate_sortings([s2, s3], total_samples_list=[[300, 170], [120, 0, 205]])
    assert not flat.has_recording() and flat.get_num_samples() == 795
    np.testing.assert_array_equal(flat.to_spike_vector(), nested.to_spike_vector())
    np.testing.assert_array_equal(flat.to_spike_vector(), _generic_vector(flat))
    with pytest.raises(ValueError, match="total_samples_list has 2 values but the sortings have 5 segments"):
        concatenate_sortings([s2, s3], total_samples_list=[300, 170])
    with pytest.raises(ValueError, match=r"total_samples_list\[1\] has 2 lengths but sorting_list\[1\] has 3"):
        concatenate_sortings([s2, s3], total_samples_list=[[300, 170], [120, 205]])
    short = int(trains2[0]["u1"].max())
    with pytest.raises(ValueError, match=rf"sorting_list\[0\] segment 0 has a spike at sample {short}"):
        concatenate_sortings([s2, s3], total_samples_list=[short, 170, 120, 0, 205])
    with pytest.raises(ValueError, match="non-negative ints"):
        concatenate_sortings([s2, s3], total_samples_list=[300, 170, 120, 0, -1])


def test_concatenate_sortings_explicit_lengths_must_match_recording(sort2):
    with pytest.raises(ValueError, match=r"gives \[300, 171\] samples for sorting_list\[0\] but its registered"):
        concatenate_sortings([sort2], total_samples_list=[300, 171])
    assert concatenate_sortings([sort2], total_samples_list=[300, 170]).has_recording()


def test_split_and_select_segment_sorting(sort2, sort3, trains2, trains3):
    sorting5 = append_sortings([sort2, sort3])
    all_trains = trains2 + trains3
    parts = split_sorting(sorting5)
    assert len(parts) == 5
    for part, trains, n in zip(parts, all_trains, [300, 170, 120, 0, 205]):
        assert part.get_num_segments() == 1 and part.get_num_samples() == n
        for u in UNITS:
            np.testing.assert_array_equal(part.get_unit_spike_train(u), trains[u])
        np.testing.assert_array_equal(part.to_spike_vector(), _expected_vector([trains]))
        assert part.get_property("snr").tolist() == [1.0, 2.0, 3.0]
    t = trains2[1]["u0"]
    np.testing.assert_allclose(parts[1].get_unit_spike_train("u0", return_times=True), 50.0 + t / FS)
    picked = select_segment_sorting(sorting5, [4, 1])
    np.testing.assert_array_equal(picked.to_spike_vector(), _expected_vector([all_trains[4], all_trains[1]]))
    np.testing.assert_array_equal(picked.to_spike_vector(), _generic_vector(picked))
    assert [picked.get_num_samples(i) for i in range(2)] == [205, 170]
    assert select_segment_sorting(sorting5, 2).get_num_segments() == 1
    with pytest.raises(ValueError, match="out of range"):
        select_segment_sorting(sorting5, 5)
    with pytest.raises(ValueError, match="sorting must be a BaseSorting"):
        split_sorting([sort2])
    # without a registered recording the views have none either
    bare = split_sorting(_sorting(trains2))
    assert not bare[0].has_recording()


def test_sorting_views_of_views(sort2, sort3, trains2, trains3):
    all_trains = trains2 + trains3
    picked = select_segment_sorting(append_sortings([sort2, sort3]), [4, 0])
    nested = concatenate_sortings([picked, split_sorting(sort2)[1]])
    expected = {u: np.concatenate([all_trains[4][u], all_trains[0][u] + 205, trains2[1][u] + 505]) for u in UNITS}
    assert nested.get_num_samples() == 675
    for u in UNITS:
        np.testing.assert_array_equal(nested.get_unit_spike_train(u, use_cache=False), expected[u])
    np.testing.assert_array_equal(nested.to_spike_vector(), _expected_vector([expected]))
    sub = nested.frame_slice(100, 400).select_units(["u1"])
    e = expected["u1"]
    np.testing.assert_array_equal(sub.get_unit_spike_train("u1"), e[(e >= 100) & (e < 400)] - 100)
    twice = append_sortings([nested, nested])
    np.testing.assert_array_equal(twice.to_spike_vector(concatenated=False)[1]["sample_index"],
                                  nested.to_spike_vector()["sample_index"])


def test_sorting_views_to_dict_round_trip():
    trains_list = [{"a": [1, 5, 40], "b": [3, 3, 90]}, {"a": [2], "b": [10, 11]}]
    base = SegmentsTestDictSorting(trains_list, FS, ["a", "b"])
    views = [append_sortings([base, base]), concatenate_sortings([base], total_samples_list=[100, 20]),
             select_segment_sorting(base, [1, 0]), split_sorting(base)[0],
             concatenate_sortings([select_segment_sorting(append_sortings([base, base]), [3, 0])],
                                  total_samples_list=[20, 100])]
    for view in views:
        assert view.is_json_serializable()
        rebuilt = BaseExtractor.from_dict(json.loads(json.dumps(view.to_dict())))
        assert type(rebuilt) is type(view)
        np.testing.assert_array_equal(rebuilt.to_spike_vector(), view.to_spike_vector())
    np.testing.assert_array_equal(views[1].get_unit_spike_train("a"), [1, 5, 40, 102])
    np.testing.assert_array_equal(views[4].get_unit_spike_train("b"), [10, 11, 23, 23, 110])


def test_empty_sortings():
    empty = NumpySorting(np.zeros(0, dtype=SPIKE_VECTOR_DTYPE), FS, ["a"], num_segments=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert append_sortings([empty, empty]).to_spike_vector().size == 0
        assert concatenate_sortings([empty], total_samples_list=[5, 5]).to_spike_vector().size == 0
        assert select_segment_sorting(empty, 1).to_spike_vector().size == 0
        assert concatenate_sortings([empty], total_samples_list=[5, 5]).get_unit_spike_train("a").size == 0


def test_registered_recordings_that_do_not_join_are_dropped_with_a_warning(sort2, trains3, arrays3):
    other = _sorting(trains3)
    other.register_recording(NumpyRecording(arrays3, sampling_frequency=FS, channel_ids=["a", "b", "c", "d"]))
    with pytest.warns(UserWarning, match="registered recordings cannot be joined"):
        sorting = append_sortings([sort2, other])
    assert not sorting.has_recording() and sorting.get_num_segments() == 5
    with pytest.warns(UserWarning, match="registered recordings cannot be joined"):
        sorting = concatenate_sortings([sort2, other])
    # the lengths still come from the registered recordings
    assert not sorting.has_recording() and sorting.get_num_samples() == 795


def test_clone_and_pickle_of_views(rec2, rec3, sort2, sort3):
    import pickle

    views = [append_recordings([rec2, rec3]), concatenate_recordings([rec2, rec3]), split_recording(rec2)[1],
             append_sortings([sort2, sort3]), concatenate_sortings([sort2, sort3]), select_segment_sorting(sort3, [2])]
    for view in views:
        for copy in (view.clone(), pickle.loads(pickle.dumps(view))):
            assert type(copy) is type(view) and copy.get_num_segments() == view.get_num_segments()
            if isinstance(view, BaseRecording):
                np.testing.assert_array_equal(copy.get_traces(segment_index=0), view.get_traces(segment_index=0))
            else:
                np.testing.assert_array_equal(copy.to_spike_vector(), view.to_spike_vector())


def test_matches_spikeinterface_reference(tmp_path, arrays2, arrays3, trains2, trains3):
    from reference_env import run_reference

    for i, arr in enumerate(arrays2 + arrays3):
        np.save(tmp_path / f"arr{i}.npy", arr)
    for name, trains in (("s2", trains2), ("s3", trains3)):
        np.save(tmp_path / f"{name}.npy", _sorting(trains).to_spike_vector())
    script = """
import json, numpy as np
import spikeinterface.core as sc
arrs = [np.load(f"arr{i}.npy") for i in range(5)]
r2 = sc.NumpyRecording(arrs[:2], 1000.0, t_starts=[10.0, 50.0]); r3 = sc.NumpyRecording(arrs[2:], 1000.0)
def sorting(name, n):
    sp = np.load(name + ".npy")
    return sc.NumpySorting(sp, 1000.0, ["u0", "u1", "u2"])
s2 = sorting("s2", 2); s3 = sorting("s3", 3)
s2.register_recording(r2); s3.register_recording(r3)
out = {}
cat = sc.concatenate_recordings([r2, r3])
out["cat_traces"] = cat.get_traces(start_frame=280, end_frame=600, channel_ids=[3, 0]).tolist()
app = sc.append_recordings([r2, r3])
out["app_starts"] = [float(app.get_start_time(i)) for i in range(5)]
out["cat_sort"] = sc.concatenate_sortings([s2, s3]).to_spike_vector().tolist()
out["app_sort"] = sc.append_sortings([s2, s3]).to_spike_vector().tolist()
out["sel_sort"] = sc.select_segment_sorting(sc.append_sortings([s2, s3]), [4, 1]).to_spike_vector().tolist()
print(json.dumps(out))
"""
    reference = json.loads(run_reference(script, cwd=tmp_path).strip().splitlines()[-1])
    r2 = NumpyRecording(arrays2, sampling_frequency=FS, t_starts=[10.0, 50.0])
    r3 = NumpyRecording(arrays3, sampling_frequency=FS)
    s2, s3 = _sorting(trains2), _sorting(trains3)
    s2.register_recording(r2)
    s3.register_recording(r3)
    np.testing.assert_array_equal(
        concatenate_recordings([r2, r3]).get_traces(start_frame=280, end_frame=600, channel_ids=[3, 0]),
        reference["cat_traces"])
    app = append_recordings([r2, r3])
    assert [app.get_start_time(i) for i in range(5)] == reference["app_starts"]
    assert concatenate_sortings([s2, s3]).to_spike_vector().tolist() == [tuple(r) for r in reference["cat_sort"]]
    assert append_sortings([s2, s3]).to_spike_vector().tolist() == [tuple(r) for r in reference["app_sort"]]
    selected = select_segment_sorting(append_sortings([s2, s3]), [4, 1]).to_spike_vector().tolist()
    assert selected == [tuple(r) for r in reference["sel_sort"]]
