"""Reading and writing sicore / SpikeInterface objects on disk (binary, zarr, npz, numpy folders)."""

from .binary import BinaryRecordingExtractor, read_binary
from .binary_folder import BinaryFolderRecording, read_binary_folder, write_binary_folder
from .zarr_recording import ZarrRecordingExtractor, get_default_zarr_compressor, read_zarr, write_zarr_recording
from .npz_sorting import NpzFolderSorting, NpzSortingExtractor, read_npz_sorting, write_npz_sorting
from .numpy_folder import NumpyFolderSorting, read_numpy_sorting_folder
from .snippets_folder import NpyFolderSnippets, NpzFolderSnippets, NpzSnippetsExtractor
from .event_folder import NpzEventExtractor, NpzFolderEvent
from .save import save_event, save_recording, save_snippets, save_sorting
from .loading import load, load_extractor
from .safe_files import CorruptFolderError

__all__ = [
    "BinaryRecordingExtractor", "read_binary", "BinaryFolderRecording", "read_binary_folder", "write_binary_folder",
    "ZarrRecordingExtractor", "read_zarr", "write_zarr_recording", "get_default_zarr_compressor",
    "NpzSortingExtractor", "NpzFolderSorting", "read_npz_sorting", "write_npz_sorting",
    "NumpyFolderSorting", "read_numpy_sorting_folder",
    "NpzSnippetsExtractor", "NpzFolderSnippets", "NpyFolderSnippets", "NpzEventExtractor", "NpzFolderEvent",
    "save_recording", "save_sorting", "save_snippets", "save_event", "load_extractor", "load", "CorruptFolderError",
]
