"""BaseEvent / NumpyEvent: values against the arrays built here, time windows, segments, errors."""

import pickle

import numpy as np
import pytest

from sicore.event import BaseEvent, NumpyEvent

EPOCH_DTYPE = np.dtype([("time", "float64"), ("duration", "float64"), ("label", "<U10")])
TIME_DTYPE = np.dtype([("time", "float64")])


@pytest.fixture
def event_dicts():
    """Two segments, channel "ttl" (epochs with duration and label) and channel "stim" (times only)."""
    seg0 = {
        "ttl": np.array([(0.5, 0.1, "on"), (1.5, 0.2, "off"), (2.5, 0.1, "on")], dtype=EPOCH_DTYPE),
        "stim": np.array([(0.25,), (3.0,)], dtype=TIME_DTYPE),
    }
    seg1 = {
        "ttl": np.array([(10.0, 1.0, "x")], dtype=EPOCH_DTYPE),
        "stim": np.array([(9.0,), (9.5,), (11.0,)], dtype=TIME_DTYPE),
    }
    return [seg0, seg1]


@pytest.fixture
def event(event_dicts):
    return NumpyEvent.from_dict(event_dicts)


def test_basic_getters(event):
    assert isinstance(event, BaseEvent)
    assert event.channel_ids.tolist() == ["ttl", "stim"]
    assert event.get_channel_ids().tolist() == ["ttl", "stim"]
    assert event.get_num_channels() == 2
    assert event.get_num_segments() == 2
    assert event.get_dtype("ttl") == EPOCH_DTYPE
    assert event.get_dtype("stim") == TIME_DTYPE
    assert repr(event) == "NumpyEvent: 2 channels - 2 segments - 9 events - fields: time, duration, label"


def test_events_values(event, event_dicts):
    for seg in range(2):
        for channel_id in ("ttl", "stim"):
            events = event.get_events(channel_id=channel_id, segment_index=seg)
            np.testing.assert_array_equal(events, event_dicts[seg][channel_id])
            assert events.dtype == event_dicts[seg][channel_id].dtype
            np.testing.assert_array_equal(event.get_event_times(channel_id, seg), event_dicts[seg][channel_id]["time"])
    assert event.get_events("ttl", 0)["label"].tolist() == ["on", "off", "on"]


def test_time_window(event, event_dicts):
    ttl = event_dicts[0]["ttl"]
    # start inclusive, end inclusive (as SpikeInterface)
    np.testing.assert_array_equal(event.get_events("ttl", 0, start_time=1.5), ttl[1:])
    np.testing.assert_array_equal(event.get_events("ttl", 0, end_time=1.5), ttl[:2])
    np.testing.assert_array_equal(event.get_events("ttl", 0, start_time=0.6, end_time=2.4), ttl[1:2])
    stim = event_dicts[1]["stim"]["time"]
    np.testing.assert_array_equal(event.get_event_times("stim", 1, start_time=9.2, end_time=11.0), stim[1:])
    assert event.get_event_times("stim", 1, start_time=20.0).size == 0
    with pytest.raises(ValueError, match="end_time 1.0 is before start_time 2.0"):
        event.get_events("ttl", 0, start_time=2.0, end_time=1.0)
    with pytest.raises(ValueError, match="start_time must be a time"):
        event.get_events("ttl", 0, start_time="1s")


def test_segment_index_checks(event):
    with pytest.raises(ValueError, match="segment_index is required: this object has 2 segments"):
        event.get_events("ttl")
    with pytest.raises(ValueError, match="segment_index is required"):
        event.get_event_times("stim")
    with pytest.raises(ValueError, match="segment_index 2 is out of range"):
        event.get_events("ttl", segment_index=2)
    with pytest.raises(ValueError, match="segment_index must be an int"):
        event.get_events("ttl", segment_index=0.0)


def test_channel_checks(event):
    with pytest.raises(KeyError, match="channel_id: 'nope'"):
        event.get_events("nope", 0)
    with pytest.raises(KeyError, match="channel_id: 'nope'"):
        event.get_event_times("nope", 0)
    with pytest.raises(KeyError, match="channel_id: 'nope'"):
        event.get_dtype("nope")
    with pytest.raises(ValueError, match="channel_id is required: this object has 2 channels"):
        event.get_events(segment_index=0)


def test_mono_channel_mono_segment_defaults():
    times = np.array([0.1, 0.2, 0.7])
    event = NumpyEvent.from_dict({"trig": times})  # a plain array of times and a single dict
    assert event.get_num_segments() == 1
    assert event.get_dtype() == TIME_DTYPE
    np.testing.assert_array_equal(event.get_event_times(), times)
    np.testing.assert_array_equal(event.get_events()["time"], times)


def test_plain_times_and_int_channel_ids():
    event = NumpyEvent.from_dict([{0: [1.0, 2.0], 1: np.array([0.5])}, {0: np.array([3.0]), 1: []}])
    assert event.channel_ids.tolist() == [0, 1]
    np.testing.assert_array_equal(event.get_event_times(0, 1), [3.0])
    assert event.get_event_times(1, 1).size == 0
    assert event.get_dtype(1) == TIME_DTYPE


def test_constructor_and_add_event_segment():
    dtypes = {"a": EPOCH_DTYPE, "b": TIME_DTYPE}
    event = NumpyEvent(["a", "b"], dtypes)
    assert event.get_num_segments() == 0
    a_events = np.array([(1.0, 0.5, "up")], dtype=EPOCH_DTYPE)
    event.add_event_segment({"a": a_events, "b": [0.3, 0.4]})
    event.add_event_segment({"b": np.array([(5.0,)], dtype=[("time", "float32")])})  # "a" has no events here
    assert event.get_num_segments() == 2
    np.testing.assert_array_equal(event.get_events("a", 0), a_events)
    assert event.get_events("a", 1).size == 0 and event.get_events("a", 1).dtype == EPOCH_DTYPE
    assert event.get_events("b", 1).dtype == TIME_DTYPE  # cast to the declared dtype
    np.testing.assert_array_equal(event.get_event_times("b", 1), [5.0])
    # one dtype shared by every channel
    shared = NumpyEvent(["x", "y"], TIME_DTYPE, event_dict_list=[{"x": [1.0], "y": [2.0]}])
    assert shared.get_dtype("y") == TIME_DTYPE
    np.testing.assert_array_equal(shared.get_event_times("y"), [2.0])


def test_missing_time_field_errors():
    with pytest.raises(ValueError, match="structured_dtype must be a structured dtype with a 'time' field"):
        NumpyEvent(["a"], [("t", "float64")])
    with pytest.raises(ValueError, match="'time' field"):
        NumpyEvent(["a"], "float64")
    with pytest.raises(ValueError, match=r"structured_dtype\['b'\] must be a structured dtype with a 'time' field"):
        NumpyEvent(["a", "b"], {"a": TIME_DTYPE, "b": [("onset", "float64")]})
    with pytest.raises(ValueError, match="structured_dtype has no dtype for channel ids"):
        NumpyEvent(["a", "b"], {"a": TIME_DTYPE})
    with pytest.raises(ValueError, match=r"event_dict_list\[0\]\['a'\] must be a structured dtype with a 'time'"):
        NumpyEvent.from_dict([{"a": np.zeros(2, dtype=[("t", "float64")])}])
    with pytest.raises(ValueError, match="'time' field must be numeric"):
        NumpyEvent(["a"], [("time", "<U5")])


def test_segment_content_errors():
    event = NumpyEvent(["a"], EPOCH_DTYPE)
    with pytest.raises(ValueError, match=r"event_dict_list\[0\]\['a'\] has fields \('time',\)"):
        event.add_event_segment({"a": [1.0, 2.0]})  # plain times lack duration and label
    with pytest.raises(KeyError, match="'zz'"):
        event.add_event_segment({"zz": [1.0]})
    with pytest.raises(ValueError, match="must be a 1-d array of events"):
        event.add_event_segment({"a": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="must be a dict"):
        event.add_event_segment([1.0, 2.0])
    with pytest.raises(ValueError, match="not in event_dict_list"):
        NumpyEvent.from_dict([{"a": [1.0]}, {"a": [2.0], "b": [3.0]}])
    with pytest.raises(ValueError, match="non-empty list"):
        NumpyEvent.from_dict([])
    with pytest.raises(ValueError, match="ids must be unique"):
        NumpyEvent(["a", "a"], TIME_DTYPE)


def test_in_memory_clone_pickle(event, event_dicts):
    assert not event.is_json_serializable()
    clone = event.clone()
    np.testing.assert_array_equal(clone.get_events("ttl", 1), event_dicts[1]["ttl"])
    restored = pickle.loads(pickle.dumps(event))
    np.testing.assert_array_equal(restored.get_events("stim", 0), event_dicts[0]["stim"])
    assert restored.get_dtype("ttl") == EPOCH_DTYPE
