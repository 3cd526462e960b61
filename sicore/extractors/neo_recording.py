"""Recordings read through a neo RawIO: one signal stream, lazy chunk reads, gains converted to µV.

neo is imported only when a reader is built (``import sicore`` stays light), and only the RawIO
classes a subclass names are ever instantiated: provenance never names a neo class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..recording import BaseRecording, BaseRecordingSegment

# Factors from a neo channel's physical unit to µV (other units get no gain_to_uV).
_TO_MICROVOLTS = {"V": 1e6, "mV": 1e3, "uV": 1.0, "µV": 1.0, "μV": 1.0}


def open_neo_rawio(rawio_name: str, **rawio_kwargs):
    """Instantiate ``neo.rawio.<rawio_name>`` and parse its header.

    Parameters
    ----------
    rawio_name : str
        Name of a class of ``neo.rawio`` (fixed by the extractor class, never read from a file).
    **rawio_kwargs
        Arguments of the RawIO (e.g. ``dirname``).
    """
    try:
        import neo.rawio
    except ImportError as err:
        raise ImportError(f"reading this format needs neo (pip install 'neo>=0.14'): {err}") from None
    rawio = getattr(neo.rawio, rawio_name)(**rawio_kwargs)
    rawio.parse_header()
    return rawio


def neo_streams(rawio) -> tuple[list[str], list[str]]:
    """``(stream_names, stream_ids)`` of a parsed RawIO."""
    streams = rawio.header["signal_streams"]
    return [str(s) for s in streams["name"]], [str(s) for s in streams["id"]]


def select_stream(rawio, stream_id: str | None, stream_name: str | None, source: str) -> int:
    """Index of the stream chosen by ``stream_id`` or ``stream_name`` (either may be None if there is one stream).

    Errors list the available streams so the user can pick one.
    """
    names, ids = neo_streams(rawio)
    available = f"stream_names {names}, stream_ids {ids}"
    if not ids:
        raise ValueError(f"{source}: no signal stream found")
    if stream_id is not None and stream_name is not None:
        index = _index_or_error(ids, str(stream_id), "stream_id", source, available)
        if names[index] != str(stream_name):
            raise ValueError(
                f"{source}: stream_id {stream_id!r} is stream {names[index]!r}, not stream_name {stream_name!r}"
            )
        return index
    if stream_id is not None:
        return _index_or_error(ids, str(stream_id), "stream_id", source, available)
    if stream_name is not None:
        return _index_or_error(names, str(stream_name), "stream_name", source, available)
    if len(ids) > 1:
        raise ValueError(f"{source} has several streams; choose one with stream_id or stream_name: {available}")
    return 0


def _index_or_error(values: list[str], value: str, argument: str, source: str, available: str) -> int:
    if value not in values:
        raise ValueError(f"{argument} {value!r} is not a stream of {source}; available: {available}")
    return values.index(value)


def stream_channels(rawio, stream_index: int) -> np.ndarray:
    """The neo ``signal_channels`` rows of one stream, in stream order."""
    stream_id = rawio.header["signal_streams"][stream_index]["id"]
    channels = rawio.header["signal_channels"]
    return channels[channels["stream_id"] == stream_id]


class NeoBaseRecordingExtractor(BaseRecording):
    """Base of recordings read through a neo RawIO (one block, one stream, optionally a companion stream).

    Subclasses parse their RawIO, choose the stream(s) and call ``_init_from_rawio``; their
    ``_kwargs`` are the user's arguments, so ``to_dict`` / pickling rebuild them from the files.

    Channel ids are neo's channel ids (or names with ``use_names_as_ids``); properties are
    ``channel_name``, ``physical_unit``, ``gain_to_physical_unit``, ``offset_to_physical_unit`` and,
    when the unit is a voltage, ``gain_to_uV`` / ``offset_to_uV``. Segments are neo's segments of
    the block, with neo's start times.
    """

    _path_kwargs = ("folder_path",)

    def _init_from_rawio(self, rawio, stream_indices: list[int], block_index: int = 0,
                         use_names_as_ids: bool = False) -> None:
        channels = np.concatenate([stream_channels(rawio, i) for i in stream_indices])
        rates = np.unique(channels["sampling_rate"])
        dtypes = np.unique(channels["dtype"])
        if rates.size != 1 or dtypes.size != 1:
            raise ValueError(f"streams {stream_indices} mix sampling rates {rates} or dtypes {dtypes}")
        names = channels["name"].astype(str)
        channel_ids = names if use_names_as_ids else channels["id"].astype(str)
        if np.unique(channel_ids).size != channel_ids.size:
            kind = "names" if use_names_as_ids else "ids"
            raise ValueError(f"the channel {kind} of this stream are not unique: {channel_ids.tolist()}"
                             + ("; use use_names_as_ids=False" if use_names_as_ids else ""))
        sampling_frequency = float(rates[0])
        BaseRecording.__init__(self, sampling_frequency, channel_ids, np.dtype(dtypes[0]))
        self._set_channel_units(channels)
        self.set_property("channel_name", names)

        parts, offset = [], 0
        for stream_index in stream_indices:
            count = int(stream_channels(rawio, stream_index).size)
            parts.append((stream_index, offset, count))
            offset += count
        num_segments = int(rawio.header["nb_segment"][block_index])
        for segment_index in range(num_segments):
            t_start = self._signal_t_start(rawio, block_index, segment_index, stream_indices[0])
            num_samples = int(rawio.get_signal_size(block_index, segment_index, stream_indices[0]))
            self.add_recording_segment(NeoRecordingSegment(
                rawio, block_index, segment_index, parts, sampling_frequency, t_start, num_samples, self._dtype
            ))

    def _signal_t_start(self, rawio, block_index: int, segment_index: int, stream_index: int) -> float:
        """Time (s) of the stream's first sample in a segment; subclasses may correct neo here."""
        return float(rawio.get_signal_t_start(block_index, segment_index, stream_index))

    def _set_channel_units(self, channels: np.ndarray) -> None:
        units = channels["units"].astype(str)
        gains = channels["gain"].astype(np.float64)
        offsets = channels["offset"].astype(np.float64)
        self.set_property("physical_unit", units)
        self.set_property("gain_to_physical_unit", gains)
        self.set_property("offset_to_physical_unit", offsets)
        if all(u in _TO_MICROVOLTS for u in units):
            factors = np.array([_TO_MICROVOLTS[u] for u in units])
            self.set_channel_gains(gains * factors)
            self.set_channel_offsets(offsets * factors)


class NeoRecordingSegment(BaseRecordingSegment):
    """One neo segment; reads chunks with ``get_analogsignal_chunk`` (memory-mapped by neo, nothing loaded).

    ``parts`` lists ``(stream_index, first_channel, num_channels)`` of the streams laid side by side
    (usually one; two when a sync channel lives in its own neo stream).
    """

    def __init__(self, rawio, block_index: int, segment_index: int, parts: list, sampling_frequency: float,
                 t_start: float, num_samples: int, dtype: np.dtype):
        BaseRecordingSegment.__init__(self, sampling_frequency, t_start=t_start)
        self._rawio = rawio
        self._block_index = block_index
        self._segment_index = segment_index
        self._parts = parts
        self._num_samples = num_samples
        self._num_channels = sum(count for _, _, count in parts)
        self._dtype = dtype

    def get_num_samples(self) -> int:
        return self._num_samples

    def _chunk(self, stream_index: int, start_frame: int, end_frame: int, channel_indexes) -> np.ndarray:
        return self._rawio.get_analogsignal_chunk(
            block_index=self._block_index, seg_index=self._segment_index, i_start=start_frame, i_stop=end_frame,
            stream_index=stream_index, channel_indexes=channel_indexes,
        )

    def get_traces(self, start_frame, end_frame, channel_indices):
        wanted = np.arange(self._num_channels)[channel_indices]
        if end_frame <= start_frame or wanted.size == 0:
            return np.zeros((max(end_frame - start_frame, 0), wanted.size), dtype=self._dtype)
        if len(self._parts) == 1:
            return self._chunk(self._parts[0][0], start_frame, end_frame, channel_indices)
        traces = np.empty((end_frame - start_frame, wanted.size), dtype=self._dtype)
        for stream_index, first, count in self._parts:
            in_part = (wanted >= first) & (wanted < first + count)
            if np.any(in_part):
                traces[:, in_part] = self._chunk(stream_index, start_frame, end_frame, wanted[in_part] - first)
        return traces


def existing_folder(folder_path, argument: str = "folder_path") -> Path:
    """The absolute folder, or a FileNotFoundError naming the argument."""
    folder = Path(folder_path).absolute()
    if not folder.is_dir():
        raise FileNotFoundError(f"{argument}: {folder} is not an existing folder")
    return folder


__all__ = ["NeoBaseRecordingExtractor", "NeoRecordingSegment", "open_neo_rawio", "neo_streams", "select_stream",
           "stream_channels", "existing_folder"]
