"""SortingAnalyzer in memory: getters, repr, core extensions against independent numpy cut-outs,
dependencies and child deletion."""

import numpy as np
import pytest

from sicore.analyzer import create_sorting_analyzer
from sicore.sorting_tools import random_spikes_selection

from analyzer_data import FS, cutouts

QUIET = {"progress_bar": False}


@pytest.fixture
def analyzer(pair):
    recording, sorting, *_ = pair
    return create_sorting_analyzer(sorting, recording, radius_um=30, **QUIET)


def test_repr_and_getters(pair, analyzer):
    recording, sorting, traces_list, *_ = pair
    assert repr(analyzer) == (
        "SortingAnalyzer: 6 channels - 4 units - 2 segments - memory - sparse - has recording\nLoaded 0 extensions"
    )
    assert analyzer.get_num_channels() == 6
    assert analyzer.get_num_units() == 4
    assert analyzer.get_sampling_frequency() == analyzer.sampling_frequency == FS
    assert analyzer.get_num_segments() == 2
    assert analyzer.get_num_samples(segment_index=1) == 2500
    with pytest.raises(ValueError, match="segment_index"):
        analyzer.get_num_samples()
    assert analyzer.get_total_samples() == 6500
    assert analyzer.get_total_duration() == pytest.approx(6500 / FS)
    assert list(analyzer.channel_ids) == list(recording.channel_ids)
    assert list(analyzer.unit_ids) == list(sorting.unit_ids)
    assert analyzer.has_recording() and analyzer.is_sparse()
    assert analyzer.recording is recording
    np.testing.assert_array_equal(analyzer.get_channel_locations(), recording.get_channel_locations())
    assert analyzer.return_scaled and analyzer.return_in_uV
    # the sorting is copied, not shared
    assert analyzer.sorting is not sorting
    np.testing.assert_array_equal(analyzer.sorting.to_spike_vector(), sorting.to_spike_vector())
    analyzer.compute("random_spikes")
    assert repr(analyzer).endswith("Loaded 1 extensions: random_spikes")


def test_dense_analyzer_repr(pair):
    recording, sorting, *_ = pair
    analyzer = create_sorting_analyzer(sorting, recording, sparse=False)
    assert not analyzer.is_sparse()
    assert repr(analyzer).splitlines()[0] == "SortingAnalyzer: 6 channels - 4 units - 2 segments - memory - has recording"


def test_sparsity_is_estimated_around_main_channel(analyzer):
    mask = analyzer.sparsity.mask
    # units' big spikes are on channels 0, 2, 5, 3; radius 30 um with 25 um pitch keeps neighbours
    for unit_index, channel in enumerate([0, 2, 5, 3]):
        expected = np.abs(np.arange(6) - channel) <= 1
        np.testing.assert_array_equal(mask[unit_index], expected)


def test_create_errors(pair):
    recording, sorting, *_ = pair
    with pytest.raises(ValueError, match="format"):
        create_sorting_analyzer(sorting, recording, format="hdf5")
    with pytest.raises(ValueError, match="folder"):
        create_sorting_analyzer(sorting, recording, format="binary_folder")
    short = recording.frame_slice(0, 2400)
    with pytest.raises(ValueError, match="sorting"):
        create_sorting_analyzer(sorting, short, sparse=False)
    with pytest.raises(ValueError, match="return_scaled"):
        create_sorting_analyzer(sorting, recording, return_scaled=True, return_in_uV=False)


def test_random_spikes(pair, analyzer):
    _, sorting, *_ = pair
    ext = analyzer.compute("random_spikes", max_spikes_per_unit=30, seed=7)
    assert ext.params == {"method": "uniform", "max_spikes_per_unit": 30, "margin_size": None, "seed": 7}
    expected = random_spikes_selection(sorting, method="uniform", max_spikes_per_unit=30, seed=7)
    np.testing.assert_array_equal(ext.get_data(), expected)
    assert ext.data["random_spikes_indices"].dtype == np.int64
    assert ext.run_info["run_completed"] and ext.run_info["runtime_s"] >= 0
    all_ext = analyzer.compute("random_spikes", method="all")
    assert all_ext.get_data().size == sorting.to_spike_vector().size


@pytest.mark.parametrize("job_kwargs", [{"n_jobs": 1}, {"n_jobs": 1, "chunk_size": 37},
                                        {"n_jobs": 2, "chunk_size": 500}, {"n_jobs": 2, "chunk_duration": "1s"}])
def test_waveforms_equal_cutouts(pair, analyzer, job_kwargs):
    _, _, traces_list, gains, offsets = pair
    analyzer.compute("random_spikes", method="all")
    ext = analyzer.compute("waveforms", ms_before=1.0, ms_after=1.5, **job_kwargs, **QUIET)
    assert ext.params == {"ms_before": 1.0, "ms_after": 1.5, "dtype": "<f4"}
    nbefore, nafter = int(FS / 1000), int(1.5 * FS / 1000)
    spikes = analyzer.get_extension("random_spikes").get_random_spikes()
    expected = cutouts(traces_list, spikes, nbefore, nafter, gains, offsets)
    waveforms = ext.get_data()
    mask = analyzer.sparsity.mask
    assert waveforms.shape == (spikes.size, nbefore + nafter, mask.sum(axis=1).max())
    assert waveforms.dtype == np.float32
    for i, s in enumerate(spikes):
        channels = np.flatnonzero(mask[s["unit_index"]])
        np.testing.assert_array_equal(waveforms[i, :, : channels.size], expected[i][:, channels])
        assert not waveforms[i, :, channels.size:].any()
    one = ext.get_waveforms_one_unit(analyzer.unit_ids[0], force_dense=True)
    rows = spikes["unit_index"] == 0
    np.testing.assert_array_equal(one[:, :, mask[0]], expected[rows][:, :, mask[0]])
    assert not one[:, :, ~mask[0]].any()


def test_waveforms_dense_and_unscaled(pair):
    recording, sorting, traces_list, *_ = pair
    analyzer = create_sorting_analyzer(sorting, recording, sparse=False, return_scaled=False)
    analyzer.compute("random_spikes", max_spikes_per_unit=20, seed=1)
    ext = analyzer.compute("waveforms", ms_before=0.5, ms_after=0.5, chunk_size=100, **QUIET)
    assert ext.params["dtype"] == "<i2"
    spikes = analyzer.get_extension("random_spikes").get_random_spikes()
    expected = cutouts(traces_list, spikes, 5, 5)
    np.testing.assert_array_equal(ext.get_data(), expected.astype(np.int16))


def _expected_templates(analyzer, traces_list, gains, offsets, nbefore, nafter):
    spikes = analyzer.get_extension("random_spikes").get_random_spikes()
    cut = cutouts(traces_list, spikes, nbefore, nafter, gains, offsets).astype(np.float64)
    mask = analyzer.sparsity.mask
    out = {k: np.zeros((analyzer.get_num_units(), nbefore + nafter, 6)) for k in ("average", "std", "median", "p90")}
    for u in range(analyzer.get_num_units()):
        w = cut[spikes["unit_index"] == u]
        out["average"][u] = w.mean(axis=0)
        out["std"][u] = w.std(axis=0)
        out["median"][u] = np.median(w, axis=0)
        out["p90"][u] = np.percentile(w, 90, axis=0)
        for values in out.values():
            values[u][:, ~mask[u]] = 0
    return out


def test_templates_from_waveforms(pair, analyzer):
    _, _, traces_list, gains, offsets = pair
    analyzer.compute("random_spikes", max_spikes_per_unit=25, seed=3)
    analyzer.compute("waveforms", **QUIET)
    ext = analyzer.compute("templates", operators=["average", "std", "median", ("percentile", 90)])
    assert set(ext.data) == {"average", "std", "median", "percentile_90"}
    assert ext.params == {"operators": ["average", "std", "median", ("percentile", 90)], "ms_before": 1.0,
                          "ms_after": 2.0}
    expected = _expected_templates(analyzer, traces_list, gains, offsets, 10, 20)
    assert ext.data["average"].dtype == np.float64 and ext.data["average"].shape == (4, 30, 6)
    np.testing.assert_allclose(ext.get_data(), expected["average"], rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(ext.get_data(operator="std"), expected["std"], rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(ext.get_templates(operator="median"), expected["median"], rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(ext.get_templates(operator="percentile", percentile=90), expected["p90"],
                               rtol=1e-6, atol=1e-4)
    unit = analyzer.unit_ids[2]
    np.testing.assert_array_equal(ext.get_unit_template(unit), ext.get_data()[2])
    np.testing.assert_array_equal(ext.get_templates(unit_ids=[unit]), ext.get_data()[[2]])


def test_templates_from_recording(pair, analyzer):
    _, _, traces_list, gains, offsets = pair
    analyzer.compute("random_spikes", max_spikes_per_unit=25, seed=3)
    results = []
    for job_kwargs in ({"n_jobs": 1}, {"n_jobs": 2, "chunk_size": 333}, {"n_jobs": 1, "chunk_size": 50}):
        ext = analyzer.compute("templates", ms_before=1.0, ms_after=1.5, **job_kwargs, **QUIET)
        results.append({k: np.array(v) for k, v in ext.data.items()})
    assert set(results[0]) == {"average", "std"}
    assert results[0]["average"].dtype == np.float32
    for other in results[1:]:
        for key in ("average", "std"):
            np.testing.assert_array_equal(other[key], results[0][key])
    expected = _expected_templates(analyzer, traces_list, gains, offsets, 10, 15)
    # Tolerance: the numpy reference averages float32 µV cut-outs, each rounded by up to 2**-24 of its size
    # (the analyzer sums the raw integers exactly and scales once), and the result is float32: rtol 2e-7 and
    # atol 2**-23 * the largest |cut-out value|, for the average and the std alike.
    atol = 2.0**-23 * _largest_cutout(analyzer, traces_list, gains, offsets, 10, 15)
    np.testing.assert_allclose(results[0]["average"], expected["average"], rtol=2e-7, atol=atol)
    np.testing.assert_allclose(results[0]["std"], expected["std"], rtol=2e-7, atol=atol)
    with pytest.raises(ValueError, match="waveforms"):
        analyzer.compute("templates", operators=["median"])


def _largest_cutout(analyzer, traces_list, gains, offsets, nbefore, nafter):
    spikes = analyzer.get_extension("random_spikes").get_random_spikes()
    return float(np.abs(cutouts(traces_list, spikes, nbefore, nafter, gains, offsets)).max())


@pytest.mark.parametrize("case", ["dense", "unscaled", "float32", "uint16"])
def test_templates_from_recording_other_cases(pair, case):
    """Dense analyzers, raw counts, float recordings (float64 sums of float32 cut-outs) and uint16 traces
    (squares in int64): average / std against numpy cut-outs, identical for any n_jobs and chunk size."""
    from sicore.numpy_objects import NumpyRecording

    recording, sorting, traces_list, gains, offsets = pair
    if case in ("float32", "uint16"):
        shift = {"float32": 0, "uint16": 32768}[case]
        traces_list = [(t.astype(np.int32) + shift).astype(case) for t in traces_list]
        recording = NumpyRecording(traces_list, sampling_frequency=FS, channel_ids=recording.channel_ids)
        recording.set_channel_gains(gains)
        recording.set_channel_offsets(offsets)
        recording.set_dummy_probe_from_locations(pair[0].get_channel_locations())
    kwargs = {"sparse": False} if case == "dense" else {"radius_um": 30}
    scaled = case != "unscaled"
    analyzer = create_sorting_analyzer(sorting, recording, return_scaled=scaled, **kwargs, **QUIET)
    analyzer.compute("random_spikes", max_spikes_per_unit=30, seed=4)
    results = [analyzer.compute("templates", ms_before=0.8, ms_after=1.2, **job_kwargs, **QUIET).data
               for job_kwargs in ({"n_jobs": 1}, {"n_jobs": 2, "chunk_size": 251})]
    for key in ("average", "std"):
        np.testing.assert_array_equal(results[1][key], results[0][key])
    spikes = analyzer.get_extension("random_spikes").get_random_spikes()
    cut = cutouts(traces_list, spikes, 8, 12, gains if scaled else None, offsets if scaled else None)
    cut = cut.astype(np.float64)
    atol = 2.0**-23 * float(np.abs(cut).max())  # float32 cut-outs / float32 results, as above
    mask = np.ones((4, 6), dtype=bool) if analyzer.sparsity is None else analyzer.sparsity.mask
    for u in range(4):
        unit = cut[spikes["unit_index"] == u]
        for key, expected in (("average", unit.mean(axis=0)), ("std", unit.std(axis=0))):
            expected[:, ~mask[u]] = 0
            np.testing.assert_allclose(results[0][key][u], expected, rtol=2e-7, atol=atol, err_msg=f"{key} unit {u}")


def test_noise_levels_match_get_noise_levels(pair, analyzer):
    from sicore.recording_tools import get_noise_levels

    recording = pair[0]
    ext = analyzer.compute("noise_levels", seed=11, num_chunks_per_segment=5,
                           random_slices_kwargs={"chunk_size": 500}, **QUIET)
    assert ext.params == {"random_slices_kwargs": {"chunk_size": 500, "seed": 11, "num_chunks_per_segment": 5}}
    expected = get_noise_levels(recording, return_scaled=True, force_recompute=True,
                                random_slices_kwargs={"chunk_size": 500, "seed": 11, "num_chunks_per_segment": 5})
    np.testing.assert_array_equal(ext.get_data(), expected)
    drawn = analyzer.compute("noise_levels", random_slices_kwargs={"chunk_size": 500}, **QUIET)
    assert isinstance(drawn.params["random_slices_kwargs"]["seed"], int)


def test_dependency_errors(analyzer):
    with pytest.raises(ValueError, match="random_spikes"):
        analyzer.compute("waveforms")
    with pytest.raises(ValueError, match="'waveforms' or 'random_spikes'"):
        analyzer.compute("templates")
    with pytest.raises(KeyError, match="not_an_extension"):
        analyzer.compute("not_an_extension")
    with pytest.raises(ValueError, match="ms_befor"):
        analyzer.compute("random_spikes")
        analyzer.compute("waveforms", ms_befor=2)


def test_recompute_parent_deletes_children(analyzer):
    analyzer.compute(["random_spikes", "waveforms", "templates", "noise_levels"],
                     extension_params={"noise_levels": {"random_slices_kwargs": {"chunk_size": 500}}}, **QUIET)
    assert analyzer.get_loaded_extension_names() == ["random_spikes", "waveforms", "templates", "noise_levels"]
    analyzer.compute("waveforms", **QUIET)
    assert not analyzer.has_extension("templates")
    analyzer.compute("templates", **QUIET)
    analyzer.compute("random_spikes")
    assert analyzer.get_loaded_extension_names() == ["random_spikes", "noise_levels"]
    assert analyzer.get_extension("waveforms") is None
    # deleting a parent keeps a child that still has another parent (templates: waveforms|random_spikes)
    analyzer.compute(["waveforms", "templates"], **QUIET)
    analyzer.delete_extension("waveforms")
    assert analyzer.has_extension("templates")
    analyzer.delete_extension("random_spikes")
    assert not analyzer.has_extension("templates")


def test_compute_list_dict_and_params(analyzer):
    analyzer.compute(["templates", "random_spikes"], extension_params={"random_spikes": {"seed": 5}}, **QUIET)
    assert analyzer.get_extension("random_spikes").params["seed"] == 5
    assert analyzer.has_extension("templates")
    analyzer.compute({"random_spikes": {"max_spikes_per_unit": 3}, "waveforms": {"ms_before": 0.5}}, **QUIET)
    assert analyzer.get_extension("waveforms").params["ms_before"] == 0.5
    assert analyzer.get_extension("waveforms").get_data().shape[0] == 12
    with pytest.raises(ValueError, match="extension_params"):
        analyzer.compute(["random_spikes"], seed=3)
    assert "templates" in analyzer.get_computable_extensions()


def test_function_aliases(analyzer):
    from sicore.analyzer import compute_random_spikes, compute_templates

    first = compute_random_spikes(analyzer, seed=1)
    assert compute_random_spikes(analyzer, load_if_exists=True) is first
    assert compute_random_spikes(analyzer, seed=2) is not first
    assert compute_templates(analyzer, **QUIET).get_data().shape == (4, 30, 6)


def test_create_stores_main_channels(pair):
    """As SpikeInterface 0.105.3, create keeps each unit's main channel as the sorting property "main_channel_id"
    (from the sparsity pass, the sorting's own property, the argument, or one pass for dense analyzers)."""
    recording, sorting, *_ = pair
    injected = np.array([0, 2, 5, 3])  # the channels the spikes were injected on
    for kwargs in ({"radius_um": 30}, {"sparse": False}, {"method": "best_channels", "num_channels": 2}):
        analyzer = create_sorting_analyzer(sorting, recording, **kwargs, **QUIET)
        np.testing.assert_array_equal(analyzer.sorting.get_property("main_channel_id"),
                                      recording.channel_ids[injected])
        np.testing.assert_array_equal(analyzer.main_channel_indices, injected)
    assert sorting.get_property("main_channel_id") is None  # the caller's sorting is not modified
    given = create_sorting_analyzer(sorting, recording, main_channel_indices=[1, 1, 4, 4], radius_um=30, **QUIET)
    np.testing.assert_array_equal(given.main_channel_indices, [1, 1, 4, 4])
    np.testing.assert_array_equal(given.sparsity.mask[:, [0, 2]], [[1, 1], [1, 1], [0, 0], [0, 0]])
    from sicore.numpy_objects import NumpySorting

    with_property = NumpySorting.from_sorting(sorting, with_metadata=True)
    with_property.set_property("main_channel_id", recording.channel_ids[[5, 5, 0, 0]])
    analyzer = create_sorting_analyzer(with_property, recording, radius_um=30, **QUIET)
    np.testing.assert_array_equal(analyzer.main_channel_indices, [5, 5, 0, 0])
    with pytest.raises(ValueError, match="radius"):
        create_sorting_analyzer(with_property, recording, method="best_channels", num_channels=2, **QUIET)
    with pytest.raises(ValueError, match="one entry per unit"):
        create_sorting_analyzer(sorting, recording, main_channel_indices=[1, 2], **QUIET)
