"""Chunked, parallel writing of a recording's traces through the job executor.

Writers need the executor's chunk size (zarr chunks must match the executor's chunks so that two
workers never write into the same zarr chunk), so it is resolved here once from the job kwargs and
handed to the executor as ``chunk_size``.
"""

from __future__ import annotations

from typing import Callable

from ..job import ChunkRecordingExecutor, ensure_chunk_size, fix_job_kwargs, split_job_kwargs

__all__ = ["split_job_kwargs", "resolve_chunk_size", "run_chunked"]

_CHUNK_KEYS = ("chunk_size", "chunk_duration", "chunk_memory", "total_memory")


def resolve_chunk_size(recording, job_kwargs: dict) -> int:
    """Samples per chunk that the executor will use for ``job_kwargs`` (completed with the globals).

    Parameters
    ----------
    recording : BaseRecording
        The recording to be chunked.
    job_kwargs : dict
        Job kwargs (``chunk_size`` / ``chunk_memory`` / ``total_memory`` / ``chunk_duration``, ``n_jobs``).
    """
    return ensure_chunk_size(recording, **fix_job_kwargs(dict(job_kwargs)))


def run_chunked(recording, func: Callable, init_func: Callable, init_args: tuple, job_kwargs: dict,
                job_name: str, chunk_size: int | None = None, verbose: bool = False) -> None:
    """Run ``func`` on every chunk of ``recording`` with ``sicore.job.ChunkRecordingExecutor``.

    Parameters
    ----------
    recording : BaseRecording
        The recording to go through.
    func, init_func, init_args :
        Passed to the executor (``init_func(*init_args)`` runs once per worker).
    job_kwargs : dict
        ``n_jobs``, ``progress_bar``, ``mp_context``, chunk options...
    job_name : str
        Shown in progress bars and errors.
    chunk_size : int or None, default: None
        Samples per chunk (resolved from the job kwargs when None).
    verbose : bool, default: False
        Print the executor's settings.
    """
    job_kwargs = fix_job_kwargs(dict(job_kwargs))
    if chunk_size is None:
        chunk_size = ensure_chunk_size(recording, **job_kwargs)
    executor_kwargs = {k: v for k, v in job_kwargs.items() if k not in _CHUNK_KEYS}
    executor = ChunkRecordingExecutor(recording, func, init_func, init_args, verbose=verbose, job_name=job_name,
                                      chunk_size=chunk_size, **executor_kwargs)
    executor.run()
