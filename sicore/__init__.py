"""sicore: the core of SpikeInterface (recordings, sortings, analyzer) as a library and a Snakemake workflow.

Every public name of the spec is importable from here: ``import sicore as si``.

The import is lazy (PEP 562): ``import sicore`` loads no submodule; ``sicore.NAME`` (or
``from sicore import NAME``) imports the module that defines NAME on first use. Every workflow job
starts a Python process, so it pays only for what its command uses (probeinterface, the analyzer, zarr...).
"""

from __future__ import annotations

import importlib
import importlib.util

from .version import __version__

# Public name -> the sicore module that defines it (checked against the modules by tests/test_public_api.py).
_LAZY_NAMES: dict[str, str] = {}


def _add(module: str, names: str) -> None:
    for name in names.split():
        _LAZY_NAMES[name] = module


_add("sicore.base", "BaseExtractor")
_add("sicore.recording_snippets", "BaseRecordingSnippets")
_add("sicore.recording", "BaseRecording BaseRecordingSegment ChannelSliceRecording FrameSliceRecording")
_add("sicore.sorting", "BaseSorting BaseSortingSegment UnitsSelectionSorting FrameSliceSorting SPIKE_VECTOR_DTYPE")
_add("sicore.numpy_objects", "NumpyRecording NumpySorting SharedMemorySorting")
_add("sicore.event", "BaseEvent BaseEventSegment NumpyEvent")
_add("sicore.snippets", "BaseSnippets BaseSnippetsSegment ChannelSliceSnippets FrameSliceSnippets NumpySnippets")
_add("sicore.io.binary", "BinaryRecordingExtractor read_binary")
_add("sicore.job", """
    ChunkRecordingExecutor TimeSeriesChunkExecutor divide_recording_into_chunks divide_segment_into_chunks
    ensure_chunk_size ensure_n_jobs fix_job_kwargs get_global_job_kwargs job_keys reset_global_job_kwargs
    set_global_job_kwargs split_job_kwargs
""")
_add("sicore.segments", """
    AppendSegmentRecording AppendSegmentSorting ConcatenateSegmentRecording ConcatenateSegmentSorting
    SelectSegmentRecording SelectSegmentSorting append_recordings append_sortings concatenate_recordings
    concatenate_sortings select_segment_recording select_segment_sorting split_recording split_sorting
""")
_add("sicore.aggregate", "ChannelsAggregationRecording UnitsAggregationSorting aggregate_channels aggregate_units")
_add("sicore.generate", """
    InjectTemplatesRecording NoiseGeneratorRecording clean_refractory_period generate_channel_locations
    generate_ground_truth_recording generate_recording generate_recording_by_size generate_single_fake_waveform
    generate_snippets generate_sorting generate_templates generate_unit_locations inject_some_duplicate_units
    inject_some_split_units inject_templates noise_generator_recording synthesize_poisson_spike_vector
    synthesize_random_firings synthetize_spike_train_bad_isi
""")
_add("sicore.recording_tools", """
    get_channel_distances get_chunk_with_margin get_closest_channels get_noise_levels get_random_data_chunks
    get_random_recording_slices get_random_sample_slices order_channels_by_depth
""")
_add("sicore.datasets", "download_dataset get_global_dataset_folder set_global_dataset_folder")
_add("sicore.io.binary_folder", "BinaryFolderRecording read_binary_folder")
_add("sicore.io.safe_files", "CorruptFolderError")
_add("sicore.io.npz_sorting", "NpzFolderSorting NpzSortingExtractor read_npz_sorting")
_add("sicore.io.numpy_folder", "NumpyFolderSorting read_numpy_sorting_folder")
_add("sicore.io.zarr_recording", "ZarrRecordingExtractor read_zarr")
_add("sicore.io.loading", "load load_extractor")
_add("sicore.analyzer.extension", "AnalyzerExtension get_available_analyzer_extensions register_result_extension")
_add("sicore.analyzer.core_extensions", """
    ComputeNoiseLevels ComputeRandomSpikes ComputeTemplates ComputeWaveforms compute_noise_levels
    compute_random_spikes compute_templates compute_waveforms
""")
_add("sicore.analyzer.analyzer", "SortingAnalyzer create_sorting_analyzer load_sorting_analyzer")
_add("sicore.templates", "Templates")
_add("sicore.sparsity", "ChannelSparsity compute_sparsity estimate_sparsity")
_add("sicore.sorting_tools", "random_spikes_selection")
_add("sicore.template_tools", """
    estimate_main_channel_from_recording get_template_amplitudes get_template_extremum_amplitude
    get_template_extremum_channel get_template_extremum_channel_peak_shift
""")
_add("sicore.legacy", "MockWaveformExtractor extract_waveforms load_waveforms")
_add("sicore.extractors.phy_kilosort", "KiloSortSortingExtractor PhySortingExtractor read_kilosort read_phy")
_add("sicore.extractors.mearec", "MEArecRecordingExtractor MEArecSortingExtractor read_mearec")
_add("sicore.extractors.openephys",
     "OpenEphysBinaryRecordingExtractor OpenEphysLegacyRecordingExtractor read_openephys")
_add("sicore.extractors.spikeglx", "SpikeGLXRecordingExtractor read_spikeglx")
del _add

__all__ = ["__version__", *_LAZY_NAMES]


def __getattr__(name: str):
    module = _LAZY_NAMES.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # cached: later lookups skip __getattr__
        return value
    # submodules (sicore.io, sicore.analyzer, ...) as attributes, as after an eager import
    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))
