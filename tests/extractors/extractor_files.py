"""Writers of small but real files in the formats the extractors read (tests keep the arrays written).

Each writer follows the layout documented by the acquisition system (SpikeGLX .meta/.bin, Open Ephys
binary and legacy, Phy/Kilosort folders, MEArec HDF5), with the fields neo and probeinterface need.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------- SpikeGLX
NP1_AP_GAIN = 500
NP1_LF_GAIN = 250
NP1_RANGE_MAX = 0.6  # volts; NP1.0 ADC is 10 bits (imMaxInt=512)
NP1_AP_UV_PER_BIT = NP1_RANGE_MAX / 512 / NP1_AP_GAIN * 1e6
NP1_LF_UV_PER_BIT = NP1_RANGE_MAX / 512 / NP1_LF_GAIN * 1e6


def _np1_imro_table(num_channels: int = 384) -> str:
    # (type, num channels) then (channel bank reference ap_gain lf_gain ap_highpass) per channel
    entries = "".join(f"({c} 0 0 {NP1_AP_GAIN} {NP1_LF_GAIN} 1)" for c in range(num_channels))
    return f"(0,{num_channels}){entries}"


def write_spikeglx_stream(folder: Path, run: str, gate: int, kind: str, traces: np.ndarray,
                          first_sample: int = 0) -> Path:
    """Write ``{run}_g{gate}_t0.imec0.{kind}.bin/.meta`` for an NP1.0 probe.

    ``traces`` is int16 (num_samples, num_saved_channels + 1): the saved AP (or LF) channels
    0..n-1 followed by the sync channel, as SpikeGLX writes them.
    """
    assert traces.dtype == np.int16
    num_saved = traces.shape[1] - 1
    sub = folder / f"{run}_g{gate}" / f"{run}_g{gate}_imec0"
    sub.mkdir(parents=True, exist_ok=True)
    stem = f"{run}_g{gate}_t0.imec0.{kind}"
    bin_file = sub / f"{stem}.bin"
    traces.tofile(bin_file)
    rate = 30000.0 if kind == "ap" else 2500.0
    prefix = "AP" if kind == "ap" else "LF"
    sync_index = 384 if kind == "ap" else 768
    chan_map = "".join(f"({prefix}{c};{c}:{c})" for c in range(num_saved)) + f"(SY0;{sync_index}:{sync_index})"
    ap_lf_sy = "384,0,1" if kind == "ap" else "0,384,1"
    meta = {
        "acqApLfSy": "384,384,1",
        "appVersion": "20201103",
        "fileName": str(bin_file.with_suffix(".bin")).replace("\\", "/"),
        "fileSizeBytes": str(traces.nbytes),
        "fileTimeSecs": str(traces.shape[0] / rate),
        "firstSample": str(first_sample),
        "imAiRangeMax": str(NP1_RANGE_MAX),
        "imAiRangeMin": str(-NP1_RANGE_MAX),
        "imDatApi": "3.31",
        "imDatBs_fw": "2.0.137",
        "imDatPrb_pn": "NP1000",
        "imDatPrb_port": "1",
        "imDatPrb_slot": "2",
        "imDatPrb_sn": "18194814141",
        "imDatPrb_type": "0",
        "imMaxInt": "512",
        "imSampRate": str(rate),
        "imroFile": "",
        "nSavedChans": str(num_saved + 1),
        "snsApLfSy": ap_lf_sy,
        "snsSaveChanSubset": f"0:{num_saved - 1},{sync_index}",
        "typeImEnabled": "1",
        "typeThis": "imec",
        "~imroTbl": _np1_imro_table(),
        "~snsChanMap": f"(384,384,1){chan_map}",
    }
    meta_file = sub / f"{stem}.meta"
    meta_file.write_text("".join(f"{k}={v}\n" for k, v in meta.items()))
    return meta_file


# -------------------------------------------------------- Open Ephys binary
def write_openephys_binary(folder: Path, streams: dict, num_recordings: int, rng, settings_xml: str | None = None,
                           node: str = "Record Node 101"):
    """Write an Open Ephys (>= 0.6) binary folder: one node, one experiment, ``num_recordings`` recordings.

    ``streams``: {folder_name: {"sample_rate": fs, "channels": [(name, bit_volts, units), ...],
    "num_samples": [n per recording], "first_sample": [first sample number per recording]}}.
    Returns {folder_name: [traces per recording]} (int16 arrays written).
    """
    written = {name: [] for name in streams}
    node_folder = folder / node
    node_folder.mkdir(parents=True)
    if settings_xml is not None:
        (node_folder / "settings.xml").write_text(settings_xml)
    for rec in range(num_recordings):
        rec_folder = node_folder / "experiment1" / f"recording{rec + 1}"
        continuous = []
        for folder_name, spec in streams.items():
            channels = spec["channels"]
            n = spec["num_samples"][rec]
            traces = rng.integers(-1500, 1500, size=(n, len(channels))).astype("int16")
            stream_folder = rec_folder / "continuous" / folder_name
            stream_folder.mkdir(parents=True)
            traces.tofile(stream_folder / "continuous.dat")
            first = spec["first_sample"][rec]
            sample_numbers = np.arange(first, first + n, dtype=np.int64)
            np.save(stream_folder / "sample_numbers.npy", sample_numbers)
            np.save(stream_folder / "timestamps.npy", sample_numbers / spec["sample_rate"])
            written[folder_name].append(traces)
            continuous.append({
                "folder_name": folder_name + "/",
                "sample_rate": spec["sample_rate"],
                "source_processor_name": folder_name.split("-")[0],
                "source_processor_id": 100,
                "stream_name": folder_name.split(".", 1)[-1],
                "recorded_processor": "Record Node",
                "recorded_processor_id": 101,
                "num_channels": len(channels),
                "channels": [
                    {"channel_name": name, "description": "", "identifier": "genericdata.continuous",
                     "history": "Neuropix-PXI -> Record Node", "bit_volts": bit_volts, "units": units,
                     "source_processor_index": i, "recorded_processor_index": i}
                    for i, (name, bit_volts, units) in enumerate(channels)
                ],
            })
        oebin = {"GUI version": "0.6.7", "continuous": continuous, "events": [], "spikes": []}
        (rec_folder / "structure.oebin").write_text(json.dumps(oebin, indent=2))
    return written


def np1_settings_xml(stream_probe_name: str = "ProbeA", num_channels: int = 384, bank_offset: int = 0) -> str:
    """A Neuropix-PXI settings.xml (Open Ephys 0.6) describing one NP1.0 probe with selected electrodes."""
    electrodes = " ".join(f'CH{c}="{c + bank_offset}"' for c in range(num_channels))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<SETTINGS>
  <INFO><VERSION>0.6.7</VERSION><PLUGIN_API_VERSION>8</PLUGIN_API_VERSION></INFO>
  <SIGNALCHAIN>
    <PROCESSOR name="Sources/Neuropix-PXI" insertionPoint="0" pluginName="Neuropix-PXI" type="4"
               index="3" libraryName="Neuropix-PXI" libraryVersion="0.4.0" processorType="2" nodeId="100">
      <STREAM name="{stream_probe_name}-AP" description="" sample_rate="30000.0" channel_count="{num_channels}"/>
      <STREAM name="{stream_probe_name}-LFP" description="" sample_rate="2500.0" channel_count="{num_channels}"/>
      <EDITOR isCollapsed="0" isDrawerOpen="0" displayName="Neuropix-PXI" activeStream="0">
        <NP_PROBE slot="2" port="1" dock="1" probe_serial_number="18194814141" probe_part_number="NP1000"
                  probe_name="Neuropixels 1.0" isEnabled="1" apGainValue="500x" lfpGainValue="250x">
          <SELECTED_ELECTRODES {electrodes}/>
        </NP_PROBE>
      </EDITOR>
    </PROCESSOR>
    <PROCESSOR name="Recording/Record Node" insertionPoint="1" pluginName="Record Node" type="0" index="4"
               libraryName="" libraryVersion="" processorType="8" nodeId="101"/>
  </SIGNALCHAIN>
</SETTINGS>
"""


# ------------------------------------------------------- Open Ephys legacy
LEGACY_RECORD = 1024
_LEGACY_DTYPE = np.dtype([("timestamp", "<i8"), ("nb_sample", "<u2"), ("rec_num", "<u2"),
                          ("samples", ">i2", LEGACY_RECORD), ("markers", "u1", 10)])


def _legacy_header(channel: str, sample_rate: float, bit_volts: float) -> bytes:
    text = (
        "header.format = 'Open Ephys Data Format'; \n"
        "header.version = 0.4;\n"
        "header.header_bytes = 1024;\n"
        "header.description = 'each record contains one 64-bit timestamp, one 16-bit sample count (N), "
        "1 uint16 recordingNumber, N 16-bit samples, and one 10-byte record marker (0 1 2 3 4 5 6 7 8 255)';\n"
        "header.date_created = '15-Jun-2020 101010';\n"
        f"header.channel = '{channel}';\n"
        "header.channelType = 'Continuous';\n"
        f"header.sampleRate = {int(sample_rate)};\n"
        "header.blockLength = 1024;\n"
        "header.bufferSize = 1024;\n"
        f"header.bitVolts = {bit_volts};\n"
    ).encode("ascii")
    return text + b" " * (1024 - len(text))


def write_openephys_legacy(folder: Path, channels: list, num_records: list, first_timestamps: list,
                           sample_rate: float, rng):
    """Write legacy ``100_<name>[_<n>].continuous`` files (one per channel and segment).

    ``channels``: [(name, bit_volts)], e.g. ("CH1", 0.195) or ("AUX1", 3.74e-05). Returns
    {name: [samples per segment]} (int16).
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = {name: [] for name, _ in channels}
    for seg, (n_records, ts0) in enumerate(zip(num_records, first_timestamps)):
        suffix = "" if seg == 0 else f"_{seg + 1}"
        for name, bit_volts in channels:
            samples = rng.integers(-1500, 1500, size=n_records * LEGACY_RECORD).astype("int16")
            records = np.zeros(n_records, dtype=_LEGACY_DTYPE)
            records["timestamp"] = ts0 + LEGACY_RECORD * np.arange(n_records)
            records["nb_sample"] = LEGACY_RECORD
            records["samples"] = samples.reshape(n_records, LEGACY_RECORD)
            records["markers"] = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 255], dtype="u1")
            with open(folder / f"100_{name}{suffix}.continuous", "wb") as f:
                f.write(_legacy_header(name, sample_rate, bit_volts))
                f.write(records.tobytes())
            written[name].append(samples)
    return written


# ------------------------------------------------------------ Phy/Kilosort
def write_phy_folder(folder: Path, spike_times, spike_clusters, sample_rate: float = 30000.0,
                     tables: dict | None = None, params_extra: str = "", spike_templates=None) -> Path:
    """A Phy/Kilosort output folder; ``tables`` maps file name -> text (tsv/csv)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "spike_times.npy", np.asarray(spike_times, dtype=np.uint64).reshape(-1, 1))
    if spike_clusters is not None:
        np.save(folder / "spike_clusters.npy", np.asarray(spike_clusters, dtype=np.int32))
    if spike_templates is not None:
        np.save(folder / "spike_templates.npy", np.asarray(spike_templates, dtype=np.uint32))
    params = (
        "dat_path = 'recording.dat'\n"
        "n_channels_dat = 4\n"
        "dtype = 'int16'\n"
        "offset = 0\n"
        f"sample_rate = {sample_rate}\n"
        "hp_filtered = True\n"
    ) + params_extra
    (folder / "params.py").write_text(params)
    for name, text in (tables or {}).items():
        (folder / name).write_text(text)
    return folder


# ------------------------------------------------------------------ MEArec
def _save_dict(h5, path: str, d: dict) -> None:
    """Nested dict -> HDF5 groups/datasets, the way MEArec stores its ``info``."""
    for key, value in d.items():
        if isinstance(value, dict):
            _save_dict(h5, f"{path}{key}/", value)
        elif value is None:
            h5[path + key] = "null"
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            h5[path + key] = np.array([v.encode("ascii") for v in value])
        else:
            h5[path + key] = value


def write_mearec(file_path: Path, traces: np.ndarray, positions: np.ndarray, spike_times: list,
                 fs: float = 32000.0, version: str | None = "1.9.1", gain_to_uV: float | None = None,
                 celltypes: list | None = None) -> Path:
    """A MEArec recordings file. ``traces`` is (num_samples, num_channels); stored transposed for versions < 1.5."""
    import h5py

    with h5py.File(file_path, "w") as f:
        if version is not None:
            f.attrs["mearec_version"] = version
        f.attrs["date"] = "24-01-01 10:00:00"
        info = {
            "recordings": {"fs": fs, "duration": traces.shape[0] / fs, "dtype": str(traces.dtype),
                           "noise_level": 10.0, "filter": True, "seed": None},
            "electrodes": {"electrode_name": "tetrode-mea-l", "dim": [4, 2], "pitch": [15.0, 15.0],
                           "plane": "yz", "shape": "square", "size": 5.0, "sortlist": None, "type": "mea"},
            "spiketrains": {"duration": traces.shape[0] / fs, "n_exc": 2, "n_inh": 1},
        }
        _save_dict(f, "info/", info)
        f.create_dataset("channel_positions", data=positions)
        new_layout = version is not None and tuple(int(x) for x in version.split(".")[:2]) >= (1, 5)
        data = traces if new_layout else traces.T
        f.create_dataset("recordings", data=data)
        if gain_to_uV is not None:
            f["recordings"].attrs["gain_to_uV"] = gain_to_uV
        for i, times in enumerate(spike_times):
            f.create_dataset(f"spiketrains/{i}/times", data=np.asarray(times, dtype=np.float64))
            f.create_dataset(f"spiketrains/{i}/t_stop", data=traces.shape[0] / fs)
            annotations = {"cell_type": (celltypes or ["E"] * len(spike_times))[i], "fr": 5.0 + i,
                           "soma_position": [float(i), 2.0, 3.0], "bintype": "E"}
            _save_dict(f, f"spiketrains/{i}/annotations/", annotations)
    return file_path
