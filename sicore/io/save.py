"""``save`` for every kind of object: one entry point per kind, dispatching on ``format``.

The lead's base classes expose them as methods, e.g. ``BaseRecording.save(self, **kwargs)`` calls
``save_recording(self, **kwargs)``. Every save writes a temporary sibling folder and renames it into
place (see ``sicore.io.atomic``), then returns the object reloaded from disk.
"""

from __future__ import annotations

RECORDING_FORMATS = ("binary", "binary_folder", "zarr", "memory")
SORTING_FORMATS = ("npz", "npz_folder", "numpy_folder", "memory")
SNIPPETS_FORMATS = ("npz", "npy", "memory")
EVENT_FORMATS = ("npz",)


def save_recording(recording, folder=None, format: str = "binary", verbose: bool = False, **save_kwargs):
    """Save a recording to disk (or memory) and return the saved copy.

    Parameters
    ----------
    recording : BaseRecording
        The recording.
    folder : str or Path
        Target folder (required for "binary" and "zarr"; ".zarr" is appended for zarr when missing).
    format : "binary" | "zarr" | "memory", default: "binary"
        "binary" writes SpikeInterface's binary folder (``traces_cached_seg{i}.raw`` + JSON),
        "zarr" a zarr v2 store, "memory" loads the traces in a ``NumpyRecording``.
    verbose : bool, default: False
        Print the executor's settings.
    **save_kwargs
        ``overwrite``, ``dtype``; for zarr ``compressor``, ``filters``, ``compressor_by_dataset``,
        ``filters_by_dataset``, ``channel_chunk_size``; and job kwargs (``n_jobs``, ``chunk_duration``...).

    Returns
    -------
    BaseRecording
        ``BinaryFolderRecording``, ``ZarrRecordingExtractor`` or ``NumpyRecording``.
    """
    if format in ("binary", "binary_folder"):
        from .binary_folder import write_binary_folder

        return write_binary_folder(recording, _required(folder, format), verbose=verbose, **save_kwargs)
    if format == "zarr":
        from .zarr_recording import write_zarr_recording

        return write_zarr_recording(recording, _required(folder, format), verbose=verbose, **save_kwargs)
    if format == "memory":
        from ..numpy_objects import NumpyRecording

        save_kwargs.pop("sharedmem", None)
        return NumpyRecording.from_recording(recording)
    raise ValueError(f"format {format!r} is not a recording format; use one of {RECORDING_FORMATS}")


def save_sorting(sorting, folder=None, format: str = "npz", overwrite: bool = False, **save_kwargs):
    """Save a sorting and return the saved copy.

    Parameters
    ----------
    sorting : BaseSorting
        The sorting.
    folder : str or Path
        Target folder (required except for "memory").
    format : "npz" | "numpy_folder" | "memory", default: "npz"
        "npz" writes ``sorting_cached.npz`` (NpzSortingExtractor format) in SpikeInterface's
        NpzFolderSorting layout; "numpy_folder" SpikeInterface's default ``spikes.npy`` layout;
        "memory" returns a ``NumpySorting``.
    overwrite : bool, default: False
        Replace an existing folder.
    **save_kwargs
        Job kwargs are accepted and ignored (a sorting is written in one go).

    Returns
    -------
    BaseSorting
        ``NpzFolderSorting``, ``NumpyFolderSorting`` or ``NumpySorting``.
    """
    _only_job_kwargs(save_kwargs, "sorting")
    if format in ("npz", "npz_folder"):
        from .npz_sorting import write_npz_folder

        return write_npz_folder(sorting, _required(folder, format), overwrite=overwrite)
    if format == "numpy_folder":
        from .numpy_folder import write_numpy_folder

        return write_numpy_folder(sorting, _required(folder, format), overwrite=overwrite)
    if format == "memory":
        return sorting.to_numpy_sorting()
    raise ValueError(f"format {format!r} is not a sorting format; use one of {SORTING_FORMATS}")


def save_snippets(snippets, folder=None, format: str = "npz", overwrite: bool = False, dtype=None, **save_kwargs):
    """Save snippets and return the saved copy.

    Parameters
    ----------
    snippets : BaseSnippets
        The snippets.
    folder : str or Path
        Target folder (required except for "memory").
    format : "npz" | "npy" | "memory", default: "npz"
        "npz" is sicore's ``snippets.npz`` folder; "npy" SpikeInterface's NpyFolderSnippets layout
        (SpikeInterface can load it); "memory" returns a ``NumpySnippets``.
    overwrite : bool, default: False
        Replace an existing folder.
    dtype : numpy dtype or None, default: None
        Stored dtype ("npy" format only).
    **save_kwargs
        Job kwargs are accepted and ignored.
    """
    _only_job_kwargs(save_kwargs, "snippets")
    if format == "npz":
        if dtype is not None:
            raise ValueError("dtype is only supported with format='npy' for snippets")
        from .snippets_folder import write_npz_snippets_folder

        return write_npz_snippets_folder(snippets, _required(folder, format), overwrite=overwrite)
    if format == "npy":
        from .snippets_folder import write_npy_snippets_folder

        return write_npy_snippets_folder(snippets, _required(folder, format), overwrite=overwrite, dtype=dtype)
    if format == "memory":
        from ..snippets import NumpySnippets

        return NumpySnippets.from_snippets(snippets)
    raise ValueError(f"format {format!r} is not a snippets format; use one of {SNIPPETS_FORMATS}")


def save_event(event, folder=None, format: str = "npz", overwrite: bool = False):
    """Save events as an npz folder and return the saved copy.

    Parameters
    ----------
    event : BaseEvent
        The events.
    folder : str or Path
        Target folder.
    format : "npz", default: "npz"
        The only event format.
    overwrite : bool, default: False
        Replace an existing folder.
    """
    if format != "npz":
        raise ValueError(f"format {format!r} is not an event format; use one of {EVENT_FORMATS}")
    from .event_folder import write_npz_event_folder

    return write_npz_event_folder(event, _required(folder, format), overwrite=overwrite)


def _required(folder, format: str):
    if folder is None:
        raise ValueError(f"folder is required to save with format={format!r}, e.g. save(folder='my_folder')")
    return folder


def _only_job_kwargs(save_kwargs: dict, kind: str) -> None:
    from ..job import job_keys

    unknown = sorted(k for k in save_kwargs if k not in job_keys and k != "verbose")
    if unknown:
        raise TypeError(f"unexpected arguments for saving {kind}: {unknown}")
