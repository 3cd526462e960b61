"""probeinterface glue: attach a Probe/ProbeGroup to channels, and rebuild it from channel properties.

A probe lives on an object as channel properties (so every channel slice or view carries it):
``contact_vector`` (probeinterface's complete structured array, one row per channel, in channel
order), ``location`` and ``group``; probe-level annotations and planar contours are annotations.

probeinterface is imported only by the functions that build or take Probe objects: its import costs
about 80 ms (it pulls in ``requests``), which recordings that only read ``location`` never pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import probeinterface as pi

_GROUP_MODES = ("by_probe", "by_shank")


def as_probegroup(probe_or_probegroup) -> pi.ProbeGroup:
    """Wrap a Probe (or a list of probes) into a ProbeGroup; pass a ProbeGroup through."""
    import probeinterface as pi

    if isinstance(probe_or_probegroup, pi.ProbeGroup):
        return probe_or_probegroup
    if isinstance(probe_or_probegroup, pi.Probe):
        probegroup = pi.ProbeGroup()
        probegroup.add_probe(probe_or_probegroup)
        return probegroup
    if isinstance(probe_or_probegroup, (list, tuple)) and all(isinstance(p, pi.Probe) for p in probe_or_probegroup):
        probegroup = pi.ProbeGroup()
        for probe in probe_or_probegroup:
            probegroup.add_probe(probe)
        return probegroup
    raise ValueError(
        f"probe must be a probeinterface Probe, ProbeGroup or list of Probes, got {type(probe_or_probegroup).__name__}"
    )


def wire_probegroup(probegroup: pi.ProbeGroup, num_channels: int, group_mode: str):
    """Map a probegroup's wired contacts onto channels.

    Returns
    -------
    channel_indices : np.ndarray
        Indices of the channels that are wired to a contact, sorted (the channels kept).
    contact_vector : np.ndarray
        Complete contact structured array, one row per kept channel, in channel order.
    groups : np.ndarray
        Integer group of each kept channel (probe index or global shank index).
    """
    if group_mode not in _GROUP_MODES:
        raise ValueError(f"group_mode must be one of {_GROUP_MODES}, got {group_mode!r}")
    if len(probegroup.probes) == 0:
        raise ValueError("probe: the probegroup holds no probe")
    for probe in probegroup.probes:
        if probe.device_channel_indices is None:
            raise ValueError(
                "probe: device_channel_indices is not set; wire the probe first, e.g. "
                "probe.set_device_channel_indices(np.arange(num_contacts))"
            )
    contact_vector = probegroup.to_numpy(complete=True)
    device_indices = contact_vector["device_channel_indices"]
    wired = device_indices >= 0
    if not np.any(wired):
        raise ValueError("probe: no contact is wired (all device_channel_indices are -1)")
    wired_indices = device_indices[wired]
    if np.unique(wired_indices).size != wired_indices.size:
        raise ValueError("probe: device_channel_indices wires two contacts to the same channel")
    if wired_indices.max() >= num_channels:
        raise ValueError(
            f"probe: device_channel_indices reach channel index {int(wired_indices.max())} but the object has "
            f"{num_channels} channels (the probe has {contact_vector.size} contacts, {wired_indices.size} wired)"
        )
    contact_vector = contact_vector[wired]
    order = np.argsort(contact_vector["device_channel_indices"], kind="stable")
    contact_vector = contact_vector[order]
    if group_mode == "by_probe":
        groups = contact_vector["probe_index"].astype(np.int64)
    else:
        keys = [f"{p}\x00{s}" for p, s in zip(contact_vector["probe_index"], contact_vector["shank_ids"])]
        _, groups = np.unique(np.asarray(keys), return_inverse=True)
        groups = groups.astype(np.int64)
    channel_indices = contact_vector["device_channel_indices"].astype(np.int64)
    # the channels are re-indexed 0..n-1 in the new object
    contact_vector["device_channel_indices"] = np.arange(contact_vector.size)
    return channel_indices, contact_vector, groups


def contact_locations(contact_vector: np.ndarray) -> np.ndarray:
    """(num_channels, ndim) float array of contact positions from a contact vector."""
    axes = ["x", "y"] + (["z"] if "z" in contact_vector.dtype.names else [])
    return np.column_stack([contact_vector[a] for a in axes]).astype(np.float64)


def probe_annotations(probegroup: pi.ProbeGroup) -> dict:
    """Annotations that keep what the contact vector loses (probe annotations and planar contours)."""
    annotations = {"probes_info": [dict(p.annotations) for p in probegroup.probes]}
    for probe_index, probe in enumerate(probegroup.probes):
        if probe.probe_planar_contour is not None:
            annotations[f"probe_{probe_index}_planar_contour"] = np.asarray(probe.probe_planar_contour).tolist()
    return annotations


def probegroup_from_contact_vector(contact_vector: np.ndarray, annotations: dict) -> pi.ProbeGroup:
    """Rebuild a ProbeGroup (wired to channels 0..n-1 in order) from a contact vector property."""
    import probeinterface as pi

    contact_vector = np.array(contact_vector, copy=True)
    contact_vector["device_channel_indices"] = np.arange(contact_vector.size)
    probegroup = pi.ProbeGroup.from_numpy(contact_vector)
    probes_info = annotations.get("probes_info", None)
    for probe_index, probe in enumerate(probegroup.probes):
        if probes_info is not None and probe_index < len(probes_info):
            probe.annotate(**probes_info[probe_index])
        contour = annotations.get(f"probe_{probe_index}_planar_contour", None)
        if contour is not None:
            probe.set_planar_contour(np.asarray(contour))
    return probegroup


def dummy_probe_from_locations(locations, shape: str = "circle", shape_params: dict | None = None, axes: str = "xy"):
    """A wired probe with one contact per channel at ``locations`` ((num_channels, 2 or 3) array)."""
    import probeinterface as pi

    locations = np.asarray(locations, dtype=np.float64)
    if locations.ndim != 2 or locations.shape[1] not in (2, 3):
        raise ValueError(f"locations must have shape (num_channels, 2 or 3), got {locations.shape}")
    shape_params = {"radius": 1} if shape_params is None else shape_params
    ndim = 3 if axes == "xyz" else 2
    if locations.shape[1] == 3 and ndim == 2:
        locations = locations[:, ["xyz".index(a) for a in axes]]
    probe = pi.Probe(ndim=ndim)
    probe.set_contacts(locations, shapes=shape, shape_params=shape_params)
    probe.set_device_channel_indices(np.arange(locations.shape[0]))
    if ndim == 2:
        probe.create_auto_shape()
    return probe
