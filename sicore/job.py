"""Job kwargs, global job kwargs and the chunk executor that runs a function over a recording in parallel.

A pass over a recording is cut into chunks ``(segment_index, start_frame, end_frame)``. With
``n_jobs=1`` the chunks run in the calling process; otherwise a ``ProcessPoolExecutor`` runs them.
Workers rebuild file-backed objects from their JSON provenance (``BaseExtractor.__reduce_ex__``),
never from pickled trace arrays; results come back in chunk order whatever ``n_jobs`` is; a worker
error is raised in the caller with the worker's traceback in its message.
"""

from __future__ import annotations

import collections
import io
import multiprocessing
import os
import pickle
import re
import sys
import traceback
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

import numpy as np

from .base import BaseExtractor

__all__ = [
    "job_keys",
    "_shared_job_kwargs_doc",
    "get_global_job_kwargs",
    "set_global_job_kwargs",
    "reset_global_job_kwargs",
    "fix_job_kwargs",
    "split_job_kwargs",
    "get_usable_cpu_count",
    "ensure_n_jobs",
    "ensure_chunk_size",
    "chunk_duration_to_chunk_size",
    "convert_string_to_bytes",
    "divide_segment_into_chunks",
    "divide_recording_into_chunks",
    "ChunkRecordingExecutor",
    "TimeSeriesChunkExecutor",
    "WorkerError",
]

# ----------------------------------------------------------------------------- job kwargs

job_keys: tuple[str, ...] = (
    "n_jobs",
    "total_memory",
    "chunk_size",
    "chunk_memory",
    "chunk_duration",
    "progress_bar",
    "mp_context",
    "max_threads_per_worker",
)

# The ways to give a chunk size, in the order of precedence used by ensure_chunk_size.
_chunk_keys: tuple[str, ...] = ("chunk_size", "chunk_memory", "total_memory", "chunk_duration")

_mp_contexts: tuple[str, ...] = ("fork", "spawn", "forkserver")

_default_job_kwargs: dict[str, Any] = {
    "n_jobs": 1,
    "chunk_duration": "1s",
    "progress_bar": True,
    "mp_context": None,
    "max_threads_per_worker": 1,
}

_global_job_kwargs: dict[str, Any] = dict(_default_job_kwargs)

_shared_job_kwargs_doc = """**job_kwargs : keyword arguments for parallel processing:

    * chunk_duration or chunk_size or chunk_memory or total_memory (one is used, in the order
      chunk_size > chunk_memory > total_memory > chunk_duration)

        - chunk_size : int
            Number of samples per chunk
        - chunk_memory : str
            Memory of the raw traces of one chunk, i.e. per job (e.g. "100M", "1G", "500MiB")
        - total_memory : str
            Total memory of the chunks of all jobs (e.g. "500M", "2G"); divided by n_jobs
        - chunk_duration : str or float
            Chunk duration in s if float or with units if str (e.g. "1s", "500ms")

    * n_jobs : int or float, default: 1
        Number of worker processes. -1 uses all the cores available to this process (-2 all but
        one, ...); a float in (0, 1] uses that fraction of them (at least one).
    * progress_bar : bool, default: True
        If True, a progress bar over the chunks is shown
    * mp_context : "fork" | "spawn" | "forkserver" | None, default: None
        Start method of the worker processes. None uses the recording's preferred context if it has
        one, else "fork" on Linux and "spawn" elsewhere. "spawn" and "forkserver" need objects that
        can be rebuilt from their provenance (saved to disk), not in-memory ones.
    * max_threads_per_worker : int or None, default: 1
        Limit of BLAS/OpenMP/numexpr threads in each worker process (n_jobs > 1 only);
        None applies no limit.
"""


def get_global_job_kwargs() -> dict:
    """A copy of the job kwargs used when a function is not given them explicitly.

    Returns
    -------
    job_kwargs : dict
        Defaults ``n_jobs=1, chunk_duration="1s", progress_bar=True, mp_context=None,
        max_threads_per_worker=1`` unless changed with ``set_global_job_kwargs``.
    """
    return dict(_global_job_kwargs)


def set_global_job_kwargs(**job_kwargs) -> None:
    """Set job kwargs for the whole session (merged into every ``fix_job_kwargs`` call).

    Values are validated before anything changes. Giving one chunking option (``chunk_size``,
    ``chunk_duration``, ``chunk_memory`` or ``total_memory``) replaces the global one, so the
    globals always hold a single chunking option. ``n_jobs`` is stored as given (``-1`` keeps
    meaning "all cores"); None values are ignored.

    Parameters
    ----------
    **job_kwargs : dict
        Any of ``job_keys``.
    """
    new_kwargs = {k: v for k, v in job_kwargs.items() if v is not None}
    _validate_job_kwargs(new_kwargs)
    if any(k in new_kwargs for k in _chunk_keys):
        for key in _chunk_keys:
            _global_job_kwargs.pop(key, None)
    _global_job_kwargs.update(new_kwargs)


def reset_global_job_kwargs() -> None:
    """Restore the default global job kwargs."""
    _global_job_kwargs.clear()
    _global_job_kwargs.update(_default_job_kwargs)


def fix_job_kwargs(runtime_job_kwargs: dict | None = None) -> dict:
    """Merge the global job kwargs with the ones given to a function, and validate them.

    A chunking option given at runtime replaces the global chunking options (several given at
    runtime are kept; ``ensure_chunk_size`` applies the precedence). None values are ignored.

    Parameters
    ----------
    runtime_job_kwargs : dict or None, default: None
        Job kwargs given to the function.

    Returns
    -------
    job_kwargs : dict
        Complete job kwargs, ``n_jobs`` resolved to a positive int.
    """
    runtime = {k: v for k, v in (runtime_job_kwargs or {}).items() if v is not None}
    _validate_job_kwargs(runtime)
    job_kwargs = get_global_job_kwargs()
    if any(k in runtime for k in _chunk_keys):
        for key in _chunk_keys:
            job_kwargs.pop(key, None)
    job_kwargs.update(runtime)
    job_kwargs["n_jobs"] = _resolve_n_jobs(job_kwargs.get("n_jobs", 1))
    return job_kwargs


def split_job_kwargs(mixed_kwargs: dict) -> tuple[dict, dict]:
    """Separate a function's own kwargs from its job kwargs.

    Parameters
    ----------
    mixed_kwargs : dict
        Kwargs of a function, some of which are in ``job_keys``.

    Returns
    -------
    specific_kwargs : dict
        The kwargs not in ``job_keys``.
    job_kwargs : dict
        The job kwargs, merged with the global ones and validated (``fix_job_kwargs``).
    """
    specific_kwargs = {k: v for k, v in mixed_kwargs.items() if k not in job_keys}
    job_kwargs = fix_job_kwargs({k: v for k, v in mixed_kwargs.items() if k in job_keys})
    return specific_kwargs, job_kwargs


def _is_int(value) -> bool:
    """True for Python and numpy integers (not bools)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0 and value.dtype.kind in "iu"


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0 and value.dtype.kind in "iuf"


def _validate_job_kwargs(job_kwargs: dict) -> None:
    """Raise a ValueError naming the first unknown key or invalid value."""
    for key in job_kwargs:
        if key not in job_keys:
            raise ValueError(f"{key!r} is not a job keyword argument; valid job kwargs are {list(job_keys)}")
    for key, value in job_kwargs.items():
        if key == "n_jobs":
            _resolve_n_jobs(value)
        elif key == "chunk_size":
            if not _is_int(value) or int(value) < 1:
                raise ValueError(f"chunk_size must be a positive int (samples per chunk), got {value!r}")
        elif key == "chunk_duration":
            _parse_duration(value)
        elif key in ("chunk_memory", "total_memory"):
            convert_string_to_bytes(value, key)
        elif key == "progress_bar":
            if not isinstance(value, bool) and not (hasattr(value, "dtype") and value.dtype.kind == "b"):
                raise ValueError(f"progress_bar must be True or False, got {value!r}")
        elif key == "mp_context":
            if value not in _mp_contexts:
                raise ValueError(f"mp_context must be one of {list(_mp_contexts)} or None, got {value!r}")
        elif key == "max_threads_per_worker":
            if not _is_int(value) or int(value) < 1:
                raise ValueError(f"max_threads_per_worker must be a positive int or None, got {value!r}")


def get_usable_cpu_count() -> int:
    """Number of cores this process may run on (its CPU affinity, e.g. a SLURM allocation)."""
    if hasattr(os, "process_cpu_count"):  # Python >= 3.13
        count = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count()
    return max(1, int(count or 1))


def _resolve_n_jobs(n_jobs) -> int:
    """n_jobs as a positive number of processes; ValueError naming n_jobs when invalid."""
    expected = "a non-zero int (-1 for all cores) or a float in (0, 1] (fraction of the cores)"
    if n_jobs is None:
        return 1
    if not _is_number(n_jobs):
        raise ValueError(f"n_jobs must be {expected}, got {n_jobs!r}")
    num_cpus = get_usable_cpu_count()
    if _is_int(n_jobs) or float(n_jobs).is_integer() and float(n_jobs) > 1:
        n_jobs = int(n_jobs)
        if n_jobs == 0:
            raise ValueError(f"n_jobs must be {expected}, got 0")
        if n_jobs < 0:
            # joblib convention: -1 is all cores, -2 all but one, ...
            return max(1, num_cpus + 1 + n_jobs)
        return n_jobs
    n_jobs = float(n_jobs)
    if not 0 < n_jobs <= 1:
        raise ValueError(f"n_jobs must be {expected}, got {n_jobs!r}")
    return max(1, int(n_jobs * num_cpus))


def ensure_n_jobs(recording=None, n_jobs: int | float | None = 1) -> int:
    """Number of worker processes for ``n_jobs`` (-1: all cores, a float: a fraction of them).

    Parameters
    ----------
    recording : BaseRecording or None, default: None
        The recording processed (kept for SpikeInterface's signature).
    n_jobs : int or float or None, default: 1
        Requested jobs; None means 1.

    Returns
    -------
    n_jobs : int
        At least 1.
    """
    return _resolve_n_jobs(n_jobs)


# ------------------------------------------------------------------------ chunk sizes

_memory_units = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
                 "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_memory_pattern = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(|k|m|g|t|ki|mi|gi|ti)b?\s*$", re.IGNORECASE)
_duration_pattern = re.compile(r"^\s*(\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)\s*(s|ms)\s*$", re.IGNORECASE)


def convert_string_to_bytes(memory, name: str = "memory") -> int:
    """Bytes of a memory size like ``"100M"``, ``"1G"``, ``"500MiB"`` or an int of bytes.

    ``k, M, G, T`` are powers of 1000, ``Ki, Mi, Gi, Ti`` powers of 1024; a trailing ``B`` is allowed.

    Parameters
    ----------
    memory : str or int
        The memory size.
    name : str, default: "memory"
        Argument name used in the error message.
    """
    if _is_int(memory) and int(memory) > 0:
        return int(memory)
    match = _memory_pattern.match(memory) if isinstance(memory, str) else None
    if match is None:
        raise ValueError(
            f"{name} must be a memory size like '100M', '1G', '500MiB' (units k, M, G, T, Ki, Mi, Gi, Ti) "
            f"or a positive int of bytes, got {memory!r}"
        )
    num_bytes = int(float(match.group(1)) * _memory_units[match.group(2).lower()])
    if num_bytes <= 0:
        raise ValueError(f"{name} must be a positive memory size, got {memory!r}")
    return num_bytes


def _parse_duration(chunk_duration) -> float:
    """Seconds of a duration like ``"1s"``, ``"500ms"`` or a number of seconds."""
    if _is_number(chunk_duration):
        seconds = float(chunk_duration)
    else:
        match = _duration_pattern.match(chunk_duration) if isinstance(chunk_duration, str) else None
        if match is None:
            raise ValueError(
                f"chunk_duration must be a number of seconds or a string with units 's' or 'ms' "
                f"(e.g. '1s', '500ms'), got {chunk_duration!r}"
            )
        seconds = float(match.group(1)) / (1000.0 if match.group(2).lower() == "ms" else 1.0)
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"chunk_duration must be a positive duration, got {chunk_duration!r}")
    return seconds


def chunk_duration_to_chunk_size(chunk_duration, recording) -> int:
    """Samples in ``chunk_duration`` (``"1s"``, ``"500ms"`` or seconds) at the recording's sampling rate."""
    seconds = _parse_duration(chunk_duration)
    return max(1, int(round(seconds * recording.sampling_frequency)))


def ensure_chunk_size(
    recording,
    chunk_size: int | None = None,
    chunk_memory: str | None = None,
    total_memory: str | None = None,
    n_jobs: int | float = 1,
    chunk_duration: str | float | None = None,
    **other_kwargs,
) -> int:
    """Samples per chunk from one chunking option.

    Precedence: ``chunk_size`` > ``chunk_memory`` > ``total_memory`` > ``chunk_duration``.
    With none given, a chunk is a whole segment (the longest one). Memory options count the raw
    traces: ``num_channels * dtype.itemsize`` bytes per sample.

    Parameters
    ----------
    recording : BaseRecording
        The recording to cut into chunks.
    chunk_size : int or None, default: None
        Samples per chunk.
    chunk_memory : str or None, default: None
        Memory of one chunk (e.g. "100M").
    total_memory : str or None, default: None
        Memory of all jobs' chunks (e.g. "2G"), divided by ``n_jobs``.
    n_jobs : int or float, default: 1
        Jobs, used with ``total_memory``.
    chunk_duration : str or float or None, default: None
        Duration of a chunk ("1s", "500ms" or seconds).
    **other_kwargs : dict
        Other job kwargs (ignored), so that ``ensure_chunk_size(recording, **job_kwargs)`` works.

    Returns
    -------
    chunk_size : int
        At least 1.
    """
    if chunk_size is not None:
        if not _is_int(chunk_size) or int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be a positive int (samples per chunk), got {chunk_size!r}")
        return int(chunk_size)
    if chunk_memory is not None and total_memory is not None:
        raise ValueError("give only one of chunk_memory and total_memory (total_memory is divided by n_jobs)")
    bytes_per_sample = recording.get_num_channels() * recording.get_dtype().itemsize
    if chunk_memory is not None or total_memory is not None:
        if chunk_memory is not None:
            name, memory = "chunk_memory", convert_string_to_bytes(chunk_memory, "chunk_memory")
        else:
            name = "total_memory"
            memory = convert_string_to_bytes(total_memory, "total_memory") // _resolve_n_jobs(n_jobs)
        size = int(memory // bytes_per_sample)
        if size < 1:
            raise ValueError(
                f"{name}={chunk_memory if chunk_memory is not None else total_memory!r} is less than one sample "
                f"({bytes_per_sample} bytes) per job"
            )
        return size
    if chunk_duration is not None:
        return chunk_duration_to_chunk_size(chunk_duration, recording)
    lengths = [recording.get_num_samples(i) for i in range(recording.get_num_segments())]
    return max([1] + lengths)


def divide_segment_into_chunks(num_frames: int, chunk_size: int | None) -> list[tuple[int, int]]:
    """``(start_frame, end_frame)`` of consecutive chunks covering ``[0, num_frames)`` exactly once.

    All chunks have ``chunk_size`` samples except the last, which may be shorter. An empty segment
    has no chunk; ``chunk_size=None`` gives one chunk.
    """
    num_frames = int(num_frames)
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if chunk_size is None:
        return [(0, num_frames)] if num_frames > 0 else []
    if not _is_int(chunk_size) or int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    chunk_size = int(chunk_size)
    return [(start, min(start + chunk_size, num_frames)) for start in range(0, num_frames, chunk_size)]


def divide_recording_into_chunks(recording, chunk_size: int | None) -> list[tuple[int, int, int]]:
    """``(segment_index, start_frame, end_frame)`` of the chunks of every segment, in order."""
    chunks = []
    for segment_index in range(recording.get_num_segments()):
        num_frames = recording.get_num_samples(segment_index)
        chunks.extend((segment_index, s, e) for s, e in divide_segment_into_chunks(num_frames, chunk_size))
    return chunks


# --------------------------------------------------------------------- worker side

# Chunks submitted to the pool per worker: keeps workers busy while bounding the results held.
_IN_FLIGHT_PER_WORKER = 2

_THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")

# Arrays at least this big reach fork workers by inheritance instead of pickling.
_INHERIT_ARRAY_BYTES = 1 << 20

# token -> objects a fork worker inherits from the parent instead of receiving them pickled.
_inherited_by_fork: dict[str, dict] = {}

# State of the current worker process (set by _worker_initializer).
_worker_state: dict[str, Any] = {}


class WorkerError(RuntimeError):
    """An error in a worker process that could not be re-raised as its own type.

    Its message holds the worker's exception and traceback. Exceptions whose type cannot carry a
    plain message (e.g. KeyError) are raised as a subclass of both WorkerError and their type.
    Every exception re-raised from a worker has ``worker_traceback`` (str) and ``worker_exception``
    (the original, or None when it could not be pickled) attributes.
    """


class _WorkerFailure(Exception):
    """Picklable report of an exception in a worker: its type, message, traceback text and itself."""

    def __init__(self, exc_type_name: str, message: str, traceback_text: str, where: str,
                 pickled_exception: bytes | None):
        super().__init__(exc_type_name, message, traceback_text, where, pickled_exception)
        self.exc_type_name = exc_type_name
        self.message = message
        self.traceback_text = traceback_text
        self.where = where
        self.pickled_exception = pickled_exception

    @classmethod
    def capture(cls, exc: BaseException, where: str) -> "_WorkerFailure":
        try:
            pickled = pickle.dumps(exc)
        except Exception:
            pickled = None
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(type(exc).__qualname__, str(exc), text, where, pickled)

    def original_exception(self) -> BaseException | None:
        if self.pickled_exception is None:
            return None
        try:
            return pickle.loads(self.pickled_exception)
        except Exception:  # e.g. an exception class whose __init__ does not match its args
            return None

    def to_caller_exception(self, chunk: tuple[int, int, int] | None, job_name: str) -> BaseException:
        """The exception to raise in the caller: the worker's type when it can carry the traceback."""
        where = f"{self.where} raised in a worker process"
        if chunk is not None:
            where += f" on chunk segment_index={chunk[0]}, frames [{chunk[1]}, {chunk[2]})"
        if job_name:
            where += f" of job {job_name!r}"
        message = f"{self.message}\n\n{where}. Worker traceback:\n{self.traceback_text.rstrip()}"
        original = self.original_exception()
        new = None if original is None else _same_type_with_message(type(original), message)
        if new is None:
            new = WorkerError(f"{self.exc_type_name}: {message}")
        new.worker_exception = original
        new.worker_traceback = self.traceback_text
        return new


_worker_error_subclasses: dict[type, type | None] = {}


def _same_type_with_message(exc_type: type, message: str) -> BaseException | None:
    """An exception of ``exc_type`` (or a WorkerError subclass of it) whose str() is ``message``."""
    try:
        new = exc_type(message)
        if type(new) is exc_type and str(new) == message:
            return new
    except Exception:
        pass
    # Types whose str() is not their message (KeyError quotes it) or that need other arguments:
    # a subclass of both WorkerError and the type, so `except KeyError` still catches it.
    if exc_type not in _worker_error_subclasses:
        try:
            subclass = type(f"Worker{exc_type.__name__}", (WorkerError, exc_type),
                            {"__str__": BaseException.__str__, "__module__": __name__})
        except TypeError:  # incompatible layout (e.g. OSError): a plain WorkerError
            subclass = None
        _worker_error_subclasses[exc_type] = subclass
    subclass = _worker_error_subclasses[exc_type]
    if subclass is None:
        return None
    try:
        new = subclass.__new__(subclass, message)
        WorkerError.__init__(new, message)
        return new
    except Exception:
        return None


class _InheritingPickler(pickle.Pickler):
    """Pickler that leaves in-memory extractors and big arrays to fork inheritance (referenced by index).

    File-backed extractors still travel as their provenance, so a fork worker reopens its files.
    """

    def __init__(self, file, token: str):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.token = token
        self.inherited: list = []

    def persistent_id(self, obj):
        # In-memory extractors and big arrays are shared copy-on-write rather than copied per worker.
        if (isinstance(obj, BaseExtractor) and not obj.is_json_serializable()) or (
            isinstance(obj, np.ndarray) and obj.nbytes >= _INHERIT_ARRAY_BYTES
        ):
            self.inherited.append(obj)
            return (self.token, len(self.inherited) - 1)
        return None


class _InheritingUnpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        token, index = pid
        return _inherited_by_fork[token]["objects"][index]


def _limit_threads(max_threads: int) -> None:
    # Env vars cover libraries loaded from now on (numexpr, numba, torch, subprocesses);
    # threadpoolctl, when installed, also limits the BLAS/OpenMP pools already loaded (numpy).
    for name in _THREAD_ENV_VARS:
        os.environ[name] = str(max_threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    _worker_state["threadpool_limits"] = threadpool_limits(limits=max_threads)


def _worker_initializer(token: str | None, payload: bytes | None, max_threads: int | None) -> None:
    _worker_state.clear()
    if max_threads is not None:
        _limit_threads(max_threads)
    try:
        if token is not None:  # fork: functions (and unpicklable args) are inherited
            inherited = _inherited_by_fork[token]
            func, init_func = inherited["func"], inherited["init_func"]
            if payload is None:
                init_args = inherited["init_args"]
            else:
                init_args = _InheritingUnpickler(io.BytesIO(payload)).load()
        else:
            func, init_func, init_args = pickle.loads(payload)
        _worker_state["func"] = func
        _worker_state["worker_dict"] = init_func(*init_args)
    except Exception as exc:
        # Raised by every chunk of this worker, so the caller sees it with its traceback
        # (an initializer that raises would only break the pool).
        _worker_state["init_error"] = _WorkerFailure.capture(exc, "init_func (or rebuilding init_args)")


def _run_chunk(segment_index: int, start_frame: int, end_frame: int):
    init_error = _worker_state.get("init_error")
    if init_error is not None:
        raise init_error
    try:
        return _worker_state["func"](segment_index, start_frame, end_frame, _worker_state["worker_dict"])
    except Exception as exc:
        raise _WorkerFailure.capture(exc, "func") from None


# ------------------------------------------------------------------------- executor

def _iter_values(value):
    yield value
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _iter_values(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _iter_values(v)


def _format_bytes(num_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if num_bytes < 1024:
            return f"{num_bytes:.2f}{unit}"
        num_bytes /= 1024
    return f"{num_bytes:.2f}TiB"


class _NoBar:
    """Stands in for a tqdm bar when no progress is shown."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class ChunkRecordingExecutor:
    """Run a function on every chunk of a recording, in the calling process or in worker processes.

    Each worker calls ``init_func(*init_args)`` once to build a ``worker_dict`` (e.g. the recording
    and output buffers), then ``func(segment_index, start_frame, end_frame, worker_dict)`` for each
    chunk it is given. Results are delivered in chunk order for any ``n_jobs``.

    With ``n_jobs > 1``, ``init_args`` reach the workers pickled: file-backed recordings travel as
    their JSON provenance and are reopened in the worker. With ``mp_context="fork"`` in-memory
    objects (e.g. ``NumpyRecording``) are inherited from the parent instead; ``"spawn"`` and
    ``"forkserver"`` need a recording that can be rebuilt from provenance (save it first).

    Parameters
    ----------
    recording : BaseRecording
        The recording cut into chunks.
    func : callable
        ``func(segment_index, start_frame, end_frame, worker_dict)``, run for each chunk. Must be a
        module-level function for ``"spawn"``/``"forkserver"``.
    init_func : callable
        ``init_func(*init_args) -> worker_dict``, run once per worker.
    init_args : tuple
        Arguments of ``init_func``.
    verbose : bool, default: False
        Print the job's parallelisation settings.
    progress_bar : bool, default: False
        Show a tqdm progress bar over the chunks, labelled with ``job_name``.
    handle_returns : bool, default: False
        ``run()`` returns the list of ``func``'s returns, in chunk order.
    gather_func : callable or None, default: None
        Called in the caller with each chunk's return, in chunk order.
    n_jobs : int or float, default: 1
        Worker processes (-1: all cores; a float in (0, 1]: that fraction). 1 runs in this process.
    chunk_size : int or None, default: None
        Samples per chunk.
    chunk_duration : str or float or None, default: None
        Chunk duration ("1s", "500ms" or seconds).
    chunk_memory : str or None, default: None
        Memory of one chunk of raw traces ("100M").
    total_memory : str or None, default: None
        Memory of all jobs' chunks ("2G"), divided by ``n_jobs``.
    mp_context : "fork" | "spawn" | "forkserver" | None, default: None
        Start method; None uses ``recording.get_preferred_mp_context()`` when the recording has
        one, else "fork" on Linux and "spawn" elsewhere.
    job_name : str, default: ""
        Name shown by the progress bar and in messages.
    max_threads_per_worker : int or None, default: 1
        Limit of BLAS/OpenMP/numexpr threads in each worker process (n_jobs > 1); None: no limit.
    """

    def __init__(
        self,
        recording,
        func: Callable,
        init_func: Callable,
        init_args: tuple,
        verbose: bool = False,
        progress_bar: bool = False,
        handle_returns: bool = False,
        gather_func: Callable | None = None,
        n_jobs: int | float = 1,
        chunk_size: int | None = None,
        chunk_duration: str | float | None = None,
        chunk_memory: str | None = None,
        total_memory: str | None = None,
        mp_context: str | None = None,
        job_name: str = "",
        max_threads_per_worker: int | None = 1,
    ):
        if not callable(func):
            raise ValueError(f"func must be callable, got {func!r}")
        if not callable(init_func):
            raise ValueError(f"init_func must be callable, got {init_func!r}")
        if gather_func is not None and not callable(gather_func):
            raise ValueError(f"gather_func must be callable or None, got {gather_func!r}")
        if not isinstance(init_args, (tuple, list)):
            raise ValueError(f"init_args must be a tuple of arguments of init_func, got {type(init_args).__name__}")
        if mp_context is not None and mp_context not in _mp_contexts:
            raise ValueError(f"mp_context must be one of {list(_mp_contexts)} or None, got {mp_context!r}")
        if max_threads_per_worker is not None and (not _is_int(max_threads_per_worker) or max_threads_per_worker < 1):
            raise ValueError(f"max_threads_per_worker must be a positive int or None, got {max_threads_per_worker!r}")
        self.recording = recording
        self.func = func
        self.init_func = init_func
        self.init_args = tuple(init_args)
        self.verbose = bool(verbose)
        self.progress_bar = bool(progress_bar)
        self.handle_returns = bool(handle_returns)
        self.gather_func = gather_func
        self.n_jobs = ensure_n_jobs(recording, n_jobs)
        self.chunk_size = ensure_chunk_size(
            recording, chunk_size=chunk_size, chunk_memory=chunk_memory, total_memory=total_memory,
            n_jobs=self.n_jobs, chunk_duration=chunk_duration,
        )
        self.mp_context = mp_context
        self.job_name = job_name
        self.max_threads_per_worker = None if max_threads_per_worker is None else int(max_threads_per_worker)

    def _resolve_mp_context(self) -> str:
        mp_context = self.mp_context
        if mp_context is None:
            preferred = getattr(self.recording, "get_preferred_mp_context", None)
            mp_context = preferred() if callable(preferred) else None
        if mp_context is None:
            # fork is safe here: workers reopen file-backed objects from provenance anyway.
            mp_context = "fork" if sys.platform.startswith("linux") else "spawn"
        if mp_context not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"mp_context={mp_context!r} is not available on this platform "
                f"(available: {multiprocessing.get_all_start_methods()})"
            )
        return mp_context

    def _check_slices(self, recording_slices) -> list[tuple[int, int, int]]:
        if recording_slices is None:
            return divide_recording_into_chunks(self.recording, self.chunk_size)
        slices = []
        num_segments = self.recording.get_num_segments()
        for item in recording_slices:
            try:
                values = tuple(item)
            except TypeError:
                values = ()
            if len(values) != 3 or not all(_is_int(v) for v in values):
                raise ValueError(
                    f"recording_slices must hold (segment_index, start_frame, end_frame) int tuples, got {item!r}"
                )
            segment_index, start_frame, end_frame = (int(v) for v in values)
            if not 0 <= segment_index < num_segments:
                raise ValueError(f"recording_slices: segment_index {segment_index} is out of range [0, {num_segments})")
            num_samples = self.recording.get_num_samples(segment_index)
            if not 0 <= start_frame <= end_frame <= num_samples:
                raise ValueError(
                    f"recording_slices: frames [{start_frame}, {end_frame}) are out of range [0, {num_samples}] "
                    f"of segment {segment_index}"
                )
            slices.append((segment_index, start_frame, end_frame))
        return slices

    def _print_settings(self, num_workers: int, mp_context: str | None) -> None:
        chunk_bytes = self.chunk_size * self.recording.get_num_channels() * self.recording.get_dtype().itemsize
        seconds = self.chunk_size / self.recording.sampling_frequency
        print(
            f"{self.job_name or 'ChunkRecordingExecutor'}\n"
            f"n_jobs={num_workers} - mp_context={mp_context} - samples_per_chunk={self.chunk_size:,} - "
            f"chunk_memory={_format_bytes(chunk_bytes)} - total_memory={_format_bytes(chunk_bytes * num_workers)} - "
            f"chunk_duration={seconds:.2f}s"
        )

    def run(self, recording_slices: list[tuple[int, int, int]] | None = None) -> list | None:
        """Process the chunks.

        Parameters
        ----------
        recording_slices : list of (segment_index, start_frame, end_frame) or None, default: None
            The chunks to process; None cuts the whole recording into ``chunk_size`` chunks.

        Returns
        -------
        returns : list or None
            ``func``'s return for each chunk, in chunk order, when ``handle_returns``; else None.
        """
        slices = self._check_slices(recording_slices)
        returns = [] if self.handle_returns else None
        mp_context, payload = None, None
        if self.n_jobs > 1:
            # Checked even when there are too few chunks for a pool, so that a script that works on
            # a short recording does not fail on a long one.
            mp_context = self._resolve_mp_context()
            if mp_context != "fork":
                payload = self._spawn_payload(mp_context)
        num_workers = min(self.n_jobs, len(slices))
        if self.verbose:
            self._print_settings(max(num_workers, 1), mp_context if num_workers > 1 else None)

        def deliver(result) -> None:
            if self.handle_returns:
                returns.append(result)
            if self.gather_func is not None:
                self.gather_func(result)

        if self.progress_bar:  # tqdm (and the asyncio it pulls in) only when a bar is shown
            from tqdm.auto import tqdm

            bar = tqdm(total=len(slices), desc=self.job_name or None)
        else:
            bar = _NoBar()
        try:
            if num_workers <= 1:
                # In-process: no pool start-up, and errors keep their own traceback.
                worker_dict = self.init_func(*self.init_args)
                for segment_index, start_frame, end_frame in slices:
                    deliver(self.func(segment_index, start_frame, end_frame, worker_dict))
                    bar.update(1)
            else:
                self._run_pool(slices, num_workers, mp_context, payload, deliver, bar)
        finally:
            bar.close()
        return returns

    def _fork_payload(self) -> tuple[str, bytes | None]:
        """Register what fork workers inherit; return its token and the pickled init_args."""
        token = uuid.uuid4().hex
        inherited = {"func": self.func, "init_func": self.init_func, "objects": [], "init_args": None}
        buffer = io.BytesIO()
        pickler = _InheritingPickler(buffer, token)
        try:
            pickler.dump(self.init_args)
            payload = buffer.getvalue()
            inherited["objects"] = pickler.inherited
        except Exception:
            # Not picklable (open handles, locks...): fork workers inherit the args as they are.
            payload = None
            inherited["init_args"] = self.init_args
        _inherited_by_fork[token] = inherited
        return token, payload

    def _spawn_payload(self, mp_context: str) -> bytes:
        """func, init_func and init_args pickled for a spawn/forkserver worker; clear errors when impossible."""
        not_rebuildable = [
            v for v in _iter_values((self.recording,) + self.init_args)
            if isinstance(v, BaseExtractor) and hasattr(v, "get_traces") and not v.is_json_serializable()
        ]
        if not_rebuildable:
            raise ValueError(
                f"mp_context={mp_context!r} needs recordings that workers can rebuild from their provenance, but "
                f"this {type(not_rebuildable[0]).__name__} is in memory (not JSON-serialisable): save() it to disk "
                "first, or use mp_context='fork' or n_jobs=1"
            )
        try:
            return pickle.dumps((self.func, self.init_func, self.init_args), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:
            raise ValueError(
                f"mp_context={mp_context!r} sends func, init_func and init_args to the workers pickled, and they "
                f"could not be pickled ({type(err).__name__}: {err}); use module-level functions, or mp_context='fork'"
            ) from err

    def _run_pool(self, slices, num_workers: int, mp_context: str, payload: bytes | None, deliver: Callable,
                  bar) -> None:
        token = None
        pool = None
        try:
            if mp_context == "fork":
                token, payload = self._fork_payload()
            pool = ProcessPoolExecutor(
                max_workers=num_workers,
                mp_context=multiprocessing.get_context(mp_context),
                initializer=_worker_initializer,
                initargs=(token, payload, self.max_threads_per_worker),
            )
            # Submit a bounded window of chunks and collect them first-in first-out: results are
            # delivered in chunk order and at most num_workers * _IN_FLIGHT_PER_WORKER are held.
            pending: collections.deque = collections.deque()
            chunks = iter(slices)

            def submit_next() -> None:
                chunk = next(chunks, None)
                if chunk is not None:
                    pending.append((chunk, pool.submit(_run_chunk, *chunk)))

            for _ in range(num_workers * _IN_FLIGHT_PER_WORKER):
                submit_next()
            while pending:
                chunk, future = pending.popleft()
                try:
                    result = future.result()
                except _WorkerFailure as failure:
                    raise failure.to_caller_exception(chunk, self.job_name) from None
                except BrokenProcessPool as err:
                    raise WorkerError(
                        f"a worker process of job {self.job_name or 'ChunkRecordingExecutor'!r} died abruptly "
                        f"(killed, e.g. out of memory, or crashed) while processing chunk segment_index={chunk[0]}, "
                        f"frames [{chunk[1]}, {chunk[2]}); try fewer n_jobs or smaller chunks"
                    ) from err
                submit_next()  # before delivering, so workers stay busy while the caller gathers
                deliver(result)
                bar.update(1)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            if token is not None:
                _inherited_by_fork.pop(token, None)


TimeSeriesChunkExecutor = ChunkRecordingExecutor
