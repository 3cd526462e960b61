import numpy as np
import pytest

from sicore.numpy_objects import NumpyRecording


def test_basic_getters(recording, traces_list):
    assert recording.get_num_channels() == 8
    assert recording.channel_ids.tolist() == [f"ch{i}" for i in range(8)]
    assert recording.sampling_frequency == 30000.0
    assert recording.get_num_segments() == 2
    assert recording.get_num_samples(segment_index=1) == 1700
    assert recording.get_total_samples() == 4700
    assert recording.get_total_duration() == pytest.approx(4700 / 30000)
    assert recording.get_dtype() == np.int16
    assert "2 segments" in repr(recording)


def test_segment_index_required_on_multi_segment(recording):
    with pytest.raises(ValueError, match="segment_index is required"):
        recording.get_num_samples()
    with pytest.raises(ValueError, match="segment_index is required"):
        recording.get_traces()
    with pytest.raises(ValueError, match="out of range"):
        recording.get_traces(segment_index=2)


def test_get_traces_values_and_channel_order(recording, traces_list):
    traces = recording.get_traces(segment_index=0, start_frame=100, end_frame=200, channel_ids=["ch5", "ch1"])
    np.testing.assert_array_equal(traces, traces_list[0][100:200][:, [5, 1]])
    full = recording.get_traces(segment_index=1)
    np.testing.assert_array_equal(full, traces_list[1])
    assert np.shares_memory(full, traces_list[1])  # in-memory reads do not copy


def test_scaled_traces_are_float32_gain_offset(recording, traces_list):
    gains = np.linspace(0.1, 0.8, 8).astype("float32")
    offsets = (np.arange(8) - 4).astype("float32")
    scaled = recording.get_traces(segment_index=0, start_frame=10, end_frame=50, return_scaled=True)
    assert scaled.dtype == np.float32
    expected = traces_list[0][10:50].astype("float32") * gains + offsets
    np.testing.assert_allclose(scaled, expected, rtol=1e-6)
    alias = recording.get_traces(segment_index=0, start_frame=10, end_frame=50, return_in_uV=True)
    np.testing.assert_array_equal(alias, scaled)
    sub = recording.get_traces(segment_index=0, start_frame=10, end_frame=50, channel_ids=["ch7"], return_scaled=True)
    np.testing.assert_allclose(sub[:, 0], expected[:, 7], rtol=1e-6)


def test_scaling_without_gains_is_a_clear_error(traces_list):
    rec = NumpyRecording(traces_list, sampling_frequency=1000.0)
    with pytest.raises(ValueError, match="gain_to_uV"):
        rec.get_traces(segment_index=0, return_scaled=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start_frame": -1}, "start_frame"),
        ({"end_frame": 3001}, "end_frame"),
        ({"start_frame": 20, "end_frame": 10}, "end_frame"),
        ({"start_frame": 1.5}, "start_frame"),
        ({"channel_ids": ["nope"]}, "nope"),
    ],
)
def test_bad_get_traces_arguments(recording, kwargs, match):
    with pytest.raises((ValueError, KeyError), match=match):
        recording.get_traces(segment_index=0, **kwargs)


def test_numpy_recording_requires_sampling_frequency_and_consistent_shapes():
    with pytest.raises(ValueError, match="sampling_frequency"):
        NumpyRecording(traces_list=[np.zeros((10, 2))])
    with pytest.raises(ValueError, match="channels"):
        NumpyRecording([np.zeros((10, 2)), np.zeros((10, 3))], sampling_frequency=1.0)
    with pytest.raises(ValueError, match="2-d"):
        NumpyRecording([np.zeros(10)], sampling_frequency=1.0)
    single = NumpyRecording(np.zeros((10, 2)), sampling_frequency=1.0)
    assert single.get_num_segments() == 1 and single.get_num_samples() == 10


def test_views_of_views_equal_parent_slices_without_copy(recording, traces_list):
    view = recording.frame_slice(start_frame=100, end_frame=1600).channel_slice(["ch6", "ch2", "ch3", "ch4"])
    view2 = view.frame_slice(50, 700).channel_slice(["ch3", "ch4"])
    assert view2.get_num_samples(segment_index=0) == 650
    expected = traces_list[0][150:800][:, [3, 4]]
    got = view2.get_traces(segment_index=0)
    np.testing.assert_array_equal(got, expected)
    # contiguous channel selections read the parent without copying
    assert np.shares_memory(got, traces_list[0])
    np.testing.assert_array_equal(
        view2.get_traces(segment_index=1, start_frame=10, end_frame=20, channel_ids=["ch4"]),
        traces_list[1][160:170][:, [4]],
    )
    # metadata propagates through views
    np.testing.assert_allclose(view2.get_property("gain_to_uV"), np.linspace(0.1, 0.8, 8)[[3, 4]])


def test_frame_slice_multi_segment_and_bounds(recording):
    view = recording.frame_slice(100, None)
    assert view.get_num_samples(segment_index=0) == 2900
    assert view.get_num_samples(segment_index=1) == 1600
    with pytest.raises(ValueError, match="end_frame"):
        recording.frame_slice(0, 2000)  # segment 1 has only 1700 samples


def test_channel_slice_rename_and_remove(recording, traces_list):
    renamed = recording.channel_slice(["ch0", "ch1"], renamed_channel_ids=["a", "b"])
    assert renamed.channel_ids.tolist() == ["a", "b"]
    np.testing.assert_array_equal(renamed.get_traces(segment_index=0, channel_ids=["b"]), traces_list[0][:, [1]])
    removed = recording.remove_channels(channel_ids=["ch0", "ch7"])
    assert removed.channel_ids.tolist() == [f"ch{i}" for i in range(1, 7)]
    alias = recording.remove_channels(remove_channel_ids=["ch0", "ch7"])
    assert alias.channel_ids.tolist() == removed.channel_ids.tolist()
    assert recording.select_channels(["ch2"]).channel_ids.tolist() == ["ch2"]
    with pytest.raises(KeyError, match="zz"):
        recording.channel_slice(["zz"])


def test_groups_and_split_by(recording, traces_list):
    recording.set_channel_groups([0] * 4 + [1] * 2 + [2] * 2)
    assert recording.get_channel_groups().tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    parts = recording.split_by("group")
    assert sorted(parts) == [0, 1, 2]
    np.testing.assert_array_equal(parts[1].get_traces(segment_index=0), traces_list[0][:, 4:6])
    assert parts[2].get_channel_groups().tolist() == [2, 2]
    with pytest.raises(KeyError, match="nothere"):
        recording.split_by("nothere")


def test_times(recording):
    fs = recording.sampling_frequency
    np.testing.assert_allclose(recording.get_times(segment_index=0), np.arange(3000) / fs)
    assert not recording.has_time_vector(segment_index=0)
    timestamps = np.arange(3000) / fs + 300
    recording.set_times(times=timestamps, segment_index=0)
    assert recording.has_time_vector(segment_index=0)
    np.testing.assert_array_equal(recording.get_times(segment_index=0), timestamps)
    sliced = recording.frame_slice(1000, 1500)
    np.testing.assert_array_equal(sliced.get_times(segment_index=0), timestamps[1000:1500])
    np.testing.assert_allclose(sliced.get_times(segment_index=1), np.arange(1000, 1500) / fs)
    assert sliced.sample_index_to_time(10, segment_index=0) == timestamps[1010]
    with pytest.raises(ValueError, match="one time per sample"):
        recording.set_times(np.arange(10), segment_index=0)


def test_t_start_is_honoured(traces_list):
    rec = NumpyRecording(traces_list, sampling_frequency=1000.0, t_starts=[5.0, 100.0])
    assert rec.get_times(segment_index=1)[0] == 100.0
    assert rec.frame_slice(10, 20).get_times(segment_index=0)[0] == pytest.approx(5.01)
    assert rec.time_to_sample_index(5.5, segment_index=0) == 500
