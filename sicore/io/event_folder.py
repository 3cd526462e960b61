"""Events on disk: sicore's ``.npz`` format (SpikeInterface has no event save).

npz file: ``sicore_object="event"``, ``channel_ids``, ``num_segments`` [n] and, per segment ``s`` and
channel index ``j``, ``events_seg{s}_ch{j}``: the channel's structured events (``time`` field in seconds;
the dtype is kept even when a segment has no event). The folder (``event.save()``) holds
``events.npz``, ``sicore_folder.json``, ``annotations.json``, ``properties/*.npy``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..event import BaseEvent, NumpyEventSegment
from ..version import __version__
from .atomic import atomic_folder, check_target_folder
from .folder_metadata import SICORE_INFO_FILE, collect_metadata, load_annotations, load_properties, sicore_info, \
    write_metadata
from .npz_sorting import _member, read_npz
from .safe_files import CorruptFolderError, write_json
from .snippets_folder import sicore_folder_dict

NPZ_EVENTS_FILE = "events.npz"


class NpzEventExtractor(BaseEvent):
    """Events read from a sicore ``.npz`` file, without unpickling.

    Parameters
    ----------
    file_path : str or Path
        The ``.npz`` file.
    """

    _path_kwargs = ("file_path",)

    def __init__(self, file_path):
        file_path = Path(file_path).absolute()
        head = read_npz(file_path, ("channel_ids", "num_segments"))
        channel_ids = head["channel_ids"]
        num_segments = int(head["num_segments"].ravel()[0])
        segments = []
        with np.load(file_path, allow_pickle=False) as npz:
            for s in range(num_segments):
                segment = {}
                for j, channel_id in enumerate(channel_ids.tolist()):
                    events = _member(npz, f"events_seg{s}_ch{j}", file_path)
                    if events.dtype.names is None or "time" not in events.dtype.names or events.ndim != 1:
                        raise CorruptFolderError(f"{file_path}: events_seg{s}_ch{j} is not a 1-d structured array "
                                                 "with a 'time' field")
                    segment[channel_id] = events
                segments.append(segment)
        if not segments:
            raise CorruptFolderError(f"{file_path}: num_segments is {num_segments}; events need a segment")
        BaseEvent.__init__(self, channel_ids, {c: e.dtype for c, e in segments[0].items()})
        for segment in segments:
            for channel_id, events in segment.items():
                if events.dtype != self._structured_dtypes[channel_id]:
                    raise CorruptFolderError(f"{file_path}: channel {channel_id!r} changes dtype between segments")
            self.add_event_segment(NumpyEventSegment(segment))
        self._kwargs = {"file_path": str(file_path)}


def write_npz_events(event, file_path) -> None:
    """Write ``event`` to ``file_path`` in sicore's events ``.npz`` format."""
    channel_ids = np.asarray(event.channel_ids)
    arrays = {
        "sicore_object": np.array("event"),
        "sicore_version": np.array(__version__),
        "channel_ids": channel_ids,
        "num_segments": np.array([event.get_num_segments()], dtype="int64"),
    }
    for s in range(event.get_num_segments()):
        for j, channel_id in enumerate(channel_ids.tolist()):
            events = np.asarray(event.get_events(channel_id=channel_id, segment_index=s))
            if events.dtype.hasobject:
                raise ValueError(f"events of channel {channel_id!r} hold Python objects; sicore never pickles")
            arrays[f"events_seg{s}_ch{j}"] = events
    with open(file_path, "wb") as f:
        np.savez(f, **arrays)


class NpzFolderEvent(NpzEventExtractor):
    """An events folder written by ``event.save()``.

    Parameters
    ----------
    folder_path : str or Path
        The folder holding ``events.npz``.
    """

    _path_kwargs = ("folder_path",)

    def __init__(self, folder_path):
        folder = Path(folder_path).absolute()
        if not folder.is_dir():
            raise FileNotFoundError(f"folder_path {folder} is not a folder")
        NpzEventExtractor.__init__(self, folder / NPZ_EVENTS_FILE)
        load_properties(folder, self)
        load_annotations(folder, self, fallback_file=None)
        self._kwargs = {"folder_path": str(folder)}


def write_npz_event_folder(event, folder, overwrite: bool = False) -> NpzFolderEvent:
    """Save ``event`` as an npz folder and reload it.

    Parameters
    ----------
    event : BaseEvent
        The events to save.
    folder : str or Path
        The folder to create.
    overwrite : bool, default: False
        Replace an existing folder (only once the new one is complete).
    """
    final = check_target_folder(folder, overwrite)
    metadata = collect_metadata(event, final, with_probe=False)
    with atomic_folder(final, overwrite) as tmp:
        write_npz_events(event, tmp / NPZ_EVENTS_FILE)
        write_metadata(tmp, metadata)
        write_json(tmp / SICORE_INFO_FILE, sicore_info("npz_event"))
        write_json(tmp / "sicore_folder.json", sicore_folder_dict("NpzFolderEvent"))
    return NpzFolderEvent(final)


__all__ = ["NpzEventExtractor", "NpzFolderEvent", "write_npz_events", "write_npz_event_folder"]
