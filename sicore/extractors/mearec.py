"""MEArec simulated recordings (``.h5``): the recording and its ground-truth sorting, read with h5py.

Layout read (written by MEArec's ``save_recording_generator``)::

    attrs["mearec_version"]           traces are (num_samples, num_channels) from 1.5.0 on,
                                      (num_channels, num_samples) before (and without the attribute)
    info/...                          nested groups/datasets; info/recordings/fs is the sampling rate,
                                      info/electrodes/{plane, shape, size} describe the contacts
    recordings                        the traces (float µV, or integers with attrs["gain_to_uV"])
    channel_positions                 (num_channels, 3) contact positions in µm
    spiketrains/<i>/times             spike times in seconds of unit i
    spiketrains/<i>/annotations/...   per-unit metadata (cell type, soma position, ...)

Not read: templates, spike traces, voltage peaks, drift vectors. Traces are never loaded whole:
each read slices the HDF5 dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..numpy_objects import _checked_spike_vector, _SpikeVectorSorting
from ..recording import BaseRecording, BaseRecordingSegment
from ..sorting import SPIKE_VECTOR_DTYPE, BaseSorting


def _h5py():
    try:
        import h5py
    except ImportError as err:
        raise ImportError(f"reading MEArec files needs h5py (pip install h5py): {err}") from None
    return h5py


def _existing_file(file_path) -> Path:
    path = Path(file_path).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"file_path: {path} is not an existing file")
    return path


def _open(path: Path):
    h5py = _h5py()
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"file_path: {path} is not a readable HDF5 (MEArec) file ({err})") from None


def read_h5_dict(group) -> dict:
    """A nested dict from an HDF5 group the way MEArec stores dicts ("null" is None, bytes are str)."""
    out = {}
    for key, item in group.items():
        if hasattr(item, "keys"):
            out[key] = read_h5_dict(item)
            continue
        value = item[()]
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.ndarray) and value.dtype.kind == "S":
            value = [v.decode() for v in value.tolist()]
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = None if value == "null" else value
    return out


def _version_tuple(version) -> tuple[int, ...]:
    if isinstance(version, bytes):
        version = version.decode()
    parts = []
    for piece in str(version).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def traces_time_axis(shape: tuple, num_channels: int, version) -> int:
    """0 when the ``recordings`` dataset is (num_samples, num_channels), 1 when (num_channels, num_samples).

    The shape decides when only one axis matches the number of channels; otherwise the file's
    MEArec version does (1.5.0 switched to samples first; files without a version are older).
    """
    if len(shape) != 2:
        raise ValueError(f"the recordings dataset must be 2-d, got shape {shape}")
    if shape[1] == num_channels and shape[0] != num_channels:
        return 0
    if shape[0] == num_channels and shape[1] != num_channels:
        return 1
    if shape[0] != num_channels:
        raise ValueError(f"the recordings dataset has shape {shape}; neither axis matches the {num_channels} "
                         "channel positions")
    return 0 if version is not None and _version_tuple(version) >= (1, 5) else 1


class MEArecRecordingExtractor(BaseRecording):
    """The recording of a MEArec file, read lazily with h5py, with a probe from the electrode positions.

    Parameters
    ----------
    file_path : str or Path
        The MEArec ``.h5`` file.

    Notes
    -----
    Channel ids are ``"1" .. "N"`` and names ``"ch0" .. "ch<N-1>"`` (as neo and SpikeInterface name
    them). Float traces are in µV (gain 1, offset 0); integer traces use the file's ``gain_to_uV``.
    The probe is 2-d, in the electrodes' plane (``info/electrodes/plane``, default ``"yz"``), with
    MEArec's contact shape and size. ``is_filtered`` follows ``info/recordings/filter``
    (SpikeInterface 0.105 always says False).
    """

    _path_kwargs = ("file_path",)

    def __init__(self, file_path):
        path = _existing_file(file_path)
        with _open(path) as f:
            for name in ("recordings", "channel_positions", "info"):
                if name not in f:
                    raise ValueError(f"file_path: {path} has no {name!r} entry; not a MEArec recordings file")
            info = read_h5_dict(f["info"])
            positions = np.asarray(f["channel_positions"][()], dtype=np.float64)
            dataset = f["recordings"]
            shape, dtype = dataset.shape, dataset.dtype
            gain = dataset.attrs.get("gain_to_uV", None)
            version = f.attrs.get("mearec_version", None)
        try:
            sampling_frequency = float(info["recordings"]["fs"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"file_path: {path} has no numeric info/recordings/fs (the sampling rate)") from None
        num_channels = positions.shape[0]
        time_axis = traces_time_axis(shape, num_channels, version)
        num_samples = shape[0] if time_axis == 0 else shape[1]

        BaseRecording.__init__(self, sampling_frequency, [str(i + 1) for i in range(num_channels)], dtype)
        self.add_recording_segment(MEArecRecordingSegment(path, sampling_frequency, num_samples, time_axis))
        gain = 1.0 if gain is None else float(gain)
        self.set_channel_gains(gain)
        self.set_channel_offsets(0.0)
        self.set_property("channel_name", np.array([f"ch{i}" for i in range(num_channels)]))
        self.set_property("physical_unit", np.full(num_channels, "uV"))
        self.set_property("gain_to_physical_unit", np.full(num_channels, gain))
        self.set_property("offset_to_physical_unit", np.zeros(num_channels))
        self.set_probe(_probe(positions, info.get("electrodes") or {}), in_place=True)
        self.annotate(mearec_info=info, is_filtered=bool(info["recordings"].get("filter", False)))
        self._kwargs = {"file_path": str(path)}


class MEArecRecordingSegment(BaseRecordingSegment):
    """The ``recordings`` dataset, opened on first read (again after a fork: HDF5 handles do not survive one)."""

    def __init__(self, path: Path, sampling_frequency: float, num_samples: int, time_axis: int):
        BaseRecordingSegment.__init__(self, sampling_frequency)
        self._path = path
        self._num_samples = int(num_samples)
        self._time_axis = time_axis
        self._file = None
        self._pid = None

    def get_num_samples(self) -> int:
        return self._num_samples

    def _dataset(self):
        if self._file is None or self._pid != os.getpid():
            self._file = _open(self._path)
            self._pid = os.getpid()
        return self._file["recordings"]

    def get_traces(self, start_frame, end_frame, channel_indices):
        dataset = self._dataset()
        if isinstance(channel_indices, slice):
            if self._time_axis == 0:
                return dataset[start_frame:end_frame, channel_indices]
            return dataset[channel_indices, start_frame:end_frame].T
        # h5py needs increasing, unique indices: read the covering range, then pick
        indices = np.asarray(channel_indices, dtype=np.int64)
        if indices.size == 0:
            return np.zeros((end_frame - start_frame, 0), dtype=dataset.dtype)
        lo, hi = int(indices.min()), int(indices.max()) + 1
        if self._time_axis == 0:
            block = dataset[start_frame:end_frame, lo:hi]
        else:
            block = dataset[lo:hi, start_frame:end_frame].T
        return block[:, indices - lo]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None
        state["_pid"] = None
        return state


def _probe(positions: np.ndarray, electrodes: dict):
    """A wired 2-d probe: contacts at the positions projected on the electrodes' plane."""
    import probeinterface

    plane = str(electrodes.get("plane") or "yz")
    if len(plane) != 2 or any(a not in "xyz" for a in plane) or positions.shape[1] != 3:
        plane = "yz"
    locations = positions[:, ["xyz".index(a) for a in plane]]
    size = electrodes.get("size") or 5.0
    # MEArec (MEAutility) sizes are a radius for circles and half the side for squares
    if electrodes.get("shape") == "square":
        shape, shape_params = "square", {"width": 2 * float(size)}
    else:
        shape, shape_params = "circle", {"radius": float(size)}
    probe = probeinterface.Probe(ndim=2, si_units="um")
    probe.set_contacts(locations, shapes=shape, shape_params=shape_params)
    probe.set_device_channel_indices(np.arange(locations.shape[0]))
    probe.create_auto_shape()
    name = electrodes.get("electrode_name")
    probe.annotate(model_name=name, mearec_name=name, mearec_description=electrodes.get("description"))
    return probe


class MEArecSortingExtractor(_SpikeVectorSorting):
    """The ground-truth spike trains of a MEArec file.

    Parameters
    ----------
    file_path : str or Path
        The MEArec ``.h5`` file.

    Notes
    -----
    Unit ids are ``"#0" .. "#N-1"`` (neo/SpikeInterface naming) in MEArec's unit order; spike times
    (seconds) become sample indices by rounding ``time * fs``. Scalar unit annotations (cell type,
    firing rate, ...) and fixed-length numeric ones (soma position) become unit properties.
    """

    _path_kwargs = ("file_path",)

    def __init__(self, file_path):
        path = _existing_file(file_path)
        with _open(path) as f:
            if "info" not in f:
                raise ValueError(f"file_path: {path} has no 'info' entry; not a MEArec recordings file")
            info = read_h5_dict(f["info"])
            try:
                sampling_frequency = float(info["recordings"]["fs"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"file_path: {path} has no numeric info/recordings/fs (the sampling rate)") from None
            group = f["spiketrains"] if "spiketrains" in f else {}
            keys = sorted(group.keys(), key=int)
            trains, annotations = [], []
            for key in keys:
                times = np.asarray(group[key]["times"][()], dtype=np.float64).ravel()
                # MEArec placed each spike at int(time * fs) when it built the traces
                trains.append(np.floor(times * sampling_frequency).astype(np.int64))
                annotations.append(read_h5_dict(group[key]["annotations"]) if "annotations" in group[key] else {})
        BaseSorting.__init__(self, sampling_frequency, [f"#{k}" for k in keys])
        samples = np.concatenate(trains) if trains else np.zeros(0, dtype=np.int64)
        spikes = np.zeros(samples.size, dtype=SPIKE_VECTOR_DTYPE)
        spikes["sample_index"] = samples
        spikes["unit_index"] = np.repeat(np.arange(len(trains)), [t.size for t in trains])
        if samples.size and samples.min() < 0:
            raise ValueError(f"file_path: {path} has negative spike times")
        self._spikes = _checked_spike_vector(spikes, self.get_num_units())
        self._init_from_spikes(self._spikes, 1)
        for key, values in _annotation_properties(annotations).items():
            self.set_property(key, values)
        self._kwargs = {"file_path": str(path)}


def _annotation_properties(annotations: list[dict]) -> dict:
    """Annotations every unit has, as properties: scalars, and numeric vectors of one length."""
    if not annotations:
        return {}
    out = {}
    for key in annotations[0]:
        values = [a.get(key) for a in annotations]
        if any(v is None for v in values):
            continue
        if all(isinstance(v, (bool, int, float, str)) for v in values):
            out[key] = np.asarray(values)
        elif all(isinstance(v, list) and v and all(isinstance(e, (int, float)) for e in v) for v in values):
            if len({len(v) for v in values}) == 1:
                out[key] = np.asarray(values, dtype=np.float64)
    return out


def read_mearec(file_path) -> tuple[MEArecRecordingExtractor, MEArecSortingExtractor]:
    """Read a MEArec ``.h5`` file: ``(recording, ground_truth_sorting)``."""
    return MEArecRecordingExtractor(file_path), MEArecSortingExtractor(file_path)


__all__ = ["MEArecRecordingExtractor", "MEArecSortingExtractor", "read_mearec", "read_h5_dict", "traces_time_axis"]
