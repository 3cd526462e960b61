"""Binary folders (SpikeInterface's ``BinaryFolderRecording`` layout): save and load.

Layout (identical to SpikeInterface 0.105.3, so either library opens the other's folders)::

    traces_cached_seg{i}.raw   raw C-order (num_samples, num_channels), no header
    times_cached_seg{i}.raw    raw float64 times, one per sample (only when a segment has a time vector)
    binary.json                SI's BinaryRecordingExtractor dict, paths relative to the folder
    si_folder.json             {class: BinaryFolderRecording, kwargs: {folder_path: "."}}; what load() dispatches on
    probegroup.json            probeinterface file (when a probe is attached)
    annotations.json, properties/*.npy, provenance.json (when the source is JSON-serialisable)
    sicore_info.json           sicore only: samples per segment, so a truncated file is detected
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .binary import BinaryRecordingExtractor, BinaryRecordingSegment
from .atomic import atomic_folder, check_target_folder
from .casting import cast_traces
from .chunking import run_chunked, split_job_kwargs
from .folder_metadata import (
    SICORE_INFO_FILE,
    SI_LAYOUT_VERSION,
    attach_probegroup,
    collect_metadata,
    load_annotations,
    load_properties,
    si_folder_dict,
    sicore_info,
    write_metadata,
)
from .safe_files import CorruptFolderError, check_file_size, load_npy, path_inside, read_json, write_json

SI_BINARY_CLASS = "spikeinterface.core.binaryrecordingextractor.BinaryRecordingExtractor"
SI_BINARY_FOLDER_CLASS = "spikeinterface.core.binaryfolder.BinaryFolderRecording"
_BINARY_KWARGS = {
    "file_paths", "sampling_frequency", "t_starts", "num_channels", "num_chan", "dtype", "channel_ids", "time_axis",
    "file_offset", "gain_to_uV", "offset_to_uV", "is_filtered", "file_timestamps_paths",
}


class BinaryFolderRecording(BinaryRecordingExtractor):
    """A recording saved with ``save(format="binary")`` (by sicore or SpikeInterface), memory-mapped.

    Parameters
    ----------
    folder_path : str or Path
        The folder holding ``binary.json`` and the ``traces_cached_seg{i}.raw`` files.

    Notes
    -----
    Loading is safe: only paths inside the folder are read, JSON and ``.npy`` files are parsed without
    pickling, and a raw file whose size disagrees with the folder's metadata is an error naming it.
    """

    _path_kwargs = ("folder_path",)

    def __init__(self, folder_path):
        folder = Path(folder_path).absolute()
        if not folder.is_dir():
            raise FileNotFoundError(f"folder_path {folder} is not a folder")
        binary_file = folder / "binary.json"
        d = read_json(binary_file)
        kwargs = _checked_binary_kwargs(d, binary_file)
        info = read_json(folder / SICORE_INFO_FILE, required=False)
        file_paths = _as_list(kwargs["file_paths"])
        files = [path_inside(folder, p, binary_file) for p in file_paths]
        num_channels = int(kwargs.get("num_channels", kwargs.get("num_chan")))
        dtype = np.dtype(kwargs["dtype"])
        file_offset = int(kwargs.get("file_offset", 0) or 0)
        num_samples = _checked_num_samples(info, folder, files, num_channels, dtype, file_offset)
        for file in files:
            if not file.is_file():
                raise FileNotFoundError(f"{file}: raw traces file listed in {binary_file} not found")
        BinaryRecordingExtractor.__init__(
            self, [str(f) for f in files], kwargs["sampling_frequency"], dtype, num_channels,
            t_starts=_t_starts(kwargs.get("t_starts")), channel_ids=kwargs.get("channel_ids"),
            time_axis=int(kwargs.get("time_axis", 0)), file_offset=file_offset, gain_to_uV=kwargs.get("gain_to_uV"),
            offset_to_uV=kwargs.get("offset_to_uV"), is_filtered=kwargs.get("is_filtered"),
        )
        if num_samples is None:
            num_samples = [self.get_num_samples(i) for i in range(self.get_num_segments())]
        self._load_times(folder, binary_file, kwargs.get("file_timestamps_paths"), info, num_samples)
        attach_probegroup(self, folder)
        load_properties(folder, self)
        load_annotations(folder, self)
        self._kwargs = {"folder_path": str(folder)}

    def _load_times(self, folder: Path, binary_file: Path, timestamps_paths, info, num_samples) -> None:
        flags = (info or {}).get("time_vector_segments")
        if timestamps_paths is not None:
            timestamps_paths = _as_list(timestamps_paths)
            if len(timestamps_paths) != self.get_num_segments():
                raise CorruptFolderError(
                    f"{binary_file}: {len(timestamps_paths)} file_timestamps_paths for "
                    f"{self.get_num_segments()} segments"
                )
            for i, relative in enumerate(timestamps_paths):
                if relative is None or (flags is not None and not flags[i]):
                    continue
                file = path_inside(folder, relative, binary_file)
                check_file_size(file, num_samples[i] * 8, "time vector file")
                # memory-mapped like the traces: a long time vector is not read at load
                times = np.memmap(file, dtype="<f8", mode="r") if num_samples[i] else np.zeros(0)
                self._set_times_from(times, i, file)
        for i in range(self.get_num_segments()):
            legacy = folder / f"times_cached_seg{i}.npy"  # SI < 0.105 stored times as .npy
            if legacy.is_file() and not self.has_time_vector(i):
                self._set_times_from(load_npy(legacy), i, legacy)

    def _set_times_from(self, times: np.ndarray, segment_index: int, file: Path) -> None:
        try:
            self.set_times(times, segment_index=segment_index)
        except ValueError as err:
            raise CorruptFolderError(f"{file}: invalid time vector ({err})") from None


def read_binary_folder(folder_path) -> BinaryFolderRecording:
    """Load a binary folder saved by sicore or SpikeInterface (see ``BinaryFolderRecording``)."""
    return BinaryFolderRecording(folder_path)


def write_binary_folder(recording, folder, dtype=None, overwrite: bool = False, verbose: bool = False,
                        **job_kwargs) -> BinaryFolderRecording:
    """Save ``recording`` as a binary folder (SpikeInterface layout) and return it reloaded.

    Parameters
    ----------
    recording : BaseRecording
        The recording to save.
    folder : str or Path
        The folder to create.
    dtype : numpy dtype or None, default: None
        Dtype on disk (default: the recording's). Float to integer casts round half to even and
        clip to the integer range (SpikeInterface truncates and wraps; see ``sicore.io.casting``).
    overwrite : bool, default: False
        Replace an existing folder (only once the new one is complete).
    verbose : bool, default: False
        Passed to the executor.
    **job_kwargs
        ``n_jobs``, ``chunk_duration`` / ``chunk_size`` / ``chunk_memory`` / ``total_memory``,
        ``progress_bar``, ``mp_context``.

    Returns
    -------
    BinaryFolderRecording
        The saved recording, with the same properties, annotations, probe and times.
    """
    extra, job_kwargs = split_job_kwargs(job_kwargs)
    if extra:
        raise TypeError(f"unexpected arguments for a binary save: {sorted(extra)}")
    final = check_target_folder(folder, overwrite)
    dtype = np.dtype(recording.get_dtype() if dtype is None else dtype)
    metadata = collect_metadata(recording, final)
    with atomic_folder(final, overwrite) as tmp:
        write_raw_files(recording, tmp, dtype, job_kwargs, verbose=verbose)
        write_binary_folder_metadata(tmp, recording, dtype, metadata)
    return BinaryFolderRecording(final)


def write_raw_files(recording, folder: Path, dtype: np.dtype, job_kwargs: dict, verbose: bool = False) -> None:
    """Write the traces (and times) files of a binary folder into ``folder``, chunk by chunk.

    Even when the source is a plain binary file in the output's layout the bytes go through the chunked
    writer: on this project's machines (ext4 in a VM) ``copy_file_range`` measured 0.8-4.7 s (median 3.4 s)
    for a 2.7 GB copy against 1.2-1.8 s for two worker processes writing 1 s chunks.
    """
    num_channels = recording.get_num_channels()
    raw_names, times_names = binary_file_names(recording)
    num_samples = [recording.get_num_samples(i) for i in range(recording.get_num_segments())]
    for name, n in zip(raw_names, num_samples):
        _preallocate(folder / name, n * num_channels * dtype.itemsize)
    for name, n in zip(times_names or [], num_samples):
        _preallocate(folder / name, n * 8)
    raw_paths = [str(folder / n) for n in raw_names]
    times_paths = None if times_names is None else [str(folder / n) for n in times_names]
    run_chunked(recording, _write_binary_chunk, _init_binary_worker, (recording, raw_paths, dtype.str, times_paths),
                job_kwargs, "write_binary", verbose=verbose)


def binary_file_names(recording) -> tuple[list[str], list[str] | None]:
    """Names of the raw traces files and of the times files (None when no segment has a time vector)."""
    num_segments = recording.get_num_segments()
    raw_names = [f"traces_cached_seg{i}.raw" for i in range(num_segments)]
    any_times = any(recording.has_time_vector(i) for i in range(num_segments))
    # SI needs a times file for every segment as soon as one has a time vector
    times_names = [f"times_cached_seg{i}.raw" for i in range(num_segments)] if any_times else None
    return raw_names, times_names


def write_binary_folder_metadata(folder: Path, recording, dtype: np.dtype, metadata) -> None:
    """Every file of a binary folder except the raw traces / times (``si_folder.json`` last).

    Shared by ``write_binary_folder`` and the sharded save (``sicore.sharding``), which assembles the raw
    files from its shards' pieces.
    """
    num_segments = recording.get_num_segments()
    raw_names, times_names = binary_file_names(recording)
    write_metadata(folder, metadata)
    binary_dict = _binary_json(recording, raw_names, times_names, dtype, metadata)
    write_json(folder / "binary.json", binary_dict)
    write_json(folder / SICORE_INFO_FILE, sicore_info(
        "binary_folder", num_samples=[recording.get_num_samples(i) for i in range(num_segments)],
        num_channels=recording.get_num_channels(), dtype=dtype.str,
        time_vector_segments=[bool(recording.has_time_vector(i)) for i in range(num_segments)],
    ))
    # written last: the file load() dispatches on
    write_json(folder / "si_folder.json",
               si_folder_dict(SI_BINARY_FOLDER_CLASS, {"folder_path": "."}, metadata, "recording"))


def _binary_json(recording, raw_names, times_names, dtype: np.dtype, metadata) -> dict:
    gains = recording.get_channel_gains()
    offsets = recording.get_channel_offsets()
    t_starts = [_segment_t_start(recording, i) for i in range(recording.get_num_segments())]
    kwargs = {
        "file_paths": raw_names,
        "sampling_frequency": float(recording.sampling_frequency),
        "t_starts": None if all(t == 0.0 for t in t_starts) else t_starts,
        "num_channels": int(recording.get_num_channels()),
        "dtype": dtype.str,
        "channel_ids": recording.channel_ids.tolist(),
        "time_axis": 0,
        "file_offset": 0,
        "gain_to_uV": None if gains is None else np.asarray(gains, dtype=float).tolist(),
        "offset_to_uV": None if offsets is None else np.asarray(offsets, dtype=float).tolist(),
        "is_filtered": bool(recording.is_filtered()),
        "file_timestamps_paths": times_names,
    }
    d = si_folder_dict(SI_BINARY_CLASS, kwargs, metadata, "recording")
    d["annotations"] = {"is_filtered": kwargs["is_filtered"]}
    d["properties"]["group"] = None  # as SI: the binary extractor itself has no groups
    return d


def _segment_t_start(recording, segment_index: int) -> float:
    if recording.has_time_vector(segment_index):
        times = recording.get_times(segment_index)
        return float(times[0]) if times.size else 0.0
    return float(recording.get_start_time(segment_index))


def _preallocate(file: Path, size: int) -> None:
    with open(file, "wb") as f:
        f.truncate(size)


# ------------------------------------------------------------------ plain binary sources
def raw_copy_sources(recording, dtype: np.dtype) -> list[tuple[str, int, int]] | None:
    """``(file, byte offset, byte count)`` per segment when saving ``recording`` as ``dtype`` is a byte copy.

    That is the case only for a plain ``BinaryRecordingExtractor`` (or a ``BinaryFolderRecording``), not a
    subclass nor a view on one (a channel or frame slice, a scaling... are other classes), whose files are
    time-major with samples of ``dtype`` (same byte order) and all their channels in order (a channel slice
    keeping every channel in order, as attaching a probe makes, counts as plain). Anything else returns None.
    The sharded save uses it: such a save has nothing to compute, so its shards defer the copy to the gather.
    """
    recording = _without_identity_channel_slice(recording)
    if type(recording) not in (BinaryRecordingExtractor, BinaryFolderRecording):
        return None
    if np.dtype(recording.get_dtype()) != dtype:
        return None
    num_channels = recording.get_num_channels()
    sources = []
    for segment in recording._recording_segments:
        if (type(segment) is not BinaryRecordingSegment or segment.time_axis != 0 or segment.dtype != dtype
                or segment.num_channels != num_channels):
            return None
        frame_bytes = num_channels * dtype.itemsize
        sources.append((str(segment.file_path), int(segment.file_offset), segment.get_num_samples() * frame_bytes))
    return sources


def _without_identity_channel_slice(recording):
    """The parent of a channel slice that keeps every channel in order (what attaching a probe whose
    contacts are wired to channels 0..n-1 in order makes), else ``recording`` itself: its traces are the
    parent's, byte for byte."""
    from ..recording import ChannelSliceRecording

    while type(recording) is ChannelSliceRecording:
        parent = recording._parent
        indices = np.asarray(recording._parent_channel_indices)
        if indices.size != parent.get_num_channels() or not np.array_equal(indices, np.arange(indices.size)):
            break
        recording = parent
    return recording


# Worker side: each worker opens the pre-allocated files once and writes its chunks at their offsets
# with os.pwrite (no Python buffer, so nothing is lost if the pool stops the worker).
def _init_binary_worker(recording, file_paths, dtype, times_paths):
    dtype = np.dtype(dtype)
    return {
        "recording": recording,
        "dtype": dtype,
        "frame_bytes": recording.get_num_channels() * dtype.itemsize,
        "files": None if file_paths is None else [open(p, "r+b") for p in file_paths],
        "times_files": None if times_paths is None else [open(p, "r+b") for p in times_paths],
    }


def _write_binary_chunk(segment_index, start_frame, end_frame, ctx):
    recording = ctx["recording"]
    traces = recording.get_traces(segment_index=segment_index, start_frame=start_frame, end_frame=end_frame)
    data = cast_traces(traces, ctx["dtype"], where=f"segment {segment_index} frames [{start_frame}, {end_frame})")
    _write_at(ctx["files"][segment_index], start_frame * ctx["frame_bytes"], data)
    if ctx["times_files"] is not None:
        times = recording.sample_index_to_time(np.arange(start_frame, end_frame), segment_index=segment_index)
        _write_at(ctx["times_files"][segment_index], start_frame * 8, np.ascontiguousarray(times, dtype="<f8"))


def _write_at(file, offset: int, data: np.ndarray) -> None:
    view = memoryview(np.ascontiguousarray(data)).cast("B")
    written = 0
    while written < len(view):  # raw (unbuffered) writes may be partial
        written += os.pwrite(file.fileno(), view[written:], offset + written)


# ------------------------------------------------------------------ checks
def _checked_binary_kwargs(d, binary_file: Path) -> dict:
    if not isinstance(d, dict) or not isinstance(d.get("kwargs"), dict):
        raise CorruptFolderError(f"{binary_file}: expected an extractor dict with 'class' and 'kwargs'")
    class_name = d.get("class", "")
    if not isinstance(class_name, str) or not class_name.endswith("BinaryRecordingExtractor"):
        raise CorruptFolderError(f"{binary_file}: class {class_name!r} is not a BinaryRecordingExtractor")
    kwargs = d["kwargs"]
    unknown = set(kwargs) - _BINARY_KWARGS
    if unknown:  # a newer SpikeInterface may add options: they do not change the raw layout read here
        warnings.warn(f"{binary_file}: ignoring unknown kwargs {sorted(unknown)}")
    missing = [k for k in ("file_paths", "sampling_frequency", "dtype") if kwargs.get(k) is None]
    if kwargs.get("num_channels") is None and kwargs.get("num_chan") is None:
        missing.append("num_channels")
    if missing:
        raise CorruptFolderError(f"{binary_file}: missing kwargs {missing}")
    try:
        np.dtype(kwargs["dtype"])
    except TypeError:
        raise CorruptFolderError(f"{binary_file}: invalid dtype {kwargs['dtype']!r}") from None
    if np.dtype(kwargs["dtype"]).kind not in "iufb":
        raise CorruptFolderError(f"{binary_file}: dtype {kwargs['dtype']!r} is not a numeric dtype")
    return kwargs


def _checked_num_samples(info, folder: Path, files, num_channels: int, dtype: np.dtype, file_offset: int):
    """Exact sizes from sicore_info.json (None for SI-written folders, which do not record them)."""
    if info is None:
        return None
    info_file = folder / SICORE_INFO_FILE
    num_samples = info.get("num_samples") if isinstance(info, dict) else None
    if not isinstance(num_samples, list) or len(num_samples) != len(files):
        raise CorruptFolderError(f"{info_file}: 'num_samples' must list one count per raw file ({len(files)})")
    for file, n in zip(files, num_samples):
        check_file_size(file, file_offset + int(n) * num_channels * dtype.itemsize, "raw traces file")
    return [int(n) for n in num_samples]


def _t_starts(t_starts):
    if t_starts is None:
        return None
    return [0.0 if t is None else float(t) for t in _as_list(t_starts)]


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


__all__ = ["BinaryFolderRecording", "read_binary_folder", "write_binary_folder", "SI_LAYOUT_VERSION"]
