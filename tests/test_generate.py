"""Toy data generators: seeded, lazy, chunk-independent, and what they generate is what they claim."""

import json
import multiprocessing
import pickle
import tracemalloc

import numpy as np
import pytest

from concurrent.futures import ProcessPoolExecutor

from sicore.base import BaseExtractor
from sicore.numpy_objects import NumpyRecording, NumpySorting
from sicore.generate import (
    InjectTemplatesRecording,
    NoiseGeneratorRecording,
    clean_refractory_period,
    generate_channel_locations,
    generate_ground_truth_recording,
    generate_recording,
    generate_recording_by_size,
    generate_single_fake_waveform,
    generate_snippets,
    generate_sorting,
    generate_templates,
    generate_unit_locations,
    inject_some_duplicate_units,
    inject_some_split_units,
    synthesize_random_firings,
    synthetize_spike_train_bad_isi,
)


def _read_in_chunks(recording, segment_index, bounds, channel_ids=None):
    """Concatenation of reads between consecutive ``bounds``."""
    return np.concatenate([
        recording.get_traces(segment_index=segment_index, start_frame=a, end_frame=b, channel_ids=channel_ids)
        for a, b in zip(bounds[:-1], bounds[1:])
    ])


def _random_bounds(rng, num_samples, num_cuts):
    cuts = np.unique(rng.integers(1, num_samples, size=num_cuts))
    return [0, *cuts.tolist(), num_samples]


def _read_in_worker(recording, segment_index, start_frame, end_frame):
    return type(recording).__name__, recording.get_traces(segment_index=segment_index, start_frame=start_frame,
                                                          end_frame=end_frame)


def _rebuilt_from_json(extractor):
    d = json.loads(json.dumps(extractor.to_dict(include_annotations=True, include_properties=True)))
    return BaseExtractor.from_dict(d)


# ------------------------------------------------------------------- noise
@pytest.mark.parametrize("strategy", ["tile_pregenerated", "on_the_fly"])
def test_noise_any_sub_range_read_equals_the_full_read(strategy, rng):
    rec = NoiseGeneratorRecording(5, 1000.0, [7.3, 2.05], seed=3, strategy=strategy, noise_block_size=700)
    for segment_index in range(2):
        full = rec.get_traces(segment_index=segment_index)
        assert full.shape == (rec.get_num_samples(segment_index), 5) and full.dtype == np.float32
        bounds = _random_bounds(rng, full.shape[0], 15)
        np.testing.assert_array_equal(_read_in_chunks(rec, segment_index, bounds), full)
        # channel subsets (non-contiguous, reordered) read the same columns
        sub = rec.get_traces(segment_index=segment_index, start_frame=650, end_frame=2000, channel_ids=["3", "0", "4"])
        np.testing.assert_array_equal(sub, full[650:2000][:, [3, 0, 4]])
    # a fresh object (nothing cached) reading backwards gives the same values
    again = NoiseGeneratorRecording(5, 1000.0, [7.3, 2.05], seed=3, strategy=strategy, noise_block_size=700)
    np.testing.assert_array_equal(again.get_traces(segment_index=0, start_frame=6000, end_frame=7300),
                                  rec.get_traces(segment_index=0)[6000:])


def test_noise_is_seeded_and_segments_and_blocks_differ():
    a = NoiseGeneratorRecording(3, 1000.0, [3.0, 3.0], seed=1, strategy="on_the_fly", noise_block_size=1000)
    b = NoiseGeneratorRecording(3, 1000.0, [3.0, 3.0], seed=1, strategy="on_the_fly", noise_block_size=1000)
    c = NoiseGeneratorRecording(3, 1000.0, [3.0, 3.0], seed=2, strategy="on_the_fly", noise_block_size=1000)
    np.testing.assert_array_equal(a.get_traces(segment_index=1), b.get_traces(segment_index=1))
    assert not np.allclose(a.get_traces(segment_index=0), c.get_traces(segment_index=0))
    seg0, seg1 = a.get_traces(segment_index=0), a.get_traces(segment_index=1)
    assert not np.allclose(seg0, seg1)
    # on the fly: blocks differ; tiled: the block repeats
    assert not np.allclose(seg0[:1000], seg0[1000:2000])
    tiled = NoiseGeneratorRecording(3, 1000.0, [3.0], seed=1, noise_block_size=1000).get_traces()
    np.testing.assert_array_equal(tiled[:1000], tiled[2000:3000])


def test_noise_levels_and_covariance():
    levels = np.array([1.0, 2.0, 5.0, 0.5])
    rec = NoiseGeneratorRecording(4, 10000.0, [20.0], noise_levels=levels, seed=0, strategy="on_the_fly",
                                  noise_block_size=10000)
    traces = rec.get_traces()
    np.testing.assert_allclose(traces.std(axis=0), levels, rtol=0.02)
    np.testing.assert_allclose(traces.mean(axis=0), 0, atol=0.02 * levels.max())
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]])
    rec = NoiseGeneratorRecording(3, 10000.0, [20.0], cov_matrix=cov, noise_levels=2.0, seed=0,
                                  strategy="on_the_fly", noise_block_size=10000)
    np.testing.assert_allclose(np.cov(rec.get_traces().T), 4 * cov, atol=0.1)


def test_noise_seed_none_is_kept_so_the_provenance_regenerates_it():
    rec = NoiseGeneratorRecording(3, 2000.0, [1.5, 0.5], seed=None, noise_levels=[1.0, 2.0, 3.0], dtype="float64")
    assert isinstance(rec._kwargs["seed"], int)
    assert rec.is_json_serializable()
    rebuilt = _rebuilt_from_json(rec)
    assert type(rebuilt) is NoiseGeneratorRecording
    for segment_index in range(2):
        np.testing.assert_array_equal(rebuilt.get_traces(segment_index=segment_index),
                                      rec.get_traces(segment_index=segment_index))
    assert rebuilt.get_dtype() == np.float64
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(rec)).get_traces(segment_index=1),
                                  rec.get_traces(segment_index=1))


def test_a_one_hour_384_channel_recording_costs_no_memory_until_read():
    NoiseGeneratorRecording(2, 30000.0, [1.0], seed=0)  # warm up one-time imports / caches
    generate_recording(num_channels=2, durations=[1.0], seed=0)
    tracemalloc.start()
    try:
        rec = NoiseGeneratorRecording(384, 30000.0, [3600.0], seed=0, strategy="on_the_fly")
        rec2 = generate_recording(num_channels=384, durations=[3600.0], seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rec.get_memory_size() > 150e9 and rec2.get_total_memory_size() > 150e9
    assert peak < 2e6, f"constructing used {peak} bytes"
    big = generate_recording_by_size(2.0, seed=0)
    assert abs(big.get_total_memory_size() - 2 * 1024**3) < 384 * 4


def test_tiled_noise_384_channel_reads_are_consistent():
    rec = NoiseGeneratorRecording(384, 30000.0, [60.0], seed=0)
    whole = rec.get_traces(start_frame=0, end_frame=130000)
    for i in range(3):
        traces = rec.get_traces(start_frame=12345 + i * 30000, end_frame=42345 + i * 30000)
        assert traces.shape == (30000, 384)
        np.testing.assert_array_equal(traces, whole[12345 + i * 30000:42345 + i * 30000])


@pytest.mark.parametrize("kwargs, match", [
    ({"dtype": "int16"}, "dtype"),
    ({"strategy": "fast"}, "strategy"),
    ({"noise_levels": [1.0, 2.0]}, "noise_levels"),
    ({"noise_block_size": 0}, "noise_block_size"),
    ({"cov_matrix": np.eye(2)}, "cov_matrix"),
    ({"cov_matrix": -np.eye(3)}, "cov_matrix"),
    ({"durations": 5.0}, "durations"),
    ({"durations": [1.0, -1.0]}, "durations"),
    ({"num_channels": 0}, "num_channels"),
    ({"sampling_frequency": 0}, "sampling_frequency"),
    ({"seed": -1}, "seed"),
])
def test_noise_bad_arguments_are_named(kwargs, match):
    args = {"num_channels": 3, "sampling_frequency": 1000.0, "durations": [1.0]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        NoiseGeneratorRecording(**args)


# --------------------------------------------------------------- recording
def test_generate_recording_defaults_probe_and_times():
    rec = generate_recording(seed=0)
    assert isinstance(rec, NoiseGeneratorRecording)
    assert rec.channel_ids.tolist() == ["0", "1"]
    assert rec.get_num_segments() == 2 and rec.get_num_samples(0) == 150000 and rec.get_num_samples(1) == 75000
    np.testing.assert_array_equal(rec.get_channel_locations(), [[0, 0], [0, 20]])
    assert rec.get_probe().get_contact_count() == 2
    assert abs(float(rec.get_traces(segment_index=0).std()) - 1) < 0.02
    # the probe travels with the provenance (properties)
    rebuilt = _rebuilt_from_json(rec)
    np.testing.assert_array_equal(rebuilt.get_channel_locations(), rec.get_channel_locations())
    np.testing.assert_array_equal(rebuilt.get_traces(segment_index=1), rec.get_traces(segment_index=1))

    rec3 = generate_recording(num_channels=3, ndim=3, seed=0)
    assert rec3.get_probe().ndim == 3 and rec3.get_channel_locations(axes="xyz").shape == (3, 3)
    assert not generate_recording(set_probe=False).has_probe()
    timed = generate_recording(durations=[1.0, 1.0], t_starts=[10.0, 100.0], seed=0)
    assert timed.get_start_time(1) == 100.0
    assert _rebuilt_from_json(timed).get_start_time(0) == 10.0


def test_generate_recording_legacy_mode_holds_the_same_traces_in_memory():
    lazy = generate_recording(num_channels=3, durations=[0.5, 0.25], seed=5)
    legacy = generate_recording(num_channels=3, durations=[0.5, 0.25], seed=5, mode="legacy")
    assert isinstance(legacy, NumpyRecording) and legacy.has_probe()
    for segment_index in range(2):
        np.testing.assert_array_equal(legacy.get_traces(segment_index=segment_index),
                                      lazy.get_traces(segment_index=segment_index))
    with pytest.raises(ValueError, match="mode"):
        generate_recording(mode="eager")
    with pytest.raises(ValueError, match="ndim"):
        generate_recording(ndim=1)


def test_durations_to_samples_tolerate_float_rounding():
    assert generate_recording(durations=[10.325], set_probe=False).get_num_samples() == 309750
    assert generate_recording(durations=[0.29], sampling_frequency=100.0, set_probe=False).get_num_samples() == 29
    assert generate_recording(durations=[0.295], sampling_frequency=100.0, set_probe=False).get_num_samples() == 29


# ----------------------------------------------------------------- sorting
def test_generate_sorting_ids_determinism_and_segments():
    a = generate_sorting(seed=7)
    assert isinstance(a, NumpySorting)
    assert a.unit_ids.tolist() == ["0", "1", "2", "3", "4"] and a.get_num_segments() == 2
    np.testing.assert_array_equal(a.to_spike_vector(), generate_sorting(seed=7).to_spike_vector())
    assert not np.array_equal(a.to_spike_vector(), generate_sorting(seed=8).to_spike_vector())
    for segment_index, duration in enumerate([10.325, 3.5]):
        spikes = a.to_spike_vector(concatenated=False)[segment_index]
        assert spikes.size > 0 and spikes["sample_index"].max() < int(duration * 30000)


def test_generate_sorting_rates_and_refractory_period():
    rates = np.array([0.5, 5.0, 40.0, 100.0])
    duration, fs = 200.0, 20000.0
    sorting = generate_sorting(num_units=4, sampling_frequency=fs, durations=[duration], firing_rate=rates,
                               refractory_period=3.0, seed=0)
    counts = sorting.count_num_spikes_per_unit(outputs="array")
    expected = rates * duration
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 2), (counts, expected)
    for unit_id in sorting.unit_ids:
        train = sorting.get_unit_spike_train(unit_id)
        assert np.all(np.diff(train) >= 3.0 * fs / 1000)
    # SpikeInterface spellings are aliases
    alias = generate_sorting(num_units=4, sampling_frequency=fs, durations=[duration], firing_rates=rates,
                             refractory_period_ms=3.0, seed=0)
    np.testing.assert_array_equal(alias.to_spike_vector(), sorting.to_spike_vector())
    with pytest.raises(ValueError, match="firing_rate"):
        generate_sorting(firing_rate=3.0, firing_rates=3.0)
    with pytest.raises(ValueError, match="firing_rate"):
        generate_sorting(firing_rate=300.0, refractory_period=4.0)
    with pytest.raises(ValueError, match="firing_rate"):
        generate_sorting(num_units=3, firing_rate=[1.0, 2.0])
    with pytest.raises(ValueError, match="refractory_period"):
        generate_sorting(refractory_period=-1)
    with pytest.raises(ValueError, match="t_starts"):
        generate_sorting(t_starts=[0.0, 1.0])


def test_generate_sorting_empty_units_and_border_spikes():
    sorting = generate_sorting(num_units=5, durations=[5.0, 2.0], empty_units=["1", 3], seed=1)
    counts = sorting.count_num_spikes_per_unit()
    assert counts["1"] == 0 and counts["3"] == 0 and counts["0"] > 0
    with pytest.raises(ValueError, match="empty_units"):
        generate_sorting(empty_units=["9"])
    bordered = generate_sorting(num_units=3, durations=[1.0, 0.5], add_spikes_on_borders=True, seed=2)
    for segment_index, num_samples in enumerate([30000, 15000]):
        samples = bordered.to_spike_vector(concatenated=False)[segment_index]["sample_index"]
        assert np.sum(samples < 20) >= 3 and np.sum(samples >= num_samples - 20) >= 3
        assert samples.max() < num_samples


def test_synthesize_random_firings_and_shift_shuffle():
    times, labels = synthesize_random_firings(num_units=4, duration=50, firing_rates=[5, 10, 20, 1], seed=0)
    assert times.dtype.kind == "i" and np.all(np.diff(times) >= 0)
    assert set(labels.tolist()) == {0, 1, 2, 3}
    refractory = 4.0 * 30000 / 1000
    for unit in range(4):
        assert np.all(np.diff(times[labels == unit]) >= refractory)
    np.testing.assert_array_equal(times, synthesize_random_firings(num_units=4, duration=50,
                                                                   firing_rates=[5, 10, 20, 1], seed=0)[0])
    flat, flat_labels = synthesize_random_firings(num_units=1, duration=200, firing_rates=20, seed=1)
    bursty, bursty_labels = synthesize_random_firings(num_units=1, duration=200, firing_rates=20, seed=1,
                                                      add_shift_shuffle=True)
    assert np.all(np.diff(bursty) >= refractory)
    short = 3 * refractory
    assert np.mean(np.diff(bursty) < short) > 1.5 * np.mean(np.diff(flat) < short)
    # the spec's spelling is accepted here too
    np.testing.assert_array_equal(
        synthesize_random_firings(num_units=2, duration=5, firing_rate=4.0, refractory_period=2.0, seed=3)[0],
        synthesize_random_firings(num_units=2, duration=5, firing_rates=4.0, refractory_period_ms=2.0, seed=3)[0],
    )


def test_clean_refractory_period_removes_every_follower_of_a_short_interval():
    np.testing.assert_array_equal(clean_refractory_period(np.array([0, 3, 6, 9]), 4), [0])
    np.testing.assert_array_equal(clean_refractory_period([0.0, 0.001, 0.002, 0.01, 0.0105, 0.02], 0.004),
                                  [0.0, 0.01, 0.02])
    np.testing.assert_array_equal(clean_refractory_period([9, 0, 20, 5], 5), [0, 5, 20])
    rng = np.random.default_rng(0)
    times = rng.integers(0, 10000, size=2000)
    cleaned = clean_refractory_period(times, 7)
    assert np.all(np.diff(cleaned) >= 7) and set(cleaned.tolist()) <= set(times.tolist())
    assert clean_refractory_period([], 3).size == 0


def test_bad_isi_train_has_exactly_the_asked_violations():
    train = synthetize_spike_train_bad_isi(10, 5, 3)
    assert train.size == 53 and np.all(np.diff(train) >= 0)
    isis = np.diff(train)
    assert np.sum(isis < 1e-4) == 3
    np.testing.assert_allclose(isis[isis > 1e-4].max(), 0.2)
    np.testing.assert_allclose(train[[0, 1]], [0.2, 0.2 + 1e-5])
    with pytest.raises(ValueError, match="num_violations"):
        synthetize_spike_train_bad_isi(1, 5, 6)


# ------------------------------------------------------ planted mistakes
def _shifted(train, shift):
    """A train moved by ``shift`` samples, without the spikes moved before the segment start."""
    moved = train + shift
    return moved[moved >= 0]


def test_inject_duplicate_units_are_shifted_copies():
    sorting = generate_sorting(num_units=5, durations=[20.0, 5.0], firing_rate=10, seed=0)
    dup = inject_some_duplicate_units(sorting, num=3, max_shift=5, seed=1)
    assert dup.unit_ids.tolist() == ["0", "1", "2", "3", "4", "5", "6", "7"]
    originals = []
    for new_id in ["5", "6", "7"]:
        # the copy of exactly one original unit, shifted by one constant in [-5, 5] in every segment
        matches = set()
        for unit_id in sorting.unit_ids.tolist():
            for shift in range(-5, 6):
                if all(np.array_equal(dup.get_unit_spike_train(new_id, segment_index=seg),
                                      _shifted(sorting.get_unit_spike_train(unit_id, segment_index=seg), shift))
                       for seg in range(2)):
                    matches.add(unit_id)
        assert len(matches) == 1
        originals.extend(matches)
    assert len(set(originals)) == 3
    for unit_id in sorting.unit_ids:
        for seg in range(2):
            np.testing.assert_array_equal(dup.get_unit_spike_train(unit_id, segment_index=seg),
                                          sorting.get_unit_spike_train(unit_id, segment_index=seg))
    np.testing.assert_array_equal(dup.to_spike_vector(),
                                  inject_some_duplicate_units(sorting, num=3, max_shift=5, seed=1).to_spike_vector())

    # with a ratio, a random subset of the original spikes (over all segments)
    partial = inject_some_duplicate_units(sorting, num=2, max_shift=0, ratio=0.3, seed=2)
    counts = sorting.count_num_spikes_per_unit()
    for new_id in ["5", "6"]:
        parents = [u for u in sorting.unit_ids
                   if all(set(partial.get_unit_spike_train(new_id, segment_index=s).tolist())
                          <= set(sorting.get_unit_spike_train(u, segment_index=s).tolist()) for s in range(2))]
        assert len(parents) == 1
        assert partial.count_num_spikes_per_unit()[new_id] == int(counts[parents[0]] * 0.3)
    with pytest.raises(ValueError, match="num"):
        inject_some_duplicate_units(sorting, num=6)
    with pytest.raises(ValueError, match="ratio"):
        inject_some_duplicate_units(sorting, ratio=1.5)


def test_inject_split_units_partition_the_spikes():
    sorting = generate_sorting(num_units=5, durations=[10.0, 3.0], firing_rate=10, seed=0)
    split, new_ids = inject_some_split_units(sorting, split_ids=["1", "3"], num_split=2, output_ids=True, seed=0)
    assert new_ids == {"1": ["5", "6"], "3": ["7", "8"]}
    assert split.unit_ids.tolist() == ["0", "5", "6", "2", "7", "8", "4"]
    for segment_index in range(2):
        for old_id, parts in new_ids.items():
            trains = [split.get_unit_spike_train(p, segment_index=segment_index) for p in parts]
            assert all(t.size > 0 for t in trains)
            np.testing.assert_array_equal(np.sort(np.concatenate(trains)),
                                          sorting.get_unit_spike_train(old_id, segment_index=segment_index))
        for kept in ["0", "2", "4"]:
            np.testing.assert_array_equal(split.get_unit_spike_train(kept, segment_index=segment_index),
                                          sorting.get_unit_spike_train(kept, segment_index=segment_index))
    only_sorting = inject_some_split_units(sorting, split_ids=["0"], num_split=3, seed=0)
    assert isinstance(only_sorting, NumpySorting) and only_sorting.get_num_units() == 7
    with pytest.raises(KeyError, match="split_ids"):
        inject_some_split_units(sorting, split_ids=["42"])


# --------------------------------------------------------------- templates
def test_fake_waveform_shape():
    w = generate_single_fake_waveform(sampling_frequency=30000.0)
    assert w.shape == (120,) and w.dtype == np.float32
    assert abs(int(np.argmin(w)) - 30) <= 1 and np.isclose(w.min(), -1.0)
    assert np.isclose(w.max(), 0.15, rtol=1e-3) and np.argmax(w) > 30
    w = generate_single_fake_waveform(sampling_frequency=10000.0, negative_amplitude=-3, positive_amplitude=0.5,
                                      dtype="float64")
    # the overshoot's continuous peak may fall between samples
    assert w.dtype == np.float64 and np.isclose(w[10], -3.0) and np.isclose(w.max(), 1.5, rtol=0.05)
    assert abs(w[0]) < 1e-6 and abs(w[-1]) < 1e-3
    with pytest.raises(ValueError, match="sampling_frequency"):
        generate_single_fake_waveform()
    with pytest.raises(ValueError, match="ms_after"):
        generate_single_fake_waveform(sampling_frequency=30000.0, ms_after=1.0)


def test_channel_and_unit_locations():
    np.testing.assert_array_equal(generate_channel_locations(6, 2, 20.0),
                                  [[0, 0], [0, 20], [0, 40], [20, 0], [20, 20], [20, 40]])
    # an uneven split puts the extra contact in the last column
    np.testing.assert_array_equal(generate_channel_locations(5, 2, 10.0),
                                  [[0, 0], [0, 10], [10, 0], [10, 10], [10, 20]])
    channels = generate_channel_locations(32, 2, 20.0)
    units = generate_unit_locations(20, channels, margin_um=15, minimum_z=5, maximum_z=30, minimum_distance=15, seed=0)
    assert units.shape == (20, 3)
    assert np.all(units[:, 0] >= -15) and np.all(units[:, 0] <= 35) and np.all(units[:, 1] <= 315)
    assert np.all(units[:, 2] >= 5) and np.all(units[:, 2] <= 30)
    distances = np.linalg.norm(units[:, None] - units[None], axis=2)[np.triu_indices(20, 1)]
    assert distances.min() >= 15
    np.testing.assert_array_equal(units, generate_unit_locations(20, channels, margin_um=15, minimum_z=5,
                                                                 maximum_z=30, minimum_distance=15, seed=0))
    layered = generate_unit_locations(200, channels, minimum_distance=None, distribution="multimodal", num_modes=2,
                                      seed=0)
    # two layers: few units in the middle band of y
    middle = np.abs(layered[:, 1] - 150) < 30
    assert middle.mean() < 0.1
    with pytest.raises(ValueError, match="minimum_distance"):
        generate_unit_locations(50, channels[:2], margin_um=0, maximum_z=6, minimum_distance=30, max_iteration=5,
                                distance_strict=True, seed=0)
    with pytest.warns(UserWarning, match="minimum_distance"):
        generate_unit_locations(50, channels[:2], margin_um=0, maximum_z=6, minimum_distance=30, max_iteration=5,
                                seed=0)


def test_templates_decay_with_distance_and_peak_at_nbefore():
    channels = generate_channel_locations(16, 2, 20.0)
    units = np.array([[10.0, 40.0, 10.0], [0.0, 140.0, 25.0], [20.0, 100.0, 5.0]])
    fs = 30000.0
    templates = generate_templates(channels, units, fs, 1.0, 3.0, seed=0, mode="sphere")
    assert templates.shape == (3, 120, 16) and templates.dtype == np.float32
    for u in range(3):
        distances = np.linalg.norm(np.column_stack([channels, np.zeros(16)]) - units[u], axis=1)
        nearest = int(np.argmin(distances))
        amplitudes = np.abs(templates[u]).max(axis=0)
        assert int(np.argmax(amplitudes)) == nearest
        far = np.argsort(distances)[-3:]
        assert np.all(amplitudes[far] < 0.5 * amplitudes[nearest])
        assert abs(int(np.argmin(templates[u, :, nearest])) - 30) <= 1
    np.testing.assert_array_equal(templates, generate_templates(channels, units, fs, 1.0, 3.0, seed=0, mode="sphere"))
    fixed = generate_templates(channels, units, fs, 1.0, 3.0, seed=0, mode="sphere",
                               unit_params={"alpha": 200.0, "spatial_decay": 20.0})
    assert fixed.min() < -50
    up = generate_templates(channels, units, fs, 1.0, 3.0, seed=0, upsample_factor=4, mode="sphere")
    assert up.shape == (3, 120, 16, 4)
    np.testing.assert_allclose(up[..., 0], templates, rtol=1e-5, atol=1e-4)
    # sub-sample shift: version j is the spike j/4 of a sample later
    nearest = 1
    assert np.argmin(up[0, :, nearest, 3]) >= np.argmin(up[0, :, nearest, 0])
    with pytest.raises(ValueError, match="unit_params"):
        generate_templates(channels, units, fs, 1.0, 3.0, unit_params={"speed": 1.0})
    with pytest.raises(ValueError, match="units_locations"):
        generate_templates(channels, units[:, :2], fs, 1.0, 3.0)


# --------------------------------------------------------------- injection
def _handmade_injection_case():
    fs = 1000.0
    samples = [np.array([0, 3, 40, 41, 95, 99]), np.array([10, 10, 59])]
    labels = [np.array(["a", "b", "a", "b", "a", "b"]), np.array(["a", "b", "b"])]
    sorting = NumpySorting.from_times_labels(samples, labels, fs, unit_ids=np.array(["a", "b"]))
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(2, 7, 3)).astype(np.float32)
    nbefore = [2, 4]
    return sorting, templates, nbefore, [100, 60]


def _expected_injection(sorting, templates, nbefore, num_samples, factors=None, parent_traces=None):
    """Sum of templates placed with plain numpy (independent of the recording's chunk logic)."""
    out = []
    spikes = sorting.to_spike_vector()
    for segment_index, n in enumerate(num_samples):
        padded = np.zeros((n + 2 * templates.shape[1], templates.shape[2]), dtype=np.float64)
        pad = templates.shape[1]
        for i in np.flatnonzero(spikes["segment_index"] == segment_index):
            u = spikes["unit_index"][i]
            start = spikes["sample_index"][i] - nbefore[u] + pad
            scale = 1.0 if factors is None else factors[i]
            padded[start:start + templates.shape[1]] += scale * templates[u]
        traces = padded[pad:pad + n]
        if parent_traces is not None:
            traces = traces + parent_traces[segment_index]
        out.append(traces)
    return out


def test_injection_places_templates_and_is_chunk_independent(rng):
    sorting, templates, nbefore, num_samples = _handmade_injection_case()
    factors = rng.uniform(0.5, 2.0, size=sorting.to_spike_vector().size)
    rec = InjectTemplatesRecording(sorting, templates, nbefore=nbefore, num_samples=num_samples,
                                   amplitude_factor=factors)
    assert rec.get_dtype() == np.float32 and rec.channel_ids.tolist() == ["0", "1", "2"]
    expected = _expected_injection(sorting, templates, nbefore, num_samples, factors)
    for segment_index in range(2):
        full = rec.get_traces(segment_index=segment_index)
        np.testing.assert_allclose(full, expected[segment_index], rtol=1e-5, atol=1e-5)
        for _ in range(5):
            bounds = _random_bounds(rng, num_samples[segment_index], 12)
            np.testing.assert_array_equal(_read_in_chunks(rec, segment_index, bounds), full)
        np.testing.assert_array_equal(rec.get_traces(segment_index=segment_index, channel_ids=["2", "0"]),
                                      full[:, [2, 0]])


def test_injection_on_a_parent_recording_and_default_nbefore():
    sorting, templates, _, num_samples = _handmade_injection_case()
    parent_traces = [np.arange(n * 3, dtype=np.float32).reshape(n, 3) for n in num_samples]
    parent = NumpyRecording(parent_traces, sampling_frequency=1000.0, channel_ids=["x", "y", "z"])
    parent.set_property("quality", ["good", "bad", "good"])
    rec = InjectTemplatesRecording(sorting, templates, parent_recording=parent)
    nbefore = np.argmax(np.abs(templates).max(axis=2), axis=1)
    np.testing.assert_array_equal(rec.nbefore, nbefore)
    assert rec.channel_ids.tolist() == ["x", "y", "z"] and rec.get_property("quality").tolist()[1] == "bad"
    expected = _expected_injection(sorting, templates, nbefore, num_samples, parent_traces=parent_traces)
    for segment_index in range(2):
        np.testing.assert_allclose(rec.get_traces(segment_index=segment_index), expected[segment_index], atol=1e-4)
    # reading never modifies the parent's arrays
    np.testing.assert_array_equal(parent.get_traces(segment_index=0), parent_traces[0])
    np.testing.assert_array_equal(parent_traces[0], np.arange(300, dtype=np.float32).reshape(100, 3))


def test_injection_with_upsampled_templates_picks_each_spike_version():
    sorting, templates, nbefore, num_samples = _handmade_injection_case()
    rng = np.random.default_rng(1)
    up = rng.normal(size=(2, 7, 3, 3)).astype(np.float32)
    vector = rng.integers(0, 3, size=sorting.to_spike_vector().size)
    rec = InjectTemplatesRecording(sorting, up, nbefore=nbefore, num_samples=num_samples, upsample_vector=vector)
    spikes = sorting.to_spike_vector()
    for segment_index in range(2):
        expected = np.zeros((num_samples[segment_index], 3))
        for i in np.flatnonzero(spikes["segment_index"] == segment_index):
            u, t = spikes["unit_index"][i], spikes["sample_index"][i]
            for k in range(7):
                if 0 <= t - nbefore[u] + k < num_samples[segment_index]:
                    expected[t - nbefore[u] + k] += up[u, k, :, vector[i]]
        np.testing.assert_allclose(rec.get_traces(segment_index=segment_index), expected, atol=1e-5)
    with pytest.raises(ValueError, match="upsample_vector"):
        InjectTemplatesRecording(sorting, up, nbefore=nbefore, num_samples=num_samples)


def test_injection_provenance_rebuilds_in_memory_sortings_from_their_spikes():
    sorting, templates, nbefore, num_samples = _handmade_injection_case()
    rec = InjectTemplatesRecording(sorting, templates, nbefore=nbefore, num_samples=num_samples,
                                   amplitude_factor=0.5)
    assert rec.is_json_serializable()
    rebuilt = _rebuilt_from_json(rec)
    assert type(rebuilt) is InjectTemplatesRecording
    np.testing.assert_array_equal(rebuilt.sorting.to_spike_vector(), sorting.to_spike_vector())
    assert rebuilt.sorting.unit_ids.tolist() == ["a", "b"]
    for segment_index in range(2):
        np.testing.assert_array_equal(rebuilt.get_traces(segment_index=segment_index),
                                      rec.get_traces(segment_index=segment_index))
    # an in-memory parent makes the whole recording memory-only, and says so
    parent = NumpyRecording([np.zeros((n, 3), dtype=np.float32) for n in num_samples], sampling_frequency=1000.0)
    assert not InjectTemplatesRecording(sorting, templates, parent_recording=parent).is_json_serializable()


@pytest.mark.parametrize("change, match", [
    ({"templates": np.zeros((3, 7, 3))}, "units"),
    ({"num_samples": None}, "num_samples"),
    ({"num_samples": [100]}, "num_samples"),
    ({"num_samples": [50, 60]}, "sorting"),
    ({"nbefore": [2, 9]}, "nbefore"),
    ({"amplitude_factor": [1.0, 2.0]}, "amplitude_factor"),
    ({"upsample_vector": [0] * 9}, "upsample_vector"),
    ({"templates": np.ones((2, 7, 3)), "check_borders": True}, "check_borders"),
])
def test_injection_bad_arguments_are_named(change, match):
    sorting, templates, nbefore, num_samples = _handmade_injection_case()
    kwargs = {"templates": templates, "nbefore": nbefore, "num_samples": num_samples}
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        InjectTemplatesRecording(sorting, **kwargs)


# ------------------------------------------------------------ ground truth
def test_ground_truth_defaults_and_determinism():
    rec, sorting = generate_ground_truth_recording(durations=[3.0], seed=0)
    assert isinstance(rec, InjectTemplatesRecording)
    assert rec.sampling_frequency == 25000.0 and rec.get_num_channels() == 4 and sorting.get_num_units() == 10
    assert rec.channel_ids.tolist() == ["0", "1", "2", "3"] and sorting.unit_ids.tolist()[:2] == ["0", "1"]
    np.testing.assert_array_equal(rec.get_channel_locations(), [[0, 0], [0, 20], [20, 0], [20, 20]])
    assert rec.get_channel_gains().tolist() == [1.0] * 4 and rec.get_channel_offsets().tolist() == [0.0] * 4
    assert sorting.get_property("gt_unit_locations").shape == (10, 3)
    assert rec.templates.shape == (10, 100, 4) and rec.nbefore.tolist() == [25] * 10
    counts = sorting.count_num_spikes_per_unit(outputs="array")
    assert np.all(np.abs(counts - 45) < 5 * np.sqrt(45))
    traces = rec.get_traces()
    rec2, sorting2 = generate_ground_truth_recording(durations=[3.0], seed=0)
    np.testing.assert_array_equal(rec2.get_traces(), traces)
    np.testing.assert_array_equal(sorting2.to_spike_vector(), sorting.to_spike_vector())
    rec3, _ = generate_ground_truth_recording(durations=[3.0], seed=1)
    assert not np.allclose(rec3.get_traces(), traces)
    assert np.array_equal(rec.get_traces(return_scaled=True), traces)


def test_ground_truth_traces_are_noise_plus_the_templates_at_the_spikes(rng):
    rec, sorting = generate_ground_truth_recording(durations=[2.0, 1.0], num_channels=6, num_units=5, seed=3,
                                                   generate_sorting_kwargs={"firing_rate": 20})
    noise = rec.parent_recording
    assert isinstance(noise, NoiseGeneratorRecording)
    num_samples = [rec.get_num_samples(i) for i in range(2)]
    noise_traces = [noise.get_traces(segment_index=i) for i in range(2)]
    expected = _expected_injection(sorting, rec.templates, rec.nbefore, num_samples, parent_traces=noise_traces)
    for segment_index in range(2):
        traces = rec.get_traces(segment_index=segment_index)
        np.testing.assert_allclose(traces, expected[segment_index], atol=1e-3)
        # the noise alone has the asked level; where spikes are, the main channel dips far below it
        assert abs(float(noise_traces[segment_index].std()) - 5.0) < 0.2
        main = np.argmax(np.abs(rec.templates).max(axis=1), axis=1)
        spikes = sorting.to_spike_vector(concatenated=False)[segment_index]
        biggest = int(np.argmax(np.abs(rec.templates).max(axis=(1, 2))))
        mine = spikes[spikes["unit_index"] == biggest]["sample_index"]
        assert mine.size > 0
        trough = rec.templates[biggest, 25, main[biggest]]
        assert trough < -40
        np.testing.assert_allclose(traces[mine, main[biggest]].mean(), trough, atol=6.0)
        # chunk boundaries never change the traces
        bounds = _random_bounds(rng, num_samples[segment_index], 20)
        np.testing.assert_array_equal(_read_in_chunks(rec, segment_index, bounds), traces)


def test_ground_truth_provenance_and_pickle_rebuild_identical_traces():
    rec, sorting = generate_ground_truth_recording(durations=[1.0, 0.5], seed=11)
    assert rec.is_json_serializable()
    d = json.loads(json.dumps(rec.to_dict(include_properties=True)))
    assert isinstance(d["kwargs"]["sorting"]["sample_index"], list)
    rebuilt = BaseExtractor.from_dict(d)
    clone = pickle.loads(pickle.dumps(rec))
    for segment_index in range(2):
        full = rec.get_traces(segment_index=segment_index)
        np.testing.assert_array_equal(rebuilt.get_traces(segment_index=segment_index), full)
        np.testing.assert_array_equal(clone.get_traces(segment_index=segment_index, start_frame=100, end_frame=9000),
                                      full[100:9000])
    np.testing.assert_array_equal(rebuilt.get_channel_locations(), rec.get_channel_locations())


def test_worker_processes_rebuild_the_ground_truth_from_its_provenance():
    rec, _ = generate_ground_truth_recording(durations=[1.0, 0.5], num_channels=8, seed=2)
    # the pickle is the small provenance, not traces
    assert len(pickle.dumps(rec)) < 0.1 * rec.get_total_memory_size()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        name, traces = pool.submit(_read_in_worker, rec, 1, 1000, 9000).result()
    assert name == "InjectTemplatesRecording"
    np.testing.assert_array_equal(traces, rec.get_traces(segment_index=1, start_frame=1000, end_frame=9000))


def test_ground_truth_with_given_sorting_probe_templates_and_upsampling():
    import probeinterface as pi

    probe = pi.generate_linear_probe(num_elec=5, ypitch=25)
    probe.set_device_channel_indices([4, 3, 2, 1, 0])
    sorting = generate_sorting(num_units=3, sampling_frequency=20000.0, durations=[2.0], seed=0)
    rec, same = generate_ground_truth_recording(durations=[2.0], sampling_frequency=20000.0, sorting=sorting,
                                                probe=probe, seed=0, upsample_factor=3,
                                                generate_templates_kwargs={"mode": "sphere"})
    assert same is sorting and rec.get_num_channels() == 5
    # channel i sits where the probe wires it: reversed order
    np.testing.assert_array_equal(rec.get_channel_locations()[:, 1], [100, 75, 50, 25, 0])
    assert rec.templates.shape == (3, 80, 5, 3) and rec.upsample_vector.shape == (sorting.to_spike_vector().size,)
    assert set(np.unique(rec.upsample_vector).tolist()) <= {0, 1, 2}
    traces = rec.get_traces()
    np.testing.assert_array_equal(_read_in_chunks(rec, 0, [0, 777, 20000, 20001, 40000]), traces)

    templates = np.zeros((3, 30, 5), dtype=np.float32)
    templates[:, 10, :] = -100.0
    rec, _ = generate_ground_truth_recording(durations=[2.0], sampling_frequency=20000.0, sorting=sorting,
                                             probe=probe, templates=templates, ms_before=0.5, seed=0,
                                             noise_kwargs={"noise_levels": 0.0})
    expected = _expected_injection(sorting, templates, [10, 10, 10], [40000])[0]
    np.testing.assert_allclose(rec.get_traces(), expected, atol=1e-4)

    with pytest.raises(ValueError, match="templates"):
        generate_ground_truth_recording(durations=[2.0], sampling_frequency=20000.0, sorting=sorting,
                                        templates=np.zeros((2, 30, 4)))
    with pytest.raises(ValueError, match="segments"):
        generate_ground_truth_recording(durations=[1.0, 1.0], sampling_frequency=20000.0, sorting=sorting)
    with pytest.raises(ValueError, match="sampling_frequency"):
        generate_ground_truth_recording(durations=[2.0], sorting=sorting)
    with pytest.raises(ValueError, match="dtype"):
        generate_ground_truth_recording(durations=[1.0], dtype="int16")


# ---------------------------------------------------------------- snippets
def test_generate_snippets_cuts_the_seeded_recording_at_the_seeded_spikes():
    snippets = generate_snippets(nbefore=20, nafter=40, num_channels=3, durations=[2.0, 1.0], num_units=4, seed=5)
    assert snippets.get_num_segments() == 2 and snippets.nbefore == 20 and snippets.snippet_len == 60
    assert snippets.channel_ids.tolist() == ["0", "1", "2"] and snippets.has_probe()
    recording = generate_recording(num_channels=3, durations=[2.0, 1.0], seed=5)
    sorting = generate_sorting(num_units=4, durations=[2.0, 1.0], seed=5)
    for segment_index in range(2):
        frames = sorting.to_spike_vector(concatenated=False)[segment_index]["sample_index"]
        num_samples = recording.get_num_samples(segment_index)
        frames = frames[(frames >= 20) & (frames + 40 <= num_samples)]
        np.testing.assert_array_equal(snippets.get_frames(segment_index=segment_index), frames)
        traces = recording.get_traces(segment_index=segment_index)
        cut = np.stack([traces[f - 20:f + 40] for f in frames])
        np.testing.assert_array_equal(snippets.get_snippets(segment_index=segment_index), cut)
    default = generate_snippets(seed=0)
    assert default.snippet_len == 64 and default.get_num_channels() == 2
    assert generate_snippets(set_probe=False, seed=0, durations=[1.0]).has_probe() is False


def test_generate_snippets_saved_to_wf_folder(tmp_path):
    in_memory = generate_snippets(num_channels=3, durations=[2.0], num_units=3, seed=7)
    saved = generate_snippets(num_channels=3, durations=[2.0], num_units=3, seed=7, wf_folder=tmp_path / "snip")
    assert (tmp_path / "snip").is_dir()
    np.testing.assert_array_equal(saved.get_frames(segment_index=0), in_memory.get_frames(segment_index=0))
    np.testing.assert_array_equal(saved.get_snippets(segment_index=0), in_memory.get_snippets(segment_index=0))
    np.testing.assert_array_equal(saved.get_channel_locations(), in_memory.get_channel_locations())
