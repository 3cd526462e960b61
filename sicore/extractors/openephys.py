"""Open Ephys recordings: the binary format (``structure.oebin``) and the legacy ``.continuous`` format.

Binary folders are read by ``neo.rawio.OpenEphysBinaryRawIO`` (experiments are neo blocks,
recordings are segments, each continuous folder is a stream, ADC channels get their own stream);
legacy folders by ``neo.rawio.OpenEphysRawIO`` (``CH``/``AUX``/``ADC`` streams, ``_2``, ``_3``
file suffixes are segments).
"""

from __future__ import annotations

import os
from pathlib import Path

from .neo_recording import NeoBaseRecordingExtractor, existing_folder, neo_streams, open_neo_rawio, select_stream
from .neuropixels import attach_probe


class OpenEphysBinaryRecordingExtractor(NeoBaseRecordingExtractor):
    """One stream of one experiment of an Open Ephys binary folder.

    Parameters
    ----------
    folder_path : str or Path
        The Open Ephys folder (root, Record Node, experiment or recording folder).
    stream_id : str or None, default: None
        neo's stream id (``"0"``, ``"1"``, ...); required (or ``stream_name``) with several streams.
    stream_name : str or None, default: None
        neo's stream name, e.g. ``"Record Node 101#Neuropix-PXI-100.ProbeA-AP"``.
    block_index : int or None, default: None
        The experiment (neo block); required when the folder holds several experiments.
    use_names_as_ids : bool, default: False
        Use channel names as ids (for Open Ephys binary neo's ids already are the names).
    experiment_name : str or None, default: None
        The experiment by folder name (``"experiment2"``), instead of ``block_index``.
    load_sync_timestamps : bool, default: False
        SpikeInterface's option to take times from the synchronized ``timestamps.npy``; not supported
        (True is an error), accepted so SpikeInterface provenance loads.
    all_annotations : bool, default: False
        Accepted so SpikeInterface provenance loads; neo's extra annotations are not kept.

    Notes
    -----
    Segment start times are the first sample number over the sampling rate. Neuropixels streams
    get their probe from the experiment's ``settings.xml`` through probeinterface when it
    describes one. The start time of an ADC stream is the one of the file it shares with the neural
    channels (neo 0.14 gives it another stream's start time).
    """

    def __init__(self, folder_path, stream_id: str | None = None, stream_name: str | None = None,
                 block_index: int | None = None, use_names_as_ids: bool = False, experiment_name: str | None = None,
                 load_sync_timestamps: bool = False, all_annotations: bool = False):
        if load_sync_timestamps:
            raise NotImplementedError("load_sync_timestamps=True is not supported by sicore: times come from the "
                                      "first sample number of each recording")
        folder = existing_folder(folder_path)
        rawio = open_neo_rawio("OpenEphysBinaryRawIO", dirname=str(folder))
        source = f"Open Ephys folder {folder}"
        block = _checked_block_index(rawio, block_index, source, experiment_name)
        stream_index = select_stream(rawio, stream_id, stream_name, source)
        self._init_from_rawio(rawio, [stream_index], block_index=block, use_names_as_ids=use_names_as_ids)
        chosen = neo_streams(rawio)[0][stream_index]
        settings_file = _settings_file(rawio, chosen, block)
        if settings_file is not None:
            _attach_settings_probe(self, settings_file, chosen)
        self.annotate(stream_name=chosen, experiment_name=_experiment_names(rawio)[block])
        self._kwargs = {"folder_path": str(folder), "stream_id": stream_id, "stream_name": stream_name,
                        "block_index": block_index, "use_names_as_ids": bool(use_names_as_ids),
                        "experiment_name": experiment_name}

    def _signal_t_start(self, rawio, block_index, segment_index, stream_index):
        # An ADC stream shares its file (neo buffer) with a neural stream: use that stream's start.
        buffer_id = str(rawio.header["signal_streams"][stream_index]["buffer_id"])
        try:
            return float(rawio._sig_streams[block_index][segment_index][int(buffer_id)]["t_start"])
        except (AttributeError, KeyError, ValueError, TypeError):
            return super()._signal_t_start(rawio, block_index, segment_index, stream_index)

    @staticmethod
    def get_streams(folder_path) -> tuple[list[str], list[str]]:
        """``(stream_names, stream_ids)`` available in an Open Ephys binary folder."""
        return neo_streams(open_neo_rawio("OpenEphysBinaryRawIO", dirname=str(existing_folder(folder_path))))


class OpenEphysLegacyRecordingExtractor(NeoBaseRecordingExtractor):
    """One stream (``CH``, ``AUX`` or ``ADC``) of a legacy Open Ephys folder of ``.continuous`` files.

    Parameters
    ----------
    folder_path : str or Path
        Folder of ``<processor>_<channel>[_<n>].continuous`` files.
    stream_id : str or None, default: None
        ``"CH"``, ``"AUX"`` or ``"ADC"``; required (or ``stream_name``) with several streams.
    stream_name : str or None, default: None
        ``"Signals CH"``, ``"Signals AUX"``, ...
    use_names_as_ids : bool, default: False
        Use channel names (``CH1``) as ids instead of neo's numbers (``1``).
    all_annotations : bool, default: False
        Accepted so SpikeInterface provenance loads; neo's extra annotations are not kept.

    Notes
    -----
    neo 0.14 orders the channel files of the second and later segments differently from the
    first; sicore puts them back in the first segment's order.
    """

    def __init__(self, folder_path, stream_id: str | None = None, stream_name: str | None = None,
                 use_names_as_ids: bool = False, all_annotations: bool = False):
        folder = existing_folder(folder_path)
        rawio = open_neo_rawio("OpenEphysRawIO", dirname=str(folder))
        _align_legacy_segment_channels(rawio, folder)
        stream_index = select_stream(rawio, stream_id, stream_name, f"Open Ephys legacy folder {folder}")
        self._init_from_rawio(rawio, [stream_index], use_names_as_ids=use_names_as_ids)
        self.annotate(stream_name=neo_streams(rawio)[0][stream_index])
        self._kwargs = {"folder_path": str(folder), "stream_id": stream_id, "stream_name": stream_name,
                        "use_names_as_ids": bool(use_names_as_ids)}

    @staticmethod
    def get_streams(folder_path) -> tuple[list[str], list[str]]:
        """``(stream_names, stream_ids)`` available in a legacy Open Ephys folder."""
        return neo_streams(open_neo_rawio("OpenEphysRawIO", dirname=str(existing_folder(folder_path))))


def _align_legacy_segment_channels(rawio, folder: Path) -> None:
    """Give every segment the channel order of the first one.

    neo 0.14 orders the files of the first segment CH-first but those of later segments
    (``100_CH1_2.continuous``) by name, so with AUX/ADC channels a later segment would return
    another channel's samples. The files are matched by name once the ``_<n>`` suffix is removed.
    """
    info = getattr(rawio, "_info", None)
    memmaps = getattr(rawio, "_sigs_memmap", None)
    gaps = getattr(rawio, "_sig_has_gap", None)
    if not info or memmaps is None or gaps is None or len(info.get("continuous", {})) < 2:
        return
    oe_indices = sorted(info["continuous"])
    reference = [p.stem for p in info["continuous"][oe_indices[0]]]
    for segment_index, oe_index in enumerate(oe_indices[1:], start=1):
        suffix = f"_{oe_index + 1}"
        files = info["continuous"][oe_index]
        stems = [p.stem[: -len(suffix)] if p.stem.endswith(suffix) else p.stem for p in files]
        if sorted(stems) != sorted(reference):
            raise ValueError(f"Open Ephys legacy folder {folder}: segment {segment_index} has the channel files "
                             f"{sorted(stems)}, the first segment {sorted(reference)}")
        order = [stems.index(stem) for stem in reference]
        memmaps[segment_index] = {new: memmaps[segment_index][old] for new, old in enumerate(order)}
        gaps[segment_index] = {new: gaps[segment_index][old] for new, old in enumerate(order)}
        info["continuous"][oe_index] = [files[old] for old in order]


def read_openephys(folder_path, stream_id: str | None = None, stream_name: str | None = None,
                   block_index: int | None = None, use_names_as_ids: bool = False,
                   experiment_name: str | None = None) -> NeoBaseRecordingExtractor:
    """Read one stream of an Open Ephys folder, binary (``structure.oebin``) or legacy (``.continuous``).

    Parameters
    ----------
    folder_path : str or Path
        The Open Ephys folder.
    stream_id, stream_name : str or None, default: None
        The stream (see ``OpenEphysBinaryRecordingExtractor`` / ``OpenEphysLegacyRecordingExtractor``).
    block_index : int or None, default: None
        Experiment of a binary folder with several; legacy folders have one (None or 0).
    use_names_as_ids : bool, default: False
        Use channel names as channel ids.
    experiment_name : str or None, default: None
        Experiment of a binary folder by name (``"experiment2"``), instead of ``block_index``.
    """
    folder = existing_folder(folder_path)
    layout = detect_openephys_format(folder)
    if layout == "binary":
        return OpenEphysBinaryRecordingExtractor(folder, stream_id=stream_id, stream_name=stream_name,
                                                 block_index=block_index, use_names_as_ids=use_names_as_ids,
                                                 experiment_name=experiment_name)
    if block_index not in (None, 0) or experiment_name is not None:
        raise ValueError(f"block_index {block_index!r} / experiment_name {experiment_name!r}: a legacy Open Ephys "
                         f"folder ({folder}) has a single experiment")
    return OpenEphysLegacyRecordingExtractor(folder, stream_id=stream_id, stream_name=stream_name,
                                             use_names_as_ids=use_names_as_ids)


def detect_openephys_format(folder_path) -> str:
    """``"binary"`` when the folder holds a ``structure.oebin``, ``"legacy"`` for ``.continuous`` files."""
    folder = existing_folder(folder_path)
    has_continuous = False
    for _, _, files in os.walk(folder):
        if "structure.oebin" in files:
            return "binary"
        has_continuous = has_continuous or any(f.endswith(".continuous") for f in files)
    if has_continuous:
        return "legacy"
    raise FileNotFoundError(f"folder_path: {folder} holds neither a structure.oebin (binary format) nor "
                            ".continuous files (legacy format)")


def _experiment_names(rawio) -> list[str]:
    structure = getattr(rawio, "folder_structure", None) or {}
    for node in structure.values():
        experiments = node["experiments"]
        return [experiments[k]["name"] for k in sorted(experiments)]
    return [f"experiment{i + 1}" for i in range(rawio.header["nb_block"])]


def _checked_block_index(rawio, block_index, source: str, experiment_name: str | None = None) -> int:
    num_blocks = int(rawio.header["nb_block"])
    if experiment_name is not None:
        names = _experiment_names(rawio)
        if experiment_name not in names:
            raise ValueError(f"experiment_name {experiment_name!r} is not an experiment of {source}: {names}")
        if block_index is not None and block_index != names.index(experiment_name):
            raise ValueError(f"block_index {block_index} and experiment_name {experiment_name!r} disagree ({names})")
        return names.index(experiment_name)
    if block_index is None:
        if num_blocks > 1:
            raise ValueError(f"{source} has {num_blocks} experiments {_experiment_names(rawio)}; choose one with "
                             "block_index or experiment_name")
        return 0
    if isinstance(block_index, bool) or not isinstance(block_index, int) or not 0 <= block_index < num_blocks:
        raise ValueError(f"block_index {block_index!r} is out of range: {source} has {num_blocks} experiments")
    return block_index


def _settings_file(rawio, stream_name: str, block_index: int) -> Path | None:
    """The ``settings*.xml`` of the experiment the stream belongs to (as neo located it)."""
    node = stream_name.split("#")[0] if "#" in stream_name else ""
    try:
        experiments = rawio.folder_structure[node]["experiments"]
        settings = Path(experiments[sorted(experiments)[block_index]]["settings_file"])
    except (AttributeError, KeyError, IndexError, TypeError):
        return None
    return settings if settings.is_file() else None


def _attach_settings_probe(recording, settings_file: Path, stream_name: str) -> None:
    import probeinterface

    oe_stream = stream_name.split("#")[-1]
    if oe_stream.endswith("_ADC") or "SYNC" in oe_stream:
        return
    band = "lf" if oe_stream.endswith("-LFP") else "ap" if oe_stream.endswith("-AP") else None
    if hasattr(probeinterface, "has_neuropixels_probes"):
        if not probeinterface.has_neuropixels_probes(settings_file, stream_name=oe_stream):
            return
        reader = probeinterface.read_openephys_neuropixels
    else:  # probeinterface < 0.4: the reader returns None when there is no Neuropixels probe
        reader = probeinterface.read_openephys

    attach_probe(recording, lambda: reader(settings_file, stream_name=oe_stream, raise_error=False),
                 str(settings_file), band=band)


__all__ = ["OpenEphysBinaryRecordingExtractor", "OpenEphysLegacyRecordingExtractor", "read_openephys",
           "detect_openephys_format"]
