"""The neo glue on its own: stream choice, unit conversion, side-by-side streams (with a minimal RawIO double)."""

from __future__ import annotations

import numpy as np
import pytest

from sicore.extractors.neo_recording import NeoBaseRecordingExtractor, select_stream

_CHANNEL_DTYPE = [("name", "U64"), ("id", "U64"), ("sampling_rate", "f8"), ("dtype", "U16"), ("units", "U64"),
                  ("gain", "f8"), ("offset", "f8"), ("stream_id", "U64"), ("buffer_id", "U64")]
_STREAM_DTYPE = [("name", "U64"), ("id", "U64"), ("buffer_id", "U64")]


class FakeRawIO:
    """What NeoBaseRecordingExtractor uses of a parsed neo RawIO, over in-memory arrays."""

    def __init__(self, streams: dict, segments: list[dict], t_starts: list[float]):
        self.header = {
            "nb_block": 1, "nb_segment": [len(segments)],
            "signal_streams": np.array([(name, name, "0") for name in streams], dtype=_STREAM_DTYPE),
            "signal_channels": np.array([c for name, chans in streams.items() for c in chans], dtype=_CHANNEL_DTYPE),
        }
        self._segments = segments
        self._t_starts = t_starts
        self.calls = []

    def _stream_id(self, stream_index):
        return str(self.header["signal_streams"][stream_index]["id"])

    def get_signal_size(self, block_index, seg_index, stream_index):
        return self._segments[seg_index][self._stream_id(stream_index)].shape[0]

    def get_signal_t_start(self, block_index, seg_index, stream_index):
        return self._t_starts[seg_index]

    def get_analogsignal_chunk(self, block_index, seg_index, i_start, i_stop, stream_index, channel_indexes):
        self.calls.append((self._stream_id(stream_index), i_start, i_stop, channel_indexes))
        data = self._segments[seg_index][self._stream_id(stream_index)]
        return data[i_start:i_stop][:, channel_indexes]


class FakeRecording(NeoBaseRecordingExtractor):
    def __init__(self, rawio, stream_indices, use_names_as_ids=False):
        self._init_from_rawio(rawio, stream_indices, use_names_as_ids=use_names_as_ids)


def _channel(name, units, gain, stream, rate=1000.0, offset=0.0):
    return (name, f"{stream}#{name}", rate, "int16", units, gain, offset, stream, "0")


@pytest.fixture
def fake():
    rng = np.random.default_rng(3)
    streams = {
        "volts": [_channel("A", "V", 0.001, "volts", offset=-0.5), _channel("B", "mV", 0.5, "volts")],
        "sync": [_channel("S", "uV", 1.0, "sync")],
        "current": [_channel("I", "pA", 2.0, "current")],
        "slow": [_channel("Z", "uV", 1.0, "slow", rate=10.0)],
    }
    segments = [{name: rng.integers(-100, 100, size=(n, len(chans))).astype("int16") for name, chans in streams.items()}
                for n in (50, 30)]
    return FakeRawIO(streams, segments, [0.0, 12.5]), segments


def test_select_stream_errors(fake):
    rawio, _ = fake
    assert select_stream(rawio, None, "sync", "src") == 1
    assert select_stream(rawio, "current", "current", "src") == 2
    with pytest.raises(ValueError, match=r"src has several streams.*\['volts', 'sync', 'current', 'slow'\]"):
        select_stream(rawio, None, None, "src")
    with pytest.raises(ValueError, match="stream_id 'nope' is not a stream of src"):
        select_stream(rawio, "nope", None, "src")


def test_units_become_microvolt_gains(fake):
    rawio, segments = fake
    rec = FakeRecording(rawio, [0])
    np.testing.assert_allclose(rec.get_channel_gains(), [1000.0, 500.0])  # V and mV to µV
    np.testing.assert_allclose(rec.get_channel_offsets(), [-500000.0, 0.0])
    assert rec.get_property("physical_unit").tolist() == ["V", "mV"]
    np.testing.assert_allclose(rec.get_traces(segment_index=1, return_scaled=True),
                               segments[1]["volts"] * [1000.0, 500.0] + [-500000.0, 0.0], rtol=1e-6)
    assert [rec.get_start_time(i) for i in range(2)] == [0.0, 12.5]
    current = FakeRecording(rawio, [2])
    assert not current.has_scaleable_traces()  # pA is no voltage
    np.testing.assert_allclose(current.get_property("gain_to_physical_unit"), [2.0])


def test_side_by_side_streams_read_only_what_is_asked(fake):
    rawio, segments = fake
    rec = FakeRecording(rawio, [0, 1], use_names_as_ids=True)
    assert rec.channel_ids.tolist() == ["A", "B", "S"]
    both = np.hstack([segments[0]["volts"], segments[0]["sync"]])
    np.testing.assert_array_equal(rec.get_traces(segment_index=0), both)
    rawio.calls.clear()
    np.testing.assert_array_equal(rec.get_traces(segment_index=0, start_frame=3, end_frame=9, channel_ids=["B"]),
                                  both[3:9, [1]])
    assert [c[0] for c in rawio.calls] == ["volts"]  # the sync stream was not touched
    np.testing.assert_array_equal(rec.get_traces(segment_index=0, channel_ids=["S", "A"]), both[:, [2, 0]])
    with pytest.raises(ValueError, match="mix sampling rates"):
        FakeRecording(rawio, [0, 3])
