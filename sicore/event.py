"""BaseEvent (events and epochs, e.g. TTL pulses, as structured arrays with a ``time`` field) and NumpyEvent."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .base import BaseExtractor

# Structured dtype of events given as plain arrays of times (seconds).
TIME_ONLY_DTYPE = np.dtype([("time", "float64")])


class BaseEventSegment:
    """One segment of events. Subclasses implement ``get_events``."""

    def get_events(self, channel_id, start_time: float | None, end_time: float | None) -> np.ndarray:
        """Structured events of ``channel_id`` with ``start_time <= time <= end_time`` (None: unbounded)."""
        raise NotImplementedError

    def get_event_times(self, channel_id, start_time: float | None, end_time: float | None) -> np.ndarray:
        return self.get_events(channel_id, start_time, end_time)["time"]


class BaseEvent(BaseExtractor):
    """Events (and epochs) of one or more event channels over one or more segments.

    Each channel's events are a numpy structured array whose ``time`` field holds times in seconds;
    other fields (``duration``, ``label``, ...) are free.

    Parameters
    ----------
    channel_ids : array-like
        Unique event channel ids.
    structured_dtype : numpy dtype or dict
        Structured dtype of the events of every channel, or ``{channel_id: dtype}`` for one per channel.
        Each must have a ``time`` field.
    """

    def __init__(self, channel_ids, structured_dtype):
        BaseExtractor.__init__(self, channel_ids)
        if isinstance(structured_dtype, Mapping):
            missing = [c for c in self.channel_ids.tolist() if c not in structured_dtype]
            if missing:
                raise ValueError(f"structured_dtype has no dtype for channel ids {missing}")
            dtypes = {c: _check_structured_dtype(structured_dtype[c], f"structured_dtype[{c!r}]")
                      for c in self.channel_ids.tolist()}
        else:
            dtype = _check_structured_dtype(structured_dtype, "structured_dtype")
            dtypes = {c: dtype for c in self.channel_ids.tolist()}
        self._structured_dtypes: dict = dtypes
        self._event_segments: list[BaseEventSegment] = []

    def add_event_segment(self, event_segment: BaseEventSegment) -> None:
        self._event_segments.append(event_segment)

    # ----------------------------------------------------------- channels
    @property
    def channel_ids(self) -> np.ndarray:
        return self._main_ids

    def get_channel_ids(self) -> np.ndarray:
        return self._main_ids

    def get_num_channels(self) -> int:
        return int(self._main_ids.size)

    def _check_channel_id(self, channel_id):
        """The channel id to use (a plain Python value); None is allowed only with one channel."""
        if channel_id is None:
            if self.get_num_channels() == 1:
                return self._main_ids[0].item()
            raise ValueError(
                f"channel_id is required: this object has {self.get_num_channels()} channels "
                f"({self.channel_ids.tolist()})"
            )
        index = self._main_id_to_index(channel_id, "channel_id")
        return self._main_ids[index].item()

    def get_dtype(self, channel_id=None) -> np.dtype:
        """Structured dtype of the events of ``channel_id`` (may be omitted when there is one channel)."""
        return self._structured_dtypes[self._check_channel_id(channel_id)]

    # ----------------------------------------------------------- segments
    def get_num_segments(self) -> int:
        return len(self._event_segments)


    # -------------------------------------------------------------- events
    def get_events(
        self,
        channel_id=None,
        segment_index: int | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
    ) -> np.ndarray:
        """Events of one channel as a structured array (dtype ``get_dtype(channel_id)``).

        Parameters
        ----------
        channel_id : int or str or None, default: None
            Event channel; required when there are several (events of different channels may have
            different dtypes, so they are never concatenated).
        segment_index : int or None, default: None
            Segment to read; required when there are several.
        start_time : float or None, default: None
            Keep events with ``time >= start_time`` (seconds); None: unbounded.
        end_time : float or None, default: None
            Keep events with ``time <= end_time`` (seconds, included as in SpikeInterface); None: unbounded.
        """
        channel_id = self._check_channel_id(channel_id)
        segment_index = self._check_segment_index(segment_index)
        start_time, end_time = _check_time_range(start_time, end_time)
        return self._event_segments[segment_index].get_events(channel_id, start_time, end_time)

    def get_event_times(
        self,
        channel_id=None,
        segment_index: int | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
    ) -> np.ndarray:
        """Times in seconds (the ``time`` field) of the events of one channel; see ``get_events``.

        Parameters
        ----------
        channel_id : int or str or None, default: None
            Event channel; required when there are several.
        segment_index : int or None, default: None
            Segment to read; required when there are several.
        start_time : float or None, default: None
            Keep times ``>= start_time``; None: unbounded.
        end_time : float or None, default: None
            Keep times ``<= end_time``; None: unbounded.
        """
        channel_id = self._check_channel_id(channel_id)
        segment_index = self._check_segment_index(segment_index)
        start_time, end_time = _check_time_range(start_time, end_time)
        return self._event_segments[segment_index].get_event_times(channel_id, start_time, end_time)

    def _num_events(self, segment_index: int) -> int:
        return sum(
            len(self._event_segments[segment_index].get_event_times(c, None, None)) for c in self.channel_ids.tolist()
        )

    # ----------------------------------------------------------------- repr
    def save(self, **kwargs):
        """Save the events (npz).

        Keyword arguments are those of ``sicore.io.save_event`` (``folder``, ``format``, ``overwrite``, ...,
        and job kwargs for recordings). Returns the saved object, reloaded from disk.
        """
        from .io.save import save_event

        return save_event(self, **kwargs)

    def __repr__(self) -> str:
        num_segments = self.get_num_segments()
        num_events = sum(self._num_events(i) for i in range(num_segments))
        fields = []
        for dtype in self._structured_dtypes.values():
            fields += [name for name in dtype.names if name not in fields]
        return (
            f"{type(self).__name__}: {self.get_num_channels()} channels - {num_segments} segments - "
            f"{num_events:,} events - fields: {', '.join(fields)}"
        )


class NumpyEvent(BaseEvent):
    """Events held in memory: per segment a dict ``{channel_id: structured array}``.

    Parameters
    ----------
    channel_ids : array-like
        Unique event channel ids.
    structured_dtype : numpy dtype or dict
        Events dtype of every channel (or ``{channel_id: dtype}``); must have a ``time`` field.
    event_dict_list : list of dict or None, default: None
        Segments to add right away (see ``add_event_segment``).
    """

    _json_serializable = False

    def __init__(self, channel_ids, structured_dtype, event_dict_list: list | None = None):
        BaseEvent.__init__(self, channel_ids, structured_dtype)
        self._event_dict_list: list[dict] = []
        self._kwargs = {
            "channel_ids": self.channel_ids,
            "structured_dtype": dict(self._structured_dtypes),
            "event_dict_list": self._event_dict_list,
        }
        if isinstance(event_dict_list, Mapping):
            event_dict_list = [event_dict_list]
        for event_dict in event_dict_list or []:
            self.add_event_segment(event_dict)

    def add_event_segment(self, event_segment) -> None:
        """Add a segment: a dict ``{channel_id: events}`` or a ``NumpyEventSegment``.

        Events are structured arrays with this object's dtype for the channel, or plain arrays of times
        (seconds) when that dtype has only the ``time`` field. A channel missing from the dict has no
        events in this segment.
        """
        if isinstance(event_segment, NumpyEventSegment):
            event_dict = event_segment._event_dict
        elif isinstance(event_segment, Mapping):
            event_dict = event_segment
        else:
            raise ValueError(
                f"event_segment must be a dict {{channel_id: events}} or a NumpyEventSegment, got {type(event_segment)}"
            )
        checked = self._checked_event_dict(event_dict, segment_index=len(self._event_segments))
        self._event_dict_list.append(checked)
        BaseEvent.add_event_segment(self, NumpyEventSegment(checked))

    def _checked_event_dict(self, event_dict: Mapping, segment_index: int) -> dict:
        checked = {}
        given = {}
        for key, events in event_dict.items():
            channel_id = self._main_ids[self._main_id_to_index(key, f"event_dict_list[{segment_index}] key")].item()
            given[channel_id] = events
        for channel_id in self.channel_ids.tolist():
            dtype = self._structured_dtypes[channel_id]
            if channel_id not in given:
                checked[channel_id] = np.zeros(0, dtype=dtype)
                continue
            where = f"event_dict_list[{segment_index}][{channel_id!r}]"
            events = _as_structured_events(given[channel_id], where)
            if events.size == 0:
                checked[channel_id] = np.zeros(0, dtype=dtype)
                continue
            if events.dtype.names != dtype.names:
                raise ValueError(f"{where} has fields {events.dtype.names}, the channel's dtype has {dtype.names}")
            if events.dtype != dtype:
                events = events.astype(dtype)
            checked[channel_id] = events
        return checked

    @staticmethod
    def from_dict(event_dict_list) -> "NumpyEvent":
        """Events from one dict per segment ``{channel_id: events}``.

        Parameters
        ----------
        event_dict_list : list of dict or dict
            Per segment, each channel's events: a structured array with a ``time`` field (seconds) or a
            plain array of times. Channel ids are those of the first dict; each channel's dtype is taken
            from its first non-empty entry. A single dict means one segment.

        Returns
        -------
        event : NumpyEvent
        """
        if isinstance(event_dict_list, Mapping):
            event_dict_list = [event_dict_list]
        if not isinstance(event_dict_list, (list, tuple)) or len(event_dict_list) == 0:
            raise ValueError("event_dict_list must be a non-empty list of dicts {channel_id: events}, one per segment")
        for i, event_dict in enumerate(event_dict_list):
            if not isinstance(event_dict, Mapping):
                raise ValueError(f"event_dict_list[{i}] must be a dict {{channel_id: events}}, got {type(event_dict)}")
        channel_ids = list(event_dict_list[0].keys())
        if not channel_ids:
            raise ValueError("event_dict_list[0] names no channel")
        dtypes = {}
        for i, event_dict in enumerate(event_dict_list):
            for channel_id, events in event_dict.items():
                events = _as_structured_events(events, f"event_dict_list[{i}][{channel_id!r}]")
                # an empty plain list/array says nothing about the fields: prefer a later non-empty entry
                if channel_id not in dtypes or (dtypes[channel_id] == TIME_ONLY_DTYPE and events.size):
                    dtypes[channel_id] = events.dtype
        unknown = [c for c in dtypes if c not in channel_ids]
        if unknown:
            raise ValueError(f"event_dict_list names channel ids {unknown} that are not in event_dict_list[0]")
        event = NumpyEvent(channel_ids, {c: dtypes[c] for c in channel_ids})
        for event_dict in event_dict_list:
            event.add_event_segment(event_dict)
        return event


class NumpyEventSegment(BaseEventSegment):
    def __init__(self, event_dict: dict):
        self._event_dict = event_dict

    def get_events(self, channel_id, start_time, end_time):
        events = self._event_dict[channel_id]
        if start_time is None and end_time is None:
            return events
        times = events["time"]
        keep = np.ones(times.size, dtype=bool)
        if start_time is not None:
            keep &= times >= start_time
        if end_time is not None:
            keep &= times <= end_time
        return events[keep]


def _check_structured_dtype(dtype, name: str) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError as err:
        raise ValueError(f"{name} must be a numpy structured dtype with a 'time' field, got {dtype!r}") from err
    if dtype.names is None or "time" not in dtype.names:
        raise ValueError(
            f"{name} must be a structured dtype with a 'time' field (event times in seconds), got {dtype}"
        )
    if dtype["time"].kind not in "fiu":
        raise ValueError(f"{name}: the 'time' field must be numeric (seconds), got {dtype['time']}")
    return dtype


def _as_structured_events(events, where: str) -> np.ndarray:
    """Events as a 1-d structured array with a ``time`` field; plain arrays are taken as times in seconds."""
    events = np.asarray(events)
    if events.ndim != 1:
        raise ValueError(f"{where} must be a 1-d array of events, got shape {events.shape}")
    if events.dtype.names is None:
        if events.size and events.dtype.kind not in "fiu":
            raise ValueError(
                f"{where} must be a structured array with a 'time' field or an array of times in seconds, "
                f"got dtype {events.dtype}"
            )
        structured = np.zeros(events.size, dtype=TIME_ONLY_DTYPE)
        structured["time"] = events
        return structured
    _check_structured_dtype(events.dtype, where)
    return events


def _check_time_range(start_time, end_time) -> tuple[float | None, float | None]:
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if value is not None and not is_number:
            raise ValueError(f"{name} must be a time in seconds or None, got {value!r}")
    if start_time is not None and end_time is not None and end_time < start_time:
        raise ValueError(f"end_time {end_time} is before start_time {start_time}")
    return start_time, end_time
