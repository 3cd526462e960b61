"""Toy spike trains: seeded Poisson firing with a refractory period, and sortings with planted "mistakes".

Everything here is deterministic for a given ``seed`` (an int, or None for fresh entropy).
"""

from __future__ import annotations

import math

import numpy as np

from .numpy_objects import NumpySorting
from .sorting import SPIKE_VECTOR_DTYPE, BaseSorting


# ---------------------------------------------------------------- shared helpers
def durations_to_num_samples(durations, sampling_frequency: float, argument: str = "durations") -> list[int]:
    """Number of samples of each segment: ``floor(duration * sampling_frequency)``.

    A product that is an integer up to float rounding (``0.29 * 100 = 28.999999999999996``) counts
    as that integer, so durations written as ``num_samples / sampling_frequency`` round-trip.
    """
    if np.isscalar(durations):
        raise ValueError(f"{argument} must be a list of segment durations in seconds, e.g. [10.0], got {durations!r}")
    durations = list(durations)
    if len(durations) == 0:
        raise ValueError(f"{argument} must hold at least one segment duration")
    num_samples = []
    for duration in durations:
        duration = float(duration)
        if not np.isfinite(duration) or duration <= 0:
            raise ValueError(f"{argument} must hold positive durations in seconds, got {duration}")
        x = duration * float(sampling_frequency)
        nearest = round(x)
        n = int(nearest) if abs(x - nearest) <= 1e-9 * max(1.0, abs(x)) else int(math.floor(x))
        if n < 1:
            raise ValueError(
                f"{argument}: a duration of {duration} s is less than one sample at {sampling_frequency} Hz"
            )
        num_samples.append(n)
    return num_samples


def check_sampling_frequency(sampling_frequency) -> float:
    try:
        sampling_frequency = float(sampling_frequency)
    except (TypeError, ValueError):
        raise ValueError(f"sampling_frequency must be a number of Hz, got {sampling_frequency!r}") from None
    if not np.isfinite(sampling_frequency) or sampling_frequency <= 0:
        raise ValueError(f"sampling_frequency must be a positive number of Hz, got {sampling_frequency}")
    return sampling_frequency


def check_positive_int(value, argument: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{argument} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{argument} must be an integer >= {minimum}, got {value}")
    return int(value)


def resolve_seed(seed) -> int:
    """An int seed: ``seed`` itself, or fresh entropy when None (kept so results can be regenerated)."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0])
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return int(seed)


def _rename_alias(value, alias_value, name: str, alias: str, default):
    """Pick between the spec spelling ``name`` and SpikeInterface's ``alias`` (at most one given)."""
    if alias_value is None:
        return default if value is None else value
    if value is not None:
        raise ValueError(f"give {name} or its alias {alias}, not both")
    return alias_value


def _per_unit_rates(firing_rates, num_units: int, argument: str) -> np.ndarray:
    rates = np.asarray(firing_rates, dtype=np.float64)
    if rates.ndim == 0:
        rates = np.full(num_units, float(rates))
    if rates.shape != (num_units,):
        raise ValueError(f"{argument} must be a number or one rate per unit ({num_units}), got shape {rates.shape}")
    if np.any(~np.isfinite(rates)) or np.any(rates < 0):
        raise ValueError(f"{argument} must be non-negative rates in Hz, got {rates.tolist()}")
    return rates


# ------------------------------------------------------------------ spike trains
def _dead_time_poisson_train(rng: np.random.Generator, rate: float, refractory_samples: int, num_samples: int,
                             sampling_frequency: float) -> np.ndarray:
    """Sample indices of a Poisson process with a dead time, mean rate ``rate``, in ``[0, num_samples)``.

    Inter-spike intervals are ``refractory_samples + Exponential(mean_isi - refractory_samples)`` in
    continuous samples, so the mean rate is exactly ``rate`` and flooring to sample indices keeps every
    interval >= ``refractory_samples``.
    """
    if rate == 0:
        return np.zeros(0, dtype=np.int64)
    mean_isi = sampling_frequency / rate
    free_isi = mean_isi - refractory_samples
    if free_isi <= 0:
        raise ValueError(
            f"firing_rate {rate} Hz is impossible with a refractory period of {refractory_samples} samples "
            f"(at most {sampling_frequency / max(refractory_samples, 1):.1f} Hz)"
        )
    expected = num_samples / mean_isi
    # first spike: a random fraction of an interval (the process runs before the segment starts)
    first = rng.uniform() * (refractory_samples + rng.exponential(free_isi))
    pieces, last, total = [], first, 0
    pieces.append(np.array([first]))
    while last < num_samples:
        n_draw = int(expected + 5 * math.sqrt(expected) + 16) if total == 0 else int(0.2 * expected + 16)
        isis = refractory_samples + rng.exponential(free_isi, size=n_draw)
        times = last + np.cumsum(isis)
        pieces.append(times)
        last = times[-1]
        total += n_draw
    times = np.concatenate(pieces)
    times = times[times < num_samples]
    return np.floor(times).astype(np.int64)


def _sorted_spikes(times_per_unit: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-unit trains into (times, labels) sorted by time, then unit index."""
    if not times_per_unit:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    times = np.concatenate(times_per_unit).astype(np.int64)
    labels = np.concatenate([np.full(t.size, i, dtype=np.int64) for i, t in enumerate(times_per_unit)])
    order = np.lexsort((labels, times))
    return times[order], labels[order]


def synthesize_poisson_spike_vector(num_units: int = 20, sampling_frequency: float = 30000.0, duration: float = 60.0,
                                    refractory_period_ms: float = 4.0, firing_rates=3.0, seed: int | None = 0):
    """Poisson spike trains with a refractory period for one segment, as sorted (samples, unit indices).

    Parameters
    ----------
    num_units : int, default: 20
        Number of units.
    sampling_frequency : float, default: 30000.0
        Sampling rate in Hz.
    duration : float, default: 60.0
        Segment duration in seconds.
    refractory_period_ms : float, default: 4.0
        Minimum inter-spike interval of each unit, in ms.
    firing_rates : float or array-like, default: 3.0
        Mean firing rate in Hz, for all units or one per unit.
    seed : int or None, default: 0
        Random seed.

    Returns
    -------
    sample_indices : np.ndarray
        int64 spike sample indices, sorted.
    unit_indices : np.ndarray
        int64 unit index of each spike.
    """
    num_units = check_positive_int(num_units, "num_units", minimum=0)
    sampling_frequency = check_sampling_frequency(sampling_frequency)
    num_samples = durations_to_num_samples([duration], sampling_frequency, "duration")[0]
    rates = _per_unit_rates(firing_rates, num_units, "firing_rates")
    refractory_samples = _refractory_samples(refractory_period_ms, sampling_frequency)
    rng = np.random.default_rng(resolve_seed(seed))
    trains = [_dead_time_poisson_train(rng, r, refractory_samples, num_samples, sampling_frequency) for r in rates]
    return _sorted_spikes(trains)


def _refractory_samples(refractory_period_ms, sampling_frequency: float, argument: str = "refractory_period") -> int:
    refractory_period_ms = float(refractory_period_ms)
    if not np.isfinite(refractory_period_ms) or refractory_period_ms < 0:
        raise ValueError(f"{argument} must be a non-negative number of ms, got {refractory_period_ms}")
    return int(math.ceil(refractory_period_ms * sampling_frequency / 1000.0 - 1e-9))


def synthesize_random_firings(num_units: int = 20, sampling_frequency: float = 30000.0, duration: float = 60,
                              refractory_period_ms: float | None = None, firing_rates=None,
                              add_shift_shuffle: bool = False, seed: int | None = None,
                              refractory_period: float | None = None, firing_rate=None):
    """Random spike trains of several units for one segment.

    Parameters
    ----------
    num_units : int, default: 20
        Number of units.
    sampling_frequency : float, default: 30000.0
        Sampling rate in Hz.
    duration : float, default: 60
        Segment duration in seconds.
    refractory_period_ms : float, default: 4.0
        Refractory period in ms (alias ``refractory_period``).
    firing_rates : float or array-like, default: 3.0
        Firing rate in Hz of all units or of each unit (alias ``firing_rate``).
    add_shift_shuffle : bool, default: False
        Move half of the spikes of each unit closer to the spike before them (just after the refractory
        period), so the autocorrelograms show a burst peak instead of being flat.
    seed : int or None, default: None
        Random seed.

    Returns
    -------
    times : np.ndarray
        int64 spike sample indices of all units, sorted.
    labels : np.ndarray
        int64 unit index (0 .. num_units - 1) of each spike.
    """
    refractory_period_ms = _rename_alias(refractory_period_ms, refractory_period, "refractory_period_ms",
                                         "refractory_period", 4.0)
    firing_rates = _rename_alias(firing_rates, firing_rate, "firing_rates", "firing_rate", 3.0)
    num_units = check_positive_int(num_units, "num_units", minimum=0)
    sampling_frequency = check_sampling_frequency(sampling_frequency)
    num_samples = durations_to_num_samples([duration], sampling_frequency, "duration")[0]
    rates = _per_unit_rates(firing_rates, num_units, "firing_rates")
    refractory_samples = _refractory_samples(refractory_period_ms, sampling_frequency, "refractory_period_ms")
    rng = np.random.default_rng(resolve_seed(seed))
    trains = []
    for rate in rates:
        train = _dead_time_poisson_train(rng, rate, refractory_samples, num_samples, sampling_frequency)
        if add_shift_shuffle and train.size > 1:
            train = _shift_shuffle(rng, train, refractory_samples)
        trains.append(train)
    return _sorted_spikes(trains)


def _shift_shuffle(rng: np.random.Generator, train: np.ndarray, refractory_samples: int) -> np.ndarray:
    """Pull a random half of the spikes to shortly after their predecessor (burst-like intervals)."""
    chosen = np.flatnonzero(rng.random(train.size - 1) < 0.5) + 1
    lag = refractory_samples + np.floor(rng.exponential(max(refractory_samples, 1), size=chosen.size)).astype(np.int64)
    moved = train.copy()
    # never move a spike later, and keep at least the refractory period after the previous spike
    moved[chosen] = np.minimum(train[chosen], train[chosen - 1] + lag)
    return np.sort(clean_refractory_period(moved, refractory_samples)).astype(np.int64)


def clean_refractory_period(times, refractory_period):
    """Remove spikes that follow the previous spike by less than ``refractory_period``.

    ``times`` and ``refractory_period`` share a unit (samples, seconds or ms). Spikes are sorted; every
    spike closer than ``refractory_period`` to the spike before it is removed, and this is repeated
    until no interval is shorter (so ``[0, 3, 6, 9]`` with a period of 4 keeps only ``[0]``).

    Parameters
    ----------
    times : array-like
        Spike times of one unit.
    refractory_period : float
        Minimum allowed interval.

    Returns
    -------
    times : np.ndarray
        Sorted spike times without refractory violations (same dtype as ``times``).
    """
    times = np.sort(np.asarray(times))
    if times.ndim != 1:
        raise ValueError(f"times must be one-dimensional, got shape {times.shape}")
    if refractory_period < 0:
        raise ValueError(f"refractory_period must be >= 0, got {refractory_period}")
    while times.size > 1:
        violations = np.flatnonzero(np.diff(times) < refractory_period)
        if violations.size == 0:
            break
        times = np.delete(times, violations + 1)
    return times


def synthetize_spike_train_bad_isi(duration: float, baseline_rate: float, num_violations: int,
                                   violation_delta: float = 1e-5) -> np.ndarray:
    """A regular spike train with some refractory violations.

    Spikes are at ``k / baseline_rate`` for ``k = 1, 2, ...`` up to ``duration``; the first
    ``num_violations`` of them get a second spike ``violation_delta`` seconds later.

    Parameters
    ----------
    duration : float
        Length of the train in seconds.
    baseline_rate : float
        Rate of the regular spikes in Hz.
    num_violations : int
        Number of contaminating spikes.
    violation_delta : float, default: 1e-5
        Interval in seconds between a regular spike and its contaminating spike.

    Returns
    -------
    spike_train : np.ndarray
        Spike times in seconds, increasing.
    """
    if not duration > 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration}")
    if not baseline_rate > 0:
        raise ValueError(f"baseline_rate must be > 0 Hz, got {baseline_rate}")
    num_violations = check_positive_int(num_violations, "num_violations", minimum=0)
    num_regular = int(math.floor(duration * baseline_rate + 1e-9))
    if num_violations > num_regular:
        raise ValueError(f"num_violations ({num_violations}) exceeds the {num_regular} regular spikes of the train")
    regular = np.arange(1, num_regular + 1, dtype=np.float64) / baseline_rate
    contaminating = regular[:num_violations] + violation_delta
    return np.sort(np.concatenate([regular, contaminating]))


# -------------------------------------------------------------------- sortings
def _default_ids(num: int) -> np.ndarray:
    # SpikeInterface >= 0.102 uses string ids "0", "1", ...
    return np.arange(num).astype(str)


def _empty_unit_indices(empty_units, unit_ids: np.ndarray) -> np.ndarray:
    """Indices of ``empty_units``, given as unit ids ("1") or unit indices (1)."""
    if empty_units is None:
        return np.zeros(0, dtype=np.int64)
    lookup = {str(u): i for i, u in enumerate(unit_ids.tolist())}
    indices = []
    for unit in np.atleast_1d(np.asarray(empty_units, dtype=object)).tolist():
        key = str(unit.item() if isinstance(unit, np.generic) else unit)
        if key not in lookup:
            raise ValueError(f"empty_units: {unit!r} is not a unit id (ids are {unit_ids.tolist()})")
        indices.append(lookup[key])
    return np.asarray(indices, dtype=np.int64)


def generate_sorting(num_units: int = 5, sampling_frequency: float = 30000.0, durations=(10.325, 3.5),
                     firing_rate=None, empty_units=None, refractory_period: float | None = None,
                     add_spikes_on_borders: bool = False, num_spikes_per_border: int = 3,
                     border_size_samples: int = 20, t_starts=None, seed: int | None = None,
                     firing_rates=None, refractory_period_ms: float | None = None) -> NumpySorting:
    """A sorting of units firing as Poisson processes with a refractory period.

    Parameters
    ----------
    num_units : int, default: 5
        Number of units (ids ``"0", "1", ...``).
    sampling_frequency : float, default: 30000.0
        Sampling rate in Hz.
    durations : list of float, default: [10.325, 3.5]
        Duration of each segment in seconds (one segment per entry).
    firing_rate : float or array-like, default: 3.0
        Mean firing rate in Hz, of all units or one per unit (alias ``firing_rates``).
    empty_units : list or None, default: None
        Units without any spike, as unit ids or unit indices.
    refractory_period : float, default: 4.0
        Refractory period in ms: no unit has two spikes closer than this (alias ``refractory_period_ms``).
        Spikes added on borders may violate it.
    add_spikes_on_borders : bool, default: False
        Add ``num_spikes_per_border`` spikes (random units, distinct samples) in the first and in the last
        ``border_size_samples`` samples of each segment, to test border handling.
    num_spikes_per_border : int, default: 3
        Spikes added at each border.
    border_size_samples : int, default: 20
        Width in samples of each border region.
    t_starts : None, default: None
        Not supported (sicore sortings take times from a registered recording); must be None.
    seed : int or None, default: None
        Random seed.

    Returns
    -------
    sorting : NumpySorting
        The sorting.
    """
    firing_rate = _rename_alias(firing_rate, firing_rates, "firing_rate", "firing_rates", 3.0)
    refractory_period = _rename_alias(refractory_period, refractory_period_ms, "refractory_period",
                                      "refractory_period_ms", 4.0)
    if t_starts is not None:
        raise ValueError(
            "t_starts is not supported by generate_sorting: sicore sortings take spike times from a registered "
            "recording (generate_recording(t_starts=...) then sorting.register_recording(recording))"
        )
    num_units = check_positive_int(num_units, "num_units", minimum=0)
    sampling_frequency = check_sampling_frequency(sampling_frequency)
    num_samples_list = durations_to_num_samples(durations, sampling_frequency)
    rates = _per_unit_rates(firing_rate, num_units, "firing_rate")
    refractory_samples = _refractory_samples(refractory_period, sampling_frequency)
    unit_ids = _default_ids(num_units)
    rates[_empty_unit_indices(empty_units, unit_ids)] = 0.0
    if add_spikes_on_borders:
        num_spikes_per_border = check_positive_int(num_spikes_per_border, "num_spikes_per_border", minimum=0)
        border_size_samples = check_positive_int(border_size_samples, "border_size_samples")
        if num_spikes_per_border > border_size_samples:
            raise ValueError(
                f"num_spikes_per_border ({num_spikes_per_border}) exceeds border_size_samples ({border_size_samples})"
            )
    rng = np.random.default_rng(resolve_seed(seed))
    times_list, labels_list = [], []
    for num_samples in num_samples_list:
        trains = [_dead_time_poisson_train(rng, r, refractory_samples, num_samples, sampling_frequency)
                  for r in rates]
        times, labels = _sorted_spikes(trains)
        if add_spikes_on_borders and num_units > 0:
            times, labels = _add_border_spikes(rng, times, labels, rates > 0, num_samples, num_spikes_per_border,
                                               min(border_size_samples, num_samples))
        times_list.append(times)
        labels_list.append(unit_ids[labels])
    return NumpySorting.from_times_labels(times_list, labels_list, sampling_frequency, unit_ids=unit_ids)


def _add_border_spikes(rng, times, labels, firing_units, num_samples, num_per_border, border_size):
    candidates = np.flatnonzero(firing_units)
    if candidates.size == 0 or num_per_border == 0:
        return times, labels
    extra_times, extra_labels = [], []
    for offset in (0, num_samples - border_size):
        positions = offset + rng.choice(border_size, size=num_per_border, replace=False)
        extra_times.append(positions.astype(np.int64))
        extra_labels.append(rng.choice(candidates, size=num_per_border).astype(np.int64))
    times = np.concatenate([times] + extra_times)
    labels = np.concatenate([labels] + extra_labels)
    order = np.lexsort((labels, times))
    return times[order], labels[order]


# ------------------------------------------------------- sortings with mistakes
def _new_unit_ids(existing: np.ndarray, num: int) -> list:
    """``num`` ids not in ``existing``: the next integers (kept as str when ids are digit strings)."""
    values = existing.tolist()
    if existing.dtype.kind in "iu":
        start = (max(values) + 1) if values else 0
        return [start + k for k in range(num)]
    if all(isinstance(v, str) and v.isdigit() for v in values):
        start = (max(int(v) for v in values) + 1) if values else 0
        return [str(start + k) for k in range(num)]
    taken = set(map(str, values))
    new, k = [], 0
    while len(new) < num:
        candidate = f"new{k}"
        if candidate not in taken:
            new.append(candidate)
        k += 1
    return new


def _segment_limits(sorting: BaseSorting) -> list[int | None]:
    if sorting.has_recording():
        return [sorting.get_num_samples(i) for i in range(sorting.get_num_segments())]
    return [None] * sorting.get_num_segments()


def _sorting_from_spikes(sample_index, unit_index, segment_index, sorting: BaseSorting, unit_ids) -> NumpySorting:
    spikes = np.empty(len(sample_index), dtype=SPIKE_VECTOR_DTYPE)
    spikes["sample_index"] = sample_index
    spikes["unit_index"] = unit_index
    spikes["segment_index"] = segment_index
    new = NumpySorting(spikes, sorting.sampling_frequency, np.asarray(unit_ids),
                       num_segments=sorting.get_num_segments())
    if sorting.has_recording():
        new.register_recording(sorting.get_recording(), check_spike_frames=False)
    return new


def inject_some_duplicate_units(sorting: BaseSorting, num: int = 4, max_shift: int = 5, ratio: float | None = None,
                                seed: int | None = None) -> NumpySorting:
    """Add duplicated units: copies of ``num`` random units, shifted in time.

    Each duplicate copies one original unit (distinct originals), shifted by one random integer in
    ``[-max_shift, max_shift]`` samples; with ``ratio`` it keeps only that fraction of the spikes
    (chosen at random). Spikes shifted outside the segment are dropped.

    Parameters
    ----------
    sorting : BaseSorting
        Original sorting.
    num : int, default: 4
        Number of duplicated units added (at most the number of units).
    max_shift : int, default: 5
        Largest shift, in samples.
    ratio : float or None, default: None
        Fraction in ]0, 1] of the original spikes kept in each duplicate (None: all).
    seed : int or None, default: None
        Random seed.

    Returns
    -------
    sorting_with_dup : NumpySorting
        The original units followed by the duplicates (new ids continue the numbering).
    """
    if not isinstance(sorting, BaseSorting):
        raise ValueError(f"sorting must be a BaseSorting, got {type(sorting).__name__}")
    num = check_positive_int(num, "num", minimum=0)
    max_shift = check_positive_int(max_shift, "max_shift", minimum=0)
    if num > sorting.get_num_units():
        raise ValueError(f"num ({num}) exceeds the number of units of the sorting ({sorting.get_num_units()})")
    if ratio is not None and not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in ]0, 1] or None, got {ratio}")
    rng = np.random.default_rng(resolve_seed(seed))
    num_units = sorting.get_num_units()
    originals = rng.choice(num_units, size=num, replace=False)
    shifts = rng.integers(-max_shift, max_shift + 1, size=num)
    spikes = sorting.to_spike_vector()
    limits = _segment_limits(sorting)
    samples, units, segments = [spikes["sample_index"]], [spikes["unit_index"]], [spikes["segment_index"]]
    for k, (original, shift) in enumerate(zip(originals, shifts)):
        mine = spikes[spikes["unit_index"] == original]
        if ratio is not None:
            keep = np.sort(rng.choice(mine.size, size=int(mine.size * ratio), replace=False))
            mine = mine[keep]
        shifted = mine["sample_index"] + shift
        inside = shifted >= 0
        for segment_index, limit in enumerate(limits):
            if limit is not None:
                inside &= ~((mine["segment_index"] == segment_index) & (shifted >= limit))
        samples.append(shifted[inside])
        units.append(np.full(int(inside.sum()), num_units + k, dtype=np.int64))
        segments.append(mine["segment_index"][inside])
    unit_ids = list(sorting.unit_ids.tolist()) + _new_unit_ids(sorting.unit_ids, num)
    return _sorting_from_spikes(np.concatenate(samples), np.concatenate(units), np.concatenate(segments),
                                sorting, unit_ids)


def inject_some_split_units(sorting: BaseSorting, split_ids, num_split: int = 2, output_ids: bool = False,
                            seed: int | None = None):
    """Split some units into several: each spike of a split unit goes to one of its parts at random.

    Parameters
    ----------
    sorting : BaseSorting
        Original sorting.
    split_ids : list
        Unit ids to split.
    num_split : int, default: 2
        Number of parts of each split unit.
    output_ids : bool, default: False
        Also return ``{split unit id: [new unit ids]}``.
    seed : int or None, default: None
        Random seed.

    Returns
    -------
    sorting_with_split : NumpySorting
        The units, each split unit replaced in place by its parts (new ids continue the numbering).
    other_ids : dict
        ``{split unit id: [new unit ids]}``, only with ``output_ids=True``.
    """
    if not isinstance(sorting, BaseSorting):
        raise ValueError(f"sorting must be a BaseSorting, got {type(sorting).__name__}")
    num_split = check_positive_int(num_split, "num_split", minimum=1)
    split_ids = list(np.atleast_1d(np.asarray(split_ids)).tolist())
    split_indices = sorting._main_ids_to_indices(split_ids, "split_ids").tolist() if split_ids else []
    if len(set(split_indices)) != len(split_indices):
        raise ValueError(f"split_ids has duplicates: {split_ids}")
    rng = np.random.default_rng(resolve_seed(seed))
    new_ids = _new_unit_ids(sorting.unit_ids, num_split * len(split_indices))
    other_ids, new_index_of_part = {}, {}
    unit_ids, old_to_new = [], np.empty(sorting.get_num_units(), dtype=np.int64)
    part_ids = {idx: new_ids[k * num_split:(k + 1) * num_split] for k, idx in enumerate(split_indices)}
    for index, unit_id in enumerate(sorting.unit_ids.tolist()):
        if index in part_ids:
            other_ids[unit_id] = part_ids[index]
            new_index_of_part[index] = len(unit_ids)
            unit_ids.extend(part_ids[index])
        else:
            old_to_new[index] = len(unit_ids)
            unit_ids.append(unit_id)
    spikes = sorting.to_spike_vector()
    new_units = np.empty(spikes.size, dtype=np.int64)
    for index in range(sorting.get_num_units()):
        mask = spikes["unit_index"] == index
        if index in new_index_of_part:
            new_units[mask] = new_index_of_part[index] + rng.integers(0, num_split, size=int(mask.sum()))
        else:
            new_units[mask] = old_to_new[index]
    new_sorting = _sorting_from_spikes(spikes["sample_index"], new_units, spikes["segment_index"], sorting,
                                       unit_ids)
    if output_ids:
        return new_sorting, other_ids
    return new_sorting
