"""Template tools: amplitudes, extremum channel, peak shift and extremum amplitude of each unit's template.

Every function takes a ``Templates`` object or a SortingAnalyzer (anything following the analyzer
protocol below); both are read through the small adapter functions ``_get_dense_templates_array``,
``_get_nbefore`` and ``_get_sparsity_mask``.

Analyzer protocol used here: ``unit_ids``, ``channel_ids``, ``sparsity`` (ChannelSparsity or None),
``return_scaled`` (or ``return_in_uV``), and ``get_extension("templates")`` returning None or an object
with ``nbefore`` and ``get_templates(unit_ids=None, operator="average")`` -> dense
``(num_units, num_samples, num_channels)``. Legacy wrappers with a ``sorting_analyzer`` attribute are
unwrapped.
"""

from __future__ import annotations

import numpy as np

from .templates import Templates

__all__ = [
    "get_template_amplitudes",
    "get_template_extremum_channel",
    "get_template_extremum_channel_peak_shift",
    "get_template_extremum_amplitude",
    "estimate_main_channel_from_recording",
]

_PEAK_SIGNS = ("neg", "pos", "both")
_MODES = ("extremum", "at_index", "peak_to_peak")


# ----------------------------------------------------------------------------- adapter
def _unwrap(obj):
    """The object itself, or the analyzer inside a legacy waveform-extractor wrapper."""
    inner = getattr(obj, "sorting_analyzer", None)
    return obj if inner is None else inner


def _is_analyzer(obj) -> bool:
    return not isinstance(obj, Templates) and callable(getattr(obj, "get_extension", None))


def _check_templates_or_analyzer(obj, argument: str = "templates_or_sorting_analyzer"):
    obj = _unwrap(obj)
    if not isinstance(obj, Templates) and not _is_analyzer(obj):
        raise TypeError(f"{argument} must be a Templates or a SortingAnalyzer, got {type(obj).__name__}")
    return obj


def _analyzer_is_scaled(analyzer) -> bool:
    for name in ("return_scaled", "return_in_uV"):
        value = getattr(analyzer, name, None)
        if value is not None:
            return bool(value)
    return True


def _is_scaled(obj) -> bool:
    """Whether the templates of ``obj`` are in µV."""
    obj = _unwrap(obj)
    return obj.is_in_uV if isinstance(obj, Templates) else _analyzer_is_scaled(obj)


def _templates_extension(analyzer):
    ext = analyzer.get_extension("templates")
    if ext is None:
        raise ValueError(
            "the SortingAnalyzer has no 'templates' extension: compute it first, "
            "e.g. analyzer.compute(['random_spikes', 'templates'])"
        )
    return ext


def _get_dense_templates_array(templates_or_analyzer, return_scaled: bool | None = None,
                               operator: str = "average") -> np.ndarray:
    """Dense ``(num_units, num_samples, num_channels)`` templates of a Templates or a SortingAnalyzer.

    Parameters
    ----------
    templates_or_analyzer : Templates | SortingAnalyzer
        The object holding the templates (an analyzer needs its "templates" extension).
    return_scaled : bool or None, default: None
        Expected scaling (µV when True); None accepts what the object holds. A mismatch is an error
        because raw templates cannot be scaled back without the recording's gains.
    operator : str, default: "average"
        Template operator of the analyzer's extension ("average", "std", "median", ...).
    """
    obj = _check_templates_or_analyzer(templates_or_analyzer)
    is_scaled = _is_scaled(obj)
    if return_scaled is not None and bool(return_scaled) != is_scaled:
        held = "in µV" if is_scaled else "raw (not scaled)"
        raise ValueError(f"return_scaled={return_scaled} is not possible: the templates are {held}")
    if isinstance(obj, Templates):
        return obj.get_dense_templates()
    return np.asarray(_templates_extension(obj).get_templates(unit_ids=None, operator=operator))


def _get_nbefore(templates_or_analyzer) -> int:
    """Samples before the peak in the templates of a Templates or a SortingAnalyzer."""
    obj = _check_templates_or_analyzer(templates_or_analyzer)
    if isinstance(obj, Templates):
        return int(obj.nbefore)
    return int(_templates_extension(obj).nbefore)


def _get_sparsity_mask(templates_or_analyzer) -> np.ndarray | None:
    """Boolean ``(num_units, num_channels)`` mask of the object's sparsity, None when dense."""
    obj = _check_templates_or_analyzer(templates_or_analyzer)
    sparsity = getattr(obj, "sparsity", None)
    return None if sparsity is None else np.asarray(sparsity.mask, dtype=bool)


# ------------------------------------------------------------------------- array core
def _check_peak_sign(peak_sign) -> str:
    if peak_sign not in _PEAK_SIGNS:
        raise ValueError(f"peak_sign must be one of {list(_PEAK_SIGNS)}, got {peak_sign!r}")
    return peak_sign


def _check_mode(mode, argument: str = "mode") -> str:
    if mode not in _MODES:
        raise ValueError(f"{argument} must be one of {list(_MODES)}, got {mode!r}")
    return mode


def _resolve_mode(mode, peak_mode, default: str) -> str:
    """``mode`` (spec spelling) or ``peak_mode`` (SpikeInterface 0.105 spelling)."""
    if mode is not None and peak_mode is not None and mode != peak_mode:
        raise ValueError(f"mode={mode!r} and peak_mode={peak_mode!r} disagree; give one of them")
    chosen = mode if mode is not None else peak_mode
    return _check_mode(default if chosen is None else chosen, "mode")


def _amplitudes_array(templates_array: np.ndarray, nbefore: int, peak_sign: str, mode: str,
                      abs_value: bool = True) -> np.ndarray:
    """Amplitude of every unit on every channel, ``(num_units, num_channels)``, from dense templates."""
    if mode == "extremum":
        if peak_sign == "both":
            values = np.abs(templates_array).max(axis=1)
        elif peak_sign == "neg":
            values = templates_array.min(axis=1)
        else:
            values = templates_array.max(axis=1)
    elif mode == "at_index":
        if not 0 <= nbefore < templates_array.shape[1]:
            raise ValueError(f"mode='at_index' needs nbefore in [0, {templates_array.shape[1]}), got {nbefore}")
        values = templates_array[:, nbefore, :]
        if peak_sign == "both":
            values = np.abs(values)
    else:
        values = np.ptp(templates_array, axis=1)
    return np.abs(values) if abs_value else values


def _extremum_channel_indices(amplitudes: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Index of the largest (absolute) amplitude of each unit, among its active channels when sparse."""
    values = np.abs(amplitudes).astype(np.float64)
    if mask is not None:
        # A unit with no active channel keeps the dense argmax rather than an arbitrary inactive channel.
        has_any = mask.any(axis=1, keepdims=True)
        values = np.where(mask | ~has_any, values, -np.inf)
    return np.argmax(values, axis=1).astype(np.int64)


def _peak_shifts(templates_array: np.ndarray, nbefore: int, channel_indices: np.ndarray, peak_sign: str) -> np.ndarray:
    """Peak position minus ``nbefore`` on each unit's ``channel_indices`` channel."""
    traces = templates_array[np.arange(templates_array.shape[0]), :, channel_indices]  # (units, samples)
    if peak_sign == "neg":
        positions = np.argmin(traces, axis=1)
    elif peak_sign == "pos":
        positions = np.argmax(traces, axis=1)
    else:
        positions = np.argmax(np.abs(traces), axis=1)
    return positions.astype(np.int64) - int(nbefore)


def _main_channel_indices(templates_or_analyzer, peak_sign: str = "neg", mode: str = "extremum") -> np.ndarray:
    """Extremum channel index of each unit (array), for the sparsity builders."""
    obj = _check_templates_or_analyzer(templates_or_analyzer)
    templates_array = _get_dense_templates_array(obj)
    amplitudes = _amplitudes_array(templates_array, _get_nbefore(obj), peak_sign, mode)
    return _extremum_channel_indices(amplitudes, _get_sparsity_mask(obj))


# ----------------------------------------------------------------------------- public
def get_template_amplitudes(
    templates_or_sorting_analyzer,
    peak_sign: str = "neg",
    mode: str | None = None,
    return_scaled: bool | None = None,
    abs_value: bool = True,
    operator: str = "average",
    peak_mode: str | None = None,
) -> dict:
    """Amplitude of each unit's template on every channel (each unit's own channels when sparse).

    Parameters
    ----------
    templates_or_sorting_analyzer : Templates | SortingAnalyzer
        The templates (an analyzer needs its "templates" extension).
    peak_sign : "neg" | "pos" | "both", default: "neg"
        Sign of the peak: "neg" the minimum, "pos" the maximum, "both" the largest absolute value.
    mode : "extremum" | "at_index" | "peak_to_peak", default: "extremum"
        * "extremum": the peak value over time (per ``peak_sign``)
        * "at_index": the value at sample ``nbefore`` (absolute for "both")
        * "peak_to_peak": max - min over time
    return_scaled : bool or None, default: None
        Expected scaling; None takes the templates as they are (µV or raw). A mismatch is an error.
    abs_value : bool, default: True
        Absolute values; with False, "neg" gives the (negative) minimum.
    operator : str, default: "average"
        Template operator of the analyzer's "templates" extension.
    peak_mode : str or None, default: None
        SpikeInterface 0.105's spelling of ``mode``.

    Returns
    -------
    peak_values : dict
        ``{unit_id: amplitudes}``: ``(num_channels,)`` for dense templates, ``(num active channels,)``
        (in channel order) for sparse ones.
    """
    obj = _check_templates_or_analyzer(templates_or_sorting_analyzer)
    peak_sign = _check_peak_sign(peak_sign)
    mode = _resolve_mode(mode, peak_mode, "extremum")
    templates_array = _get_dense_templates_array(obj, return_scaled=return_scaled, operator=operator)
    values = _amplitudes_array(templates_array, _get_nbefore(obj), peak_sign, mode, abs_value)
    mask = _get_sparsity_mask(obj)
    if mask is None:
        return {unit_id: values[i] for i, unit_id in enumerate(obj.unit_ids)}
    return {unit_id: values[i, mask[i]] for i, unit_id in enumerate(obj.unit_ids)}


def get_template_extremum_channel(
    templates_or_sorting_analyzer,
    peak_sign: str = "neg",
    mode: str = "extremum",
    outputs: str = "id",
    operator: str = "average",
) -> dict:
    """Channel where each unit's template has its largest amplitude.

    Parameters
    ----------
    templates_or_sorting_analyzer : Templates | SortingAnalyzer
        The templates (an analyzer needs its "templates" extension).
    peak_sign : "neg" | "pos" | "both", default: "neg"
        Sign of the peak.
    mode : "extremum" | "at_index" | "peak_to_peak", default: "extremum"
        How the amplitude of each channel is measured (see ``get_template_amplitudes``).
    outputs : "id" | "index", default: "id"
        Return channel ids or channel indices.
    operator : str, default: "average"
        Template operator of the analyzer's "templates" extension.

    Returns
    -------
    extremum_channels : dict
        ``{unit_id: channel id or index}``; for sparse templates the channel is among the unit's own.
    """
    obj = _check_templates_or_analyzer(templates_or_sorting_analyzer)
    peak_sign = _check_peak_sign(peak_sign)
    mode = _check_mode(mode)
    if outputs not in ("id", "index"):
        raise ValueError(f"outputs must be 'id' or 'index', got {outputs!r}")
    templates_array = _get_dense_templates_array(obj, operator=operator)
    amplitudes = _amplitudes_array(templates_array, _get_nbefore(obj), peak_sign, mode)
    indices = _extremum_channel_indices(amplitudes, _get_sparsity_mask(obj))
    channels = indices if outputs == "index" else np.asarray(obj.channel_ids)[indices]
    return dict(zip(obj.unit_ids, channels))


def get_template_extremum_channel_peak_shift(templates_or_sorting_analyzer, peak_sign: str = "neg",
                                             operator: str = "average") -> dict:
    """Misalignment (in samples) of each unit's peak with respect to ``nbefore``, on its extremum channel.

    Sorters may report spike times a few samples off the waveform peak; the shift is the peak position
    on the extremum channel (``peak_sign``, mode "extremum") minus ``nbefore``.

    Parameters
    ----------
    templates_or_sorting_analyzer : Templates | SortingAnalyzer
        The templates (an analyzer needs its "templates" extension).
    peak_sign : "neg" | "pos" | "both", default: "neg"
        Sign of the peak.
    operator : str, default: "average"
        Template operator of the analyzer's "templates" extension.

    Returns
    -------
    shifts : dict
        ``{unit_id: shift}`` (int, negative when the peak comes before ``nbefore``).
    """
    obj = _check_templates_or_analyzer(templates_or_sorting_analyzer)
    peak_sign = _check_peak_sign(peak_sign)
    templates_array = _get_dense_templates_array(obj, operator=operator)
    nbefore = _get_nbefore(obj)
    amplitudes = _amplitudes_array(templates_array, nbefore, peak_sign, "extremum")
    channels = _extremum_channel_indices(amplitudes, _get_sparsity_mask(obj))
    shifts = _peak_shifts(templates_array, nbefore, channels, peak_sign)
    return dict(zip(obj.unit_ids, shifts))


def get_template_extremum_amplitude(
    templates_or_sorting_analyzer,
    peak_sign: str = "neg",
    mode: str | None = None,
    abs_value: bool = True,
    operator: str = "average",
    peak_mode: str | None = None,
) -> dict:
    """Amplitude of each unit's template on its extremum channel.

    The extremum channel is found with ``peak_sign`` and mode "extremum"; the amplitude on it is then
    measured with ``mode`` (SpikeInterface 0.105.3's convention, default "at_index").

    Parameters
    ----------
    templates_or_sorting_analyzer : Templates | SortingAnalyzer
        The templates (an analyzer needs its "templates" extension).
    peak_sign : "neg" | "pos" | "both", default: "neg"
        Sign of the peak.
    mode : "extremum" | "at_index" | "peak_to_peak", default: "at_index"
        How the amplitude is measured on the extremum channel.
    abs_value : bool, default: True
        Absolute values.
    operator : str, default: "average"
        Template operator of the analyzer's "templates" extension.
    peak_mode : str or None, default: None
        SpikeInterface 0.105's spelling of ``mode``.

    Returns
    -------
    amplitudes : dict
        ``{unit_id: amplitude}``.
    """
    obj = _check_templates_or_analyzer(templates_or_sorting_analyzer)
    peak_sign = _check_peak_sign(peak_sign)
    mode = _resolve_mode(mode, peak_mode, "at_index")
    templates_array = _get_dense_templates_array(obj, operator=operator)
    nbefore = _get_nbefore(obj)
    channels = _extremum_channel_indices(_amplitudes_array(templates_array, nbefore, peak_sign, "extremum"),
                                         _get_sparsity_mask(obj))
    values = _amplitudes_array(templates_array, nbefore, peak_sign, mode, abs_value)
    picked = values[np.arange(values.shape[0]), channels]
    return dict(zip(obj.unit_ids, picked))


def estimate_main_channel_from_recording(
    recording,
    sorting,
    peak_sign: str = "both",
    peak_mode: str = "extremum",
    num_spikes_for_main_channel: int = 100,
    ms_before: float = 1.0,
    ms_after: float = 2.5,
    seed: int | None = None,
    return_scaled: bool = False,
    **job_kwargs,
) -> np.ndarray:
    """Main (extremum) channel index of each unit, from templates averaged over random spikes.

    One chunked pass over the recording (as ``estimate_sparsity``) averages up to
    ``num_spikes_for_main_channel`` random spikes per unit (away from segment borders); the main channel
    is the largest amplitude. This is how an analyzer finds its units' main channels before estimating
    a "radius" sparsity around them.

    Parameters
    ----------
    recording : BaseRecording
        The recording.
    sorting : BaseSorting
        The sorting.
    peak_sign : "neg" | "pos" | "both", default: "both"
        Sign of the peak.
    peak_mode : "extremum" | "at_index" | "peak_to_peak", default: "extremum"
        How amplitudes are measured.
    num_spikes_for_main_channel : int, default: 100
        Random spikes per unit.
    ms_before, ms_after : float, default: 1.0, 2.5
        Window around each spike in ms.
    seed : int or None, default: None
        Seed of the random spike selection.
    return_scaled : bool, default: False
        Average µV traces (when the recording has gains) instead of raw ones, as SpikeInterface does.
    **job_kwargs
        Job kwargs (``n_jobs``, ``chunk_duration``, ``progress_bar``...).

    Returns
    -------
    main_channel_indices : np.ndarray
        int64, one channel index per unit.
    """
    from .sparsity import _check_pair, _estimate_templates_for_sparsity

    peak_sign = _check_peak_sign(peak_sign)
    peak_mode = _check_mode(peak_mode, "peak_mode")
    _check_pair(sorting, recording)
    templates_array, nbefore, _ = _estimate_templates_for_sparsity(
        sorting, recording, num_spikes_for_sparsity=num_spikes_for_main_channel, ms_before=ms_before,
        ms_after=ms_after, seed=seed, return_scaled=return_scaled, **job_kwargs,
    )
    return _extremum_channel_indices(_amplitudes_array(templates_array, nbefore, peak_sign, peak_mode), None)
