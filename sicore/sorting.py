"""BaseSorting, its segments, the two spike caches, and the lazy unit/frame views."""

from __future__ import annotations

import numpy as np

from .base import BaseExtractor, resolve_id_selection

# The "spike vector": every spike of every segment, sorted by (segment, sample, unit).
SPIKE_VECTOR_DTYPE = np.dtype([("sample_index", "int64"), ("unit_index", "int64"), ("segment_index", "int64")])


class BaseSortingSegment:
    """One segment of a sorting. Subclasses implement ``get_unit_spike_train``."""

    def get_unit_spike_train(self, unit_id, start_frame: int | None, end_frame: int | None) -> np.ndarray:
        """Sorted int64 sample indices of ``unit_id`` in ``[start_frame, end_frame)`` (None: unbounded)."""
        raise NotImplementedError


class BaseSorting(BaseExtractor):
    """Spike trains of units over one or more segments.

    Two caches make access fast whichever way it goes: per segment a dict of unit spike trains
    (unit-wise access), and the spike vector (chunk-wise access in time), each built from the
    other when missing.

    Parameters
    ----------
    sampling_frequency : float
        Sampling rate in Hz of the spike sample indices.
    unit_ids : array-like
        Unique unit ids.
    """

    def __init__(self, sampling_frequency: float, unit_ids):
        BaseExtractor.__init__(self, unit_ids)
        sampling_frequency = float(sampling_frequency)
        if not np.isfinite(sampling_frequency) or sampling_frequency <= 0:
            raise ValueError(f"sampling_frequency must be a positive number of Hz, got {sampling_frequency}")
        self._sampling_frequency = sampling_frequency
        self._sorting_segments: list[BaseSortingSegment] = []
        self._recording = None
        self._cached_spike_trains: dict[int, dict] = {}
        self._cached_spike_vector: np.ndarray | None = None
        self._cached_segment_slices: np.ndarray | None = None

    def add_sorting_segment(self, sorting_segment: BaseSortingSegment) -> None:
        self._sorting_segments.append(sorting_segment)

    # ------------------------------------------------------------- basics
    @property
    def unit_ids(self) -> np.ndarray:
        return self._main_ids

    def get_unit_ids(self) -> np.ndarray:
        return self._main_ids

    def get_num_units(self) -> int:
        return int(self._main_ids.size)

    @property
    def sampling_frequency(self) -> float:
        return self._sampling_frequency

    def get_sampling_frequency(self) -> float:
        return self._sampling_frequency

    def get_num_segments(self) -> int:
        return len(self._sorting_segments)

    def id_to_index(self, unit_id) -> int:
        return self._main_id_to_index(unit_id, "unit_id")

    def ids_to_indices(self, unit_ids) -> np.ndarray:
        return self._main_ids_to_indices(unit_ids, "unit_ids")


    # ------------------------------------------------------- spike trains
    def get_unit_spike_train(
        self,
        unit_id,
        segment_index: int | None = None,
        start_frame: int | None = None,
        end_frame: int | None = None,
        return_times: bool = False,
        use_cache: bool = True,
    ) -> np.ndarray:
        """Spike train of a unit in one segment.

        Parameters
        ----------
        unit_id : int or str
            The unit.
        segment_index : int or None, default: None
            Required when there are several segments.
        start_frame, end_frame : int or None, default: None
            Keep spikes in ``[start_frame, end_frame)``.
        return_times : bool, default: False
            Return times in seconds: from the registered recording's times when there is one,
            otherwise ``sample_index / sampling_frequency``.
        use_cache : bool, default: True
            Use (and fill) the per-unit cache.

        Returns
        -------
        spike_train : np.ndarray
            int64 sample indices, or float64 seconds with ``return_times``.
        """
        segment_index = self._check_segment_index(segment_index)
        self._main_id_to_index(unit_id, "unit_id")
        unit_id = self._main_ids[self._main_id_to_index(unit_id, "unit_id")].item()
        if use_cache:
            trains = self._cached_spike_trains.get(segment_index)
            if trains is None or unit_id not in trains:
                if self._cached_spike_vector is not None:
                    self._cache_trains_from_spike_vector(segment_index)
                else:
                    full = self._sorting_segments[segment_index].get_unit_spike_train(unit_id, None, None)
                    self._cached_spike_trains.setdefault(segment_index, {})[unit_id] = np.asarray(full, dtype=np.int64)
            spike_frames = self._cached_spike_trains[segment_index][unit_id]
            if start_frame is not None or end_frame is not None:
                lo = 0 if start_frame is None else np.searchsorted(spike_frames, start_frame, side="left")
                hi = spike_frames.size if end_frame is None else np.searchsorted(spike_frames, end_frame, side="left")
                spike_frames = spike_frames[lo:hi]
        else:
            spike_frames = np.asarray(
                self._sorting_segments[segment_index].get_unit_spike_train(unit_id, start_frame, end_frame),
                dtype=np.int64,
            )
        if return_times:
            if self._recording is not None:
                return np.asarray(self._recording.sample_index_to_time(spike_frames, segment_index=segment_index))
            return spike_frames / self._sampling_frequency
        return spike_frames

    def _cache_trains_from_spike_vector(self, segment_index: int) -> None:
        spikes = self.to_spike_vector(concatenated=False)[segment_index]
        order = np.argsort(spikes["unit_index"], kind="stable")
        bounds = np.searchsorted(spikes["unit_index"][order], np.arange(self.get_num_units() + 1))
        samples = spikes["sample_index"][order]
        self._cached_spike_trains[segment_index] = {
            unit_id: samples[bounds[i] : bounds[i + 1]] for i, unit_id in enumerate(self._main_ids.tolist())
        }

    def precompute_spike_trains(self) -> None:
        """Fill the per-unit cache for every segment."""
        for segment_index in range(self.get_num_segments()):
            if self._cached_spike_vector is not None:
                self._cache_trains_from_spike_vector(segment_index)
            else:
                for unit_id in self._main_ids.tolist():
                    self.get_unit_spike_train(unit_id, segment_index=segment_index)

    def get_all_spike_trains(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per segment, ``(sample_indices, unit_ids)`` of all spikes sorted by time."""
        out = []
        for spikes in self.to_spike_vector(concatenated=False):
            out.append((spikes["sample_index"].copy(), self._main_ids[spikes["unit_index"]]))
        return out

    def to_spike_vector(self, concatenated: bool = True, extremum_channel_inds: dict | None = None,
                        use_cache: bool = True):
        """All spikes as a structured array ``sample_index, unit_index, segment_index`` sorted by time.

        Parameters
        ----------
        concatenated : bool, default: True
            One array for all segments (sorted by segment then sample), or a list with one per segment.
        extremum_channel_inds : dict or None, default: None
            ``{unit_id: channel_index}``; adds a ``channel_index`` field.
        use_cache : bool, default: True
            Use (and fill) the spike vector cache.
        """
        if use_cache and self._cached_spike_vector is not None:
            spikes = self._cached_spike_vector
        else:
            spikes = self._compute_spike_vector()
            if use_cache:
                self._set_spike_vector_cache(spikes)
        slices = self._segment_slices(spikes)
        if extremum_channel_inds is not None:
            channel_of_unit = np.array([extremum_channel_inds[u] for u in self._main_ids.tolist()], dtype=np.int64)
            dtype = np.dtype(SPIKE_VECTOR_DTYPE.descr + [("channel_index", "int64")])
            with_channels = np.empty(spikes.size, dtype=dtype)
            for name in SPIKE_VECTOR_DTYPE.names:
                with_channels[name] = spikes[name]
            with_channels["channel_index"] = channel_of_unit[spikes["unit_index"]]
            spikes = with_channels
        if concatenated:
            return spikes
        return [spikes[slices[i] : slices[i + 1]] for i in range(self.get_num_segments())]

    def _set_spike_vector_cache(self, spikes: np.ndarray) -> None:
        self._cached_spike_vector = spikes
        self._cached_segment_slices = None

    def _segment_slices(self, spikes: np.ndarray) -> np.ndarray:
        if spikes is self._cached_spike_vector and self._cached_segment_slices is not None:
            return self._cached_segment_slices
        slices = np.searchsorted(spikes["segment_index"], np.arange(self.get_num_segments() + 1), side="left")
        if spikes is self._cached_spike_vector:
            self._cached_segment_slices = slices
        return slices

    def _compute_spike_vector(self) -> np.ndarray:
        """Build the spike vector from the unit spike trains (subclasses may do it faster)."""
        pieces = []
        for segment_index in range(self.get_num_segments()):
            samples, units = [], []
            for unit_index, unit_id in enumerate(self._main_ids.tolist()):
                train = self.get_unit_spike_train(unit_id, segment_index=segment_index)
                samples.append(train)
                units.append(np.full(train.size, unit_index, dtype=np.int64))
            pieces.append(_spikes_of_segment(samples, units, segment_index))
        if not pieces:
            return np.zeros(0, dtype=SPIKE_VECTOR_DTYPE)
        return np.concatenate(pieces)

    def count_num_spikes_per_unit(self, outputs: str = "dict"):
        """Number of spikes of each unit over all segments, as ``{unit_id: count}`` or an array."""
        if outputs not in ("dict", "array"):
            raise ValueError(f"outputs must be 'dict' or 'array', got {outputs!r}")
        spikes = self.to_spike_vector()
        counts = np.bincount(spikes["unit_index"], minlength=self.get_num_units()).astype(np.int64)
        if outputs == "array":
            return counts
        return dict(zip(self._main_ids.tolist(), counts.tolist()))

    def count_total_num_spikes(self) -> int:
        return int(self.to_spike_vector().size)

    def get_total_num_spikes(self) -> dict:
        return self.count_num_spikes_per_unit(outputs="dict")

    # --------------------------------------------------------- recording
    def register_recording(self, recording, check_spike_frames: bool = True) -> None:
        """Attach the recording the spikes come from (for times in seconds and segment lengths)."""
        if not np.isclose(recording.sampling_frequency, self._sampling_frequency, rtol=0, atol=1e-6):
            raise ValueError(
                f"recording: sampling_frequency {recording.sampling_frequency} differs from the sorting's "
                f"{self._sampling_frequency}"
            )
        if recording.get_num_segments() != self.get_num_segments():
            raise ValueError(
                f"recording: has {recording.get_num_segments()} segments, the sorting {self.get_num_segments()}"
            )
        if check_spike_frames:
            for segment_index, spikes in enumerate(self.to_spike_vector(concatenated=False)):
                num_samples = recording.get_num_samples(segment_index)
                if spikes.size and spikes["sample_index"].max() >= num_samples:
                    raise ValueError(
                        f"recording: segment {segment_index} has {num_samples} samples but the sorting has a spike "
                        f"at sample {int(spikes['sample_index'].max())}"
                    )
        self._recording = recording

    def has_recording(self) -> bool:
        return self._recording is not None

    def get_recording(self):
        return self._recording

    def has_time_vector(self, segment_index: int | None = None) -> bool:
        segment_index = self._check_segment_index(segment_index)
        return self._recording is not None and self._recording.has_time_vector(segment_index)

    def get_num_samples(self, segment_index: int | None = None) -> int:
        """Segment length, known only through a registered recording."""
        segment_index = self._check_segment_index(segment_index)
        if self._recording is None:
            raise ValueError("the sorting's segment lengths are unknown: register_recording() first")
        return self._recording.get_num_samples(segment_index)

    def get_total_samples(self) -> int:
        return int(sum(self.get_num_samples(i) for i in range(self.get_num_segments())))

    def get_total_duration(self) -> float:
        return self.get_total_samples() / self._sampling_frequency

    # ------------------------------------------------------------- views
    def select_units(self, unit_ids, renamed_unit_ids=None) -> "UnitsSelectionSorting":
        """A lazy view on ``unit_ids`` (in that order), optionally renamed."""
        return UnitsSelectionSorting(self, unit_ids=unit_ids, renamed_unit_ids=renamed_unit_ids)

    def rename_units(self, new_unit_ids) -> "UnitsSelectionSorting":
        return UnitsSelectionSorting(self, unit_ids=self.unit_ids, renamed_unit_ids=new_unit_ids)

    def remove_units(self, remove_unit_ids) -> "UnitsSelectionSorting":
        """A lazy view without ``remove_unit_ids``."""
        remove_indices = self._main_ids_to_indices(remove_unit_ids, "remove_unit_ids")
        keep = np.ones(self.get_num_units(), dtype=bool)
        keep[remove_indices] = False
        return UnitsSelectionSorting(self, unit_ids=self.unit_ids[keep])

    def get_non_empty_unit_ids(self) -> np.ndarray:
        return self.unit_ids[self.count_num_spikes_per_unit(outputs="array") > 0]

    def remove_empty_units(self) -> "UnitsSelectionSorting":
        return self.select_units(self.get_non_empty_unit_ids())

    def frame_slice(self, start_frame: int | None, end_frame: int | None = None,
                    check_spike_frames: bool = True) -> "FrameSliceSorting":
        """A lazy view on spikes in ``[start_frame, end_frame)`` of every segment, re-based to start_frame."""
        return FrameSliceSorting(self, start_frame=start_frame, end_frame=end_frame,
                                 check_spike_frames=check_spike_frames)

    # ----------------------------------------------------- conversions
    def to_numpy_sorting(self, propagate_cache: bool = True):
        """An in-memory NumpySorting with the same spikes and metadata."""
        from .numpy_objects import NumpySorting

        sorting = NumpySorting.from_sorting(self, with_metadata=True)
        if propagate_cache and self._cached_spike_trains:
            sorting._cached_spike_trains = {k: dict(v) for k, v in self._cached_spike_trains.items()}
        return sorting

    def to_shared_memory_sorting(self):
        """A SharedMemorySorting (spikes in OS shared memory, cheap to send to worker processes)."""
        from .numpy_objects import SharedMemorySorting

        return SharedMemorySorting.from_sorting(self, with_metadata=True)

    def save(self, **kwargs):
        """Save the spikes and metadata (npz folder by default, or numpy_folder).

        Keyword arguments are those of ``sicore.io.save_sorting`` (``folder``, ``format``, ``overwrite``, ...,
        and job kwargs for recordings). Returns the saved object, reloaded from disk.
        """
        from .io.save import save_sorting

        return save_sorting(self, **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}: {self.get_num_units()} units - {self.get_num_segments()} segments - "
            f"{self._sampling_frequency / 1000:0.1f}kHz"
        )


def _spikes_of_segment(samples: list, units: list, segment_index: int) -> np.ndarray:
    samples = np.concatenate(samples) if samples else np.zeros(0, dtype=np.int64)
    units = np.concatenate(units) if units else np.zeros(0, dtype=np.int64)
    order = np.lexsort((units, samples))
    spikes = np.empty(samples.size, dtype=SPIKE_VECTOR_DTYPE)
    spikes["sample_index"] = samples[order]
    spikes["unit_index"] = units[order]
    spikes["segment_index"] = segment_index
    return spikes


class UnitsSelectionSorting(BaseSorting):
    """Lazy view of some units of a sorting (optionally renamed); copies no spikes.

    Parameters
    ----------
    parent_sorting : BaseSorting
        The sorting viewed.
    unit_ids : array-like or None, default: None
        Parent unit ids to keep, in the order given (None: all).
    renamed_unit_ids : array-like or None, default: None
        New ids for the kept units.
    """

    def __init__(self, parent_sorting: BaseSorting, unit_ids=None, renamed_unit_ids=None):
        unit_ids, parent_indices, new_ids = resolve_id_selection(parent_sorting, unit_ids, renamed_unit_ids, "unit")
        BaseSorting.__init__(self, parent_sorting.sampling_frequency, new_ids)
        self._parent = parent_sorting
        self._parent_unit_indices = parent_indices
        parent_ids = parent_sorting.unit_ids[parent_indices]
        id_map = dict(zip(self._main_ids.tolist(), parent_ids.tolist()))
        for segment_index in range(parent_sorting.get_num_segments()):
            self.add_sorting_segment(UnitsSelectionSortingSegment(parent_sorting, segment_index, id_map))
        parent_sorting.copy_metadata(self, ids=unit_ids)
        if parent_sorting.has_recording():
            self.register_recording(parent_sorting.get_recording(), check_spike_frames=False)
        self._kwargs = {
            "parent_sorting": parent_sorting,
            "unit_ids": unit_ids.tolist(),
            "renamed_unit_ids": None if renamed_unit_ids is None else new_ids.tolist(),
        }

    def _compute_spike_vector(self) -> np.ndarray:
        # Filter the parent's spike vector (already time-sorted) and re-index the units.
        parent_spikes = self._parent.to_spike_vector()
        new_index = np.full(self._parent.get_num_units(), -1, dtype=np.int64)
        new_index[self._parent_unit_indices] = np.arange(self._parent_unit_indices.size)
        mapped = new_index[parent_spikes["unit_index"]]
        spikes = parent_spikes[mapped >= 0].copy()
        spikes["unit_index"] = mapped[mapped >= 0]
        # ties at the same sample stay ordered by unit index
        order = np.lexsort((spikes["unit_index"], spikes["sample_index"], spikes["segment_index"]))
        return spikes[order]


class UnitsSelectionSortingSegment(BaseSortingSegment):
    def __init__(self, parent_sorting: BaseSorting, segment_index: int, id_map: dict):
        self._parent_sorting = parent_sorting
        self._segment_index = segment_index
        self._id_map = id_map

    def get_unit_spike_train(self, unit_id, start_frame, end_frame):
        return self._parent_sorting.get_unit_spike_train(
            self._id_map[unit_id], segment_index=self._segment_index, start_frame=start_frame, end_frame=end_frame
        )


class FrameSliceSorting(BaseSorting):
    """Lazy view of the spikes in ``[start_frame, end_frame)`` of every segment, re-based to ``start_frame``.

    Parameters
    ----------
    parent_sorting : BaseSorting
        The sorting viewed.
    start_frame : int or None, default: None
        First frame kept (None: 0).
    end_frame : int or None, default: None
        End frame, excluded. None: the registered recording's segment end, or after the last spike.
    check_spike_frames : bool, default: True
        Check the range against the registered recording's segment lengths.
    """

    def __init__(self, parent_sorting: BaseSorting, start_frame: int | None = None, end_frame: int | None = None,
                 check_spike_frames: bool = True):
        BaseSorting.__init__(self, parent_sorting.sampling_frequency, parent_sorting.unit_ids)
        self._parent = parent_sorting
        start = 0 if start_frame is None else _as_frame(start_frame, "start_frame")
        end_requested = None if end_frame is None else _as_frame(end_frame, "end_frame")
        if start < 0:
            raise ValueError(f"start_frame must be >= 0, got {start}")
        parent_spikes = parent_sorting.to_spike_vector(concatenated=False)
        self._ranges = []
        for segment_index in range(parent_sorting.get_num_segments()):
            try:
                num_samples = parent_sorting.get_num_samples(segment_index)
                known_length = True
            except ValueError:  # no registered recording nor explicit lengths: end after the last spike
                spikes = parent_spikes[segment_index]
                num_samples = int(spikes["sample_index"].max()) + 1 if spikes.size else 0
                known_length = False
            end = num_samples if end_requested is None else end_requested
            if check_spike_frames and known_length and end > num_samples:
                raise ValueError(f"end_frame {end} is beyond the {num_samples} samples of segment {segment_index}")
            if end < start:
                raise ValueError(f"end_frame {end} is before start_frame {start}")
            self._ranges.append((start, end))
            self.add_sorting_segment(FrameSliceSortingSegment(parent_sorting, segment_index, start, end))
        parent_sorting.copy_metadata(self)
        if parent_sorting.has_recording():
            recording = parent_sorting.get_recording().frame_slice(start_frame=start, end_frame=end_frame)
            self.register_recording(recording, check_spike_frames=False)
        self._kwargs = {
            "parent_sorting": parent_sorting,
            "start_frame": None if start_frame is None else start,
            "end_frame": end_requested,
            "check_spike_frames": check_spike_frames,
        }

    def _compute_spike_vector(self) -> np.ndarray:
        pieces = []
        for segment_index, spikes in enumerate(self._parent.to_spike_vector(concatenated=False)):
            start, end = self._ranges[segment_index]
            lo, hi = np.searchsorted(spikes["sample_index"], [start, end], side="left")
            piece = spikes[lo:hi].copy()
            piece["sample_index"] -= start
            pieces.append(piece)
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=SPIKE_VECTOR_DTYPE)


class FrameSliceSortingSegment(BaseSortingSegment):
    def __init__(self, parent_sorting: BaseSorting, segment_index: int, start: int, end: int):
        self._parent_sorting = parent_sorting
        self._segment_index = segment_index
        self._start = start
        self._end = end

    def get_unit_spike_train(self, unit_id, start_frame, end_frame):
        lo = self._start if start_frame is None else min(self._start + start_frame, self._end)
        hi = self._end if end_frame is None else min(self._start + end_frame, self._end)
        train = self._parent_sorting.get_unit_spike_train(
            unit_id, segment_index=self._segment_index, start_frame=lo, end_frame=hi
        )
        return train - self._start


def _as_frame(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        raise ValueError(f"{name} must be an integer sample index, got {value!r}")
    return int(value)
