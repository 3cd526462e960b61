"""Toy and ground-truth objects for examples, tests and demos.

The pieces live in submodules (one idea each) and are all importable from here:

* :mod:`sicore.generate_spiketrains`: random firings, ``generate_sorting``, sortings with planted mistakes;
* :mod:`sicore.generate_noise`: the lazy seeded ``NoiseGeneratorRecording`` and ``generate_recording``;
* :mod:`sicore.generate_waveforms`: probe/unit geometry and ``generate_templates``;
* :mod:`sicore.generate_injection`: the lazy ``InjectTemplatesRecording``.

This module adds ``generate_ground_truth_recording`` (noise + templates at known spikes) and
``generate_snippets``.
"""

from __future__ import annotations

import numpy as np
import probeinterface as pi

from .generate_injection import InjectTemplatesRecording, inject_templates
from .generate_noise import (
    NoiseGeneratorRecording,
    generate_recording,
    generate_recording_by_size,
    noise_generator_recording,
)
from .generate_spiketrains import (
    check_positive_int,
    check_sampling_frequency,
    clean_refractory_period,
    durations_to_num_samples,
    generate_sorting,
    inject_some_duplicate_units,
    inject_some_split_units,
    resolve_seed,
    synthesize_poisson_spike_vector,
    synthesize_random_firings,
    synthetize_spike_train_bad_isi,
)
from .generate_waveforms import (
    DEFAULT_UNIT_PARAMS_RANGE,
    _contacts_per_column,
    generate_channel_locations,
    generate_single_fake_waveform,
    generate_templates,
    generate_unit_locations,
)
from .sorting import BaseSorting

__all__ = [
    "DEFAULT_UNIT_PARAMS_RANGE",
    "InjectTemplatesRecording",
    "NoiseGeneratorRecording",
    "clean_refractory_period",
    "generate_channel_locations",
    "generate_ground_truth_recording",
    "generate_recording",
    "generate_recording_by_size",
    "generate_single_fake_waveform",
    "generate_snippets",
    "generate_sorting",
    "generate_templates",
    "generate_unit_locations",
    "inject_some_duplicate_units",
    "inject_some_split_units",
    "inject_templates",
    "noise_generator_recording",
    "synthesize_poisson_spike_vector",
    "synthesize_random_firings",
    "synthetize_spike_train_bad_isi",
]

_DEFAULT_PROBE_KWARGS = {"num_columns": 2, "xpitch": 20, "ypitch": 20, "contact_shapes": "circle",
                         "contact_shape_params": {"radius": 6}}
_DEFAULT_SORTING_KWARGS = {"firing_rate": 15, "refractory_period": 4.0}
_DEFAULT_NOISE_KWARGS = {"noise_levels": 5.0, "strategy": "on_the_fly"}
_DEFAULT_UNIT_LOCATIONS_KWARGS = {"margin_um": 10.0, "minimum_z": 5.0, "maximum_z": 50.0, "minimum_distance": 20}


def _generated_probe(num_channels: int, generate_probe_kwargs: dict) -> pi.Probe:
    kwargs = dict(_DEFAULT_PROBE_KWARGS)
    kwargs.update(generate_probe_kwargs or {})
    if "num_contact_per_column" not in kwargs:
        num_columns = min(int(kwargs.pop("num_columns")), num_channels)
        kwargs["num_columns"] = num_columns
        kwargs["num_contact_per_column"] = _contacts_per_column(num_channels, num_columns)
    probe = pi.generate_multi_columns_probe(**kwargs)
    if probe.get_contact_count() != num_channels:
        raise ValueError(f"generate_probe_kwargs make a probe of {probe.get_contact_count()} contacts for "
                         f"num_channels={num_channels}")
    probe.set_device_channel_indices(np.arange(num_channels))
    return probe


def _channel_locations_of_probe(probe: pi.Probe) -> np.ndarray:
    """Contact positions in channel order (channel ``device_channel_indices[i]`` is contact ``i``)."""
    wiring = np.asarray(probe.device_channel_indices)
    num_contacts = probe.get_contact_count()
    if np.any(wiring < 0) or np.unique(wiring).size != num_contacts or wiring.max() != num_contacts - 1:
        raise ValueError("probe: every contact must be wired to one of channels 0 .. num_contacts - 1")
    locations = np.empty_like(np.asarray(probe.contact_positions, dtype=np.float64))
    locations[wiring] = probe.contact_positions
    return locations


def generate_ground_truth_recording(
    durations=(10.0,),
    sampling_frequency: float = 25000.0,
    num_channels: int = 4,
    num_units: int = 10,
    sorting: BaseSorting | None = None,
    probe: pi.Probe | None = None,
    generate_probe_kwargs: dict | None = None,
    templates=None,
    ms_before: float = 1.0,
    ms_after: float = 3.0,
    upsample_factor: int | None = None,
    upsample_vector=None,
    generate_sorting_kwargs: dict | None = None,
    noise_kwargs: dict | None = None,
    generate_unit_locations_kwargs: dict | None = None,
    generate_templates_kwargs: dict | None = None,
    dtype="float32",
    seed: int | None = None,
):
    """A lazy recording with known spikes: templates added at a sorting's spike times on top of noise.

    Units are point sources placed around a generated multi-column probe; their templates decay with
    the distance to each contact (see :func:`generate_templates`). The traces are computed chunk by
    chunk when read, identically whatever the chunking.

    Parameters
    ----------
    durations : list of float, default: [10.0]
        Duration of each segment in seconds.
    sampling_frequency : float, default: 25000.0
        Sampling rate in Hz.
    num_channels : int, default: 4
        Number of channels (ignored when ``probe`` is given).
    num_units : int, default: 10
        Number of units (ignored when ``sorting`` is given).
    sorting : BaseSorting or None, default: None
        The spikes to inject; generated with ``generate_sorting_kwargs`` when None.
    probe : probeinterface.Probe or None, default: None
        The probe, every contact wired; generated with ``generate_probe_kwargs`` when None.
    generate_probe_kwargs : dict or None, default: None
        Arguments of ``probeinterface.generate_multi_columns_probe`` (defaults: 2 columns, 20 µm pitches,
        circular contacts of radius 6 µm; contacts split evenly over the columns).
    templates : array-like or None, default: None
        (num_units, num_samples, num_channels) templates; generated when None. Their trough is expected at
        ``nbefore = int(ms_before * sampling_frequency / 1000)``.
    ms_before : float, default: 1.0
        Template duration before the spike time, in ms.
    ms_after : float, default: 3.0
        Template duration after the spike time, in ms.
    upsample_factor : int or None, default: None
        Generate upsampled templates (when ``templates`` is None) and inject each spike with a random
        sub-sample jitter.
    upsample_vector : array-like or None, default: None
        The jitter index of each spike (default: random), with upsampled templates.
    generate_sorting_kwargs : dict or None, default: None
        Arguments of :func:`generate_sorting` (default ``{"firing_rate": 15, "refractory_period": 4.0}``).
    noise_kwargs : dict or None, default: None
        Arguments of :class:`NoiseGeneratorRecording` (default ``{"noise_levels": 5.0, "strategy": "on_the_fly"}``,
        blocks of one second).
    generate_unit_locations_kwargs : dict or None, default: None
        Arguments of :func:`generate_unit_locations` (default ``{"margin_um": 10.0, "minimum_z": 5.0,
        "maximum_z": 50.0, "minimum_distance": 20}``).
    generate_templates_kwargs : dict or None, default: None
        Further arguments of :func:`generate_templates` (``unit_params``, ``mode``, ``spatial_profile``).
    dtype : str or numpy dtype, default: "float32"
        Traces dtype ("float32" or "float64").
    seed : int or None, default: None
        Random seed of everything (sorting, unit positions, templates, noise, jitter).

    Returns
    -------
    recording : InjectTemplatesRecording
        The traces (probe attached, ``gain_to_uV`` 1 and ``offset_to_uV`` 0). Its ``templates``,
        ``nbefore`` and ``parent_recording`` (the noise) attributes give the ground truth.
    sorting : BaseSorting
        The spikes (a generated sorting has the ``gt_unit_locations`` property when templates were generated).
    """
    sampling_frequency = check_sampling_frequency(sampling_frequency)
    num_samples = durations_to_num_samples(durations, sampling_frequency)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype("float32"), np.dtype("float64")):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype}")
    seed = resolve_seed(seed)
    # independent sub-seeds, so changing one ingredient (e.g. the sorting) keeps the others
    sorting_seed, locations_seed, templates_seed, noise_seed, jitter_seed = (
        int(s) for s in np.random.SeedSequence(seed).generate_state(5, dtype=np.uint32)
    )

    generated_sorting = sorting is None
    if sorting is None:
        kwargs = dict(_DEFAULT_SORTING_KWARGS)
        if generate_sorting_kwargs:
            # SpikeInterface's spellings replace the defaults' spec spellings
            for name, alias in (("firing_rate", "firing_rates"), ("refractory_period", "refractory_period_ms")):
                if alias in generate_sorting_kwargs:
                    kwargs.pop(name)
            kwargs.update(generate_sorting_kwargs)
        kwargs.setdefault("seed", sorting_seed)
        sorting = generate_sorting(num_units=num_units, sampling_frequency=sampling_frequency,
                                   durations=list(durations), **kwargs)
    elif not isinstance(sorting, BaseSorting):
        raise ValueError(f"sorting must be a BaseSorting or None, got {type(sorting).__name__}")
    if not np.isclose(sorting.sampling_frequency, sampling_frequency, rtol=0, atol=1e-6):
        raise ValueError(f"sorting samples at {sorting.sampling_frequency} Hz but sampling_frequency is "
                         f"{sampling_frequency}")
    if sorting.get_num_segments() != len(num_samples):
        raise ValueError(f"sorting has {sorting.get_num_segments()} segments, durations {len(num_samples)}")
    num_units = sorting.get_num_units()

    if probe is None:
        num_channels = check_positive_int(num_channels, "num_channels")
        probe = _generated_probe(num_channels, generate_probe_kwargs)
    else:
        if not isinstance(probe, pi.Probe):
            raise ValueError(f"probe must be a probeinterface Probe, got {type(probe).__name__}")
        if probe.device_channel_indices is None:
            probe = probe.copy()
            probe.set_device_channel_indices(np.arange(probe.get_contact_count()))
        num_channels = probe.get_contact_count()
    channel_locations = _channel_locations_of_probe(probe)

    nbefore = int(ms_before * sampling_frequency / 1000.0)
    unit_locations = None
    if templates is None:
        kwargs = dict(_DEFAULT_UNIT_LOCATIONS_KWARGS)
        kwargs.update(generate_unit_locations_kwargs or {})
        kwargs.setdefault("seed", locations_seed)
        unit_locations = generate_unit_locations(num_units, channel_locations, **kwargs)
        kwargs = dict(generate_templates_kwargs or {})
        kwargs.setdefault("seed", templates_seed)
        templates = generate_templates(channel_locations, unit_locations, sampling_frequency, ms_before, ms_after,
                                       dtype=dtype, upsample_factor=upsample_factor, **kwargs)
    else:
        templates = np.asarray(templates, dtype=dtype)
        if templates.ndim not in (3, 4) or templates.shape[0] != num_units or templates.shape[2] != num_channels:
            raise ValueError(f"templates must have shape ({num_units} units, num_samples, {num_channels} channels"
                             f"[, upsample_factor]), got {templates.shape}")
        if not 0 <= nbefore < templates.shape[1]:
            raise ValueError(f"ms_before gives nbefore={nbefore}, outside the {templates.shape[1]} template samples")

    if templates.ndim == 4 and upsample_vector is None:
        num_spikes = sorting.to_spike_vector().size
        upsample_vector = np.random.default_rng(jitter_seed).integers(0, templates.shape[3], size=num_spikes)

    noise = dict(_DEFAULT_NOISE_KWARGS)
    noise.update(noise_kwargs or {})
    noise.setdefault("noise_block_size", int(sampling_frequency))
    noise.setdefault("seed", noise_seed)
    noise_recording = NoiseGeneratorRecording(num_channels=num_channels, sampling_frequency=sampling_frequency,
                                              durations=list(durations), dtype=dtype, **noise)

    recording = InjectTemplatesRecording(sorting, templates, nbefore=nbefore, parent_recording=noise_recording,
                                         upsample_vector=upsample_vector)
    recording.set_probe(probe, in_place=True)
    recording.set_channel_gains(1.0)
    recording.set_channel_offsets(0.0)
    if generated_sorting and unit_locations is not None:
        sorting.set_property("gt_unit_locations", unit_locations)
    return recording, sorting


def generate_snippets(nbefore: int = 20, nafter: int = 44, num_channels: int = 2, wf_folder=None,
                      sampling_frequency: float = 30000.0, durations=(10.325, 3.5), set_probe: bool = True,
                      ndim: int = 2, num_units: int = 5, empty_units=None, seed: int | None = None, **job_kwargs):
    """Snippets cut from a noise recording at the spikes of a generated sorting.

    The snippets are those of ``generate_recording(..., seed=seed)`` at the spikes of
    ``generate_sorting(..., seed=seed)`` (same arguments), so they can be regenerated piece by piece.

    Parameters
    ----------
    nbefore : int, default: 20
        Samples before each spike in a snippet.
    nafter : int, default: 44
        Samples from the spike (included) to the snippet end; snippets have ``nbefore + nafter`` samples.
    num_channels : int, default: 2
        Number of channels.
    wf_folder : str or Path or None, default: None
        Save the snippets in this folder (needs ``snippets.save``); None keeps them in memory.
    sampling_frequency : float, default: 30000.0
        Sampling rate in Hz.
    durations : list of float, default: [10.325, 3.5]
        Duration of each segment in seconds.
    set_probe : bool, default: True
        Attach a linear probe.
    ndim : 2 | 3, default: 2
        Dimension of the probe.
    num_units : int, default: 5
        Number of units of the generated sorting.
    empty_units : list or None, default: None
        Units without spikes.
    seed : int or None, default: None
        Random seed of both the recording and the sorting.
    **job_kwargs
        Accepted for compatibility; the cut-outs are made in one process.

    Returns
    -------
    snippets : NumpySnippets
        One snippet per spike whose window fits in its segment, in time order.
    """
    from .snippets import NumpySnippets

    nbefore = check_positive_int(nbefore, "nbefore", minimum=0)
    nafter = check_positive_int(nafter, "nafter", minimum=1)
    seed = resolve_seed(seed)
    # the noise draws from streams seeded by (seed, segment): independent of the sorting's stream
    recording = generate_recording(num_channels=num_channels, sampling_frequency=sampling_frequency,
                                   durations=durations, set_probe=set_probe, ndim=ndim, seed=seed)
    sorting = generate_sorting(num_units=num_units, sampling_frequency=sampling_frequency, durations=durations,
                               empty_units=empty_units, seed=seed)
    snippets_list, frames_list = [], []
    for segment_index, spikes in enumerate(sorting.to_spike_vector(concatenated=False)):
        frames = spikes["sample_index"]
        num_samples = recording.get_num_samples(segment_index)
        frames = frames[(frames >= nbefore) & (frames + nafter <= num_samples)]
        snippets_list.append(_cut_snippets(recording, segment_index, frames, nbefore, nafter))
        frames_list.append(frames)
    snippets = NumpySnippets(snippets_list, frames_list, sampling_frequency, nbefore=nbefore,
                             channel_ids=recording.channel_ids)
    if set_probe:
        snippets.set_probe(recording.get_probe(), in_place=True)
    if wf_folder is not None:
        snippets = snippets.save(folder=wf_folder)
    return snippets


def _cut_snippets(recording, segment_index: int, frames: np.ndarray, nbefore: int, nafter: int,
                  chunk_size: int = 100_000) -> np.ndarray:
    """(num_frames, nbefore + nafter, num_channels) windows, reading the traces chunk by chunk."""
    out = np.empty((frames.size, nbefore + nafter, recording.get_num_channels()), dtype=recording.get_dtype())
    window = np.arange(-nbefore, nafter)
    i = 0
    while i < frames.size:
        first = int(frames[i]) - nbefore
        # every spike whose window ends within this chunk
        j = int(np.searchsorted(frames, first + nbefore + chunk_size, side="left"))
        j = max(j, i + 1)
        last = int(frames[j - 1]) + nafter
        traces = recording.get_traces(segment_index=segment_index, start_frame=first, end_frame=last)
        out[i:j] = traces[(frames[i:j, np.newaxis] - first) + window[np.newaxis, :]]
        i = j
    return out
