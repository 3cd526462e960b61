"""BaseRecording, its segments, times, and the lazy channel/frame views."""

from __future__ import annotations

import numpy as np

from .base import resolve_id_selection
from .recording_snippets import BaseRecordingSnippets, _as_slice_if_contiguous


class BaseRecordingSegment:
    """One contiguous piece of a recording. Subclasses implement ``get_num_samples`` and ``get_traces``.

    Times: a segment has either a ``time_vector`` (one time in s per sample) or a ``t_start``
    (time of sample 0 in s, None meaning 0).
    """

    def __init__(self, sampling_frequency: float, t_start: float | None = None, time_vector=None):
        self.sampling_frequency = float(sampling_frequency)
        self.t_start = None if t_start is None else float(t_start)
        self.time_vector = None if time_vector is None else np.asarray(time_vector)

    def get_num_samples(self) -> int:
        raise NotImplementedError

    def get_traces(self, start_frame: int, end_frame: int, channel_indices) -> np.ndarray:
        """Traces ``(end_frame - start_frame, num selected channels)``; ``channel_indices`` is a slice or int array."""
        raise NotImplementedError

    # ---------------------------------------------------------------- times
    def get_times(self) -> np.ndarray:
        if self.time_vector is not None:
            return self.time_vector
        t_start = 0.0 if self.t_start is None else self.t_start
        return np.arange(self.get_num_samples(), dtype=np.float64) / self.sampling_frequency + t_start

    def sample_index_to_time(self, sample_index):
        if self.time_vector is not None:
            return self.time_vector[sample_index]
        t_start = 0.0 if self.t_start is None else self.t_start
        return np.asarray(sample_index) / self.sampling_frequency + t_start

    def time_to_sample_index(self, time_s):
        if self.time_vector is not None:
            return np.searchsorted(self.time_vector, time_s, side="left")
        t_start = 0.0 if self.t_start is None else self.t_start
        return np.round((np.asarray(time_s) - t_start) * self.sampling_frequency).astype(np.int64)

    def times_kwargs(self) -> dict:
        return {"t_start": self.t_start, "time_vector": self.time_vector}


class BaseRecording(BaseRecordingSnippets):
    """A multi-segment, multi-channel recording whose traces are read on demand.

    Parameters
    ----------
    sampling_frequency : float
        Sampling rate in Hz.
    channel_ids : array-like
        Unique channel ids.
    dtype : numpy dtype
        Dtype of the raw traces.
    """

    _main_annotations = ("is_filtered",)

    def __init__(self, sampling_frequency: float, channel_ids, dtype):
        BaseRecordingSnippets.__init__(self, sampling_frequency, channel_ids, dtype)
        self._recording_segments: list[BaseRecordingSegment] = []
        self.annotate(is_filtered=False)

    def add_recording_segment(self, recording_segment: BaseRecordingSegment) -> None:
        self._recording_segments.append(recording_segment)

    # ------------------------------------------------------------ segments
    def get_num_segments(self) -> int:
        return len(self._recording_segments)


    def get_num_samples(self, segment_index: int | None = None) -> int:
        """Number of samples of a segment (``segment_index`` required when there are several)."""
        segment_index = self._check_segment_index(segment_index)
        return int(self._recording_segments[segment_index].get_num_samples())

    get_num_frames = get_num_samples

    def get_total_samples(self) -> int:
        """Number of samples summed over segments."""
        return int(sum(self.get_num_samples(i) for i in range(self.get_num_segments())))

    def get_duration(self, segment_index: int | None = None) -> float:
        """Duration of a segment in seconds (from its times when it has a time vector)."""
        segment_index = self._check_segment_index(segment_index)
        segment = self._recording_segments[segment_index]
        if segment.time_vector is not None and segment.time_vector.size > 0:
            return float(segment.time_vector[-1] - segment.time_vector[0] + 1 / self.sampling_frequency)
        return self.get_num_samples(segment_index) / self.sampling_frequency

    def get_total_duration(self) -> float:
        """Duration in seconds summed over segments."""
        return float(sum(self.get_duration(i) for i in range(self.get_num_segments())))

    def get_memory_size(self, segment_index: int | None = None) -> int:
        """Bytes of the raw traces of one segment (all segments when None)."""
        samples = self.get_total_samples() if segment_index is None else self.get_num_samples(segment_index)
        return int(samples * self.get_num_channels() * self._dtype.itemsize)

    def get_total_memory_size(self) -> int:
        return self.get_memory_size(None)

    # -------------------------------------------------------------- traces
    def _check_frames(self, start_frame, end_frame, segment_index: int) -> tuple[int, int]:
        num_samples = self.get_num_samples(segment_index)
        start_frame = 0 if start_frame is None else start_frame
        end_frame = num_samples if end_frame is None else end_frame
        for name, value in (("start_frame", start_frame), ("end_frame", end_frame)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                if isinstance(value, (float, np.floating)) and float(value).is_integer():
                    continue
                raise ValueError(f"{name} must be an integer sample index, got {value!r}")
        start_frame, end_frame = int(start_frame), int(end_frame)
        if not 0 <= start_frame <= num_samples:
            raise ValueError(f"start_frame {start_frame} is out of range [0, {num_samples}] of segment {segment_index}")
        if not start_frame <= end_frame <= num_samples:
            raise ValueError(
                f"end_frame {end_frame} is out of range [{start_frame}, {num_samples}] of segment {segment_index}"
            )
        return start_frame, end_frame

    def get_traces(
        self,
        segment_index: int | None = None,
        start_frame: int | None = None,
        end_frame: int | None = None,
        channel_ids=None,
        order: str | None = None,
        return_scaled: bool | None = None,
        return_in_uV: bool | None = None,
        cast_unsigned: bool = False,
    ) -> np.ndarray:
        """Traces of one segment between two frames, shape ``(num_samples, num_channels)``.

        Parameters
        ----------
        segment_index : int or None, default: None
            Segment to read; required when there are several.
        start_frame, end_frame : int or None, default: None
            Sample range ``[start_frame, end_frame)``; None means the segment's start / end.
        channel_ids : array-like or None, default: None
            Channels to read, in the order given; None means all.
        order : "C" | "F" | None, default: None
            Memory layout of the returned array (None: as read).
        return_scaled : bool, default: False
            Return float32 traces in µV: ``traces * gain_to_uV + offset_to_uV``.
        return_in_uV : bool or None, default: None
            SpikeInterface's spelling of ``return_scaled``.
        cast_unsigned : bool, default: False
            Shift unsigned integer traces to the signed dtype of the same size (raw traces only).
        """
        if return_in_uV is not None:
            if return_scaled is not None and bool(return_scaled) != bool(return_in_uV):
                raise ValueError("return_scaled and return_in_uV disagree; give one of them")
            return_scaled = return_in_uV
        return_scaled = bool(return_scaled)
        segment_index = self._check_segment_index(segment_index)
        start_frame, end_frame = self._check_frames(start_frame, end_frame, segment_index)
        if channel_ids is None:
            channel_indices = slice(None)
        else:
            channel_indices = _as_slice_if_contiguous(self._main_ids_to_indices(channel_ids, "channel_ids"))
        traces = self._recording_segments[segment_index].get_traces(start_frame, end_frame, channel_indices)
        if return_scaled:
            traces = self._scale_traces(traces, channel_indices)
        elif cast_unsigned and traces.dtype.kind == "u":
            signed = np.dtype(f"int{traces.dtype.itemsize * 8}")
            shift = np.array(2 ** (traces.dtype.itemsize * 8 - 1), dtype=traces.dtype)
            traces = (traces - shift).astype(signed)
        if order is not None:
            if order not in ("C", "F"):
                raise ValueError(f"order must be 'C', 'F' or None, got {order!r}")
            traces = np.asarray(traces, order=order)
        return traces

    def is_filtered(self) -> bool:
        return bool(self._annotations.get("is_filtered", False))

    # --------------------------------------------------------------- times
    def set_times(self, times, segment_index: int | None = None, with_warning: bool = True) -> None:
        """Attach a time vector (seconds, one per sample) to a segment."""
        segment_index = self._check_segment_index(segment_index)
        times = np.asarray(times, dtype=np.float64)
        num_samples = self.get_num_samples(segment_index)
        if times.ndim != 1 or times.size != num_samples:
            raise ValueError(
                f"times must be a 1-d array with one time per sample ({num_samples}), got shape {times.shape}"
            )
        if times.size > 1 and np.any(np.diff(times) < 0):
            raise ValueError("times must be non-decreasing")
        segment = self._recording_segments[segment_index]
        segment.time_vector = times
        segment.t_start = None

    def reset_times(self) -> None:
        """Drop time vectors and start times: times become sample / sampling_frequency."""
        for segment in self._recording_segments:
            segment.time_vector = None
            segment.t_start = None

    def has_time_vector(self, segment_index: int | None = None) -> bool:
        segment_index = self._check_segment_index(segment_index)
        return self._recording_segments[segment_index].time_vector is not None

    def get_times(self, segment_index: int | None = None) -> np.ndarray:
        """Time in seconds of every sample of a segment."""
        segment_index = self._check_segment_index(segment_index)
        return self._recording_segments[segment_index].get_times()

    def get_start_time(self, segment_index: int | None = None) -> float:
        segment_index = self._check_segment_index(segment_index)
        return float(self._recording_segments[segment_index].sample_index_to_time(0))

    def get_end_time(self, segment_index: int | None = None) -> float:
        segment_index = self._check_segment_index(segment_index)
        n = self.get_num_samples(segment_index)
        return float(self._recording_segments[segment_index].sample_index_to_time(n - 1))

    def sample_index_to_time(self, sample_index, segment_index: int | None = None):
        """Times (s) of sample indices."""
        segment_index = self._check_segment_index(segment_index)
        return self._recording_segments[segment_index].sample_index_to_time(sample_index)

    def time_to_sample_index(self, time_s, segment_index: int | None = None):
        """Sample indices of times (s)."""
        segment_index = self._check_segment_index(segment_index)
        return self._recording_segments[segment_index].time_to_sample_index(time_s)

    # --------------------------------------------------------------- views
    def channel_slice(self, channel_ids, renamed_channel_ids=None) -> "ChannelSliceRecording":
        """A lazy view on ``channel_ids`` (in that order), optionally renamed."""
        return ChannelSliceRecording(self, channel_ids=channel_ids, renamed_channel_ids=renamed_channel_ids)

    def rename_channels(self, new_channel_ids) -> "ChannelSliceRecording":
        return ChannelSliceRecording(self, channel_ids=self.channel_ids, renamed_channel_ids=new_channel_ids)

    def frame_slice(self, start_frame: int | None, end_frame: int | None = None) -> "FrameSliceRecording":
        """A lazy view on frames ``[start_frame, end_frame)`` of every segment.

        On multi-segment recordings the same range is taken in each segment; ``end_frame=None``
        means each segment's own end.
        """
        return FrameSliceRecording(self, start_frame=start_frame, end_frame=end_frame)

    def time_slice(self, start_time: float | None, end_time: float | None) -> "FrameSliceRecording":
        """A lazy view between two times in seconds (mono-segment)."""
        start_frame = None if start_time is None else int(self.time_to_sample_index(start_time))
        end_frame = None if end_time is None else int(self.time_to_sample_index(end_time))
        return self.frame_slice(start_frame, end_frame)

    # -------------------------------------------------------------- repr
    def save(self, **kwargs):
        """Save the traces and metadata to a binary (default) or zarr folder.

        Keyword arguments are those of ``sicore.io.save_recording`` (``folder``, ``format``, ``overwrite``, ...,
        and job kwargs for recordings). Returns the saved object, reloaded from disk.
        """
        from .io.save import save_recording

        return save_recording(self, **kwargs)

    def __repr__(self) -> str:
        num_segments = self.get_num_segments()
        fs_khz = self.sampling_frequency / 1000
        text = (
            f"{type(self).__name__}: {self.get_num_channels()} channels - {fs_khz:0.1f}kHz - "
            f"{num_segments} segments - {self.get_total_samples():,} samples - "
            f"{_format_duration(self.get_total_duration())} - {self._dtype} dtype - "
            f"{_format_bytes(self.get_total_memory_size())}"
        )
        return text


class ChannelSliceRecording(BaseRecording):
    """Lazy view of some channels of a recording (optionally renamed); copies no traces.

    Parameters
    ----------
    parent_recording : BaseRecording
        The recording viewed.
    channel_ids : array-like or None, default: None
        Parent channel ids to keep, in the order given (None: all).
    renamed_channel_ids : array-like or None, default: None
        New ids for the kept channels.
    """

    def __init__(self, parent_recording: BaseRecording, channel_ids=None, renamed_channel_ids=None):
        channel_ids, parent_indices, new_ids = resolve_id_selection(
            parent_recording, channel_ids, renamed_channel_ids, "channel"
        )
        if parent_indices.size == 0:
            raise ValueError("channel_ids: a channel slice needs at least one channel")
        BaseRecording.__init__(self, parent_recording.sampling_frequency, new_ids, parent_recording.get_dtype())
        self._parent = parent_recording
        self._parent_channel_indices = parent_indices
        for parent_segment in parent_recording._recording_segments:
            self.add_recording_segment(ChannelSliceRecordingSegment(parent_segment, parent_indices))
        parent_recording.copy_metadata(self, ids=channel_ids)
        self._kwargs = {
            "parent_recording": parent_recording,
            "channel_ids": channel_ids.tolist(),
            "renamed_channel_ids": None if renamed_channel_ids is None else new_ids.tolist(),
        }


class ChannelSliceRecordingSegment(BaseRecordingSegment):
    def __init__(self, parent_segment: BaseRecordingSegment, parent_channel_indices: np.ndarray):
        BaseRecordingSegment.__init__(self, parent_segment.sampling_frequency, **parent_segment.times_kwargs())
        self._parent_segment = parent_segment
        self._parent_channel_indices = parent_channel_indices
        self._all_parent_channels = _as_slice_if_contiguous(parent_channel_indices)

    def get_num_samples(self) -> int:
        return self._parent_segment.get_num_samples()

    def get_traces(self, start_frame, end_frame, channel_indices):
        if isinstance(channel_indices, slice) and channel_indices == slice(None):
            parent_indices = self._all_parent_channels
        else:
            parent_indices = _as_slice_if_contiguous(self._parent_channel_indices[channel_indices])
        return self._parent_segment.get_traces(start_frame, end_frame, parent_indices)


class FrameSliceRecording(BaseRecording):
    """Lazy view of frames ``[start_frame, end_frame)`` of every segment of a recording.

    Parameters
    ----------
    parent_recording : BaseRecording
        The recording viewed.
    start_frame : int or None, default: None
        First frame kept (None: 0).
    end_frame : int or None, default: None
        End frame, excluded (None: each segment's end).
    """

    def __init__(self, parent_recording: BaseRecording, start_frame: int | None = None, end_frame: int | None = None):
        BaseRecording.__init__(
            self, parent_recording.sampling_frequency, parent_recording.channel_ids, parent_recording.get_dtype()
        )
        for segment_index, parent_segment in enumerate(parent_recording._recording_segments):
            start, end = parent_recording._check_frames(start_frame, end_frame, segment_index)
            self.add_recording_segment(FrameSliceRecordingSegment(parent_segment, start, end))
        parent_recording.copy_metadata(self)
        self._parent = parent_recording
        self._kwargs = {
            "parent_recording": parent_recording,
            "start_frame": None if start_frame is None else int(start_frame),
            "end_frame": None if end_frame is None else int(end_frame),
        }


class FrameSliceRecordingSegment(BaseRecordingSegment):
    def __init__(self, parent_segment: BaseRecordingSegment, start_frame: int, end_frame: int):
        if parent_segment.time_vector is not None:
            times = {"time_vector": parent_segment.time_vector[start_frame:end_frame]}
        elif parent_segment.t_start is not None or start_frame > 0:
            times = {"t_start": float(parent_segment.sample_index_to_time(start_frame))}
        else:
            times = {}
        BaseRecordingSegment.__init__(self, parent_segment.sampling_frequency, **times)
        self._parent_segment = parent_segment
        self.start_frame = start_frame
        self.end_frame = end_frame

    def get_num_samples(self) -> int:
        return self.end_frame - self.start_frame

    def get_traces(self, start_frame, end_frame, channel_indices):
        return self._parent_segment.get_traces(
            start_frame + self.start_frame, end_frame + self.start_frame, channel_indices
        )


def _format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:0.2f}s"
    if seconds < 3600:
        return f"{seconds / 60:0.2f}min"
    return f"{seconds / 3600:0.2f}h"


def _format_bytes(num_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if num_bytes < 1024:
            return f"{num_bytes:0.2f} {unit}"
        num_bytes /= 1024
    return f"{num_bytes:0.2f} TiB"
