"""InjectTemplatesRecording: templates added lazily at a sorting's spike times, on top of a parent recording.

For a chunk ``[start, end)``, the spikes whose template overlaps it are found by ``searchsorted`` on
the spike vector and their template pieces are added in spike-vector order. Each sample therefore
gets the same additions in the same order whatever the chunking, so any read equals the matching
part of a full read, bit for bit.
"""

from __future__ import annotations

import numpy as np

from .numpy_objects import NumpySorting
from .recording import BaseRecording, BaseRecordingSegment
from .sorting import SPIKE_VECTOR_DTYPE, BaseSorting

_SPIKE_FIELDS = ("sample_index", "unit_index", "segment_index")


def _sorting_from_compact(spec: dict) -> NumpySorting:
    """Rebuild an in-memory sorting from the compact description stored in the provenance."""
    missing = [k for k in ("sampling_frequency", "unit_ids", "num_segments", *_SPIKE_FIELDS) if k not in spec]
    if missing:
        raise ValueError(f"sorting: a sorting given as a dict needs the keys {missing}")
    sizes = {len(spec[field]) for field in _SPIKE_FIELDS}
    if len(sizes) != 1:
        raise ValueError("sorting: sample_index, unit_index and segment_index must have the same length")
    spikes = np.empty(sizes.pop(), dtype=SPIKE_VECTOR_DTYPE)
    for field in _SPIKE_FIELDS:
        spikes[field] = np.asarray(spec[field], dtype=np.int64)
    return NumpySorting(spikes, spec["sampling_frequency"], np.asarray(spec["unit_ids"]),
                        num_segments=int(spec["num_segments"]))


def _compact_sorting(sorting: BaseSorting) -> dict:
    """The spikes of an in-memory sorting as plain arrays (turned into JSON lists by ``to_dict``)."""
    spikes = sorting.to_spike_vector()
    spec = {"sampling_frequency": float(sorting.sampling_frequency), "unit_ids": sorting.unit_ids.tolist(),
            "num_segments": sorting.get_num_segments()}
    for field in _SPIKE_FIELDS:
        spec[field] = spikes[field]
    return spec


class InjectTemplatesRecording(BaseRecording):
    """A lazy recording: ``parent_recording`` (or zeros) plus a template at every spike of ``sorting``.

    A spike of unit ``u`` at sample ``t`` adds ``amplitude_factor * templates[u]`` on samples
    ``t - nbefore[u] .. t - nbefore[u] + num_samples_template - 1`` (the part inside the segment).

    Parameters
    ----------
    sorting : BaseSorting or dict
        The spikes. An in-memory sorting (NumpySorting, ...) is kept in the provenance as its spike
        vector (``{"sampling_frequency", "unit_ids", "num_segments", "sample_index", "unit_index",
        "segment_index"}``), which is also accepted here; a JSON-serialisable sorting is kept as itself.
    templates : array-like
        (num_units, num_samples, num_channels), or (num_units, num_samples, num_channels, upsample_factor)
        with ``upsample_vector`` choosing the sub-sample version of each spike.
    nbefore : int or list of int or None, default: None
        Samples before the spike time in each template (one value or one per unit). None: the sample
        of each template's largest absolute value.
    amplitude_factor : float or array-like or None, default: None
        Scale of each spike: one number, or one per spike of ``sorting.to_spike_vector()``. None: 1.
    parent_recording : BaseRecording or None, default: None
        The recording to add the templates to (channels, segments, times and metadata come from it).
        None: zeros.
    num_samples : int or list of int or None, default: None
        Samples per segment; required without ``parent_recording``.
    upsample_vector : array-like or None, default: None
        With 4-d templates, the index in ``[0, upsample_factor)`` of each spike's template.
    check_borders : bool, default: False
        Require templates to be (close to) zero on their first and last sample.
    dtype : str or numpy dtype or None, default: None
        Traces dtype (default: the parent's, else the templates'); templates are added in this dtype
        (in float32 for integer dtypes, then rounded).
    """

    def __init__(self, sorting, templates, nbefore=None, amplitude_factor=None, parent_recording=None,
                 num_samples=None, upsample_vector=None, check_borders: bool = False, dtype=None):
        if isinstance(sorting, dict):
            sorting_kwarg = sorting
            sorting = _sorting_from_compact(sorting)
        elif isinstance(sorting, BaseSorting):
            sorting_kwarg = sorting if sorting.is_json_serializable() else _compact_sorting(sorting)
        else:
            raise ValueError(f"sorting must be a BaseSorting (or its compact dict), got {type(sorting).__name__}")
        num_segments = sorting.get_num_segments()

        if parent_recording is not None and not isinstance(parent_recording, BaseRecording):
            raise ValueError(f"parent_recording must be a BaseRecording or None, got {type(parent_recording).__name__}")
        if dtype is None:
            dtype = parent_recording.get_dtype() if parent_recording is not None else np.asarray(templates).dtype
        dtype = np.dtype(dtype)
        if dtype.kind not in "fiu":
            raise ValueError(f"dtype must be a float or integer dtype, got {dtype}")
        compute_dtype = dtype if dtype.kind == "f" else np.dtype("float32")

        templates = np.asarray(templates, dtype=compute_dtype)
        if templates.ndim not in (3, 4):
            raise ValueError(
                "templates must be (num_units, num_samples, num_channels) or "
                f"(num_units, num_samples, num_channels, upsample_factor), got shape {templates.shape}"
            )
        num_units, template_len, num_channels = templates.shape[:3]
        if num_units != sorting.get_num_units():
            raise ValueError(f"templates has {num_units} units, the sorting {sorting.get_num_units()}")
        if template_len == 0:
            raise ValueError("templates must have at least one sample")

        if parent_recording is not None:
            if parent_recording.get_num_channels() != num_channels:
                raise ValueError(f"templates has {num_channels} channels, parent_recording "
                                 f"{parent_recording.get_num_channels()}")
            if parent_recording.get_num_segments() != num_segments:
                raise ValueError(f"parent_recording has {parent_recording.get_num_segments()} segments, the sorting "
                                 f"{num_segments}")
            if not np.isclose(parent_recording.sampling_frequency, sorting.sampling_frequency, rtol=0, atol=1e-6):
                raise ValueError(f"parent_recording samples at {parent_recording.sampling_frequency} Hz, the sorting "
                                 f"at {sorting.sampling_frequency} Hz")
            parent_num_samples = [parent_recording.get_num_samples(i) for i in range(num_segments)]
            if num_samples is not None and list(np.atleast_1d(num_samples)) != parent_num_samples:
                raise ValueError(f"num_samples {num_samples} disagrees with parent_recording's {parent_num_samples}")
            num_samples = parent_num_samples
        else:
            if num_samples is None:
                raise ValueError("num_samples (samples per segment) is required when parent_recording is None")
            num_samples = [int(n) for n in np.atleast_1d(num_samples)]
            if len(num_samples) != num_segments:
                raise ValueError(f"num_samples has {len(num_samples)} values, the sorting {num_segments} segments")
            if any(n < 1 for n in num_samples):
                raise ValueError(f"num_samples must be positive, got {num_samples}")

        if nbefore is None:
            reference = templates[..., 0] if templates.ndim == 4 else templates
            nbefore = np.argmax(np.max(np.abs(reference), axis=2), axis=1)
        nbefore = np.asarray(nbefore, dtype=np.int64)
        if nbefore.ndim == 0:
            nbefore = np.full(num_units, int(nbefore), dtype=np.int64)
        if nbefore.shape != (num_units,):
            raise ValueError(f"nbefore must be an int or one value per unit ({num_units}), got shape {nbefore.shape}")
        if np.any(nbefore < 0) or np.any(nbefore >= template_len):
            raise ValueError(f"nbefore must be in [0, {template_len}) (the template length), got {nbefore.tolist()}")

        if check_borders and num_units > 0:
            peak = np.abs(templates).max()
            borders = np.abs(templates[:, [0, -1]]).max()
            if peak > 0 and borders > 1e-3 * peak:
                raise ValueError(f"check_borders: templates reach {borders:.3g} on their first or last sample "
                                 f"(peak {peak:.3g}); pad them with zeros")

        spikes = sorting.to_spike_vector()
        for segment_index, n in enumerate(num_samples):
            seg = spikes["sample_index"][spikes["segment_index"] == segment_index]
            if seg.size and seg.max() >= n:
                raise ValueError(f"sorting: segment {segment_index} has a spike at sample {int(seg.max())} but the "
                                 f"recording has {n} samples")

        if amplitude_factor is not None:
            amplitude_factor = np.asarray(amplitude_factor, dtype=compute_dtype)
            if amplitude_factor.ndim == 0:
                amplitude_factor = np.full(spikes.size, amplitude_factor, dtype=compute_dtype)
            if amplitude_factor.shape != (spikes.size,):
                raise ValueError(f"amplitude_factor must be a number or one value per spike ({spikes.size}), "
                                 f"got shape {amplitude_factor.shape}")
        if templates.ndim == 4:
            if upsample_vector is None:
                raise ValueError("templates are 4-d (upsampled): give upsample_vector, one index per spike")
            upsample_vector = np.asarray(upsample_vector, dtype=np.int64)
            if upsample_vector.shape != (spikes.size,):
                raise ValueError(f"upsample_vector must have one value per spike ({spikes.size}), "
                                 f"got shape {upsample_vector.shape}")
            if spikes.size and (upsample_vector.min() < 0 or upsample_vector.max() >= templates.shape[3]):
                raise ValueError(f"upsample_vector values must be in [0, {templates.shape[3]})")
        elif upsample_vector is not None:
            raise ValueError("upsample_vector is only for 4-d (upsampled) templates")

        if parent_recording is not None:
            channel_ids = parent_recording.channel_ids
        else:
            channel_ids = np.arange(num_channels).astype(str)
        BaseRecording.__init__(self, sorting.sampling_frequency, channel_ids, dtype)
        bounds = np.searchsorted(spikes["segment_index"], np.arange(num_segments + 1), side="left")
        for segment_index in range(num_segments):
            lo, hi = int(bounds[segment_index]), int(bounds[segment_index + 1])
            parent_segment = None if parent_recording is None else parent_recording._recording_segments[segment_index]
            self.add_recording_segment(InjectTemplatesRecordingSegment(
                sorting.sampling_frequency, num_samples[segment_index], parent_segment, spikes[lo:hi],
                None if amplitude_factor is None else amplitude_factor[lo:hi],
                None if upsample_vector is None else upsample_vector[lo:hi],
                templates, nbefore, dtype, compute_dtype,
            ))
        if parent_recording is not None:
            parent_recording.copy_metadata(self)

        self.sorting = sorting
        self.templates = templates
        self.nbefore = nbefore
        self.amplitude_factor = amplitude_factor
        self.upsample_vector = upsample_vector
        self.parent_recording = parent_recording
        self._kwargs = {
            "sorting": sorting_kwarg,
            "templates": templates,
            "nbefore": nbefore.tolist(),
            "amplitude_factor": amplitude_factor,
            "parent_recording": parent_recording,
            "num_samples": [int(n) for n in num_samples],
            "upsample_vector": upsample_vector,
            "check_borders": bool(check_borders),
            "dtype": dtype.name,
        }


class InjectTemplatesRecordingSegment(BaseRecordingSegment):
    returns_fresh_traces = True

    def __init__(self, sampling_frequency, num_samples, parent_segment, spikes, amplitude_factor, upsample_vector,
                 templates, nbefore, dtype, compute_dtype):
        times = {} if parent_segment is None else parent_segment.times_kwargs()
        BaseRecordingSegment.__init__(self, sampling_frequency, **times)
        self.num_samples = int(num_samples)
        self.parent_segment = parent_segment
        self.spike_samples = np.ascontiguousarray(spikes["sample_index"])
        self.spike_units = np.ascontiguousarray(spikes["unit_index"])
        self.amplitude_factor = amplitude_factor
        self.upsample_vector = upsample_vector
        self.templates = templates
        self.nbefore = nbefore
        self.dtype = dtype
        self.compute_dtype = compute_dtype
        self.template_len = templates.shape[1]
        self.num_channels = templates.shape[2]
        self._nbefore_min = int(nbefore.min()) if nbefore.size else 0
        self._nbefore_max = int(nbefore.max()) if nbefore.size else 0

    def get_num_samples(self) -> int:
        return self.num_samples

    def get_traces(self, start_frame, end_frame, channel_indices):
        start_frame = 0 if start_frame is None else int(start_frame)
        end_frame = self.num_samples if end_frame is None else int(end_frame)
        if isinstance(channel_indices, (int, np.integer)):
            channel_indices = [int(channel_indices)]
        all_channels = isinstance(channel_indices, slice) and channel_indices == slice(None)
        num_frames = end_frame - start_frame

        if self.parent_segment is None:
            num_out = self.num_channels if all_channels else np.arange(self.num_channels)[channel_indices].size
            traces = np.zeros((num_frames, num_out), dtype=self.compute_dtype)
        else:
            parent = self.parent_segment.get_traces(start_frame, end_frame, channel_indices)
            fresh = getattr(self.parent_segment, "returns_fresh_traces", False) and parent.dtype == self.compute_dtype
            # a parent may return a view of its own data: never add in place into it
            traces = parent if fresh else np.array(parent, dtype=self.compute_dtype, copy=True)

        # spike t covers [t - nbefore[u], t - nbefore[u] + template_len): candidates by a bound on nbefore
        samples = self.spike_samples
        lo = np.searchsorted(samples, start_frame - self.template_len + self._nbefore_min, side="right")
        hi = np.searchsorted(samples, end_frame + self._nbefore_max, side="left")
        if hi > lo and num_frames > 0:
            templates = self.templates if all_channels else self.templates[:, :, channel_indices]
            units = self.spike_units[lo:hi]
            offsets = (samples[lo:hi] - self.nbefore[units] - start_frame).tolist()
            units = units.tolist()
            factors = None if self.amplitude_factor is None else self.amplitude_factor[lo:hi]
            jitters = None if self.upsample_vector is None else self.upsample_vector[lo:hi].tolist()
            length = self.template_len
            for i, (unit, offset) in enumerate(zip(units, offsets)):
                first = max(0, -offset)
                last = min(length, num_frames - offset)
                if first >= last:
                    continue
                if jitters is None:
                    piece = templates[unit, first:last]
                else:
                    piece = templates[unit, first:last, :, jitters[i]]
                if factors is not None:
                    piece = piece * factors[i]
                traces[offset + first:offset + last] += piece

        if self.dtype != self.compute_dtype:
            info = np.iinfo(self.dtype)
            traces = np.clip(np.round(traces), info.min, info.max).astype(self.dtype)
        return traces


def inject_templates(*args, **kwargs) -> InjectTemplatesRecording:
    """Function form of :class:`InjectTemplatesRecording` (same parameters)."""
    return InjectTemplatesRecording(*args, **kwargs)
