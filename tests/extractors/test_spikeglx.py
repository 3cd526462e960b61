"""read_spikeglx on a small real SpikeGLX folder (NP1.0, two gates, AP + LF streams)."""

from __future__ import annotations

import pickle

import numpy as np
import probeinterface as pi
import pytest

from sicore.base import BaseExtractor
from sicore.extractors import SpikeGLXRecordingExtractor, read_spikeglx
from sicore.extractors.neo_recording import NeoRecordingSegment

from extractor_files import NP1_AP_UV_PER_BIT, NP1_LF_UV_PER_BIT


def test_ap_stream_traces_gains_and_segments(sglx):
    rec = read_spikeglx(sglx.folder, stream_id="imec0.ap")
    assert rec.get_num_segments() == 2
    assert rec.sampling_frequency == 30000.0
    assert rec.get_dtype() == np.int16
    assert rec.channel_ids.tolist() == [f"imec0.ap#AP{i}" for i in range(8)]
    assert rec.get_property("channel_name").tolist() == [f"AP{i}" for i in range(8)]
    for segment_index, written in enumerate(sglx.ap):
        assert rec.get_num_samples(segment_index) == written.shape[0]
        # the sync channel (last column) is its own stream: not part of the AP channels
        np.testing.assert_array_equal(rec.get_traces(segment_index=segment_index), written[:, :8])
        scaled = rec.get_traces(segment_index=segment_index, return_scaled=True)
        np.testing.assert_allclose(scaled, written[:, :8] * NP1_AP_UV_PER_BIT, rtol=1e-6)
        # t_start is firstSample / rate
        assert rec.get_start_time(segment_index) == pytest.approx(sglx.first_samples[segment_index] / 30000.0)
    np.testing.assert_allclose(rec.get_channel_gains(), NP1_AP_UV_PER_BIT)
    np.testing.assert_array_equal(rec.get_channel_offsets(), 0.0)
    assert rec.get_property("physical_unit").tolist() == ["uV"] * 8


def test_chunks_and_channel_subsets_read_lazily(sglx):
    rec = read_spikeglx(sglx.folder, stream_id="imec0.ap")
    written = sglx.ap[1]
    ids = rec.channel_ids[[5, 1, 6]]
    chunk = rec.get_traces(segment_index=1, start_frame=123, end_frame=1456, channel_ids=ids)
    np.testing.assert_array_equal(chunk, written[123:1456, [5, 1, 6]])
    assert rec.get_traces(segment_index=0, start_frame=10, end_frame=10).shape == (0, 8)
    # segments read from neo on demand: nothing is held in memory
    assert all(isinstance(s, NeoRecordingSegment) for s in rec._recording_segments)
    assert not any(isinstance(v, np.ndarray) and v.size > 100 for s in rec._recording_segments
                   for v in vars(s).values())


def test_lf_stream(sglx):
    rec = read_spikeglx(sglx.folder, stream_name="imec0.lf")
    assert rec.sampling_frequency == 2500.0
    np.testing.assert_array_equal(rec.get_traces(segment_index=0), sglx.lf[0][:, :8])
    np.testing.assert_allclose(rec.get_channel_gains(), NP1_LF_UV_PER_BIT)
    assert rec.get_annotation("saturation_threshold_uV") == pytest.approx(0.6 / 250 * 1e6)


def test_probe_matches_probeinterface_and_np1_geometry(sglx):
    rec = read_spikeglx(sglx.folder, stream_id="imec0.ap")
    assert rec.has_probe()
    expected = pi.read_spikeglx(sglx.ap_meta[0]).contact_positions
    locations = rec.get_channel_locations()
    np.testing.assert_array_equal(locations, expected)
    # NP1.0: two staggered columns 32 µm apart, rows every 20 µm; channels 0..7 are electrodes 0..7
    assert np.all(np.diff(locations[::2, 1]) == 20) and np.all(np.abs(np.diff(locations[:, 0]))[::2] == 32)
    assert rec.get_channel_groups().tolist() == [0] * 8
    probe = rec.get_probe()
    assert probe.annotations["part_number"] == "NP1000"
    assert rec.get_annotation("saturation_threshold_uV") == pytest.approx(0.6 / 500 * 1e6)
    # channels of one ADC are sampled one after the other: 13 cycles per NP1.0 sample period
    np.testing.assert_allclose(rec.get_property("inter_sample_shift"), np.array([0, 0, 1, 1, 2, 2, 3, 3]) / 13)


def test_sync_channel(sglx):
    rec = read_spikeglx(sglx.folder, stream_id="imec0.ap", load_sync_channel=True)
    assert rec.channel_ids[-1] == "imec0.ap#SY0" and rec.get_num_channels() == 9
    np.testing.assert_array_equal(rec.get_traces(segment_index=1), sglx.ap[1])
    picked = rec.get_traces(segment_index=0, start_frame=7, end_frame=99, channel_ids=[rec.channel_ids[8], "imec0.ap#AP2"])
    np.testing.assert_array_equal(picked, sglx.ap[0][7:99, [8, 2]])
    assert not rec.has_probe()  # the sync channel has no contact
    sync_only = read_spikeglx(sglx.folder, stream_id="imec0.ap-SYNC")
    np.testing.assert_array_equal(sync_only.get_traces(segment_index=0), sglx.ap[0][:, 8:])


def test_names_as_ids(sglx):
    rec = read_spikeglx(sglx.folder, stream_id="imec0.ap", use_names_as_ids=True)
    assert rec.channel_ids.tolist() == [f"AP{i}" for i in range(8)]


def test_provenance_rebuilds_from_the_users_arguments(sglx):
    rec = read_spikeglx(sglx.folder, stream_name="imec0.ap")
    d = rec.to_dict()
    assert d["kwargs"] == {"folder_path": str(sglx.folder), "stream_id": None, "stream_name": "imec0.ap",
                           "load_sync_channel": False, "use_names_as_ids": False}
    for again in (BaseExtractor.from_dict(d), pickle.loads(pickle.dumps(rec))):
        assert isinstance(again, SpikeGLXRecordingExtractor)
        np.testing.assert_array_equal(again.get_traces(segment_index=1, end_frame=50), sglx.ap[1][:50, :8])
        np.testing.assert_array_equal(again.get_channel_locations(), rec.get_channel_locations())
    relative = rec.to_dict(relative_to=sglx.folder.parent)
    assert relative["kwargs"]["folder_path"] == "session"
    assert BaseExtractor.from_dict(relative, base_folder=sglx.folder.parent).get_num_channels() == 8


def test_stream_errors_list_the_streams(sglx, tmp_path):
    with pytest.raises(ValueError, match=r"several streams.*imec0\.ap.*imec0\.lf"):
        read_spikeglx(sglx.folder)
    with pytest.raises(ValueError, match=r"stream_id 'imec9\.ap' is not a stream.*imec0\.ap-SYNC"):
        read_spikeglx(sglx.folder, stream_id="imec9.ap")
    with pytest.raises(ValueError, match="stream_name 'bad'"):
        read_spikeglx(sglx.folder, stream_name="bad")
    with pytest.raises(ValueError, match="not stream_name"):
        read_spikeglx(sglx.folder, stream_id="imec0.ap", stream_name="imec0.lf")
    with pytest.raises(FileNotFoundError, match="folder_path"):
        read_spikeglx(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"\.meta and \.bin"):
        read_spikeglx(tmp_path)


def test_get_streams(sglx):
    names, ids = SpikeGLXRecordingExtractor.get_streams(sglx.folder)
    assert ids == ["imec0.ap", "imec0.lf", "imec0.ap-SYNC", "imec0.lf-SYNC"] and names == ids


def test_unreadable_probe_metadata_warns_but_reads(sglx, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(sglx.folder, folder)
    for meta in folder.rglob("*.ap.meta"):
        text = meta.read_text().replace("~imroTbl=(0,384)(0 0 0", "~imroTbl=(0,384)(0 9 0")  # bank 9 does not exist
        meta.write_text(text)
    with pytest.warns(UserWarning, match="could not build the probe"):
        rec = read_spikeglx(folder, stream_id="imec0.ap")
    assert not rec.has_probe()
    np.testing.assert_array_equal(rec.get_traces(segment_index=0), sglx.ap[0][:, :8])
