"""Curation of an analyzer: select, remove and merge units, each giving a new analyzer.

The new sorting is a NumpySorting built from the old spike vector, and ``spike_map`` (old spike index ->
new spike index, -1 for dropped spikes) lets extensions that index spikes (random spikes, waveforms)
follow exactly.
"""

from __future__ import annotations

import numpy as np

from ..numpy_objects import NumpySorting
from ..sorting import SPIKE_VECTOR_DTYPE


def _remapped_sorting(sorting, new_unit_index: np.ndarray, new_unit_ids) -> tuple[NumpySorting, np.ndarray]:
    """A NumpySorting where old unit ``i`` becomes ``new_unit_index[i]`` (-1: dropped), and the spike map."""
    old = sorting.to_spike_vector()
    units = new_unit_index[old["unit_index"]]
    keep = np.flatnonzero(units >= 0)
    spikes = np.empty(keep.size, dtype=SPIKE_VECTOR_DTYPE)
    spikes["sample_index"] = old["sample_index"][keep]
    spikes["segment_index"] = old["segment_index"][keep]
    spikes["unit_index"] = units[keep]
    order = np.lexsort((spikes["unit_index"], spikes["sample_index"], spikes["segment_index"]))
    spikes = spikes[order]
    spike_map = np.full(old.size, -1, dtype=np.int64)
    spike_map[keep[order]] = np.arange(keep.size)
    new_sorting = NumpySorting(spikes, sorting.sampling_frequency, np.asarray(new_unit_ids),
                               num_segments=sorting.get_num_segments())
    new_sorting._annotations.update(sorting._annotations)
    return new_sorting, spike_map


def select_units(analyzer, unit_ids, format: str = "memory", folder=None):
    """A new analyzer with only ``unit_ids`` (in that order); extensions are sliced accordingly."""
    unit_ids = np.atleast_1d(np.asarray(unit_ids))
    indices = analyzer.sorting.ids_to_indices(unit_ids)
    new_unit_index = np.full(analyzer.get_num_units(), -1, dtype=np.int64)
    new_unit_index[indices] = np.arange(indices.size)
    new_unit_ids = analyzer.unit_ids[indices]
    sorting, spike_map = _remapped_sorting(analyzer.sorting, new_unit_index, new_unit_ids)
    for key in analyzer.sorting.get_property_keys():
        sorting.set_property(key, analyzer.sorting.get_property(key)[indices])
    sparsity = None
    if analyzer.sparsity is not None:
        from ..sparsity import ChannelSparsity

        sparsity = ChannelSparsity(analyzer.sparsity_mask[indices], new_unit_ids, analyzer.channel_ids)
    return analyzer._copy_to(format, folder, False, sorting=sorting, sparsity=sparsity, unit_ids=new_unit_ids,
                             spike_map=spike_map)


def _normalize_groups(merge_unit_groups) -> list[list]:
    """Accept ``([0, 1], [2, 3])`` (several arguments) and ``([[0, 1], [2, 3]],)`` (one list of lists)."""
    groups = list(merge_unit_groups)
    if len(groups) == 1 and isinstance(groups[0], (list, tuple, np.ndarray)) and len(groups[0]) > 0 \
            and all(isinstance(g, (list, tuple, np.ndarray)) for g in groups[0]):
        groups = list(groups[0])
    groups = [list(np.asarray(g).tolist()) for g in groups]
    if not groups:
        raise ValueError("merge_unit_groups: give at least one group of unit ids to merge")
    seen = set()
    for group in groups:
        if len(group) < 2:
            raise ValueError(f"merge_unit_groups: group {group} must hold at least two units")
        for unit in group:
            if unit in seen:
                raise ValueError(f"merge_unit_groups: unit {unit!r} is in several groups")
            seen.add(unit)
    return groups


def _new_ids(unit_ids: np.ndarray, groups: list[list], strategy: str) -> list:
    if strategy == "take_first":
        return [group[0] for group in groups]
    if strategy != "append":
        raise ValueError(f"new_id_strategy must be 'append' or 'take_first', got {strategy!r}")
    if unit_ids.dtype.kind in "iu":
        start = int(unit_ids.max()) + 1 if unit_ids.size else 0
        return [start + i for i in range(len(groups))]
    numeric = [int(u) for u in unit_ids.tolist() if str(u).isdigit()]
    start = max(numeric) + 1 if numeric else 0
    return [str(start + i) for i in range(len(groups))]


def merge_units(analyzer, merge_unit_groups, new_unit_ids=None, new_id_strategy: str = "append",
                format: str = "memory", folder=None, return_new_unit_ids: bool = False):
    """A new analyzer where each group of units becomes one unit (kept units first, then merged ones).

    The merged unit's sparsity is the union of its units' channels. Random spikes and waveforms follow
    spike by spike; average and std templates combine weighted by the random spikes of each unit.
    """
    groups = _normalize_groups(merge_unit_groups)
    for group in groups:
        analyzer.sorting.ids_to_indices(group)
    if new_unit_ids is None:
        new_unit_ids = _new_ids(analyzer.unit_ids, groups, new_id_strategy)
    new_unit_ids = list(np.asarray(new_unit_ids).tolist())
    if len(new_unit_ids) != len(groups):
        raise ValueError(f"new_unit_ids has {len(new_unit_ids)} ids for {len(groups)} groups")
    merged = {u for group in groups for u in group}
    keep_mask = np.array([u not in merged for u in analyzer.unit_ids.tolist()])
    kept_ids = analyzer.unit_ids[keep_mask].tolist()
    clash = [u for u in new_unit_ids if u in kept_ids]
    if clash:
        raise ValueError(f"new_unit_ids: {clash} are ids of units that are kept")
    all_new_ids = np.asarray(kept_ids + new_unit_ids)
    new_unit_index = np.full(analyzer.get_num_units(), -1, dtype=np.int64)
    new_unit_index[np.flatnonzero(keep_mask)] = np.arange(len(kept_ids))
    for g, group in enumerate(groups):
        new_unit_index[analyzer.sorting.ids_to_indices(group)] = len(kept_ids) + g
    sorting, spike_map = _remapped_sorting(analyzer.sorting, new_unit_index, all_new_ids)
    _merge_properties(analyzer.sorting, sorting, keep_mask, groups)
    sparsity = None
    if analyzer.sparsity is not None:
        from ..sparsity import ChannelSparsity

        old_mask = analyzer.sparsity_mask
        mask = np.zeros((all_new_ids.size, old_mask.shape[1]), dtype=bool)
        mask[: len(kept_ids)] = old_mask[keep_mask]
        for g, group in enumerate(groups):
            mask[len(kept_ids) + g] = old_mask[analyzer.sorting.ids_to_indices(group)].any(axis=0)
        sparsity = ChannelSparsity(mask, all_new_ids, analyzer.channel_ids)
    new = analyzer._copy_to(format, folder, False, sorting=sorting, sparsity=sparsity, unit_ids=None,
                            spike_map=spike_map, merge=(groups, new_unit_ids, keep_mask))
    return (new, new_unit_ids) if return_new_unit_ids else new


def _merge_properties(old_sorting, new_sorting, keep_mask: np.ndarray, groups: list[list]) -> None:
    """Kept units keep their values; a merged unit takes its units' value when they agree."""
    for key in old_sorting.get_property_keys():
        values = old_sorting.get_property(key)
        merged_values = []
        for group in groups:
            group_values = values[old_sorting.ids_to_indices(group)]
            if all(np.array_equal(group_values[0], v) for v in group_values[1:]):
                merged_values.append(group_values[0])
            else:
                merged_values.append(None)
        if any(v is None for v in merged_values):
            if values.dtype.kind == "f":
                merged_values = [np.full(values.shape[1:], np.nan) if v is None else v for v in merged_values]
            elif values.dtype.kind in "US":
                merged_values = ["" if v is None else v for v in merged_values]
            else:
                continue  # no neutral value for this dtype: the property is dropped
        new_sorting.set_property(key, np.concatenate([values[keep_mask], np.asarray(merged_values, dtype=values.dtype)
                                                      .reshape((len(groups),) + values.shape[1:])]))
