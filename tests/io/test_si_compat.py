"""Compatibility both ways with the reference SpikeInterface 0.105.3, run as ONE subprocess.

The subprocess (1) writes binary / zarr recordings, numpy_folder and npz sortings and npy snippets with
SpikeInterface, dumping what SpikeInterface sees in them, and (2) loads the folders sicore wrote and
dumps what SpikeInterface sees there. The tests compare both dumps with sicore.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from sicore.io import load_extractor, save_recording, save_snippets, save_sorting
from sicore.numpy_objects import NumpyRecording, NumpySorting
from sicore.snippets import NumpySnippets

from io_helpers import make_rich_recording

SI_SCRIPT = r'''
import json, sys, warnings
from pathlib import Path
import numpy as np
import probeinterface as pi
import spikeinterface.core as si
from spikeinterface.core import NpzSortingExtractor, NpzFolderSorting
warnings.simplefilter("ignore")
dump = Path("dump"); dump.mkdir()
meta = {}

def dump_recording(name, rec):
    d = {"channel_ids": rec.channel_ids.tolist(), "num_segments": rec.get_num_segments(),
         "properties": sorted(rec.get_property_keys()), "annotations": rec._annotations,
         "has_time_vector": [bool(rec.has_time_vector(i)) for i in range(rec.get_num_segments())],
         "dtype": rec.get_dtype().str, "sampling_frequency": rec.sampling_frequency}
    for i in range(rec.get_num_segments()):
        np.save(dump / f"{name}__traces{i}.npy", rec.get_traces(segment_index=i))
        np.save(dump / f"{name}__times{i}.npy", rec.get_times(segment_index=i))
    for key in rec.get_property_keys():
        np.save(dump / f"{name}__prop_{key}.npy", rec.get_property(key))
    if rec.has_probe():
        probes = rec.get_probegroup().probes
        d["probe_annotations"] = [p.annotations for p in probes]
        d["contact_ids"] = [list(map(str, p.contact_ids)) for p in probes]
        np.save(dump / f"{name}__positions.npy", np.concatenate([p.contact_positions for p in probes]))
        np.save(dump / f"{name}__contour.npy", np.asarray(probes[0].probe_planar_contour))
        np.save(dump / f"{name}__locations.npy", rec.get_channel_locations())
    meta[name] = d

def dump_sorting(name, sorting):
    np.save(dump / f"{name}__spikes.npy", sorting.to_spike_vector())
    meta[name] = {"unit_ids": sorting.unit_ids.tolist(), "properties": sorted(sorting.get_property_keys()),
                  "annotations": sorting._annotations, "num_segments": sorting.get_num_segments(),
                  "sampling_frequency": sorting.sampling_frequency}
    for key in sorting.get_property_keys():
        np.save(dump / f"{name}__prop_{key}.npy", sorting.get_property(key))

# ---- (1) SpikeInterface writes
rng = np.random.default_rng(11)
traces = [rng.integers(-2000, 2000, (3000, 5)).astype("int16"), rng.integers(-2000, 2000, (1100, 5)).astype("int16")]
rec = si.NumpyRecording(traces, sampling_frequency=25000.0, channel_ids=["e0", "e1", "e2", "e3", "e4"])
rec.set_channel_gains(np.linspace(0.2, 0.6, 5)); rec.set_channel_offsets(np.arange(5.0))
probe = pi.generate_linear_probe(num_elec=5, ypitch=30); probe.annotate(manufacturer="si-lab")
probe.set_device_channel_indices([4, 3, 2, 1, 0])  # wiring reverses the contacts
rec.set_probe(probe)
rec.set_property("quality", np.array(["a", "b", "c", "d", "e"]))
rec.set_property("flag", np.array([1, 0, 1, 0, 1], bool))
rec.set_property("vec", np.arange(10.0).reshape(5, 2))
rec.annotate(session={"id": 3, "tags": ["x", "y"]}, is_filtered=True)
rec_times = rec.clone()
rec_times.set_times(2.0 + np.arange(3000) / 25000.0, segment_index=0)
rec_times.set_times(9.0 + np.arange(1100) / 25000.0 + np.r_[np.zeros(500), np.full(600, 0.1)], segment_index=1)
rec_tstart = si.NumpyRecording(traces, sampling_frequency=25000.0, t_starts=[1.5, 4.0])
job = dict(chunk_size=1000, progress_bar=False)
dump_recording("si_bin", rec_times.save(folder="si/bin", **job))
dump_recording("si_zarr", rec_times.save(folder="si/rec", format="zarr", **job))
dump_recording("si_tstart", rec_tstart.save(folder="si/tstart", **job))
dump_recording("si_tstart_zarr", rec_tstart.save(folder="si/tstart", format="zarr", **job))
sorting = si.NumpySorting.from_samples_and_labels(
    [np.array([5, 3, 9, 9, 40, 41]), np.array([1, 2, 2])],
    [np.array(["u1", "u0", "u1", "u0", "u2", "u1"]), np.array(["u2", "u2", "u0"])], 25000.0)
sorting.set_property("snr", np.array([1.5, 2.5, 3.5])); sorting.annotate(name="si-sorting")
dump_sorting("si_numpy_folder", sorting.save(folder="si/sorting"))
NpzSortingExtractor.write_sorting(sorting, "si/sorting.npz")
NpzFolderSorting.write_sorting(sorting, "si/npz_folder")
dump_sorting("si_npz", si.read_npz_sorting("si/sorting.npz"))
snippets = si.NumpySnippets([rng.integers(-9, 9, (4, 6, 5)).astype("int16")], [np.array([3, 8, 20, 33])],
                            25000.0, nbefore=2, channel_ids=["e0", "e1", "e2", "e3", "e4"])
snippets.save(folder="si/snippets")

# ---- (2) SpikeInterface loads sicore's folders
for name in ["binary", "zarr", "zarr_lzma", "tstart"]:
    path = {"zarr": "sicore/rec.zarr", "zarr_lzma": "sicore/lzma.zarr", "tstart": "sicore/tstart"}
    path = path.get(name, "sicore/rec")
    dump_recording(f"sicore_{name}", si.load(path))
dump_sorting("sicore_npz", si.load("sicore/sorting_npz"))
dump_sorting("sicore_numpy_folder", si.load("sicore/sorting_numpy"))
dump_sorting("sicore_npz_file", si.read_npz_sorting("sicore/sorting_npz/sorting_cached.npz"))
sn = si.load("sicore/snippets_npy")
np.save(dump / "sicore_snippets__snippets.npy", sn.get_snippets())
np.save(dump / "sicore_snippets__frames.npy", sn.get_frames())
meta["sicore_snippets"] = {"nbefore": sn.nbefore, "channel_ids": sn.channel_ids.tolist(),
                           "locations": sn.get_channel_locations().tolist()}
(dump / "meta.json").write_text(json.dumps(meta, default=str))
'''


@pytest.fixture(scope="module")
def world(tmp_path_factory, reference_python):
    """sicore writes its folders, then one SpikeInterface subprocess writes its own and reads sicore's."""
    root = tmp_path_factory.mktemp("si_compat")
    rng = np.random.default_rng(7)
    traces = [rng.integers(-3000, 3000, size=(2500, 6)).astype("int16"),
              rng.integers(-3000, 3000, size=(1300, 6)).astype("int16")]
    rec = make_rich_recording(traces)
    job = dict(chunk_size=700, progress_bar=False)
    from numcodecs import LZMA, Delta

    save_recording(rec, folder=root / "sicore" / "rec", **job)
    save_recording(rec, folder=root / "sicore" / "rec", format="zarr", **job)
    save_recording(rec, folder=root / "sicore" / "lzma", format="zarr", compressor=LZMA(),
                   filters=[Delta(dtype="int16")], **job)
    tstart = NumpyRecording([t[:1000] for t in traces], sampling_frequency=20000.0, t_starts=[3.25, 6.5])
    save_recording(tstart, folder=root / "sicore" / "tstart", **job)
    sorting = NumpySorting.from_times_labels([np.array([4, 2, 2, 30]), np.array([7])],
                                             [np.array([10, 20, 10, 30]), np.array([20])], 20000.0)
    sorting.set_property("snr", np.array([1.0, 2.0, 3.0]))
    sorting.annotate(name="sicore-sorting")
    save_sorting(sorting, folder=root / "sicore" / "sorting_npz")
    save_sorting(sorting, folder=root / "sicore" / "sorting_numpy", format="numpy_folder")
    snippets = NumpySnippets([rng.integers(-50, 50, (5, 8, 6)).astype("int16")], [np.array([1, 5, 9, 14, 22])],
                             20000.0, nbefore=3, channel_ids=rec.channel_ids)
    snippets.set_probegroup(rec.get_probegroup(), in_place=True)
    save_snippets(snippets, folder=root / "sicore" / "snippets_npy", format="npy")
    result = subprocess.run([reference_python, "-c", SI_SCRIPT], cwd=root, capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"reference SpikeInterface script failed:\n{result.stderr[-4000:]}")
    meta = json.loads((root / "dump" / "meta.json").read_text())
    return {"root": root, "meta": meta, "rec": rec, "traces": traces, "sorting": sorting, "snippets": snippets,
            "tstart": tstart}


def _canonical(spikes):
    return spikes[np.lexsort((spikes["unit_index"], spikes["sample_index"], spikes["segment_index"]))]


def _dumped(world, name, key):
    return np.load(world["root"] / "dump" / f"{name}__{key}.npy", allow_pickle=False)


# ------------------------------------------------------- SpikeInterface -> sicore
@pytest.mark.parametrize(("name", "folder"), [("si_bin", "si/bin"), ("si_zarr", "si/rec.zarr"),
                                              ("si_tstart", "si/tstart"), ("si_tstart_zarr", "si/tstart.zarr")])
def test_sicore_loads_spikeinterface_recordings(world, name, folder):
    meta = world["meta"][name]
    rec = load_extractor(world["root"] / folder)
    assert rec.channel_ids.tolist() == meta["channel_ids"]
    assert rec.get_dtype().str == meta["dtype"] and rec.sampling_frequency == meta["sampling_frequency"]
    for i in range(meta["num_segments"]):
        np.testing.assert_array_equal(rec.get_traces(segment_index=i), _dumped(world, name, f"traces{i}"))
        np.testing.assert_array_equal(rec.get_times(i), _dumped(world, name, f"times{i}"))
        assert rec.has_time_vector(i) == meta["has_time_vector"][i]
    for key in meta["properties"]:
        np.testing.assert_array_equal(rec.get_property(key), _dumped(world, name, f"prop_{key}"), err_msg=key)
    for key, value in meta["annotations"].items():
        assert rec.get_annotation(key) == value, key
    if "probe_annotations" in meta:
        probes = rec.get_probegroup().probes
        assert [p.annotations for p in probes] == meta["probe_annotations"]
        assert [list(map(str, p.contact_ids)) for p in probes] == meta["contact_ids"]
        np.testing.assert_array_equal(np.concatenate([p.contact_positions for p in probes]),
                                      _dumped(world, name, "positions"))
        np.testing.assert_array_equal(probes[0].probe_planar_contour, _dumped(world, name, "contour"))
        np.testing.assert_array_equal(rec.get_channel_locations(), _dumped(world, name, "locations"))


@pytest.mark.parametrize(("name", "path"), [("si_numpy_folder", "si/sorting"), ("si_npz", "si/sorting.npz"),
                                            ("si_npz", "si/npz_folder")])
def test_sicore_loads_spikeinterface_sortings(world, name, path):
    meta = world["meta"][name]
    sorting = load_extractor(world["root"] / path)
    assert sorting.unit_ids.tolist() == meta["unit_ids"]
    assert sorting.get_num_segments() == meta["num_segments"]
    # SpikeInterface keeps simultaneous spikes in input order; sicore orders them by unit index
    np.testing.assert_array_equal(sorting.to_spike_vector(), _canonical(_dumped(world, name, "spikes")))
    if path == "si/sorting":
        np.testing.assert_array_equal(sorting.get_property("snr"), [1.5, 2.5, 3.5])
        assert sorting.get_annotation("name") == "si-sorting"


def test_sicore_loads_spikeinterface_snippets(world):
    snippets = load_extractor(world["root"] / "si" / "snippets")
    assert snippets.nbefore == 2 and snippets.channel_ids.tolist() == ["e0", "e1", "e2", "e3", "e4"]
    np.testing.assert_array_equal(snippets.get_frames(), [3, 8, 20, 33])
    assert snippets.get_snippets().shape == (4, 6, 5)


# ------------------------------------------------------- sicore -> SpikeInterface
@pytest.mark.parametrize("name", ["binary", "zarr", "zarr_lzma"])
def test_spikeinterface_loads_sicore_recordings(world, name):
    meta, rec = world["meta"][f"sicore_{name}"], world["rec"]
    key = f"sicore_{name}"
    assert meta["channel_ids"] == rec.channel_ids.tolist()
    for i in range(rec.get_num_segments()):
        np.testing.assert_array_equal(_dumped(world, key, f"traces{i}"), world["traces"][i])
        np.testing.assert_array_equal(_dumped(world, key, f"times{i}"), rec.get_times(i))
    expected_properties = set(rec.get_property_keys()) - {"contact_vector", "location"}
    assert set(meta["properties"]) == expected_properties
    for prop in expected_properties:
        np.testing.assert_array_equal(_dumped(world, key, f"prop_{prop}"), rec.get_property(prop), err_msg=prop)
    for annotation in ("experiment", "depth_um", "is_filtered"):
        assert meta["annotations"][annotation] == rec.get_annotation(annotation)
    probe = rec.get_probe()
    assert meta["probe_annotations"][0] == probe.annotations
    assert meta["contact_ids"][0] == list(map(str, probe.contact_ids))
    np.testing.assert_array_equal(_dumped(world, key, "positions"), probe.contact_positions)
    np.testing.assert_array_equal(_dumped(world, key, "contour"), probe.probe_planar_contour)
    np.testing.assert_array_equal(_dumped(world, key, "locations"), rec.get_channel_locations())


def test_spikeinterface_loads_sicore_start_times(world):
    tstart = world["tstart"]
    assert world["meta"]["sicore_tstart"]["has_time_vector"] == [False, False]
    for i in range(2):
        np.testing.assert_array_equal(_dumped(world, "sicore_tstart", f"times{i}"), tstart.get_times(i))
        np.testing.assert_array_equal(_dumped(world, "sicore_tstart", f"traces{i}"), tstart.get_traces(segment_index=i))


@pytest.mark.parametrize("name", ["sicore_npz", "sicore_numpy_folder", "sicore_npz_file"])
def test_spikeinterface_loads_sicore_sortings(world, name):
    meta, sorting = world["meta"][name], world["sorting"]
    assert meta["unit_ids"] == sorting.unit_ids.tolist()
    np.testing.assert_array_equal(_canonical(_dumped(world, name, "spikes")), sorting.to_spike_vector())
    if name != "sicore_npz_file":
        np.testing.assert_array_equal(_dumped(world, name, "prop_snr"), [1.0, 2.0, 3.0])
        assert meta["annotations"]["name"] == "sicore-sorting"


def test_spikeinterface_loads_sicore_snippets(world):
    snippets, meta = world["snippets"], world["meta"]["sicore_snippets"]
    np.testing.assert_array_equal(_dumped(world, "sicore_snippets", "snippets"), snippets.get_snippets())
    np.testing.assert_array_equal(_dumped(world, "sicore_snippets", "frames"), snippets.get_frames())
    assert meta["nbefore"] == 3 and meta["channel_ids"] == snippets.channel_ids.tolist()
    np.testing.assert_array_equal(meta["locations"], snippets.get_channel_locations())
