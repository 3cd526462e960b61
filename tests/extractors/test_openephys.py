"""read_openephys on small real Open Ephys folders: binary (0.6, with a Neuropixels settings.xml) and legacy."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest

from sicore.base import BaseExtractor
from sicore.extractors import (
    OpenEphysBinaryRecordingExtractor,
    OpenEphysLegacyRecordingExtractor,
    detect_openephys_format,
    read_openephys,
)

NP_STREAM = "Record Node 101#Neuropix-PXI-100.ProbeA-AP"
FPGA_STREAM = "Record Node 101#Rhythm_FPGA-101.0"


def test_binary_streams_and_ids(oe_binary):
    names, ids = OpenEphysBinaryRecordingExtractor.get_streams(oe_binary.folder)
    assert names == [NP_STREAM, FPGA_STREAM, FPGA_STREAM + "_ADC"] and ids == ["0", "1", "3"]
    with pytest.raises(ValueError, match="several streams.*Rhythm_FPGA-101.0_ADC"):
        read_openephys(oe_binary.folder)
    with pytest.raises(ValueError, match="stream_id '7'"):
        read_openephys(oe_binary.folder, stream_id="7")


def test_binary_neural_stream_traces_times_and_gains(oe_binary):
    rec = read_openephys(oe_binary.folder, stream_name=FPGA_STREAM)
    assert isinstance(rec, OpenEphysBinaryRecordingExtractor)
    spec = oe_binary.streams["Rhythm_FPGA-101.0"]
    assert rec.channel_ids.tolist() == ["CH1", "CH2", "CH3", "CH4"]
    assert rec.sampling_frequency == 20000.0 and rec.get_num_segments() == 2
    for segment_index, written in enumerate(oe_binary.traces["Rhythm_FPGA-101.0"]):
        np.testing.assert_array_equal(rec.get_traces(segment_index=segment_index), written[:, :4])
        np.testing.assert_allclose(rec.get_traces(segment_index=segment_index, return_scaled=True),
                                   written[:, :4] * 0.195, rtol=1e-6)
        assert rec.get_start_time(segment_index) == pytest.approx(spec["first_sample"][segment_index] / 20000.0)
    assert rec.get_annotation("experiment_name") == "experiment1"
    assert not rec.has_probe()


def test_binary_adc_stream_volts_to_microvolts_and_its_own_start(oe_binary):
    rec = read_openephys(oe_binary.folder, stream_id="3")
    assert rec.channel_ids.tolist() == ["ADC1", "ADC2"]
    written = oe_binary.traces["Rhythm_FPGA-101.0"]
    np.testing.assert_array_equal(rec.get_traces(segment_index=1, start_frame=5, end_frame=77), written[1][5:77, 4:])
    np.testing.assert_allclose(rec.get_channel_gains(), 0.00015 * 1e6)
    assert rec.get_property("physical_unit").tolist() == ["V", "V"]
    np.testing.assert_allclose(rec.get_property("gain_to_physical_unit"), 0.00015)
    # the ADC channels share continuous.dat with CH1..CH4: same first sample numbers (0 and 3000)
    assert [rec.get_start_time(i) for i in range(2)] == pytest.approx([0.0, 0.15])


def test_binary_neuropixels_probe_from_settings(oe_binary):
    rec = read_openephys(oe_binary.folder, stream_id="0")
    assert rec.get_num_channels() == 384
    written = oe_binary.traces["Neuropix-PXI-100.ProbeA-AP"]
    np.testing.assert_array_equal(rec.get_traces(segment_index=0, channel_ids=["CH384", "CH1"]), written[0][:, [383, 0]])
    assert rec.has_probe()
    # NP1.0 electrodes 0..383 (bank 0): staggered pairs x = 16, 48, 0, 32, rows every 20 µm
    locations = rec.get_channel_locations()
    np.testing.assert_array_equal(locations[:, 0], np.tile([16.0, 48.0, 0.0, 32.0], 96))
    np.testing.assert_array_equal(locations[:, 1], np.arange(384) // 2 * 20.0)
    assert rec.get_probe().annotations["serial_number"] == "18194814141"
    assert rec.get_annotation("saturation_threshold_uV") == pytest.approx(1200.0)
    assert [rec.get_start_time(i) for i in range(2)] == pytest.approx([1000 / 30000, 5000 / 30000])


def test_binary_provenance(oe_binary):
    rec = read_openephys(oe_binary.folder, stream_id="3")
    assert rec.to_dict()["kwargs"] == {"folder_path": str(oe_binary.folder), "stream_id": "3", "stream_name": None,
                                       "block_index": None, "use_names_as_ids": False, "experiment_name": None}
    for again in (BaseExtractor.from_dict(rec.to_dict()), pickle.loads(pickle.dumps(rec))):
        np.testing.assert_array_equal(again.get_traces(segment_index=1), rec.get_traces(segment_index=1))
        assert again.get_start_time(1) == rec.get_start_time(1)


def test_binary_several_experiments_need_block_index(oe_binary, tmp_path):
    folder = tmp_path / "two_experiments"
    shutil.copytree(oe_binary.folder, folder)
    node = folder / "Record Node 101"
    shutil.copytree(node / "experiment1", node / "experiment2")
    with pytest.raises(ValueError, match=r"2 experiments \['experiment1', 'experiment2'\].*block_index"):
        read_openephys(folder, stream_id="1")
    rec = read_openephys(folder, stream_id="1", block_index=1)
    assert rec.get_annotation("experiment_name") == "experiment2"
    np.testing.assert_array_equal(rec.get_traces(segment_index=0), oe_binary.traces["Rhythm_FPGA-101.0"][0][:, :4])
    with pytest.raises(ValueError, match="block_index 2 is out of range"):
        read_openephys(folder, stream_id="1", block_index=2)
    by_name = read_openephys(folder, stream_id="1", experiment_name="experiment2")
    assert by_name.get_annotation("experiment_name") == "experiment2"
    assert BaseExtractor.from_dict(by_name.to_dict()).get_annotation("experiment_name") == "experiment2"
    with pytest.raises(ValueError, match=r"experiment_name 'experiment3' is not an experiment.*experiment2"):
        read_openephys(folder, stream_id="1", experiment_name="experiment3")
    with pytest.raises(ValueError, match="disagree"):
        read_openephys(folder, stream_id="1", experiment_name="experiment2", block_index=0)
    with pytest.raises(NotImplementedError, match="load_sync_timestamps"):
        OpenEphysBinaryRecordingExtractor(folder, stream_id="1", block_index=0, load_sync_timestamps=True)


def test_legacy_streams_traces_and_segment_starts(oe_legacy):
    assert detect_openephys_format(oe_legacy.folder) == "legacy"
    with pytest.raises(ValueError, match="several streams.*Signals AUX"):
        read_openephys(oe_legacy.folder)
    rec = read_openephys(oe_legacy.folder, stream_id="CH")
    assert isinstance(rec, OpenEphysLegacyRecordingExtractor)
    assert rec.channel_ids.tolist() == ["1", "2", "3"]
    assert rec.get_property("channel_name").tolist() == ["CH1", "CH2", "CH3"]
    for segment_index in range(2):
        expected = np.column_stack([oe_legacy.samples[f"CH{i}"][segment_index] for i in (1, 2, 3)])
        np.testing.assert_array_equal(rec.get_traces(segment_index=segment_index), expected)
        assert rec.get_start_time(segment_index) == pytest.approx(
            oe_legacy.first_timestamps[segment_index] / oe_legacy.sample_rate)
    np.testing.assert_array_equal(rec.get_traces(segment_index=0, start_frame=1000, end_frame=1100,
                                                 channel_ids=["3", "1"]),
                                  np.column_stack([oe_legacy.samples["CH3"][0], oe_legacy.samples["CH1"][0]])[1000:1100])
    aux = read_openephys(oe_legacy.folder, stream_name="Signals AUX", use_names_as_ids=True)
    assert aux.channel_ids.tolist() == ["AUX1"]
    np.testing.assert_allclose(aux.get_channel_gains(), 3.74e-5 * 1e6)
    again = BaseExtractor.from_dict(aux.to_dict())
    np.testing.assert_array_equal(again.get_traces(segment_index=1)[:, 0], oe_legacy.samples["AUX1"][1])
    with pytest.raises(ValueError, match="block_index 1.*single experiment"):
        read_openephys(oe_legacy.folder, stream_id="CH", block_index=1)


def test_format_detection_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(FileNotFoundError, match="structure.oebin.*continuous"):
        read_openephys(tmp_path)
    with pytest.raises(FileNotFoundError, match="folder_path"):
        read_openephys(tmp_path / "missing")


def test_oebin_streams_without_units_default_to_microvolts(oe_binary, tmp_path):
    folder = tmp_path / "no_units"
    shutil.copytree(oe_binary.folder, folder)
    for oebin in folder.rglob("structure.oebin"):
        structure = json.loads(oebin.read_text())
        for stream in structure["continuous"]:
            for channel in stream["channels"]:
                channel["units"] = ""
        oebin.write_text(json.dumps(structure))
    rec = read_openephys(folder, stream_id="1")
    np.testing.assert_allclose(rec.get_channel_gains(), 0.195)
