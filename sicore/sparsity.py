"""Channel sparsity: which channels represent each unit, and the ways to compute it.

``ChannelSparsity`` holds a boolean ``(num_units, num_channels)`` mask. ``compute_sparsity`` builds one
from a ``Templates`` or a SortingAnalyzer; ``estimate_sparsity`` builds one from a sorting and a
recording by estimating the templates in one chunked, parallel pass over the recording.

Method names: "radius", "best_channels", "closest_channels", "snr" (the spec's "threshold"),
"amplitude", "energy" (analyzer with waveforms only) and "by_property".
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

__all__ = ["ChannelSparsity", "compute_sparsity", "estimate_sparsity"]

_COMPUTE_METHODS = ("radius", "best_channels", "closest_channels", "snr", "amplitude", "energy", "by_property")
_ESTIMATE_METHODS = ("radius", "best_channels", "closest_channels", "snr", "amplitude", "by_property")
# The spec calls the SNR method "threshold".
_METHOD_ALIASES = {"threshold": "snr"}

# With n_jobs > 1 the chunks holding spikes are grouped into this many slices per worker (a few slices
# balance the load; each worker adds all its slices into its own shared-memory accumulator, so no
# (units, samples, channels) array travels between processes).
_SLICES_PER_WORKER = 2
_CHUNK_KEYS = ("chunk_size", "chunk_memory", "total_memory", "chunk_duration")


class ChannelSparsity:
    """Channel sparsity of a set of units: for each unit, the channels its waveforms are kept on.

    Parameters
    ----------
    mask : np.ndarray
        Boolean ``(num_units, num_channels)``; ``mask[u, c]`` is True when channel ``c`` represents unit ``u``.
    unit_ids : array-like
        Unit ids (one per row of ``mask``).
    channel_ids : array-like
        Channel ids (one per column of ``mask``).

    Examples
    --------
    >>> sparsity = ChannelSparsity(mask, unit_ids, channel_ids)
    >>> sparsity = ChannelSparsity.from_unit_id_to_channel_ids({"u0": ["ch1", "ch2"]}, unit_ids, channel_ids)
    >>> sparsity = ChannelSparsity.from_radius(templates_or_analyzer, radius_um=50, peak_sign="neg")
    """

    def __init__(self, mask, unit_ids, channel_ids):
        self.unit_ids = np.asarray(unit_ids)
        self.channel_ids = np.asarray(channel_ids)
        if self.unit_ids.ndim != 1 or self.channel_ids.ndim != 1:
            raise ValueError("unit_ids and channel_ids must be 1-d")
        mask = np.asarray(mask)
        if mask.dtype != bool:
            if mask.size and not np.isin(mask, (0, 1)).all():
                raise ValueError("mask must be boolean (or 0/1)")
            mask = mask.astype(bool)
        if mask.shape != (self.unit_ids.size, self.channel_ids.size):
            raise ValueError(
                f"mask must have shape (num_units={self.unit_ids.size}, num_channels={self.channel_ids.size}), "
                f"got {mask.shape}"
            )
        self.mask = mask
        self.num_units = int(self.unit_ids.size)
        self.num_channels = int(self.channel_ids.size)
        self.max_num_active_channels = int(mask.sum(axis=1).max()) if self.num_units else 0
        self._unit_id_to_channel_ids = None
        self._unit_id_to_channel_indices = None
        self._unit_lookup = None

    # ------------------------------------------------------------- basics
    def __repr__(self) -> str:
        density = float(np.mean(self.mask)) if self.mask.size else 0.0
        return (
            f"ChannelSparsity - units: {self.num_units} - channels: {self.num_channels} - "
            f"density, P(x=1): {density:0.2f}"
        )

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, ChannelSparsity)
            and np.array_equal(self.unit_ids, other.unit_ids)
            and np.array_equal(self.channel_ids, other.channel_ids)
            and np.array_equal(self.mask, other.mask)
        )

    __hash__ = None

    @property
    def unit_id_to_channel_ids(self) -> dict:
        """``{unit_id: array of the unit's channel ids}`` (in channel order)."""
        if self._unit_id_to_channel_ids is None:
            self._unit_id_to_channel_ids = {
                unit_id: self.channel_ids[self.mask[i]] for i, unit_id in enumerate(self.unit_ids)
            }
        return self._unit_id_to_channel_ids

    @property
    def unit_id_to_channel_indices(self) -> dict:
        """``{unit_id: array of the unit's channel indices}`` (ascending), to slice arrays."""
        if self._unit_id_to_channel_indices is None:
            self._unit_id_to_channel_indices = {
                unit_id: np.flatnonzero(self.mask[i]) for i, unit_id in enumerate(self.unit_ids)
            }
        return self._unit_id_to_channel_indices

    def _unit_index(self, unit_id) -> int:
        if self._unit_lookup is None:
            self._unit_lookup = {k: i for i, k in enumerate(self.unit_ids.tolist())}
        key = unit_id.item() if isinstance(unit_id, np.generic) else unit_id
        if key not in self._unit_lookup:
            raise KeyError(f"unit_id {unit_id!r} is not among the unit ids of this sparsity ({self.unit_ids.tolist()})")
        return self._unit_lookup[key]

    # ------------------------------------------------------- waveforms
    def sparsify_waveforms(self, waveforms: np.ndarray, unit_id) -> np.ndarray:
        """Keep only ``unit_id``'s channels of dense waveforms.

        Parameters
        ----------
        waveforms : np.ndarray
            Dense ``(num_waveforms, num_samples, num_channels)`` or one template ``(num_samples, num_channels)``.
        unit_id : int or str
            The unit whose channels are kept.

        Returns
        -------
        sparse_waveforms : np.ndarray
            Same leading shape with ``num_active_channels`` channels.
        """
        waveforms = np.asarray(waveforms)
        if waveforms.shape[-1] != self.num_channels:
            raise ValueError(
                f"waveforms must be dense (last axis of {self.num_channels} channels), got shape {waveforms.shape}"
            )
        return waveforms[..., self.mask[self._unit_index(unit_id)]]

    def densify_waveforms(self, waveforms: np.ndarray, unit_id) -> np.ndarray:
        """Put ``unit_id``'s sparse waveforms back on all channels (zeros elsewhere).

        Parameters
        ----------
        waveforms : np.ndarray
            ``(..., num_active_channels)``; a wider last axis is accepted when the extra channels are all
            zero (zero-padded sparse storage).
        unit_id : int or str
            The unit the waveforms belong to.

        Returns
        -------
        dense_waveforms : np.ndarray
            ``(..., num_channels)``.
        """
        waveforms = np.asarray(waveforms)
        channel_mask = self.mask[self._unit_index(unit_id)]
        num_active = int(channel_mask.sum())
        if not self.are_waveforms_sparse(waveforms, unit_id):
            raise ValueError(
                f"waveforms are not sparse for unit {unit_id!r}: expected a last axis of {num_active} active channels "
                f"(or zeros beyond them), got shape {waveforms.shape}"
            )
        dense = np.zeros(waveforms.shape[:-1] + (self.num_channels,), dtype=waveforms.dtype)
        dense[..., channel_mask] = waveforms[..., :num_active]
        return dense

    def are_waveforms_dense(self, waveforms: np.ndarray) -> bool:
        return np.asarray(waveforms).shape[-1] == self.num_channels

    def are_waveforms_sparse(self, waveforms: np.ndarray, unit_id) -> bool:
        """True when ``waveforms`` has at least the unit's active channels and only zeros beyond them."""
        waveforms = np.asarray(waveforms)
        num_active = int(self.mask[self._unit_index(unit_id)].sum())
        if waveforms.shape[-1] < num_active:
            return False
        return not np.any(waveforms[..., num_active:])

    def sparsify_templates(self, templates_array: np.ndarray) -> np.ndarray:
        """Dense ``(num_units, num_samples, num_channels)`` -> ``(num_units, num_samples, max_num_active_channels)``,
        each unit's channels first, zero-padded."""
        templates_array = np.asarray(templates_array)
        if templates_array.ndim != 3 or templates_array.shape[0] != self.num_units \
                or templates_array.shape[2] != self.num_channels:
            raise ValueError(
                f"templates_array must be (num_units={self.num_units}, num_samples, num_channels={self.num_channels}), "
                f"got {templates_array.shape}"
            )
        sparse = np.zeros(templates_array.shape[:2] + (self.max_num_active_channels,), dtype=templates_array.dtype)
        for unit_index in range(self.num_units):
            channels = np.flatnonzero(self.mask[unit_index])
            sparse[unit_index, :, : channels.size] = templates_array[unit_index][:, channels]
        return sparse

    def densify_templates(self, templates_array: np.ndarray) -> np.ndarray:
        """Sparse ``(num_units, num_samples, >= max active)`` -> dense ``(num_units, num_samples, num_channels)``."""
        templates_array = np.asarray(templates_array)
        if templates_array.ndim != 3 or templates_array.shape[0] != self.num_units:
            raise ValueError(
                f"templates_array must be (num_units={self.num_units}, num_samples, channels), got {templates_array.shape}"
            )
        dense = np.zeros(templates_array.shape[:2] + (self.num_channels,), dtype=templates_array.dtype)
        for unit_index, unit_id in enumerate(self.unit_ids):
            dense[unit_index] = self.densify_waveforms(templates_array[unit_index], unit_id)
        return dense

    # ------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict:
        """JSON-friendly dict (plain Python values) that ``from_dict`` rebuilds."""
        return {
            "unit_id_to_channel_ids": {
                unit_id: self.channel_ids[self.mask[i]].tolist() for i, unit_id in enumerate(self.unit_ids.tolist())
            },
            "channel_ids": self.channel_ids.tolist(),
            "unit_ids": self.unit_ids.tolist(),
        }

    @classmethod
    def from_dict(cls, dictionary: dict) -> "ChannelSparsity":
        """Rebuild from ``to_dict()`` output, also after a JSON round trip (unit id keys as strings)."""
        missing = [k for k in ("unit_id_to_channel_ids", "channel_ids", "unit_ids") if k not in dictionary]
        if missing:
            raise ValueError(f"dictionary: missing keys {missing}")
        mapping = dictionary["unit_id_to_channel_ids"]
        corrected = {}
        for unit_id in dictionary["unit_ids"]:
            if unit_id in mapping:
                corrected[unit_id] = mapping[unit_id]
            elif str(unit_id) in mapping:
                corrected[unit_id] = mapping[str(unit_id)]
            else:
                raise ValueError(f"dictionary: unit {unit_id!r} has no entry in unit_id_to_channel_ids")
        return cls.from_unit_id_to_channel_ids(corrected, dictionary["unit_ids"], dictionary["channel_ids"])

    # ------------------------------------------------------- constructors
    @classmethod
    def from_unit_id_to_channel_ids(cls, unit_id_to_channel_ids: dict, unit_ids, channel_ids) -> "ChannelSparsity":
        """Sparsity from ``{unit_id: channel ids}`` (units missing from the dict get no channel)."""
        unit_ids = np.asarray(unit_ids)
        channel_ids = np.asarray(channel_ids)
        unit_lookup = {k: i for i, k in enumerate(unit_ids.tolist())}
        channel_lookup = {k: i for i, k in enumerate(channel_ids.tolist())}
        mask = np.zeros((unit_ids.size, channel_ids.size), dtype=bool)
        for unit_id, chan_ids in unit_id_to_channel_ids.items():
            key = unit_id.item() if isinstance(unit_id, np.generic) else unit_id
            if key not in unit_lookup:
                raise KeyError(f"unit_id_to_channel_ids: unit {unit_id!r} is not among unit_ids {unit_ids.tolist()}")
            chan_ids = np.atleast_1d(np.asarray(chan_ids)).tolist()
            unknown = [c for c in chan_ids if c not in channel_lookup]
            if unknown:
                raise KeyError(
                    f"unit_id_to_channel_ids: channels {unknown} of unit {unit_id!r} are not among channel_ids "
                    f"{channel_ids.tolist()}"
                )
            mask[unit_lookup[key], [channel_lookup[c] for c in chan_ids]] = True
        return cls(mask, unit_ids, channel_ids)

    @classmethod
    def create_dense(cls, sorting_analyzer) -> "ChannelSparsity":
        """Every channel for every unit (of an analyzer, Templates, or anything with unit_ids and channel_ids)."""
        from .template_tools import _unwrap

        obj = _unwrap(sorting_analyzer)
        return cls(np.ones((len(obj.unit_ids), len(obj.channel_ids)), dtype=bool), obj.unit_ids, obj.channel_ids)

    @classmethod
    def from_best_channels(cls, templates_or_sorting_analyzer, num_channels: int, peak_sign: str = "neg",
                           amplitude_mode: str = "extremum") -> "ChannelSparsity":
        """The ``num_channels`` channels where each unit's template amplitude is largest.

        Parameters
        ----------
        templates_or_sorting_analyzer : Templates | SortingAnalyzer
            The templates (an analyzer needs its "templates" extension).
        num_channels : int
            Channels kept per unit (ties: lower channel index first).
        peak_sign : "neg" | "pos" | "both", default: "neg"
            Sign of the peak.
        amplitude_mode : "extremum" | "at_index" | "peak_to_peak", default: "extremum"
            How amplitudes are measured.
        """
        _check_positive_int(num_channels, "num_channels")
        obj, amplitudes, active = _amplitudes_and_active(templates_or_sorting_analyzer, peak_sign, amplitude_mode)
        # Best first; inactive channels (sparse input) last; stable so ties keep channel order.
        order = np.argsort(np.where(active, -amplitudes, np.inf), axis=1, kind="stable")[:, :num_channels]
        mask = np.zeros(amplitudes.shape, dtype=bool)
        np.put_along_axis(mask, order, True, axis=1)
        return cls(mask & active, obj.unit_ids, obj.channel_ids)

    @classmethod
    def from_closest_channels(cls, templates_or_sorting_analyzer, num_channels: int, peak_sign: str = "neg",
                              peak_mode: str = "extremum") -> "ChannelSparsity":
        """The ``num_channels`` channels closest to each unit's extremum channel (itself included)."""
        from .template_tools import _check_peak_sign, _check_mode, _main_channel_indices

        _check_positive_int(num_channels, "num_channels")
        obj = _check_obj(templates_or_sorting_analyzer)
        locations = _channel_locations(obj)
        main = _main_channel_indices(obj, _check_peak_sign(peak_sign), _check_mode(peak_mode, "peak_mode"))
        return cls(_closest_mask(main, locations, num_channels), obj.unit_ids, obj.channel_ids)

    @classmethod
    def from_radius_and_main_channel(cls, unit_ids, channel_ids, main_channel_indices, channel_locations,
                                     radius_um: float) -> "ChannelSparsity":
        """Channels within ``radius_um`` of each unit's given main channel."""
        channel_locations = np.asarray(channel_locations, dtype=np.float64)
        main = np.asarray(main_channel_indices, dtype=np.int64).reshape(-1)
        if main.size != len(unit_ids):
            raise ValueError(f"main_channel_indices must hold one channel index per unit ({len(unit_ids)}), got {main.size}")
        if channel_locations.ndim != 2 or channel_locations.shape[0] != len(channel_ids):
            raise ValueError(
                f"channel_locations must be (num_channels={len(channel_ids)}, ndim), got {channel_locations.shape}"
            )
        if main.size and (main.min() < 0 or main.max() >= len(channel_ids)):
            raise ValueError(f"main_channel_indices must be channel indices in [0, {len(channel_ids)})")
        return cls(_radius_mask(main, channel_locations, radius_um), unit_ids, channel_ids)

    @classmethod
    def from_radius(cls, templates_or_sorting_analyzer, radius_um: float, peak_sign: str = "neg",
                    peak_mode: str = "extremum") -> "ChannelSparsity":
        """Channels within ``radius_um`` (inclusive) of each unit's extremum channel.

        Parameters
        ----------
        templates_or_sorting_analyzer : Templates | SortingAnalyzer
            The templates (an analyzer needs its "templates" extension) and channel locations.
        radius_um : float
            Radius in µm.
        peak_sign : "neg" | "pos" | "both", default: "neg"
            Sign of the peak that defines the extremum channel.
        peak_mode : "extremum" | "at_index" | "peak_to_peak", default: "extremum"
            How amplitudes are measured to find the extremum channel.
        """
        from .template_tools import _check_peak_sign, _check_mode, _main_channel_indices

        obj = _check_obj(templates_or_sorting_analyzer)
        locations = _channel_locations(obj)
        main = _main_channel_indices(obj, _check_peak_sign(peak_sign), _check_mode(peak_mode, "peak_mode"))
        return cls(_radius_mask(main, locations, radius_um), obj.unit_ids, obj.channel_ids)

    @classmethod
    def from_snr(cls, templates_or_sorting_analyzer, threshold: float, noise_levels=None, peak_sign: str = "neg",
                 amplitude_mode: str = "extremum") -> "ChannelSparsity":
        """Channels where ``|amplitude| / noise_level >= threshold``.

        Parameters
        ----------
        templates_or_sorting_analyzer : Templates | SortingAnalyzer
            The templates (an analyzer needs its "templates" extension).
        threshold : float
            SNR threshold, in units of noise level.
        noise_levels : np.ndarray or None, default: None
            Noise level of each channel, in the templates' units. None: an analyzer's "noise_levels" extension.
        peak_sign : "neg" | "pos" | "both", default: "neg"
            Sign of the peak.
        amplitude_mode : "extremum" | "at_index" | "peak_to_peak", default: "extremum"
            How amplitudes are measured.
        """
        from .template_tools import _is_analyzer

        obj = _check_obj(templates_or_sorting_analyzer)
        threshold = _check_threshold(threshold)
        if noise_levels is None and _is_analyzer(obj):
            ext = obj.get_extension("noise_levels")
            if ext is not None:
                noise_levels = ext.get_data()
        if noise_levels is None:
            raise ValueError(
                "method 'snr' needs noise_levels: pass noise_levels=get_noise_levels(recording), or compute the "
                "analyzer's 'noise_levels' extension"
            )
        noise_levels = np.asarray(noise_levels, dtype=np.float64).reshape(-1)
        if noise_levels.size != len(obj.channel_ids):
            raise ValueError(f"noise_levels must hold one value per channel ({len(obj.channel_ids)}), got {noise_levels.size}")
        obj, amplitudes, active = _amplitudes_and_active(obj, peak_sign, amplitude_mode)
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = amplitudes / noise_levels[None, :]
        return cls((snr >= threshold) & active, obj.unit_ids, obj.channel_ids)

    @classmethod
    def from_amplitude(cls, templates_or_sorting_analyzer, threshold: float, amplitude_mode: str = "extremum",
                       peak_sign: str = "neg") -> "ChannelSparsity":
        """Channels where ``|amplitude| >= threshold`` µV (templates must be in µV)."""
        from .template_tools import _is_scaled

        obj = _check_obj(templates_or_sorting_analyzer)
        threshold = _check_threshold(threshold)
        if not _is_scaled(obj):
            raise ValueError("method 'amplitude' needs templates in µV (is_in_uV / return_scaled), these are raw")
        obj, amplitudes, active = _amplitudes_and_active(obj, peak_sign, amplitude_mode)
        return cls((amplitudes >= threshold) & active, obj.unit_ids, obj.channel_ids)

    @classmethod
    def from_energy(cls, sorting_analyzer, threshold: float) -> "ChannelSparsity":
        """Channels whose waveform energy over the noise's expected energy is ``>= threshold``.

        Needs a dense analyzer with the "waveforms" and "noise_levels" extensions: for each unit,
        ``||waveforms[:, :, c]|| / (noise_level[c] * sqrt(num_samples * num_waveforms)) >= threshold``.
        """
        from .template_tools import _is_analyzer, _unwrap

        analyzer = _unwrap(sorting_analyzer)
        if not _is_analyzer(analyzer):
            raise TypeError(f"method 'energy' needs a SortingAnalyzer, got {type(analyzer).__name__}")
        threshold = _check_threshold(threshold)
        if getattr(analyzer, "sparsity", None) is not None:
            raise ValueError("method 'energy' needs a dense SortingAnalyzer (sparse=False)")
        noise_ext = analyzer.get_extension("noise_levels")
        wf_ext = analyzer.get_extension("waveforms")
        if noise_ext is None or wf_ext is None:
            raise ValueError("method 'energy' needs the analyzer's 'waveforms' and 'noise_levels' extensions computed")
        noise = np.asarray(noise_ext.get_data(), dtype=np.float64) * np.sqrt(wf_ext.nbefore + wf_ext.nafter)
        mask = np.zeros((len(analyzer.unit_ids), len(analyzer.channel_ids)), dtype=bool)
        for unit_index, unit_id in enumerate(analyzer.unit_ids):
            waveforms = np.asarray(wf_ext.get_waveforms_one_unit(unit_id, force_dense=True), dtype=np.float64)
            if waveforms.shape[0] == 0:
                continue
            energies = np.sqrt(np.sum(waveforms**2, axis=(0, 1)))
            mask[unit_index] = energies / (noise * np.sqrt(waveforms.shape[0])) >= threshold
        return cls(mask, analyzer.unit_ids, analyzer.channel_ids)

    @classmethod
    def from_property(cls, sorting, recording, by_property: str, main_channel_indices=None) -> "ChannelSparsity":
        """Channels sharing each unit's value of a property (e.g. "group" for tetrodes or shanks).

        Parameters
        ----------
        sorting : BaseSorting
            The sorting; its unit property ``by_property`` gives each unit's value.
        recording : BaseRecording
            The recording; its channel property ``by_property`` gives each channel's value.
        by_property : str
            Property name.
        main_channel_indices : array-like or None, default: None
            When the sorting does not have the property, each unit takes the value of its main channel
            (``compute_sparsity`` and ``estimate_sparsity`` pass the extremum channels).
        """
        if not isinstance(by_property, str):
            raise ValueError(f"by_property must be a property name (str), got {by_property!r}")
        channel_values = recording.get_property(by_property)
        if channel_values is None:
            raise ValueError(
                f"by_property={by_property!r} is not a channel property of the recording "
                f"(its properties: {recording.get_property_keys()})"
            )
        unit_values = sorting.get_property(by_property)
        if unit_values is None:
            if main_channel_indices is None:
                raise ValueError(
                    f"by_property={by_property!r} is not a unit property of the sorting (its properties: "
                    f"{sorting.get_property_keys()}); set it on the sorting, or give main_channel_indices "
                    "(compute_sparsity/estimate_sparsity use each unit's extremum channel)"
                )
            main = np.asarray(main_channel_indices, dtype=np.int64).reshape(-1)
            if main.size != sorting.get_num_units():
                raise ValueError(f"main_channel_indices must hold one index per unit ({sorting.get_num_units()})")
            unit_values = channel_values[main]
        channel_values = np.asarray(channel_values)
        unit_values = np.asarray(unit_values)
        if channel_values.dtype.kind != unit_values.dtype.kind and "U" in (channel_values.dtype.kind,
                                                                            unit_values.dtype.kind):
            # e.g. groups stored as ints on one object and as strings on the other
            channel_values, unit_values = channel_values.astype(str), unit_values.astype(str)
        mask = unit_values[:, None] == channel_values[None, :]
        orphans = np.flatnonzero(~mask.any(axis=1))
        if orphans.size:
            unit_index = int(orphans[0])
            raise ValueError(
                f"by_property={by_property!r}: unit {sorting.unit_ids[unit_index]!r} has value "
                f"{unit_values[unit_index]!r}, which no channel of the recording has "
                f"(channel values: {np.unique(channel_values).tolist()})"
            )
        return cls(mask, sorting.unit_ids, recording.channel_ids)


# ----------------------------------------------------------------------------- helpers
def _check_obj(templates_or_sorting_analyzer):
    from .template_tools import _check_templates_or_analyzer

    return _check_templates_or_analyzer(templates_or_sorting_analyzer)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def _check_radius(radius_um) -> float:
    if isinstance(radius_um, bool) or not isinstance(radius_um, (int, float, np.integer, np.floating)) \
            or not radius_um >= 0:
        raise ValueError(f"radius_um must be a non-negative number of µm, got {radius_um!r}")
    return float(radius_um)


def _channel_locations(obj) -> np.ndarray:
    try:
        locations = obj.get_channel_locations()
    except (ValueError, AssertionError, AttributeError) as err:
        raise ValueError(f"this sparsity method needs channel locations, which are missing: {err}") from None
    return np.asarray(locations, dtype=np.float64)


def _distances(locations: np.ndarray) -> np.ndarray:
    return np.linalg.norm(locations[:, None, :] - locations[None, :, :], axis=2)


def _radius_mask(main_channel_indices: np.ndarray, locations: np.ndarray, radius_um) -> np.ndarray:
    radius_um = _check_radius(radius_um)
    return _distances(locations)[main_channel_indices] <= radius_um


def _closest_mask(main_channel_indices: np.ndarray, locations: np.ndarray, num_channels: int) -> np.ndarray:
    distances = _distances(locations)[main_channel_indices]
    order = np.argsort(distances, axis=1, kind="stable")[:, :num_channels]
    mask = np.zeros(distances.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def _amplitudes_and_active(templates_or_sorting_analyzer, peak_sign, amplitude_mode):
    """(object, absolute amplitudes (units, channels), active-channel mask) of templates or an analyzer."""
    from .template_tools import (_amplitudes_array, _check_mode, _check_peak_sign, _get_dense_templates_array,
                                 _get_nbefore, _get_sparsity_mask)

    obj = _check_obj(templates_or_sorting_analyzer)
    peak_sign = _check_peak_sign(peak_sign)
    amplitude_mode = _check_mode(amplitude_mode, "amplitude_mode")
    templates_array = _get_dense_templates_array(obj)
    amplitudes = _amplitudes_array(templates_array, _get_nbefore(obj), peak_sign, amplitude_mode).astype(np.float64)
    mask = _get_sparsity_mask(obj)
    active = np.ones(amplitudes.shape, dtype=bool) if mask is None else mask
    return obj, amplitudes, active


def _resolve_method(method, allowed: tuple[str, ...], function: str) -> str:
    resolved = _METHOD_ALIASES.get(method, method)
    if resolved not in allowed:
        names = sorted(set(allowed) | {k for k, v in _METHOD_ALIASES.items() if v in allowed})
        raise ValueError(f"{function}: method must be one of {names}, got {method!r}")
    return resolved


# ----------------------------------------------------------------------------- compute
def compute_sparsity(
    templates_or_sorting_analyzer,
    noise_levels: np.ndarray | None = None,
    method: str = "radius",
    peak_sign: str = "neg",
    num_channels: int | None = 5,
    radius_um: float | None = 100.0,
    threshold: float | None = 5,
    by_property: str | None = None,
    amplitude_mode: str = "extremum",
) -> ChannelSparsity:
    """Channel sparsity of the templates of a ``Templates`` object or a SortingAnalyzer.

    Parameters
    ----------
    templates_or_sorting_analyzer : Templates | SortingAnalyzer
        The templates (an analyzer needs its "templates" extension, except for "by_property" when the
        sorting has the property).
    noise_levels : np.ndarray or None, default: None
        Noise level of each channel for "snr" (an analyzer's "noise_levels" extension when None).
    method : str, default: "radius"
        * "radius": channels within ``radius_um`` of the extremum channel (recommended for dense probes)
        * "best_channels": the ``num_channels`` channels with the largest amplitude
        * "closest_channels": the ``num_channels`` channels closest to the extremum channel
        * "snr" (spec spelling "threshold"): channels with ``amplitude / noise_level >= threshold``
        * "amplitude": channels with ``amplitude >= threshold`` µV
        * "energy": waveform energy over noise ``>= threshold`` (dense analyzer with waveforms)
        * "by_property": channels sharing the unit's value of a property (e.g. "group"); the unit's value
          comes from the sorting, or from its extremum channel when only the recording has the property
    peak_sign : "neg" | "pos" | "both", default: "neg"
        Sign of the peak used for amplitudes and extremum channels.
    num_channels : int, default: 5
        For "best_channels" and "closest_channels".
    radius_um : float, default: 100.0
        For "radius".
    threshold : float, default: 5
        For "snr", "amplitude" and "energy".
    by_property : str or None, default: None
        For "by_property".
    amplitude_mode : "extremum" | "at_index" | "peak_to_peak", default: "extremum"
        How amplitudes are measured for "best_channels", "snr", "amplitude" (and the extremum channel).

    Returns
    -------
    sparsity : ChannelSparsity
        On sparse templates (or a sparse analyzer) only each unit's current channels can be kept.
    """
    from .template_tools import _check_mode, _check_peak_sign, _is_analyzer, _main_channel_indices

    method = _resolve_method(method, _COMPUTE_METHODS, "compute_sparsity")
    peak_sign = _check_peak_sign(peak_sign)
    amplitude_mode = _check_mode(amplitude_mode, "amplitude_mode")
    obj = _check_obj(templates_or_sorting_analyzer)
    if method == "radius":
        if radius_um is None:
            raise ValueError("method 'radius' needs radius_um")
        _check_radius(radius_um)
        return ChannelSparsity.from_radius(obj, radius_um, peak_sign=peak_sign, peak_mode=amplitude_mode)
    if method == "best_channels":
        return ChannelSparsity.from_best_channels(obj, num_channels, peak_sign=peak_sign, amplitude_mode=amplitude_mode)
    if method == "closest_channels":
        return ChannelSparsity.from_closest_channels(obj, num_channels, peak_sign=peak_sign, peak_mode=amplitude_mode)
    if method == "snr":
        return ChannelSparsity.from_snr(obj, threshold, noise_levels=noise_levels, peak_sign=peak_sign,
                                        amplitude_mode=amplitude_mode)
    if method == "amplitude":
        return ChannelSparsity.from_amplitude(obj, threshold, amplitude_mode=amplitude_mode, peak_sign=peak_sign)
    if method == "energy":
        return ChannelSparsity.from_energy(obj, threshold)
    # by_property
    if by_property is None:
        raise ValueError("method 'by_property' needs by_property, the name of the property (e.g. 'group')")
    if not _is_analyzer(obj) or getattr(obj, "recording", None) is None:
        raise ValueError(
            "method 'by_property' needs a SortingAnalyzer with its recording (or use "
            "ChannelSparsity.from_property(sorting, recording, by_property))"
        )
    main = None
    if obj.sorting.get_property(by_property) is None:
        main = _main_channel_indices(obj, peak_sign=peak_sign, mode=amplitude_mode)
    return ChannelSparsity.from_property(obj.sorting, obj.recording, by_property, main_channel_indices=main)


# ----------------------------------------------------------------------------- estimate
def estimate_sparsity(
    sorting,
    recording,
    num_spikes_for_sparsity: int = 100,
    ms_before: float = 1.0,
    ms_after: float = 2.5,
    method: str = "radius",
    peak_sign: str = "neg",
    radius_um: float = 100.0,
    num_channels: int = 5,
    threshold: float | None = 5,
    amplitude_mode: str = "extremum",
    by_property: str | None = None,
    noise_levels: np.ndarray | None = None,
    main_channel_indices=None,
    seed: int | None = 2205,
    return_scaled: bool = True,
    **job_kwargs,
) -> ChannelSparsity:
    """Sparsity from a sorting and a recording, without an analyzer.

    The templates are estimated in one chunked pass over the recording (parallel with ``n_jobs``):
    up to ``num_spikes_for_sparsity`` random spikes per unit are averaged; only chunks holding selected
    spikes are read, each with a margin so windows crossing a chunk border are exact. Memory is one
    chunk of traces per worker plus one ``(num_units, num_samples, num_channels)`` accumulator.
    Integer recordings are summed exactly, so the result does not depend on ``n_jobs`` or the chunking.

    Parameters
    ----------
    sorting : BaseSorting
        The sorting.
    recording : BaseRecording
        The recording (channel locations needed for "radius" and "closest_channels").
    num_spikes_for_sparsity : int, default: 100
        Random spikes per unit averaged into its template.
    ms_before, ms_after : float, default: 1.0, 2.5
        Window around each spike in ms.
    method : str, default: "radius"
        "radius", "best_channels", "closest_channels", "snr" (spec: "threshold"), "amplitude" or
        "by_property" (see ``compute_sparsity``).
    peak_sign : "neg" | "pos" | "both", default: "neg"
        Sign of the peak.
    radius_um : float, default: 100.0
        For "radius".
    num_channels : int, default: 5
        For "best_channels" and "closest_channels".
    threshold : float, default: 5
        For "snr" and "amplitude".
    amplitude_mode : "extremum" | "at_index" | "peak_to_peak", default: "extremum"
        How amplitudes are measured.
    by_property : str or None, default: None
        For "by_property": no pass is needed when the sorting has the property; otherwise each unit takes
        the value of its extremum channel.
    noise_levels : np.ndarray or None, default: None
        For "snr", in the templates' units; None computes them with ``get_noise_levels``.
    main_channel_indices : array-like or None, default: None
        For "radius": each unit's main channel index, which makes the pass unnecessary.
    seed : int or None, default: 2205
        Seed of the random spike selection (SpikeInterface's fixed seed).
    return_scaled : bool, default: True
        Estimate the templates in µV when the recording has gains and offsets.
    **job_kwargs
        ``n_jobs``, ``chunk_duration`` / ``chunk_size`` / ``chunk_memory`` / ``total_memory``,
        ``progress_bar``, ``mp_context``, ``max_threads_per_worker``.

    Returns
    -------
    sparsity : ChannelSparsity
    """
    return _estimate_sparsity_and_main(
        sorting, recording, num_spikes_for_sparsity=num_spikes_for_sparsity, ms_before=ms_before,
        ms_after=ms_after, method=method, peak_sign=peak_sign, radius_um=radius_um, num_channels=num_channels,
        threshold=threshold, amplitude_mode=amplitude_mode, by_property=by_property, noise_levels=noise_levels,
        main_channel_indices=main_channel_indices, seed=seed, return_scaled=return_scaled, **job_kwargs,
    )[0]


def _estimate_sparsity_and_main(sorting, recording, num_spikes_for_sparsity: int = 100, ms_before: float = 1.0,
                                ms_after: float = 2.5, method: str = "radius", peak_sign: str = "neg",
                                radius_um: float = 100.0, num_channels: int = 5, threshold: float | None = 5,
                                amplitude_mode: str = "extremum", by_property: str | None = None,
                                noise_levels=None, main_channel_indices=None, seed: int | None = 2205,
                                return_scaled: bool = True, **job_kwargs) -> tuple[ChannelSparsity, np.ndarray | None]:
    """``estimate_sparsity`` plus each unit's main channel index (the extremum channel of the estimated
    templates with ``peak_sign`` / ``amplitude_mode``), or None when no templates were estimated.

    ``create_sorting_analyzer`` stores these main channels (SpikeInterface's "main_channel_id") without a
    second pass over the recording.
    """
    from .template_tools import _check_mode, _check_peak_sign

    method = _resolve_method(method, _ESTIMATE_METHODS, "estimate_sparsity")
    peak_sign = _check_peak_sign(peak_sign)
    amplitude_mode = _check_mode(amplitude_mode, "amplitude_mode")
    _check_pair(sorting, recording)
    unit_ids, channel_ids = sorting.unit_ids, recording.channel_ids

    locations = None
    if method in ("radius", "closest_channels"):
        locations = _channel_locations(recording)
    if method == "radius":
        _check_radius(radius_um)
        if main_channel_indices is not None:
            return ChannelSparsity.from_radius_and_main_channel(unit_ids, channel_ids, main_channel_indices,
                                                                locations, radius_um), \
                np.asarray(main_channel_indices, dtype=np.int64)
    if method in ("best_channels", "closest_channels"):
        _check_positive_int(num_channels, "num_channels")
    if method in ("snr", "amplitude"):
        threshold = _check_threshold(threshold)
    if method == "by_property":
        if by_property is None:
            raise ValueError("method 'by_property' needs by_property, the name of the property (e.g. 'group')")
        if recording.get_property(by_property) is None:
            # checked before the pass so a typo does not cost one
            ChannelSparsity.from_property(sorting, recording, by_property)
        if sorting.get_property(by_property) is not None:
            return ChannelSparsity.from_property(sorting, recording, by_property), None

    templates_array, nbefore, _ = _estimate_templates_for_sparsity(
        sorting, recording, num_spikes_for_sparsity=num_spikes_for_sparsity, ms_before=ms_before,
        ms_after=ms_after, seed=seed, return_scaled=return_scaled, **job_kwargs,
    )
    from .templates import Templates
    from .template_tools import _amplitudes_array, _extremum_channel_indices

    templates = Templates(templates_array, recording.sampling_frequency, nbefore,
                          is_in_uV=return_scaled and recording.has_scaleable_traces(),
                          channel_ids=channel_ids, unit_ids=unit_ids)
    main = _extremum_channel_indices(_amplitudes_array(templates_array, nbefore, peak_sign, amplitude_mode), None)
    if method == "radius":
        return ChannelSparsity(_radius_mask(main, locations, radius_um), unit_ids, channel_ids), main
    if method == "closest_channels":
        return ChannelSparsity(_closest_mask(main, locations, num_channels), unit_ids, channel_ids), main
    if method == "by_property":
        return ChannelSparsity.from_property(sorting, recording, by_property, main_channel_indices=main), main
    if method == "best_channels":
        return ChannelSparsity.from_best_channels(templates, num_channels, peak_sign=peak_sign,
                                                  amplitude_mode=amplitude_mode), main
    if method == "amplitude":
        return ChannelSparsity.from_amplitude(templates, threshold, amplitude_mode=amplitude_mode,
                                              peak_sign=peak_sign), main
    # snr
    if noise_levels is None:
        noise_levels = _noise_levels(recording, templates.is_in_uV)
    return ChannelSparsity.from_snr(templates, threshold, noise_levels=noise_levels, peak_sign=peak_sign,
                                    amplitude_mode=amplitude_mode), main


def _check_pair(sorting, recording) -> None:
    if not np.isclose(sorting.sampling_frequency, recording.sampling_frequency, rtol=0, atol=1e-6):
        raise ValueError(
            f"recording: sampling_frequency {recording.sampling_frequency} differs from the sorting's "
            f"{sorting.sampling_frequency}"
        )
    if sorting.get_num_segments() != recording.get_num_segments():
        raise ValueError(
            f"recording: has {recording.get_num_segments()} segments, the sorting {sorting.get_num_segments()}"
        )


def _noise_levels(recording, return_scaled: bool) -> np.ndarray:
    try:
        from .recording_tools import get_noise_levels
    except ImportError:
        raise ValueError(
            "method 'snr' needs noise_levels (one per channel, in the templates' units); pass noise_levels=..."
        ) from None
    return np.asarray(get_noise_levels(recording, return_scaled=return_scaled))


def _ms_to_samples(ms: float, sampling_frequency: float, name: str) -> int:
    if isinstance(ms, bool) or not isinstance(ms, (int, float, np.integer, np.floating)) or not ms >= 0:
        raise ValueError(f"{name} must be a non-negative number of ms, got {ms!r}")
    return int(round(ms * sampling_frequency / 1000.0))


def _estimate_templates_for_sparsity(sorting, recording, num_spikes_for_sparsity: int = 100, ms_before: float = 1.0,
                                     ms_after: float = 2.5, seed: int | None = 2205, return_scaled: bool = True,
                                     **job_kwargs):
    """The templates ``estimate_sparsity`` builds its mask from.

    Returns
    -------
    templates_array : np.ndarray
        float32 ``(num_units, nbefore + nafter, num_channels)`` averages (µV when scaled).
    nbefore : int
        Samples before the spike.
    spike_indices : np.ndarray
        Indices into ``sorting.to_spike_vector()`` of the averaged spikes.
    """
    from .sorting_tools import random_spikes_selection

    _check_positive_int(num_spikes_for_sparsity, "num_spikes_for_sparsity")
    nbefore = _ms_to_samples(ms_before, recording.sampling_frequency, "ms_before")
    nafter = _ms_to_samples(ms_after, recording.sampling_frequency, "ms_after")
    if nbefore + nafter == 0:
        raise ValueError("ms_before + ms_after must cover at least one sample")
    num_samples = [recording.get_num_samples(i) for i in range(recording.get_num_segments())]
    spike_indices = random_spikes_selection(sorting, num_samples, method="uniform",
                                            max_spikes_per_unit=num_spikes_for_sparsity,
                                            margin_size=max(nbefore, nafter), seed=seed)
    spikes = sorting.to_spike_vector()[spike_indices]
    templates_array = _estimate_templates_array(recording, spikes, sorting.get_num_units(), nbefore, nafter,
                                                return_scaled=return_scaled, job_name="estimate_sparsity",
                                                **job_kwargs)
    return templates_array, nbefore, spike_indices


def _estimate_templates_array(recording, spikes: np.ndarray, num_units: int, nbefore: int, nafter: int,
                              return_scaled: bool = True, job_name: str = "estimate_templates",
                              **job_kwargs) -> np.ndarray:
    """Average ``recording`` around ``spikes`` per unit in one chunked parallel pass.

    Parameters
    ----------
    recording : BaseRecording
        The recording.
    spikes : np.ndarray
        Spike-vector rows (``sample_index``, ``unit_index``, ``segment_index``) sorted by segment then sample;
        every window ``[sample - nbefore, sample + nafter)`` must lie inside its segment.
    num_units : int
        Number of units (rows of the result).
    nbefore, nafter : int
        Window around each spike.
    return_scaled : bool, default: True
        Scale to µV when the recording has gains and offsets.
    job_name : str, default: "estimate_templates"
        Progress-bar label.
    **job_kwargs
        Job kwargs (see ``sicore.job``).

    Returns
    -------
    templates_array : np.ndarray
        float32 ``(num_units, nbefore + nafter, num_channels)``; zeros for units without spikes.
    """
    accumulator, _ = _accumulate_spike_windows(recording, spikes, num_units, nbefore, nafter, job_name=job_name,
                                               **job_kwargs)
    counts = np.bincount(np.asarray(spikes)["unit_index"], minlength=num_units).astype(np.int64)
    # Mean (then scaling) in float64, one unit at a time: the same values as whole-array arithmetic
    # without a (units, samples, channels) float64 temporary.
    templates = np.zeros(accumulator.shape, dtype=np.float32)
    scale = return_scaled and recording.has_scaleable_traces()
    if scale:
        gains = np.asarray(recording.get_channel_gains(), dtype=np.float64)
        offsets = np.asarray(recording.get_channel_offsets(), dtype=np.float64)
    for unit in np.flatnonzero(counts).tolist():
        mean = accumulator[unit].astype(np.float64)
        mean /= counts[unit]
        if scale:
            mean *= gains
            mean += offsets
        templates[unit] = mean
    return templates


def _accumulate_spike_windows(recording, spikes: np.ndarray, num_units: int, nbefore: int, nafter: int,
                              channel_table: np.ndarray | None = None, with_squares: bool = False,
                              zero_pad: bool = False, job_name: str = "estimate_templates",
                              **job_kwargs) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-unit sums (and sums of squares) of the raw (unscaled) windows around ``spikes``, in one chunked pass.

    Integer traces are summed exactly, so the result is the same for any ``n_jobs`` and chunk size. With
    ``n_jobs > 1`` each worker adds into its own shared-memory accumulator (``_SharedAccumulators``) and
    only the small accumulators are summed at the end: no window ever travels between processes.

    Parameters
    ----------
    recording : BaseRecording
        The recording (read with ``return_scaled=False``).
    spikes : np.ndarray
        Spike-vector rows (``sample_index``, ``unit_index``, ``segment_index``) sorted by segment then sample.
    num_units : int
        Number of units (rows of the result).
    nbefore, nafter : int
        Window ``[sample - nbefore, sample + nafter)`` around each spike.
    channel_table : np.ndarray or None, default: None
        ``(num_units, max_channels)`` channel indices per unit padded with -1: each unit's channels are
        summed packed at the front of the channel axis (padding slots are zero). None: all channels.
    with_squares : bool, default: False
        Also sum the squared values (int64 for integer traces of at most 16 bits, exact).
    zero_pad : bool, default: False
        Samples of windows outside their segment count as zeros; when False such windows are an error.
    job_name : str, default: "estimate_templates"
        Progress-bar label.
    **job_kwargs
        Job kwargs (see ``sicore.job``).

    Returns
    -------
    sums : np.ndarray
        ``(num_units, nbefore + nafter, channels)``: int32 / int64 for integer traces (see
        ``_accumulator_dtype``), float64 for floats.
    squares : np.ndarray or None
        Same shape, int64 (integers of at most 16 bits) or float64; None unless ``with_squares``.
    """
    from .job import ChunkRecordingExecutor, ensure_chunk_size, split_job_kwargs

    other, job_kwargs = split_job_kwargs(job_kwargs)
    if other:
        raise TypeError(f"unexpected keyword arguments {sorted(other)} (job kwargs are {sorted(_job_keys())})")

    spikes = np.asarray(spikes)
    num_segments = recording.get_num_segments()
    segment_index = spikes["segment_index"]
    sample_index = spikes["sample_index"]
    order_ok = spikes.size < 2 or bool(np.all(
        (np.diff(segment_index) > 0) | ((np.diff(segment_index) == 0) & (np.diff(sample_index) >= 0))
    ))
    if not order_ok:
        raise ValueError("spikes must be sorted by segment_index then sample_index (as in the spike vector)")
    if spikes.size:
        if segment_index.min() < 0 or segment_index.max() >= num_segments:
            raise ValueError(f"spikes: segment_index out of range [0, {num_segments})")
        lengths = np.array([recording.get_num_samples(i) for i in range(num_segments)], dtype=np.int64)
        if zero_pad:
            if np.any(sample_index < 0) or np.any(sample_index >= lengths[segment_index]):
                raise ValueError("spikes: some sample_index values are outside their segment")
        elif np.any(sample_index - nbefore < 0) or np.any(sample_index + nafter > lengths[segment_index]):
            raise ValueError(
                "spikes: some windows [sample - nbefore, sample + nafter) cross a segment border; "
                "select spikes with a margin (random_spikes_selection(..., margin_size=max(nbefore, nafter)))"
            )
        if spikes["unit_index"].min() < 0 or spikes["unit_index"].max() >= num_units:
            raise ValueError(f"spikes: unit_index out of range [0, {num_units})")

    num_channels = recording.get_num_channels()
    if channel_table is not None:
        channel_table = np.asarray(channel_table, dtype=np.int64)
        if channel_table.ndim != 2 or channel_table.shape[0] != num_units or channel_table.max(initial=-1) >= num_channels:
            raise ValueError(f"channel_table must be (num_units={num_units}, max_channels) of channel indices "
                             f"below {num_channels} (padded with -1), got shape {channel_table.shape}")
    # Integer traces are summed exactly (independent of chunking): in int32 when no unit's sum can
    # overflow it (half the memory traffic of int64), else in int64; floats in float64.
    trace_dtype = np.dtype(recording.get_dtype())
    acc_dtype = _accumulator_dtype(trace_dtype, spikes["unit_index"], num_units)
    specs = [acc_dtype]
    if with_squares:
        specs.append(_squares_dtype(trace_dtype)[1])
    width = channel_table.shape[1] if channel_table is not None else num_channels
    shape = (num_units, nbefore + nafter, width)

    n_jobs = job_kwargs["n_jobs"]
    chunk_size = ensure_chunk_size(recording, **job_kwargs)
    executor_kwargs = {k: v for k, v in job_kwargs.items() if k not in _CHUNK_KEYS}
    slices = _slices_with_spikes(recording, segment_index, sample_index, chunk_size, n_jobs)
    num_workers = min(n_jobs, len(slices))

    def run(target) -> None:
        init_args = (recording, spikes, nbefore, nafter, num_segments, chunk_size, channel_table, target)
        executor = ChunkRecordingExecutor(recording, _templates_chunk_func, _templates_init_func, init_args,
                                          handle_returns=False, job_name=job_name, chunk_size=chunk_size,
                                          **executor_kwargs)
        executor.run(recording_slices=slices)

    if num_workers <= 1:
        # in the calling process the chunks add straight into the accumulators
        accumulators = tuple(np.zeros(shape, dtype=dtype) for dtype in specs)
        if slices:
            run(accumulators)
    else:
        with _SharedAccumulators(num_workers, shape, specs) as shared:
            run(shared.handle)
            accumulators = shared.total()
    if channel_table is not None and np.any(channel_table < 0):
        padding = (channel_table < 0)[:, None, :]  # padding slots gathered channel 0: zero them
        for accumulator in accumulators:
            np.copyto(accumulator, 0, where=padding)
    return accumulators[0], (accumulators[1] if with_squares else None)


def _squares_dtype(dtype) -> tuple[np.dtype, np.dtype]:
    """(dtype of one squared window, dtype of the sum of squares) for traces of ``dtype``.

    int8 / uint8 / int16 squares fit int32 (at most 2**30); uint16 squares need int64; sums of squares
    of integers are int64 (exact); float traces use float64 throughout.
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "iu" and dtype.itemsize <= 2:
        small = dtype.itemsize == 1 or dtype.kind == "i"
        return np.dtype(np.int32 if small else np.int64), np.dtype(np.int64)
    if dtype.kind in "iu":
        raise ValueError(f"sums of squares of {dtype} traces could overflow int64; only integers of at most "
                         "16 bits (or floats) are supported")
    return np.dtype(np.float64), np.dtype(np.float64)


class _SharedAccumulators:
    """Zeroed accumulators (one per dtype in ``dtypes``, all of ``shape``) for each worker, in files the workers
    map (fork, spawn and forkserver alike).

    A worker claims a free slot the first time it needs one (``O_EXCL`` creation of a claim file, atomic
    across processes) and adds all its slices into that slot's accumulators; the caller sums the slots at
    the end. Only the small ``handle`` (folder, shape, dtypes, number of slots) is sent to the workers. The
    folder is in /dev/shm when there is one (memory, not disk) and is removed on exit; its name holds the
    owner's pid, so folders of killed owners (SIGKILL skips the exit) are removed by the next pass.
    """

    PREFIX = "sicore_acc_"

    def __init__(self, num_slots: int, shape: tuple, dtypes) -> None:
        self.num_slots, self.shape = int(num_slots), tuple(shape)
        self.dtypes = tuple(np.dtype(d) for d in dtypes)
        self.folder = None

    def __enter__(self) -> "_SharedAccumulators":
        base = _accumulator_base()
        _remove_orphans(base, self.PREFIX)
        self.folder = tempfile.mkdtemp(prefix=f"{self.PREFIX}{os.getpid()}_", dir=base)
        for i, dtype in enumerate(self.dtypes):
            slot_bytes = int(np.prod(self.shape)) * dtype.itemsize
            with open(os.path.join(self.folder, f"slots_{i}.bin"), "wb") as f:
                f.truncate(slot_bytes * self.num_slots)  # sparse file: zeros, pages allocated on first write
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def handle(self) -> tuple:
        return (self.folder, self.shape, tuple(d.str for d in self.dtypes), self.num_slots)

    def total(self) -> tuple[np.ndarray, ...]:
        claimed = [k for k in range(self.num_slots) if os.path.exists(os.path.join(self.folder, f"slot_{k}"))]
        totals = []
        for slots in _open_slots(self.handle):
            total = np.zeros(self.shape, dtype=slots.dtype)
            for k in claimed:
                total += slots[k]
            totals.append(total)
            del slots
        return tuple(totals)


def _accumulator_base() -> str:
    """Where accumulators live: /dev/shm (memory) when writable, else the temporary directory."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def _remove_orphans(base: str, prefix: str) -> None:
    """Remove this user's ``<prefix><pid>_*`` folders in ``base`` whose owner process no longer exists."""
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    for entry in entries:
        pid_text = entry.name[len(prefix):].split("_", 1)[0] if entry.name.startswith(prefix) else ""
        if not pid_text.isdigit():
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid() or not entry.is_dir(follow_symlinks=False):
                continue
            os.kill(int(pid_text), 0)  # the owner is alive (or is someone else's process): keep it
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


def _open_slots(handle: tuple) -> list[np.memmap]:
    folder, shape, dtypes, num_slots = handle
    return [np.memmap(os.path.join(folder, f"slots_{i}.bin"), dtype=np.dtype(dtype), mode="r+",
                      shape=(num_slots,) + tuple(shape)) for i, dtype in enumerate(dtypes)]


def _claim_slot(handle: tuple) -> tuple[np.ndarray, ...]:
    """This worker's accumulators: those of the first slot whose claim file it manages to create."""
    folder, _, _, num_slots = handle
    for k in range(num_slots):
        try:
            fd = os.open(os.path.join(folder, f"slot_{k}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        os.close(fd)
        return tuple(slots[k] for slots in _open_slots(handle))
    raise RuntimeError(f"estimate_templates: more workers than the {num_slots} accumulator slots")


def _job_keys():
    from .job import job_keys

    return job_keys


def _slices_with_spikes(recording, segment_index: np.ndarray, sample_index: np.ndarray, chunk_size: int,
                        n_jobs: int) -> list[tuple[int, int, int]]:
    """The chunks (of the executor's grid) that hold spikes; with n_jobs > 1, grouped into a few slices.

    Grouping keeps whole grid chunks together (the worker still reads one chunk at a time) and never
    spans two segments; groups hold about the same number of spikes.
    """
    if sample_index.size == 0:
        return []
    chunk_id = sample_index // chunk_size
    # one row per (segment, chunk) holding spikes, with its number of spikes
    keys = np.stack([segment_index, chunk_id], axis=1)
    (uniq, counts) = np.unique(keys, axis=0, return_counts=True)
    lengths = np.array([recording.get_num_samples(i) for i in range(recording.get_num_segments())], dtype=np.int64)
    starts = uniq[:, 1] * chunk_size
    ends = np.minimum(starts + chunk_size, lengths[uniq[:, 0]])
    if n_jobs <= 1 or uniq.shape[0] <= n_jobs:
        return [(int(g), int(a), int(b)) for g, a, b in zip(uniq[:, 0], starts, ends)]
    num_groups = min(uniq.shape[0], n_jobs * _SLICES_PER_WORKER)
    # balanced by spike count: group k holds the chunks whose cumulative count falls in its share
    cumulative = np.cumsum(counts) - counts
    group = np.minimum(cumulative * num_groups // counts.sum(), num_groups - 1)
    new_group = np.r_[True, (group[1:] != group[:-1]) | (uniq[1:, 0] != uniq[:-1, 0])]
    first = np.flatnonzero(new_group)
    last = np.r_[first[1:] - 1, uniq.shape[0] - 1]
    return [(int(uniq[f, 0]), int(starts[f]), int(ends[l])) for f, l in zip(first, last)]


def _templates_init_func(recording, spikes, nbefore, nafter, num_segments, chunk_size, channel_table,
                         accumulators) -> dict:
    """Worker state; ``accumulators`` are the caller's arrays (in-process) or a ``_SharedAccumulators`` handle."""
    segment_bounds = np.searchsorted(spikes["segment_index"], np.arange(num_segments + 1), side="left")
    in_process = isinstance(accumulators, tuple) and all(isinstance(a, np.ndarray) for a in accumulators)
    return {
        # a shared slot is claimed lazily, so a worker that gets no slice takes none
        "accumulators": accumulators if in_process else None,
        "shared_handle": None if in_process else accumulators,
        "recording": recording,
        "samples": np.ascontiguousarray(spikes["sample_index"]),
        "units": np.ascontiguousarray(spikes["unit_index"]),
        "segment_bounds": segment_bounds,
        "segment_lengths": [recording.get_num_samples(i) for i in range(num_segments)],
        "nbefore": int(nbefore),
        "nafter": int(nafter),
        "chunk_size": int(chunk_size),
        # padding slots (-1) read channel 0; the caller zeroes them at the end
        "safe_table": None if channel_table is None else np.where(channel_table >= 0, channel_table, 0),
        "square_dtype": _squares_dtype(recording.get_dtype())[0],
    }


def _templates_chunk_func(segment_index, start_frame, end_frame, worker_dict) -> None:
    """Add the windows of the spikes in ``[start_frame, end_frame)`` into the worker's accumulators.

    The slice is read one grid chunk at a time (with the window margins), so a worker never holds more
    than one chunk of traces besides its accumulators.
    """
    lo, hi = worker_dict["segment_bounds"][segment_index: segment_index + 2]
    seg_samples = worker_dict["samples"][lo:hi]
    i0, i1 = np.searchsorted(seg_samples, [start_frame, end_frame], side="left")
    if i1 <= i0:
        return None
    samples = seg_samples[i0:i1]
    units = worker_dict["units"][lo:hi][i0:i1]
    if worker_dict["accumulators"] is None:
        worker_dict["accumulators"] = _claim_slot(worker_dict["shared_handle"])
    accumulators = worker_dict["accumulators"]

    chunk_id = samples // worker_dict["chunk_size"]
    bounds = np.flatnonzero(np.r_[True, chunk_id[1:] != chunk_id[:-1], True])
    for c0, c1 in zip(bounds[:-1], bounds[1:]):
        _accumulate_windows(worker_dict, segment_index, samples[c0:c1], units[c0:c1], accumulators)
    return None


def _accumulator_dtype(dtype, unit_index: np.ndarray, num_units: int) -> np.dtype:
    """int32 for integer traces whose per-unit sums fit in it, int64 for other integers, float64 for floats."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        return np.dtype(np.float64)
    if dtype.itemsize <= 2 and unit_index.size:
        info = np.iinfo(dtype)
        largest = max(abs(int(info.min)), int(info.max))
        most_spikes = int(np.bincount(unit_index, minlength=num_units).max())
        if most_spikes * largest <= np.iinfo(np.int32).max:
            return np.dtype(np.int32)
    return np.dtype(np.int64)


def _accumulate_windows(worker_dict, segment_index: int, samples: np.ndarray, local_unit: np.ndarray,
                        accumulators: tuple) -> None:
    """Add the windows of time-sorted ``samples`` (one chunk's spikes) into ``accumulators[k][local_unit]``.

    ``accumulators`` is ``(sums,)`` or ``(sums, sums_of_squares)``. All channels: each window is added
    straight from the traces (no gathered copy; a file-backed recording only touches the windows' pages).
    A channel table: the windows' unit channels are gathered in one ``take``, then added per spike.
    """
    nbefore, nafter = worker_dict["nbefore"], worker_dict["nafter"]
    num_samples = nbefore + nafter
    # Read the spikes' span plus the window margins, so windows crossing the chunk border are exact.
    wanted_start = int(samples[0]) - nbefore
    wanted_end = int(samples[-1]) + nafter
    length = worker_dict["segment_lengths"][segment_index]
    read_start, read_end = max(wanted_start, 0), min(wanted_end, length)
    traces = worker_dict["recording"].get_traces(segment_index=segment_index, start_frame=read_start,
                                                 end_frame=read_end, return_scaled=False)
    if read_start != wanted_start or read_end != wanted_end:  # samples outside the segment are zeros
        padded = np.zeros((wanted_end - wanted_start, traces.shape[1]), dtype=traces.dtype)
        padded[read_start - wanted_start: read_end - wanted_start] = traces
        traces = padded
    starts = samples - wanted_start - nbefore  # window start in traces
    sums = accumulators[0]
    squares = accumulators[1] if len(accumulators) > 1 else None
    add = np.add
    table = worker_dict["safe_table"]
    if table is None:
        square_dtype = worker_dict["square_dtype"]
        for start, unit in zip(starts.tolist(), local_unit.tolist()):
            window = traces[start: start + num_samples]
            target = sums[unit]
            add(target, window, out=target, casting="unsafe")
            if squares is not None:
                target = squares[unit]
                add(target, np.square(window, dtype=square_dtype), out=target, casting="unsafe")
        return
    # Flat indices of each window's (sample, unit channel) values: one vectorised gather instead of a
    # fancy index per spike; the per-spike adds then run on small contiguous blocks.
    num_channels = traces.shape[1]
    flat = np.ascontiguousarray(traces).reshape(-1)
    index = ((starts * num_channels)[:, None, None]
             + (np.arange(num_samples, dtype=np.intp) * num_channels)[None, :, None]
             + table[local_unit][:, None, :])
    windows = np.take(flat, index).astype(sums.dtype)
    del flat, traces, index
    if squares is not None:
        squared = np.multiply(windows, windows, dtype=worker_dict["square_dtype"])
    for i, unit in enumerate(local_unit.tolist()):
        target = sums[unit]
        add(target, windows[i], out=target)
        if squares is not None:
            target = squares[unit]
            add(target, squared[i], out=target, casting="unsafe")
