"""Snippets on disk: sicore's ``.npz`` format (``snippets.save()``'s default) and SpikeInterface's
``npy`` folder (``NpyFolderSnippets``), both read and written.

npz folder::

    snippets.npz         sicore_object="snippets", channel_ids, sampling_frequency [fs], nbefore [n or -1],
                         num_segments [n], frames_seg{i} (int64), snippets_seg{i} (num, snippet_len, channels)
    sicore_folder.json   {class: NpzFolderSnippets, kwargs: {folder_path: "."}}
    annotations.json, properties/*.npy, probegroup.json, provenance.json

SpikeInterface npy folder::

    traces_cached_seg{i}.npy   structured [("frame", int64), ("snippet", dtype, (snippet_len, channels))]
    npy.json                   SI's NpySnippetsExtractor dict (file_paths relative, nbefore, gains...)
    si_folder.json             {class: NpyFolderSnippets, kwargs: {folder_path: "."}, annotations: all}
    properties/*.npy, probegroup.json
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..snippets import BaseSnippets, BaseSnippetsSegment
from .atomic import atomic_folder, check_target_folder
from .folder_metadata import (
    SICORE_INFO_FILE,
    attach_probegroup,
    collect_metadata,
    load_annotations,
    load_properties,
    si_folder_dict,
    sicore_info,
    write_metadata,
)
from .npz_sorting import _member, read_npz
from .safe_files import CorruptFolderError, load_npy, path_inside, read_json, write_json
from ..version import __version__

NPZ_SNIPPETS_FILE = "snippets.npz"
SI_NPY_SNIPPETS_CLASS = "spikeinterface.core.npysnippetsextractor.NpySnippetsExtractor"
SI_NPY_FOLDER_SNIPPETS_CLASS = "spikeinterface.core.npyfoldersnippets.NpyFolderSnippets"


class ArraySnippetsSegment(BaseSnippetsSegment):
    """Snippets and frames of one segment held as (possibly memory-mapped) arrays."""

    def __init__(self, snippets: np.ndarray, frames: np.ndarray):
        self._snippets = snippets
        self._frames = frames

    def get_num_snippets(self) -> int:
        return int(self._frames.size)

    def get_frames(self, indices):
        frames = np.asarray(self._frames, dtype=np.int64)
        return frames if indices is None else frames[indices]

    def get_snippets(self, indices, channel_indices):
        snippets = self._snippets if indices is None else self._snippets[indices]
        return np.asarray(snippets[:, :, channel_indices])


class NpzSnippetsExtractor(BaseSnippets):
    """Snippets read from a sicore ``.npz`` file (see the module docstring), without unpickling.

    Parameters
    ----------
    file_path : str or Path
        The ``.npz`` file.
    """

    _path_kwargs = ("file_path",)

    def __init__(self, file_path):
        file_path = Path(file_path).absolute()
        head = read_npz(file_path, ("channel_ids", "sampling_frequency", "nbefore", "num_segments"))
        num_segments = int(head["num_segments"].ravel()[0])
        nbefore = int(head["nbefore"].ravel()[0])
        segments = []
        with np.load(file_path, allow_pickle=False) as npz:
            for i in range(num_segments):
                snippets = _member(npz, f"snippets_seg{i}", file_path)
                frames = _member(npz, f"frames_seg{i}", file_path)
                if snippets.ndim != 3 or frames.ndim != 1 or frames.size != snippets.shape[0]:
                    raise CorruptFolderError(f"{file_path}: snippets_seg{i} {snippets.shape} and frames_seg{i} "
                                             f"{frames.shape} do not match")
                segments.append((snippets, frames))
        if not segments:
            raise CorruptFolderError(f"{file_path}: num_segments is {num_segments}; snippets need a segment")
        snippet_len, num_channels = segments[0][0].shape[1:]
        if num_channels != head["channel_ids"].size:
            raise CorruptFolderError(f"{file_path}: {num_channels} channels in snippets_seg0 for "
                                     f"{head['channel_ids'].size} channel_ids")
        BaseSnippets.__init__(self, float(head["sampling_frequency"].ravel()[0]), None if nbefore < 0 else nbefore,
                              snippet_len, head["channel_ids"], segments[0][0].dtype)
        for snippets, frames in segments:
            self.add_snippets_segment(ArraySnippetsSegment(snippets, frames.astype(np.int64)))
        self._kwargs = {"file_path": str(file_path)}


def write_npz_snippets(snippets, file_path) -> None:
    """Write ``snippets`` to ``file_path`` in sicore's snippets ``.npz`` format."""
    arrays = {
        "sicore_object": np.array("snippets"),
        "sicore_version": np.array(__version__),
        "channel_ids": np.asarray(snippets.channel_ids),
        "sampling_frequency": np.array([snippets.sampling_frequency], dtype="float64"),
        "nbefore": np.array([-1 if snippets.nbefore is None else snippets.nbefore], dtype="int64"),
        "num_segments": np.array([snippets.get_num_segments()], dtype="int64"),
    }
    for i in range(snippets.get_num_segments()):
        arrays[f"frames_seg{i}"] = np.asarray(snippets.get_frames(segment_index=i), dtype="int64")
        arrays[f"snippets_seg{i}"] = np.asarray(snippets.get_snippets(segment_index=i))
    with open(file_path, "wb") as f:
        np.savez(f, **arrays)


class NpzFolderSnippets(NpzSnippetsExtractor):
    """A snippets folder written by ``snippets.save()`` (npz format).

    Parameters
    ----------
    folder_path : str or Path
        The folder holding ``snippets.npz``.
    """

    _path_kwargs = ("folder_path",)

    def __init__(self, folder_path):
        folder = Path(folder_path).absolute()
        if not folder.is_dir():
            raise FileNotFoundError(f"folder_path {folder} is not a folder")
        NpzSnippetsExtractor.__init__(self, folder / NPZ_SNIPPETS_FILE)
        attach_probegroup(self, folder)
        load_properties(folder, self)
        load_annotations(folder, self, fallback_file=None)
        self._kwargs = {"folder_path": str(folder)}


def write_npz_snippets_folder(snippets, folder, overwrite: bool = False) -> NpzFolderSnippets:
    """Save ``snippets`` as an npz folder and reload it.

    Parameters
    ----------
    snippets : BaseSnippets
        The snippets to save.
    folder : str or Path
        The folder to create.
    overwrite : bool, default: False
        Replace an existing folder (only once the new one is complete).
    """
    final = check_target_folder(folder, overwrite)
    metadata = collect_metadata(snippets, final)
    with atomic_folder(final, overwrite) as tmp:
        write_npz_snippets(snippets, tmp / NPZ_SNIPPETS_FILE)
        write_metadata(tmp, metadata)
        write_json(tmp / SICORE_INFO_FILE, sicore_info("npz_snippets"))
        write_json(tmp / "sicore_folder.json", sicore_folder_dict("NpzFolderSnippets"))
    return NpzFolderSnippets(final)


def sicore_folder_dict(class_name: str) -> dict:
    """``sicore_folder.json``: the dispatch file of sicore-only folder formats."""
    return {"class": f"sicore.{class_name}", "module": "sicore", "version": __version__,
            "kwargs": {"folder_path": "."}, "annotations": {}, "properties": {}, "relative_paths": True}


# ------------------------------------------------------------ SI npy folder
class NpyFolderSnippets(BaseSnippets):
    """Snippets saved by SpikeInterface's ``snippets.save(format="npy")`` (or sicore's ``format="npy"``).

    Parameters
    ----------
    folder_path : str or Path
        The folder holding ``npy.json`` and the ``traces_cached_seg{i}.npy`` files.
    """

    _path_kwargs = ("folder_path",)

    def __init__(self, folder_path):
        folder = Path(folder_path).absolute()
        if not folder.is_dir():
            raise FileNotFoundError(f"folder_path {folder} is not a folder")
        npy_json = folder / "npy.json"
        d = read_json(npy_json)
        if not isinstance(d, dict) or not str(d.get("class", "")).endswith("NpySnippetsExtractor"):
            raise CorruptFolderError(f"{npy_json}: expected a NpySnippetsExtractor dict")
        kwargs = d.get("kwargs") or {}
        file_paths = kwargs.get("file_paths")
        file_paths = file_paths if isinstance(file_paths, list) else [file_paths]
        segments = []
        for relative in file_paths:
            file = path_inside(folder, relative, npy_json)
            data = load_npy(file, mmap_mode="r")
            names = data.dtype.names or ()
            if data.ndim != 1 or "frame" not in names or "snippet" not in names or data["snippet"].ndim != 3:
                raise CorruptFolderError(f"{file}: expected a structured array with 'frame' and 'snippet' fields")
            segments.append((data["snippet"], data["frame"]))
        if not segments:
            raise CorruptFolderError(f"{npy_json}: file_paths is empty")
        snippet_len, num_channels = segments[0][0].shape[1:]
        channel_ids = kwargs.get("channel_ids")
        BaseSnippets.__init__(self, kwargs["sampling_frequency"], kwargs.get("nbefore"), snippet_len,
                              np.arange(num_channels) if channel_ids is None else channel_ids, segments[0][0].dtype)
        for snippets, frames in segments:
            self.add_snippets_segment(ArraySnippetsSegment(snippets, frames))
        if kwargs.get("gain_to_uV") is not None:
            self.set_channel_gains(kwargs["gain_to_uV"])
        if kwargs.get("offset_to_uV") is not None:
            self.set_channel_offsets(kwargs["offset_to_uV"])
        attach_probegroup(self, folder)
        load_properties(folder, self)
        load_annotations(folder, self)
        self._kwargs = {"folder_path": str(folder)}


def write_npy_snippets_folder(snippets, folder, overwrite: bool = False, dtype=None) -> NpyFolderSnippets:
    """Save ``snippets`` in SpikeInterface's npy folder layout (SpikeInterface loads it) and reload it.

    Parameters
    ----------
    snippets : BaseSnippets
        The snippets to save.
    folder : str or Path
        The folder to create.
    overwrite : bool, default: False
        Replace an existing folder (only once the new one is complete).
    dtype : numpy dtype or None, default: None
        Dtype of the stored snippets (default: the snippets' dtype).
    """
    final = check_target_folder(folder, overwrite)
    metadata = collect_metadata(snippets, final)
    dtype = np.dtype(snippets.get_dtype() if dtype is None else dtype)
    names = [f"traces_cached_seg{i}.npy" for i in range(snippets.get_num_segments())]
    gains, offsets = snippets.get_channel_gains(), snippets.get_channel_offsets()
    with atomic_folder(final, overwrite) as tmp:
        shape = (snippets.snippet_len, snippets.get_num_channels())
        record = np.dtype([("frame", np.int64), ("snippet", dtype, shape)])
        for i, name in enumerate(names):
            data = np.empty(snippets.get_num_snippets(i), dtype=record)
            data["frame"] = snippets.get_frames(segment_index=i)
            data["snippet"] = snippets.get_snippets(segment_index=i)
            np.save(tmp / name, data, allow_pickle=False)
        write_metadata(tmp, metadata)
        kwargs = {
            "file_paths": names,
            "sampling_frequency": float(snippets.sampling_frequency),
            "channel_ids": snippets.channel_ids.tolist(),
            "nbefore": snippets.nbefore,
            "gain_to_uV": None if gains is None else np.asarray(gains, dtype=float).tolist(),
            "offset_to_uV": None if offsets is None else np.asarray(offsets, dtype=float).tolist(),
        }
        write_json(tmp / "npy.json", si_folder_dict(SI_NPY_SNIPPETS_CLASS, kwargs, metadata, "snippets"))
        write_json(tmp / SICORE_INFO_FILE, sicore_info("npy_snippets"))
        si_dict = si_folder_dict(SI_NPY_FOLDER_SNIPPETS_CLASS, {"folder_path": "."}, metadata, "snippets")
        si_dict["annotations"] = metadata.annotations  # SI reads the annotations of this folder only from here
        write_json(tmp / "si_folder.json", si_dict)
    return NpyFolderSnippets(final)


__all__ = ["NpzSnippetsExtractor", "NpzFolderSnippets", "NpyFolderSnippets", "write_npz_snippets",
           "write_npz_snippets_folder", "write_npy_snippets_folder"]
