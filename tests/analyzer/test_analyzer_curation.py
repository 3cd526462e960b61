"""Curation: select_units, remove_units and merge_units give new analyzers whose extensions follow."""

import numpy as np
import pytest

from sicore.analyzer import create_sorting_analyzer, load_sorting_analyzer

from analyzer_data import cutouts, make_pair

QUIET = {"progress_bar": False}


@pytest.fixture
def full():
    recording, sorting, traces_list, gains, offsets = make_pair()
    analyzer = create_sorting_analyzer(sorting, recording, radius_um=30, **QUIET)
    analyzer.compute(["random_spikes", "waveforms", "templates"], **QUIET)
    return analyzer, traces_list, gains, offsets


def test_select_units_equals_fresh_compute(full):
    analyzer, *_ = full
    unit_ids = analyzer.unit_ids[[3, 1]]
    selected = analyzer.select_units(unit_ids)
    assert list(selected.unit_ids) == list(unit_ids)
    assert selected.get_loaded_extension_names() == ["random_spikes", "waveforms", "templates"]
    np.testing.assert_array_equal(selected.sparsity.mask, analyzer.sparsity.mask[[3, 1]])
    old_spikes = analyzer.get_extension("random_spikes").get_random_spikes()
    new_spikes = selected.get_extension("random_spikes").get_random_spikes()
    # same spikes (samples, segments) as the old selection restricted to the units
    keep = np.isin(old_spikes["unit_index"], [3, 1])
    assert new_spikes.size == keep.sum()
    np.testing.assert_array_equal(np.sort(new_spikes["sample_index"] + 10**7 * new_spikes["segment_index"]),
                                  np.sort(old_spikes["sample_index"][keep] + 10**7 * old_spikes["segment_index"][keep]))
    for new_index, old_index in enumerate([3, 1]):
        np.testing.assert_array_equal(
            selected.get_extension("waveforms").get_waveforms_one_unit(unit_ids[new_index]),
            analyzer.get_extension("waveforms").get_waveforms_one_unit(unit_ids[new_index]))
    np.testing.assert_array_equal(selected.get_extension("templates").get_data(),
                                  analyzer.get_extension("templates").get_data()[[3, 1]])
    # a fresh waveform pass on the new analyzer gives the same waveforms
    fresh = np.array(selected.get_extension("waveforms").get_data())
    selected.compute("waveforms", **QUIET)
    np.testing.assert_array_equal(selected.get_extension("waveforms").get_data(), fresh)


def test_remove_units(full):
    analyzer, *_ = full
    removed = analyzer.remove_units(remove_unit_ids=[analyzer.unit_ids[0]])
    assert list(removed.unit_ids) == list(analyzer.unit_ids[1:])
    np.testing.assert_array_equal(removed.get_extension("templates").get_data(),
                                  analyzer.get_extension("templates").get_data()[1:])
    with pytest.raises(KeyError, match="remove_unit_ids|unit_ids"):
        analyzer.remove_units(remove_unit_ids=["nope"])


@pytest.mark.parametrize("style", ["spec", "si"])
def test_merge_units_both_spellings(full, style):
    analyzer, traces_list, gains, offsets = full
    u = analyzer.unit_ids
    if style == "spec":
        merged = analyzer.merge_units([u[0], u[1]], [u[2], u[3]])
    else:
        merged = analyzer.merge_units([[u[0], u[1]], [u[2], u[3]]])
    assert merged.get_num_units() == 2
    assert list(merged.unit_ids) == [4, 5]  # "append": after the largest id
    counts = merged.sorting.count_num_spikes_per_unit(outputs="array")
    old_counts = analyzer.sorting.count_num_spikes_per_unit(outputs="array")
    np.testing.assert_array_equal(counts, [old_counts[:2].sum(), old_counts[2:].sum()])
    mask = merged.sparsity.mask
    np.testing.assert_array_equal(mask[0], analyzer.sparsity.mask[:2].any(axis=0))
    # templates recomputed from the merged waveforms equal numpy on the cut-outs (on the known channels)
    spikes = merged.get_extension("random_spikes").get_random_spikes()
    old_rs = analyzer.get_extension("random_spikes").get_random_spikes()
    assert spikes.size == old_rs.size
    expected = cutouts(traces_list, spikes, 10, 20, gains, offsets)
    waveforms = merged.get_extension("waveforms").get_data()
    old_mask = analyzer.sparsity.mask
    for new_unit, old_units in enumerate([[0, 1], [2, 3]]):
        rows = np.flatnonzero(spikes["unit_index"] == new_unit)
        channels = np.flatnonzero(mask[new_unit])
        for old_unit in old_units:
            known = np.flatnonzero(old_mask[old_unit])
            positions = np.searchsorted(channels, known)
            old_rows = rows[np.isin(rows, np.flatnonzero(_origin(analyzer, merged) == old_unit))]
            np.testing.assert_array_equal(waveforms[old_rows][:, :, positions], expected[old_rows][:, :, known])
    average = merged.get_extension("templates").get_data()
    assert average.shape == (2, 30, 6)


def _origin(analyzer, merged):
    """Old unit index of each merged random spike (matched by segment and sample)."""
    old = analyzer.get_extension("random_spikes").get_random_spikes()
    new = merged.get_extension("random_spikes").get_random_spikes()
    old_key = old["segment_index"] * 10**7 + old["sample_index"] * 10 + old["unit_index"]
    out = np.empty(new.size, dtype=np.int64)
    used = np.zeros(old.size, dtype=bool)
    for i, s in enumerate(new):
        candidates = np.flatnonzero((old["segment_index"] == s["segment_index"]) & (old["sample_index"] == s["sample_index"]) & ~used)
        used[candidates[0]] = True
        out[i] = old["unit_index"][candidates[0]]
    return out


def test_merge_templates_from_recording_are_weighted(pair):
    recording, sorting, *_ = pair
    analyzer = create_sorting_analyzer(sorting, recording, sparse=False)
    analyzer.compute(["random_spikes", "templates"], **QUIET)
    u = analyzer.unit_ids
    merged = analyzer.merge_units([[u[0], u[1]]], new_id_strategy="take_first")
    assert list(merged.unit_ids) == [u[2], u[3], u[0]]
    fresh = merged.compute("templates", **QUIET, save=False)
    # recomputed on the merged random spikes vs. the weighted combination
    combined = analyzer.merge_units([[u[0], u[1]]], new_id_strategy="take_first").get_extension("templates")
    np.testing.assert_allclose(combined.get_data(), fresh.get_data(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(combined.get_data(operator="std"), fresh.get_data(operator="std"), rtol=1e-3, atol=1e-2)


def test_merge_errors(full):
    analyzer, *_ = full
    u = analyzer.unit_ids
    with pytest.raises(ValueError, match="several groups"):
        analyzer.merge_units([u[0], u[1]], [u[1], u[2]])
    with pytest.raises(ValueError, match="at least two"):
        analyzer.merge_units([u[0]])


def test_curation_to_folder(tmp_path, full):
    analyzer, *_ = full
    selected = analyzer.select_units(analyzer.unit_ids[:2], format="binary_folder", folder=tmp_path / "sel")
    loaded = load_sorting_analyzer(tmp_path / "sel")
    assert loaded.get_loaded_extension_names() == ["random_spikes", "waveforms", "templates"]
    np.testing.assert_array_equal(loaded.get_extension("waveforms").get_data(),
                                  selected.get_extension("waveforms").get_data())
