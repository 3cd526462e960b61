"""Raw binary recordings: one headerless file per segment, read chunk by chunk (mapped or pread)."""

from __future__ import annotations

import mmap
import os
import weakref
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


# Reads of at least this many bytes map the requested frames (zero-copy, the mapping is released with the
# returned array); smaller ones are read with one pread, which is cheaper than setting up a mapping.
_MAP_MIN_BYTES = 1 << 20


class BinaryRecordingSegment(BaseRecordingSegment):
    """One raw file, read on demand.

    Every call reads only the requested frames: large reads map them (``mmap``, zero-copy; the
    mapping lives as long as the returned array), small reads ``pread`` them. Nothing stays mapped
    between calls, so a pass over the whole file keeps a resident size of one chunk, not of the file
    (a long-lived mapping of the whole file would keep every page it has read resident in the process).
    """

    def __init__(self, file_path, sampling_frequency, t_start, num_channels, dtype, time_axis, file_offset):
        BaseRecordingSegment.__init__(self, sampling_frequency, t_start=t_start)
        self.file_path = Path(file_path)
        self.num_channels = num_channels
        self.dtype = np.dtype(dtype)
        self.time_axis = time_axis
        self.file_offset = file_offset
        self._num_samples = _num_samples_of_file(self.file_path, num_channels, self.dtype, file_offset)
        self._fd = None

    def get_num_samples(self) -> int:
        return self._num_samples

    def _fileno(self) -> int:
        if self._fd is None:
            # a plain descriptor, closed when the segment is freed (no file object left to the garbage
            # collector's ResourceWarning); pread and mmap need no file position, so forked workers share it
            self._fd = os.open(self.file_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            weakref.finalize(self, os.close, self._fd)
        return self._fd

    def _read_bytes(self, byte_start: int, num_bytes: int, shape: tuple) -> np.ndarray:
        """``num_bytes`` from ``byte_start`` as an array of ``shape`` (mapped when large, else read)."""
        if num_bytes >= _MAP_MIN_BYTES:
            aligned = byte_start - byte_start % mmap.ALLOCATIONGRANULARITY
            mapping = mmap.mmap(self._fileno(), byte_start + num_bytes - aligned, access=mmap.ACCESS_READ,
                                offset=aligned)
            # the array holds the only reference to the mapping: it is unmapped when the array is freed
            return np.frombuffer(mapping, dtype=self.dtype, count=num_bytes // self.dtype.itemsize,
                                 offset=byte_start - aligned).reshape(shape)
        out = np.empty(shape, dtype=self.dtype)
        view = memoryview(out).cast("B")
        done = 0
        while done < num_bytes:
            n = os.preadv(self._fileno(), [view[done:]], byte_start + done)
            if n == 0:
                raise OSError(f"{self.file_path}: unexpected end of file at byte {byte_start + done} "
                              f"(the file was truncated after it was opened)")
            done += n
        return out

    def get_traces(self, start_frame, end_frame, channel_indices):
        start, end, _ = slice(start_frame, end_frame).indices(self._num_samples)
        num_frames = max(end - start, 0)
        if num_frames == 0:
            return np.zeros((0, self.num_channels), dtype=self.dtype)[:, channel_indices]
        itemsize = self.dtype.itemsize
        if self.time_axis == 0:
            frame_bytes = self.num_channels * itemsize
            traces = self._read_bytes(self.file_offset + start * frame_bytes, num_frames * frame_bytes,
                                      (num_frames, self.num_channels))
            return traces[:, channel_indices]
        # channel-major file: map the rows from the first to the last requested sample
        row_bytes = self._num_samples * itemsize
        first = self.file_offset + start * itemsize
        span = (self.num_channels - 1) * row_bytes + num_frames * itemsize
        aligned = first - first % mmap.ALLOCATIONGRANULARITY
        mapping = mmap.mmap(self._fileno(), first + span - aligned, access=mmap.ACCESS_READ, offset=aligned)
        rows = np.ndarray((self.num_channels, num_frames), dtype=self.dtype, buffer=mapping,
                          offset=first - aligned, strides=(row_bytes, itemsize))
        return rows.T[:, channel_indices]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_fd"] = None
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
    """Read raw binary file(s) as a lazy recording (chunks are mapped or read on demand, never the whole file).

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
