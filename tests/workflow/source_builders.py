"""Small real files in every source format, built from one generated ground-truth dataset.

The format writers come from ``tests/extractors/extractor_files.py`` (the extractors' own tests);
each builder returns the source dict (as a config would hold it) and what was written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "extractors"))

from extractor_files import (  # noqa: E402
    write_mearec,
    write_openephys_binary,
    write_phy_folder,
    write_spikeglx_stream,
)

FS = 30000.0
GAIN = 0.25  # µV per bit of the int16 copies


def ground_truth(seed: int = 7, duration: float = 2.0, num_channels: int = 8, num_units: int = 4):
    """A generated (recording, sorting) at 30 kHz and the recording's traces as int16 (``GAIN`` µV/bit)."""
    import sicore

    recording, sorting = sicore.generate_ground_truth_recording(
        durations=[duration], sampling_frequency=FS, num_channels=num_channels, num_units=num_units, seed=seed)
    traces = np.round(recording.get_traces() / GAIN).astype("int16")
    return recording, sorting, traces


def spike_vector(sorting) -> tuple[np.ndarray, np.ndarray]:
    """(sample indices, unit ids) of every spike, in time order."""
    spikes = sorting.to_spike_vector()
    return spikes["sample_index"].astype(np.int64), np.asarray(sorting.unit_ids)[spikes["unit_index"]]


def raw_binary(folder: Path, recording, traces: np.ndarray) -> dict:
    """A raw int16 file with a probeinterface JSON probe file next to it."""
    import probeinterface as pi

    folder.mkdir(parents=True, exist_ok=True)
    traces.tofile(folder / "traces.raw")
    pi.write_probeinterface(folder / "probe.json", recording.get_probegroup())
    return {"type": "binary", "file_paths": str(folder / "traces.raw"), "sampling_frequency": FS,
            "num_channels": traces.shape[1], "dtype": "int16", "gain_to_uV": GAIN, "offset_to_uV": 0.0,
            "probe_file": str(folder / "probe.json")}


def saved_binary_folder(folder: Path, recording) -> dict:
    recording.save(folder=folder, format="binary", progress_bar=False)
    return {"type": "binary_folder", "folder_path": str(folder)}


def saved_zarr(folder: Path, recording) -> dict:
    """A zarr recording store; ``folder`` should end with ".zarr" (the library appends it otherwise)."""
    recording.save(folder=folder, format="zarr", progress_bar=False)
    return {"type": "zarr", "folder_path": str(folder)}


def spikeglx(folder: Path, traces: np.ndarray) -> dict:
    """One gate of an NP1.0 AP stream: the int16 channels plus a sync channel."""
    with_sync = np.concatenate([traces, np.zeros((traces.shape[0], 1), dtype="int16")], axis=1)
    write_spikeglx_stream(folder, "run", 0, "ap", with_sync)
    return {"type": "spikeglx", "folder_path": str(folder), "stream_id": "imec0.ap"}


def openephys(folder: Path, num_samples: int, num_channels: int = 4) -> dict:
    """An Open Ephys binary folder with one 30 kHz stream of random int16 traces."""
    streams = {"Rhythm_FPGA-101.0": {"sample_rate": FS, "channels": [(f"CH{i + 1}", 0.195, "uV")
                                                                     for i in range(num_channels)],
                                     "num_samples": [num_samples], "first_sample": [0]}}
    write_openephys_binary(folder, streams, 1, np.random.default_rng(3))
    return {"type": "openephys", "folder_path": str(folder)}


def mearec(file_path: Path, recording, sorting) -> dict:
    locations = recording.get_channel_locations()
    positions = np.column_stack([np.zeros(len(locations)), locations])
    samples, units = spike_vector(sorting)
    # a quarter sample late: floor and round both give back the sample index
    spike_times = [(samples[units == u] + 0.25) / FS for u in sorting.unit_ids]
    write_mearec(file_path, recording.get_traces().astype("float32"), positions, spike_times, fs=FS,
                 version="1.9.1")
    return {"type": "mearec", "file_path": str(file_path)}


def npz(file_path: Path, sorting) -> dict:
    from sicore.io.npz_sorting import write_npz_sorting

    file_path.parent.mkdir(parents=True, exist_ok=True)
    write_npz_sorting(sorting, file_path)
    return {"type": "npz", "file_path": str(file_path)}


def numpy_folder(folder: Path, sorting) -> dict:
    sorting.save(folder=folder, format="numpy_folder")
    return {"type": "numpy_folder", "folder_path": str(folder)}


def phy(folder: Path, sorting, kilosort: bool = False) -> dict:
    samples, units = spike_vector(sorting)
    clusters = np.asarray(units).astype(np.int64)
    write_phy_folder(folder, samples, clusters, sample_rate=FS,
                     tables={"cluster_group.tsv": "cluster_id\tgroup\n" + "".join(
                         f"{c}\tgood\n" for c in np.unique(clusters)),
                             "cluster_KSLabel.tsv": "cluster_id\tKSLabel\n" + "".join(
                         f"{c}\tgood\n" for c in np.unique(clusters))})
    return {"type": "kilosort" if kilosort else "phy", "folder_path": str(folder)}


__all__ = ["FS", "GAIN", "ground_truth", "spike_vector", "raw_binary", "saved_binary_folder", "saved_zarr",
           "spikeglx", "openephys", "mearec", "npz", "numpy_folder", "phy"]
