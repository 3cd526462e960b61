"""Lazy segment manipulations: append, concatenate, split and select segments of recordings and sortings.

Every function returns a view: its segments delegate reads to the parent objects (no trace or spike
is copied by building it), and ``_kwargs`` holds the parents so ``to_dict()`` describes the view.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from .recording import BaseRecording, BaseRecordingSegment
from .sorting import SPIKE_VECTOR_DTYPE, BaseSorting, BaseSortingSegment

__all__ = [
    "AppendSegmentRecording",
    "ConcatenateSegmentRecording",
    "SelectSegmentRecording",
    "AppendSegmentSorting",
    "ConcatenateSegmentSorting",
    "SelectSegmentSorting",
    "append_recordings",
    "concatenate_recordings",
    "split_recording",
    "select_segment_recording",
    "append_sortings",
    "concatenate_sortings",
    "split_sorting",
    "select_segment_sorting",
]


# ----------------------------------------------------------------------------------------- checks
def _check_object_list(objects, cls: type, argument: str) -> list:
    """``objects`` as a non-empty list of ``cls`` instances; errors name the argument and the index."""
    if isinstance(objects, cls):
        raise ValueError(f"{argument} must be a list of {cls.__name__} objects, got a single {type(objects).__name__}")
    if isinstance(objects, dict) or not isinstance(objects, Sequence):
        raise ValueError(f"{argument} must be a list of {cls.__name__} objects, got {type(objects).__name__}")
    objects = list(objects)
    if len(objects) == 0:
        raise ValueError(f"{argument} is empty: give at least one {cls.__name__}")
    for i, obj in enumerate(objects):
        if not isinstance(obj, cls):
            raise ValueError(f"{argument}[{i}] must be a {cls.__name__}, got {type(obj).__name__}")
    return objects


def check_sampling_frequencies(objects: list, max_diff: float, argument: str, labels: list[str] | None = None
                               ) -> None:
    """Raise when a sampling frequency differs from ``objects[0]``'s by more than ``max_diff`` Hz.

    ``labels`` name the objects in messages (default ``argument[i]``).
    """
    if isinstance(max_diff, bool) or not isinstance(max_diff, (int, float, np.integer, np.floating)) \
            or not np.isfinite(max_diff) or max_diff < 0:
        raise ValueError(f"sampling_frequency_max_diff must be a number >= 0 (Hz), got {max_diff!r}")
    if labels is None:
        labels = [f"{argument}[{i}]" for i in range(len(objects))]
    fs0 = objects[0].sampling_frequency
    for obj, label in zip(objects[1:], labels[1:]):
        diff = abs(obj.sampling_frequency - fs0)
        if diff > max_diff:
            raise ValueError(
                f"{label} has sampling_frequency {obj.sampling_frequency} Hz but {labels[0]} has {fs0} Hz "
                f"(difference {diff} Hz > sampling_frequency_max_diff={max_diff})"
            )
        if diff > 0:
            warnings.warn(
                f"{label} has sampling_frequency {obj.sampling_frequency} Hz, {labels[0]} {fs0} Hz; "
                f"the result uses {fs0} Hz",
                stacklevel=4,
            )


def _check_same_channels(recordings: list, argument: str) -> None:
    """Recordings joined on the time axis must share channel ids (in order) and dtype."""
    ref = recordings[0]
    for i, rec in enumerate(recordings[1:], start=1):
        if rec.get_num_channels() != ref.get_num_channels() or not np.array_equal(rec.channel_ids, ref.channel_ids):
            raise ValueError(
                f"{argument}[{i}] has channel_ids {rec.channel_ids.tolist()} but {argument}[0] has "
                f"{ref.channel_ids.tolist()}: joining segments needs the same channels in the same order"
            )
        if rec.get_dtype() != ref.get_dtype():
            raise ValueError(
                f"{argument}[{i}] has dtype {rec.get_dtype()} but {argument}[0] has {ref.get_dtype()}: "
                "joining segments needs one dtype"
            )


def _check_same_units(sortings: list, argument: str) -> None:
    ref = sortings[0]
    for i, sorting in enumerate(sortings[1:], start=1):
        if sorting.get_num_units() != ref.get_num_units() or not np.array_equal(sorting.unit_ids, ref.unit_ids):
            raise ValueError(
                f"{argument}[{i}] has unit_ids {sorting.unit_ids.tolist()} but {argument}[0] has "
                f"{ref.unit_ids.tolist()}: joining segments needs the same units in the same order"
            )


def _normalize_segment_indices(segment_indices, num_segments: int) -> list[int]:
    """``segment_indices`` (an int or a list of ints) as a list, each checked against ``num_segments``."""
    if isinstance(segment_indices, (int, np.integer)) and not isinstance(segment_indices, (bool, np.bool_)):
        indices = [segment_indices]
    elif isinstance(segment_indices, (list, tuple, np.ndarray)):
        indices = np.asarray(segment_indices).ravel().tolist() if isinstance(segment_indices, np.ndarray) \
            else list(segment_indices)
    else:
        raise ValueError(f"segment_indices must be an int or a list of ints, got {segment_indices!r}")
    if len(indices) == 0:
        raise ValueError("segment_indices is empty: select at least one segment")
    out = []
    for index in indices:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"segment_indices must hold ints, got {index!r}")
        if not 0 <= index < num_segments:
            raise ValueError(
                f"segment_indices: {int(index)} is out of range, the object has {num_segments} segments "
                f"(valid indices 0..{num_segments - 1})"
            )
        out.append(int(index))
    return out


# ------------------------------------------------------------------------------ recording segments
class _ProxyRecordingSegment(BaseRecordingSegment):
    """A parent segment seen unchanged; its own times object so ``set_times`` on the view leaves the parent alone."""

    def __init__(self, parent_segment: BaseRecordingSegment):
        BaseRecordingSegment.__init__(self, parent_segment.sampling_frequency, **parent_segment.times_kwargs())
        self._parent_segment = parent_segment

    def get_num_samples(self) -> int:
        return self._parent_segment.get_num_samples()

    def get_traces(self, start_frame, end_frame, channel_indices):
        return self._parent_segment.get_traces(start_frame, end_frame, channel_indices)


class _ConcatenatedRecordingSegment(BaseRecordingSegment):
    """Several parent segments seen back to back as one segment."""

    def __init__(self, parent_segments: list[BaseRecordingSegment], sampling_frequency: float,
                 t_start: float | None = None, time_vector=None):
        BaseRecordingSegment.__init__(self, sampling_frequency, t_start=t_start, time_vector=time_vector)
        self._parent_segments = parent_segments
        lengths = [int(segment.get_num_samples()) for segment in parent_segments]
        # bounds[i] is the first frame of piece i in the concatenated segment
        self._bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    def get_num_samples(self) -> int:
        return int(self._bounds[-1])

    def get_traces(self, start_frame, end_frame, channel_indices):
        bounds = self._bounds
        if end_frame <= start_frame:
            # an empty block with the right dtype and channel count
            return self._parent_segments[0].get_traces(0, 0, channel_indices)
        # side="right" skips empty pieces sitting at the same bound
        first = int(np.searchsorted(bounds, start_frame, side="right")) - 1
        last = int(np.searchsorted(bounds, end_frame - 1, side="right")) - 1
        pieces = []
        for i in range(first, last + 1):
            lo = max(start_frame, bounds[i]) - bounds[i]
            hi = min(end_frame, bounds[i + 1]) - bounds[i]
            if hi > lo:
                pieces.append(self._parent_segments[i].get_traces(int(lo), int(hi), channel_indices))
        # a read inside one piece is returned as the parent gives it (no copy)
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=0)


# --------------------------------------------------------------------------------- recording views
class AppendSegmentRecording(BaseRecording):
    """Lazy multi-segment recording made of all segments of several recordings, in order.

    Parameters
    ----------
    recording_list : list of BaseRecording
        Recordings with the same channel ids and dtype.
    sampling_frequency_max_diff : float, default: 0
        Largest accepted difference of sampling frequencies (Hz); the result uses the first one's.
    """

    def __init__(self, recording_list: list[BaseRecording], sampling_frequency_max_diff: float = 0):
        recording_list = _check_object_list(recording_list, BaseRecording, "recording_list")
        check_sampling_frequencies(recording_list, sampling_frequency_max_diff, "recording_list")
        _check_same_channels(recording_list, "recording_list")
        ref = recording_list[0]
        BaseRecording.__init__(self, ref.sampling_frequency, ref.channel_ids, ref.get_dtype())
        for recording in recording_list:
            for parent_segment in recording._recording_segments:
                self.add_recording_segment(_ProxyRecordingSegment(parent_segment))
        # channel metadata (probe, gains, ...) comes from the first recording, like the channel ids
        ref.copy_metadata(self)
        self._parents = recording_list
        self._kwargs = {"recording_list": recording_list, "sampling_frequency_max_diff": sampling_frequency_max_diff}


class ConcatenateSegmentRecording(BaseRecording):
    """Lazy mono-segment recording: every segment of every recording, back to back.

    Parameters
    ----------
    recording_list : list of BaseRecording
        Recordings with the same channel ids and dtype (any number of segments each).
    ignore_times : bool, default: True
        True: the result has no times (sample / sampling_frequency). False: keep them: the first
        piece's start time when the pieces are contiguous in time, otherwise a time vector made of
        each piece's times (which must not go backwards).
    sampling_frequency_max_diff : float, default: 0
        Largest accepted difference of sampling frequencies (Hz); the result uses the first one's.
    """

    def __init__(self, recording_list: list[BaseRecording], ignore_times: bool = True,
                 sampling_frequency_max_diff: float = 0):
        recording_list = _check_object_list(recording_list, BaseRecording, "recording_list")
        check_sampling_frequencies(recording_list, sampling_frequency_max_diff, "recording_list")
        _check_same_channels(recording_list, "recording_list")
        ref = recording_list[0]
        BaseRecording.__init__(self, ref.sampling_frequency, ref.channel_ids, ref.get_dtype())
        parent_segments = [segment for recording in recording_list for segment in recording._recording_segments]
        times = {} if ignore_times else _concatenated_times(recording_list, ref.sampling_frequency)
        self.add_recording_segment(_ConcatenatedRecordingSegment(parent_segments, ref.sampling_frequency, **times))
        ref.copy_metadata(self)
        self._parents = recording_list
        self._kwargs = {
            "recording_list": recording_list,
            "ignore_times": bool(ignore_times),
            "sampling_frequency_max_diff": sampling_frequency_max_diff,
        }


def _concatenated_times(recording_list: list[BaseRecording], sampling_frequency: float) -> dict:
    """Times kwargs (``t_start`` or ``time_vector``) of the concatenation of all segments of the recordings."""
    pieces = [(k, j, rec._recording_segments[j]) for k, rec in enumerate(recording_list)
              for j in range(rec.get_num_segments())]
    first = pieces[0][2]
    if all(segment.time_vector is None for _, _, segment in pieces):
        # contiguous when every later explicit t_start is where the previous piece ends
        start = 0.0 if first.t_start is None else first.t_start
        offset, contiguous = 0, True
        for _, _, segment in pieces:
            if segment.t_start is not None and abs(segment.t_start - (start + offset / sampling_frequency)) > \
                    0.5 / sampling_frequency:
                contiguous = False
                break
            offset += segment.get_num_samples()
        if contiguous:
            return {"t_start": first.t_start}
    # otherwise one time vector: each piece's own times; pieces without times continue the previous one
    times, previous_end = [], None
    for k, j, segment in pieces:
        n = segment.get_num_samples()
        if segment.time_vector is not None or segment.t_start is not None or previous_end is None:
            piece_times = np.asarray(segment.get_times(), dtype=np.float64)
        else:
            piece_times = previous_end + (np.arange(n, dtype=np.float64) + 1) / sampling_frequency
        if n and previous_end is not None and piece_times[0] < previous_end:
            raise ValueError(
                f"recording_list[{k}] segment {j} starts at {piece_times[0]} s, before the previous piece ends "
                f"({previous_end} s): with ignore_times=False the times must not go backwards; "
                "use ignore_times=True to drop them"
            )
        if n:
            previous_end = float(piece_times[-1])
        times.append(piece_times)
    return {"time_vector": np.concatenate(times)}


class SelectSegmentRecording(BaseRecording):
    """Lazy recording made of some segments of a recording (in the order given).

    Parameters
    ----------
    recording : BaseRecording
        The recording viewed.
    segment_indices : int or list of int
        Segments kept.
    """

    def __init__(self, recording: BaseRecording, segment_indices: int | list[int]):
        if not isinstance(recording, BaseRecording):
            raise ValueError(f"recording must be a BaseRecording, got {type(recording).__name__}")
        indices = _normalize_segment_indices(segment_indices, recording.get_num_segments())
        BaseRecording.__init__(self, recording.sampling_frequency, recording.channel_ids, recording.get_dtype())
        for index in indices:
            self.add_recording_segment(_ProxyRecordingSegment(recording._recording_segments[index]))
        recording.copy_metadata(self)
        self._parent = recording
        self._segment_indices = indices
        self._kwargs = {"recording": recording, "segment_indices": indices}


def append_recordings(recording_list: list[BaseRecording], sampling_frequency_max_diff: float = 0
                      ) -> AppendSegmentRecording:
    """Append the segments of several recordings into one multi-segment recording (lazy).

    Parameters
    ----------
    recording_list : list of BaseRecording
        Recordings with the same channel ids (in the same order) and dtype.
    sampling_frequency_max_diff : float, default: 0
        Largest accepted difference of sampling frequencies in Hz.

    Returns
    -------
    recording : AppendSegmentRecording
        As many segments as all inputs together; times and metadata of the first recording's channels.
    """
    return AppendSegmentRecording(recording_list, sampling_frequency_max_diff=sampling_frequency_max_diff)


def concatenate_recordings(recording_list: list[BaseRecording], ignore_times: bool = True,
                           sampling_frequency_max_diff: float = 0) -> ConcatenateSegmentRecording:
    """Concatenate all segments of several recordings into one mono-segment recording (lazy).

    Parameters
    ----------
    recording_list : list of BaseRecording
        Recordings with the same channel ids and dtype; multi-segment ones contribute every segment.
    ignore_times : bool, default: True
        Drop time information (times become sample / sampling_frequency). With False the first
        piece's start time is kept when the pieces follow each other in time, otherwise the pieces'
        times are joined into a time vector (an error if they go backwards).
    sampling_frequency_max_diff : float, default: 0
        Largest accepted difference of sampling frequencies in Hz.

    Returns
    -------
    recording : ConcatenateSegmentRecording
        One segment of ``sum`` of all segment lengths; reads across boundaries join the pieces.
    """
    return ConcatenateSegmentRecording(recording_list, ignore_times=ignore_times,
                                       sampling_frequency_max_diff=sampling_frequency_max_diff)


def split_recording(recording: BaseRecording) -> list[SelectSegmentRecording]:
    """One lazy mono-segment recording per segment of ``recording``.

    Parameters
    ----------
    recording : BaseRecording
        The recording to split.

    Returns
    -------
    recording_list : list of SelectSegmentRecording
        ``recording.get_num_segments()`` views, in segment order.
    """
    if not isinstance(recording, BaseRecording):
        raise ValueError(f"recording must be a BaseRecording, got {type(recording).__name__}")
    return [SelectSegmentRecording(recording, index) for index in range(recording.get_num_segments())]


def select_segment_recording(recording: BaseRecording, segment_indices: int | list[int]) -> SelectSegmentRecording:
    """A lazy recording with some segments of ``recording``.

    Parameters
    ----------
    recording : BaseRecording
        The recording viewed.
    segment_indices : int or list of int
        Segment(s) kept, in the order given.

    Returns
    -------
    recording : SelectSegmentRecording
        One segment per index.
    """
    return SelectSegmentRecording(recording, segment_indices)


# -------------------------------------------------------------------------------- sorting segments
class _ProxySortingSegment(BaseSortingSegment):
    """Segment ``segment_index`` of a parent sorting, seen unchanged."""

    def __init__(self, parent_sorting: BaseSorting, segment_index: int):
        self._parent_sorting = parent_sorting
        self._segment_index = segment_index

    def get_unit_spike_train(self, unit_id, start_frame, end_frame):
        return self._parent_sorting.get_unit_spike_train(
            unit_id, segment_index=self._segment_index, start_frame=start_frame, end_frame=end_frame
        )


class _ConcatenatedSortingSegment(BaseSortingSegment):
    """Several (sorting, segment) pieces back to back; spike frames shifted by the pieces' start frames."""

    def __init__(self, pieces: list[tuple[BaseSorting, int]], bounds: np.ndarray):
        self._pieces = pieces
        self._bounds = bounds

    def get_unit_spike_train(self, unit_id, start_frame, end_frame):
        bounds = self._bounds
        start = 0 if start_frame is None else int(start_frame)
        end = int(bounds[-1]) if end_frame is None else int(end_frame)
        trains = []
        for i, (sorting, segment_index) in enumerate(self._pieces):
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            if hi <= start or lo >= end or hi == lo:
                continue
            train = sorting.get_unit_spike_train(
                unit_id, segment_index=segment_index, start_frame=max(start - lo, 0), end_frame=min(end, hi) - lo
            )
            trains.append(train + lo)
        return np.concatenate(trains) if trains else np.zeros(0, dtype=np.int64)


# ----------------------------------------------------------------------------------- sorting views
class AppendSegmentSorting(BaseSorting):
    """Lazy multi-segment sorting made of all segments of several sortings, in order.

    Parameters
    ----------
    sorting_list : list of BaseSorting
        Sortings with the same unit ids (in the same order).
    sampling_frequency_max_diff : float, default: 0
        Largest accepted difference of sampling frequencies (Hz); the result uses the first one's.
    """

    def __init__(self, sorting_list: list[BaseSorting], sampling_frequency_max_diff: float = 0):
        sorting_list = _check_object_list(sorting_list, BaseSorting, "sorting_list")
        check_sampling_frequencies(sorting_list, sampling_frequency_max_diff, "sorting_list")
        _check_same_units(sorting_list, "sorting_list")
        ref = sorting_list[0]
        BaseSorting.__init__(self, ref.sampling_frequency, ref.unit_ids)
        for sorting in sorting_list:
            for segment_index in range(sorting.get_num_segments()):
                self.add_sorting_segment(_ProxySortingSegment(sorting, segment_index))
        ref.copy_metadata(self)
        self._parents = sorting_list
        if all(sorting.has_recording() for sorting in sorting_list):
            recording = _try_view(AppendSegmentRecording, [s.get_recording() for s in sorting_list],
                                  sampling_frequency_max_diff=sampling_frequency_max_diff)
            if recording is not None:
                self.register_recording(recording, check_spike_frames=False)
        self._kwargs = {"sorting_list": sorting_list, "sampling_frequency_max_diff": sampling_frequency_max_diff}

    def _compute_spike_vector(self) -> np.ndarray:
        # each parent's vector is sorted by (segment, sample, unit): shifting segment indices keeps the order
        pieces, segment_offset = [], 0
        for sorting in self._parents:
            spikes = sorting.to_spike_vector()
            if spikes.size:
                spikes = spikes.copy()
                spikes["segment_index"] += segment_offset
                pieces.append(spikes)
            segment_offset += sorting.get_num_segments()
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=SPIKE_VECTOR_DTYPE)


class ConcatenateSegmentSorting(BaseSorting):
    """Lazy mono-segment sorting: every segment of every sorting, back to back.

    Spike frames of a piece are shifted by the summed lengths of the pieces before it.

    Parameters
    ----------
    sorting_list : list of BaseSorting
        Sortings with the same unit ids (any number of segments each).
    total_samples_list : list of int or None, default: None
        Number of samples of every segment, in order (one per segment of each sorting; a nested list
        with one list per sorting is also accepted). None: taken from the registered recordings.
    ignore_times : bool, default: True
        Passed to ``concatenate_recordings`` for the registered recording of the result.
    sampling_frequency_max_diff : float, default: 0
        Largest accepted difference of sampling frequencies (Hz); the result uses the first one's.
    """

    def __init__(self, sorting_list: list[BaseSorting], total_samples_list: list | None = None,
                 ignore_times: bool = True, sampling_frequency_max_diff: float = 0):
        sorting_list = _check_object_list(sorting_list, BaseSorting, "sorting_list")
        check_sampling_frequencies(sorting_list, sampling_frequency_max_diff, "sorting_list")
        _check_same_units(sorting_list, "sorting_list")
        ref = sorting_list[0]
        BaseSorting.__init__(self, ref.sampling_frequency, ref.unit_ids)
        lengths = _segment_lengths(sorting_list, total_samples_list)
        _check_spikes_within_lengths(sorting_list, lengths)
        self._pieces = [(s, j) for s in sorting_list for j in range(s.get_num_segments())]
        self._bounds = np.concatenate([[0], np.cumsum([n for per_sorting in lengths for n in per_sorting])]
                                      ).astype(np.int64)
        self._total_samples = int(self._bounds[-1])
        self.add_sorting_segment(_ConcatenatedSortingSegment(self._pieces, self._bounds))
        ref.copy_metadata(self)
        self._parents = sorting_list
        if all(sorting.has_recording() for sorting in sorting_list):
            recording = _try_view(ConcatenateSegmentRecording, [s.get_recording() for s in sorting_list],
                                  ignore_times=ignore_times, sampling_frequency_max_diff=sampling_frequency_max_diff)
            if recording is not None:
                self.register_recording(recording, check_spike_frames=False)
        self._kwargs = {
            "sorting_list": sorting_list,
            # the resolved lengths, so the provenance rebuilds without the (unserialised) recordings
            "total_samples_list": [n for per_sorting in lengths for n in per_sorting],
            "ignore_times": bool(ignore_times),
            "sampling_frequency_max_diff": sampling_frequency_max_diff,
        }

    def get_num_samples(self, segment_index: int | None = None) -> int:
        """Length of the concatenated segment (known with or without a registered recording)."""
        self._check_segment_index(segment_index)
        return self._total_samples

    def _compute_spike_vector(self) -> np.ndarray:
        # pieces are in time order and every spike lies inside its piece, so the result stays sorted
        pieces, piece_offset = [], 0
        for sorting in self._parents:
            num_segments = sorting.get_num_segments()
            spikes = sorting.to_spike_vector()
            if spikes.size:
                shifted = spikes.copy()
                starts = self._bounds[piece_offset : piece_offset + num_segments]
                shifted["sample_index"] += starts[spikes["segment_index"]]
                shifted["segment_index"] = 0
                pieces.append(shifted)
            piece_offset += num_segments
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=SPIKE_VECTOR_DTYPE)


def _segment_lengths(sorting_list: list[BaseSorting], total_samples_list) -> list[list[int]]:
    """Per sorting, the number of samples of each of its segments (explicit argument or registered recordings)."""
    counts = [s.get_num_segments() for s in sorting_list]
    total_segments = sum(counts)
    if total_samples_list is None:
        for i, sorting in enumerate(sorting_list):
            if not sorting.has_recording():
                raise ValueError(
                    f"concatenate_sortings needs the segment lengths: sorting_list[{i}] has no registered "
                    f"recording; call register_recording() on every sorting or give total_samples_list "
                    f"(one number of samples per segment, {total_segments} in all)"
                )
        return [[int(s.get_num_samples(j)) for j in range(s.get_num_segments())] for s in sorting_list]
    if not isinstance(total_samples_list, (list, tuple, np.ndarray)):
        raise ValueError(f"total_samples_list must be a list of ints (one per segment), got {total_samples_list!r}")
    values = list(total_samples_list)
    nested = len(values) == len(sorting_list) and all(isinstance(v, (list, tuple, np.ndarray)) for v in values)
    if nested:
        for i, (v, n) in enumerate(zip(values, counts)):
            if len(v) != n:
                raise ValueError(f"total_samples_list[{i}] has {len(v)} lengths but sorting_list[{i}] has {n} segments")
        flat = [x for v in values for x in v]
    else:
        flat = values
        if len(flat) != total_segments:
            raise ValueError(
                f"total_samples_list has {len(flat)} values but the sortings have {total_segments} segments in all "
                f"({counts}): give one number of samples per segment"
            )
    for x in flat:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or x < 0:
            raise ValueError(f"total_samples_list must hold non-negative ints, got {x!r}")
    lengths, pos = [], 0
    for i, (sorting, n) in enumerate(zip(sorting_list, counts)):
        per_sorting = [int(x) for x in flat[pos : pos + n]]
        if sorting.has_recording():
            registered = [int(sorting.get_num_samples(j)) for j in range(n)]
            if registered != per_sorting:
                raise ValueError(
                    f"total_samples_list gives {per_sorting} samples for sorting_list[{i}] but its registered "
                    f"recording has {registered}"
                )
        lengths.append(per_sorting)
        pos += n
    return lengths


def _check_spikes_within_lengths(sorting_list: list[BaseSorting], lengths: list[list[int]]) -> None:
    for i, (sorting, per_sorting) in enumerate(zip(sorting_list, lengths)):
        for j, spikes in enumerate(sorting.to_spike_vector(concatenated=False)):
            if spikes.size and spikes["sample_index"][-1] >= per_sorting[j]:
                raise ValueError(
                    f"sorting_list[{i}] segment {j} has a spike at sample {int(spikes['sample_index'][-1])} but the "
                    f"segment has {per_sorting[j]} samples (check total_samples_list or the registered recording)"
                )


class SelectSegmentSorting(BaseSorting):
    """Lazy sorting made of some segments of a sorting (in the order given).

    Parameters
    ----------
    sorting : BaseSorting
        The sorting viewed.
    segment_indices : int or list of int
        Segments kept.
    """

    def __init__(self, sorting: BaseSorting, segment_indices: int | list[int]):
        if not isinstance(sorting, BaseSorting):
            raise ValueError(f"sorting must be a BaseSorting, got {type(sorting).__name__}")
        indices = _normalize_segment_indices(segment_indices, sorting.get_num_segments())
        BaseSorting.__init__(self, sorting.sampling_frequency, sorting.unit_ids)
        for index in indices:
            self.add_sorting_segment(_ProxySortingSegment(sorting, index))
        sorting.copy_metadata(self)
        self._parent = sorting
        self._segment_indices = indices
        if sorting.has_recording():
            self.register_recording(SelectSegmentRecording(sorting.get_recording(), indices), check_spike_frames=False)
        self._kwargs = {"sorting": sorting, "segment_indices": indices}

    def _compute_spike_vector(self) -> np.ndarray:
        parent_segments = self._parent.to_spike_vector(concatenated=False)
        pieces = []
        for new_index, parent_index in enumerate(self._segment_indices):
            spikes = parent_segments[parent_index]
            if spikes.size:
                spikes = spikes.copy()
                spikes["segment_index"] = new_index
                pieces.append(spikes)
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=SPIKE_VECTOR_DTYPE)


def _try_view(cls: type, recordings: list, **kwargs):
    """The registered recording of a sorting view, or None (with a warning) when the recordings do not join."""
    try:
        return cls(recordings, **kwargs)
    except ValueError as err:
        warnings.warn(f"the sortings' registered recordings cannot be joined ({err}); none is registered",
                      stacklevel=4)
        return None


def append_sortings(sorting_list: list[BaseSorting], sampling_frequency_max_diff: float = 0) -> AppendSegmentSorting:
    """Append the segments of several sortings into one multi-segment sorting (lazy).

    Parameters
    ----------
    sorting_list : list of BaseSorting
        Sortings with the same unit ids (in the same order).
    sampling_frequency_max_diff : float, default: 0
        Largest accepted difference of sampling frequencies in Hz.

    Returns
    -------
    sorting : AppendSegmentSorting
        As many segments as all inputs together. When every input has a registered recording, the
        appended recordings are registered.
    """
    return AppendSegmentSorting(sorting_list, sampling_frequency_max_diff=sampling_frequency_max_diff)


def concatenate_sortings(sorting_list: list[BaseSorting], total_samples_list: list | None = None,
                         ignore_times: bool = True, sampling_frequency_max_diff: float = 0
                         ) -> ConcatenateSegmentSorting:
    """Concatenate all segments of several sortings into one mono-segment sorting (lazy).

    Parameters
    ----------
    sorting_list : list of BaseSorting
        Sortings with the same unit ids; multi-segment ones contribute every segment.
    total_samples_list : list of int or None, default: None
        Number of samples of each segment, in order (one per segment of every sorting). None: the
        lengths come from the registered recordings (an error names the sorting without one).
    ignore_times : bool, default: True
        Passed to ``concatenate_recordings`` for the registered recording of the result.
    sampling_frequency_max_diff : float, default: 0
        Largest accepted difference of sampling frequencies in Hz.

    Returns
    -------
    sorting : ConcatenateSegmentSorting
        One segment; spike frames shifted by the cumulative lengths of the pieces before them.
    """
    return ConcatenateSegmentSorting(sorting_list, total_samples_list=total_samples_list, ignore_times=ignore_times,
                                     sampling_frequency_max_diff=sampling_frequency_max_diff)


def split_sorting(sorting: BaseSorting) -> list[SelectSegmentSorting]:
    """One lazy mono-segment sorting per segment of ``sorting`` (the twin of ``split_recording``).

    Parameters
    ----------
    sorting : BaseSorting
        The sorting to split.

    Returns
    -------
    sorting_list : list of SelectSegmentSorting
        ``sorting.get_num_segments()`` views, in segment order; each registers the matching segment of
        the registered recording when there is one.
    """
    if not isinstance(sorting, BaseSorting):
        raise ValueError(f"sorting must be a BaseSorting, got {type(sorting).__name__}")
    return [SelectSegmentSorting(sorting, index) for index in range(sorting.get_num_segments())]


def select_segment_sorting(sorting: BaseSorting, segment_indices: int | list[int]) -> SelectSegmentSorting:
    """A lazy sorting with some segments of ``sorting``.

    Parameters
    ----------
    sorting : BaseSorting
        The sorting viewed.
    segment_indices : int or list of int
        Segment(s) kept, in the order given.

    Returns
    -------
    sorting : SelectSegmentSorting
        One segment per index.
    """
    return SelectSegmentSorting(sorting, segment_indices)
