"""Toy spike waveforms and geometry: contact and unit positions, and templates of a simple physical model.

A unit is a point source at a 3-d position. Its waveform is a smoothed biphasic action potential
(depolarisation, repolarisation overshoot, recovery); on each contact it is scaled by a decay with the
distance to the contact and delayed by that distance over a propagation speed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .generate_spiketrains import check_positive_int, check_sampling_frequency, resolve_seed

# Parameter ranges (low, high) of generate_templates: each unit draws its value uniformly.
DEFAULT_UNIT_PARAMS_RANGE = {
    "alpha": (100.0, 500.0),  # amplitude in µV at distance 0
    "depolarization_ms": (0.09, 0.14),
    "repolarization_ms": (0.5, 0.8),
    "recovery_ms": (1.0, 1.5),
    "positive_amplitude": (0.1, 0.25),  # overshoot, relative to the trough of -1
    "smooth_ms": (0.03, 0.07),
    "spatial_decay": (10.0, 45.0),  # µm
    "propagation_speed": (250.0, 350.0),  # µm / ms
    "ellipse_shrink": (0.4, 1.0),
    "ellipse_angle": (0.0, 2 * np.pi),
    "spatial_power": (1.5, 2.5),
}

# waveforms are built on a grid this much finer than 1 ms, then interpolated at any (fractional) time
_FINE_STEP_MS = 0.002


def _waveform_on_fine_grid(ms_before, ms_after, negative_amplitude, positive_amplitude, depolarization_ms,
                           repolarization_ms, recovery_ms, smooth_ms):
    """(times_ms, values) of one smoothed action potential with its trough near t = 0."""
    margin = 4 * smooth_ms + 0.1
    t = np.arange(-ms_before - margin, ms_after + margin + _FINE_STEP_MS, _FINE_STEP_MS)
    w = np.zeros_like(t)
    # depolarisation: an accelerating fall from 0 to -1 over depolarization_ms
    dep = (t >= -depolarization_ms) & (t < 0)
    steep = 4.0
    w[dep] = -np.expm1(steep * (t[dep] + depolarization_ms) / depolarization_ms) / np.expm1(steep)
    # repolarisation: a saturating rise from -1 to the overshoot
    rep = (t >= 0) & (t < repolarization_ms)
    w[rep] = -1 + (1 + positive_amplitude) * np.expm1(-3 * t[rep] / repolarization_ms) / np.expm1(-3.0)
    # recovery: the overshoot returns smoothly to 0
    rec = (t >= repolarization_ms) & (t < repolarization_ms + recovery_ms)
    s = (t[rec] - repolarization_ms) / recovery_ms
    w[rec] = positive_amplitude * (1 - s) ** 2
    if smooth_ms > 0:
        half = int(math.ceil(4 * smooth_ms / _FINE_STEP_MS))
        kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * _FINE_STEP_MS / smooth_ms) ** 2)
        w = np.convolve(w, kernel / kernel.sum(), mode="same")
    # smoothing moves the trough a little and blunts both lobes: put the trough back exactly at t = 0 and
    # rescale each lobe to its asked height (both lobes are 0 where they meet, so the shape stays continuous)
    t = t - t[np.argmin(w)]
    negative = w < 0
    w[negative] *= abs(negative_amplitude) / -w.min()
    if positive_amplitude > 0 and w.max() > 0:
        w[~negative] *= positive_amplitude * abs(negative_amplitude) / w.max()
    return t, w


def generate_single_fake_waveform(sampling_frequency: float | None = None, ms_before: float = 1.0,
                                  ms_after: float = 3.0, negative_amplitude: float = -1,
                                  positive_amplitude: float = 0.15, depolarization_ms: float = 0.1,
                                  repolarization_ms: float = 0.6, recovery_ms: float = 1.1, smooth_ms: float = 0.05,
                                  dtype="float32") -> np.ndarray:
    """One toy extracellular action potential, trough at sample ``int(ms_before * sampling_frequency / 1000)``.

    Parameters
    ----------
    sampling_frequency : float
        Sampling rate in Hz (required).
    ms_before : float, default: 1.0
        Duration before the trough, in ms.
    ms_after : float, default: 3.0
        Duration after the trough, in ms (at least ``repolarization_ms + recovery_ms``).
    negative_amplitude : float, default: -1
        Value of the trough.
    positive_amplitude : float, default: 0.15
        Height of the repolarisation overshoot, relative to the trough's magnitude.
    depolarization_ms : float, default: 0.1
        Duration of the fall to the trough.
    repolarization_ms : float, default: 0.6
        Duration of the rise from the trough to the overshoot.
    recovery_ms : float, default: 1.1
        Duration of the return of the overshoot to 0.
    smooth_ms : float, default: 0.05
        Standard deviation of the Gaussian smoothing.
    dtype : str or numpy dtype, default: "float32"
        Output dtype.

    Returns
    -------
    waveform : np.ndarray
        Shape ``(nbefore + nafter,)``.
    """
    if sampling_frequency is None:
        raise ValueError("sampling_frequency is required (in Hz), e.g. sampling_frequency=30000.0")
    sampling_frequency = check_sampling_frequency(sampling_frequency)
    _check_shape_params(ms_before, ms_after, depolarization_ms, repolarization_ms, recovery_ms, smooth_ms)
    nbefore = int(ms_before * sampling_frequency / 1000.0)
    nafter = int(ms_after * sampling_frequency / 1000.0)
    t_fine, w_fine = _waveform_on_fine_grid(ms_before, ms_after, negative_amplitude, positive_amplitude,
                                            depolarization_ms, repolarization_ms, recovery_ms, smooth_ms)
    t = (np.arange(nbefore + nafter) - nbefore) * 1000.0 / sampling_frequency
    return np.interp(t, t_fine, w_fine, left=0.0, right=0.0).astype(dtype)


def _check_shape_params(ms_before, ms_after, depolarization_ms, repolarization_ms, recovery_ms, smooth_ms):
    for name, value in (("ms_before", ms_before), ("ms_after", ms_after), ("depolarization_ms", depolarization_ms),
                        ("repolarization_ms", repolarization_ms), ("recovery_ms", recovery_ms)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0 ms, got {value}")
    if smooth_ms < 0:
        raise ValueError(f"smooth_ms must be >= 0, got {smooth_ms}")
    if depolarization_ms > ms_before:
        raise ValueError(f"ms_before ({ms_before} ms) is shorter than depolarization_ms ({depolarization_ms} ms)")
    if repolarization_ms + recovery_ms > ms_after:
        raise ValueError(
            f"ms_after ({ms_after} ms) is shorter than repolarization_ms + recovery_ms "
            f"({repolarization_ms + recovery_ms} ms)"
        )


def _contacts_per_column(num_channels: int, num_columns: int) -> list[int]:
    """Contacts of each column: as even as possible, the extra ones on the last columns."""
    base, extra = divmod(num_channels, num_columns)
    return [base + (1 if column >= num_columns - extra else 0) for column in range(num_columns)]


def generate_channel_locations(num_channels: int, num_columns: int, contact_spacing_um: float) -> np.ndarray:
    """Positions of contacts in ``num_columns`` columns, filled column by column.

    Parameters
    ----------
    num_channels : int
        Number of contacts.
    num_columns : int
        Number of columns (an uneven split puts the extra contacts in the last columns).
    contact_spacing_um : float
        Pitch in µm, both between columns (x) and along a column (y).

    Returns
    -------
    channel_locations : np.ndarray
        Shape (num_channels, 2), x then y in µm.
    """
    num_channels = check_positive_int(num_channels, "num_channels")
    num_columns = check_positive_int(num_columns, "num_columns")
    if num_columns > num_channels:
        raise ValueError(f"num_columns ({num_columns}) exceeds num_channels ({num_channels})")
    locations = []
    for column, count in enumerate(_contacts_per_column(num_channels, num_columns)):
        for row in range(count):
            locations.append((column * contact_spacing_um, row * contact_spacing_um))
    return np.asarray(locations, dtype=np.float64)


def generate_unit_locations(num_units: int, channel_locations, margin_um: float = 20.0, minimum_z: float = 5.0,
                            maximum_z: float = 40.0, minimum_distance: float | None = 20.0, max_iteration: int = 100,
                            distance_strict: bool = False, distribution: str = "uniform", num_modes: int = 2,
                            seed: int | None = None) -> np.ndarray:
    """Random 3-d unit positions around a probe, optionally at least ``minimum_distance`` apart.

    x and y are drawn in the contacts' bounding box widened by ``margin_um``, z (the distance from
    the probe plane) in ``[minimum_z, maximum_z]``. Units are placed one by one, each at the first of
    ``max_iteration`` random candidates lying at least ``minimum_distance`` from the units already placed;
    units still too close are then re-placed against all the others, for up to ``max_iteration`` rounds.

    Parameters
    ----------
    num_units : int
        Number of units.
    channel_locations : array-like
        (num_channels, 2 or 3) contact positions in µm (x and y are used).
    margin_um : float, default: 20.0
        Margin around the contacts in x and y.
    minimum_z : float, default: 5.0
        Smallest z in µm.
    maximum_z : float, default: 40.0
        Largest z in µm.
    minimum_distance : float or None, default: 20.0
        Smallest distance between two units in µm (None: no constraint).
    max_iteration : int, default: 100
        Candidates drawn per placement, and rounds of re-placement, to meet ``minimum_distance``.
    distance_strict : bool, default: False
        Raise when a unit cannot meet the constraint (otherwise warn).
    distribution : "uniform" | "multimodal", default: "uniform"
        "multimodal" concentrates y around ``num_modes`` evenly spaced layers.
    num_modes : int, default: 2
        Number of layers of the "multimodal" distribution.
    seed : int or None, default: None
        Random seed.

    Returns
    -------
    unit_locations : np.ndarray
        Shape (num_units, 3), x, y, z in µm.
    """
    num_units = check_positive_int(num_units, "num_units", minimum=0)
    channel_locations = np.asarray(channel_locations, dtype=np.float64)
    if channel_locations.ndim != 2 or channel_locations.shape[1] not in (2, 3) or channel_locations.shape[0] == 0:
        raise ValueError(f"channel_locations must have shape (num_channels, 2 or 3), got {channel_locations.shape}")
    if distribution not in ("uniform", "multimodal"):
        raise ValueError(f"distribution must be 'uniform' or 'multimodal', got {distribution!r}")
    if minimum_z > maximum_z:
        raise ValueError(f"minimum_z ({minimum_z}) must be <= maximum_z ({maximum_z})")
    num_modes = check_positive_int(num_modes, "num_modes")
    rng = np.random.default_rng(resolve_seed(seed))
    low = channel_locations[:, :2].min(axis=0) - margin_um
    high = channel_locations[:, :2].max(axis=0) + margin_um

    def draw(n: int) -> np.ndarray:
        xyz = np.empty((n, 3))
        xyz[:, 0] = rng.uniform(low[0], high[0], size=n)
        if distribution == "uniform":
            xyz[:, 1] = rng.uniform(low[1], high[1], size=n)
        else:
            span = high[1] - low[1]
            centers = low[1] + span * (np.arange(num_modes) + 0.5) / num_modes
            y = centers[rng.integers(0, num_modes, size=n)] + rng.normal(0, span / (6 * num_modes), size=n)
            xyz[:, 1] = np.clip(y, low[1], high[1])
        xyz[:, 2] = rng.uniform(minimum_z, maximum_z, size=n)
        return xyz

    if minimum_distance is None or num_units < 2:
        return draw(num_units)
    max_iteration = check_positive_int(max_iteration, "max_iteration")
    # place units one by one, each at the first of max_iteration candidates far enough from the units
    # already placed; then re-place units still too close (against all others) for a few rounds
    locations = np.empty((num_units, 3))
    locations[0] = draw(1)[0]
    for u in range(1, num_units):
        locations[u] = _best_candidate(draw(max_iteration), locations[:u], minimum_distance)
    for _ in range(max_iteration):
        too_close = _too_close(locations, minimum_distance)
        if too_close.size == 0:
            break
        for u in too_close:
            others = np.delete(locations, u, axis=0)
            locations[u] = _best_candidate(draw(max_iteration), others, minimum_distance)
    failed = _too_close(locations, minimum_distance).size
    if failed:
        message = (f"generate_unit_locations: {failed} of {num_units} units could not be placed at least "
                   f"{minimum_distance} µm from the others in {max_iteration} rounds; lower minimum_distance or "
                   "raise margin_um / max_iteration")
        if distance_strict:
            raise ValueError(message)
        warnings.warn(message)
    return locations


def _best_candidate(candidates: np.ndarray, placed: np.ndarray, minimum_distance: float) -> np.ndarray:
    """The first candidate at least ``minimum_distance`` from every placed unit, else the farthest one."""
    nearest = np.linalg.norm(candidates[:, np.newaxis, :] - placed[np.newaxis, :, :], axis=2).min(axis=1)
    good = np.flatnonzero(nearest >= minimum_distance)
    return candidates[good[0]] if good.size else candidates[np.argmax(nearest)]


def _too_close(locations: np.ndarray, minimum_distance: float) -> np.ndarray:
    """Indices of units closer than ``minimum_distance`` to a unit with a smaller index."""
    distances = np.linalg.norm(locations[:, np.newaxis, :] - locations[np.newaxis, :, :], axis=2)
    distances[np.tril_indices(len(locations))] = np.inf
    return np.flatnonzero((distances < minimum_distance).any(axis=0))


def _unit_params(unit_params: dict | None, num_units: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    unit_params = {} if unit_params is None else dict(unit_params)
    unknown = set(unit_params) - set(DEFAULT_UNIT_PARAMS_RANGE)
    if unknown:
        raise ValueError(f"unit_params: unknown keys {sorted(unknown)}; known: {sorted(DEFAULT_UNIT_PARAMS_RANGE)}")
    params = {}
    # draw every parameter (in a fixed order) so a given value does not change the other draws
    for name, default in DEFAULT_UNIT_PARAMS_RANGE.items():
        drawn = rng.uniform(default[0], default[1], size=num_units)
        value = unit_params.get(name, None)
        if value is None:
            params[name] = drawn
        elif isinstance(value, tuple):
            if len(value) != 2:
                raise ValueError(f"unit_params[{name!r}]: a tuple must be a (low, high) range, got {value}")
            params[name] = value[0] + (drawn - default[0]) / (default[1] - default[0]) * (value[1] - value[0])
        else:
            array = np.asarray(value, dtype=np.float64)
            if array.ndim == 0:
                array = np.full(num_units, float(array))
            if array.shape != (num_units,):
                raise ValueError(f"unit_params[{name!r}] must be a number, a (low, high) tuple or one value per unit "
                                 f"({num_units}), got shape {array.shape}")
            params[name] = array
    return params


def generate_templates(channel_locations, units_locations, sampling_frequency: float, ms_before: float,
                       ms_after: float, seed: int | None = None, dtype="float32", upsample_factor: int | None = None,
                       unit_params: dict | None = None, mode: str = "ellipsoid",
                       spatial_profile: str = "exponential") -> np.ndarray:
    """Templates of point-source units seen by a probe.

    Each unit has a smoothed biphasic waveform (trough -1 at sample ``nbefore`` on its nearest
    contact). On contact ``c`` at distance ``r`` it is scaled by ``alpha * exp(-r / spatial_decay)``
    ("exponential") or ``alpha / (1 + (r / spatial_decay) ** spatial_power)`` ("power"), and delayed by
    ``(r - r_nearest) / propagation_speed``.

    Parameters
    ----------
    channel_locations : array-like
        (num_channels, 2 or 3) contact positions in µm (z = 0 when 2-d).
    units_locations : array-like
        (num_units, 3) unit positions in µm.
    sampling_frequency : float
        Sampling rate in Hz.
    ms_before : float
        Template duration before the trough, in ms (``nbefore = int(ms_before * fs / 1000)``).
    ms_after : float
        Template duration after the trough, in ms.
    seed : int or None, default: None
        Random seed of the unit parameters.
    dtype : str or numpy dtype, default: "float32"
        Templates dtype.
    upsample_factor : int or None, default: None
        When given, add a last axis of that size: template ``j`` is the unit's spike happening
        ``j / upsample_factor`` of a sample after the sample grid (to inject sub-sample jitter).
    unit_params : dict or None, default: None
        Per-unit parameters overriding the random ones (keys of ``DEFAULT_UNIT_PARAMS_RANGE``): a number,
        one value per unit, or a (low, high) range to draw from. Recovery is shortened when
        ``repolarization_ms + recovery_ms`` would exceed ``ms_after``.
    mode : "ellipsoid" | "sphere", default: "ellipsoid"
        "sphere": Euclidean distance; "ellipsoid": the x-y distance is stretched along a random
        direction by ``1 / ellipse_shrink``, making footprints anisotropic.
    spatial_profile : "exponential" | "power", default: "exponential"
        Decay law with distance.

    Returns
    -------
    templates : np.ndarray
        (num_units, num_samples, num_channels), or (num_units, num_samples, num_channels, upsample_factor).
    """
    sampling_frequency = check_sampling_frequency(sampling_frequency)
    channel_locations = np.asarray(channel_locations, dtype=np.float64)
    if channel_locations.ndim != 2 or channel_locations.shape[1] not in (2, 3):
        raise ValueError(f"channel_locations must have shape (num_channels, 2 or 3), got {channel_locations.shape}")
    if channel_locations.shape[1] == 2:
        channel_locations = np.column_stack([channel_locations, np.zeros(len(channel_locations))])
    units_locations = np.asarray(units_locations, dtype=np.float64)
    if units_locations.ndim != 2 or units_locations.shape[1] != 3:
        raise ValueError(f"units_locations must have shape (num_units, 3), got {units_locations.shape}")
    if mode not in ("ellipsoid", "sphere"):
        raise ValueError(f"mode must be 'ellipsoid' or 'sphere', got {mode!r}")
    if spatial_profile not in ("exponential", "power"):
        raise ValueError(f"spatial_profile must be 'exponential' or 'power', got {spatial_profile!r}")
    upsample = 1 if upsample_factor is None else check_positive_int(upsample_factor, "upsample_factor")
    nbefore = int(ms_before * sampling_frequency / 1000.0)
    nafter = int(ms_after * sampling_frequency / 1000.0)
    if nbefore < 1 or nafter < 1:
        raise ValueError(f"ms_before and ms_after must each cover at least one sample, got {ms_before}, {ms_after} ms")
    num_units, num_channels = len(units_locations), len(channel_locations)
    rng = np.random.default_rng(resolve_seed(seed))
    params = _unit_params(unit_params, num_units, rng)

    # sample times in ms relative to the trough, for each sub-sample shift: (num_samples, upsample)
    shifts = np.arange(upsample) / upsample
    sample_offsets = np.arange(nbefore + nafter)[:, np.newaxis] - nbefore - shifts[np.newaxis, :]
    times_ms = sample_offsets * 1000.0 / sampling_frequency
    templates = np.zeros((num_units, nbefore + nafter, num_channels, upsample), dtype=np.float64)
    for u in range(num_units):
        p = {name: float(values[u]) for name, values in params.items()}
        depolarization_ms = min(p["depolarization_ms"], ms_before)
        recovery_ms = min(p["recovery_ms"], max(ms_after - p["repolarization_ms"], 0.0))
        if recovery_ms <= 0:
            raise ValueError(
                f"ms_after ({ms_after} ms) is shorter than the repolarization of unit {u} "
                f"({p['repolarization_ms']:.2f} ms): raise ms_after"
            )
        t_fine, w_fine = _waveform_on_fine_grid(ms_before, ms_after, -1.0, p["positive_amplitude"],
                                                depolarization_ms, p["repolarization_ms"], recovery_ms,
                                                p["smooth_ms"])
        delta = channel_locations - units_locations[u]
        if mode == "ellipsoid":
            cos, sin = math.cos(p["ellipse_angle"]), math.sin(p["ellipse_angle"])
            along = delta[:, 0] * cos + delta[:, 1] * sin
            across = (-delta[:, 0] * sin + delta[:, 1] * cos) / p["ellipse_shrink"]
            distances = np.sqrt(along**2 + across**2 + delta[:, 2] ** 2)
        else:
            distances = np.linalg.norm(delta, axis=1)
        if spatial_profile == "exponential":
            gains = p["alpha"] * np.exp(-distances / p["spatial_decay"])
        else:
            gains = p["alpha"] / (1.0 + (distances / p["spatial_decay"]) ** p["spatial_power"])
        delays_ms = (distances - distances.min()) / p["propagation_speed"]
        # (num_samples, num_channels, upsample) times at which to read the waveform
        read_times = times_ms[:, np.newaxis, :] - delays_ms[np.newaxis, :, np.newaxis]
        waveform = np.interp(read_times.ravel(), t_fine, w_fine, left=0.0, right=0.0).reshape(read_times.shape)
        templates[u] = waveform * gains[np.newaxis, :, np.newaxis]
    templates = templates.astype(dtype)
    return templates[..., 0] if upsample_factor is None else templates
