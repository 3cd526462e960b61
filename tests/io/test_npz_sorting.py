"""Npz sortings: SpikeInterface's NpzSortingExtractor keys, the npz folder, metadata and unsafe files."""

import json
import shutil

import numpy as np
import pytest

from sicore.io import (CorruptFolderError, NpzFolderSorting, NpzSortingExtractor, load_extractor, read_npz_sorting,
                       save_sorting, write_npz_sorting)
from sicore.numpy_objects import NumpySorting


@pytest.fixture
def sorting():
    times = [np.array([5, 3, 9, 9, 40, 41]), np.array([1, 2, 2])]
    labels = [np.array(["u1", "u0", "u1", "u0", "u2", "u1"]), np.array(["u2", "u2", "u0"])]
    sorting = NumpySorting.from_times_labels(times, labels, 30000.0, unit_ids=np.array(["u0", "u1", "u2", "u3"]))
    sorting.set_property("quality", np.array(["good", "mua", "good", "noise"]))
    sorting.set_property("snr", np.array([3.5, 1.0, 7.25, 0.0]))
    sorting.annotate(name="gt", params={"threshold": 5})
    return sorting


def assert_same_sorting(saved, source):
    assert saved.unit_ids.tolist() == source.unit_ids.tolist()
    assert saved.sampling_frequency == source.sampling_frequency
    assert saved.get_num_segments() == source.get_num_segments()
    np.testing.assert_array_equal(saved.to_spike_vector(), source.to_spike_vector())
    for unit_id in source.unit_ids:
        for i in range(source.get_num_segments()):
            np.testing.assert_array_equal(saved.get_unit_spike_train(unit_id, segment_index=i),
                                          source.get_unit_spike_train(unit_id, segment_index=i))


def test_npz_file_keys_as_spikeinterface(tmp_path, sorting):
    write_npz_sorting(sorting, tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as npz:
        assert set(npz.files) == {"unit_ids", "num_segment", "sampling_frequency", "spike_indexes_seg0",
                                  "spike_labels_seg0", "spike_indexes_seg1", "spike_labels_seg1"}
        np.testing.assert_array_equal(npz["num_segment"], [2])
        np.testing.assert_array_equal(npz["spike_indexes_seg0"], [3, 5, 9, 9, 40, 41])
        np.testing.assert_array_equal(npz["spike_labels_seg0"], ["u0", "u1", "u0", "u1", "u2", "u1"])
        assert npz["spike_indexes_seg0"].dtype == np.int64
    loaded = read_npz_sorting(tmp_path / "s.npz")
    assert isinstance(loaded, NpzSortingExtractor)
    assert_same_sorting(loaded, sorting)
    assert_same_sorting(load_extractor(tmp_path / "s.npz"), sorting)


def test_default_save_is_an_npz_folder(tmp_path, sorting):
    saved = save_sorting(sorting, folder=tmp_path / "sorting")
    assert isinstance(saved, NpzFolderSorting)
    assert (tmp_path / "sorting" / "sorting_cached.npz").is_file()
    npz_json = json.loads((tmp_path / "sorting" / "npz.json").read_text())
    assert npz_json["kwargs"] == {"file_path": "sorting_cached.npz"} and npz_json["relative_paths"] is True
    si_folder = json.loads((tmp_path / "sorting" / "si_folder.json").read_text())
    assert si_folder["class"] == "spikeinterface.core.sortingfolder.NpzFolderSorting"
    for loaded in (saved, load_extractor(tmp_path / "sorting")):
        assert_same_sorting(loaded, sorting)
        np.testing.assert_array_equal(loaded.get_property("quality"), sorting.get_property("quality"))
        np.testing.assert_array_equal(loaded.get_property("snr"), sorting.get_property("snr"))
        assert loaded.get_annotation("params") == {"threshold": 5}
    shutil.move(tmp_path / "sorting", tmp_path / "moved")
    assert_same_sorting(load_extractor(tmp_path / "moved"), sorting)


def test_int_unit_ids_and_empty_segment(tmp_path):
    sorting = NumpySorting.from_times_labels([np.array([4, 2]), np.zeros(0, dtype=int)],
                                             [np.array([7, 3]), np.zeros(0, dtype=int)], 1000.0,
                                             unit_ids=np.array([3, 7, 11]))
    saved = save_sorting(sorting, folder=tmp_path / "s")
    assert saved.unit_ids.dtype.kind == "i"
    assert_same_sorting(saved, sorting)


def test_existing_folder_needs_overwrite(tmp_path, sorting):
    save_sorting(sorting, folder=tmp_path / "s")
    with pytest.raises(FileExistsError, match="s"):
        save_sorting(sorting, folder=tmp_path / "s")
    save_sorting(sorting.select_units(["u1"]), folder=tmp_path / "s", overwrite=True)
    assert load_extractor(tmp_path / "s").unit_ids.tolist() == ["u1"]


def test_pickled_npz_member_is_refused(tmp_path):
    np.savez(tmp_path / "evil.npz", unit_ids=np.array([object()], dtype=object), num_segment=np.array([1]),
             sampling_frequency=np.array([1.0]))
    with pytest.raises(CorruptFolderError, match="evil.npz.*unit_ids.*never unpickles"):
        read_npz_sorting(tmp_path / "evil.npz")


def test_unknown_label_and_missing_key_are_named(tmp_path, sorting):
    arrays = dict(unit_ids=np.array(["a"]), num_segment=np.array([1]), sampling_frequency=np.array([1.0]),
                  spike_indexes_seg0=np.array([1, 2]), spike_labels_seg0=np.array(["a", "zz"]))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CorruptFolderError, match="bad.npz.*'zz'"):
        read_npz_sorting(tmp_path / "bad.npz")
    del arrays["spike_labels_seg0"]
    np.savez(tmp_path / "bad2.npz", **arrays)
    with pytest.raises(CorruptFolderError, match="bad2.npz.*spike_labels_seg0"):
        read_npz_sorting(tmp_path / "bad2.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CorruptFolderError, match="junk.npz"):
        read_npz_sorting(tmp_path / "junk.npz")


def test_npz_json_escaping_the_folder_is_refused(tmp_path, sorting):
    save_sorting(sorting, folder=tmp_path / "s")
    write_npz_sorting(sorting, tmp_path / "outside.npz")
    npz_json = json.loads((tmp_path / "s" / "npz.json").read_text())
    npz_json["kwargs"]["file_path"] = "../outside.npz"
    (tmp_path / "s" / "npz.json").write_text(json.dumps(npz_json))
    with pytest.raises(CorruptFolderError, match="npz.json.*outside"):
        load_extractor(tmp_path / "s")
