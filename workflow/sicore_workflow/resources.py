"""Memory (``mem_mb``) and wall time (``runtime``, minutes) of each rule, estimated from the data size.

Snakemake evaluates resources when it builds the DAG and again just before a job starts, once its
inputs exist. The first time only the source is known (file sizes, or the size of a generated
recording); the second time the saved recording and sorting are read (metadata only) for exact sizes.

Passes over the traces are chunked, so their memory is bounded by a few chunks per worker; what grows
with the data is the waveforms buffer (random spikes x samples x channels) and the run time.
Memory and time are multiplied by the attempt number, so a job killed for lack of memory or time
on a cluster is resubmitted with twice, then three times as much (``retries`` in profiles/slurm).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from sicore.sources import source_nbytes

BASE_MB = 600  # Python + numpy + zarr + sicore, with headroom
REPORT_MB = 500  # matplotlib figures
THROUGHPUT_MB_S = 20.0  # per worker, conservative (decompression, neo readers, slow disks)
MIN_RUNTIME_MIN = 5
ASSUMED_CHANNELS = 384  # Neuropixels, when the channel count is not known yet
ASSUMED_SPIKES_PER_MB = 50  # spikes per MB of traces, when the sorting is not saved yet


@dataclass
class DataSize:
    """What the estimates need; exact once the recording and sorting are saved."""

    nbytes: int
    num_channels: int
    sampling_frequency: float
    itemsize: int
    num_units: int | None = None
    num_spikes: int | None = None

    @property
    def mb(self) -> float:
        return self.nbytes / 1e6

    @property
    def chunk_mb(self) -> float:
        """One second of traces (the default chunk), as float32 copies are made of it."""
        one_second = self.num_channels * self.sampling_frequency * 4 / 1e6
        return min(one_second, self.mb)


_cache: dict[tuple, DataSize] = {}


def data_size(session) -> DataSize:
    """Sizes of a session's recording (and sorting when saved), cached by the saved folders' mtimes."""
    key = (session.name, _mtime(session.recording_path), _mtime(session.sorting_path))
    if key not in _cache:
        _cache[key] = _saved_size(session) or _source_size(session)
    return _cache[key]


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _source_size(session) -> DataSize:
    spec = session.recording
    if spec["type"] == "generated":
        size = DataSize(source_nbytes(spec), spec["num_channels"], spec["sampling_frequency"], 4,
                        spec["num_units"])
        duration = sum(spec["durations"])
        size.num_spikes = int(spec["num_units"] * spec["firing_rate"] * duration)
        return size
    return DataSize(source_nbytes(spec), ASSUMED_CHANNELS, 30000.0, 2)


def _saved_size(session) -> DataSize | None:
    """Exact sizes from the saved recording and sorting (their metadata; traces are not read)."""
    if not os.path.isdir(session.recording_path):
        return None
    try:
        from sicore import load_extractor

        recording = load_extractor(session.recording_path)
        itemsize = recording.get_dtype().itemsize
        size = DataSize(recording.get_total_samples() * recording.get_num_channels() * itemsize,
                        recording.get_num_channels(), recording.sampling_frequency, itemsize)
        if os.path.isdir(session.sorting_path):
            sorting = load_extractor(session.sorting_path)
            size.num_units = sorting.get_num_units()
            size.num_spikes = int(sorting.to_spike_vector().size)
        return size
    except Exception:  # a partial or foreign folder: fall back to the source estimate
        return None


def _num_random_spikes(session, size: DataSize) -> int:
    num_spikes = size.num_spikes if size.num_spikes is not None else int(size.mb * ASSUMED_SPIKES_PER_MB)
    random_spikes = session.settings["random_spikes"]
    if random_spikes["method"] == "uniform" and size.num_units is not None:
        return min(num_spikes, size.num_units * random_spikes["max_spikes_per_unit"])
    return num_spikes


def _waveforms_mb(session, size: DataSize) -> float:
    waveforms = session.settings["waveforms"]
    width = (waveforms["ms_before"] + waveforms["ms_after"]) * size.sampling_frequency / 1000
    itemsize = 4 if waveforms["dtype"] is None else 8 if "64" in str(waveforms["dtype"]) else 4
    # sparse analyzers store fewer channels; the dense count is the upper bound
    return _num_random_spikes(session, size) * width * size.num_channels * itemsize / 1e6


def mem_mb(session, operation: str, threads: int, attempt: int = 1) -> int:
    """Memory request of ``operation`` (a rule name) for ``session`` in MB."""
    size = data_size(session)
    chunks = 3 * size.chunk_mb * max(threads, 1)  # a raw chunk, a float copy and the result per worker
    extra = {
        "save_recording": chunks,
        "save_sorting": (size.num_spikes or 0) * 32 / 1e6,
        "estimate_sparsity": chunks + (size.num_units or 100) * size.num_channels * 200 * 8 / 1e6,
        "create_analyzer": (size.num_spikes or 0) * 32 / 1e6,
        "random_spikes": (size.num_spikes or 0) * 32 / 1e6,
        "waveforms": chunks + _waveforms_mb(session, size),
        "templates": _templates_mb(session, size, chunks),
        "noise_levels": chunks,
        "report": REPORT_MB,
    }[operation]
    return int(math.ceil(BASE_MB + extra)) * attempt


def _templates_mb(session, size: DataSize, chunks: float) -> float:
    if session.templates_parent == "waveforms":
        # median and percentiles sort a copy of each unit's waveforms
        return 2 * _waveforms_mb(session, size)
    return chunks


# fraction of the traces each operation reads
_READ_FRACTION = {
    "save_recording": 1.0, "estimate_sparsity": 1.0, "waveforms": 1.0, "templates": 1.0, "noise_levels": 0.05,
    "save_sorting": 0.0, "create_analyzer": 0.0, "random_spikes": 0.0, "report": 0.0,
}


def runtime_min(session, operation: str, threads: int, attempt: int = 1) -> int:
    """Wall-time request of ``operation`` in minutes (twice the expected time, at least 5 minutes)."""
    size = data_size(session)
    fraction = _READ_FRACTION[operation]
    if operation == "templates" and session.templates_parent == "waveforms":
        fraction = 0.0
    seconds = size.mb * fraction / (THROUGHPUT_MB_S * max(threads, 1))
    return int(max(MIN_RUNTIME_MIN, math.ceil(2 * seconds / 60)) * attempt)


def shard_mem_mb(session, operation: str, num_shards: int, attempt: int = 1) -> int:
    """Memory request of one single-threaded shard of ``operation`` (a pass) split in ``num_shards`` shards.

    A shard holds a few chunks, and for waveforms only its share of the waveforms buffer; a templates shard
    holds float64 sums and sums of squares (units x samples x channels, twice).
    """
    size = data_size(session)
    chunks = 3 * size.chunk_mb
    if operation == "waveforms":
        extra = chunks + _waveforms_mb(session, size) / max(num_shards, 1)
    elif operation == "templates":
        templates = session.settings["templates"]
        width = (templates["ms_before"] + templates["ms_after"]) * size.sampling_frequency / 1000
        extra = chunks + 2 * (size.num_units or 100) * width * size.num_channels * 8 / 1e6
    else:
        extra = chunks
    return int(math.ceil(BASE_MB + extra)) * attempt


def shard_runtime_min(session, operation: str, num_shards: int, attempt: int = 1) -> int:
    """Wall-time request of one single-threaded shard: its share of the traces (at least 5 minutes)."""
    size = data_size(session)
    seconds = size.mb * _READ_FRACTION[operation] / max(num_shards, 1) / THROUGHPUT_MB_S
    return int(max(MIN_RUNTIME_MIN, math.ceil(2 * seconds / 60)) * attempt)
