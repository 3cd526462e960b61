"""Casting traces to the dtype a folder is saved in.

SpikeInterface 0.105.3 saves with a plain ``astype``: float -> int truncates toward zero and
out-of-range values wrap around. sicore instead rounds half to even (``np.rint``) and saturates
(clips) to the target range, so a float recording saved as int16 keeps the nearest representable
value. NaN cannot be stored in an integer dtype and is an error.
"""

from __future__ import annotations

import numpy as np


def cast_traces(traces: np.ndarray, dtype: np.dtype, where: str = "traces") -> np.ndarray:
    """``traces`` as ``dtype``: rounded half to even and clipped when going to an integer dtype.

    Parameters
    ----------
    traces : np.ndarray
        The chunk to cast.
    dtype : numpy dtype
        Target dtype.
    where : str, default: "traces"
        Description of the chunk, named in errors.

    Returns
    -------
    np.ndarray
        C-contiguous array of ``dtype`` (``traces`` itself when nothing changes).
    """
    dtype = np.dtype(dtype)
    source = traces.dtype
    if source == dtype:
        return np.ascontiguousarray(traces)
    if dtype.kind in "iu" and source.kind in "fc":
        if source.kind == "c":
            raise ValueError(f"{where}: complex traces cannot be saved as {dtype}")
        if np.isnan(traces).any():
            raise ValueError(f"{where}: NaN values cannot be saved as integer dtype {dtype}")
        return _round_and_saturate(traces, dtype)
    if dtype.kind in "iu" and source.kind in "iub":
        info = np.iinfo(dtype)
        if source.kind != "b" and not _fits(source, dtype):
            # clip in the wider type so nothing wraps around
            wide = np.result_type(source, dtype)
            if wide.kind == "f":  # int64 with uint64 has no common integer type
                clipped = np.clip(traces, max(info.min, np.iinfo(source).min), min(info.max, np.iinfo(source).max))
                return clipped.astype(dtype)
            return np.clip(traces.astype(wide, copy=False), info.min, info.max).astype(dtype)
        return traces.astype(dtype)
    return np.ascontiguousarray(traces.astype(dtype))


def _round_and_saturate(traces: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    rounded = np.rint(traces)
    # info.max may not be representable in the float type (int32 in float32, int64 in float64): it rounds
    # up to 2**bits, so "too high" is ">= that float", and the saturated value is set as an integer.
    too_high = rounded >= rounded.dtype.type(info.max)
    too_low = rounded <= rounded.dtype.type(info.min)
    out_of_range = too_high | too_low
    if not out_of_range.any():
        return rounded.astype(dtype)
    result = np.where(out_of_range, 0, rounded).astype(dtype)
    result[too_high] = info.max
    result[too_low] = info.min
    return result


def _fits(source: np.dtype, target: np.dtype) -> bool:
    src, tgt = np.iinfo(source), np.iinfo(target)
    return tgt.min <= src.min and src.max <= tgt.max
