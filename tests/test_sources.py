"""sicore.sources: source dicts checked key by key, then opened, on small real files of every format."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import sicore
from sicore.sources import (
    RECORDING_SOURCES,
    SORTING_SOURCES,
    SourceError,
    check_recording_source,
    check_sorting_source,
    load_recording,
    load_source_argument,
    load_sorting,
    source_nbytes,
    source_paths,
)

sys.path.insert(0, str(Path(__file__).parent / "workflow"))
import source_builders as sb  # noqa: E402

SCHEMA = Path(__file__).parents[1] / "config" / "schema.yaml"


@pytest.fixture(scope="module")
def gt():
    return sb.ground_truth(seed=7, duration=1.0, num_channels=8, num_units=4)


def _same_spikes(a, b):
    samples_a, units_a = sb.spike_vector(a)
    samples_b, units_b = sb.spike_vector(b)
    np.testing.assert_array_equal(samples_a, samples_b)
    assert [str(u) for u in units_a] == [str(u) for u in units_b]


# ---------------------------------------------------------------------------- checks
def test_defaults_are_filled_and_values_normalised():
    spec = check_recording_source({"type": "generated", "num_channels": 4})
    assert spec == {"type": "generated", "durations": [10.0], "sampling_frequency": 25000.0, "num_channels": 4,
                    "num_units": 10, "firing_rate": 15.0, "noise_level": 5.0, "dtype": "float32", "seed": 2205,
                    "probe_file": None}
    binary = check_recording_source({"type": "binary", "file_paths": "a.raw", "sampling_frequency": 3e4,
                                     "num_channels": 2, "dtype": "int16"})
    assert binary["dtype"] == "<i2" and binary["time_axis"] == 0 and binary["gain_to_uV"] is None


@pytest.mark.parametrize("spec, message", [
    ({"num_channels": 4}, "where.type: missing"),
    ({"type": "edf"}, "where.type: unknown source type 'edf'"),
    ({"type": "generated", "num_chanels": 4}, "where.num_chanels: unknown key for a 'generated' source"),
    ({"type": "generated", "num_channels": "four"}, "where.num_channels: expected an integer >= 1, got 'four'"),
    ({"type": "generated", "num_channels": True}, "where.num_channels: expected an integer"),
    ({"type": "generated", "durations": []}, "where.durations: expected a non-empty list"),
    ({"type": "generated", "durations": [1.0, -2]}, "where.durations[1]: expected a positive number"),
    ({"type": "binary", "file_paths": "a.raw", "num_channels": 2, "dtype": "int16"},
     "where.sampling_frequency: missing (required for a 'binary' source)"),
    ({"type": "binary", "file_paths": "a.raw", "sampling_frequency": 1.0, "num_channels": 2, "dtype": "int17"},
     "where.dtype: 'int17' is not a numpy dtype"),
    ({"type": "spikeglx", "folder_path": "x", "stream_id": 3}, "where.stream_id: expected a non-empty string"),
    ("generated", "where: expected a mapping"),
])
def test_recording_errors_name_the_key(spec, message):
    with pytest.raises(SourceError) as err:
        check_recording_source(spec, where="where")
    assert message in str(err.value)


def test_ground_truth_sorting_is_the_recording_sources_own():
    recording = check_recording_source({"type": "generated", "num_units": 3, "seed": 5})
    sorting = check_sorting_source(None, recording_spec=recording)
    assert sorting == {"type": "generated", **{k: recording[k] for k in sorting if k != "type"}}
    assert "probe_file" not in sorting and sorting["num_units"] == 3 and sorting["seed"] == 5
    mearec = check_sorting_source({"type": "ground_truth"}, recording_spec={"type": "mearec", "file_path": "m.h5",
                                                                          "probe_file": None})
    assert mearec == {"type": "mearec", "file_path": "m.h5"}
    with pytest.raises(SourceError, match=r"s\.sorting\.type: 'ground_truth' needs a recording of type generated "
                                          r"or mearec, the recording is 'spikeglx'"):
        check_sorting_source({"type": "ground_truth"}, "s.sorting", {"type": "spikeglx"})
    with pytest.raises(SourceError, match=r"sorting\.file_path: a 'ground_truth' sorting has no keys"):
        check_sorting_source({"type": "ground_truth", "file_path": "x"}, recording_spec=recording)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"rec\.folder_path: .*nowhere does not exist"):
        load_recording({"type": "spikeglx", "folder_path": str(tmp_path / "nowhere")}, where="rec")
    with pytest.raises(FileNotFoundError, match=r"sorting\.file_path: .*none\.npz does not exist"):
        load_sorting({"type": "npz", "file_path": str(tmp_path / "none.npz")})


# ---------------------------------------------------------------------------- every format
def test_generated_recording_and_sorting_are_the_same_ground_truth():
    spec = {"type": "generated", "durations": [0.5], "num_channels": 4, "num_units": 3, "seed": 11}
    recording = load_recording(spec)
    sorting = load_sorting({"type": "ground_truth"}, recording_spec=check_recording_source(spec))
    expected_recording, expected_sorting = sicore.generate_ground_truth_recording(
        durations=[0.5], sampling_frequency=25000.0, num_channels=4, num_units=3, seed=11)
    np.testing.assert_array_equal(recording.get_traces(), expected_recording.get_traces())
    _same_spikes(sorting, expected_sorting)


def test_raw_binary_with_gains_and_probe_file(tmp_path, gt):
    recording, _, traces = gt
    spec = sb.raw_binary(tmp_path / "raw", recording, traces)
    loaded = load_recording(spec)
    np.testing.assert_array_equal(loaded.get_traces(), traces)
    np.testing.assert_allclose(loaded.get_traces(return_scaled=True), traces * sb.GAIN, rtol=1e-6)
    np.testing.assert_allclose(loaded.get_channel_locations(), recording.get_channel_locations())
    assert source_paths(check_recording_source(spec), "recording") == [spec["file_paths"], spec["probe_file"]]
    assert source_nbytes(check_recording_source(spec)) == traces.nbytes + Path(spec["probe_file"]).stat().st_size


def test_probe_file_must_match_the_channels(tmp_path, gt):
    recording, _, traces = gt
    spec = sb.raw_binary(tmp_path / "raw", recording, traces)
    with pytest.raises(SourceError, match=r"recording\.probe_file: .* has 8 contacts for 4 channels"):
        load_recording({**spec, "num_channels": 4})
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SourceError, match=r"recording\.probe_file: .*bad\.json is not a probeinterface"):
        load_recording({**spec, "probe_file": str(tmp_path / "bad.json")})


def test_saved_binary_and_zarr_folders(tmp_path, gt):
    recording, _, _ = gt
    for spec in (sb.saved_binary_folder(tmp_path / "bin", recording), sb.saved_zarr(tmp_path / "z.zarr", recording)):
        loaded = load_recording(spec)
        np.testing.assert_array_equal(loaded.get_traces(), recording.get_traces())
        assert loaded.has_probe()


def test_spikeglx_and_openephys(tmp_path, gt):
    _, _, traces = gt
    sglx = load_recording(sb.spikeglx(tmp_path / "sglx", traces))
    np.testing.assert_array_equal(sglx.get_traces(), traces)
    assert sglx.has_probe() and sglx.sampling_frequency == sb.FS
    oe = load_recording(sb.openephys(tmp_path / "oe", num_samples=600))
    assert oe.get_num_channels() == 4 and oe.get_num_samples() == 600


def test_mearec_recording_and_ground_truth(tmp_path, gt):
    recording, sorting, _ = gt
    spec = sb.mearec(tmp_path / "m.h5", recording, sorting)
    loaded = load_recording(spec)
    np.testing.assert_allclose(loaded.get_traces(), recording.get_traces(), rtol=1e-6)
    gt_sorting = load_sorting(None, recording_spec=check_recording_source(spec))
    samples, units = sb.spike_vector(gt_sorting)
    expected_samples, _ = sb.spike_vector(sorting)
    assert np.sort(samples).tolist() == np.sort(expected_samples).tolist()
    assert gt_sorting.get_num_units() == sorting.get_num_units()


def test_sorting_files_npz_numpy_phy_kilosort(tmp_path, gt):
    _, sorting, _ = gt
    specs = [sb.npz(tmp_path / "s.npz", sorting), sb.numpy_folder(tmp_path / "numpy", sorting),
             sb.phy(tmp_path / "phy", sorting), sb.phy(tmp_path / "ks", sorting, kilosort=True)]
    sorting.save(folder=tmp_path / "npzfolder", format="npz")
    specs.append({"type": "npz", "file_path": str(tmp_path / "npzfolder")})
    for spec in specs:
        loaded = load_sorting(spec)
        assert loaded.sampling_frequency == sb.FS
        _same_spikes(loaded, sorting)
    assert source_paths(check_sorting_source(specs[2]), "sorting") == [specs[2]["folder_path"]]


def test_generated_size_is_computed_without_data():
    spec = check_recording_source({"type": "generated", "durations": [2.0, 1.0], "num_channels": 4})
    assert source_nbytes(spec) == 3 * 25000 * 4 * 4
    assert source_paths(spec, "recording") == []


# ---------------------------------------------------------------------------- command-line arguments
def test_argument_as_json_yaml_file_folder_and_h5(tmp_path, gt):
    recording, sorting, _ = gt
    spec = {"type": "generated", "durations": [0.2], "num_channels": 4, "num_units": 2}
    from_json = load_source_argument(json.dumps(spec), "recording")
    (tmp_path / "source.yaml").write_text(yaml.safe_dump(spec))
    from_yaml = load_source_argument(str(tmp_path / "source.yaml"), "recording")
    np.testing.assert_array_equal(from_json.get_traces(), from_yaml.get_traces())
    folder = sb.saved_binary_folder(tmp_path / "bin", recording)["folder_path"]
    assert load_source_argument(folder, "recording").get_num_channels() == 8
    sb.mearec(tmp_path / "m.h5", recording, sorting)
    assert load_source_argument(str(tmp_path / "m.h5"), "sorting").get_num_units() == 4
    with pytest.raises(SourceError, match="holds a BinaryFolderRecording, not a sorting"):
        load_source_argument(folder, "sorting")
    with pytest.raises(SourceError, match="source: not valid JSON"):
        load_source_argument("{type: generated", "recording")
    with pytest.raises(FileNotFoundError, match="recording: nowhere does not exist"):
        load_source_argument("nowhere", "recording")


# ---------------------------------------------------------------------------- the workflow's schema agrees
def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node and "properties" not in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _schema_keys(schema: dict, definition: str) -> tuple[dict, set]:
    node = schema["$defs"][definition]
    properties = dict(node.get("properties", {}))
    if "$ref" in node:  # generated_recording = generated_keys + probe_file
        properties.update(_resolve(schema, {"$ref": node["$ref"]})["properties"])
    properties.pop("type", None)
    return {k: _resolve(schema, v) if "$ref" in v else v for k, v in properties.items()}, set(node.get("required", []))


@pytest.mark.parametrize("kind, registry, suffix", [("recording", RECORDING_SOURCES, "_recording"),
                                                    ("sorting", SORTING_SOURCES, "_sorting")])
def test_schema_lists_the_same_keys_and_defaults_as_sources(kind, registry, suffix):
    schema = yaml.safe_load(SCHEMA.read_text())
    for name, source_type in registry.items():
        definition = "folder_recording" if name in ("binary_folder", "zarr") else name + suffix
        properties, required = _schema_keys(schema, definition)
        keys = source_type.all_keys()
        assert set(properties) == set(keys), name
        assert required == {k for k, rule in keys.items() if rule.required}, name
        for key, rule in keys.items():
            if not rule.required:
                assert properties[key].get("default") == rule.default, (name, key)
    types = schema["$defs"][f"{kind}_source"]["properties"]["type"]["enum"]
    assert set(types) - {"ground_truth"} == set(registry)
