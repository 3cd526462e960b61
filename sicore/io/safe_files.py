"""Safe reading of saved folders: JSON and .npy files that fail with errors naming the file.

Loading a folder never unpickles, never imports a module a file names, and never follows a
relative path stored in the folder's JSON out of the folder.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np


class CorruptFolderError(ValueError):
    """A saved folder (or one of its files) is incomplete, inconsistent or unsafe to load."""


def read_json(file_path: str | Path, required: bool = True) -> Any:
    """Parse a JSON file; a missing or broken file is an error naming it.

    Parameters
    ----------
    file_path : str or Path
        The JSON file.
    required : bool, default: True
        When False a missing file gives None instead of an error.
    """
    file_path = Path(file_path)
    try:
        text = file_path.read_text(encoding="utf8")
    except FileNotFoundError:
        if not required:
            return None
        raise FileNotFoundError(f"{file_path}: file not found") from None
    except IsADirectoryError:
        raise CorruptFolderError(f"{file_path}: expected a JSON file, found a folder") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CorruptFolderError(f"{file_path}: broken JSON ({err})") from None


def write_json(file_path: str | Path, data: Any, indent: int | None = 4) -> None:
    """Write ``data`` as JSON (numpy values converted); the data is encoded before the file is opened."""
    text = json.dumps(to_json_compatible(data), indent=indent)
    Path(file_path).write_text(text, encoding="utf8")


def to_json_compatible(value: Any, where: str = "value") -> Any:
    """Plain JSON types from numpy scalars/arrays, Paths, tuples; anything else is an error naming ``where``."""
    if isinstance(value, dict):
        return {str(k): to_json_compatible(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_compatible(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return [to_json_compatible(v, f"{where}[{i}]") for i, v in enumerate(value.tolist())]
        if value.dtype.names is not None:
            raise TypeError(f"{where}: structured arrays cannot be stored as JSON")
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return value.as_posix()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    raise TypeError(f"{where}: a {type(value).__name__} cannot be stored as JSON")


def load_npy(file_path: str | Path, mmap_mode: str | None = None) -> np.ndarray:
    """Load a .npy file without ever unpickling; errors name the file.

    Parameters
    ----------
    file_path : str or Path
        The .npy file.
    mmap_mode : str or None, default: None
        Passed to ``np.load`` (e.g. "r" to memory-map).
    """
    file_path = Path(file_path)
    if not file_path.is_file():
        raise FileNotFoundError(f"{file_path}: file not found")
    try:
        return np.load(file_path, mmap_mode=mmap_mode, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise CorruptFolderError(
                f"{file_path}: holds Python objects (pickled data); sicore never unpickles files"
            ) from None
        raise CorruptFolderError(f"{file_path}: not a valid .npy file ({err})") from None
    except (OSError, EOFError) as err:
        raise CorruptFolderError(f"{file_path}: not a valid .npy file ({err})") from None


def path_inside(folder: str | Path, relative_path: str, source_file: str | Path) -> Path:
    """The path ``folder / relative_path``, which must stay inside ``folder``.

    The check is lexical (``..`` and absolute paths are refused); a symlink placed in the folder is
    followed, as the user's own choice.

    Parameters
    ----------
    folder : str or Path
        The saved folder.
    relative_path : str
        A path read from ``source_file`` (relative to the folder).
    source_file : str or Path
        The JSON file the path comes from, named in errors.
    """
    if not isinstance(relative_path, str) or relative_path == "":
        raise CorruptFolderError(f"{source_file}: expected a relative path string, got {relative_path!r}")
    if Path(relative_path).is_absolute() or (len(relative_path) > 1 and relative_path[1] == ":"):
        raise CorruptFolderError(
            f"{source_file}: path {relative_path!r} is absolute; a saved folder only refers to files inside itself"
        )
    folder = Path(os.path.abspath(folder))
    candidate = Path(os.path.normpath(folder / relative_path))
    if candidate != folder and folder not in candidate.parents:
        raise CorruptFolderError(
            f"{source_file}: path {relative_path!r} leads outside the folder {folder}; refusing to read it"
        )
    return candidate


def check_file_size(file_path: Path, expected_bytes: int, what: str) -> None:
    """A missing file or one whose size differs from ``expected_bytes`` is an error naming it."""
    try:
        size = file_path.stat().st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"{file_path}: {what} not found") from None
    if size != expected_bytes:
        state = "truncated" if size < expected_bytes else "padded"
        raise CorruptFolderError(f"{file_path}: {what} has {size} bytes, expected {expected_bytes} ({state} file)")


def float_or_none(value) -> float | None:
    """``None`` for None/NaN, else a float (t_starts are stored with NaN for 'unset')."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
