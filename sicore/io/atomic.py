"""Atomic folder writes: build the folder as a temporary sibling, then rename it into place.

A crash (even SIGKILL) leaves either the previous folder or nothing at the target path, never a
half-written folder that loads. Temporaries are hidden siblings named ``.<name>.sicore-tmp-*``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

TMP_MARK = ".sicore-tmp-"


def check_target_folder(folder: str | Path, overwrite: bool, argument: str = "folder") -> Path:
    """The absolute target path; an existing target without ``overwrite`` is an error naming it."""
    if folder is None:
        raise ValueError(f"{argument} is required: the folder to save into")
    folder = Path(os.path.abspath(folder))
    if folder.exists() or folder.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{argument} {folder} already exists; use overwrite=True to replace it")
        if not folder.is_dir():
            raise FileExistsError(f"{argument} {folder} exists and is not a folder; refusing to replace it")
    return folder


@contextlib.contextmanager
def atomic_folder(folder: str | Path, overwrite: bool = False, argument: str = "folder",
                  tmp: str | Path | None = None) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``folder`` when the block succeeds.

    Parameters
    ----------
    folder : str or Path
        The final folder.
    overwrite : bool, default: False
        Replace an existing folder (it is removed only after the new one is complete).
    argument : str, default: "folder"
        Argument name used in errors.
    tmp : str or Path or None, default: None
        A temporary folder made earlier (``make_temporary_sibling(folder)``) that already holds part of
        the content; None makes a fresh one.

    Notes
    -----
    On error the temporary folder is removed and the target is untouched. When the process is
    killed, the temporary sibling stays behind (it never loads as the target).
    """
    folder = check_target_folder(folder, overwrite, argument)
    tmp = make_temporary_sibling(folder) if tmp is None else Path(tmp)
    try:
        yield tmp
        _replace(tmp, folder, overwrite, argument)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def make_temporary_sibling(folder: str | Path) -> Path:
    """A new empty hidden folder next to ``folder``, named so that it never loads as ``folder``."""
    folder = Path(os.path.abspath(folder))
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}{TMP_MARK}", dir=folder.parent))


def _replace(tmp: Path, folder: Path, overwrite: bool, argument: str) -> None:
    # the target may have appeared while writing: check again before touching it
    check_target_folder(folder, overwrite, argument)
    os.chmod(tmp, 0o777 & ~_umask())
    if not folder.exists():
        os.rename(tmp, folder)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.sicore-old-", dir=folder.parent))
    os.rmdir(trash)
    os.rename(folder, trash)
    try:
        os.rename(tmp, folder)
    except BaseException:
        os.rename(trash, folder)
        raise
    shutil.rmtree(trash, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
