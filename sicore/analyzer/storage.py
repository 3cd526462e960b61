"""Where an analyzer keeps its parts: in memory, or in a SpikeInterface-compatible ``binary_folder``.

A storage writes the analyzer's root (settings, sorting copy, recording provenance and attributes,
sparsity) once, then saves, loads and deletes extensions. Every write is atomic: an extension is
written into a hidden temporary sibling (``run_info.json`` last) and renamed into place, so a killed
process leaves the previous extension or none, never a half-written one that loads as complete.

The zarr storage lives in ``zarr_storage.py`` and follows the same interface.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..io.atomic import TMP_MARK, atomic_folder, make_temporary_sibling
from ..io.safe_files import CorruptFolderError, load_npy, read_json, to_json_compatible, write_json

SI_LAYOUT_VERSION = "0.105.3"


def delete_extension_folder(extensions_folder: Path, extension_name: str) -> None:
    """Remove ``extensions_folder/extension_name`` (a folder or a zarr group) if it exists.

    It is renamed to a hidden sibling first, so a crash during the removal leaves nothing that looks
    like the extension.
    """
    target = extensions_folder / extension_name
    if not target.exists():
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{extension_name}.sicore-old-", dir=extensions_folder))
    os.rmdir(trash)
    os.rename(target, trash)
    shutil.rmtree(trash, ignore_errors=True)


class IncompleteExtensionError(CorruptFolderError):
    """A saved extension lacks ``run_info.json`` or says ``run_completed: false`` (its compute was cut short)."""


@dataclass
class AnalyzerRoot:
    """What an analyzer is made of, apart from its extensions."""

    sorting: Any
    recording: Any  # BaseRecording or None (recordingless)
    rec_attributes: dict
    probegroup: Any  # probeinterface.ProbeGroup or None
    sparsity_mask: np.ndarray | None
    settings: dict = field(default_factory=dict)


class Deferred:
    """A part of a saved analyzer read only when first used: the recording (rebuilt from its provenance)
    and the probe group cost a job that never touches them (random_spikes, templates from waveforms)
    most of its load time, probeinterface's import included."""

    def __init__(self, load):
        self.load = load


def resolve(value):
    """``value``, or what a ``Deferred`` value reads."""
    return value.load() if isinstance(value, Deferred) else value


@dataclass
class ExtensionParts:
    """What a storage holds of one extension."""

    params: dict
    data: dict
    run_info: dict


def spikeinterface_info() -> dict:
    return {"version": SI_LAYOUT_VERSION, "dev_mode": False, "object": "SortingAnalyzer"}


def extension_json_params(params: dict) -> dict:
    """``params`` as JSON (tuples become lists); raises naming the parameter that JSON cannot hold."""
    return json.loads(json.dumps(to_json_compatible(params, "params")))


class MemoryStorage:
    """Keeps nothing on disk: ``save_extension`` and ``delete_extension`` do nothing."""

    format = "memory"
    folder = None

    def save_extension(self, extension) -> None:
        pass

    def delete_extension(self, extension_name: str) -> None:
        pass

    def saved_extension_names(self) -> list[str]:
        return []

    def load_extension(self, extension_name: str) -> ExtensionParts:
        raise KeyError(f"extension_name {extension_name!r}: an in-memory analyzer has no saved extensions")


class BinaryFolderStorage:
    """A SpikeInterface ``binary_folder`` analyzer.

    Layout::

        spikeinterface_info.json   {version, dev_mode, object: "SortingAnalyzer"}
        settings.json              {return_in_uV, peak_sign, peak_mode}
        recording.json             recording provenance, paths relative to the analyzer folder (when serialisable)
        recording_info/            recording_attributes.json, probegroup.json
        sparsity_mask.npy          bool (num_units, num_channels), when sparse
        sorting/                   numpy-folder copy of the sorting
        extensions/<name>/         params.json, info.json, data (.npy / .json), run_info.json (written last)

    Parameters
    ----------
    folder : str or Path
        The analyzer folder.
    """

    format = "binary_folder"

    def __init__(self, folder):
        self.folder = Path(os.path.abspath(folder))

    # ------------------------------------------------------------------ root
    @classmethod
    def create(cls, folder, root: AnalyzerRoot, overwrite: bool = False) -> "BinaryFolderStorage":
        """Write the analyzer root atomically (into a temporary sibling renamed into place)."""
        final = Path(os.path.abspath(folder))
        with atomic_folder(final, overwrite=overwrite, argument="folder") as tmp:
            write_json(tmp / "spikeinterface_info.json", spikeinterface_info())
            write_json(tmp / "settings.json", root.settings)
            provenance = recording_provenance(root.recording, final)
            if provenance is not None:
                write_json(tmp / "recording.json", provenance)
            info_folder = tmp / "recording_info"
            info_folder.mkdir()
            write_json(info_folder / "recording_attributes.json", rec_attributes_to_json(root.rec_attributes))
            if root.probegroup is not None:
                from probeinterface import write_probeinterface

                write_probeinterface(info_folder / "probegroup.json", root.probegroup)
            if root.sparsity_mask is not None:
                np.save(tmp / "sparsity_mask.npy", np.asarray(root.sparsity_mask, dtype=bool), allow_pickle=False)
            from ..io.numpy_folder import write_numpy_folder

            write_numpy_folder(root.sorting, tmp / "sorting")
            (tmp / "extensions").mkdir()
        return cls(final)

    def load_root(self, load_recording: bool = True, deferred: bool = False) -> AnalyzerRoot:
        """Read the root; the recording is rebuilt from its provenance when possible, else None.
        ``deferred``: the recording and the probe group are ``Deferred``, read on first use."""
        folder = self.folder
        if not folder.is_dir():
            raise FileNotFoundError(f"folder {folder} does not exist")
        settings = read_json(folder / "settings.json", required=False) or {}
        info_folder = folder / "recording_info"
        attributes = read_json(info_folder / "recording_attributes.json")
        rec_attributes = rec_attributes_from_json(attributes, info_folder / "recording_attributes.json")
        probegroup = None
        if (info_folder / "probegroup.json").is_file():
            probegroup = Deferred(lambda: _read_probegroup(info_folder / "probegroup.json"))
            probegroup = probegroup if deferred else probegroup.load()
        mask_file = folder / "sparsity_mask.npy"
        sparsity_mask = load_npy(mask_file) if mask_file.is_file() else None
        from ..io.numpy_folder import NumpyFolderSorting

        sorting = NumpyFolderSorting(folder / "sorting", mmap_mode="r")
        recording = None
        if load_recording and (folder / "recording.json").is_file():
            recording = Deferred(lambda: load_recording_provenance(read_json(folder / "recording.json"), folder))
            recording = recording if deferred else recording.load()
        return AnalyzerRoot(sorting, recording, rec_attributes, probegroup, sparsity_mask, settings)

    # ------------------------------------------------------------ extensions
    @property
    def extensions_folder(self) -> Path:
        return self.folder / "extensions"

    def save_extension(self, extension, stage: "ExtensionStage | None" = None) -> None:
        """Write ``extension`` atomically to ``extensions/<name>/`` (replacing a previous one).

        With ``stage`` (from ``staged_extension``), the arrays the run wrote into the stage stay where
        they are, the rest is added, and the stage is renamed into place; those arrays are then re-opened
        read-only from the final folder.
        """
        self.extensions_folder.mkdir(exist_ok=True)
        target = self.extensions_folder / extension.extension_name
        params = extension_json_params(extension.params)
        in_stage = {} if stage is None else stage.keep_only(extension.data)
        with atomic_folder(target, overwrite=True, argument="extension folder",
                           tmp=None if stage is None else stage.folder) as tmp:
            for key, value in extension.data.items():
                if key not in in_stage:
                    _save_data_item(tmp, key, value, extension.extension_name)
            write_json(tmp / "params.json", params)
            write_json(tmp / "info.json", extension.info())
            # written last: its presence marks a complete extension
            write_json(tmp / "run_info.json", extension.run_info)
        for key in in_stage:
            extension.data[key] = load_npy(target / f"{key}.npy", mmap_mode="r")

    @contextlib.contextmanager
    def staged_extension(self, extension_name: str) -> Iterator["ExtensionStage"]:
        """A hidden temporary ``extensions/<name>`` folder that a run writes its large arrays into.

        ``save_extension(extension, stage)`` completes it and renames it into place; whatever is left
        (an error, no save) is removed when the block ends. A killed process leaves only a hidden
        temporary folder, which never loads as the extension.
        """
        stage = ExtensionStage(make_temporary_sibling(self.extensions_folder / extension_name))
        try:
            yield stage
        finally:
            shutil.rmtree(stage.folder, ignore_errors=True)  # gone already when it was saved

    def delete_extension(self, extension_name: str) -> None:
        delete_extension_folder(self.extensions_folder, extension_name)

    def saved_extension_names(self) -> list[str]:
        """Names of the extension folders (complete or not), hidden temporaries excluded."""
        if not self.extensions_folder.is_dir():
            return []
        return sorted(p.name for p in self.extensions_folder.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and TMP_MARK not in p.name)

    def load_extension(self, extension_name: str) -> ExtensionParts:
        """Params, data (memory-mapped arrays) and run_info of a saved extension.

        Raises ``IncompleteExtensionError`` when ``run_info.json`` is missing or says the run did not complete.
        """
        folder = self.extensions_folder / extension_name
        if not folder.is_dir():
            raise KeyError(f"extension_name {extension_name!r} is not saved in {self.folder}")
        run_info = read_json(folder / "run_info.json", required=False)
        if not isinstance(run_info, dict) or not run_info.get("run_completed", False):
            raise IncompleteExtensionError(
                f"{folder}: extension {extension_name!r} is incomplete (no completed run_info.json); recompute it"
            )
        params = read_json(folder / "params.json")
        data = {}
        for file in sorted(folder.iterdir()):
            if file.suffix == ".npy":
                data[file.stem] = load_npy(file, mmap_mode="r")
            elif file.suffix == ".json" and file.stem not in ("params", "info", "run_info"):
                data[file.stem] = read_json(file)
            elif file.suffix in (".pkl", ".pickle"):
                warnings.warn(f"{file}: pickled data is never loaded by sicore; skipped")
        return ExtensionParts(params, data, run_info)


class ExtensionStage:
    """The pending folder of an extension being computed into a binary folder analyzer.

    ``new_array`` gives a zero-filled ``.npy`` file there, memory-mapped: a chunked pass (its worker
    processes included) writes the result straight into it, so saving copies nothing and the array
    never has to fit in memory.

    Parameters
    ----------
    folder : Path
        The temporary folder (``BinaryFolderStorage.staged_extension`` makes it).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.arrays: dict[str, np.memmap] = {}

    def new_array(self, key: str, shape: tuple, dtype) -> np.ndarray:
        """A zero-filled array for ``data[key]``, as the file ``<key>.npy`` of the stage (``np.save`` layout)."""
        if not key.isidentifier():
            raise ValueError(f"key must be an identifier-like name (it becomes a file name), got {key!r}")
        shape = tuple(int(n) for n in shape)
        if int(np.prod(shape)) == 0:  # an empty file cannot be mapped; np.save writes it at save time
            return np.zeros(shape, dtype=dtype)
        array = np.lib.format.open_memmap(self.folder / f"{key}.npy", mode="w+", dtype=np.dtype(dtype), shape=shape)
        self.arrays[key] = array
        return array

    def keep_only(self, data: dict) -> dict:
        """The staged arrays that ``data`` holds (written already); staged files it does not hold are removed."""
        kept = {}
        for key, array in self.arrays.items():
            if data.get(key) is array:  # no flush: its pages are the file's page cache already
                kept[key] = array
            else:
                (self.folder / f"{key}.npy").unlink(missing_ok=True)
        return kept


def file_backing(array) -> tuple[str, int] | None:
    """``(path, byte offset)`` of the file that holds ``array``'s bytes in C order, when it is a writable
    ``np.memmap`` of a whole ``.npy``-like region (``ExtensionStage.new_array``, ``open_memmap``); else None."""
    if not isinstance(array, np.memmap) or getattr(array, "filename", None) is None:
        return None
    whole = getattr(array, "_mmap", None) is not None and array.base is array._mmap  # not a view of one
    if array.mode not in ("r+", "w+") or not array.flags.c_contiguous or not whole:
        return None
    return str(array.filename), int(array.offset)


class StackedArrays:
    """An array given as its parts along axis 0, saved part by part: a gather of shards writes the
    extension's ``.npy`` file without first building the whole array in memory (the same bytes as
    ``np.save`` of the concatenation).

    Parameters
    ----------
    parts : list of numpy.ndarray
        Arrays of one dtype and the same shape after axis 0 (memory-mapped shard files, typically).
    """

    _BLOCK_BYTES = 32 << 20

    def __init__(self, parts: list):
        if not parts:
            raise ValueError("parts: at least one array is needed")
        first = parts[0]
        for part in parts[1:]:
            if part.dtype != first.dtype or part.shape[1:] != first.shape[1:]:
                raise ValueError(f"parts: {part.dtype} {part.shape} does not stack on {first.dtype} {first.shape}")
        self.parts = list(parts)
        self.dtype = first.dtype
        self.shape = (sum(part.shape[0] for part in parts),) + tuple(first.shape[1:])

    def __array__(self, dtype=None, copy=None):
        stacked = np.concatenate(self.parts, axis=0)
        return stacked if dtype is None else stacked.astype(dtype, copy=False)

    def write_npy(self, path: Path) -> None:
        """Write the stacked array as ``path`` (an ``.npy`` file, format 1.0 as ``np.save`` writes it)."""
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.flush()
            raw = f.raw
            for part in self.parts:
                rows = max(1, self._BLOCK_BYTES // max(1, part[:1].nbytes))
                for start in range(0, part.shape[0], rows):
                    block = np.ascontiguousarray(part[start:start + rows])
                    view = memoryview(block).cast("B")
                    while view.nbytes:  # raw writes may be partial
                        view = view[raw.write(view):]


def _save_data_item(folder: Path, key: str, value, extension_name: str) -> None:
    if isinstance(value, StackedArrays):
        value.write_npy(folder / f"{key}.npy")
    elif isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            raise TypeError(f"extension {extension_name!r}: data {key!r} holds Python objects; sicore never pickles")
        np.save(folder / f"{key}.npy", value, allow_pickle=False)
    elif isinstance(value, (dict, list)):
        write_json(folder / f"{key}.json", value)
    else:
        raise TypeError(
            f"extension {extension_name!r}: data {key!r} is a {type(value).__name__}; storable data are numpy "
            "arrays, dicts and lists"
        )


# ---------------------------------------------------------------- recording provenance and attributes
def recording_provenance(recording, final_folder: Path) -> dict | None:
    """The recording's ``to_dict`` with paths relative to the analyzer folder, or None when in memory."""
    if recording is None or not recording.is_json_serializable():
        return None
    try:
        d = recording.to_dict(include_annotations=True, include_properties=True, relative_to=final_folder)
        d = to_json_compatible(d, "recording provenance")
    except (TypeError, ValueError) as err:
        warnings.warn(f"the recording provenance is not saved ({err}); the analyzer will load recordingless")
        return None
    return _in_si_spelling(d)


def _in_si_spelling(d: dict) -> dict:
    """Classes whose kwargs SpikeInterface shares, renamed to its spelling (recursively), so SI rebuilds them."""
    short_name = d["class"].rsplit(".", 1)[-1]
    if short_name in _SI_CLASS_PATHS:
        d["class"], d["module"], d["version"] = _SI_CLASS_PATHS[short_name], "spikeinterface", SI_LAYOUT_VERSION
        # the probe comes from the recording's own folder; SI cannot parse sicore's structured contact vector
        d["properties"] = {k: v for k, v in (d.get("properties") or {}).items()
                           if k not in ("contact_vector", "location") and not isinstance(v, dict)}
        for name, value in d["kwargs"].items():
            if name == "recording_list" and isinstance(value, list):
                d["kwargs"][name] = [_in_si_spelling(v) if isinstance(v, dict) and "class" in v else v
                                     for v in value]
    return d


# the sharded save's pieces layout is SI's concatenation of binary folders (sicore.sharding_recording)
_SI_CLASS_PATHS = {
    "BinaryFolderRecording": "spikeinterface.core.binaryfolder.BinaryFolderRecording",
    "ConcatenateSegmentRecording": "spikeinterface.core.segmentutils.ConcatenateSegmentRecording",
    "AppendSegmentRecording": "spikeinterface.core.segmentutils.AppendSegmentRecording",
}


def _read_probegroup(path: Path):
    from probeinterface import read_probeinterface

    return read_probeinterface(path)


def load_recording_provenance(d: dict, base_folder: Path):
    """Rebuild a recording from provenance; None (recordingless) with a warning when that fails."""
    from ..io.loading import load_extractor

    try:
        return load_extractor(d, base_folder=base_folder)
    except Exception as err:  # any failure (missing file, unknown class) means recordingless
        warnings.warn(f"the recording could not be loaded ({type(err).__name__}: {err}); the analyzer is recordingless")
        return None


def get_rec_attributes(recording) -> dict:
    """The recording facts an analyzer keeps so that it works without the recording."""
    properties = {}
    for key in ("gain_to_uV", "offset_to_uV", "group"):
        values = recording.get_property(key)
        if values is not None:
            properties[key] = np.asarray(values)
    if not recording.has_probe() and recording.get_property("location") is not None:
        properties["location"] = np.asarray(recording.get_property("location"))
    return {
        "channel_ids": np.asarray(recording.channel_ids),
        "sampling_frequency": float(recording.sampling_frequency),
        "num_channels": int(recording.get_num_channels()),
        "num_samples": [int(recording.get_num_samples(i)) for i in range(recording.get_num_segments())],
        "is_filtered": bool(recording.is_filtered()),
        "properties": properties,
        "dtype": str(np.dtype(recording.get_dtype())),
    }


def rec_attributes_to_json(rec_attributes: dict) -> dict:
    d = dict(rec_attributes)
    d["channel_ids"] = np.asarray(d["channel_ids"]).tolist()
    d["properties"] = {k: np.asarray(v).tolist() for k, v in d["properties"].items()}
    return to_json_compatible(d, "recording attributes")


def rec_attributes_from_json(d: dict, source) -> dict:
    required = ("channel_ids", "sampling_frequency", "num_channels", "num_samples")
    if not isinstance(d, dict) or any(k not in d for k in required):
        raise CorruptFolderError(f"{source}: expected the keys {list(required)}")
    attributes = dict(d)
    attributes["channel_ids"] = np.asarray(d["channel_ids"])
    attributes["sampling_frequency"] = float(d["sampling_frequency"])
    attributes["num_channels"] = int(d["num_channels"])
    num_samples = d["num_samples"]
    attributes["num_samples"] = [int(n) for n in (num_samples if isinstance(num_samples, list) else [num_samples])]
    attributes["properties"] = {k: np.asarray(v) for k, v in (d.get("properties") or {}).items() if v is not None}
    attributes.setdefault("is_filtered", False)
    return attributes
