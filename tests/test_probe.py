"""Probe attachment through probeinterface, wiring, and propagation through views."""

import numpy as np
import probeinterface as pi
import pytest


def _wired_probe(num_contacts, wiring=None):
    probe = pi.generate_linear_probe(num_elec=num_contacts, ypitch=20)
    probe.set_device_channel_indices(np.arange(num_contacts) if wiring is None else wiring)
    return probe


def test_set_probe_returns_new_recording_and_sets_properties(recording):
    probe = _wired_probe(8)
    with_probe = recording.set_probe(probe)
    assert with_probe is not recording
    assert not recording.has_probe() and with_probe.has_probe()
    expected = probe.contact_positions
    np.testing.assert_array_equal(with_probe.get_channel_locations(), expected)
    np.testing.assert_array_equal(with_probe.get_property("location"), with_probe.get_channel_locations())
    assert with_probe.get_property("contact_vector").size == 8
    assert with_probe.get_channel_groups().tolist() == [0] * 8
    returned = with_probe.get_probe()
    np.testing.assert_array_equal(returned.contact_positions, expected)
    np.testing.assert_array_equal(returned.device_channel_indices, np.arange(8))


def test_set_probe_in_place(recording):
    out = recording.set_probe(_wired_probe(8), in_place=True)
    assert out is recording and recording.has_probe()


def test_wiring_is_honoured(recording, traces_list):
    # contact i is wired to channel wiring[i]: channel 0 sits on the last contact
    wiring = np.arange(8)[::-1]
    probe = _wired_probe(8, wiring)
    rec = recording.set_probe(probe)
    assert rec.channel_ids.tolist() == recording.channel_ids.tolist()
    np.testing.assert_array_equal(rec.get_channel_locations()[0], probe.contact_positions[7])
    np.testing.assert_array_equal(rec.get_traces(segment_index=0, channel_ids=["ch0"]), traces_list[0][:, [0]])


def test_unwired_contacts_drop_channels(recording, traces_list):
    # 6 contacts wired to channels 7, 1, 2, 3, 4, 5; channels 0 and 6 have no contact
    probe = _wired_probe(6, [7, 1, 2, 3, 4, 5])
    rec = recording.set_probe(probe)
    assert rec.channel_ids.tolist() == ["ch1", "ch2", "ch3", "ch4", "ch5", "ch7"]
    np.testing.assert_array_equal(rec.get_channel_locations()[-1], probe.contact_positions[0])
    np.testing.assert_array_equal(rec.get_traces(segment_index=1), traces_list[1][:, [1, 2, 3, 4, 5, 7]])
    # a contact explicitly unwired (-1) is dropped too
    probe2 = _wired_probe(8, [0, 1, 2, 3, -1, 5, 6, 7])
    assert recording.set_probe(probe2).get_num_channels() == 7
    with pytest.raises(ValueError, match="in_place"):
        recording.set_probe(probe, in_place=True)


@pytest.mark.parametrize(
    "probe_factory, match",
    [
        (lambda: _wired_probe(10), "device_channel_indices reach"),
        (lambda: pi.generate_linear_probe(num_elec=8), "device_channel_indices is not set"),
        (lambda: _wired_probe(3, [0, 0, 1]), "same channel"),
        (lambda: "not a probe", "Probe"),
    ],
)
def test_bad_probes_are_clear_errors(recording, probe_factory, match):
    with pytest.raises(ValueError, match=match):
        recording.set_probe(probe_factory())


def test_group_mode_by_shank_and_probegroup(recording):
    probe = pi.generate_multi_shank(num_shank=2, num_columns=1, num_contact_per_column=4)
    probe.set_device_channel_indices(np.arange(8))
    by_shank = recording.set_probe(probe, group_mode="by_shank")
    assert by_shank.get_channel_groups().tolist() == [0] * 4 + [1] * 4
    assert sorted(by_shank.split_by("group")) == [0, 1]
    group = pi.ProbeGroup()
    for k in range(2):
        p = _wired_probe(4, np.arange(4) + 4 * k)
        p.move([100 * k, 0])
        group.add_probe(p)
    rec = recording.set_probegroup(group)
    assert rec.get_channel_groups().tolist() == [0] * 4 + [1] * 4
    assert len(rec.get_probegroup().probes) == 2
    with pytest.raises(ValueError, match="get_probegroup"):
        rec.get_probe()
    with pytest.raises(ValueError, match="group_mode"):
        recording.set_probe(probe, group_mode="by_side")


def test_probe_propagates_through_views(recording):
    probe = _wired_probe(8)
    probe.annotate(manufacturer="acme")
    rec = recording.set_probe(probe)
    view = rec.frame_slice(10, 1000).channel_slice(["ch6", "ch2"]).frame_slice(0, 100)
    np.testing.assert_array_equal(view.get_channel_locations(), probe.contact_positions[[6, 2]])
    sub_probe = view.get_probe()
    np.testing.assert_array_equal(sub_probe.contact_positions, probe.contact_positions[[6, 2]])
    assert sub_probe.annotations.get("manufacturer") == "acme"
    assert sub_probe.probe_planar_contour is not None
    removed = rec.remove_channels(["ch0"])
    assert removed.get_probe().get_contact_count() == 7


def test_dummy_probe_from_locations(recording):
    locations = np.column_stack([np.zeros(8), np.arange(8) * 25.0])
    recording.set_dummy_probe_from_locations(locations)
    np.testing.assert_array_equal(recording.get_channel_locations(), locations)
    assert recording.get_probe().get_contact_count() == 8
    with pytest.raises(ValueError, match="one row per channel"):
        recording.set_dummy_probe_from_locations(locations[:3])


def test_locations_missing_is_clear(recording):
    with pytest.raises(ValueError, match="set_probe"):
        recording.get_channel_locations()
    with pytest.raises(ValueError, match="no probe"):
        recording.get_probe()
