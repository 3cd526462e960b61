"""Lazy aggregation of recordings on the channel axis and of sortings on the unit axis."""

from __future__ import annotations

import copy
import warnings

import numpy as np

from . import probe as probe_tools
from .base import _default_missing_value
from .recording import BaseRecording, BaseRecordingSegment
from .recording_snippets import _as_slice_if_contiguous
from .segments import check_sampling_frequencies
from .sorting import SPIKE_VECTOR_DTYPE, BaseSorting, BaseSortingSegment

__all__ = ["ChannelsAggregationRecording", "UnitsAggregationSorting", "aggregate_channels", "aggregate_units"]

# channel properties rebuilt from the inputs' probes rather than concatenated
_PROBE_KEYS = ("contact_vector", "location", "group")


# ------------------------------------------------------------------------------------------ helpers
def _as_list_and_keys(objects, cls: type, argument: str) -> tuple[list, list | None]:
    """The objects of a non-empty list or dict, and the dict keys (None for a list)."""
    if isinstance(objects, cls):
        raise ValueError(f"{argument} must be a list (or dict) of {cls.__name__} objects, got a single one")
    if isinstance(objects, dict):
        keys, values = list(objects.keys()), list(objects.values())
    elif isinstance(objects, (list, tuple)):
        keys, values = None, list(objects)
    else:
        raise ValueError(f"{argument} must be a list (or dict) of {cls.__name__} objects, got {type(objects).__name__}")
    if not values:
        raise ValueError(f"{argument} is empty: give at least one {cls.__name__}")
    for label, obj in zip(_labels(argument, keys, len(values)), values):
        if not isinstance(obj, cls):
            raise ValueError(f"{label} must be a {cls.__name__}, got {type(obj).__name__}")
    return values, keys


def _labels(argument: str, keys: list | None, count: int) -> list[str]:
    return [f"{argument}[{k!r}]" for k in keys] if keys is not None else [f"{argument}[{i}]" for i in range(count)]


def _merged_ids(id_arrays: list[np.ndarray], renamed_ids, argument: str, integer_fallback: bool) -> np.ndarray:
    """Ids of the aggregate: ``renamed_ids``, else the inputs' ids when unique and of one kind, else 0..n-1.

    The fallback ids are strings ``"0".."n-1"``; with ``integer_fallback`` they are ints when every
    input has integer ids (SpikeInterface's rule for units).
    """
    total = sum(ids.size for ids in id_arrays)
    if renamed_ids is not None:
        renamed = np.atleast_1d(np.asarray(renamed_ids))
        if renamed.ndim != 1 or renamed.size != total:
            raise ValueError(f"{argument} has {renamed.size} ids, expected one per aggregated id ({total})")
        if np.unique(renamed).size != renamed.size:
            raise ValueError(f"{argument} has duplicated ids: {renamed.tolist()}")
        return renamed
    kinds = {ids.dtype.kind for ids in id_arrays}
    integer = kinds <= set("iu")
    if integer or len(kinds) == 1:
        merged = np.concatenate(id_arrays)
        if np.unique(merged).size == merged.size:
            return merged
    if integer_fallback and integer:
        return np.arange(total)
    return np.arange(total).astype(str)


def _values_equal(a, b) -> bool:
    """Deep equality for annotation values (numpy arrays, dicts, lists, scalars)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        except (TypeError, ValueError):
            return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _shared_annotations(objects: list, skip=lambda key: False) -> dict:
    """Annotations present in every object with the same value everywhere (deep copies)."""
    shared = {}
    for key, value in objects[0]._annotations.items():
        if skip(key):
            continue
        if all(key in obj._annotations and _values_equal(obj._annotations[key], value) for obj in objects[1:]):
            shared[key] = copy.deepcopy(value)
    return shared


def _concatenate_property(values_list: list[np.ndarray], key: str) -> np.ndarray | None:
    """The inputs' values of one property joined, or None (with a warning) when they do not fit together."""
    shapes = {v.shape[1:] for v in values_list}
    kinds = {v.dtype.kind for v in values_list}
    structured = any(v.dtype.names is not None for v in values_list)
    compatible = len(shapes) == 1 and (
        (structured and all(v.dtype == values_list[0].dtype for v in values_list))
        or (not structured and (len(kinds) == 1 or kinds <= set("biufc") or kinds <= set("US")))
    )
    if compatible:
        try:
            return np.concatenate(values_list, axis=0)
        except (TypeError, ValueError):
            pass
    warnings.warn(
        f"property {key!r} is dropped from the aggregate: its values have incompatible dtypes or shapes "
        f"({[(str(v.dtype), v.shape[1:]) for v in values_list]})",
        stacklevel=5,
    )
    return None


# ------------------------------------------------------------------------------------ recordings
class ChannelsAggregationRecordingSegment(BaseRecordingSegment):
    """One segment of each input recording, stacked on the channel axis."""

    def __init__(self, parent_segments: list[BaseRecordingSegment], channel_counts: list[int], times_kwargs: dict):
        BaseRecordingSegment.__init__(self, parent_segments[0].sampling_frequency, **times_kwargs)
        self._parent_segments = parent_segments
        # channel_bounds[p] is the aggregated index of the first channel of input p
        self._channel_bounds = np.concatenate([[0], np.cumsum(channel_counts)]).astype(np.int64)
        self._num_channels = int(self._channel_bounds[-1])

    def get_num_samples(self) -> int:
        return self._parent_segments[0].get_num_samples()

    def get_traces(self, start_frame, end_frame, channel_indices):
        parents = self._parent_segments
        if isinstance(channel_indices, slice) and channel_indices == slice(None):
            return np.concatenate([seg.get_traces(start_frame, end_frame, slice(None)) for seg in parents], axis=1)
        indices = np.atleast_1d(np.arange(self._num_channels)[channel_indices])
        if indices.size == 0:
            return parents[0].get_traces(start_frame, end_frame, np.zeros(0, dtype=np.int64))
        bounds = self._channel_bounds
        owner = np.searchsorted(bounds, indices, side="right") - 1
        needed = np.unique(owner)
        if needed.size == 1:
            # one input: it returns the channels in the requested order (no copy for in-memory slices)
            p = int(needed[0])
            return parents[p].get_traces(start_frame, end_frame, _as_slice_if_contiguous(indices - bounds[p]))
        # read each needed input once, then put the columns in the requested order
        blocks, positions = [], []
        for p in needed.tolist():
            mask = owner == p
            local = indices[mask] - bounds[p]
            blocks.append(parents[p].get_traces(start_frame, end_frame, _as_slice_if_contiguous(local)))
            positions.append(np.flatnonzero(mask))
        stacked = np.concatenate(blocks, axis=1)
        order = np.concatenate(positions)
        if np.array_equal(order, np.arange(order.size)):
            return stacked
        out = np.empty_like(stacked)
        out[:, order] = stacked
        return out


class ChannelsAggregationRecording(BaseRecording):
    """Lazy recording stacking the channels of several recordings.

    Parameters
    ----------
    recording_list_or_dict : list or dict of BaseRecording
        Recordings with the same sampling frequency, number of segments, segment lengths and dtype.
        With a dict, its keys become the ``aggregation_key`` channel property.
    renamed_channel_ids : array-like or None, default: None
        Ids of the aggregated channels. None: the inputs' ids when they are unique and of one kind,
        otherwise the strings ``"0".."n-1"``.
    """

    def __init__(self, recording_list_or_dict, renamed_channel_ids=None):
        argument = "recording_list"
        recordings, keys = _as_list_and_keys(recording_list_or_dict, BaseRecording, argument)
        labels = _labels(argument, keys, len(recordings))
        _check_aggregable_recordings(recordings, labels)
        ref = recordings[0]
        channel_ids = _merged_ids([r.channel_ids for r in recordings], renamed_channel_ids, "renamed_channel_ids",
                                  integer_fallback=False)
        BaseRecording.__init__(self, ref.sampling_frequency, channel_ids, ref.get_dtype())
        channel_counts = [r.get_num_channels() for r in recordings]
        _warn_if_times_differ(recordings, labels)
        for segment_index in range(ref.get_num_segments()):
            parent_segments = [r._recording_segments[segment_index] for r in recordings]
            # times follow the first recording (segments have the same lengths)
            times = parent_segments[0].times_kwargs()
            self.add_recording_segment(ChannelsAggregationRecordingSegment(parent_segments, channel_counts, times))
        self._parents = recordings
        self._annotations.update(_shared_annotations(recordings, skip=_is_probe_annotation))
        self._merge_channel_properties(recordings)
        aggregation_key = np.asarray(keys) if keys is not None else np.arange(len(recordings))
        self.set_property("aggregation_key", np.repeat(aggregation_key, channel_counts))
        self._kwargs = {
            "recording_list_or_dict": list(recordings) if keys is None else dict(zip(keys, recordings)),
            "renamed_channel_ids": None if renamed_channel_ids is None else np.asarray(renamed_channel_ids).tolist(),
        }

    def _merge_channel_properties(self, recordings: list[BaseRecording]) -> None:
        keys = []
        for rec in recordings:
            keys += [k for k in rec.get_property_keys() if k not in keys]
        everywhere = [k for k in keys if all(rec.get_property(k) is not None for rec in recordings)]
        all_probes = all(rec.has_probe() for rec in recordings)
        probe = _combine_probes(recordings) if all_probes else None
        if not all_probes and any(rec.has_probe() for rec in recordings):
            warnings.warn("only some recordings have a probe: the aggregate has none", stacklevel=4)
        for key in everywhere:
            if key in _PROBE_KEYS and probe is not None:
                continue
            if key == "contact_vector" or key == "aggregation_key":
                continue
            values = _concatenate_property([rec.get_property(key) for rec in recordings], key)
            if values is not None:
                self.set_property(key, values)
        if probe is not None:
            contact_vector, annotations, probe_groups = probe
            self.set_property("contact_vector", contact_vector)
            self.set_property("location", probe_tools.contact_locations(contact_vector))
            self.set_property("group", probe_groups)
            self.annotate(**annotations)


def _is_probe_annotation(key: str) -> bool:
    # rebuilt from the combined probes, never taken from one input
    return key == "probes_info" or (key.startswith("probe_") and key.endswith("_planar_contour"))


def _check_aggregable_recordings(recordings: list[BaseRecording], labels: list[str]) -> None:
    ref, ref_label = recordings[0], labels[0]
    for rec, label in zip(recordings[1:], labels[1:]):
        if rec.sampling_frequency != ref.sampling_frequency:
            raise ValueError(
                f"{label} has sampling_frequency {rec.sampling_frequency} Hz but {ref_label} has "
                f"{ref.sampling_frequency} Hz: aggregated recordings need the same sampling frequency"
            )
        if rec.get_num_segments() != ref.get_num_segments():
            raise ValueError(
                f"{label} has {rec.get_num_segments()} segments but {ref_label} has {ref.get_num_segments()}: "
                "aggregated recordings need the same number of segments"
            )
        for segment_index in range(ref.get_num_segments()):
            n, n_ref = rec.get_num_samples(segment_index), ref.get_num_samples(segment_index)
            if n != n_ref:
                raise ValueError(
                    f"{label} has {n} samples in segment {segment_index} but {ref_label} has {n_ref}: "
                    "aggregated recordings need the same segment lengths"
                )
        if rec.get_dtype() != ref.get_dtype():
            raise ValueError(
                f"{label} has dtype {rec.get_dtype()} but {ref_label} has {ref.get_dtype()}: "
                "aggregated recordings need one dtype"
            )


def _warn_if_times_differ(recordings: list[BaseRecording], labels: list[str]) -> None:
    ref = recordings[0]
    for rec, label in zip(recordings[1:], labels[1:]):
        for segment_index in range(ref.get_num_segments()):
            if ref.get_num_samples(segment_index) == 0:
                continue
            same = (rec.has_time_vector(segment_index) == ref.has_time_vector(segment_index)
                    and np.isclose(rec.get_start_time(segment_index), ref.get_start_time(segment_index)))
            if not same:
                warnings.warn(
                    f"{label} has other times than {labels[0]} in segment {segment_index}; the aggregate uses "
                    f"{labels[0]}'s",
                    stacklevel=4,
                )
                return


def _combine_probes(recordings: list[BaseRecording]):
    """Join the inputs' probes: (contact_vector, probe annotations, group per channel), or None with a warning.

    Probes are renumbered after each other; the ``group`` of each input is shifted past the previous
    inputs' groups so groups (probes or shanks) stay distinct.
    """
    vectors = [np.asarray(rec.get_property("contact_vector")) for rec in recordings]
    has_z = {"z" in v.dtype.names for v in vectors}
    if len(has_z) > 1:
        warnings.warn("the recordings' probes mix 2D and 3D contacts: the aggregate has no probe", stacklevel=5)
        return None
    names, dtypes = [], {}
    for v in vectors:
        for name in v.dtype.names:
            dtype = v.dtype.fields[name][0]
            if name not in dtypes:
                names.append(name)
                dtypes[name] = dtype
            else:
                try:
                    dtypes[name] = np.result_type(dtypes[name], dtype)
                except TypeError:
                    warnings.warn(f"probe field {name!r} has incompatible dtypes: the aggregate has no probe",
                                  stacklevel=5)
                    return None
    combined = np.zeros(sum(v.size for v in vectors), dtype=[(n, dtypes[n]) for n in names])
    annotations: dict = {"probes_info": []}
    groups, pos, probe_offset, group_offset = [], 0, 0, 0
    for rec, vector in zip(recordings, vectors):
        block = combined[pos : pos + vector.size]
        for name in vector.dtype.names:
            block[name] = vector[name]
        # probes are numbered by rank of probe_index (as probegroup_from_contact_vector does)
        unique_probes, rank = np.unique(vector["probe_index"], return_inverse=True)
        block["probe_index"] = rank + probe_offset
        info = list(rec._annotations.get("probes_info") or [])
        info = (info + [{} for _ in range(unique_probes.size)])[: unique_probes.size]
        annotations["probes_info"].extend(info)
        for rank_index in range(unique_probes.size):
            contour = rec._annotations.get(f"probe_{rank_index}_planar_contour")
            if contour is not None:
                annotations[f"probe_{rank_index + probe_offset}_planar_contour"] = contour
        rec_groups = rec.get_property("group")
        if rec_groups is None or rec_groups.dtype.kind not in "iu":
            rec_groups = rank
        rec_groups = np.asarray(rec_groups, dtype=np.int64)
        groups.append(rec_groups + group_offset)
        group_offset += int(rec_groups.max()) + 1 if rec_groups.size else 0
        probe_offset += unique_probes.size
        pos += vector.size
    if "probe_id" in dtypes:
        # probe ids must be unique in a probegroup: number them when inputs reuse one
        pairs = {(int(i), str(p)) for i, p in zip(combined["probe_index"], combined["probe_id"])}
        if len({p for _, p in pairs}) != len(pairs):
            combined["probe_id"] = combined["probe_index"].astype(str)
    combined["device_channel_indices"] = np.arange(combined.size)
    try:
        probe_tools.probegroup_from_contact_vector(combined, annotations)
    except Exception as err:  # probeinterface rejects the combination: keep the traces, drop the probe
        warnings.warn(f"the recordings' probes cannot be combined ({err}): the aggregate has no probe", stacklevel=5)
        return None
    return combined, annotations, np.concatenate(groups)


def aggregate_channels(recording_list=None, renamed_channel_ids=None, *, recording_list_or_dict=None
                       ) -> ChannelsAggregationRecording:
    """Stack several recordings on the channel axis into one lazy recording.

    Parameters
    ----------
    recording_list : list or dict of BaseRecording
        Recordings with the same sampling frequency, number of segments, segment lengths and dtype
        (a ValueError names the first one that differs). A dict's keys become the
        ``aggregation_key`` property (the list index otherwise).
    renamed_channel_ids : array-like or None, default: None
        Ids of the aggregated channels. None: the inputs' ids when they are unique across inputs and
        of one kind (all integers or all strings), otherwise the strings ``"0".."n-1"``.
    recording_list_or_dict : list or dict of BaseRecording or None, default: None
        SpikeInterface's name of ``recording_list``.

    Returns
    -------
    recording : ChannelsAggregationRecording
        Channels of each input in order. Properties set on every input are joined; when every input
        has a probe the probes are combined (``get_probegroup`` works, groups stay distinct); only
        annotations equal on every input are kept; times are the first recording's.
    """
    if (recording_list is None) == (recording_list_or_dict is None):
        raise ValueError("give the recordings to aggregate as recording_list (or recording_list_or_dict), exactly once")
    recordings = recording_list if recording_list is not None else recording_list_or_dict
    return ChannelsAggregationRecording(recordings, renamed_channel_ids=renamed_channel_ids)


# --------------------------------------------------------------------------------------- sortings
class UnitsAggregationSortingSegment(BaseSortingSegment):
    def __init__(self, sortings: list[BaseSorting], segment_index: int, id_map: dict):
        self._sortings = sortings
        self._segment_index = segment_index
        # aggregated unit id -> (input index, unit id in that input)
        self._id_map = id_map

    def get_unit_spike_train(self, unit_id, start_frame, end_frame):
        parent_index, parent_unit_id = self._id_map[unit_id]
        return self._sortings[parent_index].get_unit_spike_train(
            parent_unit_id, segment_index=self._segment_index, start_frame=start_frame, end_frame=end_frame
        )


class UnitsAggregationSorting(BaseSorting):
    """Lazy sorting gathering the units of several sortings.

    Parameters
    ----------
    sorting_list : list or dict of BaseSorting
        Sortings with the same sampling frequency and number of segments (and segment lengths
        when they have registered recordings). With a dict, its keys become the
        ``aggregation_key`` unit property.
    renamed_unit_ids : array-like or None, default: None
        Ids of the aggregated units. None: the inputs' ids when unique and of one kind, otherwise
        ``0..n-1`` (ints when every input has integer ids, else strings).
    sampling_frequency_max_diff : float, default: 0
        Largest accepted difference of sampling frequencies (Hz).
    """

    def __init__(self, sorting_list, renamed_unit_ids=None, sampling_frequency_max_diff: float = 0):
        argument = "sorting_list"
        sortings, keys = _as_list_and_keys(sorting_list, BaseSorting, argument)
        labels = _labels(argument, keys, len(sortings))
        _check_aggregable_sortings(sortings, labels, sampling_frequency_max_diff)
        ref = sortings[0]
        unit_ids = _merged_ids([s.unit_ids for s in sortings], renamed_unit_ids, "renamed_unit_ids",
                               integer_fallback=True)
        BaseSorting.__init__(self, ref.sampling_frequency, unit_ids)
        unit_counts = [s.get_num_units() for s in sortings]
        self._unit_offsets = np.concatenate([[0], np.cumsum(unit_counts)]).astype(np.int64)
        parent_refs = [(p, uid) for p, s in enumerate(sortings) for uid in s.unit_ids.tolist()]
        id_map = dict(zip(self._main_ids.tolist(), parent_refs))
        for segment_index in range(ref.get_num_segments()):
            self.add_sorting_segment(UnitsAggregationSortingSegment(sortings, segment_index, id_map))
        self._parents = sortings
        self._annotations.update(_shared_annotations(sortings))
        self._merge_unit_properties(sortings)
        if keys is not None:
            self.set_property("aggregation_key", np.repeat(np.asarray(keys), unit_counts))
        if all(s.has_recording() for s in sortings):
            # lengths were checked equal; the first recording gives times and lengths
            self.register_recording(ref.get_recording(), check_spike_frames=False)
        self._kwargs = {
            "sorting_list": list(sortings) if keys is None else dict(zip(keys, sortings)),
            "renamed_unit_ids": None if renamed_unit_ids is None else np.asarray(renamed_unit_ids).tolist(),
            "sampling_frequency_max_diff": sampling_frequency_max_diff,
        }

    def _merge_unit_properties(self, sortings: list[BaseSorting]) -> None:
        keys = []
        for sorting in sortings:
            keys += [k for k in sorting.get_property_keys() if k not in keys and k != "aggregation_key"]
        for key in keys:
            values_list = [s.get_property(key) for s in sortings]
            present = [v for v in values_list if v is not None]
            if len(present) < len(values_list):
                # units of inputs without the property get NaN / "" / None, when the dtype has such a value
                dtype = present[0].dtype
                if dtype.kind not in "fcUSO" or len({v.shape[1:] for v in present}) != 1:
                    continue
                missing = _default_missing_value(dtype, key)
                values_list = [
                    v if v is not None else np.full((s.get_num_units(),) + present[0].shape[1:], missing, dtype=dtype)
                    for v, s in zip(values_list, sortings)
                ]
            values = _concatenate_property(values_list, key)
            if values is not None:
                self.set_property(key, values)

    def _compute_spike_vector(self) -> np.ndarray:
        pieces = []
        for offset, sorting in zip(self._unit_offsets, self._parents):
            spikes = sorting.to_spike_vector()
            if spikes.size:
                spikes = spikes.copy()
                spikes["unit_index"] += offset
                pieces.append(spikes)
        if not pieces:
            return np.zeros(0, dtype=SPIKE_VECTOR_DTYPE)
        spikes = np.concatenate(pieces)
        order = np.lexsort((spikes["unit_index"], spikes["sample_index"], spikes["segment_index"]))
        return spikes[order]


def _check_aggregable_sortings(sortings: list[BaseSorting], labels: list[str], max_diff: float) -> None:
    check_sampling_frequencies(sortings, max_diff, "sorting_list", labels)
    ref, ref_label = sortings[0], labels[0]
    for sorting, label in zip(sortings[1:], labels[1:]):
        if sorting.get_num_segments() != ref.get_num_segments():
            raise ValueError(
                f"{label} has {sorting.get_num_segments()} segments but {ref_label} has {ref.get_num_segments()}: "
                "aggregated sortings need the same number of segments"
            )
    # segment lengths are known only through registered recordings: compare those that have one
    with_recording = [(s, label) for s, label in zip(sortings, labels) if s.has_recording()]
    if len(with_recording) > 1:
        first, first_label = with_recording[0]
        for sorting, label in with_recording[1:]:
            for segment_index in range(ref.get_num_segments()):
                n, n_ref = sorting.get_num_samples(segment_index), first.get_num_samples(segment_index)
                if n != n_ref:
                    raise ValueError(
                        f"{label} has {n} samples in segment {segment_index} but {first_label} has {n_ref} "
                        "(from their registered recordings): aggregated sortings need the same segment lengths"
                    )


def aggregate_units(sorting_list, renamed_unit_ids=None, sampling_frequency_max_diff: float = 0
                    ) -> UnitsAggregationSorting:
    """Gather the units of several sortings into one lazy sorting.

    Parameters
    ----------
    sorting_list : list or dict of BaseSorting
        Sortings with the same sampling frequency, number of segments and (when recordings are
        registered) segment lengths; a ValueError names the first one that differs.
    renamed_unit_ids : array-like or None, default: None
        Ids of the aggregated units. None: the inputs' ids when unique across inputs and of one
        kind, otherwise ``0..n-1`` (ints when all inputs have integer ids, else strings).
    sampling_frequency_max_diff : float, default: 0
        Largest accepted difference of sampling frequencies in Hz.

    Returns
    -------
    sorting : UnitsAggregationSorting
        Units of each input in order. Properties are joined (inputs without a float / string property
        get NaN / ""); only annotations equal on every input are kept; the first input's recording is
        registered when every input has one.
    """
    return UnitsAggregationSorting(sorting_list, renamed_unit_ids=renamed_unit_ids,
                                   sampling_frequency_max_diff=sampling_frequency_max_diff)
