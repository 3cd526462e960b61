"""Recording tools: random chunks, noise levels, chunks with margins, channel distances and depth order.

Random chunk positions follow SpikeInterface 0.105.3 exactly: for the same ``seed`` the same
``(segment_index, start_frame, end_frame)`` slices are drawn, so noise levels can be compared one to one.

The MAD noise estimate is the hot path. Per chunk it

1. copies the raw (unscaled) traces into a channel-major buffer with a cache-friendly blocked transpose,
2. sorts each channel in place (numpy's SIMD sort, fastest on 16-bit integers; it releases the GIL),
3. finds the median and the median absolute deviation by a vectorised bisection over the two sorted
   halves around the median (``O(num_channels * log(chunk_size))``), scaling to µV only the few values
   it looks at.

Scaling to µV is a per-channel affine map with float32 rounding, which is monotone, so the order
statistics of the scaled traces are the scaled order statistics of the raw ones. The result is the
one ``np.median`` gives on the scaled float32 traces, to the last bit.
"""

from __future__ import annotations

import numbers
import os
import warnings
from typing import Literal

import numpy as np

# MAD of a standard normal distribution, Phi^-1(3/4): MAD / this estimates the standard deviation.
MAD_TO_STD_FACTOR = 0.6744897501960817

_RANDOM_SLICES_KEYS = ("method", "num_chunks_per_segment", "chunk_duration", "chunk_size", "margin_frames", "seed")
# Keys given directly to get_noise_levels that mean random-slice options (``method`` is the noise method there).
_DIRECT_RANDOM_SLICES_KEYS = ("num_chunks_per_segment", "chunk_duration", "chunk_size", "margin_frames", "seed")
# Job kwargs known to sicore; used when sicore.job (the executor) is not available.
_FALLBACK_JOB_KEYS = (
    "n_jobs", "chunk_duration", "chunk_size", "chunk_memory", "total_memory", "progress_bar", "mp_context",
    "max_threads_per_worker", "pool_engine", "verbose",
)
_NOISE_METHODS = ("mad", "std", "rms")


# --------------------------------------------------------------------------------------------- helpers
def _resolve_return_scaled(return_scaled, return_in_uV, default: bool) -> bool:
    """Merge the spec's ``return_scaled`` with SpikeInterface's ``return_in_uV`` spelling."""
    if return_in_uV is not None:
        if return_scaled is not None and bool(return_scaled) != bool(return_in_uV):
            raise ValueError("return_scaled and return_in_uV disagree; give one of them")
        return bool(return_in_uV)
    return default if return_scaled is None else bool(return_scaled)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def chunk_duration_to_frames(chunk_duration, sampling_frequency: float) -> int:
    """Number of frames of a duration: a float/int in seconds or a string ending in "s" or "ms".

    Frames are truncated (``int(seconds * sampling_frequency)``), as SpikeInterface does.

    Parameters
    ----------
    chunk_duration : str or float
        E.g. ``"500ms"``, ``"1s"``, ``0.5``.
    sampling_frequency : float
        Sampling rate in Hz.
    """
    if isinstance(chunk_duration, str):
        text = chunk_duration.strip()
        try:
            if text.endswith("ms"):
                seconds = float(text[:-2]) / 1000.0
            elif text.endswith("s"):
                seconds = float(text[:-1])
            else:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"chunk_duration must be a number of seconds or a string like '500ms' or '1s', got {chunk_duration!r}"
            ) from None
    elif isinstance(chunk_duration, numbers.Real) and not isinstance(chunk_duration, bool):
        seconds = float(chunk_duration)
    else:
        raise ValueError(
            f"chunk_duration must be a number of seconds or a string like '500ms' or '1s', got {chunk_duration!r}"
        )
    frames = int(seconds * sampling_frequency)
    if frames < 1:
        raise ValueError(f"chunk_duration {chunk_duration!r} is shorter than one sample at {sampling_frequency} Hz")
    return frames


# ------------------------------------------------------------------------------------- random slices
def get_random_recording_slices(
    recording,
    method: str = "full_random",
    num_chunks_per_segment: int = 20,
    chunk_duration: str | float | None = "500ms",
    chunk_size: int | None = None,
    margin_frames: int = 0,
    seed=None,
) -> list[tuple[int, int, int]]:
    """Random ``(segment_index, start_frame, end_frame)`` slices of equal length in every segment.

    The positions are those of SpikeInterface 0.105.3's ``get_random_sample_slices`` for the same
    arguments: ``np.random.default_rng(seed)`` draws, segment after segment, ``num_chunks_per_segment``
    start frames uniformly in ``[margin_frames, num_samples - chunk_size - margin_frames]`` (both
    included), sorted. Chunks may overlap.

    Parameters
    ----------
    recording : BaseRecording
        The recording to draw slices from.
    method : "full_random", default: "full_random"
        Sampling method (only uniform, possibly overlapping chunks).
    num_chunks_per_segment : int, default: 20
        Number of chunks drawn in each segment.
    chunk_duration : str or float or None, default: "500ms"
        Chunk length ("500ms", "1s" or seconds); used when ``chunk_size`` is None.
    chunk_size : int or None, default: None
        Chunk length in frames; takes precedence over ``chunk_duration``.
    margin_frames : int, default: 0
        Frames kept free at both ends of each segment (for filters with edge effects).
    seed : int or None, default: None
        Seed of the random generator (None: a fresh, unreproducible draw).

    Returns
    -------
    slices : list of tuple
        ``(segment_index, start_frame, end_frame)`` sorted by segment then start.

    Notes
    -----
    As in SpikeInterface, a chunk longer than a segment (minus the margins) is shortened to fit with a
    warning; a segment with fewer than ``2 * margin_frames + 2`` samples is an error.
    """
    if method != "full_random":
        raise ValueError(f"method must be 'full_random', got {method!r}")
    num_chunks_per_segment = _check_int(num_chunks_per_segment, "num_chunks_per_segment", 1)
    margin_frames = _check_int(margin_frames, "margin_frames", 0)
    if chunk_size is None:
        if chunk_duration is None:
            raise ValueError("give the chunk length as chunk_duration (e.g. '500ms') or chunk_size (frames)")
        chunk_size = chunk_duration_to_frames(chunk_duration, recording.get_sampling_frequency())
    else:
        chunk_size = _check_int(chunk_size, "chunk_size", 1)

    num_segments = recording.get_num_segments()
    if num_segments == 0:
        raise ValueError("recording has no segment to draw random chunks from")
    num_samples = [recording.get_num_samples(segment_index=i) for i in range(num_segments)]
    for segment_index, n in enumerate(num_samples):
        limit = n - 2 * margin_frames
        if chunk_size > limit:
            # SpikeInterface's rule (one frame less than what fits), kept so positions match
            new_size = limit - 1
            if new_size < 1:
                raise ValueError(
                    f"segment {segment_index} has {n} samples: too short for random chunks with "
                    f"margin_frames={margin_frames}"
                )
            warnings.warn(
                f"chunk_size {chunk_size} (chunk_duration/chunk_size) is longer than segment {segment_index} "
                f"({n} samples, margin_frames={margin_frames}); using chunk_size={new_size}",
                stacklevel=2,
            )
            chunk_size = new_size

    rng = np.random.default_rng(seed)
    slices = []
    for segment_index, n in enumerate(num_samples):
        high = n - chunk_size - margin_frames
        starts = np.sort(rng.integers(low=margin_frames, high=high, size=num_chunks_per_segment, endpoint=True))
        slices.extend((segment_index, int(s), int(s) + chunk_size) for s in starts)
    return slices


# SpikeInterface 0.105.3 name
get_random_sample_slices = get_random_recording_slices


def _split_random_slices_kwargs(random_slices_kwargs: dict | None, direct: dict, function: str) -> dict:
    """One dict of random-slice options from ``random_slices_kwargs`` and direct keywords (not both for a key)."""
    merged = {} if random_slices_kwargs is None else dict(random_slices_kwargs)
    unknown = [k for k in merged if k not in _RANDOM_SLICES_KEYS]
    if unknown:
        raise TypeError(f"{function}: random_slices_kwargs has unknown keys {unknown}; allowed: {list(_RANDOM_SLICES_KEYS)}")
    for key, value in direct.items():
        if key in merged:
            raise ValueError(f"{function}: {key!r} is given both directly and in random_slices_kwargs; give it once")
        merged[key] = value
    return merged


def get_random_data_chunks(
    recording,
    return_scaled: bool | None = None,
    concatenated: bool = True,
    random_slices_kwargs: dict | None = None,
    return_in_uV: bool | None = None,
    **kwargs,
):
    """Traces of random chunks of every segment (see ``get_random_recording_slices``).

    Parameters
    ----------
    recording : BaseRecording
        The recording to read.
    return_scaled : bool, default: False
        Return float32 traces in µV (needs the ``gain_to_uV`` / ``offset_to_uV`` properties).
    concatenated : bool, default: True
        Concatenate the chunks along time into one array; otherwise return the list of chunks.
    random_slices_kwargs : dict or None, default: None
        Options of ``get_random_recording_slices``: ``method``, ``num_chunks_per_segment``,
        ``chunk_duration``, ``chunk_size``, ``margin_frames``, ``seed``.
    return_in_uV : bool or None, default: None
        SpikeInterface's spelling of ``return_scaled``.
    **kwargs
        The same random-slice options given directly (``num_chunks_per_segment=20``,
        ``chunk_duration="500ms"`` or ``chunk_size``, ``margin_frames=0``, ``seed=None``, ``method``).

    Returns
    -------
    chunks : np.ndarray or list of np.ndarray
        ``(num_chunks * chunk_size, num_channels)`` when concatenated, else one array per chunk.
    """
    return_scaled = _resolve_return_scaled(return_scaled, return_in_uV, default=False)
    unknown = [k for k in kwargs if k not in _RANDOM_SLICES_KEYS]
    if unknown:
        raise TypeError(
            f"get_random_data_chunks got unexpected keyword arguments {unknown}; "
            f"random-slice options are {list(_RANDOM_SLICES_KEYS)}"
        )
    options = _split_random_slices_kwargs(random_slices_kwargs, kwargs, "get_random_data_chunks")
    slices = get_random_recording_slices(recording, **options)
    chunks = [
        recording.get_traces(segment_index=seg, start_frame=start, end_frame=end, return_scaled=return_scaled)
        for seg, start, end in slices
    ]
    if concatenated:
        return np.concatenate(chunks, axis=0)
    return chunks


# -------------------------------------------------------------------------------------- noise levels
def _transpose_into(traces: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Copy ``traces`` (samples, channels) into the channel-major ``out``.

    A plain ``traces.T.copy()`` walks one array with a large stride and runs ~7x slower; copying
    blocks of rows keeps both sides in cache.
    """
    if traces.T.flags.c_contiguous:
        np.copyto(out, traces.T)
        return out
    block = 256
    for r0 in range(0, traces.shape[0], block):
        out[:, r0 : r0 + block] = traces[r0 : r0 + block].T
    return out


class _SortedChunk:
    """Each channel of a chunk sorted, with the order statistics read in the output space.

    ``value(rows, positions)`` is the ``positions``-th smallest (0-based) value of channels ``rows``, in
    the dtype and units ``np.median`` would see: float32 µV when scaled, the raw float dtype, or float64
    for raw integers.
    """

    def __init__(self, traces: np.ndarray, gains: np.ndarray | None, offsets: np.ndarray | None):
        num_samples, num_channels = traces.shape
        sorted_traces = np.empty((num_channels, num_samples), dtype=traces.dtype)
        _transpose_into(traces, sorted_traces)
        sorted_traces.sort(axis=1)
        self.sorted = sorted_traces
        self.num_samples = num_samples
        self.gains = gains
        self.offsets = offsets
        if gains is not None:
            self.dtype = np.dtype(np.float32)
            # a negative gain reverses the order of the scaled values
            self.reversed = gains < 0 if np.any(gains < 0) else None
        else:
            self.dtype = traces.dtype if traces.dtype.kind == "f" else np.dtype(np.float64)
            self.reversed = None

    def value(self, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
        if self.reversed is not None:
            positions = np.where(self.reversed[rows], self.num_samples - 1 - positions, positions)
        values = self.sorted[rows, positions]
        if self.gains is not None:
            # the same float32 operations as BaseRecording.get_traces(return_scaled=True)
            return values.astype(np.float32) * self.gains[rows] + self.offsets[rows]
        return values.astype(self.dtype, copy=False)

    def has_nan(self) -> np.ndarray:
        if self.sorted.dtype.kind != "f":
            return np.zeros(self.sorted.shape[0], dtype=bool)
        return np.isnan(self.sorted[:, -1])  # NaN sorts last


def _kth_of_sorted_halves(chunk: _SortedChunk, median: np.ndarray, rank: int) -> np.ndarray:
    """The ``rank``-th smallest (0-based) of ``|x - median|`` per channel, from the sorted channels.

    With ``k = num_samples // 2`` the deviations of the lower half, ``median - sorted[k - 1 - i]``, and
    of the upper half, ``sorted[k + j] - median``, are two ascending sequences; the classic bisection on
    how many elements the lower one contributes finds the rank-th of their union in ``log`` steps.
    """
    n = chunk.num_samples
    k = n // 2
    n_low, n_high = k, n - k
    num_channels = median.shape[0]
    all_rows = np.arange(num_channels)

    def low(rows, i):
        return median[rows] - chunk.value(rows, k - 1 - i)

    def high(rows, j):
        return chunk.value(rows, k + j) - median[rows]

    lo = np.full(num_channels, max(0, rank + 1 - n_high), dtype=np.int64)
    hi = np.full(num_channels, min(rank + 1, n_low), dtype=np.int64)
    active = np.nonzero(lo < hi)[0]
    while active.size:
        mid = (lo[active] + hi[active]) // 2
        take_more_low = low(active, mid) < high(active, rank - mid)
        lo[active] = np.where(take_more_low, mid + 1, lo[active])
        hi[active] = np.where(take_more_low, hi[active], mid)
        active = active[lo[active] < hi[active]]

    # lo = number of lower-half deviations among the rank + 1 smallest; the answer is the largest of the
    # last one taken from each half
    if n_low > 0:
        from_low = np.where(lo > 0, low(all_rows, np.clip(lo - 1, 0, n_low - 1)), -np.inf)
    else:
        from_low = np.full(num_channels, -np.inf)
    j = rank - lo
    from_high = np.where(j >= 0, high(all_rows, np.clip(j, 0, n_high - 1)), -np.inf)
    return np.maximum(from_low, from_high).astype(median.dtype)


def _mad_of_chunk(traces: np.ndarray, gains: np.ndarray | None, offsets: np.ndarray | None) -> np.ndarray:
    """``median(|x - median(x)|) / 0.6745`` per channel, equal to ``np.median`` on the (scaled) traces."""
    num_samples = traces.shape[0]
    if num_samples == 0:
        raise ValueError("cannot estimate noise on an empty chunk")
    chunk = _SortedChunk(traces, gains, offsets)
    rows = np.arange(traces.shape[1])
    k = num_samples // 2
    dtype = chunk.dtype.type
    if num_samples % 2:
        median = chunk.value(rows, np.full(rows.size, k))
        mad = _kth_of_sorted_halves(chunk, median, k)
    else:
        # np.median averages the two middle values in the working dtype
        median = (chunk.value(rows, np.full(rows.size, k - 1)) + chunk.value(rows, np.full(rows.size, k))) / dtype(2)
        mad = (_kth_of_sorted_halves(chunk, median, k - 1) + _kth_of_sorted_halves(chunk, median, k)) / dtype(2)
    mad = mad / MAD_TO_STD_FACTOR
    nan_channels = chunk.has_nan()
    if nan_channels.any():
        mad[nan_channels] = np.nan
    return mad


def _noise_level_of_traces(traces: np.ndarray, method: str, gains, offsets) -> np.ndarray:
    """Noise level per channel of one chunk of raw traces (scaled with ``gains``/``offsets`` when given)."""
    if method == "mad":
        return _mad_of_chunk(traces, gains, offsets)
    if gains is not None:
        # in place: fresh temporaries of a whole chunk cost more than the arithmetic
        traces = traces.astype(np.float32)
        traces *= gains
        traces += offsets
    if method == "std":
        return np.std(traces, axis=0)  # integers: numpy works in float64, as SpikeInterface gets
    if traces.dtype.kind != "f":
        traces = traces.astype(np.float64)  # squares of int16 overflow in their own dtype
        np.square(traces, out=traces)
    else:
        traces = np.square(traces)
    return np.sqrt(np.sum(traces, axis=0) / traces.shape[0])


def _scaling_of(recording, return_scaled: bool):
    if not return_scaled:
        return None, None
    if not recording.has_scaleable_traces():
        raise ValueError(
            "return_scaled=True needs the gain_to_uV and offset_to_uV channel properties, which this recording "
            "does not have; use return_scaled=False for noise levels in raw units"
        )
    gains = np.asarray(recording.get_channel_gains(), dtype=np.float32)
    offsets = np.asarray(recording.get_channel_offsets(), dtype=np.float32)
    return gains, offsets


def _noise_level_chunk_init(recording, return_scaled: bool, method: str) -> dict:
    gains, offsets = _scaling_of(recording, return_scaled)
    return {"recording": recording, "method": method, "gains": gains, "offsets": offsets}


def _noise_level_chunk(segment_index: int, start_frame: int, end_frame: int, worker_dict: dict) -> np.ndarray:
    traces = worker_dict["recording"].get_traces(
        segment_index=segment_index, start_frame=start_frame, end_frame=end_frame, return_scaled=False
    )
    return _noise_level_of_traces(traces, worker_dict["method"], worker_dict["gains"], worker_dict["offsets"])


def _job_tools():
    """The sicore.job module, or None while it is not available."""
    try:
        from . import job
    except ImportError:
        return None
    return job


def _split_noise_kwargs(kwargs: dict, random_slices_given: bool) -> tuple[dict, dict]:
    """(direct random-slice options, job kwargs) of get_noise_levels' ``**kwargs``.

    Split by key only: job.split_job_kwargs would merge the global job kwargs, whose
    ``chunk_duration`` must not become the random chunks' duration.
    """
    job = _job_tools()
    job_keys = set(job.job_keys if job is not None else _FALLBACK_JOB_KEYS) | {"pool_engine", "verbose"}
    random_keys = set(_DIRECT_RANDOM_SLICES_KEYS)
    if random_slices_given:
        # as in SpikeInterface: with random_slices_kwargs, chunk_duration / chunk_size are job kwargs
        random_keys -= {"chunk_duration", "chunk_size"}
    specific = {k: v for k, v in kwargs.items() if k in random_keys}
    job_kwargs = {k: v for k, v in kwargs.items() if k in job_keys and k not in random_keys}
    unknown = [k for k in kwargs if k not in specific and k not in job_kwargs]
    if unknown:
        raise TypeError(
            f"get_noise_levels got unexpected keyword arguments {unknown}; random-slice options are "
            f"{list(_DIRECT_RANDOM_SLICES_KEYS)} (or random_slices_kwargs=...), job kwargs are {sorted(job_keys)}"
        )
    return specific, job_kwargs


def _cache_params(options: dict, recording) -> dict | None:
    """JSON-able description of the random chunks, or None when they cannot be reproduced (seed object)."""
    seed = options.get("seed", None)
    if seed is not None and not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        return None
    chunk_size = options.get("chunk_size", None)
    if chunk_size is None:
        chunk_size = chunk_duration_to_frames(options.get("chunk_duration", "500ms"), recording.get_sampling_frequency())
    return {
        "method": options.get("method", "full_random"),
        "num_chunks_per_segment": int(options.get("num_chunks_per_segment", 20)),
        "chunk_size": int(chunk_size),
        "margin_frames": int(options.get("margin_frames", 0)),
        "seed": None if seed is None else int(seed),
        # a frame slice inherits the property; other segment lengths mean other chunks
        "num_samples": [recording.get_num_samples(i) for i in range(recording.get_num_segments())],
    }


def _compute_noise_levels_on_slices(recording, slices, return_scaled: bool, method: str, job_kwargs: dict) -> list:
    """Per-chunk noise levels, in slice order, serially, in worker processes or in threads."""
    job_kwargs = dict(job_kwargs)
    pool_engine = job_kwargs.pop("pool_engine", "process")
    verbose = bool(job_kwargs.pop("verbose", False))
    if pool_engine not in ("process", "thread"):
        raise ValueError(f"pool_engine must be 'process' or 'thread', got {pool_engine!r}")
    job = _job_tools()
    init_args = (recording, return_scaled, method)
    if job is not None:
        job_kwargs = job.fix_job_kwargs(job_kwargs)
        n_jobs = job_kwargs["n_jobs"]
    else:
        n_jobs = job_kwargs.get("n_jobs", 1) or 1
        if n_jobs < 0:
            n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
        elif isinstance(n_jobs, float) and n_jobs <= 1:
            n_jobs = max(1, int(n_jobs * (os.cpu_count() or 1)))
        n_jobs = int(n_jobs)

    if n_jobs > 1 and (pool_engine == "thread" or job is None):
        # the sort releases the GIL, so threads scale without copying the recording to workers
        from concurrent.futures import ThreadPoolExecutor

        worker_dict = _noise_level_chunk_init(*init_args)
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            return list(pool.map(lambda s: _noise_level_chunk(*s, worker_dict), slices))
    if job is not None:
        executor = job.ChunkRecordingExecutor(
            recording, _noise_level_chunk, _noise_level_chunk_init, init_args, verbose=verbose,
            job_name="noise_level", handle_returns=True, **job_kwargs,
        )
        return executor.run(recording_slices=slices)
    worker_dict = _noise_level_chunk_init(*init_args)
    return [_noise_level_chunk(seg, start, end, worker_dict) for seg, start, end in slices]


def get_noise_levels(
    recording,
    return_scaled: bool | None = None,
    method: Literal["mad", "std", "rms"] = "mad",
    force_recompute: bool = False,
    random_slices_kwargs: dict | None = None,
    return_in_uV: bool | None = None,
    **kwargs,
) -> np.ndarray:
    """Noise level of each channel, estimated on random chunks and averaged over chunks.

    Per chunk: ``"mad"`` is ``median(|x - median(x)|) / 0.6745`` (robust to spikes), ``"std"`` the standard
    deviation, ``"rms"`` the root mean square; the result is the mean of the per-chunk values. The chunks
    are those of ``get_random_recording_slices`` (default: 20 chunks of 500 ms per segment), the same as
    SpikeInterface 0.105.3 draws for the same seed, and the estimate equals its value on them.

    The result is cached in the channel property ``noise_level_{method}_{scaled|raw}`` (SpikeInterface's
    name) with the random-chunk options in the annotation of the same name plus ``_params``; a later call
    with the same options returns the cached values unless ``force_recompute``. A property without that
    annotation (set by hand or by SpikeInterface) is trusted as SpikeInterface does.

    Parameters
    ----------
    recording : BaseRecording
        The recording.
    return_scaled : bool, default: True
        Noise levels in µV (needs ``gain_to_uV`` / ``offset_to_uV``); False: in raw units.
    method : "mad" | "std" | "rms", default: "mad"
        Estimator applied to each chunk.
    force_recompute : bool, default: False
        Ignore a cached value.
    random_slices_kwargs : dict or None, default: None
        Options of ``get_random_recording_slices``: ``method``, ``num_chunks_per_segment`` (20),
        ``chunk_duration`` ("500ms") or ``chunk_size``, ``margin_frames`` (0), ``seed`` (None).
    return_in_uV : bool or None, default: None
        SpikeInterface's spelling of ``return_scaled``.
    **kwargs
        Random-slice options given directly (``num_chunks_per_segment``, ``chunk_duration``,
        ``chunk_size``, ``margin_frames``, ``seed``) and job kwargs (``n_jobs``, ``progress_bar``,
        ``mp_context``, ``max_threads_per_worker``, ``pool_engine`` "process" | "thread", ...).
        ``chunk_duration`` and ``chunk_size`` set the random chunks when ``random_slices_kwargs`` is not
        given, and are job kwargs (without effect: the chunks are the random slices) when it is, as in
        SpikeInterface.

    Returns
    -------
    noise_levels : np.ndarray
        One value per channel: float32 when scaled (or raw float32 traces), float64 for raw integers.
    """
    return_scaled, options, slices, job_kwargs = noise_levels_setup(
        recording, return_scaled=return_scaled, method=method, random_slices_kwargs=random_slices_kwargs,
        return_in_uV=return_in_uV, **kwargs)
    key = f"noise_level_{method}_{'scaled' if return_scaled else 'raw'}"
    params_key = f"{key}_params"
    params = _cache_params(options, recording)
    cached = recording.get_property(key)
    if cached is not None and not force_recompute and params is not None:
        stored = recording._annotations.get(params_key, None)
        if stored is None or stored == params:
            return np.array(cached)

    _scaling_of(recording, return_scaled)  # fail before reading anything
    per_chunk = _compute_noise_levels_on_slices(recording, slices, return_scaled, method, job_kwargs)
    noise_levels = average_chunk_noise_levels(per_chunk)

    recording.set_property(key, noise_levels)
    if params is not None:
        recording.annotate(**{params_key: params})
    else:
        recording._annotations.pop(params_key, None)
    return noise_levels


def noise_levels_setup(recording, return_scaled: bool | None = None, method: str = "mad", force_recompute: bool = False,
                       random_slices_kwargs: dict | None = None, return_in_uV: bool | None = None,
                       **kwargs) -> tuple[bool, dict, list, dict]:
    """What ``get_noise_levels`` does before reading anything: resolve the options, draw the random chunks.

    Takes ``get_noise_levels``' arguments; shared with the sharded pass (``sicore.sharding``) so that both
    draw the same random chunks from the same options.

    Returns
    -------
    return_scaled : bool
        Whether the noise levels are in µV.
    options : dict
        The random-slice options (``get_random_recording_slices`` keywords).
    slices : list of (int, int, int)
        The random chunks ``(segment_index, start_frame, end_frame)``, sorted.
    job_kwargs : dict
        The job kwargs among ``kwargs``.
    """
    return_scaled = _resolve_return_scaled(return_scaled, return_in_uV, default=True)
    if method not in _NOISE_METHODS:
        raise ValueError(f"method must be one of {list(_NOISE_METHODS)}, got {method!r}")
    direct, job_kwargs = _split_noise_kwargs(kwargs, random_slices_given=random_slices_kwargs is not None)
    options = _split_random_slices_kwargs(random_slices_kwargs, direct, "get_noise_levels")
    slices = get_random_recording_slices(recording, **options)  # also validates the options
    return return_scaled, options, slices, job_kwargs


def average_chunk_noise_levels(per_chunk: list) -> np.ndarray:
    """The noise levels from the per-chunk estimates, in slice order (the mean over chunks)."""
    return np.mean(np.stack(per_chunk), axis=0)


# ------------------------------------------------------------------------------ chunks with margins
def get_chunk_with_margin(
    rec_segment,
    start_frame: int | None,
    end_frame: int | None,
    channel_indices,
    margin: int,
    add_zeros: bool = False,
    add_reflect_padding: bool = False,
    window_on_margin: bool = False,
    dtype=None,
    segment_index: int | None = None,
) -> tuple[np.ndarray, int, int]:
    """Traces of ``[start_frame, end_frame)`` with up to ``margin`` extra samples on each side.

    Inside the segment the margins are real samples. At the segment's edges the margin is cut short,
    unless ``add_zeros`` (zero padding) or ``add_reflect_padding`` (``np.pad(mode="reflect")``) fill it so
    that both margins are always ``margin`` samples.

    Parameters
    ----------
    rec_segment : BaseRecordingSegment or BaseRecording
        A recording segment (as in SpikeInterface) or a recording (then see ``segment_index``).
    start_frame, end_frame : int or None
        The chunk ``[start_frame, end_frame)``; None means the segment's start / end (no margin there).
    channel_indices : slice or array-like of int or None
        Channels to read, by index (None: all).
    margin : int
        Samples wanted on each side.
    add_zeros : bool, default: False
        Pad with zeros where the margin falls outside the segment.
    add_reflect_padding : bool, default: False
        Pad by reflection where the margin falls outside the segment.
    window_on_margin : bool, default: False
        Taper both margins with a half cosine (needs ``add_zeros`` and a float ``dtype``).
    dtype : numpy dtype or None, default: None
        Dtype of the returned traces (None: as read).
    segment_index : int or None, default: None
        Segment to read when ``rec_segment`` is a recording (None: mono-segment recording).

    Returns
    -------
    traces_with_margin : np.ndarray
        ``(left_margin + chunk + right_margin, num_channels)``.
    left_margin, right_margin : int
        Samples of margin before and after the chunk in ``traces_with_margin``.
    """
    read, length = _segment_reader(rec_segment, segment_index, channel_indices)
    margin = _check_int(margin, "margin", 0)
    if add_zeros and add_reflect_padding:
        raise ValueError("add_zeros and add_reflect_padding are exclusive; choose one way to pad")
    if window_on_margin and not add_zeros:
        raise ValueError("window_on_margin requires add_zeros=True")
    start_given, end_given = start_frame is not None, end_frame is not None
    start_frame = 0 if start_frame is None else _check_int(start_frame, "start_frame", 0)
    end_frame = length if end_frame is None else _check_int(end_frame, "end_frame", 0)
    if not start_frame <= end_frame <= length:
        raise ValueError(f"need 0 <= start_frame <= end_frame <= {length}, got start_frame={start_frame}, "
                         f"end_frame={end_frame}")

    if not (add_zeros or add_reflect_padding):
        left_margin = min(margin, start_frame) if start_given else 0
        right_margin = min(margin, length - end_frame) if end_given else 0
        traces = read(start_frame - left_margin, end_frame + right_margin)
        if dtype is not None:
            traces = np.asarray(traces, dtype=dtype)
        return traces, left_margin, right_margin

    first = max(0, start_frame - margin)
    last = min(length, end_frame + margin)
    left_pad = first - (start_frame - margin)
    right_pad = (end_frame + margin) - last
    traces = read(first, last)
    out_dtype = traces.dtype if dtype is None else np.dtype(dtype)
    if window_on_margin and out_dtype.kind != "f":
        raise ValueError(f"window_on_margin needs a float dtype, got dtype={out_dtype}")
    if left_pad == 0 and right_pad == 0 and not window_on_margin:
        return np.asarray(traces, dtype=out_dtype), margin, margin
    if add_reflect_padding:
        if (left_pad or right_pad) and traces.shape[0] < 2:
            raise ValueError("add_reflect_padding needs at least 2 samples in the segment to reflect")
        padded = np.pad(np.asarray(traces, dtype=out_dtype), [(left_pad, right_pad), (0, 0)], mode="reflect")
        return padded, margin, margin
    padded = np.zeros((end_frame - start_frame + 2 * margin, traces.shape[1]), dtype=out_dtype)
    padded[left_pad : left_pad + traces.shape[0]] = traces
    if window_on_margin and margin > 0:
        taper = ((1 - np.cos(np.arange(margin) / margin * np.pi)) / 2)[:, np.newaxis]
        padded[:margin] *= taper
        padded[-margin:] *= taper[::-1]
    return padded, margin, margin


def _segment_reader(rec_segment, segment_index, channel_indices):
    """(read(start, end) -> traces, num_samples) for a recording segment or a recording."""
    if channel_indices is None:
        channel_indices = slice(None)
    elif not isinstance(channel_indices, slice):
        channel_indices = np.atleast_1d(np.asarray(channel_indices))
        if channel_indices.dtype.kind not in "iu":
            raise ValueError(f"channel_indices must be a slice or integer indices, got dtype {channel_indices.dtype}")
    if hasattr(rec_segment, "get_num_segments"):  # a recording
        recording = rec_segment
        segment_index = recording._check_segment_index(segment_index)
        length = recording.get_num_samples(segment_index)
        channel_ids = recording.channel_ids[channel_indices]

        def read(start, end):
            return recording.get_traces(segment_index=segment_index, start_frame=start, end_frame=end,
                                        channel_ids=channel_ids)
    else:
        if segment_index is not None:
            raise ValueError("segment_index is only used when rec_segment is a recording")
        length = int(rec_segment.get_num_samples())

        def read(start, end):
            return rec_segment.get_traces(start, end, channel_indices)
    return read, length


# ------------------------------------------------------------------------------------ channel geometry
def _locations(recording, channel_ids=None) -> np.ndarray:
    """Channel locations on all their axes (2-d or 3-d)."""
    locations = recording.get_property("location")
    if locations is None:
        # let the recording raise its own explanation
        recording.get_channel_locations()
    locations = np.asarray(locations, dtype=np.float64)
    if channel_ids is not None:
        locations = locations[recording.ids_to_indices(channel_ids)]
    return locations


def get_channel_distances(recording) -> np.ndarray:
    """Euclidean distance between every pair of channels.

    Parameters
    ----------
    recording : BaseRecording or BaseSnippets
        A recording with channel locations (a probe).

    Returns
    -------
    distances : np.ndarray
        ``(num_channels, num_channels)`` float64 matrix, in the units of the locations (µm). All
        location axes are used (x, y and z for 3-d probes).
    """
    locations = _locations(recording)
    diff = locations[:, np.newaxis, :] - locations[np.newaxis, :, :]
    return np.sqrt(np.sum(diff * diff, axis=2))


def get_closest_channels(recording, channel_ids=None, num_channels: int | None = None):
    """The closest channels of each channel, nearest first, and their distances.

    Parameters
    ----------
    recording : BaseRecording or BaseSnippets
        A recording with channel locations.
    channel_ids : array-like or None, default: None
        Channels to consider (None: all); neighbours are searched among these channels only.
    num_channels : int or None, default: None
        Number of neighbours per channel (None: all the others).

    Returns
    -------
    closest_channels_inds : np.ndarray
        ``(len(channel_ids), num_channels)`` indices into ``channel_ids``, nearest first, the channel
        itself excluded (ties keep channel order).
    distances : np.ndarray
        The matching distances, ascending.
    """
    if channel_ids is None:
        channel_ids = recording.get_channel_ids()
    locations = _locations(recording, channel_ids)
    count = locations.shape[0]
    if num_channels is None:
        num_channels = count - 1
    num_channels = _check_int(num_channels, "num_channels", 0)
    if num_channels > count - 1:
        raise ValueError(f"num_channels={num_channels} but each channel has only {count - 1} other channels")
    diff = locations[:, np.newaxis, :] - locations[np.newaxis, :, :]
    distances = np.sqrt(np.sum(diff * diff, axis=2))
    ranked = distances.copy()
    np.fill_diagonal(ranked, -1.0)  # the channel itself first even when another one sits at the same place
    order = np.argsort(ranked, axis=1, kind="stable")[:, 1 : num_channels + 1]
    return order, np.take_along_axis(distances, order, axis=1)


def order_channels_by_depth(recording, channel_ids=None, dimensions: str | tuple | list = ("x", "y"),
                            flip: bool = False):
    """Order channels by depth (from the probe tip up, unless ``flip``).

    Parameters
    ----------
    recording : BaseRecording or BaseSnippets
        A recording with channel locations.
    channel_ids : array-like or None, default: None
        Channels to order (None: all).
    dimensions : str or tuple or list, default: ("x", "y")
        One axis ("x", "y" or "z") to sort on, or several for a lexicographic sort where the **last** is
        the primary key (``np.lexsort``): ``("x", "y")`` sorts by y, then x.
    flip : bool, default: False
        Reverse the order (top of the probe first).

    Returns
    -------
    order_f : np.ndarray
        Indices (into ``channel_ids``) that sort the channels.
    order_r : np.ndarray
        Indices that undo the sort (``order_f[order_r]`` is the identity).
    """
    locations = _locations(recording, channel_ids)
    ndim = locations.shape[1]

    def axis_index(name):
        if name not in ("x", "y", "z"):
            raise ValueError(f"dimensions must be 'x', 'y' or 'z' (or a tuple of them), got {name!r}")
        index = "xyz".index(name)
        if index >= ndim:
            raise ValueError(f"dimensions: {name!r} is not available, the channel locations are {ndim}-d")
        return index

    if isinstance(dimensions, str):
        order_f = np.argsort(locations[:, axis_index(dimensions)], kind="stable")
    elif isinstance(dimensions, (tuple, list)) and len(dimensions) > 0:
        order_f = np.lexsort(tuple(locations[:, axis_index(d)] for d in dimensions))
    else:
        raise ValueError(f"dimensions must be 'x', 'y', 'z' or a non-empty tuple/list of them, got {dimensions!r}")
    if flip:
        order_f = order_f[::-1]
    order_r = np.argsort(order_f, kind="stable")
    return order_f, order_r
