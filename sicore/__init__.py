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
