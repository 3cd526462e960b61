"""One chunked pass over a recording that cuts the waveforms of selected spikes.

Each chunk ``[start_frame, end_frame)`` of a segment handles the selected spikes whose sample lies in
it, and reads the traces it needs *with margins* (``nbefore`` before its first spike, ``nafter`` after
its last one), so a cut-out never depends on where chunk borders fall. Samples outside the segment are
zeros (as in SpikeInterface). Each spike's waveform is kept on its unit's sparse channels, packed at the
front of the channel axis and zero-padded to the largest unit's channel count.

Results are delivered in chunk order, i.e. spike order, so anything accumulated from them (templates)
is identical whatever ``n_jobs`` and the chunk size are.
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
                 channel_table: np.ndarray, dtype: str) -> dict:
    num_segments = recording.get_num_segments()
    segment_bounds = np.searchsorted(spikes["segment_index"], np.arange(num_segments + 1), side="left")
    return {
        "recording": recording,
        "spikes": spikes,
        "segment_bounds": segment_bounds,
        "nbefore": nbefore,
        "nafter": nafter,
        "return_scaled": return_scaled,
        "channel_table": channel_table,
        "dtype": np.dtype(dtype),
    }


def _cut_chunk(segment_index: int, start_frame: int, end_frame: int, worker: dict):
    """Positions (in the selected spikes) and packed waveforms of the spikes in this chunk."""
    spikes = worker["spikes"]
    lo, hi = worker["segment_bounds"][segment_index], worker["segment_bounds"][segment_index + 1]
    samples_all = spikes["sample_index"][lo:hi]
    i0, i1 = np.searchsorted(samples_all, [start_frame, end_frame], side="left")
    channel_table = worker["channel_table"]
    nbefore, nafter = worker["nbefore"], worker["nafter"]
    width = nbefore + nafter
    if i0 == i1:
        return np.zeros(0, dtype=np.int64), np.zeros((0, width, channel_table.shape[1]), dtype=worker["dtype"])
    positions = np.arange(lo + i0, lo + i1, dtype=np.int64)
    samples = samples_all[i0:i1]
    units = spikes["unit_index"][lo + i0 : lo + i1]

    recording = worker["recording"]
    num_samples = recording.get_num_samples(segment_index)
    wanted_start = int(samples[0]) - nbefore
    wanted_end = int(samples[-1]) + nafter
    read_start, read_end = max(wanted_start, 0), min(wanted_end, num_samples)
    traces = recording.get_traces(segment_index=segment_index, start_frame=read_start, end_frame=read_end,
                                  return_scaled=worker["return_scaled"])
    if read_start != wanted_start or read_end != wanted_end:
        # the segment border is inside the margin: outside samples are zeros
        padded = np.zeros((wanted_end - wanted_start, traces.shape[1]), dtype=traces.dtype)
        padded[read_start - wanted_start : read_start - wanted_start + traces.shape[0]] = traces
        traces = padded
    rows = (samples - nbefore - wanted_start)[:, None] + np.arange(width)[None, :]

    out = np.zeros((samples.size, width, channel_table.shape[1]), dtype=worker["dtype"])
    for unit_index in np.unique(units):
        which = np.flatnonzero(units == unit_index)
        channels = channel_table[unit_index]
        channels = channels[channels >= 0]
        # fancy indexing twice: (spikes, width) rows then the unit's channels
        out[which, :, : channels.size] = traces[rows[which]][:, :, channels]
    return positions, out


def run_waveform_pass(recording, spikes: np.ndarray, nbefore: int, nafter: int, return_scaled: bool,
                      channel_table: np.ndarray, dtype, gather: Callable, job_kwargs: dict,
                      job_name: str = "waveforms") -> None:
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
    """
    spikes = np.ascontiguousarray(spikes)
    init_args = (recording, spikes, int(nbefore), int(nafter), bool(return_scaled), channel_table,
                 np.dtype(dtype).str)
    executor = ChunkRecordingExecutor(
        recording, _cut_chunk, _init_worker, init_args, gather_func=lambda result: gather(*result),
        job_name=job_name, **job_kwargs,
    )
    # only the chunks that hold selected spikes are read
    slices = divide_recording_into_chunks(recording, executor.chunk_size)
    if spikes.size == 0:
        return
    chunk_segments = np.array([s[0] for s in slices], dtype=np.int64)
    chunk_starts = np.array([s[1] for s in slices], dtype=np.int64)
    # chunk holding each spike: last chunk of its segment starting at or before it
    keys = chunk_segments * (1 << 40) + chunk_starts
    spike_keys = spikes["segment_index"].astype(np.int64) * (1 << 40) + spikes["sample_index"].astype(np.int64)
    used = np.unique(np.searchsorted(keys, spike_keys, side="right") - 1)
    executor.run([slices[i] for i in used])
