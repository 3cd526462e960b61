"""BaseRecordingSnippets: what recordings and snippets share (channels, sampling rate, probe, groups)."""

from __future__ import annotations

import numpy as np

from . import probe as probe_tools
from .base import BaseExtractor


class BaseRecordingSnippets(BaseExtractor):
    """Channel-level API common to recordings and snippets.

    Subclasses implement ``channel_slice(channel_ids, renamed_channel_ids=None)`` returning a lazy view.
    """

    def __init__(self, sampling_frequency: float, channel_ids, dtype):
        BaseExtractor.__init__(self, channel_ids)
        sampling_frequency = float(sampling_frequency)
        if not np.isfinite(sampling_frequency) or sampling_frequency <= 0:
            raise ValueError(f"sampling_frequency must be a positive number of Hz, got {sampling_frequency}")
        self._sampling_frequency = sampling_frequency
        self._dtype = np.dtype(dtype)

    # ------------------------------------------------------------ channels
    @property
    def channel_ids(self) -> np.ndarray:
        return self._main_ids

    def get_channel_ids(self) -> np.ndarray:
        return self._main_ids

    def get_num_channels(self) -> int:
        return int(self._main_ids.size)

    @property
    def sampling_frequency(self) -> float:
        return self._sampling_frequency

    def get_sampling_frequency(self) -> float:
        return self._sampling_frequency

    def get_dtype(self) -> np.dtype:
        return self._dtype

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    def ids_to_indices(self, ids, prefer_slice: bool = False):
        """Channel indices of ``ids`` (a slice when ``prefer_slice`` and they are contiguous)."""
        indices = self._main_ids_to_indices(ids, "channel_ids")
        return _as_slice_if_contiguous(indices) if prefer_slice else indices

    def channel_slice(self, channel_ids, renamed_channel_ids=None):
        raise NotImplementedError(f"{type(self).__name__} does not implement channel_slice")

    def select_channels(self, channel_ids):
        """SpikeInterface spelling of ``channel_slice(channel_ids)``."""
        return self.channel_slice(channel_ids)

    def remove_channels(self, channel_ids=None, remove_channel_ids=None):
        """A view without ``channel_ids`` (``remove_channel_ids`` is SpikeInterface's spelling)."""
        if (channel_ids is None) == (remove_channel_ids is None):
            raise ValueError("give the channels to remove as channel_ids (or remove_channel_ids), exactly once")
        to_remove = channel_ids if channel_ids is not None else remove_channel_ids
        remove_indices = self._main_ids_to_indices(to_remove, "channel_ids")
        keep = np.ones(self.get_num_channels(), dtype=bool)
        keep[remove_indices] = False
        return self.channel_slice(self.channel_ids[keep])

    # ------------------------------------------------------------- scaling
    def has_scaleable_traces(self) -> bool:
        """True when the ``gain_to_uV`` and ``offset_to_uV`` properties are set."""
        return self.get_property("gain_to_uV") is not None and self.get_property("offset_to_uV") is not None

    has_scaled_traces = has_scaleable_traces
    has_scaled = has_scaleable_traces

    def _scale_traces(self, traces: np.ndarray, channel_indices) -> np.ndarray:
        """float32 ``traces * gain_to_uV + offset_to_uV`` on the last (channel) axis."""
        if not self.has_scaleable_traces():
            raise ValueError(
                "return_scaled=True needs the gain_to_uV and offset_to_uV channel properties, which are not set"
            )
        gains = np.asarray(self.get_property("gain_to_uV"), dtype=np.float32)[channel_indices]
        offsets = np.asarray(self.get_property("offset_to_uV"), dtype=np.float32)[channel_indices]
        scaled = traces.astype(np.float32)
        scaled *= gains
        scaled += offsets
        return scaled

    def set_channel_gains(self, gains, channel_ids=None) -> None:
        gains = np.broadcast_to(np.asarray(gains, dtype=np.float64), (self._ids_count(channel_ids),))
        self.set_property("gain_to_uV", np.array(gains), ids=channel_ids)

    def set_channel_offsets(self, offsets, channel_ids=None) -> None:
        offsets = np.broadcast_to(np.asarray(offsets, dtype=np.float64), (self._ids_count(channel_ids),))
        self.set_property("offset_to_uV", np.array(offsets), ids=channel_ids)

    def get_channel_gains(self, channel_ids=None) -> np.ndarray | None:
        return self.get_property("gain_to_uV", ids=channel_ids)

    def get_channel_offsets(self, channel_ids=None) -> np.ndarray | None:
        return self.get_property("offset_to_uV", ids=channel_ids)

    def _ids_count(self, ids) -> int:
        return self.get_num_channels() if ids is None else np.atleast_1d(ids).size

    # -------------------------------------------------------------- groups
    def set_channel_groups(self, groups, channel_ids=None) -> None:
        """Set the integer ``group`` property (e.g. tetrode or shank of each channel)."""
        self.set_property("group", np.asarray(groups), ids=channel_ids, missing_value=-1)

    def get_channel_groups(self, channel_ids=None) -> np.ndarray:
        """The ``group`` property (zeros when no group was set)."""
        groups = self.get_property("group", ids=channel_ids)
        if groups is None:
            num = self.get_num_channels() if channel_ids is None else np.atleast_1d(channel_ids).size
            groups = np.zeros(num, dtype=np.int64)
        return groups

    def split_by(self, property: str = "group", outputs: str = "dict"):
        """Split channels by the values of a property into lazy channel views.

        Parameters
        ----------
        property : str, default: "group"
            Channel property to split by.
        outputs : "dict" | "list", default: "dict"
            A dict {property value: view} or a list of views (in value order).
        """
        if outputs not in ("dict", "list"):
            raise ValueError(f"outputs must be 'dict' or 'list', got {outputs!r}")
        values = self.get_property(property)
        if values is None:
            raise KeyError(f"property {property!r} is not set; available: {self.get_property_keys()}")
        if values.ndim != 1:
            raise ValueError(f"split_by needs a property with one scalar per channel; {property!r} has shape {values.shape}")
        views = {}
        for value in np.unique(values):
            views[value.item() if isinstance(value, np.generic) else value] = self.channel_slice(
                self.channel_ids[values == value]
            )
        return views if outputs == "dict" else list(views.values())

    # --------------------------------------------------------------- probe
    def has_probe(self) -> bool:
        return "contact_vector" in self._properties

    def set_probe(self, probe, group_mode: str = "by_probe", in_place: bool = False):
        """Attach a probeinterface Probe, following its wiring.

        Parameters
        ----------
        probe : probeinterface.Probe or ProbeGroup
            Must have ``device_channel_indices``; contact ``i`` is channel ``device_channel_indices[i]``.
            Channels no contact is wired to are dropped from the returned object.
        group_mode : "by_probe" | "by_shank", default: "by_probe"
            How the ``group`` property is set.
        in_place : bool, default: False
            Modify this object instead of returning a new view (then every channel must be wired).

        Returns
        -------
        recording : same kind of object
            A channel view carrying the probe (``self`` when ``in_place``).
        """
        return self.set_probegroup(probe, group_mode=group_mode, in_place=in_place)

    def set_probes(self, probe_or_probegroup, group_mode: str = "by_probe", in_place: bool = False):
        """Alias of ``set_probegroup`` kept for SpikeInterface users."""
        return self.set_probegroup(probe_or_probegroup, group_mode=group_mode, in_place=in_place)

    def set_probegroup(self, probegroup, group_mode: str = "by_probe", in_place: bool = False):
        """Attach a probeinterface ProbeGroup (or Probe); see ``set_probe``."""
        probegroup = probe_tools.as_probegroup(probegroup)
        channel_indices, contact_vector, groups = probe_tools.wire_probegroup(
            probegroup, self.get_num_channels(), group_mode
        )
        if in_place:
            if channel_indices.size != self.get_num_channels():
                raise ValueError(
                    f"probe wires {channel_indices.size} of {self.get_num_channels()} channels; in_place=True "
                    "needs every channel wired (use in_place=False to drop the unwired ones)"
                )
            target = self
        else:
            target = self.channel_slice(self.channel_ids[channel_indices])
        for key in [k for k in target._annotations if k.startswith("probe_") and k.endswith("_planar_contour")]:
            del target._annotations[key]
        target.set_property("contact_vector", contact_vector)
        target.set_property("location", probe_tools.contact_locations(contact_vector))
        target.set_property("group", groups)
        target.annotate(**probe_tools.probe_annotations(probegroup))
        return target

    def get_probegroup(self):
        """The attached probes as a ProbeGroup, wired to this object's channels in order."""
        if not self.has_probe():
            raise ValueError(
                "there is no probe attached to this object; use set_probe() or set_dummy_probe_from_locations()"
            )
        return probe_tools.probegroup_from_contact_vector(self.get_property("contact_vector"), self._annotations)

    def get_probes(self) -> list:
        return self.get_probegroup().probes

    def get_probe(self):
        """The attached Probe (an error if several probes are attached: use get_probegroup)."""
        probes = self.get_probegroup().probes
        if len(probes) != 1:
            raise ValueError(f"{len(probes)} probes are attached; use get_probegroup()")
        return probes[0]

    def set_dummy_probe_from_locations(self, locations, shape: str = "circle", shape_params: dict | None = None,
                                       axes: str = "xy") -> None:
        """Attach (in place) a simple probe with one contact per channel at ``locations``."""
        locations = np.asarray(locations)
        if locations.ndim != 2 or locations.shape[0] != self.get_num_channels():
            raise ValueError(
                f"locations must have one row per channel ({self.get_num_channels()}), got shape {locations.shape}"
            )
        probe = probe_tools.dummy_probe_from_locations(locations, shape=shape, shape_params=shape_params, axes=axes)
        self.set_probe(probe, in_place=True)

    def set_channel_locations(self, locations, channel_ids=None) -> None:
        """Set the ``location`` property directly (without a probe)."""
        if self.has_probe():
            raise ValueError("a probe is attached: its contact positions define the locations")
        self.set_property("location", np.asarray(locations, dtype=np.float64), ids=channel_ids)

    def get_channel_locations(self, channel_ids=None, axes: str = "xy") -> np.ndarray:
        """Channel positions (``location`` property) as a (num_channels, len(axes)) float array."""
        locations = self.get_property("location", ids=channel_ids)
        if locations is None:
            raise ValueError(
                "channel locations are not set; attach a probe with set_probe() or set_dummy_probe_from_locations()"
            )
        all_axes = "xyz"[: locations.shape[1]]
        if any(a not in all_axes for a in axes):
            raise ValueError(f"axes must be letters of {all_axes!r}, got {axes!r}")
        return np.asarray(locations[:, [all_axes.index(a) for a in axes]], dtype=np.float64)

    def has_3d_locations(self) -> bool:
        locations = self.get_property("location")
        return locations is not None and locations.shape[1] == 3

    def clear_channel_locations(self) -> None:
        for key in ("location", "contact_vector"):
            self._properties.pop(key, None)


def _as_slice_if_contiguous(indices: np.ndarray):
    """A slice equal to ``indices`` when they are consecutive ascending (so memmaps read without copying)."""
    if indices.size == 0:
        return indices
    if indices.size == 1 or np.all(np.diff(indices) == 1):
        return slice(int(indices[0]), int(indices[-1]) + 1)
    return indices
