"""A SortingAnalyzer in a zarr (format v2) directory store, laid out as SpikeInterface 0.105.3 does.

Layout::

    .zattrs                  {settings, spikeinterface_info}
    recording                1-element object array (JSON filter): the recording provenance
    recording_info/.zattrs   {recording_attributes, probegroup}
    sparsity_mask            bool (num_units, num_channels), when sparse
    sorting/                 ZarrSortingExtractor layout: unit_ids, spikes/{sample_index, unit_index,
                             segment_slices, sample_index_chunk_firsts}, properties/*, attrs
    extensions/<name>/       arrays; attrs {info, params, run_info}

No consolidated metadata is written: each extension write touches only its own group (so several
processes may write different extensions of one store), and readers (sicore, SpikeInterface) fall back
to the plain metadata. Extension groups are written as a hidden sibling and renamed into place, with
``run_info`` set last.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from ..io.atomic import TMP_MARK, atomic_folder
from ..io.safe_files import CorruptFolderError, to_json_compatible
from .storage import (
    AnalyzerRoot,
    Deferred,
    ExtensionParts,
    IncompleteExtensionError,
    StackedArrays,
    delete_extension_folder,
    extension_json_params,
    load_recording_provenance,
    rec_attributes_from_json,
    rec_attributes_to_json,
    recording_provenance,
    spikeinterface_info,
)


def _probegroup_from_dict(d: dict):
    from probeinterface import ProbeGroup

    return ProbeGroup.from_dict(d)


def _compressor():
    from numcodecs import Blosc

    return Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE)


def _open(folder: Path, mode: str):
    import zarr

    if mode == "r":
        return zarr.open_group(str(folder), mode="r", zarr_format=2, use_consolidated=False)
    return zarr.open_group(str(folder), mode=mode, zarr_format=2)


def _write_array(group, name: str, values: np.ndarray, compress: bool = True) -> None:
    values = np.ascontiguousarray(values)
    if values.dtype.kind == "O":
        raise TypeError(f"data {name!r} holds Python objects; sicore never pickles")
    if values.dtype.kind == "U":
        compress = False  # SpikeInterface stores id strings uncompressed
    group.create_array(name, data=values, compressors=_compressor() if compress else None, overwrite=True)


def write_json_object_array(folder: Path, value) -> None:
    """A zarr v2 one-element object array holding ``value`` with numcodecs' JSON filter (as SI writes it).

    zarr-python 3 cannot create object arrays, so the two files are written directly.
    """
    from numcodecs import JSON, Blosc

    folder.mkdir(parents=True, exist_ok=True)
    json_filter = JSON()
    compressor = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
    array = np.empty(1, dtype=object)
    array[0] = to_json_compatible(value, "zarr object array")
    meta = {
        "chunks": [1], "compressor": compressor.get_config(), "dtype": "|O", "fill_value": 0,
        "filters": [json_filter.get_config()], "order": "C", "shape": [1], "zarr_format": 2,
    }
    (folder / ".zarray").write_text(json.dumps(meta, indent=4))
    (folder / "0").write_bytes(compressor.encode(json_filter.encode(array)))


def read_json_object_array(folder: Path):
    """The first element of a one-chunk zarr v2 object array with a JSON filter (``write_json_object_array``)."""
    from numcodecs import get_codec

    meta_file = folder / ".zarray"
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CorruptFolderError(f"{meta_file}: not a zarr array ({err})") from None
    filters = meta.get("filters") or []
    if [f.get("id") for f in filters] != ["json2"]:
        raise CorruptFolderError(f"{meta_file}: expected a JSON-encoded object array, got filters {filters}")
    raw = (folder / "0").read_bytes()
    if meta.get("compressor"):
        raw = get_codec(meta["compressor"]).decode(raw)
    return get_codec(filters[0]).decode(raw)[0]


class ZarrStorage:
    """A SpikeInterface-compatible zarr analyzer store (see the module docstring).

    Parameters
    ----------
    folder : str or Path
        The store folder (conventionally ending in ``.zarr``).
    """

    format = "zarr"

    def __init__(self, folder):
        self.folder = Path(os.path.abspath(folder))

    # ------------------------------------------------------------------ root
    @classmethod
    def create(cls, folder, root: AnalyzerRoot, overwrite: bool = False) -> "ZarrStorage":
        final = Path(os.path.abspath(folder))
        with atomic_folder(final, overwrite=overwrite, argument="folder") as tmp:
            group = _open(tmp, "w")
            group.attrs.update({"settings": root.settings, "spikeinterface_info": spikeinterface_info()})
            provenance = recording_provenance(root.recording, final)
            if provenance is not None:
                write_json_object_array(tmp / "recording", provenance)
            info = group.create_group("recording_info")
            info_attrs = {"recording_attributes": rec_attributes_to_json(root.rec_attributes)}
            if root.probegroup is not None:
                info_attrs["probegroup"] = to_json_compatible(root.probegroup.to_dict(array_as_list=True))
            info.attrs.update(info_attrs)
            if root.sparsity_mask is not None:
                _write_array(group, "sparsity_mask", np.asarray(root.sparsity_mask, dtype=bool))
            _write_sorting(group.create_group("sorting"), root.sorting, final)
            group.create_group("extensions")
        return cls(final)

    def load_root(self, load_recording: bool = True, deferred: bool = False) -> AnalyzerRoot:
        """As ``BinaryFolderStorage.load_root``."""
        if not self.folder.is_dir():
            raise FileNotFoundError(f"folder {self.folder} does not exist")
        group = _open(self.folder, "r")
        settings = dict(group.attrs.get("settings") or {})
        if "recording_info" not in group or "sorting" not in group:
            raise CorruptFolderError(f"{self.folder}: not a SortingAnalyzer zarr store (no sorting/recording_info)")
        info_attrs = dict(group["recording_info"].attrs)
        rec_attributes = rec_attributes_from_json(info_attrs.get("recording_attributes"),
                                                  self.folder / "recording_info" / ".zattrs")
        probegroup = None
        if info_attrs.get("probegroup") is not None:
            probegroup = Deferred(lambda: _probegroup_from_dict(info_attrs["probegroup"]))
            probegroup = probegroup if deferred else probegroup.load()
        sparsity_mask = np.asarray(group["sparsity_mask"][...], dtype=bool) if "sparsity_mask" in group else None
        sorting = _read_sorting(group["sorting"], self.folder / "sorting")
        recording = None
        if load_recording and (self.folder / "recording" / ".zarray").is_file():
            recording = Deferred(lambda: load_recording_provenance(read_json_object_array(self.folder / "recording"),
                                                                   self.folder))
            recording = recording if deferred else recording.load()
        return AnalyzerRoot(sorting, recording, rec_attributes, probegroup, sparsity_mask, settings)

    # ------------------------------------------------------------ extensions
    @property
    def extensions_folder(self) -> Path:
        return self.folder / "extensions"

    def save_extension(self, extension) -> None:
        if not self.extensions_folder.is_dir():
            _open(self.folder, "a").create_group("extensions")
        target = self.extensions_folder / extension.extension_name
        params = extension_json_params(extension.params)
        with atomic_folder(target, overwrite=True, argument="extension group") as tmp:
            group = _open(tmp, "w")
            group.attrs.update({"info": extension.info(), "params": params})
            for key, value in extension.data.items():
                if isinstance(value, (np.ndarray, StackedArrays)):
                    _write_array(group, key, np.asarray(value))
                elif isinstance(value, (dict, list)):
                    write_json_object_array(tmp / key, value)
                    (tmp / key / ".zattrs").write_text(json.dumps({"dict": True}))
                else:
                    raise TypeError(f"extension {extension.extension_name!r}: data {key!r} is a "
                                    f"{type(value).__name__}; storable data are numpy arrays, dicts and lists")
            # set last: its presence marks a complete extension
            group.attrs["run_info"] = to_json_compatible(extension.run_info)

    def delete_extension(self, extension_name: str) -> None:
        delete_extension_folder(self.extensions_folder, extension_name)

    def saved_extension_names(self) -> list[str]:
        if not self.extensions_folder.is_dir():
            return []
        return sorted(p.name for p in self.extensions_folder.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and TMP_MARK not in p.name
                      and (p / ".zgroup").is_file())

    def load_extension(self, extension_name: str) -> ExtensionParts:
        folder = self.extensions_folder / extension_name
        if not (folder / ".zgroup").is_file():
            raise KeyError(f"extension_name {extension_name!r} is not saved in {self.folder}")
        group = _open(folder, "r")
        attrs = dict(group.attrs)
        run_info = attrs.get("run_info")
        if not isinstance(run_info, dict) or not run_info.get("run_completed", False):
            raise IncompleteExtensionError(
                f"{folder}: extension {extension_name!r} is incomplete (no completed run_info); recompute it"
            )
        data = {}
        for key in sorted(p.name for p in folder.iterdir() if (p / ".zarray").is_file()):
            meta = json.loads((folder / key / ".zarray").read_text())
            if meta.get("dtype") == "|O":
                if [f.get("id") for f in meta.get("filters") or []] == ["json2"]:
                    data[key] = read_json_object_array(folder / key)
                else:
                    warnings.warn(f"{folder / key}: pickled/object data is never loaded by sicore; skipped")
                continue
            data[key] = np.asarray(group[key][...])
        return ExtensionParts(attrs.get("params", {}), data, run_info)


# ------------------------------------------------------------------------ sorting group
def _write_sorting(group, sorting, final_folder: Path) -> None:
    """The ZarrSortingExtractor layout SpikeInterface reads (``sorting/`` of a zarr analyzer)."""
    from ..io.folder_metadata import storable_property

    spikes = sorting.to_spike_vector()
    num_segments = sorting.get_num_segments()
    group.attrs.update({
        "sampling_frequency": float(sorting.sampling_frequency),
        "num_segments": int(num_segments),
        "annotations": to_json_compatible(sorting._annotations, "sorting annotations"),
    })
    unit_ids = np.asarray(sorting.unit_ids)
    _write_array(group, "unit_ids", unit_ids, compress=False)
    spikes_group = group.create_group("spikes")
    _write_array(spikes_group, "sample_index", np.asarray(spikes["sample_index"], dtype=np.int64))
    _write_array(spikes_group, "unit_index", np.asarray(spikes["unit_index"], dtype=np.int64))
    bounds = np.searchsorted(spikes["segment_index"], np.arange(num_segments + 1), side="left")
    segment_slices = np.stack([bounds[:-1], bounds[1:]], axis=1).astype(np.int64)
    _write_array(spikes_group, "segment_slices", segment_slices, compress=False)
    firsts = spikes["sample_index"][:1].astype(np.int64)
    _write_array(spikes_group, "sample_index_chunk_firsts", firsts, compress=False)
    keys = sorting.get_property_keys()
    if keys:
        properties = group.create_group("properties")
        for key in keys:
            values = storable_property(key, sorting.get_property(key))
            if values is not None:
                _write_array(properties, key, values, compress=values.dtype.kind != "U")


def _read_sorting(group, folder: Path):
    from ..numpy_objects import NumpySorting
    from ..sorting import SPIKE_VECTOR_DTYPE

    attrs = dict(group.attrs)
    try:
        num_segments = int(attrs["num_segments"])
        sampling_frequency = float(attrs["sampling_frequency"])
        unit_ids = np.asarray(group["unit_ids"][...])
        sample_index = np.asarray(group["spikes"]["sample_index"][...])
        unit_index = np.asarray(group["spikes"]["unit_index"][...])
        segment_slices = np.asarray(group["spikes"]["segment_slices"][...])
    except KeyError as err:
        raise CorruptFolderError(f"{folder}: the sorting group lacks {err}") from None
    spikes = np.zeros(sample_index.size, dtype=SPIKE_VECTOR_DTYPE)
    spikes["sample_index"] = sample_index
    spikes["unit_index"] = unit_index
    for segment_index, (start, end) in enumerate(segment_slices.tolist()):
        spikes["segment_index"][start:end] = segment_index
    sorting = NumpySorting(spikes, sampling_frequency, unit_ids, num_segments=num_segments)
    sorting._annotations.update(attrs.get("annotations") or {})
    if "properties" in group:
        for key in group["properties"].array_keys():
            values = np.asarray(group["properties"][key][...])
            if values.dtype.kind != "O" and values.shape[:1] == (unit_ids.size,):
                sorting.set_property(key, values)
    return sorting
