"""SpikeGLX recordings (``.bin`` + ``.meta`` pairs) through ``neo.rawio.SpikeGLXRawIO``.

neo turns each ``<run>_g<gate>_t<trigger>.<device>.<band>`` file pair into one stream per device and
band (``imec0.ap``, ``imec0.lf``, ``nidq``, ...), gates/triggers into segments, and puts each sync
channel in its own stream (``imec0.ap-SYNC``).
"""

from __future__ import annotations

from pathlib import Path

from .neo_recording import NeoBaseRecordingExtractor, existing_folder, neo_streams, open_neo_rawio, select_stream
from .neuropixels import attach_probe


class SpikeGLXRecordingExtractor(NeoBaseRecordingExtractor):
    """One stream of a SpikeGLX folder, read lazily, with the Neuropixels probe attached.

    Parameters
    ----------
    folder_path : str or Path
        Folder holding the ``.bin``/``.meta`` pairs (searched recursively).
    stream_id : str or None, default: None
        The stream, e.g. ``"imec0.ap"``, ``"imec0.lf"``, ``"nidq"``, ``"imec0.ap-SYNC"``; required
        (or ``stream_name``) when the folder has several streams.
    stream_name : str or None, default: None
        Same as ``stream_id`` for SpikeGLX (neo names streams by their ids).
    load_sync_channel : bool, default: False
        Append the stream's sync channel (``SY0``) as the last channel. The probe is then not
        attached, since the sync channel has no contact.
    use_names_as_ids : bool, default: False
        Use channel names (``AP0``) as channel ids instead of neo's ids (``imec0.ap#AP0``).
    all_annotations : bool, default: False
        Accepted so SpikeInterface provenance loads; neo's extra annotations are not kept.

    Notes
    -----
    Traces are int16 with ``gain_to_uV`` from the meta file (imro table gains and ADC range). For
    imec ``ap``/``lf`` streams the probe comes from ``probeinterface.read_spikeglx(meta)``, with the
    ``inter_sample_shift`` channel property and the ``saturation_threshold_uV`` annotation. Segment
    start times are ``firstSample / sampling rate``.
    """

    def __init__(self, folder_path, stream_id: str | None = None, stream_name: str | None = None,
                 load_sync_channel: bool = False, use_names_as_ids: bool = False, all_annotations: bool = False):
        folder = existing_folder(folder_path)
        rawio = open_neo_rawio("SpikeGLXRawIO", dirname=str(folder))
        stream_index = select_stream(rawio, stream_id, stream_name, f"SpikeGLX folder {folder}")
        names, _ = neo_streams(rawio)
        chosen = names[stream_index]
        stream_indices = [stream_index]
        if load_sync_channel and not chosen.endswith("-SYNC"):
            sync = f"{chosen}-SYNC"
            if sync not in names:
                raise ValueError(f"load_sync_channel=True but stream {chosen!r} of {folder} has no sync channel "
                                 f"(streams: {names})")
            stream_indices.append(names.index(sync))
        self._init_from_rawio(rawio, stream_indices, use_names_as_ids=use_names_as_ids)

        band = chosen.rsplit(".", 1)[-1] if chosen.startswith("imec") else None
        meta_file = _meta_file(rawio, folder, chosen)
        if band in ("ap", "lf") and len(stream_indices) == 1 and meta_file is not None:
            import probeinterface

            attach_probe(self, lambda: probeinterface.read_spikeglx(meta_file), str(meta_file), band=band)
        self.annotate(stream_name=chosen)
        self._kwargs = {"folder_path": str(folder), "stream_id": stream_id, "stream_name": stream_name,
                        "load_sync_channel": bool(load_sync_channel), "use_names_as_ids": bool(use_names_as_ids)}

    @staticmethod
    def get_streams(folder_path) -> tuple[list[str], list[str]]:
        """``(stream_names, stream_ids)`` available in a SpikeGLX folder."""
        return neo_streams(open_neo_rawio("SpikeGLXRawIO", dirname=str(existing_folder(folder_path))))


def _meta_file(rawio, folder: Path, stream_name: str) -> Path | None:
    """The ``.meta`` of the stream's first segment (neo's record of it, else by file name)."""
    info = getattr(rawio, "signals_info_dict", {}).get((0, stream_name))
    if info is not None and "meta_file" in info:
        return Path(info["meta_file"])
    candidates = sorted(folder.rglob(f"*.{stream_name}.meta"))
    return candidates[0] if candidates else None


def read_spikeglx(folder_path, stream_id: str | None = None, stream_name: str | None = None,
                  load_sync_channel: bool = False, use_names_as_ids: bool = False) -> SpikeGLXRecordingExtractor:
    """Read one stream of a SpikeGLX folder (see ``SpikeGLXRecordingExtractor``)."""
    return SpikeGLXRecordingExtractor(folder_path, stream_id=stream_id, stream_name=stream_name,
                                      load_sync_channel=load_sync_channel, use_names_as_ids=use_names_as_ids)


__all__ = ["SpikeGLXRecordingExtractor", "read_spikeglx"]
