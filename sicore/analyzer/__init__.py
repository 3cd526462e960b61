"""The SortingAnalyzer: a sorting, its recording, a sparsity and computed extensions.

Modules: ``analyzer`` (SortingAnalyzer, create/load), ``storage`` (memory / binary_folder),
``zarr_storage`` (zarr), ``extension`` (AnalyzerExtension + registry), ``core_extensions``
(random_spikes, waveforms, templates, noise_levels), ``waveform_tools`` (the chunked cut-out pass),
``curation`` (select / remove / merge units).
"""

from .extension import (
    AnalyzerExtension,
    get_available_analyzer_extensions,
    get_extension_class,
    register_result_extension,
)
from .core_extensions import (
    ComputeNoiseLevels,
    ComputeRandomSpikes,
    ComputeTemplates,
    ComputeWaveforms,
    compute_noise_levels,
    compute_random_spikes,
    compute_templates,
    compute_waveforms,
)
from .analyzer import SortingAnalyzer, create_sorting_analyzer, load_sorting_analyzer

__all__ = [
    "AnalyzerExtension",
    "ComputeNoiseLevels",
    "ComputeRandomSpikes",
    "ComputeTemplates",
    "ComputeWaveforms",
    "SortingAnalyzer",
    "compute_noise_levels",
    "compute_random_spikes",
    "compute_templates",
    "compute_waveforms",
    "create_sorting_analyzer",
    "get_available_analyzer_extensions",
    "get_extension_class",
    "load_sorting_analyzer",
    "register_result_extension",
]
