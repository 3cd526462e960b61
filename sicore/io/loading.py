"""``load_extractor`` (alias ``load``): rebuild an object from a dict, a JSON/.npz file or a saved folder.

Loading is safe: only sicore classes are instantiated (from sicore's registry or its static class ->
sicore module table: a file never makes sicore import a module it names), nothing is unpickled, and the
paths stored in a saved folder's JSON files must stay inside that folder. A dict or a JSON file given
explicitly may point anywhere: the user chose it.
"""

from __future__ import annotations

import os
from pathlib import Path

# get_registered_class finds classes of modules not imported yet through sicore.base's static table
# (class name -> sicore module), so loading imports only the modules of the classes a file names.
from ..base import BaseExtractor, get_registered_class
from .safe_files import CorruptFolderError, path_inside, read_json

# Files that identify a folder layout, tried in this order after si_folder.json / sicore_folder.json.
_LAYOUT_FILES = ("binary.json", "numpysorting_info.json", "npz.json", "npy.json")


def load_extractor(file_or_folder_or_dict, base_folder=None) -> BaseExtractor:
    """Load a sicore (or SpikeInterface) object.

    Parameters
    ----------
    file_or_folder_or_dict : dict or str or Path
        * a dict from ``to_dict()``;
        * a ``.json`` file holding such a dict (relative paths are relative to its folder);
        * a ``.npz`` file (a sorting in NpzSortingExtractor format, or sicore snippets / events);
        * a folder written by ``save()`` (binary, zarr, npz, numpy_folder, snippets, events), by
          sicore or SpikeInterface.
    base_folder : str or Path or None, default: None
        Folder that relative paths of a dict (or JSON file) refer to; for a JSON file the default is
        the file's folder.

    Returns
    -------
    BaseExtractor
        The loaded recording, sorting, snippets or event object.
    """
    if isinstance(file_or_folder_or_dict, dict):
        return BaseExtractor.from_dict(file_or_folder_or_dict, base_folder=base_folder)
    if not isinstance(file_or_folder_or_dict, (str, Path)):
        raise ValueError(
            "file_or_folder_or_dict must be a dict, a file or a folder path, "
            f"got {type(file_or_folder_or_dict).__name__}"
        )
    path = Path(file_or_folder_or_dict).absolute()
    if path.is_dir():
        return load_folder(path)
    if path.is_file():
        return _load_file(path, base_folder)
    raise FileNotFoundError(f"file_or_folder_or_dict: {path} does not exist")


load = load_extractor


def load_folder(folder: Path) -> BaseExtractor:
    """Load a saved folder, dispatching on the files that identify its layout."""
    for dispatch_file in ("si_folder.json", "sicore_folder.json"):
        if (folder / dispatch_file).is_file():
            return _load_folder_json(folder, folder / dispatch_file)
    if (folder / ".zgroup").is_file() or (folder / "zarr.json").is_file():
        return _load_zarr(folder)
    for name in _LAYOUT_FILES:
        if (folder / name).is_file():
            return _layout_class(name)(folder)
    raise CorruptFolderError(
        f"{folder}: not a saved sicore/SpikeInterface folder (no si_folder.json, sicore_folder.json, zarr "
        f"store, or {', '.join(_LAYOUT_FILES)}); incomplete saves leave no such folder"
    )


def _load_file(path: Path, base_folder) -> BaseExtractor:
    suffix = path.suffix.lower()
    if suffix == ".json":
        d = read_json(path)
        if not isinstance(d, dict) or "class" not in d or "kwargs" not in d:
            raise CorruptFolderError(f"{path}: not an extractor dict (needs 'class' and 'kwargs')")
        try:
            return BaseExtractor.from_dict(d, base_folder=path.parent if base_folder is None else base_folder)
        except ValueError as err:
            if "registered sicore class" in str(err):
                raise CorruptFolderError(f"{path}: {err}") from None
            raise
    if suffix == ".npz":
        from .npz_files import load_npz_file

        return load_npz_file(path)
    if suffix in (".pkl", ".pickle"):
        raise ValueError(f"{path}: pickle files are not loaded; sicore never unpickles (save to a folder instead)")
    raise ValueError(f"{path}: cannot load a {suffix or 'suffix-less'} file; expected .json, .npz or a folder")


def _load_folder_json(folder: Path, json_file: Path) -> BaseExtractor:
    d = read_json(json_file)
    if not isinstance(d, dict) or "class" not in d or not isinstance(d.get("kwargs"), dict):
        raise CorruptFolderError(f"{json_file}: not an extractor dict (needs 'class' and 'kwargs')")
    check_folder_dict(d, folder, json_file)
    return BaseExtractor.from_dict(d, base_folder=folder)


def check_folder_dict(d: dict, folder: Path, json_file: Path) -> None:
    """Check (recursively) that every class is registered and every path stays inside ``folder``."""
    try:
        cls = get_registered_class(d["class"])
    except ValueError as err:
        raise CorruptFolderError(f"{json_file}: {err}") from None
    for name, value in d["kwargs"].items():
        if name in getattr(cls, "_path_kwargs", ()) and value is not None:
            for p in value if isinstance(value, (list, tuple)) else [value]:
                _check_inside(folder, p, json_file, bool(d.get("relative_paths", False)))
        else:
            for nested in _nested_dicts(value):
                check_folder_dict(nested, folder, json_file)


def _check_inside(folder: Path, value, json_file: Path, relative: bool) -> None:
    if relative:
        path_inside(folder, value, json_file)
        return
    if not isinstance(value, str) or not Path(value).is_absolute():
        raise CorruptFolderError(f"{json_file}: path {value!r} is neither relative (relative_paths) nor absolute")
    path = Path(os.path.normpath(value))
    if path != folder and folder not in path.parents:
        raise CorruptFolderError(f"{json_file}: path {value!r} is outside the folder {folder}; refusing to read it")


def _nested_dicts(value):
    if isinstance(value, dict):
        if "class" in value and "kwargs" in value and "module" in value:
            yield value
        else:
            for v in value.values():
                yield from _nested_dicts(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _nested_dicts(v)


def _load_zarr(folder: Path) -> BaseExtractor:
    from .zarr_recording import ZarrRecordingExtractor, _open_root

    attrs = dict(_open_root(folder).attrs)
    info = attrs.get("zarr_class_info")
    if info is not None:
        class_name = info.get("class") if isinstance(info, dict) else None
        if isinstance(class_name, str) and class_name.endswith("ZarrSortingExtractor"):
            raise CorruptFolderError(f"{folder}: a SpikeInterface zarr sorting; sicore reads zarr recordings only "
                                     "(save the sorting with format='numpy_folder' in SpikeInterface)")
        try:
            cls = get_registered_class(class_name)
        except ValueError as err:
            raise CorruptFolderError(f"{folder / '.zattrs'}: zarr_class_info: {err}") from None
        if cls is not ZarrRecordingExtractor:
            raise CorruptFolderError(
                f"{folder / '.zattrs'}: zarr_class_info names {class_name!r}; sicore loads zarr recordings only"
            )
    return ZarrRecordingExtractor(folder)


def _layout_class(file_name: str):
    if file_name == "binary.json":
        from .binary_folder import BinaryFolderRecording

        return BinaryFolderRecording
    if file_name == "numpysorting_info.json":
        from .numpy_folder import NumpyFolderSorting

        return NumpyFolderSorting
    if file_name == "npz.json":
        from .npz_sorting import NpzFolderSorting

        return NpzFolderSorting
    from .snippets_folder import NpyFolderSnippets

    return NpyFolderSnippets


__all__ = ["load_extractor", "load", "load_folder", "check_folder_dict"]
