"""Sharded ``save_recording``: each shard writes its own pieces, the gather assembles the saved folder.

binary, ``binary_layout="single_file"`` (the default: the folder ``save(format="binary")`` writes)
    Shard ``k`` writes ``traces_seg{i}.raw`` (and ``times_seg{i}.raw``) holding only its frames of each
    segment it touches, in its own shard folder. When the source is a plain binary file already in the
    output's layout, the save is a byte copy with nothing to compute: the shards only check the source and
    the gather writes it once, as an unsharded save does (copying pieces and then the pieces again would
    move every byte twice). Otherwise the gather creates the final folder (as
    a temporary sibling renamed into place), concatenates the pieces of each segment in shard order with
    ``io.file_copy.copy_range`` in threads (reused buffers; with ``remove_shards``
    each file's first piece is renamed into place instead of copied), and writes the
    metadata files with the code ``write_binary_folder`` uses. Casting is element-wise, so the raw files
    are byte-identical to an unsharded save, and so is every other file.

binary, ``binary_layout="pieces"`` (no copy: the save's wall time falls as 1/N on N nodes)
    The shards write their pieces as above (a plain copy included: each shard copies its own range). The
    gather moves (or hard-links, or else copies) each piece into ``pieces/seg{i}_shard{k}/`` of the final
    folder, as a one-segment binary folder (the first one with the probe, properties and annotations,
    which the joined recording takes from it), and writes an ``si_folder.json`` that joins them:
    SpikeInterface's ``ConcatenateSegmentRecording`` per segment (``AppendSegmentRecording`` of those
    for several segments). sicore and SpikeInterface 0.105.3 load the folder as the same recording, with
    the same traces bit for bit, channels, properties and probe. SpikeInterface's concatenation carries
    no times, so a source with a time vector or a non-zero start time is saved as ``single_file``.

zarr
    Shard ``k`` writes a private zarr store whose arrays have the final store's shape, chunking and
    codecs, and fills only the chunks of its range (shard borders are chunk borders). The gather creates
    the final store's arrays and hard-links (or, across file systems, copies) each shard's chunk files
    into it, then writes ``t_starts``, properties and the root attributes last. Chunk files are encoded by
    the same codecs from the same samples, so they are byte-identical to an unsharded save's.

No two jobs ever write the same file: shards write only inside their shard folder, the gather only
inside its temporary final folder.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np

from .sharding_plan import (
    check_shards,
    discard_shards,
    get_shard,
    make_marker,
    plan_shards,
    remove_stale_temporaries,
    shard_output,
    take_shards,
)

_FORMATS = ("binary", "binary_folder", "zarr")
_BINARY_LAYOUTS = ("single_file", "pieces")
# SpikeInterface class names of the pieces layout's si_folder.json (sicore registers the same names)
_SI_CONCATENATE_CLASS = "spikeinterface.core.segmentutils.ConcatenateSegmentRecording"
_SI_APPEND_CLASS = "spikeinterface.core.segmentutils.AppendSegmentRecording"
_PIECES_FOLDER = "pieces"
_hard_link = os.link  # module attributes, so tests can emulate file systems without hard links / renames
_move = os.rename


def _as_recording(recording):
    """A recording from a recording object, a saved folder / provenance file, or a source the CLI accepts."""
    if isinstance(recording, (str, Path)):
        try:  # the workflow's sources (JSON specs, SpikeGLX, ...), as `sicore save-recording SOURCE` reads them
            from .sources import load_source_argument
        except ImportError:
            from .io.loading import load_extractor

            recording = load_extractor(recording)
        else:
            recording = load_source_argument(str(recording), "recording")
    if not hasattr(recording, "get_traces"):
        raise ValueError(f"recording must be a recording or a path to one, got {type(recording).__name__}")
    return recording


def _check_format(format: str) -> str:
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {list(_FORMATS)}, got {format!r}")
    return "zarr" if format == "zarr" else "binary"


def _source_fingerprint(recording) -> dict:
    num_segments = recording.get_num_segments()
    return {
        "num_samples": [int(recording.get_num_samples(i)) for i in range(num_segments)],
        "num_channels": int(recording.get_num_channels()),
        "sampling_frequency": float(recording.get_sampling_frequency()),
        "dtype": np.dtype(recording.get_dtype()).str,
        "channel_ids": np.asarray(recording.channel_ids).tolist(),
        "time_vectors": [bool(recording.has_time_vector(i)) for i in range(num_segments)],
    }


def _check_binary_layout(binary_layout: str, format: str) -> str:
    if binary_layout not in _BINARY_LAYOUTS:
        raise ValueError(f"binary_layout must be one of {list(_BINARY_LAYOUTS)}, got {binary_layout!r}")
    return binary_layout if format == "binary" else "single_file"


def pieces_layout_possible(recording) -> bool:
    """True when the pieces layout can hold ``recording``: every segment has samples, no time vector and
    starts at time 0 (SpikeInterface's concatenation, which joins the pieces, carries no times)."""
    return all(recording.get_num_samples(i) > 0 and not recording.has_time_vector(i)
               and recording.get_start_time(i) == 0.0 for i in range(recording.get_num_segments()))


def _save_params(recording, format: str, dtype, zarr_options: dict,
                 binary_layout: str = "single_file") -> tuple[dict, dict | None]:
    """(JSON params that shards and gather must agree on, zarr array layout or None)."""
    dtype = np.dtype(recording.get_dtype() if dtype is None else dtype)
    params = {"format": format, "dtype": dtype.str}
    layout = None
    if binary_layout == "pieces" and not pieces_layout_possible(recording):
        import warnings

        warnings.warn("binary_layout='pieces' needs segments that start at time 0 without time vectors "
                      "(SpikeInterface's concatenation keeps no times): saving as 'single_file'")
        binary_layout = "single_file"
    if binary_layout == "pieces":
        params["binary_layout"] = "pieces"  # each shard copies its own range, even a plain byte copy
    elif format == "binary" and _deferred_copy_sources(recording, dtype) is not None:
        # shards and gather must agree that the shards write nothing (see _deferred_copy_sources)
        params["deferred_copy"] = True
    if format == "zarr":
        from .io.zarr_recording import zarr_array_layout

        layout = zarr_array_layout(recording, **zarr_options)
        params["zarr_layout"] = {
            "channel_chunk": layout["channel_chunk"],
            **{key: _codec_config(layout[key]) for key in ("traces_compressor", "traces_filters",
                                                           "times_compressor", "times_filters")},
        }
    return params, layout


def _deferred_copy_sources(recording, dtype: np.dtype):
    """The source byte ranges when a binary save is a plain byte copy of the source's files, else None.

    Such a save has nothing to compute: copying pieces in the shards and then again in the gather would
    move every byte twice (and a byte copy is disk-bound, so splitting it across nodes gains nothing). The
    shards then only check the source and write their marker, and the gather writes the source's bytes
    once, as an unsharded save does.
    """
    if any(recording.has_time_vector(i) for i in range(recording.get_num_segments())):
        return None
    from .io.binary_folder import raw_copy_sources

    return raw_copy_sources(recording, dtype)


def _codec_config(codec):
    if codec is None:
        return None
    if isinstance(codec, (list, tuple)):
        return [c.get_config() for c in codec]
    return codec.get_config()


def _split_save_kwargs(kwargs: dict, format: str) -> tuple[dict, dict]:
    """(zarr options, job kwargs); anything else is an error naming it."""
    from .job import split_job_kwargs

    zarr_keys = ("compressor", "filters", "compressor_by_dataset", "filters_by_dataset", "channel_chunk_size")
    zarr_options = {k: kwargs.pop(k) for k in zarr_keys if k in kwargs}
    if zarr_options and format != "zarr":
        raise TypeError(f"{sorted(zarr_options)} are zarr options, but format={format!r}")
    extra, job_kwargs = split_job_kwargs(kwargs)
    if extra:
        raise TypeError(f"unexpected arguments for a sharded save: {sorted(extra)}")
    return zarr_options, job_kwargs


def _executor(recording, func, init_func, init_args, job_kwargs: dict, chunk_size: int, job_name: str):
    from .job import ChunkRecordingExecutor, fix_job_kwargs

    job_kwargs = fix_job_kwargs(dict(job_kwargs))
    executor_kwargs = {k: v for k, v in job_kwargs.items()
                       if k not in ("chunk_size", "chunk_duration", "chunk_memory", "total_memory")}
    return ChunkRecordingExecutor(recording, func, init_func, init_args, job_name=job_name, chunk_size=chunk_size,
                                  **executor_kwargs)


# ------------------------------------------------------------------------------------------ shard
def shard_save_recording(recording, shard_folder, shard_index: int, num_shards: int | None = None,
                         shard_duration=None, format: str = "binary", dtype=None, binary_layout: str = "single_file",
                         **kwargs) -> Path:
    """Write shard ``shard_index`` of a sharded ``save_recording`` into ``shard_folder`` (atomically).

    Parameters
    ----------
    recording : BaseRecording or str or Path
        The recording to save, or what ``sicore save-recording SOURCE`` accepts (a saved folder, a provenance
        or source JSON file, a source as JSON text).
    shard_folder : str or Path
        This shard's output folder (replaced atomically when it exists).
    shard_index : int
        The shard, in ``[0, num_shards)``.
    num_shards : int or None, default: None
        Number of shards (or give ``shard_duration``).
    shard_duration : str or float or None, default: None
        Shard duration instead of ``num_shards`` (see ``plan_shards``).
    format : "binary" | "zarr", default: "binary"
        Format of the final folder.
    dtype : numpy dtype or None, default: None
        Dtype on disk (default: the recording's).
    binary_layout : "single_file" | "pieces", default: "single_file"
        Layout of a binary save (see the module's docstring); the gather's must be the same.
    **kwargs
        zarr options of ``save(format="zarr")`` (``compressor``, ``filters``, ``compressor_by_dataset``,
        ``filters_by_dataset``, ``channel_chunk_size``) and job kwargs (``n_jobs``, ``chunk_duration``...). The
        chunking options must be those of the gather: they set the shard borders (and the zarr chunks).

    Returns
    -------
    shard_folder : Path
        The completed shard folder.
    """
    recording = _as_recording(recording)
    format = _check_format(format)
    binary_layout = _check_binary_layout(binary_layout, format)
    zarr_options, job_kwargs = _split_save_kwargs(dict(kwargs), format)
    from .io.chunking import resolve_chunk_size

    chunk_size = resolve_chunk_size(recording, job_kwargs)
    shard = get_shard(recording, shard_index, num_shards, shard_duration, chunk_size=chunk_size)
    params, layout = _save_params(recording, format, dtype, zarr_options, binary_layout)
    marker = make_marker("save_recording", shard, chunk_size, params, _source_fingerprint(recording))
    target_dtype = np.dtype(params["dtype"])
    slices = shard.chunk_slices(chunk_size)
    with shard_output(shard_folder, marker) as tmp:
        if params.get("deferred_copy"):
            _check_sources(_deferred_copy_sources(recording, target_dtype), shard, recording)
        elif format == "binary":
            _write_binary_pieces(recording, shard, tmp, target_dtype, slices, job_kwargs, chunk_size)
        else:
            _write_zarr_shard(recording, tmp, target_dtype, slices, job_kwargs, chunk_size, layout)
    return Path(os.path.abspath(shard_folder))


def _write_binary_pieces(recording, shard, folder: Path, dtype: np.dtype, slices, job_kwargs, chunk_size) -> None:
    from .io.binary_folder import _preallocate

    with_times = any(recording.has_time_vector(i) for i in range(recording.get_num_segments()))
    frame_bytes = recording.get_num_channels() * dtype.itemsize
    pieces = {}
    for segment_index, start, end in shard.ranges:
        raw = folder / f"traces_seg{segment_index}.raw"
        _preallocate(raw, (end - start) * frame_bytes)
        times = None
        if with_times:
            times = folder / f"times_seg{segment_index}.raw"
            _preallocate(times, (end - start) * 8)
        pieces[segment_index] = (str(raw), None if times is None else str(times), start)
    if not slices:
        return
    executor = _executor(recording, _write_piece_chunk, _init_piece_worker, (recording, pieces, dtype.str),
                         job_kwargs, chunk_size, "shard_write_binary")
    executor.run(slices)


# Worker side: like write_binary_folder's workers, but a shard's piece starts at its range's first frame.
def _init_piece_worker(recording, pieces: dict, dtype: str) -> dict:
    dtype = np.dtype(dtype)
    return {
        "recording": recording,
        "dtype": dtype,
        "frame_bytes": recording.get_num_channels() * dtype.itemsize,
        "pieces": {seg: (open(raw, "r+b"), None if times is None else open(times, "r+b"), start)
                   for seg, (raw, times, start) in pieces.items()},
    }


def _write_piece_chunk(segment_index, start_frame, end_frame, ctx) -> None:
    from .io.binary_folder import _write_at
    from .io.casting import cast_traces

    recording = ctx["recording"]
    raw_file, times_file, piece_start = ctx["pieces"][segment_index]
    traces = recording.get_traces(segment_index=segment_index, start_frame=start_frame, end_frame=end_frame)
    data = cast_traces(traces, ctx["dtype"], where=f"segment {segment_index} frames [{start_frame}, {end_frame})")
    _write_at(raw_file, (start_frame - piece_start) * ctx["frame_bytes"], data)
    if times_file is not None:
        times = recording.sample_index_to_time(np.arange(start_frame, end_frame), segment_index=segment_index)
        _write_at(times_file, (start_frame - piece_start) * 8, np.ascontiguousarray(times, dtype="<f8"))


def _write_zarr_shard(recording, folder: Path, dtype: np.dtype, slices, job_kwargs, chunk_size, layout) -> None:
    import zarr

    from .io.zarr_recording import _init_zarr_worker, _write_zarr_chunk, create_zarr_trace_arrays

    store = folder / "store.zarr"
    root = zarr.open_group(str(store), mode="w", zarr_format=2)
    create_zarr_trace_arrays(root, recording, dtype, chunk_size, layout)
    if not slices:
        return
    has_times = [bool(recording.has_time_vector(i)) for i in range(recording.get_num_segments())]
    executor = _executor(recording, _write_zarr_chunk, _init_zarr_worker,
                         (recording, str(store), dtype.str, has_times, chunk_size), job_kwargs, chunk_size,
                         "shard_write_zarr")
    executor.run(slices)


# ------------------------------------------------------------------------------------------ gather
def gather_save_recording(recording, shard_folders, folder, num_shards: int | None = None, shard_duration=None,
                          format: str = "binary", dtype=None, overwrite: bool = False, remove_shards: bool = False,
                          binary_layout: str = "single_file", **kwargs):
    """Assemble the saved recording from the shards of a sharded ``save_recording``.

    The result is the folder ``save(format=...)`` writes, file for file and byte for byte; with
    ``binary_layout="pieces"``, a folder of the shards' pieces that loads as the same recording.

    Parameters
    ----------
    recording : BaseRecording or str or Path
        The source recording (its metadata, probe and provenance are written by the gather).
    shard_folders : list of str or Path
        The shard folders, in shard order.
    folder : str or Path
        The final folder (".zarr" is appended for zarr when missing, as ``save`` does).
    num_shards, shard_duration :
        The plan, as given to the shards.
    format : "binary" | "zarr", default: "binary"
        As given to the shards.
    dtype : numpy dtype or None, default: None
        As given to the shards.
    overwrite : bool, default: False
        Replace an existing final folder (only once the new one is complete).
    remove_shards : bool, default: False
        Consume the shard folders: once they are checked they are moved aside (they then count as
        missing) and each binary piece is deleted as soon as it is copied, so its pages that were not
        yet written back never reach the disk and the disk holds at most one piece beyond the final
        folder. Use it only when the shard folders are temporary outputs (Snakemake ``temp()``): a
        failed gather then needs its shards recomputed (Snakemake does so, their outputs being missing).
    binary_layout : "single_file" | "pieces", default: "single_file"
        As given to the shards. "pieces" moves (``remove_shards``) or hard-links the pieces into the
        final folder instead of copying them into one file per segment.
    **kwargs
        zarr options and chunking job kwargs, as given to the shards.

    Returns
    -------
    BinaryFolderRecording or ZarrRecordingExtractor or ConcatenateSegmentRecording or AppendSegmentRecording
        The saved recording (the last two for the pieces layout).

    Raises
    ------
    ShardError
        When a shard is missing, incomplete or from another plan (the error names each such shard).
    """
    recording = _as_recording(recording)
    format = _check_format(format)
    binary_layout = _check_binary_layout(binary_layout, format)
    zarr_options, job_kwargs = _split_save_kwargs(dict(kwargs), format)
    from .io.atomic import atomic_folder, check_target_folder
    from .io.chunking import resolve_chunk_size
    from .io.folder_metadata import collect_metadata

    chunk_size = resolve_chunk_size(recording, job_kwargs)
    plan = plan_shards(recording, num_shards=num_shards, shard_duration=shard_duration, chunk_size=chunk_size)
    params, layout = _save_params(recording, format, dtype, zarr_options, binary_layout)
    shards = check_shards("save_recording", shard_folders, plan, chunk_size, params, _source_fingerprint(recording))
    target_dtype = np.dtype(params["dtype"])
    if format == "zarr":
        from .io.zarr_recording import zarr_folder_name

        folder = zarr_folder_name(folder)
    final = check_target_folder(folder, overwrite)
    remove_stale_temporaries(final)
    metadata = collect_metadata(recording, final)
    if remove_shards:
        shards = take_shards(shards)
    try:
        with atomic_folder(final, overwrite) as tmp:
            if params.get("binary_layout") == "pieces":
                _place_binary_pieces(recording, plan, shards, tmp, target_dtype, metadata, move=remove_shards)
            elif format == "binary":
                from .io.binary_folder import write_binary_folder_metadata

                from .job import fix_job_kwargs

                if params.get("deferred_copy"):
                    _copy_source(recording, tmp, target_dtype, job_kwargs)
                else:
                    _concatenate_binary(recording, plan, shards, tmp, target_dtype, remove_pieces=remove_shards,
                                        n_jobs=fix_job_kwargs(job_kwargs)["n_jobs"])
                write_binary_folder_metadata(tmp, recording, target_dtype, metadata)
            else:
                _assemble_zarr(recording, plan, shards, tmp, target_dtype, chunk_size, layout, metadata)
    finally:
        if remove_shards:
            discard_shards(shards)
    if params.get("binary_layout") == "pieces":
        from .io.loading import load_extractor

        return load_extractor(final)
    if format == "binary":
        from .io.binary_folder import BinaryFolderRecording

        return BinaryFolderRecording(final)
    from .io.zarr_recording import ZarrRecordingExtractor

    return ZarrRecordingExtractor(final)


def _check_sources(sources, shard, recording) -> None:
    """A deferred-copy shard: check that the source files hold the shard's bytes (a short file fails here)."""
    num_channels = recording.get_num_channels()
    for segment_index, start, end in shard.ranges:
        path, offset, size = sources[segment_index]
        actual = os.path.getsize(path)
        if actual < offset + size:
            raise ValueError(f"{path}: {actual} bytes, expected at least {offset + size} "
                             f"({recording.get_num_samples(segment_index)} frames of {num_channels} channels)")


def _copy_source(recording, folder: Path, dtype: np.dtype, job_kwargs: dict) -> None:
    """The gather of a deferred-copy save: the source written once into the folder, as an unsharded save."""
    from .io.binary_folder import write_raw_files

    write_raw_files(recording, folder, dtype, job_kwargs)


def _concatenate_binary(recording, plan, shards, folder: Path, dtype: np.dtype, remove_pieces: bool = False,
                        n_jobs: int = 1) -> None:
    """Each segment's raw (and times) file: the shards' pieces end to end, copied by ``n_jobs`` threads."""
    from concurrent.futures import ThreadPoolExecutor

    from .io.binary_folder import binary_file_names

    raw_names, times_names = binary_file_names(recording)
    frame_bytes = recording.get_num_channels() * dtype.itemsize
    # every size is checked before anything is copied, so a bad shard fails the gather at once
    files = [(raw_names, _checked_pieces(recording, plan, shards, "traces_seg{}.raw", frame_bytes), frame_bytes)]
    if times_names is not None:
        files.append((times_names, _checked_pieces(recording, plan, shards, "times_seg{}.raw", 8), 8))
    copies, outputs = [], []
    for segment_index in range(recording.get_num_segments()):
        for names, pieces, item_bytes in files:
            offset = 0
            for _, piece, start, end in pieces[segment_index]:
                copies.append((piece, len(outputs), offset, (end - start) * item_bytes))
                offset += (end - start) * item_bytes
            outputs.append((folder / names[segment_index], offset))
    # With consumed pieces, each file's first piece (at offset 0) is renamed into place and extended to
    # the file's size instead of being copied: the gather copies (N - 1) / N of the traces, not all.
    renamed = set()
    if remove_pieces:
        for task in copies:
            piece, output, offset, _ = task
            if offset == 0 and output not in renamed and _rename(piece, outputs[output][0]):
                renamed.add(output)
        copies = [task for task in copies if not (task[2] == 0 and task[1] in renamed)]
    fds = []
    try:
        for index, (path, size) in enumerate(outputs):
            flags = os.O_WRONLY | os.O_CREAT | (0 if index in renamed else os.O_TRUNC)
            fds.append(os.open(path, flags, 0o666))
            os.ftruncate(fds[-1], size)  # final size first: the copies fill disjoint ranges of it

        def copy(task) -> None:
            piece, output, offset, size = task
            _append_file(piece, fds[output], offset, size)
            if remove_pieces:
                piece.unlink()  # its pages not yet written back are dropped, never written

        # preadv / pwrite release the GIL: threads copy pieces side by side
        with ThreadPoolExecutor(max_workers=max(1, int(n_jobs))) as pool:
            list(pool.map(copy, copies))
    finally:
        for fd in fds:
            os.close(fd)


def _checked_pieces(recording, plan, shards, piece_name: str,
                    item_bytes: int) -> list[list[tuple[int, Path, int, int]]]:
    """Per segment, its pieces ``(shard index, file, start, end)`` in time order, every size checked.

    ``piece_name`` is the shard's file name pattern (``"traces_seg{}.raw"``), ``item_bytes`` the bytes
    per frame in it.
    """
    from .sharding_plan import ShardError

    pieces = [[] for _ in range(recording.get_num_segments())]
    for shard, (shard_folder, _) in zip(plan, shards):
        for segment_index, start, end in shard.ranges:
            piece = shard_folder / piece_name.format(segment_index)
            expected = (end - start) * item_bytes
            size = piece.stat().st_size if piece.is_file() else None
            if size != expected:
                raise ShardError(f"shard {shard.index} of {shard.num_shards} ({shard_folder}): {piece.name} "
                                 f"has {size} bytes, expected {expected}; rerun this shard's job")
            pieces[segment_index].append((shard.index, piece, start, end))
    return pieces


def _place_binary_pieces(recording, plan, shards, folder: Path, dtype: np.dtype, metadata, move: bool) -> None:
    """The pieces layout: each piece a one-segment binary folder under ``pieces/``, joined by si_folder.json."""
    import dataclasses

    from .io.binary_folder import SI_BINARY_FOLDER_CLASS, binary_file_names, write_binary_folder_metadata
    from .io.safe_files import write_json
    from .segments import select_segment_recording

    frame_bytes = recording.get_num_channels() * dtype.itemsize
    pieces = _checked_pieces(recording, plan, shards, "traces_seg{}.raw", frame_bytes)
    # The joined recording takes its channels' metadata (probe, properties, annotations) from its first
    # piece, so only that piece stores them: loading the folder parses one probe, not one per shard.
    # Every piece keeps its gains and offsets (binary.json); the source's provenance is written at the top.
    first_metadata = dataclasses.replace(metadata, provenance=None)
    other_metadata = dataclasses.replace(metadata, provenance=None, probegroup=None, properties={},
                                         annotations={})
    (folder / _PIECES_FOLDER).mkdir()
    segment_dicts = []
    for segment_index, segment_pieces in enumerate(pieces):
        segment = select_segment_recording(recording, segment_index)
        piece_dicts = []
        for shard_index, raw, start, end in segment_pieces:
            name = f"seg{segment_index}_shard{shard_index:03d}"
            piece_folder = folder / _PIECES_FOLDER / name
            piece_folder.mkdir()
            piece_recording = segment.frame_slice(start, end)
            target = piece_folder / binary_file_names(piece_recording)[0][0]
            if not (move and _rename(raw, target)):
                _link_or_copy(raw, target)
            piece_metadata = first_metadata if not segment_dicts and not piece_dicts else other_metadata
            write_binary_folder_metadata(piece_folder, piece_recording, dtype, piece_metadata)
            piece_dicts.append(_si_dict(SI_BINARY_FOLDER_CLASS, {"folder_path": f"{_PIECES_FOLDER}/{name}"}))
        if len(piece_dicts) == 1:
            segment_dicts.append(piece_dicts[0])
        else:
            segment_dicts.append(_si_dict(_SI_CONCATENATE_CLASS, {
                "recording_list": piece_dicts, "ignore_times": True, "sampling_frequency_max_diff": 0}))
    if len(segment_dicts) == 1:
        joined = segment_dicts[0]
    else:
        joined = _si_dict(_SI_APPEND_CLASS, {"recording_list": segment_dicts, "sampling_frequency_max_diff": 0})
    # the loaded recording takes its annotations, properties and probe from its first piece
    if metadata.provenance is not None:
        write_json(folder / "provenance.json", metadata.provenance)
    write_json(folder / "si_folder.json", joined)  # last: the file load() dispatches on


def _si_dict(si_class: str, kwargs: dict) -> dict:
    """A nested SpikeInterface extractor dict (paths relative to the top folder)."""
    from .io.folder_metadata import SI_LAYOUT_VERSION

    return {"class": si_class, "module": "spikeinterface", "version": SI_LAYOUT_VERSION, "kwargs": kwargs,
            "annotations": {}, "properties": {}, "relative_paths": True}


def _rename(piece: Path, target: Path) -> bool:
    """Move a consumed piece to ``target`` (same file system); False when it must be copied instead."""
    try:
        _move(piece, target)
    except OSError as err:
        if err.errno in (errno.EXDEV, errno.EPERM, errno.EACCES):
            return False
        raise
    return True


def _append_file(source: Path, fd: int, offset: int, size: int) -> None:
    """Copy ``size`` bytes of ``source`` to ``fd`` at ``offset``."""
    from .io.file_copy import copy_range

    with open(source, "rb", buffering=0) as f:
        try:
            copy_range(f.fileno(), fd, size, 0, offset)
        except ValueError as err:  # a piece shorter than its checked size: changed under the gather
            raise OSError(f"{source}: {err}") from None


def _assemble_zarr(recording, plan, shards, folder: Path, dtype: np.dtype, chunk_size: int, layout: dict,
                   metadata) -> None:
    import zarr

    from .io.zarr_recording import create_zarr_trace_arrays, finish_zarr_store
    from .sharding_plan import ShardError

    root = zarr.open_group(str(folder), mode="w", zarr_format=2)
    create_zarr_trace_arrays(root, recording, dtype, chunk_size, layout)
    num_channel_chunks = -(-recording.get_num_channels() // layout["channel_chunk"])
    for shard, (shard_folder, _) in zip(plan, shards):
        store = shard_folder / "store.zarr"
        for segment_index, start, end in shard.ranges:
            rows = range(start // chunk_size, -(-end // chunk_size))
            keys = {f"traces_seg{segment_index}": [f"{r}.{c}" for r in rows for c in range(num_channel_chunks)]}
            if recording.has_time_vector(segment_index):
                keys[f"times_seg{segment_index}"] = [str(r) for r in rows]
            for array_name, chunk_keys in keys.items():
                for key in chunk_keys:
                    source = store / array_name / key
                    if not source.is_file():
                        raise ShardError(f"shard {shard.index} of {shard.num_shards} ({shard_folder}): chunk "
                                         f"{array_name}/{key} is missing; rerun this shard's job")
                    _link_or_copy(source, folder / array_name / key)
    finish_zarr_store(root, recording, metadata)


def _link_or_copy(source: Path, target: Path) -> None:
    # a hard link shares the (never rewritten) chunk file; copies where links are impossible
    try:
        _hard_link(source, target)
    except OSError:
        shutil.copyfile(source, target)

