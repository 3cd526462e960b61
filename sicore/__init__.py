"""sicore: the core of SpikeInterface (recordings, sortings, analyzer) as a library and a Snakemake workflow.

Every public name of the spec is importable from here: ``import sicore as si``.
"""

from .version import __version__
from .base import BaseExtractor
from .recording_snippets import BaseRecordingSnippets
from .recording import BaseRecording, BaseRecordingSegment, ChannelSliceRecording, FrameSliceRecording
from .sorting import BaseSorting, BaseSortingSegment, UnitsSelectionSorting, FrameSliceSorting, SPIKE_VECTOR_DTYPE
from .numpy_objects import NumpyRecording, NumpySorting, SharedMemorySorting
from .event import BaseEvent, BaseEventSegment, NumpyEvent
from .snippets import BaseSnippets, BaseSnippetsSegment, ChannelSliceSnippets, FrameSliceSnippets, NumpySnippets
from .io.binary import BinaryRecordingExtractor, read_binary
from .job import (
    ChunkRecordingExecutor,
    TimeSeriesChunkExecutor,
    divide_recording_into_chunks,
    divide_segment_into_chunks,
    ensure_chunk_size,
    ensure_n_jobs,
    fix_job_kwargs,
    get_global_job_kwargs,
    job_keys,
    reset_global_job_kwargs,
    set_global_job_kwargs,
    split_job_kwargs,
)
from .segments import (
    AppendSegmentRecording,
    AppendSegmentSorting,
    ConcatenateSegmentRecording,
    ConcatenateSegmentSorting,
    SelectSegmentRecording,
    SelectSegmentSorting,
    append_recordings,
    append_sortings,
    concatenate_recordings,
    concatenate_sortings,
    select_segment_recording,
    select_segment_sorting,
    split_recording,
    split_sorting,
)
from .aggregate import ChannelsAggregationRecording, UnitsAggregationSorting, aggregate_channels, aggregate_units
from .generate import (
    InjectTemplatesRecording,
    NoiseGeneratorRecording,
    clean_refractory_period,
    generate_channel_locations,
    generate_ground_truth_recording,
    generate_recording,
    generate_recording_by_size,
    generate_single_fake_waveform,
    generate_snippets,
    generate_sorting,
    generate_templates,
    generate_unit_locations,
    inject_some_duplicate_units,
    inject_some_split_units,
    inject_templates,
    noise_generator_recording,
    synthesize_poisson_spike_vector,
    synthesize_random_firings,
    synthetize_spike_train_bad_isi,
)
from .recording_tools import (
    get_channel_distances,
    get_chunk_with_margin,
    get_closest_channels,
    get_noise_levels,
    get_random_data_chunks,
    get_random_recording_slices,
    get_random_sample_slices,
    order_channels_by_depth,
)
from .datasets import download_dataset, get_global_dataset_folder, set_global_dataset_folder
from .io import (
    BinaryFolderRecording,
    CorruptFolderError,
    NpzFolderSorting,
    NpzSortingExtractor,
    NumpyFolderSorting,
    ZarrRecordingExtractor,
    load,
    load_extractor,
    read_binary_folder,
    read_npz_sorting,
    read_numpy_sorting_folder,
    read_zarr,
)
from .analyzer import (
    AnalyzerExtension,
    ComputeNoiseLevels,
    ComputeRandomSpikes,
    ComputeTemplates,
    ComputeWaveforms,
    SortingAnalyzer,
    compute_noise_levels,
    compute_random_spikes,
    compute_templates,
    compute_waveforms,
    create_sorting_analyzer,
    get_available_analyzer_extensions,
    load_sorting_analyzer,
    register_result_extension,
)
from .templates import Templates
from .sparsity import ChannelSparsity, compute_sparsity, estimate_sparsity
from .sorting_tools import random_spikes_selection
from .template_tools import (
    estimate_main_channel_from_recording,
    get_template_amplitudes,
    get_template_extremum_amplitude,
    get_template_extremum_channel,
    get_template_extremum_channel_peak_shift,
)
from .legacy import MockWaveformExtractor, extract_waveforms, load_waveforms
from .extractors import (
    KiloSortSortingExtractor,
    MEArecRecordingExtractor,
    MEArecSortingExtractor,
    OpenEphysBinaryRecordingExtractor,
    OpenEphysLegacyRecordingExtractor,
    PhySortingExtractor,
    SpikeGLXRecordingExtractor,
    read_kilosort,
    read_mearec,
    read_openephys,
    read_phy,
    read_spikeglx,
)
