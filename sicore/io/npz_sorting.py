"""Sortings as numpy ``.npz`` (SpikeInterface's ``NpzSortingExtractor`` format), alone or in a folder.

The file holds ``unit_ids``, ``num_segment`` ([n]), ``sampling_frequency`` ([fs]) and, per segment,
``spike_indexes_seg{i}`` (int64 sample indices sorted by time) and ``spike_labels_seg{i}`` (the unit
id of each spike). The folder (``sorting.save()``'s default, SpikeInterface's ``NpzFolderSorting``) is::

    sorting_cached.npz   the file above
    npz.json             SI's NpzSortingExtractor dict, path relative to the folder
    si_folder.json       {class: NpzFolderSorting, kwargs: {folder_path: "."}}
    annotations.json, properties/*.npy, provenance.json (when the source is JSON-serialisable)
"""

from __future__ import annotations

import zipfile
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
from .safe_files import CorruptFolderError, path_inside, read_json, write_json

SI_NPZ_CLASS = "spikeinterface.core.npzsortingextractor.NpzSortingExtractor"
SI_NPZ_FOLDER_CLASS = "spikeinterface.core.sortingfolder.NpzFolderSorting"
NPZ_FILE_NAME = "sorting_cached.npz"


class NpzSortingExtractor(_SpikeVectorSorting):
    """A sorting read from a ``.npz`` file in SpikeInterface's NpzSortingExtractor format.

    Parameters
    ----------
    file_path : str or Path
        The ``.npz`` file (loaded without unpickling).
    """

    _path_kwargs = ("file_path",)

    def __init__(self, file_path):
        file_path = Path(file_path).absolute()
        arrays = read_npz(file_path, ("unit_ids", "num_segment", "sampling_frequency"))
        unit_ids = arrays["unit_ids"]
        num_segments = int(np.asarray(arrays["num_segment"]).ravel()[0])
        sampling_frequency = float(np.asarray(arrays["sampling_frequency"]).ravel()[0])
        BaseSorting.__init__(self, sampling_frequency, unit_ids)
        pieces = []
        with np.load(file_path, allow_pickle=False) as npz:
            for i in range(num_segments):
                indexes = _member(npz, f"spike_indexes_seg{i}", file_path)
                labels = _member(npz, f"spike_labels_seg{i}", file_path)
                if indexes.shape != labels.shape or indexes.ndim != 1:
                    raise CorruptFolderError(
                        f"{file_path}: spike_indexes_seg{i} and spike_labels_seg{i} differ in shape")
                segment = np.zeros(indexes.size, dtype=SPIKE_VECTOR_DTYPE)
                segment["sample_index"] = indexes
                segment["unit_index"] = labels_to_unit_indices(labels, self.unit_ids,
                                                               f"{file_path}: spike_labels_seg{i}")
                segment["segment_index"] = i
                pieces.append(segment)
        spikes = np.concatenate(pieces) if pieces else np.zeros(0, dtype=SPIKE_VECTOR_DTYPE)
        try:
            self._spikes = _checked_spike_vector(spikes, self.get_num_units())
        except ValueError as err:
            raise CorruptFolderError(f"{file_path}: {err}") from None
        self._init_from_spikes(self._spikes, num_segments)
        self._kwargs = {"file_path": str(file_path)}


def read_npz_sorting(file_path) -> NpzSortingExtractor:
    """Load a sorting from a ``.npz`` file (SpikeInterface's NpzSortingExtractor format)."""
    return NpzSortingExtractor(file_path)


def write_npz_sorting(sorting, file_path) -> None:
    """Write ``sorting`` to ``file_path`` in the NpzSortingExtractor format (SpikeInterface reads it).

    Parameters
    ----------
    sorting : BaseSorting
        The sorting.
    file_path : str or Path
        The ``.npz`` file to write (no suffix is added).
    """
    unit_ids = np.asarray(sorting.unit_ids)
    arrays = {
        "unit_ids": unit_ids,
        "num_segment": np.array([sorting.get_num_segments()], dtype="int64"),
        "sampling_frequency": np.array([sorting.sampling_frequency], dtype="float64"),
    }
    for i, spikes in enumerate(sorting.to_spike_vector(concatenated=False)):
        # the spike vector is sorted by (sample, unit): SI's stable argsort of per-unit trains gives the same
        arrays[f"spike_indexes_seg{i}"] = spikes["sample_index"].astype("int64")
        arrays[f"spike_labels_seg{i}"] = unit_ids[spikes["unit_index"]]
    with open(file_path, "wb") as f:
        np.savez(f, **arrays)


class NpzFolderSorting(NpzSortingExtractor):
    """A sorting folder written by ``sorting.save(format="npz")`` (sicore's default) or SpikeInterface.

    Parameters
    ----------
    folder_path : str or Path
        The folder holding ``npz.json`` and ``sorting_cached.npz``.
    """

    _path_kwargs = ("folder_path",)

    def __init__(self, folder_path):
        folder = Path(folder_path).absolute()
        if not folder.is_dir():
            raise FileNotFoundError(f"folder_path {folder} is not a folder")
        npz_json = folder / "npz.json"
        d = read_json(npz_json)
        if not isinstance(d, dict) or not str(d.get("class", "")).endswith("NpzSortingExtractor"):
            raise CorruptFolderError(f"{npz_json}: expected a NpzSortingExtractor dict")
        kwargs = d.get("kwargs") or {}
        if set(kwargs) != {"file_path"}:
            raise CorruptFolderError(f"{npz_json}: kwargs must be exactly {{'file_path'}}, got {sorted(kwargs)}")
        NpzSortingExtractor.__init__(self, path_inside(folder, kwargs["file_path"], npz_json))
        load_properties(folder, self)
        load_annotations(folder, self)
        self._kwargs = {"folder_path": str(folder)}


def write_npz_folder(sorting, folder, overwrite: bool = False) -> NpzFolderSorting:
    """Save ``sorting`` as an npz folder (SpikeInterface's NpzFolderSorting layout) and reload it.

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
        write_npz_sorting(sorting, tmp / NPZ_FILE_NAME)
        write_metadata(tmp, metadata)
        npz_dict = si_folder_dict(SI_NPZ_CLASS, {"file_path": NPZ_FILE_NAME}, metadata, "sorting")
        npz_dict["annotations"], npz_dict["properties"] = {}, {}
        write_json(tmp / "npz.json", npz_dict)
        write_json(tmp / SICORE_INFO_FILE, sicore_info("npz_folder"))
        write_json(tmp / "si_folder.json", si_folder_dict(SI_NPZ_FOLDER_CLASS, {"folder_path": "."}, metadata,
                                                          "sorting"))
    return NpzFolderSorting(final)


# ------------------------------------------------------------------ helpers
def read_npz(file_path: Path, required: tuple[str, ...]) -> dict:
    """The ``required`` members of an .npz file, loaded without unpickling; errors name the file."""
    if not file_path.is_file():
        raise FileNotFoundError(f"{file_path}: file not found")
    try:
        npz = np.load(file_path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        # numpy treats a non-zip, non-npy file as a pickle, which it refuses: say what the file is not
        raise CorruptFolderError(f"{file_path}: not a valid .npz file ({err})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CorruptFolderError(f"{file_path}: a .npy array, not an .npz archive")
    with npz:
        return {key: _member(npz, key, file_path) for key in required}


def _member(npz, key: str, file_path: Path) -> np.ndarray:
    if key not in npz.files:
        raise CorruptFolderError(f"{file_path}: array {key!r} missing")
    try:
        return npz[key]
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise CorruptFolderError(
                f"{file_path}: {key!r} holds pickled Python objects; sicore never unpickles") from None
        raise CorruptFolderError(f"{file_path}: cannot read {key!r} ({err})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise CorruptFolderError(f"{file_path}: cannot read {key!r} ({err})") from None


def labels_to_unit_indices(labels: np.ndarray, unit_ids: np.ndarray, where: str) -> np.ndarray:
    """Index in ``unit_ids`` of every label; a label that is not a unit id is an error naming ``where``."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64)
    if labels.dtype.kind != unit_ids.dtype.kind:
        try:
            labels = labels.astype(unit_ids.dtype)
        except ValueError:
            raise CorruptFolderError(f"{where}: labels of dtype {labels.dtype} do not match unit ids") from None
    if unit_ids.size == 0:
        raise CorruptFolderError(f"{where}: spikes are labelled but there is no unit id")
    order = np.argsort(unit_ids, kind="stable")
    pos = np.clip(np.searchsorted(unit_ids[order], labels), 0, unit_ids.size - 1)
    found = unit_ids[order][pos] == labels
    if not np.all(found):
        raise CorruptFolderError(f"{where}: label {labels[~found][0]!r} is not a unit id")
    return order[pos].astype(np.int64)


__all__ = ["NpzSortingExtractor", "NpzFolderSorting", "read_npz_sorting", "write_npz_sorting", "write_npz_folder"]
