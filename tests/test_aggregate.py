"""aggregate_channels / aggregate_units, checked against numpy on the input arrays."""

import json

import numpy as np
import pytest

from sicore.aggregate import aggregate_channels, aggregate_units
from sicore.base import BaseExtractor
from sicore.numpy_objects import NumpyRecording, NumpyRecordingSegment, NumpySorting
from sicore.recording import BaseRecording
from sicore.sorting import SPIKE_VECTOR_DTYPE, BaseSorting

FS = 1000.0


class AggregateTestSeededRecording(BaseRecording):
    """Traces are a deterministic function of (seed, segment): to_dict() rebuilds it exactly."""

    def __init__(self, num_samples_list, channel_ids, sampling_frequency, seed):
        BaseRecording.__init__(self, sampling_frequency, channel_ids, "int16")
        self.arrays = [
            np.random.default_rng([seed, i]).integers(-1000, 1000, size=(n, len(channel_ids))).astype("int16")
            for i, n in enumerate(num_samples_list)
        ]
        for arr in self.arrays:
            self.add_recording_segment(NumpyRecordingSegment(arr, sampling_frequency, None))
        self._kwargs = {"num_samples_list": list(num_samples_list), "channel_ids": list(channel_ids),
                        "sampling_frequency": sampling_frequency, "seed": seed}


@pytest.fixture
def arrays(rng):
    """Three inputs (3, 2 and 4 channels), two segments each (200 and 90 samples)."""
    return [[rng.integers(-3000, 3000, size=(n, c)).astype("int16") for n in (200, 90)] for c in (3, 2, 4)]


@pytest.fixture
def recs(arrays):
    ids = [[0, 1, 2], [10, 11], [20, 21, 22, 23]]
    return [NumpyRecording(a, sampling_frequency=FS, channel_ids=i) for a, i in zip(arrays, ids)]


def _stacked(arrays, segment_index):
    return np.concatenate([a[segment_index] for a in arrays], axis=1)


def test_aggregate_channels_traces_equal_numpy(recs, arrays):
    rec = aggregate_channels(recs)
    assert rec.get_num_channels() == 9 and rec.get_num_segments() == 2
    assert rec.channel_ids.tolist() == [0, 1, 2, 10, 11, 20, 21, 22, 23]
    for seg in range(2):
        full = _stacked(arrays, seg)
        np.testing.assert_array_equal(rec.get_traces(segment_index=seg), full)
        for channel_ids in ([22, 0, 11, 1], [21, 22, 23], [0], [11, 10], [2, 10, 20], [23, 23, 0]):
            cols = [rec.channel_ids.tolist().index(c) for c in channel_ids]
            np.testing.assert_array_equal(
                rec.get_traces(segment_index=seg, start_frame=15, end_frame=77, channel_ids=channel_ids),
                full[15:77][:, cols],
            )
    # channels of one input are read from it without copying
    assert np.shares_memory(rec.get_traces(segment_index=1, channel_ids=[20, 21]), arrays[2][1])
    assert rec.get_dtype() == np.int16


def test_aggregate_channels_reads_only_needed_inputs(recs, arrays):
    rec = aggregate_channels(recs)
    calls = []
    for index, parent in enumerate(recs):
        segment = parent._recording_segments[0]
        original = segment.get_traces

        def spy(start, end, channel_indices, _index=index, _original=original):
            calls.append(_index)
            return _original(start, end, channel_indices)

        segment.get_traces = spy
    rec.get_traces(segment_index=0, channel_ids=[11, 10])
    assert calls == [1]
    calls.clear()
    rec.get_traces(segment_index=0, channel_ids=[23, 0, 22, 2])
    assert sorted(calls) == [0, 2]  # each needed input read once


def test_channel_ids_rule(arrays):
    a = NumpyRecording(arrays[0], sampling_frequency=FS)
    b = NumpyRecording(arrays[1], sampling_frequency=FS)
    c = NumpyRecording(arrays[1], sampling_frequency=FS, channel_ids=["x", "y"])
    d = NumpyRecording(arrays[1], sampling_frequency=FS, channel_ids=np.array([7, 8], dtype="int32"))
    # duplicates across inputs, or a mix of kinds: strings "0".."n-1" (as SpikeInterface)
    assert aggregate_channels([a, b]).channel_ids.tolist() == ["0", "1", "2", "3", "4"]
    assert aggregate_channels([a, c]).channel_ids.tolist() == ["0", "1", "2", "3", "4"]
    # unique and of one kind: kept
    assert aggregate_channels([a, d]).channel_ids.tolist() == [0, 1, 2, 7, 8]
    e = NumpyRecording(arrays[0], sampling_frequency=FS, channel_ids=["p", "qq", "r"])
    assert aggregate_channels([e, c]).channel_ids.tolist() == ["p", "qq", "r", "x", "y"]
    renamed = aggregate_channels([a, b], renamed_channel_ids=list("abcde"))
    assert renamed.channel_ids.tolist() == list("abcde")
    np.testing.assert_array_equal(renamed.get_traces(segment_index=0, channel_ids=["d"]), arrays[1][0][:, [0]])
    with pytest.raises(ValueError, match="renamed_channel_ids has 2 ids, expected one per aggregated id \\(5\\)"):
        aggregate_channels([a, b], renamed_channel_ids=["a", "b"])
    with pytest.raises(ValueError, match="renamed_channel_ids has duplicated ids"):
        aggregate_channels([a, b], renamed_channel_ids=list("abcda"))


def test_aggregate_channels_errors_name_the_input(recs, arrays):
    other_fs = NumpyRecording(arrays[1], sampling_frequency=2 * FS)
    with pytest.raises(ValueError, match=r"recording_list\[2\] has sampling_frequency 2000.0 Hz but recording_list\[0"):
        aggregate_channels([recs[0], recs[1], other_fs])
    one_segment = NumpyRecording(arrays[1][:1], sampling_frequency=FS)
    with pytest.raises(ValueError, match=r"recording_list\[1\] has 1 segments but recording_list\[0\] has 2"):
        aggregate_channels([recs[0], one_segment])
    shorter = NumpyRecording([arrays[1][0], arrays[1][1][:50]], sampling_frequency=FS)
    with pytest.raises(ValueError, match=r"recording_list\[1\] has 50 samples in segment 1 but .*\[0\] has 90"):
        aggregate_channels([recs[0], shorter])
    as_float = NumpyRecording([a.astype("float32") for a in arrays[1]], sampling_frequency=FS)
    with pytest.raises(ValueError, match=r"recording_list\[1\] has dtype float32"):
        aggregate_channels([recs[0], as_float])
    with pytest.raises(ValueError, match=r"recording_list\['b'\] has 50 samples"):
        aggregate_channels({"a": recs[0], "b": shorter})
    with pytest.raises(ValueError, match="recording_list is empty"):
        aggregate_channels([])
    with pytest.raises(ValueError, match="exactly once"):
        aggregate_channels()
    assert aggregate_channels(recording_list_or_dict=recs).get_num_channels() == 9


def test_aggregate_channels_properties_annotations_and_times(recs, arrays):
    a, b, c = recs
    a.set_channel_gains([1.0, 2.0, 3.0]); a.set_channel_offsets(0.0)
    b.set_channel_gains([4.0, 5.0]); b.set_channel_offsets(1.0)
    c.set_channel_gains(0.5); c.set_channel_offsets(0.0)
    for rec, value in zip(recs, (1, 2, 3)):
        rec.set_property("quality", np.full(rec.get_num_channels(), value))
    a.set_property("only_a", np.ones(3))
    c.set_property("quality_f", np.zeros(4))
    a.annotate(subject="m1", session=1); b.annotate(subject="m1", session=2); c.annotate(subject="m1")
    a.set_times(5.0 + np.arange(200) / FS, segment_index=0)
    with pytest.warns(UserWarning, match=r"recording_list\[1\] has other times"):
        rec = aggregate_channels(recs)
    gains = np.array([1, 2, 3, 4, 5, 0.5, 0.5, 0.5, 0.5], dtype="float32")
    offsets = np.array([0, 0, 0, 1, 1, 0, 0, 0, 0], dtype="float32")
    np.testing.assert_allclose(rec.get_traces(segment_index=1, return_scaled=True),
                               _stacked(arrays, 1).astype("float32") * gains + offsets)
    assert rec.get_property("quality").tolist() == [1, 1, 1, 2, 2, 3, 3, 3, 3]
    assert rec.get_property("only_a") is None and rec.get_property("quality_f") is None
    assert rec.get_property("aggregation_key").tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert rec.get_annotation("subject") == "m1" and "session" not in rec.get_annotation_keys()
    np.testing.assert_array_equal(rec.get_times(0), a.get_times(0))  # times are the first input's
    with pytest.warns(UserWarning, match="other times"):
        keyed = aggregate_channels({"probeA": a, "probeB": b})
    assert keyed.get_property("aggregation_key").tolist() == ["probeA"] * 3 + ["probeB"] * 2
    # incompatible dtypes are dropped with a warning
    a.reset_times()
    b.set_property("label", np.array(["x", "y"]))
    a.set_property("label", np.array([1, 2, 3]))
    with pytest.warns(UserWarning, match="property 'label' is dropped"):
        assert aggregate_channels([a, b]).get_property("label") is None


def test_aggregate_channels_combines_probes(arrays):
    from probeinterface import generate_linear_probe, generate_tetrode

    probe_a = generate_linear_probe(num_elec=3, ypitch=20)
    probe_a.set_device_channel_indices([2, 0, 1])
    probe_b = generate_tetrode()
    probe_b.move([200, 0])
    probe_b.set_device_channel_indices([0, 1, 2, 3])
    a = NumpyRecording(arrays[0], sampling_frequency=FS).set_probe(probe_a)
    b = NumpyRecording(arrays[2], sampling_frequency=FS, channel_ids=["t0", "t1", "t2", "t3"]).set_probe(probe_b)
    rec = aggregate_channels([a, b])
    assert rec.has_probe()
    np.testing.assert_array_equal(rec.get_channel_locations(),
                                  np.concatenate([a.get_channel_locations(), b.get_channel_locations()]))
    assert rec.get_channel_groups().tolist() == [0, 0, 0, 1, 1, 1, 1]
    probegroup = rec.get_probegroup()
    assert len(probegroup.probes) == 2
    np.testing.assert_array_equal(probegroup.probes[1].contact_positions, probe_b.contact_positions)
    with pytest.raises(ValueError, match="2 probes"):
        rec.get_probe()
    # the same probe twice: probes and groups stay distinct
    twice = aggregate_channels([a, a])
    assert len(twice.get_probegroup().probes) == 2 and twice.get_channel_groups().tolist() == [0, 0, 0, 1, 1, 1]
    # a channel slice of the aggregate keeps a working probe
    sub = rec.channel_slice([rec.channel_ids[4], rec.channel_ids[0]])
    np.testing.assert_array_equal(sub.get_channel_locations(), rec.get_channel_locations()[[4, 0]])
    assert len(sub.get_probegroup().probes) == 2
    # probes on some inputs only: none on the aggregate, locations kept when every input has them
    bare = NumpyRecording(arrays[1], sampling_frequency=FS, channel_ids=["u", "v"])
    with pytest.warns(UserWarning, match="only some recordings have a probe"):
        mixed = aggregate_channels([a, bare])
    assert not mixed.has_probe() and mixed.get_property("location") is None
    bare.set_channel_locations([[500.0, 0.0], [500.0, 10.0]])
    with pytest.warns(UserWarning, match="only some recordings have a probe"):
        mixed = aggregate_channels([a, bare])
    np.testing.assert_array_equal(mixed.get_channel_locations()[3:], [[500.0, 0.0], [500.0, 10.0]])


def test_aggregate_channels_views_of_views(recs, arrays):
    inner = aggregate_channels([recs[0].channel_slice([2, 0]), recs[1]])
    outer = aggregate_channels([inner.frame_slice(10, 60), recs[2].frame_slice(10, 60).channel_slice([23])])
    expected = np.concatenate([arrays[0][1][10:60][:, [2, 0]], arrays[1][1][10:60], arrays[2][1][10:60][:, [3]]],
                              axis=1)
    np.testing.assert_array_equal(outer.get_traces(segment_index=1), expected)
    assert outer.channel_ids.tolist() == [2, 0, 10, 11, 23]
    sliced = outer.channel_slice([23, 2])
    np.testing.assert_array_equal(sliced.get_traces(segment_index=1, start_frame=3, end_frame=30),
                                  expected[3:30][:, [4, 0]])
    assert outer._kwargs["recording_list_or_dict"][0] is not None and not outer.is_json_serializable()


def test_aggregate_channels_to_dict_round_trip():
    a = AggregateTestSeededRecording([50, 30], ["a", "b"], FS, seed=1)
    b = AggregateTestSeededRecording([50, 30], ["c"], FS, seed=2)
    for rec in (aggregate_channels([a, b]), aggregate_channels({"x": a, "y": b.channel_slice(["c"])}),
                aggregate_channels([a, a], renamed_channel_ids=[1, 2, 3, 4])):
        assert rec.is_json_serializable()
        rebuilt = BaseExtractor.from_dict(json.loads(json.dumps(rec.to_dict())))
        assert rebuilt.channel_ids.tolist() == rec.channel_ids.tolist()
        for seg in range(2):
            np.testing.assert_array_equal(rebuilt.get_traces(segment_index=seg), rec.get_traces(segment_index=seg))
    np.testing.assert_array_equal(rec.get_traces(segment_index=1), np.concatenate([a.arrays[1]] * 2, axis=1))


# -------------------------------------------------------------------------------------- units
@pytest.fixture
def sortings(rng):
    """Two sortings, two segments (200 and 90 samples), as {unit: train} per segment."""
    trains_a = [{u: np.sort(rng.choice(n, size=k, replace=False)) for u, k in zip([0, 1], (20, 9))} for n in (200, 90)]
    trains_b = [{u: np.sort(rng.choice(n, size=k, replace=False)) for u, k in zip([5, 6, 7], (4, 30, 0))}
                for n in (200, 90)]
    return (NumpySorting.from_unit_dict(trains_a, FS), trains_a), (NumpySorting.from_unit_dict(trains_b, FS), trains_b)


def _expected_vector(trains_per_sorting, unit_ids):
    rows = []
    k = 0
    for trains in trains_per_sorting:
        for seg, d in enumerate(trains):
            for j, (u, t) in enumerate(d.items()):
                rows += [(int(s), k + j, seg) for s in t]
        k += len(trains[0])
    rows.sort(key=lambda r: (r[2], r[0], r[1]))
    return np.array(rows, dtype=SPIKE_VECTOR_DTYPE)


def test_aggregate_units_trains_and_spike_vector(sortings):
    (sa, ta), (sb, tb) = sortings
    agg = aggregate_units([sa, sb])
    assert agg.unit_ids.tolist() == [0, 1, 5, 6, 7] and agg.get_num_segments() == 2
    for seg in range(2):
        for u, t in {**ta[seg], **tb[seg]}.items():
            np.testing.assert_array_equal(agg.get_unit_spike_train(u, segment_index=seg, use_cache=False), t)
            np.testing.assert_array_equal(
                agg.get_unit_spike_train(u, segment_index=seg, start_frame=20, end_frame=60, use_cache=False),
                t[(t >= 20) & (t < 60)],
            )
    spikes = agg.to_spike_vector()
    np.testing.assert_array_equal(spikes, _expected_vector([ta, tb], agg.unit_ids))
    np.testing.assert_array_equal(spikes, BaseSorting._compute_spike_vector(agg))
    assert agg.count_num_spikes_per_unit() == {0: 40, 1: 18, 5: 8, 6: 60, 7: 0}
    # views of views
    nested = aggregate_units([agg.select_units([6, 0]), sb.rename_units(["x", "y", "z"])])
    assert nested.unit_ids.tolist() == ["0", "1", "2", "3", "4"]
    np.testing.assert_array_equal(nested.get_unit_spike_train("0", segment_index=1), tb[1][6])
    np.testing.assert_array_equal(nested.get_unit_spike_train("3", segment_index=0), tb[0][6])
    np.testing.assert_array_equal(nested.to_spike_vector(), BaseSorting._compute_spike_vector(nested))


def test_unit_ids_rule(sortings):
    (sa, _), (sb, _) = sortings
    # integer ids with duplicates: 0..n-1 as ints (as SpikeInterface)
    assert aggregate_units([sa, sa]).unit_ids.tolist() == [0, 1, 2, 3]
    named = sa.rename_units(["a", "b"])
    assert aggregate_units([named, sa]).unit_ids.tolist() == ["0", "1", "2", "3"]
    assert aggregate_units([named, sb]).unit_ids.tolist() == ["0", "1", "2", "3", "4"]
    assert aggregate_units([named, sb.rename_units(["c", "d", "e"])]).unit_ids.tolist() == list("abcde")
    renamed = aggregate_units([sa, sa], renamed_unit_ids=["w", "x", "y", "z"])
    np.testing.assert_array_equal(renamed.get_unit_spike_train("y", segment_index=0), sa.get_unit_spike_train(0, 0))
    with pytest.raises(ValueError, match="renamed_unit_ids has 3 ids"):
        aggregate_units([sa, sa], renamed_unit_ids=[1, 2, 3])


def test_aggregate_units_properties_recording_and_errors(sortings):
    (sa, ta), (sb, tb) = sortings
    sa.set_property("snr", np.array([1.0, 2.0]))
    sb.set_property("snr", np.array([3.0, 4.0, 5.0]))
    sa.set_property("label", np.array(["good", "mua"]))
    sb.set_property("count", np.array([1, 2, 3]))
    sa.annotate(sorter="ks"); sb.annotate(sorter="ks", extra=1)
    agg = aggregate_units({"A": sa, "B": sb})
    assert agg.get_property("snr").tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert agg.get_property("label").tolist() == ["good", "mua", "", "", ""]  # missing strings are ""
    assert agg.get_property("count") is None  # integers have no missing value
    assert agg.get_property("aggregation_key").tolist() == ["A", "A", "B", "B", "B"]
    assert agg.get_annotation_keys() == ["sorter"]
    assert not agg.has_recording()
    rec = NumpyRecording([np.zeros((200, 1), "int16"), np.zeros((90, 1), "int16")], sampling_frequency=FS,
                         t_starts=[3.0, 7.0])
    sa.register_recording(rec)
    sb.register_recording(rec)
    agg = aggregate_units([sa, sb])
    assert agg.get_recording() is rec and agg.get_num_samples(1) == 90
    np.testing.assert_allclose(agg.get_unit_spike_train(6, segment_index=1, return_times=True), 7.0 + tb[1][6] / FS)
    # errors name the input that differs
    short = NumpyRecording([np.zeros((200, 1), "int16"), np.zeros((95, 1), "int16")], sampling_frequency=FS)
    sc = NumpySorting.from_unit_dict(tb, FS)
    sc.register_recording(short)
    with pytest.raises(ValueError, match=r"sorting_list\[1\] has 95 samples in segment 1 but sorting_list\[0\] has 90"):
        aggregate_units([sa, sc])
    one_segment = NumpySorting.from_unit_dict(tb[:1], FS)
    with pytest.raises(ValueError, match=r"sorting_list\[1\] has 1 segments but sorting_list\[0\] has 2"):
        aggregate_units([sa, one_segment])
    other_fs = NumpySorting.from_unit_dict(tb, 2 * FS)
    with pytest.raises(ValueError, match=r"sorting_list\[1\] has sampling_frequency 2000.0"):
        aggregate_units([sa, other_fs])
    with pytest.raises(ValueError, match=r"sorting_list\[1\] must be a BaseSorting"):
        aggregate_units([sa, rec])


def test_aggregate_units_empty_and_not_serialisable(sortings):
    (sa, _), _ = sortings
    empty = NumpySorting(np.zeros(0, dtype=SPIKE_VECTOR_DTYPE), FS, ["e"], num_segments=2)
    agg = aggregate_units([empty, empty.rename_units(["f"])])
    assert agg.to_spike_vector().size == 0 and agg.unit_ids.tolist() == ["e", "f"]
    agg = aggregate_units([sa, empty])
    assert agg.unit_ids.tolist() == ["0", "1", "2"]
    assert not agg.is_json_serializable() and agg._kwargs["sorting_list"][0] is sa


def test_matches_spikeinterface_reference(tmp_path, arrays, sortings):
    from reference_env import run_reference

    (sa, _), (sb, _) = sortings
    for i, per_input in enumerate(arrays):
        for seg, arr in enumerate(per_input):
            np.save(tmp_path / f"arr{i}_{seg}.npy", arr)
    np.save(tmp_path / "sa.npy", sa.to_spike_vector())
    np.save(tmp_path / "sb.npy", sb.to_spike_vector())
    script = """
import json, numpy as np
import spikeinterface.core as sc
arrs = [[np.load(f"arr{i}_{s}.npy") for s in range(2)] for i in range(3)]
ids = [[0, 1, 2], [10, 11], [20, 21, 22, 23]]
recs = [sc.NumpyRecording(a, 1000.0, channel_ids=i) for a, i in zip(arrs, ids)]
plain = [sc.NumpyRecording(a, 1000.0) for a in arrs]
named = sc.NumpyRecording(arrs[1], 1000.0, channel_ids=["x", "y"])
out = {}
agg = sc.aggregate_channels(recs)
out["ids"] = agg.channel_ids.tolist()
out["dup_ids"] = sc.aggregate_channels(plain).channel_ids.tolist()
out["mixed_ids"] = sc.aggregate_channels([plain[0], named]).channel_ids.tolist()
out["traces"] = agg.get_traces(segment_index=1, start_frame=5, end_frame=40, channel_ids=[22, 0, 11]).tolist()
sa = sc.NumpySorting(np.load("sa.npy"), 1000.0, [0, 1]); sb = sc.NumpySorting(np.load("sb.npy"), 1000.0, [5, 6, 7])
out["unit_ids"] = sc.aggregate_units([sa, sb]).unit_ids.tolist()
out["dup_unit_ids"] = sc.aggregate_units([sa, sa]).unit_ids.tolist()
out["spikes"] = sc.aggregate_units([sa, sb]).to_spike_vector().tolist()
print(json.dumps(out))
"""
    reference = json.loads(run_reference(script, cwd=tmp_path).strip().splitlines()[-1])
    ids = [[0, 1, 2], [10, 11], [20, 21, 22, 23]]
    recs = [NumpyRecording(a, sampling_frequency=FS, channel_ids=i) for a, i in zip(arrays, ids)]
    plain = [NumpyRecording(a, sampling_frequency=FS) for a in arrays]
    named = NumpyRecording(arrays[1], sampling_frequency=FS, channel_ids=["x", "y"])
    agg = aggregate_channels(recs)
    assert agg.channel_ids.tolist() == reference["ids"]
    assert aggregate_channels(plain).channel_ids.tolist() == reference["dup_ids"]
    assert aggregate_channels([plain[0], named]).channel_ids.tolist() == reference["mixed_ids"]
    np.testing.assert_array_equal(
        agg.get_traces(segment_index=1, start_frame=5, end_frame=40, channel_ids=[22, 0, 11]), reference["traces"])
    assert aggregate_units([sa, sb]).unit_ids.tolist() == reference["unit_ids"]
    assert aggregate_units([sa, sa]).unit_ids.tolist() == reference["dup_unit_ids"]
    assert aggregate_units([sa, sb]).to_spike_vector().tolist() == [tuple(r) for r in reference["spikes"]]
