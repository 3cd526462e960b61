"""BaseSnippets (waveform cut-outs around detected peaks), its lazy channel/frame views and NumpySnippets."""

from __future__ import annotations

import numpy as np

from .base import resolve_id_selection
from .recording_snippets import BaseRecordingSnippets, _as_slice_if_contiguous


class BaseSnippetsSegment:
    """One segment of snippets. Subclasses implement ``get_num_snippets``, ``get_frames`` and ``get_snippets``.

    ``indices`` given to segments are already checked: None (all snippets) or an int64 array.
    ``channel_indices`` are a slice or an int array.
    """

    def get_num_snippets(self) -> int:
        raise NotImplementedError

    def get_frames(self, indices: np.ndarray | None) -> np.ndarray:
        """Peak frames (int64) of the snippets ``indices`` (all when None)."""
        raise NotImplementedError

    def get_snippets(self, indices: np.ndarray | None, channel_indices) -> np.ndarray:
        """Cut-outs ``(num_indices, snippet_len, num selected channels)``."""
        raise NotImplementedError

    def frames_to_indices(self, start_frame: int | None, end_frame: int | None) -> np.ndarray:
        """Indices of the snippets whose frame is in ``[start_frame, end_frame)`` (None: unbounded)."""
        frames = self.get_frames(None)
        keep = np.ones(frames.size, dtype=bool)
        if start_frame is not None:
            keep &= frames >= start_frame
        if end_frame is not None:
            keep &= frames < end_frame
        return np.flatnonzero(keep)


class BaseSnippets(BaseRecordingSnippets):
    """Unsorted waveform cut-outs around peak frames, over one or more segments.

    Parameters
    ----------
    sampling_frequency : float
        Sampling rate in Hz.
    nbefore : int or None
        Samples before the peak in each snippet; None when the snippets are not aligned on a peak.
    snippet_len : int
        Samples per snippet.
    channel_ids : array-like
        Unique channel ids.
    dtype : numpy dtype
        Dtype of the raw snippets.
    """

    def __init__(self, sampling_frequency: float, nbefore: int | None, snippet_len: int, channel_ids, dtype):
        BaseRecordingSnippets.__init__(self, sampling_frequency, channel_ids, dtype)
        snippet_len = _as_int(snippet_len, "snippet_len")
        if snippet_len < 1:
            raise ValueError(f"snippet_len must be >= 1, got {snippet_len}")
        if nbefore is not None:
            nbefore = _as_int(nbefore, "nbefore")
            if not 0 <= nbefore < snippet_len:
                raise ValueError(f"nbefore must be in [0, snippet_len={snippet_len}), got {nbefore}")
        self._nbefore = nbefore
        self._snippet_len = snippet_len
        self._snippets_segments: list[BaseSnippetsSegment] = []

    def add_snippets_segment(self, snippets_segment: BaseSnippetsSegment) -> None:
        self._snippets_segments.append(snippets_segment)

    # ------------------------------------------------------------- shape
    @property
    def nbefore(self) -> int | None:
        """Samples before the peak (None when not aligned)."""
        return self._nbefore

    @property
    def nafter(self) -> int | None:
        """Samples from the peak (included) to the end: ``snippet_len - nbefore`` (None when not aligned)."""
        return None if self._nbefore is None else self._snippet_len - self._nbefore

    @property
    def snippet_len(self) -> int:
        return self._snippet_len

    def is_aligned(self) -> bool:
        """True when the snippets are aligned on their peak (``nbefore`` is known)."""
        return self._nbefore is not None

    # ---------------------------------------------------------- segments
    def get_num_segments(self) -> int:
        return len(self._snippets_segments)


    def get_num_snippets(self, segment_index: int | None = None) -> int:
        """Number of snippets of a segment (``segment_index`` required when there are several)."""
        segment_index = self._check_segment_index(segment_index)
        return int(self._snippets_segments[segment_index].get_num_snippets())

    def get_total_snippets(self) -> int:
        """Number of snippets summed over segments."""
        return int(sum(segment.get_num_snippets() for segment in self._snippets_segments))

    def get_memory_size(self, segment_index: int | None = None) -> int:
        """Bytes of the raw snippets of one segment (all segments when None)."""
        if segment_index is None:
            num = self.get_total_snippets()
        else:
            num = self.get_num_snippets(segment_index)
        return int(num * self._snippet_len * self.get_num_channels() * self._dtype.itemsize)

    # -------------------------------------------------------------- data
    def _check_indices(self, indices, segment_index: int) -> np.ndarray | None:
        """None, or the int64 snippet indices asked (boolean masks and negative indices allowed)."""
        if indices is None:
            return None
        num_snippets = self._snippets_segments[segment_index].get_num_snippets()
        if isinstance(indices, slice):
            return np.arange(num_snippets, dtype=np.int64)[indices]
        indices = np.atleast_1d(np.asarray(indices))
        if indices.ndim != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {indices.shape}")
        if indices.dtype.kind == "b":
            if indices.size != num_snippets:
                raise ValueError(
                    f"indices: a boolean mask needs one value per snippet ({num_snippets}), got {indices.size}"
                )
            return np.flatnonzero(indices)
        if indices.size == 0:
            return np.zeros(0, dtype=np.int64)
        if indices.dtype.kind not in "iu":
            raise ValueError(f"indices must be integer snippet indices or a boolean mask, got dtype {indices.dtype}")
        indices = indices.astype(np.int64)
        if indices.min() < -num_snippets or indices.max() >= num_snippets:
            raise IndexError(
                f"indices out of range: segment {segment_index} has {num_snippets} snippets, "
                f"got indices in [{indices.min()}, {indices.max()}]"
            )
        return np.where(indices < 0, indices + num_snippets, indices)

    def get_frames(self, indices=None, segment_index: int | None = None) -> np.ndarray:
        """Peak frames (sample indices) of snippets.

        Parameters
        ----------
        indices : array-like or None, default: None
            Snippet indices (or a boolean mask) within the segment; None means all.
        segment_index : int or None, default: None
            Segment to read; required when there are several.

        Returns
        -------
        frames : np.ndarray
            int64 frames, one per snippet asked.
        """
        segment_index = self._check_segment_index(segment_index)
        indices = self._check_indices(indices, segment_index)
        return self._snippets_segments[segment_index].get_frames(indices)

    def get_snippets(
        self,
        indices=None,
        segment_index: int | None = None,
        channel_ids=None,
        return_scaled: bool | None = None,
        return_in_uV: bool | None = None,
    ) -> np.ndarray:
        """Snippet cut-outs, shape ``(num_snippets, snippet_len, num_channels)``.

        Parameters
        ----------
        indices : array-like or None, default: None
            Snippet indices (or a boolean mask) within the segment; None means all.
        segment_index : int or None, default: None
            Segment to read; required when there are several.
        channel_ids : array-like or None, default: None
            Channels to read, in the order given; None means all.
        return_scaled : bool, default: False
            Return float32 snippets in µV: ``snippets * gain_to_uV + offset_to_uV``.
        return_in_uV : bool or None, default: None
            SpikeInterface's spelling of ``return_scaled``.
        """
        return_scaled = _resolve_return_scaled(return_scaled, return_in_uV)
        segment_index = self._check_segment_index(segment_index)
        indices = self._check_indices(indices, segment_index)
        return self._read_snippets(segment_index, indices, channel_ids, return_scaled)

    def _read_snippets(self, segment_index: int, indices, channel_ids, return_scaled: bool) -> np.ndarray:
        if channel_ids is None:
            channel_indices = slice(None)
        else:
            channel_indices = _as_slice_if_contiguous(self._main_ids_to_indices(channel_ids, "channel_ids"))
        if return_scaled and not self.has_scaleable_traces():
            self._scale_traces(None, channel_indices)  # raises the clear error before any read
        snippets = self._snippets_segments[segment_index].get_snippets(indices, channel_indices)
        if return_scaled:
            snippets = self._scale_traces(snippets, channel_indices)
        return snippets

    def get_snippets_from_frames(
        self,
        segment_index: int | None = None,
        start_frame: int | None = None,
        end_frame: int | None = None,
        channel_ids=None,
        return_scaled: bool | None = None,
        return_in_uV: bool | None = None,
    ) -> np.ndarray:
        """Snippets whose peak frame lies in ``[start_frame, end_frame)``.

        Parameters
        ----------
        segment_index : int or None, default: None
            Segment to read; required when there are several.
        start_frame : int or None, default: None
            First frame kept (None: unbounded).
        end_frame : int or None, default: None
            End frame, excluded (None: unbounded).
        channel_ids : array-like or None, default: None
            Channels to read; None means all.
        return_scaled : bool, default: False
            Return float32 snippets in µV.
        return_in_uV : bool or None, default: None
            SpikeInterface's spelling of ``return_scaled``.
        """
        return_scaled = _resolve_return_scaled(return_scaled, return_in_uV)
        segment_index = self._check_segment_index(segment_index)
        start_frame, end_frame = _check_frame_range(start_frame, end_frame)
        indices = self._snippets_segments[segment_index].frames_to_indices(start_frame, end_frame)
        return self._read_snippets(segment_index, indices, channel_ids, return_scaled)

    # ------------------------------------------------------------- views
    def channel_slice(self, channel_ids, renamed_channel_ids=None) -> "ChannelSliceSnippets":
        """A lazy view on ``channel_ids`` (in that order), optionally renamed; properties (probe) follow."""
        return ChannelSliceSnippets(self, channel_ids=channel_ids, renamed_channel_ids=renamed_channel_ids)

    def rename_channels(self, new_channel_ids) -> "ChannelSliceSnippets":
        """A lazy view with every channel renamed to ``new_channel_ids``."""
        return ChannelSliceSnippets(self, channel_ids=self.channel_ids, renamed_channel_ids=new_channel_ids)

    def frame_slice(self, start_frame: int | None, end_frame: int | None = None) -> "FrameSliceSnippets":
        """A lazy view on the snippets whose peak frame is in ``[start_frame, end_frame)``, frames re-based.

        On multi-segment objects the same range is taken in each segment. None means unbounded.
        """
        return FrameSliceSnippets(self, start_frame=start_frame, end_frame=end_frame)

    # -------------------------------------------------------------- repr
    def save(self, **kwargs):
        """Save the snippets, frames and metadata (npz by default).

        Keyword arguments are those of ``sicore.io.save_snippets`` (``folder``, ``format``, ``overwrite``, ...,
        and job kwargs for recordings). Returns the saved object, reloaded from disk.
        """
        from .io.save import save_snippets

        return save_snippets(self, **kwargs)

    def __repr__(self) -> str:
        fs_khz = self.sampling_frequency / 1000
        peak = "not aligned" if self._nbefore is None else f"{self._nbefore} before peak"
        return (
            f"{type(self).__name__}: {self.get_num_channels()} channels - {fs_khz:0.1f}kHz - "
            f"{self.get_num_segments()} segments - {self.get_total_snippets():,} snippets - "
            f"{self._snippet_len} samples per snippet ({peak}) - {self._dtype} dtype"
        )


class ChannelSliceSnippets(BaseSnippets):
    """Lazy view of some channels of snippets (optionally renamed); copies no data.

    Parameters
    ----------
    parent_snippets : BaseSnippets
        The snippets viewed.
    channel_ids : array-like or None, default: None
        Parent channel ids to keep, in the order given (None: all).
    renamed_channel_ids : array-like or None, default: None
        New ids for the kept channels.
    """

    def __init__(self, parent_snippets: BaseSnippets, channel_ids=None, renamed_channel_ids=None):
        channel_ids, parent_indices, new_ids = resolve_id_selection(
            parent_snippets, channel_ids, renamed_channel_ids, "channel"
        )
        if parent_indices.size == 0:
            raise ValueError("channel_ids: a channel slice needs at least one channel")
        BaseSnippets.__init__(self, parent_snippets.sampling_frequency, parent_snippets.nbefore,
                              parent_snippets.snippet_len, new_ids, parent_snippets.get_dtype())
        self._parent = parent_snippets
        for parent_segment in parent_snippets._snippets_segments:
            self.add_snippets_segment(ChannelSliceSnippetsSegment(parent_segment, parent_indices))
        # copies the probe too: it lives in the contact_vector / location properties
        parent_snippets.copy_metadata(self, ids=channel_ids)
        self._kwargs = {
            "parent_snippets": parent_snippets,
            "channel_ids": channel_ids.tolist(),
            "renamed_channel_ids": None if renamed_channel_ids is None else new_ids.tolist(),
        }


class ChannelSliceSnippetsSegment(BaseSnippetsSegment):
    def __init__(self, parent_segment: BaseSnippetsSegment, parent_channel_indices: np.ndarray):
        self._parent_segment = parent_segment
        self._parent_channel_indices = parent_channel_indices
        self._all_parent_channels = _as_slice_if_contiguous(parent_channel_indices)

    def get_num_snippets(self) -> int:
        return self._parent_segment.get_num_snippets()

    def get_frames(self, indices):
        return self._parent_segment.get_frames(indices)

    def frames_to_indices(self, start_frame, end_frame):
        return self._parent_segment.frames_to_indices(start_frame, end_frame)

    def get_snippets(self, indices, channel_indices):
        if isinstance(channel_indices, slice) and channel_indices == slice(None):
            parent_indices = self._all_parent_channels
        else:
            parent_indices = _as_slice_if_contiguous(self._parent_channel_indices[channel_indices])
        return self._parent_segment.get_snippets(indices, parent_indices)


class FrameSliceSnippets(BaseSnippets):
    """Lazy view of the snippets whose peak frame lies in ``[start_frame, end_frame)``, frames re-based.

    Frames of the view are ``parent frame - start_frame``. Works on every segment.

    Parameters
    ----------
    parent_snippets : BaseSnippets
        The snippets viewed.
    start_frame : int or None, default: None
        First frame kept (None: 0).
    end_frame : int or None, default: None
        End frame, excluded (None: unbounded).
    """

    def __init__(self, parent_snippets: BaseSnippets, start_frame: int | None = None, end_frame: int | None = None):
        start, end = _check_frame_range(start_frame, end_frame)
        start = 0 if start is None else start
        BaseSnippets.__init__(self, parent_snippets.sampling_frequency, parent_snippets.nbefore,
                              parent_snippets.snippet_len, parent_snippets.channel_ids, parent_snippets.get_dtype())
        self._parent = parent_snippets
        for parent_segment in parent_snippets._snippets_segments:
            self.add_snippets_segment(FrameSliceSnippetsSegment(parent_segment, start, end))
        parent_snippets.copy_metadata(self)
        self._kwargs = {"parent_snippets": parent_snippets, "start_frame": start, "end_frame": end}


class FrameSliceSnippetsSegment(BaseSnippetsSegment):
    def __init__(self, parent_segment: BaseSnippetsSegment, start_frame: int, end_frame: int | None):
        self._parent_segment = parent_segment
        self._start_frame = start_frame
        # frames are small (one int per snippet): resolving the kept snippets once keeps reads simple
        self._parent_indices = parent_segment.frames_to_indices(start_frame, end_frame)

    def get_num_snippets(self) -> int:
        return int(self._parent_indices.size)

    def _parent_indices_of(self, indices):
        return self._parent_indices if indices is None else self._parent_indices[indices]

    def get_frames(self, indices):
        return self._parent_segment.get_frames(self._parent_indices_of(indices)) - self._start_frame

    def get_snippets(self, indices, channel_indices):
        return self._parent_segment.get_snippets(self._parent_indices_of(indices), channel_indices)


class NumpySnippets(BaseSnippets):
    """Snippets held in memory as numpy arrays (one per segment).

    Parameters
    ----------
    snippets_list : np.ndarray or list of np.ndarray
        Per segment the cut-outs ``(num_snippets, snippet_len, num_channels)``; a single array means one
        segment. Every segment has the same ``snippet_len``, channels and dtype.
    spikesframes_list : np.ndarray or list of np.ndarray
        Per segment the peak frames (sample indices), one per snippet.
    sampling_frequency : float
        Sampling rate in Hz.
    nbefore : int or None, default: None
        Samples before the peak; None when the snippets are not aligned on a peak.
    channel_ids : array-like or None, default: None
        Channel ids (default ``0 .. num_channels - 1``).
    """

    _json_serializable = False

    def __init__(self, snippets_list, spikesframes_list, sampling_frequency: float, nbefore: int | None = None,
                 channel_ids=None):
        if isinstance(snippets_list, np.ndarray):
            snippets_list = [snippets_list]
        if isinstance(spikesframes_list, np.ndarray):
            spikesframes_list = [spikesframes_list]
        if not isinstance(snippets_list, (list, tuple)) or len(snippets_list) == 0:
            raise ValueError(
                "snippets_list must be a non-empty list of 3-d arrays (num_snippets, snippet_len, num_channels)"
            )
        if not isinstance(spikesframes_list, (list, tuple)):
            raise ValueError("spikesframes_list must be a list of 1-d arrays of peak frames, one per segment")
        if len(spikesframes_list) != len(snippets_list):
            raise ValueError(
                f"spikesframes_list has {len(spikesframes_list)} segments, snippets_list has {len(snippets_list)}"
            )
        snippets_list = [np.asarray(s) for s in snippets_list]
        for i, snippets in enumerate(snippets_list):
            if snippets.ndim != 3:
                raise ValueError(
                    f"snippets_list[{i}] must be 3-d (num_snippets, snippet_len, num_channels), "
                    f"got shape {snippets.shape}"
                )
        snippet_len, num_channels = snippets_list[0].shape[1:]
        dtype = snippets_list[0].dtype
        for i, snippets in enumerate(snippets_list):
            if snippets.shape[1:] != (snippet_len, num_channels):
                raise ValueError(
                    f"snippets_list[{i}] has (snippet_len, num_channels) {snippets.shape[1:]}, "
                    f"snippets_list[0] has {(snippet_len, num_channels)}"
                )
            if snippets.dtype != dtype:
                raise ValueError(f"snippets_list[{i}] has dtype {snippets.dtype}, snippets_list[0] has {dtype}")
        frames_list = []
        for i, (frames, snippets) in enumerate(zip(spikesframes_list, snippets_list)):
            frames = np.asarray(frames)
            if frames.ndim != 1 or frames.size != snippets.shape[0]:
                raise ValueError(
                    f"spikesframes_list[{i}] must be 1-d with one frame per snippet ({snippets.shape[0]}), "
                    f"got shape {frames.shape}"
                )
            if frames.size and frames.dtype.kind not in "iu":
                if frames.dtype.kind != "f" or not np.all(np.mod(frames, 1) == 0):
                    raise ValueError(
                        f"spikesframes_list[{i}] must hold integer sample indices, got dtype {frames.dtype}"
                    )
            frames_list.append(frames.astype(np.int64, copy=False))
        if channel_ids is None:
            channel_ids = np.arange(num_channels)
        elif len(channel_ids) != num_channels:
            raise ValueError(f"channel_ids has {len(channel_ids)} ids for {num_channels} channels")
        BaseSnippets.__init__(self, sampling_frequency, nbefore, snippet_len, channel_ids, dtype)
        for snippets, frames in zip(snippets_list, frames_list):
            self.add_snippets_segment(NumpySnippetsSegment(snippets, frames))
        self._kwargs = {
            "snippets_list": snippets_list,
            "spikesframes_list": frames_list,
            "sampling_frequency": float(sampling_frequency),
            "nbefore": self._nbefore,
            "channel_ids": self.channel_ids,
        }

    @staticmethod
    def from_snippets(source_snippets: BaseSnippets) -> "NumpySnippets":
        """Load all snippets of any snippets object in memory (keeping its metadata)."""
        segments = range(source_snippets.get_num_segments())
        snippets = NumpySnippets(
            snippets_list=[source_snippets.get_snippets(segment_index=i) for i in segments],
            spikesframes_list=[source_snippets.get_frames(segment_index=i) for i in segments],
            sampling_frequency=source_snippets.sampling_frequency,
            nbefore=source_snippets.nbefore,
            channel_ids=source_snippets.channel_ids,
        )
        source_snippets.copy_metadata(snippets)
        return snippets


class NumpySnippetsSegment(BaseSnippetsSegment):
    def __init__(self, snippets: np.ndarray, frames: np.ndarray):
        self._snippets = snippets
        self._frames = frames

    def get_num_snippets(self) -> int:
        return int(self._frames.size)

    def get_frames(self, indices):
        return self._frames if indices is None else self._frames[indices]

    def get_snippets(self, indices, channel_indices):
        # index snippets then channels: one fancy index per step avoids numpy broadcasting the two together
        snippets = self._snippets if indices is None else self._snippets[indices]
        return snippets[:, :, channel_indices]


def _as_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _check_frame_range(start_frame, end_frame) -> tuple[int | None, int | None]:
    start = None if start_frame is None else _as_int(start_frame, "start_frame")
    end = None if end_frame is None else _as_int(end_frame, "end_frame")
    if start is not None and start < 0:
        raise ValueError(f"start_frame must be >= 0, got {start}")
    if end is not None and end < (0 if start is None else start):
        raise ValueError(f"end_frame {end} is before start_frame {0 if start is None else start}")
    return start, end


def _resolve_return_scaled(return_scaled: bool | None, return_in_uV: bool | None) -> bool:
    if return_in_uV is not None:
        if return_scaled is not None and bool(return_scaled) != bool(return_in_uV):
            raise ValueError("return_scaled and return_in_uV disagree; give one of them")
        return_scaled = return_in_uV
    return bool(return_scaled)
