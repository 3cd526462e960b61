"""Metadata files of saved folders: ``properties/*.npy``, ``annotations.json``, ``probegroup.json``,
``provenance.json``, and the SpikeInterface-shaped ``si_folder.json`` dicts.

Everything is encoded in memory first (``collect_metadata``) so that a property or annotation that
cannot be stored fails the save before any trace is written.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..version import __version__
from .safe_files import CorruptFolderError, load_npy, read_json, to_json_compatible, write_json

# Layout version written in SpikeInterface-shaped JSON files: these folders follow SI 0.105.3.
SI_LAYOUT_VERSION = "0.105.3"
SICORE_INFO_FILE = "sicore_info.json"

# Derived from probegroup.json on load, so not stored again when a probe is attached.
_PROBE_PROPERTIES = ("contact_vector", "location")
_PROBE_ANNOTATION = re.compile(r"^(probes_info|probe_\d+_planar_contour)$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\- ]*$")

# SpikeInterface's "main" properties/annotations, which it copies into si_folder.json.
_SI_MAIN_PROPERTIES = {
    "recording": ("group", "gain_to_uV", "offset_to_uV", "gain_to_physical_unit", "offset_to_physical_unit",
                  "physical_unit"),
    "sorting": ("main_channel_id",),
    "snippets": ("group", "gain_to_uV", "offset_to_uV"),
}


@dataclass
class FolderMetadata:
    """Properties, annotations, probe and provenance of an object, ready to be written."""

    properties: dict[str, np.ndarray]
    annotations: dict[str, Any]
    probegroup: Any  # probeinterface.ProbeGroup or None
    provenance: dict | None


def collect_metadata(extractor, final_folder: Path, with_probe: bool = True) -> FolderMetadata:
    """Encode the metadata of ``extractor`` for a folder that will live at ``final_folder``.

    Parameters
    ----------
    extractor : BaseExtractor
        The object being saved.
    final_folder : Path
        Where the folder will be once renamed into place (provenance paths are relative to it).
    with_probe : bool, default: True
        Store an attached probe as ``probegroup.json`` (recordings and snippets).
    """
    has_probe = with_probe and hasattr(extractor, "has_probe") and extractor.has_probe()
    probegroup = extractor.get_probegroup() if has_probe else None
    properties = {}
    for key in extractor.get_property_keys():
        if has_probe and key in _PROBE_PROPERTIES:
            continue
        values = storable_property(key, extractor.get_property(key))
        if values is not None:
            properties[key] = values
    annotations = {}
    for key, value in extractor._annotations.items():
        if has_probe and _PROBE_ANNOTATION.match(str(key)):
            continue
        annotations[str(key)] = to_json_compatible(value, f"annotation {key!r}")
    return FolderMetadata(properties, annotations, probegroup, provenance_of(extractor, final_folder))


def storable_property(key: str, values: np.ndarray) -> np.ndarray | None:
    """The property as an array that .npy/zarr store without pickling (None, with a warning, if impossible)."""
    if not isinstance(key, str) or not _SAFE_NAME.match(key) or key in (".", ".."):
        raise ValueError(
            f"property {key!r} cannot be saved: its name becomes a file name, so it must use letters, digits, "
            "'_', '-', '.' or spaces and not start with '.' or '-'"
        )
    values = np.asarray(values)
    if values.dtype.kind == "O":
        as_list = values.tolist()
        flat = values.ravel().tolist()
        if flat and all(isinstance(v, str) for v in flat):
            return np.asarray(as_list, dtype=str)
        warnings.warn(f"property {key!r} holds Python objects and is not saved (sicore never pickles)")
        return None
    return values


def provenance_of(extractor, final_folder: Path) -> dict | None:
    """``to_dict`` of a JSON-serialisable object with paths relative to ``final_folder`` (else None)."""
    if not extractor.is_json_serializable():
        return None
    try:
        d = extractor.to_dict(include_annotations=True, include_properties=True, relative_to=final_folder)
        return to_json_compatible(d, "provenance")
    except (TypeError, ValueError) as err:
        warnings.warn(f"the provenance of {type(extractor).__name__} is not saved: {err}")
        return None


def write_metadata(folder: Path, metadata: FolderMetadata) -> None:
    """Write ``properties/``, ``annotations.json``, ``probegroup.json`` and ``provenance.json``."""
    from probeinterface import write_probeinterface

    properties_folder = folder / "properties"
    properties_folder.mkdir(exist_ok=True)
    for key, values in metadata.properties.items():
        np.save(properties_folder / f"{key}.npy", values, allow_pickle=False)
    write_json(folder / "annotations.json", metadata.annotations)
    if metadata.probegroup is not None:
        write_probeinterface(folder / "probegroup.json", metadata.probegroup)
    if metadata.provenance is not None:
        write_json(folder / "provenance.json", metadata.provenance)


def si_folder_dict(si_class: str, kwargs: dict, metadata: FolderMetadata, kind: str) -> dict:
    """A SpikeInterface-shaped ``si_folder.json`` dict (main annotations/properties only, like SI)."""
    main_properties = {}
    for key in _SI_MAIN_PROPERTIES[kind]:
        values = metadata.properties.get(key)
        main_properties[key] = None if values is None else to_json_compatible(values)
    annotations = {k: metadata.annotations[k] for k in ("name", "is_filtered") if k in metadata.annotations}
    return {
        "class": si_class,
        "module": "spikeinterface",
        "version": SI_LAYOUT_VERSION,
        "kwargs": kwargs,
        "annotations": annotations,
        "properties": main_properties,
        "relative_paths": True,
    }


def sicore_info(fmt: str, **fields) -> dict:
    """The sicore-only ``sicore_info.json`` content (what SI's files cannot say, e.g. exact sizes)."""
    return {"format": fmt, "sicore_version": __version__, **fields}


# ------------------------------------------------------------------ loading
def load_probegroup(folder: Path):
    """The ProbeGroup of ``probegroup.json`` (or legacy ``probe.json``), None when there is none."""
    from probeinterface import read_probeinterface

    for name in ("probegroup.json", "probe.json"):
        probe_file = folder / name
        if probe_file.is_file():
            read_json(probe_file)  # a broken file is an error naming it
            try:
                probegroup = read_probeinterface(probe_file)
            except Exception as err:  # probeinterface raises various types on bad content
                raise CorruptFolderError(f"{probe_file}: not a valid probeinterface file ({err})") from None
            if name == "probe.json":  # SI < 0.105: contacts stored in file order, wiring gives channel order
                vector = probegroup.to_numpy(complete=True)
                order = np.argsort(vector["device_channel_indices"], kind="stable")
                if not np.array_equal(order, np.arange(order.size)):
                    probegroup = probegroup.get_slice(order)
            return probegroup, probe_file
    return None, None


def attach_probegroup(extractor, folder: Path) -> None:
    """Attach the folder's probe in place (channel i is contact i, as saved)."""
    probegroup, probe_file = load_probegroup(folder)
    if probegroup is None:
        return
    num_contacts = sum(p.get_contact_count() for p in probegroup.probes)
    if num_contacts != extractor.get_num_channels():
        raise CorruptFolderError(
            f"{probe_file}: the probe has {num_contacts} contacts for {extractor.get_num_channels()} channels"
        )
    offset = 0
    for probe in probegroup.probes:
        count = probe.get_contact_count()
        probe.set_device_channel_indices(np.arange(offset, offset + count))
        offset += count
    try:
        extractor.set_probegroup(probegroup, in_place=True)
    except ValueError as err:
        raise CorruptFolderError(f"{probe_file}: cannot attach the probe ({err})") from None


def load_properties(folder: Path, extractor) -> None:
    """Set every ``properties/*.npy`` as a property; pickled files are skipped with a warning."""
    properties_folder = folder / "properties"
    if not properties_folder.is_dir():
        return
    num_ids = len(extractor._main_ids)
    for file in sorted(properties_folder.glob("*.npy")):
        key = file.stem
        if key == "contact_vector" and extractor.get_property("contact_vector") is not None:
            continue  # the probe file is authoritative
        try:
            values = load_npy(file)
        except CorruptFolderError as err:
            if "pickled" in str(err):
                warnings.warn(f"{err}: property {key!r} skipped")
                continue
            raise
        if values.ndim == 0 or values.shape[0] != num_ids:
            raise CorruptFolderError(f"{file}: property {key!r} has shape {values.shape}, expected {num_ids} values")
        extractor.set_property(key, values)


def load_annotations(folder: Path, extractor, fallback_file: str | None = "si_folder.json") -> None:
    """Add ``annotations.json`` (or, for SI < 0.105, the annotations of ``fallback_file``)."""
    annotations = read_json(folder / "annotations.json", required=False)
    if annotations is None and fallback_file is not None:
        d = read_json(folder / fallback_file, required=False)
        annotations = d.get("annotations") if isinstance(d, dict) else None
    if annotations is None:
        return
    if not isinstance(annotations, dict):
        raise CorruptFolderError(f"{folder / 'annotations.json'}: expected a JSON object")
    extractor._annotations.update(annotations)
