"""Templates: the average waveform of each unit, dense or sparse, with its timing and channel metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .sparsity import ChannelSparsity

__all__ = ["Templates"]


@dataclass(init=False, eq=False, repr=False)
class Templates:
    """Spike templates of a set of units, dense or sparse.

    Parameters
    ----------
    templates_array : np.ndarray
        ``(num_units, num_samples, num_channels)``; when ``sparsity_mask`` is given the last axis holds
        each unit's active channels first (in channel order), padded with zeros up to any width.
    sampling_frequency : float
        Sampling rate in Hz.
    nbefore : int
        Number of samples before the spike peak (the peak is at sample ``nbefore``).
    is_in_uV : bool, default: True
        True when the templates are in µV, False for raw (ADC) units.
    sparsity_mask : np.ndarray or None, default: None
        Boolean ``(num_units, num_channels)`` mask of each unit's channels; None for dense templates.
    channel_ids : array-like or None, default: None
        Channel ids (default ``0..num_channels-1``).
    unit_ids : array-like or None, default: None
        Unit ids (default ``0..num_units-1``).
    probe : probeinterface.Probe or None, default: None
        Probe giving the channel locations.
    check_for_consistent_sparsity : bool, default: True
        With a ``sparsity_mask``, check that the array holds only zeros beyond each unit's active channels.
    is_scaled : bool or None, default: None
        Older spelling of ``is_in_uV`` (give one of them).

    Attributes
    ----------
    num_units, num_samples, num_channels : int
        Sizes of the dense templates.
    nafter : int
        ``num_samples - nbefore``.
    ms_before, ms_after : float
        ``nbefore`` and ``nafter`` in ms.
    sparsity : ChannelSparsity or None
        The sparsity built from ``sparsity_mask``.
    """

    templates_array: np.ndarray
    sampling_frequency: float
    nbefore: int
    is_in_uV: bool = True
    sparsity_mask: np.ndarray | None = None
    channel_ids: np.ndarray | None = None
    unit_ids: np.ndarray | None = None
    probe: object = None
    check_for_consistent_sparsity: bool = True

    num_units: int = field(init=False)
    num_samples: int = field(init=False)
    num_channels: int = field(init=False)
    nafter: int = field(init=False)
    ms_before: float = field(init=False)
    ms_after: float = field(init=False)
    sparsity: ChannelSparsity | None = field(init=False, default=None)

    def __init__(
        self,
        templates_array: np.ndarray,
        sampling_frequency: float,
        nbefore: int,
        is_in_uV: bool | None = None,
        sparsity_mask: np.ndarray | None = None,
        channel_ids=None,
        unit_ids=None,
        probe=None,
        check_for_consistent_sparsity: bool = True,
        is_scaled: bool | None = None,
    ):
        if is_in_uV is not None and is_scaled is not None and bool(is_in_uV) != bool(is_scaled):
            raise ValueError("is_in_uV and is_scaled disagree; give one of them")
        in_uv = is_in_uV if is_in_uV is not None else is_scaled
        self.templates_array = np.asarray(templates_array)
        if self.templates_array.ndim != 3:
            raise ValueError(
                "templates_array must be 3-d (num_units, num_samples, num_channels), "
                f"got shape {self.templates_array.shape}"
            )
        self.sampling_frequency = float(sampling_frequency)
        if not np.isfinite(self.sampling_frequency) or self.sampling_frequency <= 0:
            raise ValueError(f"sampling_frequency must be a positive number of Hz, got {sampling_frequency!r}")
        if isinstance(nbefore, bool) or not isinstance(nbefore, (int, np.integer)):
            raise ValueError(f"nbefore must be an int, got {nbefore!r}")
        self.nbefore = int(nbefore)
        self.is_in_uV = True if in_uv is None else bool(in_uv)
        self.sparsity_mask = None if sparsity_mask is None else np.asarray(sparsity_mask, dtype=bool)
        self.probe = probe
        self.check_for_consistent_sparsity = bool(check_for_consistent_sparsity)
        self._finish_init(channel_ids, unit_ids)

    def _finish_init(self, channel_ids, unit_ids) -> None:
        self.num_units, self.num_samples = (int(n) for n in self.templates_array.shape[:2])
        if self.sparsity_mask is None:
            self.num_channels = int(self.templates_array.shape[2])
        else:
            if self.sparsity_mask.ndim != 2 or self.sparsity_mask.shape[0] != self.num_units:
                raise ValueError(
                    f"sparsity_mask must have shape (num_units={self.num_units}, num_channels), "
                    f"got {self.sparsity_mask.shape}"
                )
            self.num_channels = int(self.sparsity_mask.shape[1])
        if not 0 <= self.nbefore <= self.num_samples:
            raise ValueError(f"nbefore must be in [0, num_samples={self.num_samples}], got {self.nbefore}")
        if self.probe is not None and not hasattr(self.probe, "contact_positions"):
            raise ValueError(f"probe must be a probeinterface.Probe, got {type(self.probe).__name__}")

        self.nafter = self.num_samples - self.nbefore
        self.ms_before = self.nbefore / self.sampling_frequency * 1000.0
        self.ms_after = self.nafter / self.sampling_frequency * 1000.0

        self.channel_ids = _ids_or_range(channel_ids, self.num_channels, "channel_ids", "num_channels")
        self.unit_ids = _ids_or_range(unit_ids, self.num_units, "unit_ids", "num_units")

        self.sparsity = None
        if self.sparsity_mask is not None:
            self.sparsity = ChannelSparsity(self.sparsity_mask, self.unit_ids, self.channel_ids)
            if self.templates_array.shape[2] < self.sparsity.max_num_active_channels:
                raise ValueError(
                    f"templates_array has {self.templates_array.shape[2]} channels but a unit of sparsity_mask has "
                    f"{self.sparsity.max_num_active_channels} active channels"
                )
            if self.check_for_consistent_sparsity and not self._are_passed_templates_sparse():
                raise ValueError(
                    "sparsity_mask given but templates_array is not sparse: it has non-zero values beyond some unit's "
                    "active channels (pass dense templates without sparsity_mask, or use to_sparse())"
                )

    # ------------------------------------------------------------ aliases
    @property
    def is_scaled(self) -> bool:
        """Older spelling of ``is_in_uV``."""
        return self.is_in_uV

    # --------------------------------------------------------------- repr
    def __repr__(self) -> str:
        text = (
            f"Templates: {self.num_units} units - {self.num_samples} samples - {self.num_channels} channels \n"
            f"sampling_frequency={self.sampling_frequency / 1000:.2f} kHz - "
            f"ms_before={self.ms_before:.2f} ms - ms_after={self.ms_after:.2f} ms"
        )
        if self.probe is not None:
            text += f"\n{self.probe!r}"
        if self.sparsity is not None:
            text += f"\n{self.sparsity!r}"
        return text

    def __eq__(self, other) -> bool:
        if not isinstance(other, Templates):
            return False
        if (self.sampling_frequency, self.nbefore, self.is_in_uV) != (
            other.sampling_frequency, other.nbefore, other.is_in_uV
        ):
            return False
        for mine, theirs in (
            (self.templates_array, other.templates_array),
            (self.channel_ids, other.channel_ids),
            (self.unit_ids, other.unit_ids),
        ):
            if not np.array_equal(mine, theirs):
                return False
        if (self.sparsity_mask is None) != (other.sparsity_mask is None):
            return False
        if self.sparsity_mask is not None and not np.array_equal(self.sparsity_mask, other.sparsity_mask):
            return False
        if (self.probe is None) != (other.probe is None):
            return False
        if self.probe is not None:
            return _probe_dicts_equal(self.probe.to_dict(array_as_list=True), other.probe.to_dict(array_as_list=True))
        return True

    __hash__ = None

    # ------------------------------------------------------------ dense / sparse
    def are_templates_sparse(self) -> bool:
        return self.sparsity is not None

    def _are_passed_templates_sparse(self) -> bool:
        """True when every unit's row is zero beyond its number of active channels."""
        num_active = self.sparsity_mask.sum(axis=1)
        beyond = np.arange(self.templates_array.shape[2])[None, :] >= num_active[:, None]  # (units, width)
        return not np.any(self.templates_array[np.broadcast_to(beyond[:, None, :], self.templates_array.shape)])

    def get_one_template_dense(self, unit_index: int) -> np.ndarray:
        """The dense ``(num_samples, num_channels)`` template of the unit at ``unit_index``."""
        if not -self.num_units <= unit_index < self.num_units:
            raise IndexError(f"unit_index {unit_index} is out of range for {self.num_units} units")
        if self.sparsity is None:
            return self.templates_array[unit_index]
        return self.sparsity.densify_waveforms(self.templates_array[unit_index], self.unit_ids[unit_index])

    def get_dense_templates(self) -> np.ndarray:
        """Dense ``(num_units, num_samples, num_channels)`` array (the stored array when dense)."""
        if self.sparsity is None:
            return self.templates_array
        return self.sparsity.densify_templates(self.templates_array)

    def to_sparse(self, sparsity) -> "Templates":
        """Sparse templates of these dense ones, given a ChannelSparsity or a boolean mask."""
        if self.sparsity is not None:
            raise ValueError("to_sparse() needs dense templates; these are already sparse")
        if not isinstance(sparsity, ChannelSparsity):
            sparsity = ChannelSparsity(np.asarray(sparsity, dtype=bool), self.unit_ids, self.channel_ids)
        if not (np.array_equal(sparsity.unit_ids, self.unit_ids) and np.array_equal(sparsity.channel_ids, self.channel_ids)):
            raise ValueError("sparsity: its unit_ids and channel_ids must be those of the templates")
        return Templates(
            templates_array=sparsity.sparsify_templates(self.templates_array),
            sampling_frequency=self.sampling_frequency,
            nbefore=self.nbefore,
            is_in_uV=self.is_in_uV,
            sparsity_mask=sparsity.mask,
            channel_ids=self.channel_ids,
            unit_ids=self.unit_ids,
            probe=self.probe,
            check_for_consistent_sparsity=False,
        )

    def to_dense(self) -> "Templates":
        """Dense templates (``self`` when already dense)."""
        if self.sparsity is None:
            return self
        return Templates(
            templates_array=self.get_dense_templates(),
            sampling_frequency=self.sampling_frequency,
            nbefore=self.nbefore,
            is_in_uV=self.is_in_uV,
            channel_ids=self.channel_ids,
            unit_ids=self.unit_ids,
            probe=self.probe,
        )

    # ---------------------------------------------------------- selections
    def select_units(self, unit_ids) -> "Templates":
        """New Templates with ``unit_ids`` only, in that order."""
        indices = _ids_to_indices(self.unit_ids, unit_ids, "unit_ids")
        return Templates(
            templates_array=self.templates_array[indices],
            sampling_frequency=self.sampling_frequency,
            nbefore=self.nbefore,
            is_in_uV=self.is_in_uV,
            sparsity_mask=None if self.sparsity_mask is None else self.sparsity_mask[indices],
            channel_ids=self.channel_ids,
            unit_ids=self.unit_ids[indices],
            probe=self.probe,
            check_for_consistent_sparsity=False,
        )

    def select_channels(self, channel_ids) -> "Templates":
        """New dense Templates with ``channel_ids`` only, in that order (dense templates only)."""
        if self.sparsity is not None:
            raise ValueError("select_channels() needs dense templates; call to_dense() first")
        indices = _ids_to_indices(self.channel_ids, channel_ids, "channel_ids")
        probe = None
        if self.probe is not None:
            probe = self.probe.get_slice(_contact_indices_of_channels(self.probe, indices, self.num_channels))
            if probe.device_channel_indices is not None:
                probe.set_device_channel_indices(np.arange(indices.size))
        return Templates(
            templates_array=self.templates_array[:, :, indices],
            sampling_frequency=self.sampling_frequency,
            nbefore=self.nbefore,
            is_in_uV=self.is_in_uV,
            channel_ids=self.channel_ids[indices],
            unit_ids=self.unit_ids,
            probe=probe,
        )

    # ------------------------------------------------------------- channels
    def get_channel_locations(self) -> np.ndarray:
        """Channel positions ``(num_channels, ndim)`` from the probe (wired order when wired)."""
        if self.probe is None:
            raise ValueError("Templates.get_channel_locations() needs a probe: create the Templates with probe=...")
        positions = np.asarray(self.probe.contact_positions, dtype=np.float64)
        if positions.shape[0] != self.num_channels:
            raise ValueError(
                f"the probe has {positions.shape[0]} contacts for {self.num_channels} template channels"
            )
        return positions[_contact_indices_of_channels(self.probe, np.arange(self.num_channels), self.num_channels)]

    def get_main_channels(self, peak_sign: str = "both", peak_mode: str = "extremum", outputs: str = "index",
                          with_dict: bool = False):
        """Main (extremum) channel of each unit.

        Parameters
        ----------
        peak_sign : "neg" | "pos" | "both", default: "both"
            Sign of the peak.
        peak_mode : "extremum" | "at_index" | "peak_to_peak", default: "extremum"
            How the amplitude of each channel is measured.
        outputs : "index" | "id", default: "index"
            Channel indices or channel ids.
        with_dict : bool, default: False
            Return ``{unit_id: channel}`` instead of an array.
        """
        from .template_tools import get_template_extremum_channel

        channels = get_template_extremum_channel(self, peak_sign=peak_sign, mode=peak_mode, outputs=outputs)
        if with_dict:
            return channels
        return np.array(list(channels.values()))

    # ------------------------------------------------------------ serialise
    def to_dict(self) -> dict:
        """Dict of arrays and plain values (no pickle); ``from_dict`` rebuilds the object."""
        return {
            "templates_array": self.templates_array,
            "sparsity_mask": self.sparsity_mask,
            "channel_ids": self.channel_ids,
            "unit_ids": self.unit_ids,
            "sampling_frequency": self.sampling_frequency,
            "nbefore": self.nbefore,
            "is_in_uV": self.is_in_uV,
            "probe": None if self.probe is None else self.probe.to_dict(array_as_list=True),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Templates":
        """Rebuild from ``to_dict()`` output, or the same dict with lists instead of arrays (JSON)."""
        missing = [k for k in ("templates_array", "sampling_frequency", "nbefore") if k not in data]
        if missing:
            raise ValueError(f"data: missing keys {missing} needed to rebuild Templates")
        probe = data.get("probe")
        if probe is not None and not hasattr(probe, "contact_positions"):
            from probeinterface import Probe

            probe = Probe.from_dict(probe)
        sparsity_mask = data.get("sparsity_mask")
        in_uv = data.get("is_in_uV", data.get("is_scaled", True))
        return cls(
            templates_array=np.asarray(data["templates_array"], dtype=data.get("dtype")),
            sampling_frequency=data["sampling_frequency"],
            nbefore=int(data["nbefore"]),
            is_in_uV=bool(in_uv),
            sparsity_mask=None if sparsity_mask is None else np.asarray(sparsity_mask, dtype=bool),
            channel_ids=None if data.get("channel_ids") is None else np.asarray(data["channel_ids"]),
            unit_ids=None if data.get("unit_ids") is None else np.asarray(data["unit_ids"]),
            probe=probe,
        )

    def to_json(self) -> str:
        """JSON text (arrays as lists, dtype kept) that ``from_json`` rebuilds exactly."""
        d = self.to_dict()
        d["dtype"] = self.templates_array.dtype.str
        for key in ("templates_array", "sparsity_mask", "channel_ids", "unit_ids"):
            if d[key] is not None:
                d[key] = d[key].tolist()
        return json.dumps(d)

    @classmethod
    def from_json(cls, json_str: str) -> "Templates":
        return cls.from_dict(json.loads(json_str))


def _ids_or_range(ids, num: int, name: str, num_name: str) -> np.ndarray:
    if ids is None:
        return np.arange(num)
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size != num:
        raise ValueError(f"{name} must hold {num_name}={num} ids, got shape {ids.shape}")
    if ids.dtype.kind == "O":
        ids = ids.astype(str)
    return ids


def _ids_to_indices(all_ids: np.ndarray, ids, name: str) -> np.ndarray:
    lookup = {k: i for i, k in enumerate(all_ids.tolist())}
    ids = np.atleast_1d(np.asarray(ids))
    try:
        return np.array([lookup[k] for k in ids.tolist()], dtype=np.int64)
    except KeyError as err:
        raise KeyError(f"{name}: {err.args[0]!r} is not among the ids {all_ids.tolist()}") from None


def _contact_indices_of_channels(probe, channel_indices: np.ndarray, num_channels: int) -> np.ndarray:
    """Contact index of each channel index: by the probe's wiring when it wires every channel, else contact order."""
    wiring = getattr(probe, "device_channel_indices", None)
    if wiring is not None:
        wiring = np.asarray(wiring)
        if wiring.size == num_channels and np.array_equal(np.sort(wiring), np.arange(num_channels)):
            contact_of_channel = np.empty(num_channels, dtype=np.int64)
            contact_of_channel[wiring] = np.arange(num_channels)
            return contact_of_channel[channel_indices]
    return np.asarray(channel_indices)


def _probe_dicts_equal(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_probe_dicts_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_probe_dicts_equal(x, y) for x, y in zip(a, b))
    return bool(np.all(np.asarray(a == b)))
