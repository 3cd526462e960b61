"""sicore's readers against SpikeInterface 0.105.3 reading the same files, in ONE reference subprocess.

Compared: channel/unit ids, traces, gains, t_starts, probe locations, spike trains and unit properties.
Known differences (sicore is right, SpikeInterface/neo 0.14 are not) are left out and tested elsewhere:
the start time of Open Ephys ADC streams and the channel order of legacy Open Ephys segments >= 2.
MEArec is not compared: the reference environment has neither MEArec nor h5py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas
import pytest

from sicore.extractors import read_kilosort, read_openephys, read_phy, read_spikeglx

from reference_env import run_reference

SI_SCRIPT = r'''
import json, sys, warnings
from pathlib import Path
import numpy as np
warnings.simplefilter("ignore")
try:
    import pandas  # SpikeInterface's Phy reader needs pandas, which the reference env lacks
except ImportError:
    sys.path.append(sys.argv[-1])
import spikeinterface.extractors as se

paths = json.loads(Path("paths.json").read_text())
dump = Path("dump"); dump.mkdir()
meta = {}

def recording(name, rec):
    rec.dump_to_json(f"{name}.json")  # SpikeInterface provenance, loaded by sicore
    d = {"channel_ids": rec.channel_ids.tolist(), "fs": rec.sampling_frequency,
         "t_starts": [rec.get_start_time(i) for i in range(rec.get_num_segments())],
         "gains": rec.get_channel_gains().tolist(), "offsets": rec.get_channel_offsets().tolist(),
         "annotations": {k: rec.get_annotation(k) for k in ("saturation_threshold_uV",) if k in rec._annotations}}
    for i in range(rec.get_num_segments()):
        np.save(dump / f"{name}_traces{i}.npy", rec.get_traces(segment_index=i))
    for key in ("channel_name", "inter_sample_shift", "physical_unit", "gain_to_physical_unit", "group"):
        if rec.get_property(key) is not None:
            d[key] = rec.get_property(key).tolist()
    if rec.has_probe():
        np.save(dump / f"{name}_locations.npy", rec.get_channel_locations())
    meta[name] = d

def sorting(name, s):
    s.dump_to_json(f"{name}.json")
    meta[name] = {"unit_ids": s.unit_ids.tolist(), "fs": s.sampling_frequency,
                  "trains": {str(u): s.get_unit_spike_train(u).tolist() for u in s.unit_ids},
                  "properties": {k: s.get_property(k).tolist() for k in s.get_property_keys()}}

recording("sglx_ap", se.read_spikeglx(paths["sglx"], stream_id="imec0.ap"))
recording("sglx_lf", se.read_spikeglx(paths["sglx"], stream_id="imec0.lf"))
recording("oe_np", se.read_openephys(paths["oe"], stream_id="0"))
recording("oe_fpga", se.read_openephys(paths["oe"], stream_id="1"))
recording("oe_adc", se.read_openephys(paths["oe"], stream_id="3"))
recording("legacy_ch", se.read_openephys(paths["legacy"], stream_id="CH"))
sorting("phy_tables", se.read_phy(paths["phy_tables"]))
sorting("phy_info", se.read_phy(paths["phy_info"]))
sorting("phy_excluded", se.read_phy(paths["phy_info"], exclude_cluster_groups=["noise", "mua"]))
sorting("phy_minimal", se.read_phy(paths["phy_info"], load_all_cluster_properties=False))
sorting("ks", se.read_kilosort(paths["phy_info"]))
sorting("ks_good", se.read_kilosort(paths["phy_tables"], keep_good_only=True))
Path("meta.json").write_text(json.dumps(meta))
'''


@pytest.fixture(scope="module")
def reference(sglx, oe_binary, oe_legacy, phy, tmp_path_factory):
    """What SpikeInterface 0.105.3 reads from the session's files (metadata dict and dump folder)."""
    cwd = tmp_path_factory.mktemp("si_reference")
    paths = {"sglx": str(sglx.folder), "oe": str(oe_binary.folder), "legacy": str(oe_legacy.folder),
             "phy_tables": str(phy.tables), "phy_info": str(phy.info)}
    (cwd / "paths.json").write_text(json.dumps(paths))
    pandas_dir = str(Path(pandas.__file__).parents[1])
    run_reference(SI_SCRIPT.replace("sys.argv[-1]", repr(pandas_dir)), cwd=cwd)
    return json.loads((cwd / "meta.json").read_text()), cwd / "dump"


@pytest.mark.parametrize("name", ["sglx_ap", "oe_np", "oe_adc", "legacy_ch", "phy_info", "phy_excluded", "ks_good"])
def test_spikeinterface_provenance_loads_in_sicore(reference, name):
    from sicore.io import load_extractor

    meta, dump = reference
    d = json.loads((dump.parent / f"{name}.json").read_text())
    assert d["class"].startswith("spikeinterface.extractors.")
    obj = load_extractor(d)
    if "unit_ids" in meta[name]:
        assert obj.unit_ids.tolist() == meta[name]["unit_ids"]
        _compare_sorting(obj, name, reference)
    else:
        assert obj.channel_ids.tolist() == meta[name]["channel_ids"]
        np.testing.assert_array_equal(obj.get_traces(segment_index=0), np.load(dump / f"{name}_traces0.npy"))


def _compare_recording(rec, name, reference, segments=None, check_t_starts=True):
    meta, dump = reference
    ref = meta[name]
    assert rec.channel_ids.tolist() == ref["channel_ids"]
    assert rec.sampling_frequency == ref["fs"]
    np.testing.assert_allclose(rec.get_channel_gains(), ref["gains"])
    np.testing.assert_allclose(rec.get_channel_offsets(), ref["offsets"])
    if check_t_starts:
        assert [rec.get_start_time(i) for i in range(rec.get_num_segments())] == pytest.approx(ref["t_starts"])
    for i in segments if segments is not None else range(rec.get_num_segments()):
        np.testing.assert_array_equal(rec.get_traces(segment_index=i), np.load(dump / f"{name}_traces{i}.npy"))
    for key in ("channel_name", "physical_unit", "group"):
        if key in ref:
            assert rec.get_property(key).tolist() == ref[key], key
    for key in ("inter_sample_shift", "gain_to_physical_unit"):
        if key in ref:
            np.testing.assert_allclose(rec.get_property(key), ref[key], err_msg=key)
    for key, value in ref["annotations"].items():
        assert rec.get_annotation(key) == pytest.approx(value)
    locations = dump / f"{name}_locations.npy"
    assert rec.has_probe() == locations.is_file()
    if rec.has_probe():
        np.testing.assert_array_equal(rec.get_channel_locations(), np.load(locations))


def test_spikeglx_matches_spikeinterface(sglx, reference):
    _compare_recording(read_spikeglx(sglx.folder, stream_id="imec0.ap"), "sglx_ap", reference)
    _compare_recording(read_spikeglx(sglx.folder, stream_id="imec0.lf"), "sglx_lf", reference)


def test_openephys_binary_matches_spikeinterface(oe_binary, reference):
    _compare_recording(read_openephys(oe_binary.folder, stream_id="0"), "oe_np", reference)
    _compare_recording(read_openephys(oe_binary.folder, stream_id="1"), "oe_fpga", reference)
    # ADC channels: same traces and gains; SpikeInterface gives them the Neuropixels stream's start time
    _compare_recording(read_openephys(oe_binary.folder, stream_id="3"), "oe_adc", reference, check_t_starts=False)


def test_openephys_legacy_matches_spikeinterface(oe_legacy, reference):
    # segment 2 differs: neo 0.14 returns the AUX channel's samples in the CH stream there (see test_openephys)
    _compare_recording(read_openephys(oe_legacy.folder, stream_id="CH"), "legacy_ch", reference, segments=[0])


def _compare_sorting(sorting, name, reference):
    ref = reference[0][name]
    assert sorting.unit_ids.tolist() == ref["unit_ids"]
    assert sorting.sampling_frequency == ref["fs"]
    for unit_id in sorting.unit_ids.tolist():
        assert sorting.get_unit_spike_train(unit_id).tolist() == ref["trains"][str(unit_id)]
    assert set(sorting.get_property_keys()) == set(ref["properties"])
    for key, values in ref["properties"].items():
        ours = sorting.get_property(key)
        if ours.dtype.kind in "fiu":
            np.testing.assert_allclose(ours, values, err_msg=key)
        else:
            assert ours.tolist() == values, key


def test_phy_and_kilosort_match_spikeinterface(phy, reference):
    _compare_sorting(read_phy(phy.tables), "phy_tables", reference)
    _compare_sorting(read_phy(phy.info), "phy_info", reference)
    _compare_sorting(read_phy(phy.info, exclude_cluster_groups=["noise", "mua"]), "phy_excluded", reference)
    _compare_sorting(read_phy(phy.info, load_all_cluster_properties=False), "phy_minimal", reference)
    _compare_sorting(read_kilosort(phy.info), "ks", reference)
    _compare_sorting(read_kilosort(phy.tables, keep_good_only=True), "ks_good", reference)
