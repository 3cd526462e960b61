"""Legacy WaveformExtractor API (extract_waveforms, load_waveforms, MockWaveformExtractor) against
independent numpy cut-outs of the raw traces; folders, zarr, portability and SpikeInterface compatibility."""

import shutil

import numpy as np
import pytest

from sicore.legacy import MockWaveformExtractor, extract_waveforms, load_waveforms

FS = 10000.0
NUM_CHANNELS = 6
MAIN_CHANNELS = [0, 2, 5, 3]
QUIET = {"progress_bar": False}

pytestmark = pytest.mark.filterwarnings("ignore:chunk_size")


def make_data(seed: int = 0):
    """(recording, sorting, traces_list, gains, offsets): int16, 2 segments, 6 channels 25 um apart; each unit
    has big spikes on its main channel; unit 0 also fires at the segment borders."""
    from sicore.numpy_objects import NumpyRecording, NumpySorting

    rng = np.random.default_rng(seed)
    lengths = [4000, 2500]
    traces_list = [rng.integers(-200, 200, size=(n, NUM_CHANNELS)).astype("int16") for n in lengths]
    times, labels = [], []
    for n, traces in zip(lengths, traces_list):
        seg_times, seg_labels = [], []
        for unit, channel in enumerate(MAIN_CHANNELS):
            t = np.sort(rng.choice(np.arange(5, n - 5), size=30 + 10 * unit, replace=False))
            if unit == 0:
                t = np.concatenate([[1], t, [n - 2]])
            for s in t:
                traces[max(s - 3, 0): s + 4, channel] -= 1000
                traces[max(s - 3, 0): s + 4, max(channel - 1, 0)] -= 300
            seg_times.append(t)
            seg_labels.append(np.full(t.size, unit))
        times.append(np.concatenate(seg_times))
        labels.append(np.concatenate(seg_labels))
    recording = NumpyRecording(traces_list, sampling_frequency=FS, channel_ids=[f"c{i}" for i in range(NUM_CHANNELS)])
    gains = np.linspace(0.5, 1.5, NUM_CHANNELS)
    offsets = np.arange(NUM_CHANNELS, dtype=float) - 2.0
    recording.set_channel_gains(gains)
    recording.set_channel_offsets(offsets)
    recording.set_dummy_probe_from_locations(np.stack([np.zeros(NUM_CHANNELS), 25.0 * np.arange(NUM_CHANNELS)], 1))
    sorting = NumpySorting.from_times_labels(times, labels, FS)
    return recording, sorting, traces_list, gains, offsets


@pytest.fixture(scope="module")
def data():
    return make_data()


def cutouts(data, unit_id, sampled, nbefore, nafter, scaled=True):
    """Windows of the raw traces at the sampled spikes (zeros outside the segment), from the spike trains."""
    _, sorting, traces_list, gains, offsets = data
    out = np.zeros((sampled.size, nbefore + nafter, NUM_CHANNELS), dtype=np.float32)
    for i, (spike_index, segment_index) in enumerate(sampled[["spike_index", "segment_index"]].tolist()):
        sample = int(sorting.get_unit_spike_train(unit_id, segment_index=segment_index)[spike_index])
        traces = traces_list[segment_index].astype(np.float32)
        if scaled:
            traces = traces * gains.astype(np.float32) + offsets.astype(np.float32)
        for k in range(nbefore + nafter):
            if 0 <= sample - nbefore + k < traces.shape[0]:
                out[i, k] = traces[sample - nbefore + k]
    return out


def check_against_cutouts(we, data, scaled=True):
    """Waveforms (sparse and dense) and templates of every unit equal the independent cut-outs."""
    for unit_index, unit_id in enumerate(we.unit_ids):
        sampled = we.get_sampled_indices(unit_id)
        expected = cutouts(data, unit_id, sampled, we.nbefore, we.nafter, scaled)
        channels = we.sparsity.mask[unit_index] if we.is_sparse() else np.ones(NUM_CHANNELS, dtype=bool)
        waveforms, index = we.get_waveforms(unit_id, with_index=True)
        np.testing.assert_array_equal(index, sampled)
        np.testing.assert_array_equal(waveforms, expected[:, :, channels].astype(we.dtype))
        dense = we.get_waveforms(unit_id, force_dense=True)
        np.testing.assert_array_equal(dense[:, :, channels], waveforms)
        assert not dense[:, :, ~channels].any()
        average = expected.astype(np.float64).mean(axis=0) * channels
        np.testing.assert_allclose(we.get_template(unit_id, force_dense=True), average, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(we.get_template(unit_id), average[:, channels], rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(we.get_all_templates()[unit_index], average, rtol=1e-6, atol=1e-4)


def test_folder_mode_sparse_equals_cutouts(data, tmp_path):
    recording, sorting, *_ = data
    we = extract_waveforms(recording, sorting, folder=tmp_path / "wf", max_spikes_per_unit=25, seed=1,
                           method="radius", radius_um=30, **QUIET)
    assert isinstance(we, MockWaveformExtractor)
    assert we.format == "binary" and we.folder == tmp_path / "wf"
    assert (tmp_path / "wf" / "extensions" / "waveforms" / "waveforms.npy").is_file()
    assert we.nbefore == 10 and we.nafter == 20 and we.nsamples == 30
    assert we.return_scaled and we.dtype == np.float32 and we.has_recording() and we.is_sparse()
    assert we.get_num_channels() == NUM_CHANNELS and we.get_num_segments() == 2
    assert we.sampling_frequency == FS and list(we.unit_ids) == list(sorting.unit_ids)
    assert list(we.channel_ids) == list(recording.channel_ids) and we.recording is recording
    for unit_index, channel in enumerate(MAIN_CHANNELS):  # 30 um around the main channel (25 um pitch)
        np.testing.assert_array_equal(we.sparsity.mask[unit_index], np.abs(np.arange(6) - channel) <= 1)
    for unit_id in we.unit_ids:
        sampled = we.get_sampled_indices(unit_id)
        num_spikes = sum(sorting.get_unit_spike_train(unit_id, segment_index=s).size for s in range(2))
        assert sampled.size == min(25, num_spikes)
        assert np.unique(sampled).size == sampled.size
    check_against_cutouts(we, data)
    assert repr(we).startswith("MockWaveformExtractor: mock the old WaveformExtractor with SortingAnalyzer: "
                               "6 channels - 4 units - 2 segments - binary_folder - sparse - has recording")
    assert we.get_available_extension_names() == ["random_spikes", "waveforms", "templates", "noise_levels"]
    # the folder reloads with identical content
    loaded = load_waveforms(tmp_path / "wf")
    assert loaded.is_sparse() and loaded.sparsity == we.sparsity
    for unit_id in we.unit_ids:
        np.testing.assert_array_equal(loaded.get_waveforms(unit_id), we.get_waveforms(unit_id))
        np.testing.assert_array_equal(loaded.get_sampled_indices(unit_id), we.get_sampled_indices(unit_id))
    assert load_waveforms(tmp_path / "wf", output="SortingAnalyzer").has_extension("templates")


def test_memory_mode_dense_raw_all_spikes(data):
    recording, sorting, *_ = data
    we = extract_waveforms(recording, sorting, folder=None, sparse=False, max_spikes_per_unit=None,
                           return_scaled=False, ms_before=0.5, ms_after=0.8, **QUIET)
    assert we.format == "memory" and we.folder is None and not we.is_sparse() and we.sparsity is None
    assert we.nbefore == 5 and we.nafter == 8 and we.dtype == np.int16 and not we.return_scaled
    for unit_id in we.unit_ids:
        num_spikes = sum(sorting.get_unit_spike_train(unit_id, segment_index=s).size for s in range(2))
        assert we.get_sampled_indices(unit_id).size == num_spikes
    check_against_cutouts(we, data, scaled=False)
    with pytest.warns(UserWarning, match="folder is ignored"):
        we = extract_waveforms(recording, sorting, folder="never_written", mode="memory", sparse=False,
                               max_spikes_per_unit=5, **QUIET)
    assert we.format == "memory"


def test_sparsity_argument_on_dense_and_sparse(data):
    from sicore.sparsity import ChannelSparsity

    recording, sorting, *_ = data
    mask = np.zeros((4, NUM_CHANNELS), dtype=bool)
    for unit_index, channel in enumerate(MAIN_CHANNELS):
        mask[unit_index, channel] = True
    narrow = ChannelSparsity(mask, sorting.unit_ids, recording.channel_ids)
    dense = extract_waveforms(recording, sorting, sparse=False, max_spikes_per_unit=10, seed=0, **QUIET)
    given = extract_waveforms(recording, sorting, sparsity=narrow, max_spikes_per_unit=10, seed=0, **QUIET)
    assert given.sparsity == narrow
    for unit_index, unit_id in enumerate(dense.unit_ids):
        channel = MAIN_CHANNELS[unit_index]
        full = dense.get_waveforms(unit_id)
        np.testing.assert_array_equal(dense.get_waveforms(unit_id, sparsity=narrow), full[:, :, [channel]])
        np.testing.assert_array_equal(given.get_waveforms(unit_id), full[:, :, [channel]])
        np.testing.assert_array_equal(given.get_waveforms(unit_id, sparsity=narrow), full[:, :, [channel]])
        np.testing.assert_allclose(dense.get_template(unit_id, sparsity=narrow), full.mean(0)[:, [channel]],
                                   rtol=1e-6, atol=1e-4)
    wide = ChannelSparsity.create_dense(dense)
    with pytest.raises(ValueError, match="sparsity"):
        given.get_waveforms(given.unit_ids[0], sparsity=wide)


def test_overwrite_and_load_if_exists(data, tmp_path):
    recording, sorting, *_ = data
    folder = tmp_path / "wf"
    extract_waveforms(recording, sorting, folder=folder, sparse=False, max_spikes_per_unit=5, **QUIET)
    for overwrite in (None, False):
        with pytest.raises(FileExistsError, match="overwrite=True") as info:
            extract_waveforms(recording, sorting, folder=folder, overwrite=overwrite, **QUIET)
        assert isinstance(info.value, ValueError)  # as SpikeInterface
    we = extract_waveforms(recording, sorting, folder=folder, sparse=False, max_spikes_per_unit=8,
                           ms_before=0.3, overwrite=True, **QUIET)
    assert we.nbefore == 3 and we.get_sampled_indices(we.unit_ids[1]).size == 8
    assert load_waveforms(folder).nbefore == 3
    again = extract_waveforms(recording, sorting, folder=folder, ms_before=2.0, load_if_exists=True, **QUIET)
    assert again.nbefore == 3 and again.recording is recording
    with pytest.raises(ValueError, match="load_if_exists"):
        extract_waveforms(recording, sorting, folder=folder, overwrite=True, load_if_exists=True)
    # a failed extraction leaves the previous folder untouched and no temporary behind
    with pytest.raises(ValueError, match="ms_before"):
        extract_waveforms(recording, sorting, folder=folder, sparse=False, ms_before=-1.0, overwrite=True, **QUIET)
    assert load_waveforms(folder).nbefore == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wf"]


def test_argument_errors(data):
    recording, sorting, *_ = data
    with pytest.raises(ValueError, match="mode"):
        extract_waveforms(recording, sorting, mode="hdf5")
    with pytest.raises(TypeError, match="radius"):
        extract_waveforms(recording, sorting, radius=30)
    with pytest.raises(ValueError, match="precompute_template"):
        extract_waveforms(recording, sorting, precompute_template=("mean",))
    with pytest.raises(ValueError, match="sparse"):
        extract_waveforms(recording, sorting, sparse=False, method="radius")
    we = extract_waveforms(recording, sorting, sparse=False, max_spikes_per_unit=5, **QUIET)
    with pytest.raises(ValueError, match="unit_id"):
        we.get_waveforms(99)
    with pytest.raises(ValueError, match="mode"):
        we.get_template(0, mode="mean")
    with pytest.raises(ValueError, match="percentile"):
        we.get_template(0, mode="percentile")
    with pytest.raises(ValueError, match="percentile"):
        we.precompute_templates(modes=("percentile",))
    with pytest.raises(ValueError, match="format"):
        we.save(folder="x", format="hdf5")
    with pytest.raises(FileNotFoundError):
        load_waveforms("does_not_exist")
    with pytest.raises(TypeError, match="sorting_analyzer"):
        MockWaveformExtractor(recording)


def test_precompute_templates_and_delete_waveforms(data, tmp_path):
    recording, sorting, *_ = data
    we = extract_waveforms(recording, sorting, folder=tmp_path / "wf", sparse=False, max_spikes_per_unit=20,
                           seed=2, **QUIET)
    waveforms = {u: we.get_waveforms(u).astype(np.float64) for u in we.unit_ids}
    templates_folder = tmp_path / "wf" / "extensions" / "templates"
    assert sorted(p.name for p in templates_folder.glob("*.npy")) == ["average.npy"]
    # a mode that was not precomputed is computed on the fly, not saved
    np.testing.assert_allclose(we.get_template(0, mode="median"), np.median(waveforms[0], axis=0), atol=1e-4)
    assert not (templates_folder / "median.npy").exists()
    we.precompute_templates(modes=("std", "median"))
    we.precompute_templates(modes=["percentile"], percentile=90)
    assert sorted(p.name for p in templates_folder.glob("*.npy")) == [
        "average.npy", "median.npy", "percentile_90.npy", "std.npy"]
    expected = {"average": lambda w: w.mean(0), "std": lambda w: w.std(0), "median": lambda w: np.median(w, 0)}
    loaded = load_waveforms(tmp_path / "wf")
    loaded.delete_waveforms()
    assert not loaded.has_waveforms() and not (tmp_path / "wf" / "extensions" / "waveforms").exists()
    assert loaded.get_available_extension_names() == ["random_spikes", "templates", "noise_levels"]
    for unit_index, unit_id in enumerate(we.unit_ids):
        for mode, function in expected.items():
            np.testing.assert_allclose(loaded.get_all_templates(mode=mode)[unit_index], function(waveforms[unit_id]),
                                       rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(loaded.get_template(unit_id, mode="percentile", percentile=90),
                                   np.percentile(waveforms[unit_id], 90, axis=0), rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(loaded.get_all_templates(unit_ids=[3, 1]), loaded.get_all_templates()[[3, 1]])
    with pytest.raises(ValueError, match="waveforms"):
        loaded.get_waveforms(0)
    with pytest.raises(ValueError, match="precompute"):
        loaded.get_all_templates(mode="percentile", percentile=10)
    with pytest.raises(ValueError, match="deleted"):
        loaded.precompute_templates(modes=["percentile"], percentile=10)


def test_relative_path_makes_processed_folder_portable(data, tmp_path):
    recording, sorting, *_ = data
    processed = tmp_path / "processed"
    saved_recording = recording.save(folder=processed / "recording")
    saved_sorting = sorting.save(folder=processed / "sorting")
    we = extract_waveforms(saved_recording, saved_sorting, folder=processed / "waveforms", sparse=False,
                           max_spikes_per_unit=10, use_relative_path=True, **QUIET)
    expected = {u: we.get_waveforms(u) for u in we.unit_ids}
    moved = tmp_path / "elsewhere" / "processed_copy"
    shutil.copytree(processed, moved)
    shutil.rmtree(processed)
    loaded = load_waveforms(moved / "waveforms", with_recording=False)
    assert not loaded.has_recording()
    with pytest.raises(ValueError, match="recording"):
        loaded.recording
    for unit_id, waveforms in expected.items():
        np.testing.assert_array_equal(loaded.get_waveforms(unit_id), waveforms)
    with_recording = load_waveforms(moved / "waveforms")
    assert with_recording.has_recording()
    np.testing.assert_array_equal(with_recording.recording.get_traces(segment_index=1),
                                  recording.get_traces(segment_index=1))


def test_absolute_path_lets_the_folder_move_alone(data, tmp_path):
    recording, sorting, *_ = data
    saved_recording = recording.save(folder=tmp_path / "recording")
    we = extract_waveforms(saved_recording, sorting, folder=tmp_path / "a" / "waveforms", sparse=False,
                           max_spikes_per_unit=5, **QUIET)
    zarr = we.save(folder=tmp_path / "a" / "waveforms_zarr", format="zarr")
    (tmp_path / "b").mkdir()
    for folder in (we.folder, zarr.folder):
        shutil.move(folder, tmp_path / "b" / folder.name)
        moved = load_waveforms(tmp_path / "b" / folder.name)
        assert moved.has_recording()
        np.testing.assert_array_equal(moved.recording.get_traces(segment_index=0),
                                      recording.get_traces(segment_index=0))


def test_save_zarr_binary_memory_round_trips(data, tmp_path):
    recording, sorting, *_ = data
    we = extract_waveforms(recording, sorting, max_spikes_per_unit=12, seed=4, radius_um=30, **QUIET)
    we.precompute_templates(modes=("average", "std"))
    zarr = we.save(folder=tmp_path / "waveforms", format="zarr")
    assert zarr.format == "zarr" and zarr.folder == tmp_path / "waveforms.zarr"
    binary = we.save(folder=tmp_path / "binary", format="binary")
    memory = we.save(format="memory")
    for saved in (zarr, binary, memory, load_waveforms(tmp_path / "waveforms.zarr", with_recording=False),
                  load_waveforms(tmp_path / "binary", with_recording=False)):
        assert saved.sparsity == we.sparsity
        for unit_id in we.unit_ids:
            np.testing.assert_array_equal(saved.get_waveforms(unit_id), we.get_waveforms(unit_id))
            np.testing.assert_array_equal(saved.get_sampled_indices(unit_id), we.get_sampled_indices(unit_id))
        for mode in ("average", "std"):
            np.testing.assert_array_equal(saved.get_all_templates(mode=mode), we.get_all_templates(mode=mode))
    with pytest.raises(ValueError, match="overwrite"):  # a FileExistsError too
        we.save(folder=tmp_path / "waveforms.zarr", format="zarr")
    assert we.save(folder=tmp_path / "waveforms.zarr", format="zarr", overwrite=True).format == "zarr"


def test_select_units(data, tmp_path):
    recording, sorting, *_ = data
    we = extract_waveforms(recording, sorting, folder=tmp_path / "wf", max_spikes_per_unit=10, radius_um=30, **QUIET)
    for selected in (we.select_units([3, 1]), we.select_units([3, 1], new_folder=tmp_path / "sel")):
        assert list(selected.unit_ids) == [3, 1]
        np.testing.assert_array_equal(selected.sparsity.mask, we.sparsity.mask[[3, 1]])
        for unit_id in (3, 1):
            np.testing.assert_array_equal(selected.get_waveforms(unit_id), we.get_waveforms(unit_id))
            np.testing.assert_array_equal(selected.get_sampled_indices(unit_id), we.get_sampled_indices(unit_id))
    assert load_waveforms(tmp_path / "sel").get_num_units() == 2


def test_template_tools_accept_the_legacy_object(data):
    from sicore.template_tools import (get_template_amplitudes, get_template_extremum_amplitude,
                                       get_template_extremum_channel, get_template_extremum_channel_peak_shift)
    from sicore.sparsity import compute_sparsity

    recording, sorting, *_ = data
    for sparse in (False, True):
        sparsity_kwargs = {"radius_um": 30} if sparse else {}
        we = extract_waveforms(recording, sorting, sparse=sparse, max_spikes_per_unit=20, **sparsity_kwargs, **QUIET)
        channels = get_template_extremum_channel(we, peak_sign="neg")
        assert channels == {u: f"c{c}" for u, c in zip(sorting.unit_ids, MAIN_CHANNELS)}
        assert get_template_extremum_channel(we, outputs="index") == dict(zip(sorting.unit_ids, MAIN_CHANNELS))
        shifts = get_template_extremum_channel_peak_shift(we)
        amplitudes = get_template_amplitudes(we)
        extremum = get_template_extremum_amplitude(we, mode="extremum")
        for unit_index, unit_id in enumerate(we.unit_ids):
            template = we.get_all_templates()[unit_index]
            main = MAIN_CHANNELS[unit_index]
            assert extremum[unit_id] == pytest.approx(np.abs(template[:, main].min()))
            assert shifts[unit_id] == int(np.argmin(template[:, main])) - we.nbefore
            active = we.sparsity.mask[unit_index] if sparse else np.ones(NUM_CHANNELS, dtype=bool)
            np.testing.assert_allclose(amplitudes[unit_id], np.abs(template.min(axis=0))[active])
        assert compute_sparsity(we, method="best_channels", num_channels=1).mask.sum() == 4


def test_n_jobs_gives_identical_results(data, tmp_path):
    recording, sorting, *_ = data
    results = []
    for n_jobs in (1, 2):
        we = extract_waveforms(recording, sorting, folder=tmp_path / f"wf{n_jobs}", max_spikes_per_unit=15, seed=5,
                               radius_um=30, n_jobs=n_jobs, chunk_duration="100ms", **QUIET)
        results.append(we)
    one, two = results
    assert one.sparsity == two.sparsity
    for unit_id in one.unit_ids:
        np.testing.assert_array_equal(one.get_sampled_indices(unit_id), two.get_sampled_indices(unit_id))
        np.testing.assert_array_equal(one.get_waveforms(unit_id), two.get_waveforms(unit_id))
    np.testing.assert_array_equal(one.get_all_templates(), two.get_all_templates())
    check_against_cutouts(two, data)


def test_spikeinterface_reads_ours_and_we_read_theirs(data, tmp_path):
    from reference_env import run_reference

    recording, sorting, *_ = data
    saved_recording = recording.save(folder=tmp_path / "rec")
    spikes = sorting.to_spike_vector(concatenated=False)
    np.savez(tmp_path / "spikes.npz", **{f"samples{i}": s["sample_index"] for i, s in enumerate(spikes)},
             **{f"labels{i}": sorting.unit_ids[s["unit_index"]] for i, s in enumerate(spikes)})
    ours = extract_waveforms(saved_recording, sorting, folder=tmp_path / "sicore_wf", max_spikes_per_unit=15, seed=6,
                             radius_um=30, **QUIET)
    ours.precompute_templates(modes=("average", "std"))
    ours.save(folder=tmp_path / "sicore_wf", format="zarr")
    script = f"""
import numpy as np, warnings
warnings.simplefilter("ignore")
import spikeinterface.core as si
from spikeinterface.core.waveforms_extractor_backwards_compatibility import extract_waveforms, load_waveforms
we = load_waveforms("sicore_wf")
out = {{"has_recording": we.has_recording(), "mask": we.sparsity.mask, "std": we.get_all_templates(mode="std")}}
for u in we.unit_ids:
    out[f"ours_{{u}}"] = we.get_waveforms(u)
d = np.load("spikes.npz")
sorting = si.NumpySorting.from_samples_and_labels([d["samples0"], d["samples1"]], [d["labels0"], d["labels1"]], {FS})
from spikeinterface.core.waveforms_extractor_backwards_compatibility import MockWaveformExtractor
zarr = MockWaveformExtractor(si.load_sorting_analyzer("sicore_wf.zarr"))  # SI's load_waveforms reads no zarr
out["zarr_has_recording"], out["zarr_average"] = zarr.has_recording(), zarr.get_all_templates()
theirs = extract_waveforms(si.load("rec"), sorting, folder="si_wf", sparse=False, max_spikes_per_unit=12, seed=3,
                           progress_bar=False)
for u in theirs.unit_ids:
    out[f"theirs_{{u}}"] = theirs.get_waveforms(u)
np.savez("out.npz", **out)
"""
    run_reference(script, cwd=tmp_path)
    out = np.load(tmp_path / "out.npz")
    assert out["has_recording"] and out["zarr_has_recording"]
    np.testing.assert_array_equal(out["zarr_average"], ours.get_all_templates())
    np.testing.assert_array_equal(out["mask"], ours.sparsity.mask)
    np.testing.assert_array_equal(out["std"], ours.get_all_templates(mode="std"))
    theirs = load_waveforms(tmp_path / "si_wf")
    assert theirs.has_recording() and not theirs.is_sparse() and theirs.format == "binary"
    for unit_id in ours.unit_ids:
        waveforms = ours.get_waveforms(unit_id)
        # SpikeInterface returns the packed array: the unit's channels first, padded to the widest unit
        np.testing.assert_array_equal(out[f"ours_{unit_id}"][:, :, : waveforms.shape[2]], waveforms)
        np.testing.assert_array_equal(out[f"theirs_{unit_id}"], theirs.get_waveforms(unit_id))
    check_against_cutouts(theirs, data)


def test_getters_extensions_and_given_sorting(data, tmp_path):
    recording, sorting, *_ = data
    we = extract_waveforms(recording, sorting, folder=tmp_path / "wf", max_spikes_per_unit=5, radius_um=30, **QUIET)
    assert we.get_num_units() == 4 and we.get_num_samples(segment_index=1) == 2500 and we.get_total_samples() == 6500
    assert we.get_total_duration() == pytest.approx(6500 / FS) and not we.is_filtered() and not we.is_read_only()
    np.testing.assert_array_equal(we.get_channel_locations(), recording.get_channel_locations())
    np.testing.assert_array_equal(we.get_recording_property("gain_to_uV"), recording.get_property("gain_to_uV"))
    np.testing.assert_array_equal(we.channel_ids_to_indices(["c3", "c1"]), [3, 1])
    assert we.get_probe().get_contact_count() == NUM_CHANNELS
    assert we.has_extension("noise_levels") and we.load_extension("noise_levels").get_data().shape == (NUM_CHANNELS,)
    we.delete_extension("noise_levels")
    assert not we.has_extension("noise_levels") and not (tmp_path / "wf" / "extensions" / "noise_levels").exists()
    with pytest.raises(ValueError, match="noise_levels"):
        we.load_extension("noise_levels")
    with pytest.raises(TypeError, match="sparsity"):
        we.save(folder=tmp_path / "x", sparsity=we.sparsity)
    # load_waveforms with the user's sorting (same spikes) uses it; other spikes are refused
    loaded = load_waveforms(tmp_path / "wf", with_recording=False, sorting=sorting)
    assert loaded.sorting is sorting
    np.testing.assert_array_equal(loaded.get_waveforms(2), we.get_waveforms(2))
    with pytest.raises(ValueError, match="sorting"):
        load_waveforms(tmp_path / "wf", sorting=sorting.select_units([0, 1]))
    with pytest.raises(ValueError, match="not a waveforms"):
        load_waveforms(tmp_path)


def test_mock_around_a_users_analyzer(data):
    from sicore.analyzer import create_sorting_analyzer

    recording, sorting, *_ = data
    analyzer = create_sorting_analyzer(sorting, recording, sparse=False)
    analyzer.compute(["random_spikes", "waveforms"], **QUIET)
    we = MockWaveformExtractor(analyzer)
    assert we.sorting_analyzer is analyzer and not analyzer.has_extension("templates")
    # templates are computed from the waveforms on request
    check_against_cutouts(we, data)
    np.testing.assert_allclose(we.get_template(1, mode="std"), we.get_waveforms(1).astype(float).std(0), atol=1e-4)
