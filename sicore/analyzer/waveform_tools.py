"""One chunked pass over a recording that cuts the waveforms of selected spikes.

Each chunk ``[start_frame, end_frame)`` of a segment handles the selected spikes whose sample lies in
it, and reads the traces it needs *with margins* (``nbefore`` before its first spike, ``nafter`` after
its last one), so a cut-out never depends on where chunk borders fall. Samples outside the segment are
zeros (as in SpikeInterface). Each spike's waveform is kept on its unit's sparse channels, packed at the
front of the channel axis and zero-padded to the largest unit's channel count.

Results are delivered in chunk order, i.e. spike order, so anything accumulated from them (templates)
is identical whatever ``n_jobs`` and the chunk size are. When the waveforms go to a file (``sink``),
each worker writes its chunks' rows there itself: they are contiguous, as spikes are in order.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..job import ChunkRecordingExecutor, divide_recording_into_chunks


def unit_channel_table(sparsity_mask: np.ndarray | None, num_units: int, num_channels: int) -> np.ndarray:
    """``(num_units, max_channels)`` channel indices of each unit, padded with -1 (all channels when dense)."""
    if sparsity_mask is None:
        return np.tile(np.arange(num_channels, dtype=np.int64), (num_units, 1))
    mask = np.asarray(sparsity_mask, dtype=bool)
    max_channels = int(mask.sum(axis=1).max()) if num_units else 0
    table = np.full((num_units, max_channels), -1, dtype=np.int64)
    for unit_index in range(num_units):
        channels = np.flatnonzero(mask[unit_index])
        table[unit_index, : channels.size] = channels
    return table


def _init_worker(recording, spikes: np.ndarray, nbefore: int, nafter: int, return_scaled: bool,
                 channel_table: np.ndarray, dtype: str, chunk_size: int | None = None,
                 sink: tuple[str, int] | None = None) -> dict:
    num_segments = recording.get_num_segments()
    segment_bounds = np.searchsorted(spikes["segment_index"], np.arange(num_segments + 1), side="left")
    valid = channel_table >= 0
    safe_table = np.where(valid, channel_table, 0)  # padding slots read channel 0, then are zeroed
    worker = {
        "recording": recording,
        "spikes": spikes,
        "segment_bounds": segment_bounds,
        "nbefore": nbefore,
        "nafter": nafter,
        "return_scaled": return_scaled,
        "channel_table": channel_table,
        "safe_table": safe_table,
        "invalid": None if valid.all() else ~valid,
        "dtype": np.dtype(dtype),
        "chunk_size": chunk_size,
        # the sink file is opened once per worker, as the binary writer's files are
        "sink": None if sink is None else (open(sink[0], "r+b"), int(sink[1])),
    }
    if return_scaled:
        if not recording.has_scaleable_traces():
            raise ValueError(
                "return_scaled=True needs the gain_to_uV and offset_to_uV channel properties, which are not set"
            )
        # the same float32 arithmetic as BaseRecording.get_traces(return_scaled=True), per unit channel slot
        gains = np.asarray(recording.get_property("gain_to_uV"), dtype=np.float32)
        offsets = np.asarray(recording.get_property("offset_to_uV"), dtype=np.float32)
        worker["slot_gains"] = gains[safe_table]
        worker["slot_offsets"] = offsets[safe_table]
    return worker


def _cut_chunk(segment_index: int, start_frame: int, end_frame: int, worker: dict):
    """Positions (in the selected spikes) and packed waveforms of the spikes in ``[start_frame, end_frame)``.

    A slice made of several grid chunks (grouped to send fewer results between processes) is cut one
    grid chunk at a time, so no more than one chunk of traces is read at once.
    """
    spikes = worker["spikes"]
    lo, hi = worker["segment_bounds"][segment_index], worker["segment_bounds"][segment_index + 1]
    samples_all = spikes["sample_index"][lo:hi]
    i0, i1 = np.searchsorted(samples_all, [start_frame, end_frame], side="left")
    chunk_size = worker["chunk_size"]
    if i1 - i0 < 2 or chunk_size is None or start_frame // chunk_size == (end_frame - 1) // chunk_size:
        return _to_sink(_cut_spikes(segment_index, lo + i0, lo + i1, worker), worker)
    chunk_id = samples_all[i0:i1] // chunk_size
    bounds = (np.flatnonzero(np.r_[True, chunk_id[1:] != chunk_id[:-1], True]) + lo + i0).tolist()
    parts = [_to_sink(_cut_spikes(segment_index, b0, b1, worker), worker) for b0, b1 in zip(bounds[:-1], bounds[1:])]
    if len(parts) == 1:
        return parts[0]
    positions = np.concatenate([p[0] for p in parts])
    return positions, None if worker["sink"] is not None else np.concatenate([p[1] for p in parts])


def _to_sink(result: tuple, worker: dict) -> tuple:
    """With a sink, write the waveforms at their rows of the file and return ``(positions, None)``."""
    if worker["sink"] is None:
        return result
    from ..io.binary_folder import _write_at

    positions, waveforms = result
    if positions.size:
        file, data_offset = worker["sink"]
        _write_at(file, data_offset + int(positions[0]) * (waveforms.nbytes // positions.size), waveforms)
    return positions, None


def _cut_spikes(segment_index: int, first: int, last: int, worker: dict):
    """Positions ``first .. last - 1`` (spikes of one grid chunk of one segment) and their packed waveforms.

    The raw traces from the first window to the last are requested once, and only the windows' samples
    on each unit's channels are gathered from them (a file-backed recording then only touches those
    pages); the gathered values are scaled afterwards with the recording's own float32 arithmetic, so
    the result is identical to cutting scaled traces.
    """
    spikes = worker["spikes"]
    channel_table = worker["channel_table"]
    nbefore, nafter = worker["nbefore"], worker["nafter"]
    width = nbefore + nafter
    if first >= last:
        return np.zeros(0, dtype=np.int64), np.zeros((0, width, channel_table.shape[1]), dtype=worker["dtype"])
    positions = np.arange(first, last, dtype=np.int64)
    samples = spikes["sample_index"][first:last]
    units = spikes["unit_index"][first:last]

    recording = worker["recording"]
    num_samples = recording.get_num_samples(segment_index)
    wanted_start = int(samples[0]) - nbefore
    wanted_end = int(samples[-1]) + nafter
    read_start, read_end = max(wanted_start, 0), min(wanted_end, num_samples)
    traces = recording.get_traces(segment_index=segment_index, start_frame=read_start, end_frame=read_end,
                                  return_scaled=False)
    crosses_border = read_start != wanted_start or read_end != wanted_end
    if crosses_border:
        padded = np.zeros((wanted_end - wanted_start, traces.shape[1]), dtype=traces.dtype)
        padded[read_start - wanted_start : read_start - wanted_start + traces.shape[0]] = traces
        traces = padded
    rows = (samples - nbefore - wanted_start)[:, None] + np.arange(width)[None, :]
    channels = worker["safe_table"][units]  # (spikes, max_channels)
    # one gather: (spikes, width, max_channels)
    out = traces[rows[:, :, None], channels[:, None, :]]
    del traces
    if worker["return_scaled"]:
        out = out.astype(np.float32)
        out *= worker["slot_gains"][units][:, None, :]
        out += worker["slot_offsets"][units][:, None, :]
    out = out.astype(worker["dtype"], copy=False)
    if worker["invalid"] is not None:  # padding channel slots are zeros
        np.copyto(out, 0, where=worker["invalid"][units][:, None, :])
    if crosses_border:  # samples outside the segment are zeros (in µV too)
        absolute = rows + wanted_start
        outside = (absolute < 0) | (absolute >= num_samples)
        out[outside] = 0
    return positions, out


def run_waveform_pass(recording, spikes: np.ndarray, nbefore: int, nafter: int, return_scaled: bool,
                      channel_table: np.ndarray, dtype, gather: Callable, job_kwargs: dict,
                      job_name: str = "waveforms", sink: tuple[str, int] | None = None) -> None:
    """Cut the waveforms of ``spikes`` in one chunked pass; ``gather(positions, waveforms)`` gets them in order.

    Parameters
    ----------
    recording : BaseRecording
        The recording.
    spikes : np.ndarray
        Selected spikes (spike-vector dtype), sorted by segment then sample.
    nbefore, nafter : int
        Samples before and after each spike: the cut-out is ``[sample - nbefore, sample + nafter)``.
    return_scaled : bool
        Cut scaled (µV) traces.
    channel_table : np.ndarray
        ``(num_units, max_channels)`` channel indices per unit padded with -1 (``unit_channel_table``).
    dtype : numpy dtype
        Dtype of the waveforms.
    gather : callable
        Called in the caller, in spike order, with each chunk's positions (into ``spikes``) and waveforms.
    job_kwargs : dict
        Complete job kwargs (``fix_job_kwargs``).
    job_name : str, default: "waveforms"
        Name shown by the progress bar.
    sink : (str, int) or None, default: None
        ``(path, byte offset)`` of a C-order ``(len(spikes), nbefore + nafter, max_channels)`` array of
        ``dtype`` in a file (an ``.npy``'s data): the workers write each chunk's rows there, and
        ``gather`` gets ``(positions, None)``.
    """
    spikes = np.ascontiguousarray(spikes)
    # resolves n_jobs and the chunk size (from the job kwargs) before the workers' arguments are fixed
    settings = ChunkRecordingExecutor(recording, _cut_chunk, _init_worker, (), **job_kwargs)
    chunk_size, n_jobs = settings.chunk_size, settings.n_jobs
    init_args = (recording, spikes, int(nbefore), int(nafter), bool(return_scaled), channel_table,
                 np.dtype(dtype).str, chunk_size, sink)
    executor = ChunkRecordingExecutor(
        recording, _cut_chunk, _init_worker, init_args, gather_func=lambda result: gather(*result),
        job_name=job_name, **job_kwargs,
    )
    if spikes.size == 0:
        return
    # only the chunks that hold selected spikes are read
    slices = divide_recording_into_chunks(recording, chunk_size)
    chunk_segments = np.array([s[0] for s in slices], dtype=np.int64)
    chunk_starts = np.array([s[1] for s in slices], dtype=np.int64)
    # chunk holding each spike: last chunk of its segment starting at or before it
    keys = chunk_segments * (1 << 40) + chunk_starts
    spike_keys = spikes["segment_index"].astype(np.int64) * (1 << 40) + spikes["sample_index"].astype(np.int64)
    chunk_of_spike = np.searchsorted(keys, spike_keys, side="right") - 1
    used, spikes_per_chunk = np.unique(chunk_of_spike, return_counts=True)
    tasks = [slices[i] for i in used]
    if n_jobs > 1 and chunk_size is not None:
        bytes_per_spike = (int(nbefore) + int(nafter)) * channel_table.shape[1] * np.dtype(dtype).itemsize
        # what travels back to the caller: nothing but positions when the workers write to a file
        result_bytes = spikes_per_chunk * (bytes_per_spike if sink is None else 8)
        tasks = _group_chunks(tasks, result_bytes, n_jobs * _TASKS_PER_WORKER)
    executor.run(tasks)


# With n_jobs > 1, consecutive chunks are grouped into about this many tasks per worker (each task still
# reads one chunk of traces at a time): fewer, larger results travel between the processes, which costs
# less than one round trip per chunk. A group's waveforms stay below _GROUP_RESULT_BYTES.
_TASKS_PER_WORKER = 8
_GROUP_RESULT_BYTES = 4 * 1024 * 1024


def _group_chunks(chunks: list, result_bytes: np.ndarray, num_tasks: int) -> list:
    """Consecutive ``(segment, start, end)`` chunks of one segment merged into about ``num_tasks`` slices."""
    if len(chunks) <= num_tasks:
        return chunks
    per_task = -(-len(chunks) // num_tasks)
    grouped, count, size = [], 0, 0
    for (segment_index, start, end), nbytes in zip(chunks, result_bytes.tolist()):
        fits = count < per_task and size + nbytes <= _GROUP_RESULT_BYTES
        if grouped and grouped[-1][0] == segment_index and fits:
            grouped[-1] = (segment_index, grouped[-1][1], end)
            count, size = count + 1, size + nbytes
        else:
            grouped.append((segment_index, start, end))
            count, size = 1, nbytes
    return grouped
