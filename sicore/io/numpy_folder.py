"""Sortings as SpikeInterface's ``numpy_folder`` (``NumpyFolderSorting``), SI's default sorting format.

Layout::

    spikes.npy               the spike vector: [('sample_index','<i8'),('unit_index','<i8'),('segment_index','<i8')]
    numpysorting_info.json   {sampling_frequency, unit_ids, num_segments}
    si_folder.json           {class: NumpyFolderSorting, kwargs: {folder_path: ".", mmap_mode: null}}
    annotations.json, properties/*.npy, provenance.json (when the source is JSON-serialisable)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..numpy_objects import _checked_spike_vector, _SpikeVectorSorting
from ..sorting import SPIKE_VECTOR_DTYPE, BaseSorting
from .atomic import atomic_folder, check_target_folder
from .folder_metadata import (
    SICORE_INFO_FILE,
    collect_metadata,
    load_annotations,
    load_properties,
    si_folder_dict,
    sicore_info,
    write_metadata,
)
from .safe_files import CorruptFolderError, load_npy, read_json, write_json

SI_NUMPY_FOLDER_CLASS = "spikeinterface.core.sortingfolder.NumpyFolderSorting"


class NumpyFolderSorting(_SpikeVectorSorting):
    """A sorting folder with a ``spikes.npy`` spike vector (written by SpikeInterface or sicore).

    Parameters
    ----------
    folder_path : str or Path
        The folder holding ``spikes.npy`` and ``numpysorting_info.json``.
    mmap_mode : str or None, default: None
        Memory-map ``spikes.npy`` (e.g. "r") instead of reading it.
    """

    _path_kwargs = ("folder_path",)

    def __init__(self, folder_path, mmap_mode: str | None = None):
        folder = Path(folder_path).absolute()
        if not folder.is_dir():
            raise FileNotFoundError(f"folder_path {folder} is not a folder")
        info_file = folder / "numpysorting_info.json"
        info = read_json(info_file)
        missing = [k for k in ("sampling_frequency", "unit_ids", "num_segments") if not isinstance(info, dict)
                   or k not in info]
        if missing:
            raise CorruptFolderError(f"{info_file}: missing {missing}")
        BaseSorting.__init__(self, info["sampling_frequency"], np.array(info["unit_ids"]))
        spikes_file = folder / "spikes.npy"
        spikes = load_npy(spikes_file, mmap_mode=mmap_mode)
        names = spikes.dtype.names or ()
        if spikes.ndim != 1 or any(name not in names for name in SPIKE_VECTOR_DTYPE.names):
            raise CorruptFolderError(f"{spikes_file}: expected a 1-d structured array with fields "
                                     f"{SPIKE_VECTOR_DTYPE.names}, got dtype {spikes.dtype} shape {spikes.shape}")
        num_segments = int(info["num_segments"])
        try:
            if spikes.size and spikes["segment_index"].max() >= num_segments:
                raise ValueError(f"segment_index reaches {spikes['segment_index'].max()} for {num_segments} segments")
            self._spikes = _checked_spike_vector(spikes, self.get_num_units())
        except ValueError as err:
            raise CorruptFolderError(f"{spikes_file}: {err}") from None
        self._init_from_spikes(self._spikes, num_segments)
        load_properties(folder, self)
        load_annotations(folder, self)
        self._kwargs = {"folder_path": str(folder), "mmap_mode": mmap_mode}


def read_numpy_sorting_folder(folder_path, mmap_mode: str | None = None) -> NumpyFolderSorting:
    """Load a numpy_folder sorting (see ``NumpyFolderSorting``)."""
    return NumpyFolderSorting(folder_path, mmap_mode=mmap_mode)


def write_numpy_folder(sorting, folder, overwrite: bool = False) -> NumpyFolderSorting:
    """Save ``sorting`` as a numpy_folder (SpikeInterface's default sorting layout) and reload it.

    Parameters
    ----------
    sorting : BaseSorting
        The sorting to save.
    folder : str or Path
        The folder to create.
    overwrite : bool, default: False
        Replace an existing folder (only once the new one is complete).
    """
    final = check_target_folder(folder, overwrite)
    metadata = collect_metadata(sorting, final, with_probe=False)
    with atomic_folder(final, overwrite) as tmp:
        spikes = np.ascontiguousarray(sorting.to_spike_vector(), dtype=SPIKE_VECTOR_DTYPE)
        np.save(tmp / "spikes.npy", spikes, allow_pickle=False)
        write_json(tmp / "numpysorting_info.json", {
            "sampling_frequency": float(sorting.sampling_frequency),
            "unit_ids": sorting.unit_ids.tolist(),
            "num_segments": int(sorting.get_num_segments()),
        }, indent=None)
        write_metadata(tmp, metadata)
        write_json(tmp / SICORE_INFO_FILE, sicore_info("numpy_folder", num_spikes=int(spikes.size)))
        write_json(tmp / "si_folder.json", si_folder_dict(
            SI_NUMPY_FOLDER_CLASS, {"folder_path": ".", "mmap_mode": None}, metadata, "sorting"))
    return NumpyFolderSorting(final)


__all__ = ["NumpyFolderSorting", "read_numpy_sorting_folder", "write_numpy_folder"]
