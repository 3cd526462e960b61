"""Zarr recordings (SpikeInterface's ``ZarrRecordingExtractor`` layout, zarr format 2): save and load.

Layout (as written by SpikeInterface 0.105.3 with zarr 2.18; sicore writes it with zarr 3 in
``zarr_format=2`` so zarr 2 readers open it)::

    .zattrs          sampling_frequency, num_segments, annotations, probegroup (probeinterface dict),
                     provenance (or null), zarr_class_info {class, module, version}
    channel_ids      uncompressed array
    traces_seg{i}    (num_samples, num_channels); chunks (chunk_size, all channels or channel_chunk_size)
    times_seg{i}     float64 time vector, only for segments that have one
    t_starts         float64 per segment (NaN: none), only when a segment has a start time
    properties/{key} uncompressed arrays
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..job import ensure_n_jobs, fix_job_kwargs
from ..recording import BaseRecording, BaseRecordingSegment
from .atomic import atomic_folder, check_target_folder
from .casting import cast_traces
from .chunking import resolve_chunk_size, run_chunked, split_job_kwargs
from .folder_metadata import SI_LAYOUT_VERSION, collect_metadata, sicore_info
from .safe_files import CorruptFolderError, float_or_none

SI_ZARR_RECORDING_CLASS = "spikeinterface.core.zarrextractors.ZarrRecordingExtractor"

_DEFAULT = "default"


def get_default_zarr_compressor(clevel: int = 5):
    """Blosc with zstd at ``clevel`` and bit shuffling: SpikeInterface's default for int16 traces.

    Parameters
    ----------
    clevel : int, default: 5
        Compression level, 1 (fast) to 9 (small).
    """
    from numcodecs import Blosc

    return Blosc(cname="zstd", clevel=clevel, shuffle=Blosc.BITSHUFFLE)


def zarr_folder_name(folder) -> Path:
    """``folder`` with ".zarr" appended when it does not already end with it (never replaced)."""
    folder = Path(folder)
    return folder if folder.suffix == ".zarr" else folder.with_name(folder.name + ".zarr")


class ZarrRecordingExtractor(BaseRecording):
    """A recording saved with ``save(format="zarr")`` by sicore or SpikeInterface.

    Parameters
    ----------
    folder_path : str or Path
        The zarr store (a local folder, usually ending with ".zarr").
    storage_options : None, default: None
        Accepted for SpikeInterface provenance; remote stores are not supported (must be None).
    load_compression_ratio : bool, default: False
        Annotate ``compression_ratio`` (all segments) and ``compression_ratio_segments``.
    """

    _path_kwargs = ("folder_path",)

    def __init__(self, folder_path, storage_options=None, load_compression_ratio: bool = False):
        import zarr

        if storage_options:
            raise ValueError("storage_options: sicore reads local zarr folders only (remote stores are not supported)")
        folder = Path(folder_path).absolute()
        if not folder.is_dir():
            raise FileNotFoundError(f"folder_path {folder} is not a folder")
        root = _open_root(folder)
        attrs = dict(root.attrs)
        for key in ("sampling_frequency", "num_segments"):
            if attrs.get(key) is None:
                raise CorruptFolderError(f"{folder}: attribute {key!r} missing from the zarr root")
        if "channel_ids" not in root:
            raise CorruptFolderError(f"{folder}: array 'channel_ids' missing")
        channel_ids = np.asarray(root["channel_ids"][:])
        num_segments = int(attrs["num_segments"])
        traces = [_traces_array(root, folder, i, channel_ids.size) for i in range(num_segments)]
        if not traces:
            raise CorruptFolderError(f"{folder}: num_segments is {num_segments}; a recording needs a segment")
        BaseRecording.__init__(self, attrs["sampling_frequency"], channel_ids, traces[0].dtype)
        t_starts = np.asarray(root["t_starts"][:]) if "t_starts" in root else None
        for i, array in enumerate(traces):
            t_start = None if t_starts is None or i >= t_starts.size else float_or_none(t_starts[i])
            self.add_recording_segment(ZarrRecordingSegment(array, self.sampling_frequency, t_start))
            if f"times_seg{i}" in root:
                times = np.asarray(root[f"times_seg{i}"][:])
                try:
                    self.set_times(times, segment_index=i)
                except ValueError as err:
                    raise CorruptFolderError(f"{folder / f'times_seg{i}'}: invalid time vector ({err})") from None
        _attach_probe_dict(self, attrs.get("probegroup") or attrs.get("probe"), folder)
        if "properties" in root:
            for key, array in root["properties"].arrays():
                if key == "contact_vector" and self.has_probe():
                    continue
                values = np.asarray(array[:])
                if values.ndim == 0 or values.shape[0] != channel_ids.size:
                    raise CorruptFolderError(f"{folder / 'properties' / key}: shape {values.shape} for "
                                             f"{channel_ids.size} channels")
                self.set_property(key, values)
        annotations = attrs.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise CorruptFolderError(f"{folder / '.zattrs'}: 'annotations' must be a JSON object")
        self._annotations.update(annotations)
        if load_compression_ratio:
            nbytes = [a.nbytes for a in traces]
            stored = [a.nbytes_stored() for a in traces]
            self.annotate(compression_ratio=sum(nbytes) / max(sum(stored), 1),
                          compression_ratio_segments={i: n / max(s, 1) for i, (n, s) in enumerate(zip(nbytes, stored))})
        self._root = root
        self._kwargs = {"folder_path": str(folder), "storage_options": None,
                        "load_compression_ratio": bool(load_compression_ratio)}


class ZarrRecordingSegment(BaseRecordingSegment):
    """One ``traces_seg{i}`` array, read chunk by chunk."""

    def __init__(self, array, sampling_frequency: float, t_start: float | None):
        BaseRecordingSegment.__init__(self, sampling_frequency, t_start=t_start)
        self._array = array

    def get_num_samples(self) -> int:
        return int(self._array.shape[0])

    def get_traces(self, start_frame, end_frame, channel_indices):
        if isinstance(channel_indices, slice):
            return self._array[start_frame:end_frame, channel_indices]
        return self._array[start_frame:end_frame][:, channel_indices]


def read_zarr(folder_path, storage_options=None) -> ZarrRecordingExtractor:
    """Load a zarr recording saved by sicore or SpikeInterface (see ``ZarrRecordingExtractor``)."""
    return ZarrRecordingExtractor(folder_path, storage_options=storage_options)


def write_zarr_recording(
    recording,
    folder,
    overwrite: bool = False,
    dtype=None,
    compressor=_DEFAULT,
    filters=None,
    compressor_by_dataset: dict | None = None,
    filters_by_dataset: dict | None = None,
    channel_chunk_size: int | None = None,
    storage_options=None,
    verbose: bool = False,
    **job_kwargs,
) -> ZarrRecordingExtractor:
    """Save ``recording`` as a zarr (format 2) store readable by SpikeInterface, and return it reloaded.

    Parameters
    ----------
    recording : BaseRecording
        The recording to save.
    folder : str or Path
        The store to create; ".zarr" is appended when missing.
    overwrite : bool, default: False
        Replace an existing store (only once the new one is complete).
    dtype : numpy dtype or None, default: None
        Dtype of the stored traces (rounded and clipped like the binary format).
    compressor : numcodecs codec or None, default: Blosc(cname="zstd", clevel=5, shuffle=BITSHUFFLE)
        Compressor of traces and times; None stores them uncompressed.
    filters : list of numcodecs codecs or None, default: None
        Filters of the traces, e.g. ``[Delta(dtype="int16")]``. Unlike SpikeInterface they are not
        applied to the float64 times (a typed filter such as Delta(int16) would corrupt them); use
        ``filters_by_dataset={"times": [...]}`` for that.
    compressor_by_dataset, filters_by_dataset : dict or None, default: None
        Per-dataset overrides, keys "traces" and "times".
    channel_chunk_size : int or None, default: None
        Channels per chunk (default: all channels in one chunk).
    storage_options : None, default: None
        Remote stores are not supported (must be None).
    verbose : bool, default: False
        Passed to the executor.
    **job_kwargs
        ``n_jobs``, chunking options (the time chunk of the store is the job chunk size), ``progress_bar``...

    Returns
    -------
    ZarrRecordingExtractor
        The saved recording with its properties, annotations, probe and times.

    Notes
    -----
    Chunks are encoded with the arrays' own codecs and written as the store's chunk files (the bytes zarr
    writes). With ``n_jobs=1`` they are encoded on one thread per core (at most 4) while the next chunk
    is read; with ``n_jobs > 1`` each worker process encodes on one thread.
    """
    import zarr

    if storage_options:
        raise ValueError("storage_options: sicore writes local zarr folders only")
    extra, job_kwargs = split_job_kwargs(job_kwargs)
    if extra:
        raise TypeError(f"unexpected arguments for a zarr save: {sorted(extra)}")
    final = check_target_folder(zarr_folder_name(folder), overwrite)
    dtype = np.dtype(recording.get_dtype() if dtype is None else dtype)
    layout = zarr_array_layout(recording, compressor, filters, compressor_by_dataset, filters_by_dataset,
                               channel_chunk_size)
    chunk_size = resolve_chunk_size(recording, job_kwargs)
    metadata = collect_metadata(recording, final)
    has_times = [bool(recording.has_time_vector(i)) for i in range(recording.get_num_segments())]
    with atomic_folder(final, overwrite) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        create_zarr_trace_arrays(root, recording, dtype, chunk_size, layout)
        n_jobs = ensure_n_jobs(None, fix_job_kwargs(dict(job_kwargs)).get("n_jobs", 1))
        # in process (n_jobs=1): encode on all cores while the next chunk is read; worker processes
        # (n_jobs > 1) encode on one thread each and wait for their chunk
        pool = _EncodePool(_encode_threads(), window=_encode_threads()) if n_jobs == 1 else None
        try:
            init_args = (recording, str(tmp), dtype.str, has_times, chunk_size, pool)
            run_chunked(recording, _write_zarr_chunk, _init_zarr_worker, init_args, job_kwargs, "write_zarr",
                        chunk_size=chunk_size, verbose=verbose)
            if pool is not None:
                pool.finish()
        finally:
            if pool is not None:
                pool.close()
        finish_zarr_store(root, recording, metadata)
    return ZarrRecordingExtractor(final)


def zarr_array_layout(recording, compressor=_DEFAULT, filters=None, compressor_by_dataset: dict | None = None,
                      filters_by_dataset: dict | None = None, channel_chunk_size: int | None = None) -> dict:
    """Codecs and channel chunking of the trace / time arrays, validated (see ``write_zarr_recording``)."""
    compressor = get_default_zarr_compressor() if isinstance(compressor, str) and compressor == _DEFAULT else compressor
    compressor_by_dataset = compressor_by_dataset or {}
    filters_by_dataset = filters_by_dataset or {}
    _check_codecs(compressor, filters, compressor_by_dataset, filters_by_dataset)
    num_channels = recording.get_num_channels()
    channel_chunk = num_channels if channel_chunk_size is None else int(channel_chunk_size)
    if not 1 <= channel_chunk:
        raise ValueError(f"channel_chunk_size must be a positive int, got {channel_chunk_size!r}")
    return {
        "channel_chunk": channel_chunk,
        "traces_compressor": compressor_by_dataset.get("traces", compressor),
        "traces_filters": filters_by_dataset.get("traces", filters),
        "times_compressor": compressor_by_dataset.get("times", compressor),
        "times_filters": filters_by_dataset.get("times", None),
    }


def create_zarr_trace_arrays(root, recording, dtype: np.dtype, chunk_size: int, layout: dict) -> None:
    """Create the empty ``traces_seg{i}`` (and ``times_seg{i}``) arrays and ``channel_ids`` in ``root``.

    Shared by ``write_zarr_recording`` and the sharded save (``sicore.sharding``): arrays created with the
    same layout encode every chunk to the same bytes, so chunk files written by shards are those of an
    unsharded save.
    """
    root.create_array("channel_ids", data=recording.channel_ids, compressors=None)
    array_kwargs = {"fill_value": 0, "config": {"write_empty_chunks": True}}
    num_channels = recording.get_num_channels()
    for i in range(recording.get_num_segments()):
        n = recording.get_num_samples(i)
        root.create_array(f"traces_seg{i}", shape=(n, num_channels), chunks=(chunk_size, layout["channel_chunk"]),
                          dtype=dtype, compressors=layout["traces_compressor"], filters=layout["traces_filters"],
                          **array_kwargs)
        if recording.has_time_vector(i):
            root.create_array(f"times_seg{i}", shape=(n,), chunks=(chunk_size,), dtype="<f8",
                              compressors=layout["times_compressor"], filters=layout["times_filters"],
                              **array_kwargs)


def finish_zarr_store(root, recording, metadata) -> None:
    """``t_starts``, ``properties/`` and the root attributes (last: they mark a complete store)."""
    num_segments = recording.get_num_segments()
    has_times = [bool(recording.has_time_vector(i)) for i in range(num_segments)]
    attrs = {
        "zarr_class_info": {"class": SI_ZARR_RECORDING_CLASS, "module": "spikeinterface",
                            "version": SI_LAYOUT_VERSION},
        "provenance": metadata.provenance,
        "sampling_frequency": float(recording.sampling_frequency),
        "num_segments": int(num_segments),
        "annotations": metadata.annotations,
        "sicore_info": sicore_info("zarr_recording"),
    }
    if metadata.probegroup is not None:
        attrs["probegroup"] = _probegroup_dict(metadata.probegroup)
    t_starts = np.array([np.nan if has_times[i] else recording.get_start_time(i) for i in range(num_segments)])
    if np.any(np.nan_to_num(t_starts) != 0):
        root.create_array("t_starts", data=t_starts, compressors=None)
    properties = root.create_group("properties")
    for key, values in metadata.properties.items():
        properties.create_array(key, data=values, compressors=None)
    root.attrs.update(attrs)  # last: the root attributes are what marks a complete store


# Worker side. zarr 3 encodes a chunk through asyncio with Blosc on one thread and one chunk at a time,
# which makes a save compression-bound; here each chunk is encoded with the array's own numcodecs
# codecs (read from its metadata) and written as the store's chunk file directly, on background threads
# (Blosc releases the GIL). Encoding always runs off the main thread, where numcodecs uses Blosc's
# single-threaded context: its output does not depend on thread timing (Blosc's multi-threaded
# compressor orders blocks as threads finish), so every save writes the same bytes as zarr itself.
# Executor chunks match the zarr chunks in time, so no two workers ever write the same chunk file.
_MAX_ENCODE_THREADS = 4


class _ChunkFileWriter:
    """Encodes whole chunks of one zarr format 2 array and writes them as its chunk files.

    Parameters
    ----------
    array : zarr.Array
        A format 2 array of a local store (its codecs, chunking, order, fill value and key separator are used).
    store_path : Path
        The store's folder.
    """

    def __init__(self, array, store_path: Path):
        meta = array.metadata
        if getattr(meta, "zarr_format", None) != 2:
            raise ValueError(f"{array.path}: chunk files are written for zarr format 2 arrays only")
        self.folder = Path(store_path) / array.path
        self.shape = tuple(int(n) for n in meta.shape)
        self.chunks = tuple(int(n) for n in meta.chunks)
        self.dtype = np.dtype(array.dtype)
        self.order = meta.order
        self.filters = tuple(meta.filters or ())
        self.compressor = meta.compressor
        self.separator = meta.dimension_separator
        self.fill_value = 0 if meta.fill_value is None else meta.fill_value

    def write_rows(self, start_frame: int, data: np.ndarray) -> None:
        """Write rows ``[start_frame, start_frame + len(data))``, which must be whole chunks along time
        (the last chunk of the array may be short: it is padded with the fill value, as zarr does)."""
        rows = self.chunks[0]
        end_frame = start_frame + data.shape[0]
        if start_frame % rows or (end_frame % rows and end_frame != self.shape[0]):
            raise RuntimeError(f"{self.folder.name}: rows [{start_frame}, {end_frame}) are not whole chunks of "
                               f"{rows} samples; parallel writes would collide")
        for row in range(start_frame, end_frame, rows):
            block_rows = data[row - start_frame: row - start_frame + rows]
            if data.ndim == 1:
                self._write_chunk(f"{row // rows}", block_rows)
                continue
            columns = self.chunks[1]
            for column in range(0, self.shape[1], columns):
                key = f"{row // rows}{self.separator}{column // columns}"
                self._write_chunk(key, block_rows[:, column:column + columns])

    def _write_chunk(self, key: str, block: np.ndarray) -> None:
        from numcodecs.compat import ensure_contiguous_ndarray

        if block.shape != self.chunks:  # an edge chunk: stored at the full chunk shape
            full = np.full(self.chunks, self.fill_value, dtype=self.dtype, order=self.order)
            full[tuple(slice(0, n) for n in block.shape)] = block
            block = full
        encoded = np.require(block, dtype=self.dtype, requirements=self.order)
        for codec in self.filters:
            encoded = codec.encode(encoded)
        if self.compressor is not None:
            encoded = self.compressor.encode(encoded)
        path = self.folder / key
        if self.separator == "/":
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(ensure_contiguous_ndarray(encoded))


class _EncodePool:
    """Background threads that encode and write chunks, with at most ``window`` tasks in flight.

    ``window=0`` waits for every task before ``submit`` returns (worker processes must not return
    with a chunk still unwritten); a larger window lets the caller read the next chunk meanwhile.
    """

    def __init__(self, threads: int, window: int):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sicore-zarr-encode")
        self._window = window
        self._pending: list = []

    def submit(self, func, *args) -> None:
        """Run ``func(*args)`` on a pool thread; re-raises the error of an earlier task."""
        self._pending.append(self._pool.submit(func, *args))
        while len(self._pending) > self._window:
            self._pending.pop(0).result()

    def finish(self) -> None:
        """Wait for every task; raises the first error."""
        while self._pending:
            self._pending.pop(0).result()

    def close(self) -> None:
        """Stop: drop queued tasks, wait for running ones."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)


def _encode_threads() -> int:
    """Encoding threads of an in-process (n_jobs=1) save: one per core, at most ``_MAX_ENCODE_THREADS``.

    Worker processes (n_jobs > 1) encode on one thread each, so that n_jobs processes use n_jobs cores.
    """
    from ..job import get_usable_cpu_count

    return max(1, min(get_usable_cpu_count(), _MAX_ENCODE_THREADS))


def _init_zarr_worker(recording, store_path, dtype, has_times, chunk_size, pool: _EncodePool | None = None):
    """Worker state; ``pool`` (in-process saves only) is a pipelined ``_EncodePool`` that the caller drains,
    None makes a synchronous one."""
    import zarr

    root = zarr.open_group(store_path, mode="r+", zarr_format=2)
    num_segments = recording.get_num_segments()
    store = Path(store_path)
    return {
        "recording": recording,
        "dtype": np.dtype(dtype),
        "chunk_size": int(chunk_size),
        "traces": [_ChunkFileWriter(root[f"traces_seg{i}"], store) for i in range(num_segments)],
        "times": [_ChunkFileWriter(root[f"times_seg{i}"], store) if has_times[i] else None
                  for i in range(num_segments)],
        "pool": _EncodePool(1, 0) if pool is None else pool,
    }


def _write_zarr_chunk(segment_index, start_frame, end_frame, ctx):
    if start_frame % ctx["chunk_size"] != 0:
        raise RuntimeError(f"chunk starting at frame {start_frame} is not aligned on the zarr chunks "
                           f"({ctx['chunk_size']} samples); parallel writes would collide")
    recording = ctx["recording"]
    traces = recording.get_traces(segment_index=segment_index, start_frame=start_frame, end_frame=end_frame)
    where = f"segment {segment_index} frames [{start_frame}, {end_frame})"
    ctx["pool"].submit(ctx["traces"][segment_index].write_rows, start_frame, cast_traces(traces, ctx["dtype"], where))
    times_writer = ctx["times"][segment_index]
    if times_writer is not None:
        times = recording.sample_index_to_time(np.arange(start_frame, end_frame), segment_index=segment_index)
        ctx["pool"].submit(times_writer.write_rows, start_frame, np.asarray(times, dtype="<f8"))


# ------------------------------------------------------------------ helpers
def _open_root(folder: Path):
    import zarr

    if not ((folder / ".zgroup").is_file() or (folder / "zarr.json").is_file()):
        raise CorruptFolderError(f"{folder}: not a zarr store (no .zgroup or zarr.json)")
    try:
        return zarr.open_group(str(folder), mode="r")
    except Exception as err:  # zarr raises many types for broken metadata
        raise CorruptFolderError(f"{folder}: cannot open the zarr store ({type(err).__name__}: {err})") from None


def _traces_array(root, folder: Path, segment_index: int, num_channels: int):
    name = f"traces_seg{segment_index}"
    if name not in root:
        raise CorruptFolderError(f"{folder / name}: traces array missing")
    array = root[name]
    if array.ndim != 2 or array.shape[1] != num_channels:
        raise CorruptFolderError(f"{folder / name}: shape {array.shape}, expected (num_samples, {num_channels})")
    if np.dtype(array.dtype).kind not in "iufb":
        raise CorruptFolderError(f"{folder / name}: dtype {array.dtype} is not numeric")
    # every chunk is written (also all-zero ones), so a missing chunk means an incomplete store
    if array.nchunks_initialized != array.nchunks:
        raise CorruptFolderError(
            f"{folder / name}: only {array.nchunks_initialized} of {array.nchunks} chunks are on disk "
            "(incomplete store)"
        )
    return array


def _probegroup_dict(probegroup) -> dict:
    import json

    return json.loads(json.dumps(probegroup.to_dict(array_as_list=True), default=_json_default))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _attach_probe_dict(recording, probe_dict, folder: Path) -> None:
    if probe_dict is None:
        return
    from probeinterface import ProbeGroup

    try:
        probegroup = ProbeGroup.from_dict(probe_dict)
    except Exception as err:
        raise CorruptFolderError(f"{folder / '.zattrs'}: invalid 'probegroup' ({err})") from None
    offset = 0
    for probe in probegroup.probes:
        count = probe.get_contact_count()
        probe.set_device_channel_indices(np.arange(offset, offset + count))
        offset += count
    if offset != recording.get_num_channels():
        raise CorruptFolderError(f"{folder / '.zattrs'}: probe has {offset} contacts for "
                                 f"{recording.get_num_channels()} channels")
    recording.set_probegroup(probegroup, in_place=True)


def _check_codecs(compressor, filters, compressor_by_dataset, filters_by_dataset) -> None:
    from numcodecs.abc import Codec

    for name, codec in [("compressor", compressor)] + [(f"compressor_by_dataset[{k!r}]", v)
                                                       for k, v in compressor_by_dataset.items()]:
        if codec is not None and not isinstance(codec, Codec):
            raise ValueError(f"{name} must be a numcodecs codec or None, got {codec!r}")
    for name, codecs in [("filters", filters)] + [(f"filters_by_dataset[{k!r}]", v)
                                                  for k, v in filters_by_dataset.items()]:
        if codecs is not None and not all(isinstance(c, Codec) for c in codecs):
            raise ValueError(f"{name} must be a list of numcodecs codecs or None, got {codecs!r}")
    for name, d in (("compressor_by_dataset", compressor_by_dataset), ("filters_by_dataset", filters_by_dataset)):
        unknown = set(d) - {"traces", "times"}
        if unknown:
            raise ValueError(f"{name} keys must be 'traces' or 'times', got {sorted(unknown)}")


__all__ = ["ZarrRecordingExtractor", "read_zarr", "write_zarr_recording", "get_default_zarr_compressor",
           "zarr_folder_name"]
