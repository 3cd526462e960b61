"""Snippets: sicore's npz folder (default) and SpikeInterface's npy folder, round trips and corruption."""

import json

import numpy as np
import pytest

from sicore.io import CorruptFolderError, NpyFolderSnippets, NpzFolderSnippets, load_extractor, save_snippets
from sicore.snippets import NumpySnippets


@pytest.fixture
def snippets():
    rng = np.random.default_rng(5)
    snippets = NumpySnippets([rng.integers(-500, 500, (7, 10, 4)).astype("int16"),
                              rng.integers(-500, 500, (3, 10, 4)).astype("int16")],
                             [np.array([5, 9, 20, 31, 40, 52, 60]), np.array([2, 8, 11])], 30000.0, nbefore=3,
                             channel_ids=["a", "b", "c", "d"])
    snippets.set_dummy_probe_from_locations(np.c_[np.zeros(4), np.arange(4) * 15.0])
    snippets.set_channel_gains(0.5)
    snippets.set_channel_offsets(0.0)
    snippets.set_property("quality", np.array(["g", "g", "b", "g"]))
    snippets.annotate(detector="threshold")
    return snippets


def assert_same_snippets(saved, source):
    assert saved.channel_ids.tolist() == source.channel_ids.tolist()
    assert saved.nbefore == source.nbefore and saved.snippet_len == source.snippet_len
    for i in range(source.get_num_segments()):
        np.testing.assert_array_equal(saved.get_snippets(segment_index=i), source.get_snippets(segment_index=i))
        np.testing.assert_array_equal(saved.get_frames(segment_index=i), source.get_frames(segment_index=i))
    for key in source.get_property_keys():
        np.testing.assert_array_equal(saved.get_property(key), source.get_property(key), err_msg=key)
    assert saved.get_annotation("detector") == "threshold"
    np.testing.assert_array_equal(saved.get_channel_locations(), source.get_channel_locations())


@pytest.mark.parametrize(("fmt", "cls"), [("npz", NpzFolderSnippets), ("npy", NpyFolderSnippets)])
def test_round_trip(tmp_path, snippets, fmt, cls):
    saved = save_snippets(snippets, folder=tmp_path / "snip", format=fmt)
    assert isinstance(saved, cls)
    assert_same_snippets(saved, snippets)
    assert_same_snippets(load_extractor(tmp_path / "snip"), snippets)
    sub = saved.frame_slice(start_frame=10, end_frame=45)
    np.testing.assert_array_equal(sub.get_frames(segment_index=0), [10, 21, 30])


def test_npz_file_loads_alone(tmp_path, snippets):
    save_snippets(snippets, folder=tmp_path / "snip")
    loaded = load_extractor(tmp_path / "snip" / "snippets.npz")
    np.testing.assert_array_equal(loaded.get_snippets(segment_index=1), snippets.get_snippets(segment_index=1))


def test_unaligned_snippets(tmp_path):
    snippets = NumpySnippets([np.ones((2, 5, 1), dtype="float32")], [np.array([1, 2])], 1000.0)
    assert load_extractor(save_snippets(snippets, folder=tmp_path / "s")._kwargs["folder_path"]).nbefore is None


def test_npy_json_escaping_the_folder_is_refused(tmp_path, snippets):
    save_snippets(snippets, folder=tmp_path / "snip", format="npy")
    npy_json = json.loads((tmp_path / "snip" / "npy.json").read_text())
    npy_json["kwargs"]["file_paths"] = ["../../etc/passwd"]
    (tmp_path / "snip" / "npy.json").write_text(json.dumps(npy_json))
    with pytest.raises(CorruptFolderError, match="npy.json.*outside"):
        NpyFolderSnippets(tmp_path / "snip")


def test_missing_npz_is_named(tmp_path, snippets):
    save_snippets(snippets, folder=tmp_path / "snip")
    (tmp_path / "snip" / "snippets.npz").unlink()
    with pytest.raises(FileNotFoundError, match="snippets.npz"):
        load_extractor(tmp_path / "snip")
