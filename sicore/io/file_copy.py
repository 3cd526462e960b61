"""Copy byte ranges between files inside the kernel (``copy_file_range``), with a portable fallback.

Saving a plain binary recording to binary with the same dtype, or concatenating the pieces of a sharded
save, is a byte copy: doing it in the kernel avoids two trips of every byte through user space (and
on file systems with reflinks, e.g. XFS or Btrfs, shares the blocks instead of copying them).
"""

from __future__ import annotations

import os

__all__ = ["copy_range"]

_PIECE = 1 << 30  # bytes per system call (the kernel may copy less; the loop continues)
_BUFFER = 16 << 20  # bytes per read in the fallback


def copy_range(source_fd: int, target_fd: int, length: int, source_offset: int = 0, target_offset: int = 0) -> None:
    """Copy ``length`` bytes from ``source_fd`` at ``source_offset`` to ``target_fd`` at ``target_offset``.

    Neither descriptor's file position is used or changed.

    Parameters
    ----------
    source_fd : int
        A descriptor open for reading.
    target_fd : int
        A descriptor open for writing (not in append mode).
    length : int
        Number of bytes to copy.
    source_offset : int, default: 0
        Where to start reading.
    target_offset : int, default: 0
        Where to start writing.

    Raises
    ------
    ValueError
        If the source ends before ``length`` bytes were copied (a short file).
    """
    if length < 0 or source_offset < 0 or target_offset < 0:
        raise ValueError(f"copy_range: length and offsets must be >= 0, got {length}, {source_offset}, {target_offset}")
    done = 0
    use_kernel = hasattr(os, "copy_file_range")
    while done < length:
        want = min(_PIECE, length - done)
        copied = None
        if use_kernel:
            try:
                copied = os.copy_file_range(source_fd, target_fd, want, source_offset + done, target_offset + done)
            except OSError:  # EXDEV on old kernels, EINVAL/ENOSYS on some file systems: copy in user space
                use_kernel = False
        if copied is None:
            data = os.pread(source_fd, min(want, _BUFFER), source_offset + done)
            copied = len(data)
            if copied:
                view = memoryview(data)
                written = 0
                while written < copied:
                    written += os.pwrite(target_fd, view[written:], target_offset + done + written)
        if copied == 0:
            raise ValueError(f"copy_range: the source ended after {done} of {length} bytes (a short file)")
        done += copied
