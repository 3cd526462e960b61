"""Tools on sortings: random selection of spikes for waveforms, templates and sparsity."""

from __future__ import annotations

import numpy as np

__all__ = ["random_spikes_selection"]

_METHODS = ("uniform", "all", "percentage", "maximum_rate")


def random_spikes_selection(
    sorting,
    num_samples: list[int] | None = None,
    method: str = "uniform",
    max_spikes_per_unit: int = 500,
    margin_size: int | None = None,
    seed: int | None = None,
    percentage: float | None = None,
    maximum_rate: float | None = None,
) -> np.ndarray:
    """Select spikes of each unit at random, as indices into ``sorting.to_spike_vector()``.

    With the same ``seed`` the selection is the one SpikeInterface 0.105.3 makes: for each unit in
    order, ``np.random.default_rng(seed).choice`` over the unit's spike indices (ascending), without
    replacement.

    Parameters
    ----------
    sorting : BaseSorting
        The sorting.
    num_samples : list of int or None, default: None
        Number of samples of each segment; needed with ``margin_size`` (and for "maximum_rate") unless
        the sorting has a registered recording.
    method : "uniform" | "all" | "percentage" | "maximum_rate", default: "uniform"
        * "uniform": up to ``max_spikes_per_unit`` spikes per unit, drawn without replacement
        * "all": every spike
        * "percentage": a fraction ``percentage`` of each unit's spikes (at most ``max_spikes_per_unit``)
        * "maximum_rate": at most ``maximum_rate`` spikes per second of recording (and ``max_spikes_per_unit``)
    max_spikes_per_unit : int, default: 500
        Largest number of spikes drawn per unit.
    margin_size : int or None, default: None
        Drop spikes closer than this many samples to a segment border (``sample < margin_size`` or
        ``sample >= num_samples - margin_size``). Applies to every method (SpikeInterface ignores it for "all").
    seed : int or None, default: None
        Seed of the random generator.
    percentage : float or None, default: None
        Fraction in (0, 1] for "percentage".
    maximum_rate : float or None, default: None
        Rate cap in Hz for "maximum_rate".

    Returns
    -------
    random_spikes_indices : np.ndarray
        Sorted int64 indices into the spike vector.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {list(_METHODS)}, got {method!r}")
    if isinstance(max_spikes_per_unit, bool) or not isinstance(max_spikes_per_unit, (int, np.integer)) \
            or max_spikes_per_unit < 0:
        raise ValueError(f"max_spikes_per_unit must be a non-negative int, got {max_spikes_per_unit!r}")
    if margin_size is not None and (isinstance(margin_size, bool) or not isinstance(margin_size, (int, np.integer))
                                    or margin_size < 0):
        raise ValueError(f"margin_size must be a non-negative int or None, got {margin_size!r}")

    spikes = sorting.to_spike_vector()
    keep = None
    if margin_size is not None and margin_size > 0:
        lengths = _segment_lengths(sorting, num_samples, "margin_size")
        samples = spikes["sample_index"]
        keep = (samples >= margin_size) & (samples < lengths[spikes["segment_index"]] - margin_size)

    if method == "all":
        indices = np.arange(spikes.size, dtype=np.int64)
        return indices if keep is None else indices[keep]

    if method == "percentage" and (percentage is None or not 0 < percentage <= 1):
        raise ValueError(f"percentage must be in (0, 1] for method='percentage', got {percentage!r}")
    if method == "maximum_rate":
        if maximum_rate is None or not maximum_rate >= 0:
            raise ValueError(f"maximum_rate must be a non-negative rate in Hz for method='maximum_rate', got {maximum_rate!r}")
        total_duration = float(_segment_lengths(sorting, num_samples, "method='maximum_rate'").sum()) / sorting.sampling_frequency

    # Group the spike indices by unit (ascending within a unit): a stable sort, no loop over spikes.
    unit_index = spikes["unit_index"]
    order = np.argsort(unit_index, kind="stable")
    if keep is not None:
        order = order[keep[order]]
    bounds = np.searchsorted(unit_index[order], np.arange(sorting.get_num_units() + 1), side="left")

    rng = np.random.default_rng(seed=seed)
    selected = []
    for unit_ind in range(sorting.get_num_units()):
        candidates = order[bounds[unit_ind]: bounds[unit_ind + 1]]
        if method == "uniform":
            size = min(max_spikes_per_unit, candidates.size)
        elif method == "percentage":
            size = min(max_spikes_per_unit, int(candidates.size * percentage))
        else:
            size = min(int(total_duration * maximum_rate), max_spikes_per_unit, candidates.size)
        selected.append(rng.choice(candidates, size=size, replace=False, shuffle=False))
    if not selected:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(selected)).astype(np.int64, copy=False)


def _segment_lengths(sorting, num_samples, needed_by: str) -> np.ndarray:
    """Samples per segment, from ``num_samples`` or the sorting's registered recording."""
    num_segments = sorting.get_num_segments()
    if num_samples is None:
        if not sorting.has_recording():
            raise ValueError(
                f"num_samples (samples per segment) must be given with {needed_by}: the sorting has no registered "
                "recording, e.g. num_samples=[recording.get_num_samples(i) for i in range(recording.get_num_segments())]"
            )
        num_samples = [sorting.get_num_samples(i) for i in range(num_segments)]
    lengths = np.asarray(num_samples, dtype=np.int64).reshape(-1)
    if lengths.size != num_segments:
        raise ValueError(f"num_samples must give one length per segment ({num_segments}), got {lengths.size}")
    return lengths
