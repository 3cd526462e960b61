"""Loading a bare ``.npz`` file: a sorting (NpzSortingExtractor format), sicore snippets or sicore events."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .npz_sorting import NpzSortingExtractor, _member, read_npz
from .safe_files import CorruptFolderError


def load_npz_file(file_path: str | Path):
    """The object stored in ``file_path``, recognised by its members (never unpickled).

    Parameters
    ----------
    file_path : str or Path
        A ``.npz`` written by ``write_npz_sorting`` (or SpikeInterface), ``write_npz_snippets`` or
        ``write_npz_events``.
    """
    file_path = Path(file_path).absolute()
    read_npz(file_path, ())  # a missing or broken file is an error naming it
    with np.load(file_path, allow_pickle=False) as npz:
        names = set(npz.files)
        kind = str(_member(npz, "sicore_object", file_path)) if "sicore_object" in names else None
    if kind == "snippets":
        from .snippets_folder import NpzSnippetsExtractor

        return NpzSnippetsExtractor(file_path)
    if kind == "event":
        from .event_folder import NpzEventExtractor

        return NpzEventExtractor(file_path)
    if {"unit_ids", "num_segment"} <= names:
        return NpzSortingExtractor(file_path)
    raise CorruptFolderError(f"{file_path}: not a sorting, snippets or events .npz (members: {sorted(names)[:10]})")
