"""numpy_folder sortings (SpikeInterface's default layout): write, read, corruption."""

import json

import numpy as np
import pytest

from sicore.io import CorruptFolderError, NumpyFolderSorting, load_extractor, save_sorting
from sicore.numpy_objects import NumpySorting
from sicore.sorting import SPIKE_VECTOR_DTYPE


@pytest.fixture
def sorting():
    sorting = NumpySorting.from_times_labels([np.array([9, 1, 5, 5]), np.array([3])],
                                             [np.array([2, 0, 2, 0]), np.array([1])], 25000.0)
    sorting.set_property("depth", np.array([10.0, 20.0, 30.0]))
    sorting.annotate(name="s")
    return sorting


def test_layout_and_round_trip(tmp_path, sorting):
    saved = save_sorting(sorting, folder=tmp_path / "s", format="numpy_folder")
    assert isinstance(saved, NumpyFolderSorting)
    spikes = np.load(tmp_path / "s" / "spikes.npy", allow_pickle=False)
    assert spikes.dtype == SPIKE_VECTOR_DTYPE
    np.testing.assert_array_equal(spikes, sorting.to_spike_vector())
    info = json.loads((tmp_path / "s" / "numpysorting_info.json").read_text())
    assert info == {"sampling_frequency": 25000.0, "unit_ids": [0, 1, 2], "num_segments": 2}
    for loaded in (saved, load_extractor(tmp_path / "s"), NumpyFolderSorting(tmp_path / "s", mmap_mode="r")):
        np.testing.assert_array_equal(loaded.to_spike_vector(), sorting.to_spike_vector())
        np.testing.assert_array_equal(loaded.get_property("depth"), [10.0, 20.0, 30.0])
        assert loaded.get_annotation("name") == "s"
        np.testing.assert_array_equal(loaded.get_unit_spike_train(2, segment_index=0), [5, 9])


def test_unsorted_spikes_from_elsewhere_are_sorted(tmp_path, sorting):
    save_sorting(sorting, folder=tmp_path / "s", format="numpy_folder")
    spikes = sorting.to_spike_vector()[::-1].copy()
    np.save(tmp_path / "s" / "spikes.npy", spikes)
    np.testing.assert_array_equal(load_extractor(tmp_path / "s").to_spike_vector(), sorting.to_spike_vector())


@pytest.mark.parametrize("problem", ["unit_index", "segment_index", "fields", "pickle", "truncated", "info"])
def test_corrupt_folders_are_named(tmp_path, sorting, problem):
    save_sorting(sorting, folder=tmp_path / "s", format="numpy_folder")
    spikes_file = tmp_path / "s" / "spikes.npy"
    spikes = sorting.to_spike_vector().copy()
    expected = "spikes.npy"
    if problem == "unit_index":
        spikes["unit_index"][0] = 3
        np.save(spikes_file, spikes)
    elif problem == "segment_index":
        spikes["segment_index"][-1] = 2
        np.save(spikes_file, spikes)
    elif problem == "fields":
        np.save(spikes_file, np.arange(4))
    elif problem == "pickle":
        np.save(spikes_file, np.array([object()], dtype=object), allow_pickle=True)
    elif problem == "truncated":
        spikes_file.write_bytes(spikes_file.read_bytes()[:-10])
    else:
        (tmp_path / "s" / "numpysorting_info.json").write_text('{"unit_ids": [0, 1, 2]}')
        expected = "numpysorting_info.json"
    with pytest.raises(CorruptFolderError, match=expected):
        load_extractor(tmp_path / "s")
