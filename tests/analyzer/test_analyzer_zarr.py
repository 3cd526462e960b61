"""SortingAnalyzer as zarr (format v2): round trip, identical results across formats, children deleted
in the store, incomplete extensions reported, save_as between formats."""

import json
import shutil

import numpy as np
import pytest

from sicore.analyzer import create_sorting_analyzer, load_sorting_analyzer
from sicore.io.binary_folder import write_binary_folder

from analyzer_data import make_pair

QUIET = {"progress_bar": False}
NOISE = {"noise_levels": {"random_slices_kwargs": {"chunk_size": 500, "seed": 1}}}
ALL = ["random_spikes", "waveforms", "templates", "noise_levels"]


def _data(analyzer):
    return {name: {k: np.array(v) for k, v in analyzer.get_extension(name).data.items()}
            for name in analyzer.get_loaded_extension_names()}


@pytest.fixture
def recording_on_disk(tmp_path):
    recording, sorting, *_ = make_pair()
    return write_binary_folder(recording, tmp_path / "rec", progress_bar=False), sorting


def test_formats_give_identical_results(tmp_path, recording_on_disk):
    recording, sorting = recording_on_disk
    results = []
    for fmt, folder in (("memory", None), ("binary_folder", tmp_path / "an"), ("zarr", tmp_path / "an.zarr")):
        analyzer = create_sorting_analyzer(sorting, recording, format=fmt, folder=folder, radius_um=30, **QUIET)
        analyzer.compute(ALL, extension_params={**NOISE, "random_spikes": {"seed": 2}}, **QUIET)
        results.append(_data(analyzer if fmt == "memory" else load_sorting_analyzer(folder)))
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for name in other:
            for key in other[name]:
                assert other[name][key].dtype == results[0][name][key].dtype
                np.testing.assert_array_equal(other[name][key], results[0][name][key])


def test_zarr_store_layout_and_load(tmp_path, recording_on_disk):
    recording, sorting = recording_on_disk
    analyzer = create_sorting_analyzer(sorting, recording, format="zarr", folder=tmp_path / "an.zarr", radius_um=30)
    analyzer.compute(ALL, extension_params=NOISE, **QUIET)
    store = tmp_path / "an.zarr"
    assert json.loads((store / ".zgroup").read_text()) == {"zarr_format": 2}
    attrs = json.loads((store / ".zattrs").read_text())
    assert attrs["settings"] == {"return_in_uV": True, "peak_sign": "both", "peak_mode": "extremum"}
    assert not (store / ".zmetadata").exists()  # each extension write touches only its own group
    ext_attrs = json.loads((store / "extensions" / "templates" / ".zattrs").read_text())
    assert ext_attrs["run_info"]["run_completed"] and ext_attrs["params"]["operators"] == ["average", "std"]
    loaded = load_sorting_analyzer(store)
    assert repr(loaded).splitlines()[0] == (
        "SortingAnalyzer: 6 channels - 4 units - 2 segments - zarr - sparse - has recording")
    assert loaded.get_loaded_extension_names() == ALL
    np.testing.assert_array_equal(loaded.sorting.to_spike_vector(), sorting.to_spike_vector())
    np.testing.assert_array_equal(loaded.sparsity.mask, analyzer.sparsity.mask)
    # recordingless when the recording is gone
    shutil.rmtree(tmp_path / "rec")
    with pytest.warns(UserWarning, match="recording"):
        recordingless = load_sorting_analyzer(store)
    assert not recordingless.has_recording()
    np.testing.assert_array_equal(recordingless.get_channel_locations(), make_pair()[0].get_channel_locations())


def test_zarr_children_deleted_and_incomplete(tmp_path, recording_on_disk):
    recording, sorting = recording_on_disk
    store = tmp_path / "an.zarr"
    analyzer = create_sorting_analyzer(sorting, recording, format="zarr", folder=store, sparse=False)
    analyzer.compute(ALL, extension_params=NOISE, **QUIET)
    analyzer.compute("random_spikes", seed=4)
    assert sorted(p.name for p in (store / "extensions").iterdir() if not p.name.startswith(".")) == [
        "noise_levels", "random_spikes"]
    analyzer.compute("waveforms", **QUIET)
    attrs_file = store / "extensions" / "waveforms" / ".zattrs"
    attrs = json.loads(attrs_file.read_text())
    del attrs["run_info"]
    attrs_file.write_text(json.dumps(attrs))
    with pytest.warns(UserWarning, match="incomplete"):
        loaded = load_sorting_analyzer(store)
    assert loaded.get_loaded_extension_names() == ["random_spikes", "noise_levels"]


def test_save_as_between_formats(tmp_path, pair):
    recording, sorting, *_ = pair
    memory = create_sorting_analyzer(sorting, recording, radius_um=30, **QUIET)
    memory.compute(ALL, extension_params=NOISE, **QUIET)
    as_zarr = memory.save_as(folder=tmp_path / "copy.zarr", format="zarr")
    as_binary = load_sorting_analyzer(tmp_path / "copy.zarr").save_as(folder=tmp_path / "copy", format="binary_folder")
    expected = _data(memory)
    for analyzer in (as_zarr, load_sorting_analyzer(tmp_path / "copy.zarr"), load_sorting_analyzer(tmp_path / "copy"),
                     as_binary):
        got = _data(analyzer)
        for name in expected:
            for key in expected[name]:
                np.testing.assert_array_equal(got[name][key], expected[name][key])
    # in-memory recording: no provenance, so the saved analyzers are recordingless
    assert not (tmp_path / "copy" / "recording.json").exists()
    assert not load_sorting_analyzer(tmp_path / "copy").has_recording()
