"""Data sources: a small dict (from a config file or the command line) -> a recording or a sorting.

A source is ``{"type": <name>, <key>: <value>, ...}``. Each type declares its keys (checked value,
default, whether it names a file), so a typo or a bad value is reported with the key's full name
(``sessions.s1.recording.num_channels: expected an integer, got 'abc'``) before anything is read.

Recording types: ``generated``, ``binary``, ``binary_folder``, ``zarr``, ``spikeglx``, ``openephys``,
``mearec``. Sorting types: ``generated``, ``mearec``, ``npz``, ``numpy_folder``, ``phy``, ``kilosort``,
and ``ground_truth`` (the sorting that comes with a ``generated`` or ``mearec`` recording source).
Relative paths are relative to the current working directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = [
    "SourceError",
    "RECORDING_SOURCES",
    "SORTING_SOURCES",
    "check_recording_source",
    "check_sorting_source",
    "load_recording",
    "load_sorting",
    "load_source_argument",
    "source_paths",
    "source_nbytes",
]

_REQUIRED = object()


class SourceError(ValueError):
    """A source dict with a missing, unknown or badly typed key (the message names the key)."""


# ------------------------------------------------------------------------------ value checks
def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value, where):
    if not _is_number(value):
        raise SourceError(f"{where}: expected a number, got {value!r}")
    return value


def _positive(value, where):
    if not _is_number(value) or value <= 0:
        raise SourceError(f"{where}: expected a positive number, got {value!r}")
    return value


def _integer(value, where, minimum: int = 0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SourceError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _count(value, where):
    return _integer(value, where, minimum=1)


def _string(value, where):
    if not isinstance(value, str) or not value:
        raise SourceError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _boolean(value, where):
    if not isinstance(value, bool):
        raise SourceError(f"{where}: expected true or false, got {value!r}")
    return value


def _or_none(check):
    def checked(value, where):
        return None if value is None else check(value, where)
    return checked


def _list_of(check, allow_scalar: bool = False):
    def checked(value, where):
        if allow_scalar and not isinstance(value, list):
            return check(value, where)
        if not isinstance(value, list) or not value:
            raise SourceError(f"{where}: expected a non-empty list, got {value!r}")
        return [check(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return checked


def _id(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SourceError(f"{where}: expected an integer or a string id, got {value!r}")
    return value


def _dtype(value, where):
    import numpy as np

    try:
        return np.dtype(_string(value, where)).str
    except TypeError:
        raise SourceError(f"{where}: {value!r} is not a numpy dtype (e.g. 'int16', 'float32')") from None


# ------------------------------------------------------------------------------ types
@dataclass(frozen=True)
class Key:
    """One key of a source type.

    Parameters
    ----------
    check : callable
        ``check(value, where) -> value``; raises ``SourceError`` naming ``where``.
    default : object, default: required
        Value used when the key is absent.
    path : bool, default: False
        The value is a file or folder read by the source (or a list of them).
    """

    check: Callable[[Any, str], Any]
    default: Any = _REQUIRED
    path: bool = False

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


@dataclass(frozen=True)
class SourceType:
    """A kind of source: its keys and the function that opens it."""

    name: str
    kind: str  # "recording" | "sorting"
    keys: dict[str, Key]
    opener: Callable[[dict], Any]
    description: str = ""
    common_keys: dict[str, Key] = field(default_factory=dict)

    def all_keys(self) -> dict[str, Key]:
        return {**self.keys, **self.common_keys}


_GENERATED_KEYS = {
    "durations": Key(_list_of(_positive), [10.0]),
    "sampling_frequency": Key(_positive, 25000.0),
    "num_channels": Key(_count, 16),
    "num_units": Key(_count, 10),
    "firing_rate": Key(_positive, 15.0),
    "noise_level": Key(_positive, 5.0),
    "dtype": Key(_string, "float32"),
    "seed": Key(_integer, 2205),
}


def _generated(spec: dict):
    from .generate import generate_ground_truth_recording

    return generate_ground_truth_recording(
        durations=spec["durations"], sampling_frequency=spec["sampling_frequency"],
        num_channels=spec["num_channels"], num_units=spec["num_units"], dtype=spec["dtype"], seed=spec["seed"],
        generate_sorting_kwargs={"firing_rate": spec["firing_rate"], "refractory_period": 4.0},
        noise_kwargs={"noise_levels": spec["noise_level"], "strategy": "on_the_fly"},
    )


def _binary(spec: dict):
    from .io.binary import read_binary

    kwargs = {k: v for k, v in spec.items() if k not in ("type", "probe_file")}
    return read_binary(**kwargs)


def _binary_folder(spec: dict):
    from .io.binary_folder import read_binary_folder

    return read_binary_folder(spec["folder_path"])


def _zarr(spec: dict):
    from .io.zarr_recording import read_zarr

    return read_zarr(spec["folder_path"])


def _spikeglx(spec: dict):
    from .extractors import read_spikeglx

    return read_spikeglx(spec["folder_path"], stream_id=spec["stream_id"], stream_name=spec["stream_name"],
                         load_sync_channel=spec["load_sync_channel"])


def _openephys(spec: dict):
    from .extractors import read_openephys

    return read_openephys(spec["folder_path"], stream_id=spec["stream_id"], stream_name=spec["stream_name"],
                          block_index=spec["block_index"])


def _mearec(spec: dict):
    from .extractors import read_mearec

    return read_mearec(spec["file_path"])


def _npz(spec: dict):
    from .io.npz_sorting import NpzFolderSorting, read_npz_sorting

    path = Path(spec["file_path"])
    return NpzFolderSorting(path) if path.is_dir() else read_npz_sorting(path)


def _numpy_folder(spec: dict):
    from .io.numpy_folder import read_numpy_sorting_folder

    return read_numpy_sorting_folder(spec["folder_path"])


def _phy(spec: dict):
    from .extractors import read_phy

    return read_phy(spec["folder_path"], exclude_cluster_groups=spec["exclude_cluster_groups"])


def _kilosort(spec: dict):
    from .extractors import read_kilosort

    return read_kilosort(spec["folder_path"], keep_good_only=spec["keep_good_only"])


_PROBE_KEY = {"probe_file": Key(_or_none(_string), None, path=True)}
_STREAM_KEYS = {"stream_id": Key(_or_none(_string), None), "stream_name": Key(_or_none(_string), None)}

RECORDING_SOURCES: dict[str, SourceType] = {s.name: s for s in [
    SourceType("generated", "recording", _GENERATED_KEYS, lambda spec: _generated(spec)[0],
               "ground-truth toy data: templates injected into noise (sicore.generate_ground_truth_recording)",
               _PROBE_KEY),
    SourceType("binary", "recording", {
        "file_paths": Key(_list_of(_string, allow_scalar=True), path=True),
        "sampling_frequency": Key(_positive),
        "num_channels": Key(_count),
        "dtype": Key(_dtype),
        "gain_to_uV": Key(_or_none(_list_of(_number, allow_scalar=True)), None),
        "offset_to_uV": Key(_or_none(_list_of(_number, allow_scalar=True)), None),
        "channel_ids": Key(_or_none(_list_of(_id)), None),
        "time_axis": Key(_integer, 0),
        "file_offset": Key(_integer, 0),
        "t_starts": Key(_or_none(_list_of(_number)), None),
        "is_filtered": Key(_or_none(_boolean), None),
    }, _binary, "raw binary file(s), one per segment", _PROBE_KEY),
    SourceType("binary_folder", "recording", {"folder_path": Key(_string, path=True)}, _binary_folder,
               "a binary folder saved by sicore or SpikeInterface", _PROBE_KEY),
    SourceType("zarr", "recording", {"folder_path": Key(_string, path=True)}, _zarr,
               "a zarr recording saved by sicore or SpikeInterface", _PROBE_KEY),
    SourceType("spikeglx", "recording", {"folder_path": Key(_string, path=True), **_STREAM_KEYS,
                                         "load_sync_channel": Key(_boolean, False)},
               _spikeglx, "a SpikeGLX folder (through neo); the Neuropixels probe is attached", _PROBE_KEY),
    SourceType("openephys", "recording", {"folder_path": Key(_string, path=True), **_STREAM_KEYS,
                                          "block_index": Key(_or_none(_integer), None)},
               _openephys, "an Open Ephys folder, binary or legacy (through neo)", _PROBE_KEY),
    SourceType("mearec", "recording", {"file_path": Key(_string, path=True)}, lambda spec: _mearec(spec)[0],
               "a MEArec .h5 file", _PROBE_KEY),
]}

SORTING_SOURCES: dict[str, SourceType] = {s.name: s for s in [
    SourceType("generated", "sorting", _GENERATED_KEYS, lambda spec: _generated(spec)[1],
               "the ground truth of a generated recording with the same keys"),
    SourceType("mearec", "sorting", {"file_path": Key(_string, path=True)}, lambda spec: _mearec(spec)[1],
               "the ground truth of a MEArec .h5 file"),
    SourceType("npz", "sorting", {"file_path": Key(_string, path=True)}, _npz,
               "an .npz sorting file (NpzSortingExtractor) or a folder saved with format='npz'"),
    SourceType("numpy_folder", "sorting", {"folder_path": Key(_string, path=True)}, _numpy_folder,
               "a numpy folder (spikes.npy) saved by sicore or SpikeInterface"),
    SourceType("phy", "sorting", {"folder_path": Key(_string, path=True),
                                  "exclude_cluster_groups": Key(_or_none(_list_of(_string, allow_scalar=True)),
                                                                None)},
               _phy, "a Phy folder (params.py, spike_times.npy, spike_clusters.npy, cluster tables)"),
    SourceType("kilosort", "sorting", {"folder_path": Key(_string, path=True),
                                       "keep_good_only": Key(_boolean, False)},
               _kilosort, "a Kilosort output folder"),
]}

# the sorting that comes with a recording source of these types
GROUND_TRUTH = "ground_truth"
_GROUND_TRUTH_TYPES = ("generated", "mearec")


# ------------------------------------------------------------------------------ checks
def _check(spec, registry: dict[str, SourceType], where: str, extra_types: tuple[str, ...] = ()) -> dict:
    if not isinstance(spec, dict):
        raise SourceError(f"{where}: expected a mapping with a 'type' key, got {spec!r}")
    if "type" not in spec:
        raise SourceError(f"{where}.type: missing; one of {sorted(registry) + list(extra_types)}")
    name = spec["type"]
    if name in extra_types:
        return dict(spec)
    if name not in registry:
        raise SourceError(f"{where}.type: unknown source type {name!r}; one of {sorted(registry) + list(extra_types)}")
    keys = registry[name].all_keys()
    unknown = [k for k in spec if k != "type" and k not in keys]
    if unknown:
        raise SourceError(f"{where}.{unknown[0]}: unknown key for a {name!r} source; its keys are {sorted(keys)}")
    checked = {"type": name}
    for key, rule in keys.items():
        if key in spec:
            checked[key] = rule.check(spec[key], f"{where}.{key}")
        elif rule.required:
            raise SourceError(f"{where}.{key}: missing (required for a {name!r} source)")
        else:
            checked[key] = rule.default
    return checked


def check_recording_source(spec: dict, where: str = "recording") -> dict:
    """Check a recording source and fill its defaults.

    Parameters
    ----------
    spec : dict
        ``{"type": ..., ...}``.
    where : str, default: "recording"
        Name of the source in error messages (e.g. ``"sessions.s1.recording"``).

    Returns
    -------
    spec : dict
        A new dict with every key of the type (defaults filled, dtypes normalised).
    """
    return _check(spec, RECORDING_SOURCES, where)


def check_sorting_source(spec: dict | None, where: str = "sorting", recording_spec: dict | None = None) -> dict:
    """Check a sorting source and fill its defaults; ``ground_truth`` becomes the recording's own sorting.

    Parameters
    ----------
    spec : dict or None
        ``{"type": ..., ...}``; None means ``{"type": "ground_truth"}``.
    where : str, default: "sorting"
        Name of the source in error messages.
    recording_spec : dict or None, default: None
        The (checked) recording source, needed by ``ground_truth``.

    Returns
    -------
    spec : dict
        A sorting source of a concrete type (never ``ground_truth``).
    """
    spec = {"type": GROUND_TRUTH} if spec is None else spec
    checked = _check(spec, SORTING_SOURCES, where, extra_types=(GROUND_TRUTH,))
    if checked["type"] != GROUND_TRUTH:
        return checked
    if len(checked) > 1:
        raise SourceError(f"{where}.{next(k for k in checked if k != 'type')}: a 'ground_truth' sorting has no keys")
    recording_type = None if recording_spec is None else recording_spec.get("type")
    if recording_type not in _GROUND_TRUTH_TYPES:
        raise SourceError(
            f"{where}.type: 'ground_truth' needs a recording of type {' or '.join(_GROUND_TRUTH_TYPES)}, "
            f"the recording is {recording_type!r}; give the sorting source (npz, numpy_folder, phy, ...)"
        )
    sorting_keys = SORTING_SOURCES[recording_type].keys
    return {"type": recording_type, **{k: v for k, v in recording_spec.items() if k in sorting_keys}}


# ------------------------------------------------------------------------------ loading
def load_recording(spec: dict, where: str = "recording"):
    """The recording of a source (checked first); a ``probe_file`` is attached.

    Parameters
    ----------
    spec : dict
        A recording source.
    where : str, default: "recording"
        Name of the source in error messages.
    """
    spec = check_recording_source(spec, where)
    _check_paths_exist(spec, RECORDING_SOURCES, where)
    recording = RECORDING_SOURCES[spec["type"]].opener(spec)
    if spec.get("probe_file"):
        recording = _attach_probe_file(recording, spec["probe_file"], f"{where}.probe_file")
    return recording


def load_sorting(spec: dict | None, where: str = "sorting", recording_spec: dict | None = None):
    """The sorting of a source (checked first; see ``check_sorting_source``)."""
    spec = check_sorting_source(spec, where, recording_spec)
    _check_paths_exist(spec, SORTING_SOURCES, where)
    return SORTING_SOURCES[spec["type"]].opener(spec)


def _check_paths_exist(spec: dict, registry: dict[str, SourceType], where: str) -> None:
    for key, rule in registry[spec["type"]].all_keys().items():
        if not rule.path or spec.get(key) is None:
            continue
        for path in _as_list(spec[key]):
            if not os.path.exists(path):
                raise FileNotFoundError(f"{where}.{key}: {path} does not exist")


def _attach_probe_file(recording, probe_file: str, where: str):
    import probeinterface as pi

    try:
        if probe_file.lower().endswith(".prb"):
            probegroup = pi.read_prb(probe_file)
        else:
            probegroup = pi.read_probeinterface(probe_file)
    except Exception as err:  # probeinterface raises bare exceptions on malformed files
        raise SourceError(f"{where}: {probe_file} is not a probeinterface JSON or PRB file ({err})") from None
    num_contacts = sum(p.get_contact_count() for p in probegroup.probes)
    if num_contacts != recording.get_num_channels():
        raise SourceError(f"{where}: {probe_file} has {num_contacts} contacts for {recording.get_num_channels()} "
                          "channels")
    return recording.set_probegroup(probegroup)


def load_source_argument(text: str, kind: str):
    """A recording or sorting from a command-line argument.

    Parameters
    ----------
    text : str
        A source as JSON (``'{"type": "spikeglx", "folder_path": "data"}'``), a ``.json``/``.yaml`` file
        holding one, a MEArec ``.h5`` file, or a folder/file saved by sicore or SpikeInterface.
    kind : "recording" | "sorting"
        What is expected.
    """
    spec = _spec_from_text(text)
    if spec is not None:
        return load_recording(spec, kind) if kind == "recording" else load_sorting(spec, kind)
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"{kind}: {text} does not exist (expected a saved folder, a file or a JSON source)")
    if path.suffix.lower() in (".h5", ".hdf5"):
        return load_recording({"type": "mearec", "file_path": text}) if kind == "recording" else \
            load_sorting({"type": "mearec", "file_path": text})
    from .io.loading import load_extractor
    from .recording import BaseRecording
    from .sorting import BaseSorting

    obj = load_extractor(path)
    expected = BaseRecording if kind == "recording" else BaseSorting
    if not isinstance(obj, expected):
        raise SourceError(f"{kind}: {text} holds a {type(obj).__name__}, not a {kind}")
    return obj


def _spec_from_text(text: str) -> dict | None:
    """The source dict of a JSON text or a .json/.yaml source file, or None for other paths."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as err:
            raise SourceError(f"source: not valid JSON ({err})") from None
    path = Path(text)
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml", ".json"):
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise SourceError(f"source: {path} is not valid JSON ({err})") from None
        else:
            import yaml

            data = yaml.safe_load(path.read_text())
        # a saved object's provenance JSON ("class"/"kwargs") is loaded by load_extractor instead
        if isinstance(data, dict) and "type" in data:
            return data
    return None


# ------------------------------------------------------------------------------ workflow helpers
def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def source_paths(spec: dict, kind: str) -> list[str]:
    """The files and folders a checked source reads (the workflow's rule inputs).

    Parameters
    ----------
    spec : dict
        A checked source (``check_recording_source`` / ``check_sorting_source``).
    kind : "recording" | "sorting"
        The source kind.
    """
    registry = RECORDING_SOURCES if kind == "recording" else SORTING_SOURCES
    paths = []
    for key, rule in registry[spec["type"]].all_keys().items():
        if rule.path and spec.get(key) is not None:
            paths.extend(str(p) for p in _as_list(spec[key]))
    return paths


def source_nbytes(spec: dict) -> int:
    """Size estimate of a checked recording source's traces in bytes (file sizes, or computed for generated).

    Missing files count as 0 (the estimate is refined once data exist).
    """
    if spec["type"] == "generated":
        import numpy as np

        samples = sum(int(d * spec["sampling_frequency"]) for d in spec["durations"])
        return samples * spec["num_channels"] * np.dtype(spec["dtype"]).itemsize
    total = 0
    for path in source_paths(spec, "recording"):
        if os.path.isfile(path):
            total += os.path.getsize(path)
        elif os.path.isdir(path):
            for root, _, files in os.walk(path):
                total += sum(os.path.getsize(os.path.join(root, f)) for f in files
                             if not os.path.islink(os.path.join(root, f)))
    return total
