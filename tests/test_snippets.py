"""BaseSnippets / NumpySnippets: values against the arrays built here, views, probe, scaling, errors."""

import pickle

import numpy as np
import pytest

from sicore.snippets import BaseSnippets, ChannelSliceSnippets, FrameSliceSnippets, NumpySnippets

FS = 30000.0
NBEFORE = 3
SNIPPET_LEN = 8
CHANNEL_IDS = ["a", "b", "c", "d"]


@pytest.fixture
def arrays():
    """Two segments: cut-outs (num_snippets, 8, 4) int16 and their peak frames (segment 1 unsorted)."""
    rng = np.random.default_rng(7)
    waveforms = [
        rng.integers(-500, 500, size=(6, SNIPPET_LEN, 4)).astype("int16"),
        rng.integers(-500, 500, size=(5, SNIPPET_LEN, 4)).astype("int16"),
    ]
    frames = [np.array([10, 25, 40, 55, 70, 85]), np.array([60, 5, 33, 90, 18])]
    return waveforms, frames


@pytest.fixture
def snippets(arrays):
    waveforms, frames = arrays
    return NumpySnippets(snippets_list=waveforms, spikesframes_list=frames, sampling_frequency=FS,
                         nbefore=NBEFORE, channel_ids=CHANNEL_IDS)


def test_basic_getters(snippets):
    assert isinstance(snippets, BaseSnippets)
    assert snippets.get_num_segments() == 2
    assert snippets.get_num_channels() == 4
    assert snippets.channel_ids.tolist() == CHANNEL_IDS
    assert snippets.sampling_frequency == FS
    assert snippets.get_dtype() == np.int16
    assert (snippets.nbefore, snippets.nafter, snippets.snippet_len) == (NBEFORE, SNIPPET_LEN - NBEFORE, SNIPPET_LEN)
    assert snippets.is_aligned()
    assert snippets.get_num_snippets(segment_index=0) == 6
    assert snippets.get_num_snippets(segment_index=1) == 5
    assert snippets.get_total_snippets() == 11
    assert snippets.get_memory_size() == 11 * SNIPPET_LEN * 4 * 2
    text = repr(snippets)
    assert text.startswith("NumpySnippets: 4 channels - 30.0kHz - 2 segments - 11 snippets")
    assert "8 samples per snippet (3 before peak)" in text and "int16" in text


def test_frames_and_snippets_values(snippets, arrays):
    waveforms, frames = arrays
    for seg in range(2):
        np.testing.assert_array_equal(snippets.get_frames(segment_index=seg), frames[seg])
        np.testing.assert_array_equal(snippets.get_snippets(segment_index=seg), waveforms[seg])
    np.testing.assert_array_equal(snippets.get_frames(indices=[4, 1], segment_index=0), frames[0][[4, 1]])
    np.testing.assert_array_equal(snippets.get_frames(indices=[-1], segment_index=1), frames[1][[-1]])
    mask = frames[1] > 20
    np.testing.assert_array_equal(snippets.get_frames(indices=mask, segment_index=1), frames[1][mask])
    got = snippets.get_snippets(indices=[3, 0, 3], segment_index=0, channel_ids=["d", "b"])
    np.testing.assert_array_equal(got, waveforms[0][[3, 0, 3]][:, :, [3, 1]])
    assert snippets.get_snippets(indices=[], segment_index=0).shape == (0, SNIPPET_LEN, 4)
    np.testing.assert_array_equal(snippets.get_snippets(indices=slice(1, None, 2), segment_index=0), waveforms[0][1::2])


def test_get_snippets_from_frames(snippets, arrays):
    waveforms, frames = arrays
    # [start, end): 25 kept, 55 excluded
    np.testing.assert_array_equal(snippets.get_snippets_from_frames(0, 25, 55), waveforms[0][1:3])
    keep = (frames[1] >= 18) & (frames[1] < 61)
    got = snippets.get_snippets_from_frames(segment_index=1, start_frame=18, end_frame=61, channel_ids=["c"])
    np.testing.assert_array_equal(got, waveforms[1][keep][:, :, [2]])
    np.testing.assert_array_equal(snippets.get_snippets_from_frames(1, start_frame=60), waveforms[1][frames[1] >= 60])


def test_segment_index_checks(snippets):
    with pytest.raises(ValueError, match="segment_index is required"):
        snippets.get_num_snippets()
    with pytest.raises(ValueError, match="segment_index is required"):
        snippets.get_snippets()
    with pytest.raises(ValueError, match="out of range"):
        snippets.get_frames(segment_index=2)
    with pytest.raises(ValueError, match="segment_index must be an int"):
        snippets.get_snippets(segment_index="0")


def test_mono_segment_needs_no_segment_index(arrays):
    waveforms, frames = arrays
    mono = NumpySnippets(waveforms[0], frames[0], FS, nbefore=NBEFORE)
    assert mono.channel_ids.tolist() == [0, 1, 2, 3]
    assert mono.get_num_snippets() == 6
    np.testing.assert_array_equal(mono.get_snippets(channel_ids=[2]), waveforms[0][:, :, [2]])


def test_not_aligned(arrays):
    waveforms, frames = arrays
    unaligned = NumpySnippets(waveforms, frames, FS)
    assert unaligned.nbefore is None and unaligned.nafter is None
    assert not unaligned.is_aligned()
    assert "not aligned" in repr(unaligned)


def test_bad_indices_and_channels(snippets):
    with pytest.raises(IndexError, match="indices out of range"):
        snippets.get_snippets(indices=[6], segment_index=0)
    with pytest.raises(ValueError, match="boolean mask"):
        snippets.get_frames(indices=[True, False], segment_index=0)
    with pytest.raises(KeyError, match="channel_ids: 'zz'"):
        snippets.get_snippets(segment_index=0, channel_ids=["a", "zz"])
    with pytest.raises(KeyError, match="'zz'"):
        snippets.channel_slice(["zz"])


def test_channel_slice(snippets, arrays):
    waveforms, frames = arrays
    view = snippets.channel_slice(["c", "a"], renamed_channel_ids=["C", "A"])
    assert isinstance(view, ChannelSliceSnippets)
    assert view.channel_ids.tolist() == ["C", "A"]
    assert view.nbefore == NBEFORE and view.snippet_len == SNIPPET_LEN
    np.testing.assert_array_equal(view.get_snippets(segment_index=1), waveforms[1][:, :, [2, 0]])
    np.testing.assert_array_equal(view.get_snippets(indices=[2], segment_index=0, channel_ids=["A"]),
                                  waveforms[0][[2]][:, :, [0]])
    np.testing.assert_array_equal(view.get_frames(segment_index=1), frames[1])
    assert view._kwargs["parent_snippets"] is snippets
    # select_channels / remove_channels come from the base class
    np.testing.assert_array_equal(snippets.select_channels(["d"]).get_snippets(segment_index=0),
                                  waveforms[0][:, :, [3]])
    assert snippets.remove_channels(["b"]).channel_ids.tolist() == ["a", "c", "d"]
    assert snippets.rename_channels(["w", "x", "y", "z"]).channel_ids.tolist() == ["w", "x", "y", "z"]


def test_frame_slice_multi_segment(snippets, arrays):
    waveforms, frames = arrays
    view = snippets.frame_slice(18, 60)
    assert isinstance(view, FrameSliceSnippets)
    for seg in range(2):
        keep = (frames[seg] >= 18) & (frames[seg] < 60)
        assert view.get_num_snippets(segment_index=seg) == keep.sum()
        np.testing.assert_array_equal(view.get_frames(segment_index=seg), frames[seg][keep] - 18)
        np.testing.assert_array_equal(view.get_snippets(segment_index=seg), waveforms[seg][keep])
    assert view.get_total_snippets() == 3 + 2
    # unbounded ends
    open_end = snippets.frame_slice(40, None)
    np.testing.assert_array_equal(open_end.get_frames(segment_index=0), frames[0][frames[0] >= 40] - 40)
    np.testing.assert_array_equal(snippets.frame_slice(None, 30).get_frames(segment_index=1),
                                  frames[1][frames[1] < 30])
    assert snippets.frame_slice(200, 300).get_num_snippets(segment_index=0) == 0


def test_views_of_views(snippets, arrays):
    waveforms, frames = arrays
    keep1 = (frames[1] >= 10) & (frames[1] < 70)
    chained = snippets.frame_slice(10, 70).channel_slice(["d", "a"]).frame_slice(8, 50)
    keep2 = (frames[1][keep1] - 10 >= 8) & (frames[1][keep1] - 10 < 50)
    np.testing.assert_array_equal(chained.get_frames(segment_index=1), frames[1][keep1][keep2] - 18)
    np.testing.assert_array_equal(chained.get_snippets(segment_index=1), waveforms[1][keep1][keep2][:, :, [3, 0]])
    np.testing.assert_array_equal(chained.get_snippets(indices=[-1], segment_index=1, channel_ids=["a"]),
                                  waveforms[1][keep1][keep2][[-1]][:, :, [0]])
    other_order = snippets.channel_slice(["b", "c", "d"]).frame_slice(25, 71).channel_slice(["d", "b"])
    keep0 = (frames[0] >= 25) & (frames[0] < 71)
    np.testing.assert_array_equal(other_order.get_snippets(segment_index=0), waveforms[0][keep0][:, :, [3, 1]])
    np.testing.assert_array_equal(other_order.get_snippets_from_frames(0, 0, 20), waveforms[0][[1, 2]][:, :, [3, 1]])


def test_frame_slice_errors(snippets):
    with pytest.raises(ValueError, match="start_frame must be >= 0"):
        snippets.frame_slice(-1, 10)
    with pytest.raises(ValueError, match="end_frame 5 is before start_frame 10"):
        snippets.frame_slice(10, 5)
    with pytest.raises(ValueError, match="start_frame must be an integer"):
        snippets.frame_slice(1.5, 10)


def test_probe_propagates_through_channel_slice(snippets):
    locations = np.array([[0.0, 0.0], [0.0, 20.0], [0.0, 40.0], [16.0, 60.0]])
    snippets.set_dummy_probe_from_locations(locations)
    assert snippets.has_probe()
    view = snippets.frame_slice(0, 50).channel_slice(["d", "b"])
    assert view.has_probe()
    np.testing.assert_array_equal(view.get_channel_locations(), locations[[3, 1]])
    np.testing.assert_array_equal(view.get_probe().contact_positions, locations[[3, 1]])


def test_set_probe_with_wiring(snippets, arrays):
    from probeinterface import generate_linear_probe

    waveforms, _ = arrays
    probe = generate_linear_probe(num_elec=3, ypitch=25)
    probe.set_device_channel_indices([3, 0, 2])  # contact i is wired to channel [3, 0, 2][i]
    wired = snippets.set_probe(probe)
    # the unwired channel "b" is dropped; channels keep their order, each at its contact's position
    assert wired.channel_ids.tolist() == ["a", "c", "d"]
    np.testing.assert_array_equal(wired.get_channel_locations(), probe.contact_positions[[1, 2, 0]])
    np.testing.assert_array_equal(wired.get_snippets(segment_index=0), waveforms[0][:, :, [0, 2, 3]])
    sub = wired.channel_slice(["d", "c"])
    np.testing.assert_array_equal(sub.get_channel_locations(), probe.contact_positions[[0, 2]])
    np.testing.assert_array_equal(sub.get_snippets(segment_index=1), waveforms[1][:, :, [3, 2]])
    assert not snippets.has_probe()  # set_probe returns a new object


def test_groups_split_by(snippets, arrays):
    waveforms, _ = arrays
    snippets.set_channel_groups([0, 1, 0, 1])
    parts = snippets.split_by("group")
    assert parts[1].channel_ids.tolist() == ["b", "d"]
    np.testing.assert_array_equal(parts[0].get_snippets(segment_index=1), waveforms[1][:, :, [0, 2]])


def test_scaling(snippets, arrays):
    waveforms, _ = arrays
    with pytest.raises(ValueError, match="gain_to_uV"):
        snippets.get_snippets(segment_index=0, return_scaled=True)
    gains = np.array([0.5, 1.0, 2.0, 0.195])
    offsets = np.array([0.0, -1.0, 3.0, 10.0])
    snippets.set_channel_gains(gains)
    snippets.set_channel_offsets(offsets)
    assert snippets.has_scaleable_traces()
    scaled = snippets.get_snippets(segment_index=1, return_scaled=True)
    assert scaled.dtype == np.float32
    expected = waveforms[1].astype("float32") * gains.astype("float32") + offsets.astype("float32")
    np.testing.assert_allclose(scaled, expected, rtol=1e-6)
    np.testing.assert_array_equal(snippets.get_snippets(segment_index=1, return_in_uV=True), scaled)
    # the raw snippets are untouched
    np.testing.assert_array_equal(snippets.get_snippets(segment_index=1), waveforms[1])
    view = snippets.frame_slice(0, 50).channel_slice(["d", "a"])
    got = view.get_snippets(segment_index=0, channel_ids=["a"], return_scaled=True)
    np.testing.assert_allclose(got, waveforms[0][:3][:, :, [0]].astype("float32") * 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="disagree"):
        snippets.get_snippets(segment_index=0, return_scaled=True, return_in_uV=False)


def test_construction_errors(arrays):
    waveforms, frames = arrays
    with pytest.raises(ValueError, match=r"spikesframes_list\[1\] must be 1-d with one frame per snippet \(5\)"):
        NumpySnippets(waveforms, [frames[0], frames[1][:3]], FS)
    with pytest.raises(ValueError, match="spikesframes_list has 1 segments, snippets_list has 2"):
        NumpySnippets(waveforms, [frames[0]], FS)
    with pytest.raises(ValueError, match=r"snippets_list\[0\] must be 3-d"):
        NumpySnippets([waveforms[0][:, :, 0]], [frames[0]], FS)
    with pytest.raises(ValueError, match=r"snippets_list\[1\] has \(snippet_len, num_channels\)"):
        NumpySnippets([waveforms[0], waveforms[1][:, :5]], frames, FS)
    with pytest.raises(ValueError, match=r"snippets_list\[1\] has dtype"):
        NumpySnippets([waveforms[0], waveforms[1].astype("float32")], frames, FS)
    with pytest.raises(ValueError, match="channel_ids has 3 ids for 4 channels"):
        NumpySnippets(waveforms, frames, FS, channel_ids=["a", "b", "c"])
    with pytest.raises(ValueError, match="nbefore must be in"):
        NumpySnippets(waveforms, frames, FS, nbefore=SNIPPET_LEN)
    with pytest.raises(ValueError, match="integer sample indices"):
        NumpySnippets(waveforms, [frames[0] + 0.5, frames[1]], FS)
    with pytest.raises(ValueError, match="sampling_frequency"):
        NumpySnippets(waveforms, frames, 0.0)
    with pytest.raises(ValueError, match="snippets_list must be a non-empty list"):
        NumpySnippets([], [], FS)


def test_empty_segment_and_float_frames():
    empty = NumpySnippets([np.zeros((0, 5, 2), "float32")], [np.zeros(0, "int64")], FS, nbefore=1)
    assert empty.get_num_snippets() == 0
    assert empty.get_snippets().shape == (0, 5, 2)
    assert empty.frame_slice(0, 10).get_frames().size == 0
    integral = NumpySnippets([np.ones((2, 5, 2))], [np.array([3.0, 9.0])], FS, nbefore=1)
    assert integral.get_frames().dtype == np.int64


def test_in_memory_copy_clone_pickle(snippets, arrays):
    waveforms, frames = arrays
    assert not snippets.is_json_serializable()
    assert not snippets.frame_slice(0, 10).is_json_serializable()
    snippets.set_property("quality", np.arange(4))
    view = snippets.channel_slice(["b", "c"]).frame_slice(20, 80)
    loaded = NumpySnippets.from_snippets(view)
    assert loaded.get_property("quality").tolist() == [1, 2]
    np.testing.assert_array_equal(loaded.get_snippets(segment_index=0), view.get_snippets(segment_index=0))
    np.testing.assert_array_equal(loaded.get_frames(segment_index=1), view.get_frames(segment_index=1))
    clone = view.clone()
    np.testing.assert_array_equal(clone.get_snippets(segment_index=1), view.get_snippets(segment_index=1))
    restored = pickle.loads(pickle.dumps(view))
    np.testing.assert_array_equal(restored.get_snippets(segment_index=1), view.get_snippets(segment_index=1))
    assert restored.channel_ids.tolist() == ["b", "c"]
