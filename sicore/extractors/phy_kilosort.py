"""Sortings from Phy and Kilosort output folders.

Read: ``spike_times.npy`` (sample indices), ``spike_clusters.npy`` (or ``spike_templates.npy`` when
there are no clusters, e.g. straight out of Kilosort), the sampling rate from ``params.py`` (parsed,
never executed) and the cluster tables as unit properties. Not read: templates, amplitudes, PCs
and the raw data file that ``params.py`` names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.safe_files import load_npy
from ..numpy_objects import _checked_spike_vector, _SpikeVectorSorting
from ..sorting import SPIKE_VECTOR_DTYPE, BaseSorting
from .phy_params import read_phy_params
from .phy_tables import column_values, read_cluster_tables

# Table columns renamed to SpikeInterface's property names (the cluster_id column is the tables' index).
_RENAMED_COLUMNS = {"group": "quality"}


class BasePhyKilosortSortingExtractor(_SpikeVectorSorting):
    """Shared reader of Phy/Kilosort folders (see ``PhySortingExtractor`` and ``KiloSortSortingExtractor``).

    Units are the clusters found in the spikes or in the cluster tables (so a cluster listed with
    no spike is a unit with no spike), sorted by cluster id, unless the tables hold an
    ``si_unit_id`` column, which then gives the unit ids. Properties: every table column, with
    ``group`` named ``quality`` and the cluster id as ``original_cluster_id``.
    """

    _path_kwargs = ("folder_path",)

    def _load_folder(self, folder_path, exclude_cluster_groups=None, keep_good_only: bool = False,
                     remove_empty_units: bool = False, load_all_cluster_properties: bool = True) -> Path:
        folder = Path(folder_path).absolute()
        if not folder.is_dir():
            raise FileNotFoundError(f"folder_path: {folder} is not an existing folder")
        sampling_frequency = _sampling_rate(folder / "params.py")
        spike_times = _spike_times(folder / "spike_times.npy")
        spike_clusters = _spike_clusters(folder, spike_times.size)
        table = read_cluster_tables(folder)

        table_ids = np.zeros(0, dtype=np.int64) if table is None else table.index.to_numpy(dtype=np.int64)
        cluster_ids = np.union1d(np.unique(spike_clusters), table_ids).astype(np.int64)
        properties = {"original_cluster_id": cluster_ids}
        if table is not None:
            for column in table.columns:
                properties[_RENAMED_COLUMNS.get(column, column)] = column_values(table, column, cluster_ids)

        keep = np.ones(cluster_ids.size, dtype=bool)
        if exclude_cluster_groups is not None:
            groups = [exclude_cluster_groups] if isinstance(exclude_cluster_groups, str) else list(exclude_cluster_groups)
            keep &= ~np.isin(_text_property(properties, "quality", folder, "exclude_cluster_groups"), groups)
        if keep_good_only:
            keep &= _text_property(properties, "KSLabel", folder, "keep_good_only") == "good"
        counts = np.bincount(np.searchsorted(cluster_ids, spike_clusters), minlength=cluster_ids.size)
        if remove_empty_units:
            keep &= counts > 0

        unit_ids = cluster_ids[keep]
        if "si_unit_id" in properties:
            si_ids = properties.pop("si_unit_id")[keep]
            if si_ids.dtype.kind == "f" and np.all(np.isfinite(si_ids)) and np.all(np.mod(si_ids, 1) == 0):
                si_ids = si_ids.astype(np.int64)
            if si_ids.dtype.kind in "iu" and np.unique(si_ids).size == si_ids.size:
                unit_ids = si_ids
        BaseSorting.__init__(self, sampling_frequency, unit_ids)

        # spikes of dropped clusters go; the others get the index of their unit
        unit_index_of_cluster = np.full(cluster_ids.size, -1, dtype=np.int64)
        unit_index_of_cluster[keep] = np.arange(int(keep.sum()))
        spike_units = unit_index_of_cluster[np.searchsorted(cluster_ids, spike_clusters)]
        kept = spike_units >= 0
        spikes = np.zeros(int(kept.sum()), dtype=SPIKE_VECTOR_DTYPE)
        spikes["sample_index"] = spike_times[kept]
        spikes["unit_index"] = spike_units[kept]
        self._spikes = _checked_spike_vector(spikes, self.get_num_units())
        self._init_from_spikes(self._spikes, 1)

        for key, values in properties.items():
            if load_all_cluster_properties or key in ("quality", "original_cluster_id"):
                self.set_property(key, values[keep])
        self.annotate(phy_folder=str(folder))
        return folder


class PhySortingExtractor(BasePhyKilosortSortingExtractor):
    """A sorting from a Phy folder (after manual curation or not).

    Parameters
    ----------
    folder_path : str or Path
        The Phy folder.
    exclude_cluster_groups : str or list of str or None, default: None
        Phy groups (the ``quality`` property, e.g. ``"noise"``, ``"mua"``) whose clusters are dropped.
    load_all_cluster_properties : bool, default: True
        Load every cluster table column; otherwise only ``quality`` and ``original_cluster_id``.
    """

    def __init__(self, folder_path, exclude_cluster_groups=None, load_all_cluster_properties: bool = True):
        folder = self._load_folder(folder_path, exclude_cluster_groups=exclude_cluster_groups,
                                   load_all_cluster_properties=load_all_cluster_properties)
        if isinstance(exclude_cluster_groups, (tuple, np.ndarray)):
            exclude_cluster_groups = list(exclude_cluster_groups)
        self._kwargs = {"folder_path": str(folder), "exclude_cluster_groups": exclude_cluster_groups,
                        "load_all_cluster_properties": bool(load_all_cluster_properties)}


class KiloSortSortingExtractor(BasePhyKilosortSortingExtractor):
    """A sorting from a Kilosort output folder.

    Parameters
    ----------
    folder_path : str or Path
        The Kilosort output folder.
    keep_good_only : bool, default: False
        Keep only clusters whose Kilosort label (``KSLabel``) is ``"good"``.
    remove_empty_units : bool, default: True
        Drop clusters listed in the tables that have no spike.
    """

    def __init__(self, folder_path, keep_good_only: bool = False, remove_empty_units: bool = True):
        folder = self._load_folder(folder_path, keep_good_only=keep_good_only,
                                   remove_empty_units=remove_empty_units)
        self._kwargs = {"folder_path": str(folder), "keep_good_only": bool(keep_good_only),
                        "remove_empty_units": bool(remove_empty_units)}


def read_phy(folder_path, exclude_cluster_groups=None, load_all_cluster_properties: bool = True) -> PhySortingExtractor:
    """Read a Phy folder as a sorting (see ``PhySortingExtractor``)."""
    return PhySortingExtractor(folder_path, exclude_cluster_groups=exclude_cluster_groups,
                               load_all_cluster_properties=load_all_cluster_properties)


def read_kilosort(folder_path, keep_good_only: bool = False, remove_empty_units: bool = True) -> KiloSortSortingExtractor:
    """Read a Kilosort output folder as a sorting (see ``KiloSortSortingExtractor``)."""
    return KiloSortSortingExtractor(folder_path, keep_good_only=keep_good_only, remove_empty_units=remove_empty_units)


def _sampling_rate(params_file: Path) -> float:
    params = read_phy_params(params_file)
    rate = params.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"{params_file}: sample_rate must be a positive number, got {rate!r}")
    return float(rate)


def _spike_times(file_path: Path) -> np.ndarray:
    times = load_npy(file_path).ravel()
    if times.dtype.kind == "f":
        if not np.all(np.isfinite(times)) or not np.all(np.mod(times, 1) == 0):
            raise ValueError(f"{file_path}: spike times must be sample indices (integers)")
    elif times.dtype.kind not in "iu":
        raise ValueError(f"{file_path}: spike times must be integer sample indices, got dtype {times.dtype}")
    if times.size and times.min() < 0:
        raise ValueError(f"{file_path}: spike times must be >= 0")
    return times.astype(np.int64)


def _spike_clusters(folder: Path, num_spikes: int) -> np.ndarray:
    for name in ("spike_clusters.npy", "spike_templates.npy"):
        file_path = folder / name
        if file_path.is_file():
            clusters = load_npy(file_path).ravel()
            if clusters.dtype.kind not in "iu":
                raise ValueError(f"{file_path}: cluster ids must be integers, got dtype {clusters.dtype}")
            if clusters.size != num_spikes:
                raise ValueError(f"{file_path}: {clusters.size} entries for {num_spikes} spikes in spike_times.npy")
            return clusters.astype(np.int64)
    raise FileNotFoundError(f"{folder}: neither spike_clusters.npy nor spike_templates.npy is present")


def _text_property(properties: dict, key: str, folder: Path, argument: str) -> np.ndarray:
    if key not in properties:
        column = "group" if key == "quality" else key
        raise ValueError(f"{argument} needs the {column!r} column of a cluster table, which {folder} does not have")
    return np.asarray(properties[key]).astype(str)


__all__ = ["BasePhyKilosortSortingExtractor", "PhySortingExtractor", "KiloSortSortingExtractor", "read_phy",
           "read_kilosort"]
