"""In-memory objects: NumpyRecording, NumpySorting and SharedMemorySorting."""

from __future__ import annotations

import threading
from multiprocessing import resource_tracker, shared_memory

import numpy as np

from .recording import BaseRecording, BaseRecordingSegment
from .sorting import SPIKE_VECTOR_DTYPE, BaseSorting, BaseSortingSegment, _spikes_of_segment


class NumpyRecording(BaseRecording):
    """A recording whose traces are numpy arrays in memory (one per segment).

    Parameters
    ----------
    traces_list : np.ndarray or list of np.ndarray
        Traces ``(num_samples, num_channels)`` of each segment (a single array means one segment).
    sampling_frequency : float
        Sampling rate in Hz (required: there is no safe default).
    t_starts : list of float or None, default: None
        Time in seconds of the first sample of each segment.
    channel_ids : array-like or None, default: None
        Channel ids (default ``0 .. num_channels - 1``).
    """

    _json_serializable = False

    def __init__(self, traces_list, sampling_frequency: float | None = None, t_starts=None, channel_ids=None):
        if sampling_frequency is None:
            raise ValueError("NumpyRecording needs sampling_frequency (in Hz), e.g. sampling_frequency=30000.0")
        if isinstance(traces_list, np.ndarray):
            traces_list = [traces_list]
        if not isinstance(traces_list, (list, tuple)) or len(traces_list) == 0:
            raise ValueError("traces_list must be a non-empty list of 2-d arrays (num_samples, num_channels)")
        traces_list = [np.asarray(t) for t in traces_list]
        for i, traces in enumerate(traces_list):
            if traces.ndim != 2:
                raise ValueError(f"traces_list[{i}] must be 2-d (num_samples, num_channels), got shape {traces.shape}")
        num_channels = traces_list[0].shape[1]
        dtype = traces_list[0].dtype
        for i, traces in enumerate(traces_list):
            if traces.shape[1] != num_channels:
                raise ValueError(f"traces_list[{i}] has {traces.shape[1]} channels, traces_list[0] has {num_channels}")
            if traces.dtype != dtype:
                raise ValueError(f"traces_list[{i}] has dtype {traces.dtype}, traces_list[0] has {dtype}")
        if channel_ids is None:
            channel_ids = np.arange(num_channels)
        elif len(channel_ids) != num_channels:
            raise ValueError(f"channel_ids has {len(channel_ids)} ids for {num_channels} channels")
        if t_starts is not None and len(t_starts) != len(traces_list):
            raise ValueError(f"t_starts has {len(t_starts)} values for {len(traces_list)} segments")
        BaseRecording.__init__(self, sampling_frequency, channel_ids, dtype)
        for i, traces in enumerate(traces_list):
            t_start = None if t_starts is None else t_starts[i]
            self.add_recording_segment(NumpyRecordingSegment(traces, sampling_frequency, t_start))
        self._kwargs = {
            "traces_list": traces_list,
            "sampling_frequency": float(sampling_frequency),
            "t_starts": t_starts,
            "channel_ids": self.channel_ids,
        }

    @staticmethod
    def from_recording(source_recording: BaseRecording, **job_kwargs) -> "NumpyRecording":
        """Load all traces of a recording in memory (keeping its metadata and times)."""
        traces_list = [source_recording.get_traces(segment_index=i) for i in range(source_recording.get_num_segments())]
        recording = NumpyRecording(traces_list, source_recording.sampling_frequency,
                                   channel_ids=source_recording.channel_ids)
        source_recording.copy_metadata(recording)
        for i, segment in enumerate(source_recording._recording_segments):
            recording._recording_segments[i].t_start = segment.t_start
            recording._recording_segments[i].time_vector = segment.time_vector
        return recording


class NumpyRecordingSegment(BaseRecordingSegment):
    def __init__(self, traces: np.ndarray, sampling_frequency: float, t_start: float | None):
        BaseRecordingSegment.__init__(self, sampling_frequency, t_start=t_start)
        self._traces = traces

    def get_num_samples(self) -> int:
        return self._traces.shape[0]

    def get_traces(self, start_frame, end_frame, channel_indices):
        return self._traces[start_frame:end_frame, channel_indices]


class _SpikeVectorSorting(BaseSorting):
    """A sorting that holds its spike vector: segments read unit trains from it."""

    def _init_from_spikes(self, spikes: np.ndarray, num_segments: int) -> None:
        self._set_spike_vector_cache(spikes)
        for segment_index in range(num_segments):
            self.add_sorting_segment(SpikeVectorSortingSegment(self, segment_index))

    def _compute_spike_vector(self) -> np.ndarray:
        return self._spikes


class SpikeVectorSortingSegment(BaseSortingSegment):
    def __init__(self, parent_sorting: _SpikeVectorSorting, segment_index: int):
        self._parent_sorting = parent_sorting
        self._segment_index = segment_index

    def get_unit_spike_train(self, unit_id, start_frame, end_frame):
        return self._parent_sorting.get_unit_spike_train(
            unit_id, segment_index=self._segment_index, start_frame=start_frame, end_frame=end_frame, use_cache=True
        )


class NumpySorting(_SpikeVectorSorting):
    """A sorting held in memory as a spike vector.

    Parameters
    ----------
    spikes : np.ndarray
        Structured array with ``sample_index, unit_index, segment_index`` (sorted here if needed).
    sampling_frequency : float
        Sampling rate in Hz.
    unit_ids : array-like
        Unit ids; ``unit_index`` indexes into them.
    num_segments : int or None, default: None
        Number of segments (default: 1 + the largest segment_index, at least 1).
    """

    _json_serializable = False

    def __init__(self, spikes: np.ndarray, sampling_frequency: float, unit_ids, num_segments: int | None = None):
        BaseSorting.__init__(self, sampling_frequency, unit_ids)
        spikes = _checked_spike_vector(spikes, self.get_num_units())
        if num_segments is None:
            num_segments = int(spikes["segment_index"].max()) + 1 if spikes.size else 1
        elif spikes.size and spikes["segment_index"].max() >= num_segments:
            raise ValueError(f"num_segments {num_segments} is too small for segment_index {spikes['segment_index'].max()}")
        self._spikes = spikes
        self._init_from_spikes(spikes, num_segments)
        self._kwargs = {"spikes": spikes, "sampling_frequency": float(sampling_frequency),
                        "unit_ids": self.unit_ids, "num_segments": num_segments}

    @staticmethod
    def from_times_labels(times, labels, sampling_frequency: float, unit_ids=None) -> "NumpySorting":
        """A sorting from spike sample indices and their unit labels.

        Parameters
        ----------
        times : array-like or list of array-like
            Spike **sample indices** (one array per segment, or a single array for one segment).
        labels : array-like or list of array-like
            Unit id of each spike, same shapes as ``times``.
        sampling_frequency : float
            Sampling rate in Hz.
        unit_ids : array-like or None, default: None
            All unit ids (default: the sorted unique labels); allows units with no spike.
        """
        times_list, labels_list = _as_segment_lists(times, labels)
        all_labels = np.concatenate(labels_list) if labels_list else np.zeros(0)
        if unit_ids is None:
            unit_ids = np.unique(all_labels)
        unit_ids = np.asarray(unit_ids)
        order = np.argsort(unit_ids, kind="stable")
        pieces = []
        for segment_index, (seg_times, seg_labels) in enumerate(zip(times_list, labels_list)):
            seg_times = np.asarray(seg_times)
            if seg_times.size and seg_times.dtype.kind == "f":
                if not np.all(np.mod(seg_times, 1) == 0):
                    raise ValueError(
                        "times must be sample indices (integers); for times in seconds use NumpySorting.from_times_and_labels"
                    )
            seg_times = seg_times.astype(np.int64)
            if seg_times.size and seg_times.min() < 0:
                raise ValueError(f"times: segment {segment_index} has a negative sample index")
            seg_labels = np.asarray(seg_labels)
            pos = np.searchsorted(unit_ids[order], seg_labels) if seg_labels.size else np.zeros(0, dtype=np.int64)
            pos = np.clip(pos, 0, max(unit_ids.size - 1, 0))
            if seg_labels.size and not np.all(unit_ids[order][pos] == seg_labels):
                unknown = seg_labels[unit_ids[order][pos] != seg_labels][0]
                raise KeyError(f"labels: {unknown!r} is not among unit_ids")
            unit_index = order[pos] if seg_labels.size else np.zeros(0, dtype=np.int64)
            pieces.append(_spikes_of_segment([seg_times], [unit_index.astype(np.int64)], segment_index))
        spikes = np.concatenate(pieces) if pieces else np.zeros(0, dtype=SPIKE_VECTOR_DTYPE)
        return NumpySorting(spikes, sampling_frequency, unit_ids, num_segments=max(len(pieces), 1))

    @staticmethod
    def from_samples_and_labels(samples_list, labels_list, sampling_frequency: float, unit_ids=None) -> "NumpySorting":
        """SpikeInterface spelling of ``from_times_labels`` (sample indices)."""
        return NumpySorting.from_times_labels(samples_list, labels_list, sampling_frequency, unit_ids=unit_ids)

    @staticmethod
    def from_times_and_labels(times_list, labels_list, sampling_frequency: float, unit_ids=None) -> "NumpySorting":
        """Like SpikeInterface's ``from_times_and_labels``: spike times in **seconds** (rounded to samples)."""
        times_list, labels_list = _as_segment_lists(times_list, labels_list)
        samples_list = [np.round(np.asarray(t, dtype=np.float64) * sampling_frequency).astype(np.int64)
                        for t in times_list]
        return NumpySorting.from_times_labels(samples_list, labels_list, sampling_frequency, unit_ids=unit_ids)

    @staticmethod
    def from_unit_dict(units_dict_list, sampling_frequency: float) -> "NumpySorting":
        """A sorting from ``{unit_id: spike sample indices}`` (one dict per segment, or one dict)."""
        if isinstance(units_dict_list, dict):
            units_dict_list = [units_dict_list]
        unit_ids = list(units_dict_list[0].keys())
        for i, units_dict in enumerate(units_dict_list):
            if list(units_dict.keys()) != unit_ids:
                raise ValueError(f"units_dict_list[{i}] has unit ids {list(units_dict)}, the first dict {unit_ids}")
        times, labels = [], []
        for units_dict in units_dict_list:
            times.append(np.concatenate([np.asarray(v, dtype=np.int64) for v in units_dict.values()])
                         if units_dict else np.zeros(0, dtype=np.int64))
            labels.append(np.concatenate([np.full(len(v), k) for k, v in units_dict.items()])
                          if units_dict else np.zeros(0))
        return NumpySorting.from_times_labels(times, labels, sampling_frequency, unit_ids=np.asarray(unit_ids))

    @staticmethod
    def from_sorting(source_sorting: BaseSorting, with_metadata: bool = False, copy_spike_vector: bool = False):
        """A NumpySorting holding the spike vector of any sorting."""
        spikes = source_sorting.to_spike_vector()
        if copy_spike_vector:
            spikes = spikes.copy()
        sorting = NumpySorting(spikes, source_sorting.sampling_frequency, source_sorting.unit_ids,
                               num_segments=source_sorting.get_num_segments())
        if with_metadata:
            source_sorting.copy_metadata(sorting)
        if source_sorting.has_recording():
            sorting.register_recording(source_sorting.get_recording(), check_spike_frames=False)
        return sorting


_ATTACH_LOCK = threading.Lock()


def _attach_shared_memory(name: str) -> shared_memory.SharedMemory:
    """Attach to an existing block without registering it with this process's resource tracker.

    Python < 3.13 registers attached blocks too, so a worker exiting would unlink the owner's block.
    """
    with _ATTACH_LOCK:
        original = resource_tracker.register
        resource_tracker.register = lambda *args, **kwargs: None
        try:
            return shared_memory.SharedMemory(name=name, create=False)
        finally:
            resource_tracker.register = original


class SharedMemorySorting(_SpikeVectorSorting):
    """A sorting whose spike vector lives in OS shared memory.

    Sending it to a worker process (pickling) sends only the block's name; the worker attaches
    to the same memory without copying the spikes. The creating object owns the block and
    frees it when garbage collected.

    Parameters
    ----------
    shm_name : str
        Name of the shared memory block.
    shape : tuple of int
        Shape of the spike vector ``(num_spikes,)``.
    sampling_frequency : float
        Sampling rate in Hz.
    unit_ids : array-like
        Unit ids.
    num_segments : int
        Number of segments.
    main_shm_owner : bool, default: True
        Whether this object frees the block.
    """

    _json_serializable = False

    def __init__(self, shm_name: str, shape, sampling_frequency: float, unit_ids, num_segments: int,
                 main_shm_owner: bool = True, _shm: shared_memory.SharedMemory | None = None):
        BaseSorting.__init__(self, sampling_frequency, unit_ids)
        self._shm = _shm if _shm is not None else _attach_shared_memory(shm_name)
        self._is_owner = bool(main_shm_owner)
        num_spikes = int(tuple(shape)[0])
        self._spikes = np.ndarray((num_spikes,), dtype=SPIKE_VECTOR_DTYPE, buffer=self._shm.buf)
        self._init_from_spikes(self._spikes, num_segments)
        self._kwargs = {"shm_name": shm_name, "shape": [num_spikes], "sampling_frequency": float(sampling_frequency),
                        "unit_ids": self.unit_ids.tolist(), "num_segments": int(num_segments)}

    @staticmethod
    def from_sorting(source_sorting: BaseSorting, with_metadata: bool = False) -> "SharedMemorySorting":
        """Copy any sorting's spike vector into a new shared memory block."""
        spikes = source_sorting.to_spike_vector()
        shm = shared_memory.SharedMemory(create=True, size=max(spikes.nbytes, 1))
        np.ndarray(spikes.shape, dtype=SPIKE_VECTOR_DTYPE, buffer=shm.buf)[:] = spikes
        sorting = SharedMemorySorting(shm.name, spikes.shape, source_sorting.sampling_frequency,
                                      source_sorting.unit_ids, source_sorting.get_num_segments(),
                                      main_shm_owner=True, _shm=shm)
        if with_metadata:
            source_sorting.copy_metadata(sorting)
        return sorting

    @property
    def shm_name(self) -> str:
        return self._shm.name

    def __reduce_ex__(self, protocol):
        metadata = {"annotations": self._annotations, "properties": self._properties}
        return (_attach_shared_memory_sorting, (dict(self._kwargs), metadata))

    def __del__(self):
        shm = getattr(self, "_shm", None)
        if shm is None:
            return
        self._spikes = None
        self._cached_spike_vector = None
        self._cached_spike_trains = {}
        try:
            shm.close()
        except BufferError:
            # a caller still holds an array on the block; the OS frees it when the last user exits
            pass
        if getattr(self, "_is_owner", False):
            try:
                shm.unlink()
            except FileNotFoundError:
                pass


def _attach_shared_memory_sorting(kwargs: dict, metadata: dict) -> SharedMemorySorting:
    sorting = SharedMemorySorting(main_shm_owner=False, **kwargs)
    sorting._annotations.update(metadata["annotations"])
    sorting._properties.update(metadata["properties"])
    return sorting


def _checked_spike_vector(spikes, num_units: int) -> np.ndarray:
    spikes = np.asarray(spikes)
    if spikes.dtype.names is None or any(n not in spikes.dtype.names for n in SPIKE_VECTOR_DTYPE.names):
        raise ValueError(f"spikes must be a structured array with fields {SPIKE_VECTOR_DTYPE.names}")
    if spikes.dtype != SPIKE_VECTOR_DTYPE:
        converted = np.empty(spikes.size, dtype=SPIKE_VECTOR_DTYPE)
        for name in SPIKE_VECTOR_DTYPE.names:
            converted[name] = spikes[name]
        spikes = converted
    if spikes.size:
        if spikes["unit_index"].min() < 0 or spikes["unit_index"].max() >= num_units:
            raise ValueError(f"spikes: unit_index must be in [0, {num_units})")
        if spikes["sample_index"].min() < 0 or spikes["segment_index"].min() < 0:
            raise ValueError("spikes: sample_index and segment_index must be >= 0")
        keys = (spikes["unit_index"], spikes["sample_index"], spikes["segment_index"])
        order = np.lexsort(keys)
        if not np.array_equal(order, np.arange(spikes.size)):
            spikes = spikes[order]
    return spikes


def _as_segment_lists(times, labels):
    """Normalise (times, labels) given for one segment or as per-segment lists."""
    if isinstance(times, (list, tuple)) and len(times) > 0 and np.ndim(times[0]) == 1:
        times_list, labels_list = list(times), list(labels)
    else:
        times_list, labels_list = [np.asarray(times)], [np.asarray(labels)]
    if len(times_list) != len(labels_list):
        raise ValueError(f"times has {len(times_list)} segments, labels {len(labels_list)}")
    for i, (t, l) in enumerate(zip(times_list, labels_list)):
        if np.shape(t) != np.shape(l):
            raise ValueError(f"times and labels of segment {i} differ in shape: {np.shape(t)} vs {np.shape(l)}")
    return times_list, labels_list
