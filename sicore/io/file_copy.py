"""Copy byte ranges between files through one reused buffer (``preadv`` / ``pwrite``).

Used to concatenate the pieces of a sharded binary save. The kernel's ``copy_file_range`` would avoid the
trip through user space, but on this project's machines (ext4 in a VM) it measured 0.8-4.7 s (median
3.4 s) for 2.7 GB, against 0.6-1.4 s for two threads copying through reused 8 MiB buffers: fresh buffers
or kernel splicing cost more than the extra memory copy saves.
"""

from __future__ import annotations

import os

__all__ = ["copy_range"]

_BUFFER = 8 << 20  # bytes per read; one buffer per call, reused for every read


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
    buffer = memoryview(bytearray(min(_BUFFER, max(length, 1))))
    done = 0
    while done < length:
        want = min(len(buffer), length - done)
        got = os.preadv(source_fd, [buffer[:want]], source_offset + done)
        if got == 0:
            raise ValueError(f"copy_range: the source ended after {done} of {length} bytes (a short file)")
        written = 0
        while written < got:
            written += os.pwrite(target_fd, buffer[written:got], target_offset + done + written)
        done += got
