"""Raw binary recordings: memory-mapped, zero-copy reading of one headerless file per segment."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..recording import BaseRecording, BaseRecordingSegment


class BinaryRecordingExtractor(BaseRecording):
    """A recording read from raw binary files (one per segment) through memory maps.

    Parameters
    ----------
    file_paths : str or Path or list
        One file per segment.
    sampling_frequency : float
        Sampling rate in Hz.
    dtype : str or numpy dtype
        Sample dtype in the file (e.g. "int16", "<i2").
    num_channels : int
        Number of interleaved channels.
    t_starts : list of float or None, default: None
        Time of the first sample of each segment in seconds.
    channel_ids : array-like or None, default: None
        Channel ids (default ``0 .. num_channels - 1``).
    time_axis : 0 | 1, default: 0
        0: samples are rows (time-major, channels interleaved); 1: channel-major.
    file_offset : int, default: 0
        Bytes to skip at the start of every file (a header).
    gain_to_uV, offset_to_uV : float or array-like or None, default: None
        Scaling to µV (one value or one per channel).
    is_filtered : bool or None, default: None
        Annotation saying whether the traces are filtered.
    """

    _path_kwargs = ("file_paths", "file_timestamps_paths")

    def __init__(
        self,
        file_paths,
        sampling_frequency: float,
        dtype,
        num_channels: int,
        t_starts=None,
        channel_ids=None,
        time_axis: int = 0,
        file_offset: int = 0,
        gain_to_uV=None,
        offset_to_uV=None,
        is_filtered: bool | None = None,
        file_timestamps_paths=None,
        num_chan: int | None = None,
    ):
        if num_channels is None and num_chan is not None:
            num_channels = num_chan
        file_paths = [file_paths] if isinstance(file_paths, (str, Path)) else list(file_paths)
        if len(file_paths) == 0:
            raise ValueError("file_paths must name at least one file")
        if isinstance(num_channels, bool) or not isinstance(num_channels, (int, np.integer)) or num_channels <= 0:
            raise ValueError(f"num_channels must be a positive int, got {num_channels!r}")
        if time_axis not in (0, 1):
            raise ValueError(f"time_axis must be 0 or 1, got {time_axis!r}")
        if int(file_offset) < 0:
            raise ValueError(f"file_offset must be >= 0, got {file_offset}")
        dtype = np.dtype(dtype)
        if channel_ids is None:
            channel_ids = np.arange(num_channels)
        elif len(channel_ids) != num_channels:
            raise ValueError(f"channel_ids has {len(channel_ids)} ids for num_channels={num_channels}")
        if t_starts is not None and len(t_starts) != len(file_paths):
            raise ValueError(f"t_starts has {len(t_starts)} values for {len(file_paths)} files")
        BaseRecording.__init__(self, sampling_frequency, channel_ids, dtype)
        for i, file_path in enumerate(file_paths):
            t_start = None if t_starts is None else t_starts[i]
            self.add_recording_segment(
                BinaryRecordingSegment(file_path, sampling_frequency, t_start, num_channels, dtype, time_axis,
                                       int(file_offset))
            )
        if file_timestamps_paths is not None:
            if len(file_timestamps_paths) != len(file_paths):
                raise ValueError(
                    f"file_timestamps_paths has {len(file_timestamps_paths)} files for {len(file_paths)} segments"
                )
            for i, timestamps_path in enumerate(file_timestamps_paths):
                self.set_times(_read_time_vector(timestamps_path, self.get_num_samples(i)), segment_index=i)
        if gain_to_uV is not None:
            self.set_channel_gains(gain_to_uV)
        if offset_to_uV is not None:
            self.set_channel_offsets(offset_to_uV)
        elif gain_to_uV is not None:
            self.set_channel_offsets(0.0)
        if is_filtered is not None:
            self.annotate(is_filtered=bool(is_filtered))
        self._kwargs = {
            "file_paths": [str(Path(p).absolute()) for p in file_paths],
            "sampling_frequency": float(sampling_frequency),
            "t_starts": None if t_starts is None else [None if t is None else float(t) for t in t_starts],
            "num_channels": int(num_channels),
            "dtype": dtype.str,
            "channel_ids": self.channel_ids.tolist(),
            "time_axis": int(time_axis),
            "file_offset": int(file_offset),
            "gain_to_uV": _as_list_or_none(gain_to_uV),
            "offset_to_uV": _as_list_or_none(offset_to_uV),
            "is_filtered": is_filtered,
            "file_timestamps_paths": None if file_timestamps_paths is None else [
                str(Path(p).absolute()) for p in file_timestamps_paths
            ],
        }


class BinaryRecordingSegment(BaseRecordingSegment):
    """One raw file, memory-mapped on first read."""

    def __init__(self, file_path, sampling_frequency, t_start, num_channels, dtype, time_axis, file_offset):
        BaseRecordingSegment.__init__(self, sampling_frequency, t_start=t_start)
        self.file_path = Path(file_path)
        self.num_channels = num_channels
        self.dtype = np.dtype(dtype)
        self.time_axis = time_axis
        self.file_offset = file_offset
        self._num_samples = _num_samples_of_file(self.file_path, num_channels, self.dtype, file_offset)
        self._memmap = None

    def get_num_samples(self) -> int:
        return self._num_samples

    def _traces(self) -> np.ndarray:
        if self._memmap is None:
            if self._num_samples == 0:
                self._memmap = np.zeros((0, self.num_channels), dtype=self.dtype)
            else:
                shape = (self._num_samples, self.num_channels)
                if self.time_axis == 1:
                    shape = shape[::-1]
                mm = np.memmap(self.file_path, dtype=self.dtype, mode="r", offset=self.file_offset, shape=shape)
                self._memmap = np.asarray(mm) if self.time_axis == 0 else np.asarray(mm).T
        return self._memmap

    def get_traces(self, start_frame, end_frame, channel_indices):
        return self._traces()[start_frame:end_frame, channel_indices]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_memmap"] = None
        return state


def _num_samples_of_file(file_path: Path, num_channels: int, dtype: np.dtype, file_offset: int) -> int:
    """Samples in a raw file; a size that is not a whole number of frames is an error, not a shorter recording."""
    try:
        size = os.path.getsize(file_path)
    except FileNotFoundError:
        raise FileNotFoundError(f"binary file not found: {file_path}") from None
    data_bytes = size - file_offset
    frame_bytes = num_channels * dtype.itemsize
    if data_bytes < 0 or data_bytes % frame_bytes != 0:
        raise ValueError(
            f"binary file {file_path} has {size} bytes: after file_offset={file_offset} that is not a whole number "
            f"of frames of {num_channels} channels x {dtype.itemsize} bytes ({dtype}); wrong dtype, num_channels "
            "or a truncated/padded file"
        )
    return data_bytes // frame_bytes


def _read_time_vector(path, num_samples: int) -> np.ndarray:
    """A segment's time vector: raw float64 (SpikeInterface's layout) or a ``.npy`` file, one time per sample."""
    path = Path(path)
    if path.suffix == ".npy":
        times = np.load(path, mmap_mode="r", allow_pickle=False)
    else:
        expected = num_samples * 8
        size = os.path.getsize(path)
        if size != expected:
            raise ValueError(f"time file {path} has {size} bytes, expected {expected} (float64, one per sample)")
        times = np.memmap(path, dtype="<f8", mode="r", shape=(num_samples,)) if num_samples else np.zeros(0)
    if times.shape != (num_samples,):
        raise ValueError(f"time file {path} holds {times.shape} values, expected ({num_samples},)")
    return np.asarray(times)


def _as_list_or_none(values):
    if values is None:
        return None
    return np.atleast_1d(np.asarray(values, dtype=np.float64)).tolist()


def read_binary(
    file_paths,
    sampling_frequency: float | None = None,
    dtype=None,
    num_channels: int | None = None,
    t_starts=None,
    channel_ids=None,
    time_axis: int = 0,
    file_offset: int = 0,
    gain_to_uV=None,
    offset_to_uV=None,
    is_filtered: bool | None = None,
) -> BinaryRecordingExtractor:
    """Read raw binary file(s) as a memory-mapped recording (no copy).

    Parameters
    ----------
    file_paths : str or Path or list
        One file per segment.
    sampling_frequency : float
        Sampling rate in Hz (required).
    dtype : str or numpy dtype
        Sample dtype (required).
    num_channels : int
        Number of channels (required).
    t_starts : list of float or None, default: None
        Start time of each segment in seconds.
    channel_ids : array-like or None, default: None
        Channel ids.
    time_axis : 0 | 1, default: 0
        0 for time-major files (the common case).
    file_offset : int, default: 0
        Header bytes to skip.
    gain_to_uV, offset_to_uV : float or array-like or None, default: None
        Scaling to µV.
    is_filtered : bool or None, default: None
        Whether the traces are filtered.
    """
    missing = [name for name, value in (("sampling_frequency", sampling_frequency), ("dtype", dtype),
                                        ("num_channels", num_channels)) if value is None]
    if missing:
        raise ValueError(
            f"read_binary needs {', '.join(missing)}: a raw file does not say its "
            "sampling_frequency, dtype or num_channels"
        )
    return BinaryRecordingExtractor(
        file_paths, sampling_frequency, dtype, num_channels, t_starts=t_starts, channel_ids=channel_ids,
        time_axis=time_axis, file_offset=file_offset, gain_to_uV=gain_to_uV, offset_to_uV=offset_to_uV,
        is_filtered=is_filtered,
    )
