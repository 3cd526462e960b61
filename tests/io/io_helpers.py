"""Helpers shared by the io tests (a recording with every kind of metadata, and its comparison)."""

import numpy as np
import probeinterface as pi


def make_rich_recording(traces_list):
    """A NumpyRecording with gains, a probe (annotations + contour), string/bool/2-d properties,
    nested annotations, a start time on segment 0 and a time vector on segment 1."""
    from sicore.numpy_objects import NumpyRecording

    rec = NumpyRecording(traces_list, sampling_frequency=20000.0, channel_ids=[f"ch{i}" for i in range(6)],
                         t_starts=[1.5, None])
    rec.set_channel_gains(np.linspace(0.19, 0.7, 6))
    rec.set_channel_offsets(np.arange(6, dtype=float) - 2.0)
    probe = pi.generate_linear_probe(num_elec=6, ypitch=25)
    probe.annotate(manufacturer="acme", model="lin6")
    probe.set_device_channel_indices(np.arange(6))
    rec.set_probe(probe, in_place=True)
    rec.set_property("quality", np.array(["good", "bad", "good", "noise", "good", "bad"]))
    rec.set_property("is_ref", np.array([False, True, False, False, False, False]))
    rec.set_property("xyz", np.arange(18, dtype=float).reshape(6, 3))
    rec.set_channel_groups([0, 0, 0, 1, 1, 1])
    rec.annotate(experiment={"mouse": "m1", "trials": [1, 2, 3]}, depth_um=1200.5, is_filtered=True)
    times = 7.0 + np.arange(traces_list[1].shape[0]) / 20000.0
    times[500:] += 0.25  # a gap: not a regular grid
    rec.set_times(times, segment_index=1)
    return rec


def assert_same_recording(saved, source, traces_list=None):
    """Traces, ids, properties, annotations, probe and times of ``saved`` equal those of ``source``."""
    assert saved.get_num_segments() == source.get_num_segments()
    assert saved.channel_ids.tolist() == source.channel_ids.tolist()
    assert saved.sampling_frequency == source.sampling_frequency
    for i in range(source.get_num_segments()):
        expected = source.get_traces(segment_index=i) if traces_list is None else traces_list[i]
        np.testing.assert_array_equal(saved.get_traces(segment_index=i), expected)
        np.testing.assert_array_equal(saved.get_times(i), source.get_times(i))
        assert saved.has_time_vector(i) == source.has_time_vector(i)
    assert set(saved.get_property_keys()) == set(source.get_property_keys())
    for key in source.get_property_keys():
        np.testing.assert_array_equal(saved.get_property(key), source.get_property(key), err_msg=key)
    for key in source.get_annotation_keys():
        assert saved.get_annotation(key) == source.get_annotation(key), key
    if source.has_probe():
        a, b = saved.get_probegroup().probes, source.get_probegroup().probes
        assert len(a) == len(b)
        for pa, pb in zip(a, b):
            np.testing.assert_array_equal(pa.contact_positions, pb.contact_positions)
            np.testing.assert_array_equal(pa.probe_planar_contour, pb.probe_planar_contour)
            assert pa.annotations == pb.annotations
            assert list(pa.contact_ids) == list(pb.contact_ids)
