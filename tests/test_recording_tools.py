"""Tests of sicore.recording_tools: every number is checked against numpy on traces the test reads itself."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sicore import NumpyRecording
from sicore.io.binary import read_binary
from sicore.recording_tools import (
    MAD_TO_STD_FACTOR,
    get_channel_distances,
    get_chunk_with_margin,
    get_closest_channels,
    get_noise_levels,
    get_random_data_chunks,
    get_random_recording_slices,
    get_random_sample_slices,
    order_channels_by_depth,
)

FS = 10_000.0


def make_recording(dtype="int16", num_channels=5, lengths=(30_000, 45_000), gains=0.195, offsets=0.0, seed=0):
    rng = np.random.default_rng(seed)
    traces_list = []
    for n in lengths:
        noise = rng.standard_normal((n, num_channels)) * np.linspace(5, 25, num_channels)
        spikes = (rng.random((n, num_channels)) < 0.002) * -300.0  # outliers the MAD must ignore
        traces = noise + spikes + rng.integers(-20, 20, num_channels)
        traces_list.append(traces.astype(dtype))
    rec = NumpyRecording(traces_list, sampling_frequency=FS)
    if gains is not None:
        rec.set_channel_gains(gains)
        rec.set_channel_offsets(offsets)
    return rec


def numpy_noise(rec, slices, scaled, method):
    """Reference: numpy on each chunk read by the test, then the mean over chunks."""
    per_chunk = []
    for seg, start, end in slices:
        x = rec.get_traces(segment_index=seg, start_frame=start, end_frame=end, return_scaled=scaled)
        if method == "mad":
            med = np.median(x, axis=0, keepdims=True)
            per_chunk.append(np.median(np.abs(x - med), axis=0) / MAD_TO_STD_FACTOR)
        elif method == "std":
            per_chunk.append(np.std(x, axis=0))
        else:
            x = x.astype(np.float64) if x.dtype.kind != "f" else x
            per_chunk.append(np.sqrt(np.sum(np.square(x), axis=0) / x.shape[0]))
    return np.mean(np.stack(per_chunk), axis=0)


# ------------------------------------------------------------------------------------ random slices
def test_random_slices_reproduce_spikeinterface_positions():
    rec = NumpyRecording([np.zeros((30000, 2)), np.zeros((45000, 2))], sampling_frequency=FS)
    # output of SpikeInterface 0.105.3 get_random_sample_slices for the same arguments
    assert get_random_recording_slices(rec, num_chunks_per_segment=4, chunk_duration="100ms", seed=42) == [
        (0, 2588, 3588), (0, 12727, 13727), (0, 18983, 19983), (0, 22445, 23445),
        (1, 3781, 4781), (1, 19053, 20053), (1, 30684, 31684), (1, 37779, 38779),
    ]
    assert get_random_recording_slices(rec, num_chunks_per_segment=3, chunk_size=777, margin_frames=100, seed=7) == [
        (0, 18242, 19019), (0, 19957, 20734), (0, 27524, 28301),
        (1, 25558, 26335), (1, 34248, 35025), (1, 39598, 40375),
    ]
    assert get_random_sample_slices is get_random_recording_slices


def test_random_slices_follow_documented_draw():
    rec = make_recording(lengths=(20_000, 7_000, 12_345))
    slices = get_random_recording_slices(rec, num_chunks_per_segment=6, chunk_duration=0.05, margin_frames=30, seed=3)
    rng = np.random.default_rng(3)
    expected = []
    for seg, n in enumerate((20_000, 7_000, 12_345)):
        starts = np.sort(rng.integers(30, n - 500 - 30, size=6, endpoint=True))
        expected += [(seg, int(s), int(s) + 500) for s in starts]
    assert slices == expected
    assert all(30 <= s and e <= rec.get_num_samples(seg) - 30 for seg, s, e in slices)


def test_random_slices_lengths_and_precedence():
    rec = make_recording()
    assert all(e - s == 5000 for _, s, e in get_random_recording_slices(rec, seed=0))  # 500 ms default
    assert all(e - s == 1234 for _, s, e in get_random_recording_slices(rec, chunk_size=1234, chunk_duration="1s"))
    assert all(e - s == 20 for _, s, e in get_random_recording_slices(rec, chunk_duration="2ms"))
    assert len(get_random_recording_slices(rec, num_chunks_per_segment=3)) == 6
    # seed None: fresh draws; an int seed: the same draws
    assert get_random_recording_slices(rec, seed=5) == get_random_recording_slices(rec, seed=5)


def test_random_slices_chunk_longer_than_segment_is_shortened_with_warning():
    rec = make_recording(lengths=(3_000, 45_000))
    with pytest.warns(UserWarning, match="chunk_size"):
        slices = get_random_recording_slices(rec, chunk_duration="1s", num_chunks_per_segment=2, seed=1)
    assert all(e - s == 2_999 for _, s, e in slices)
    with pytest.raises(ValueError, match="too short"):
        get_random_recording_slices(make_recording(lengths=(10,)), chunk_size=5, margin_frames=5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="uniform"), "method"),
        (dict(num_chunks_per_segment=0), "num_chunks_per_segment"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(chunk_duration="5 minutes"), "chunk_duration"),
        (dict(chunk_duration=None), "chunk_duration"),
        (dict(margin_frames=-1), "margin_frames"),
    ],
)
def test_random_slices_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_random_recording_slices(make_recording(), **kwargs)


# ------------------------------------------------------------------------------- random data chunks
def test_get_random_data_chunks_are_the_traces_at_the_slices():
    rec = make_recording()
    slices = get_random_recording_slices(rec, num_chunks_per_segment=4, chunk_size=300, seed=11)
    expected = [rec.get_traces(segment_index=seg, start_frame=s, end_frame=e) for seg, s, e in slices]
    chunks = get_random_data_chunks(rec, num_chunks_per_segment=4, chunk_size=300, seed=11)
    np.testing.assert_array_equal(chunks, np.concatenate(expected))
    assert chunks.dtype == np.int16
    as_list = get_random_data_chunks(
        rec, concatenated=False, random_slices_kwargs=dict(num_chunks_per_segment=4, chunk_size=300, seed=11)
    )
    assert len(as_list) == 8
    for got, want in zip(as_list, expected):
        np.testing.assert_array_equal(got, want)
    scaled = get_random_data_chunks(rec, return_in_uV=True, num_chunks_per_segment=4, chunk_size=300, seed=11)
    np.testing.assert_allclose(scaled, np.concatenate(expected).astype(np.float32) * np.float32(0.195), rtol=1e-6)
    assert scaled.dtype == np.float32
    # defaults: 20 chunks of 500 ms per segment
    assert get_random_data_chunks(rec, seed=0).shape == (2 * 20 * 5000, 5)


def test_get_random_data_chunks_argument_errors():
    rec = make_recording()
    with pytest.raises(ValueError, match="given both"):
        get_random_data_chunks(rec, seed=1, random_slices_kwargs=dict(seed=2))
    with pytest.raises(TypeError, match="n_chunks"):
        get_random_data_chunks(rec, n_chunks=3)
    with pytest.raises(ValueError, match="disagree"):
        get_random_data_chunks(rec, return_scaled=True, return_in_uV=False)


# ------------------------------------------------------------------------------------- noise levels
@pytest.mark.parametrize("dtype", ["int16", "uint16", "float32", "float64"])
@pytest.mark.parametrize("scaled", [True, False])
@pytest.mark.parametrize("method", ["mad", "std", "rms"])
def test_noise_levels_equal_numpy_on_the_same_chunks(dtype, scaled, method):
    rec = make_recording(dtype=dtype, offsets=np.linspace(-3.0, 3.0, 5) if dtype != "uint16" else 0.0)
    kwargs = dict(num_chunks_per_segment=7, chunk_size=2001, seed=4)  # odd size: the middle sample
    slices = get_random_recording_slices(rec, **kwargs)
    expected = numpy_noise(rec, slices, scaled, method)
    got = get_noise_levels(rec, return_scaled=scaled, method=method, progress_bar=False, **kwargs)
    assert got.dtype == expected.dtype
    if method == "mad":
        np.testing.assert_array_equal(got, expected)  # same order statistics, bit for bit
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_noise_levels_defaults_even_chunks_and_key_names():
    rec = make_recording(dtype="float32")
    got = get_noise_levels(rec, seed=0, progress_bar=False)
    slices = get_random_recording_slices(rec, seed=0)  # 20 chunks of 500 ms per segment
    np.testing.assert_array_equal(got, numpy_noise(rec, slices, True, "mad"))
    # the MAD ignores the spikes and estimates the std of the gaussian noise (5..25 raw units)
    np.testing.assert_allclose(got / 0.195, np.linspace(5, 25, 5), rtol=0.05)
    assert "noise_level_mad_scaled" in rec.get_property_keys()
    np.testing.assert_array_equal(rec.get_property("noise_level_mad_scaled"), got)


def test_noise_levels_negative_and_zero_gains():
    rec = make_recording(gains=np.array([-0.5, 0.0, 0.195, -2.0, 1.0]), offsets=np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    slices = get_random_recording_slices(rec, chunk_size=1000, seed=9)
    got = get_noise_levels(rec, chunk_size=1000, seed=9, progress_bar=False)
    np.testing.assert_array_equal(got, numpy_noise(rec, slices, True, "mad"))
    assert got[1] == 0.0


def test_noise_levels_rms_of_large_int16_does_not_overflow():
    traces = np.full((4000, 2), 20_000, dtype="int16")
    rec = NumpyRecording(traces, sampling_frequency=FS)
    np.testing.assert_allclose(get_noise_levels(rec, return_scaled=False, method="rms", chunk_size=1000, progress_bar=False), 20_000.0)


def test_noise_levels_direct_keywords_equal_random_slices_kwargs():
    rec = make_recording()
    direct = get_noise_levels(rec, num_chunks_per_segment=5, chunk_duration="50ms", seed=2, progress_bar=False)
    nested = get_noise_levels(
        rec, random_slices_kwargs=dict(num_chunks_per_segment=5, chunk_duration="50ms", seed=2),
        force_recompute=True, progress_bar=False,
    )
    np.testing.assert_array_equal(direct, nested)
    slices = get_random_recording_slices(rec, num_chunks_per_segment=5, chunk_duration="50ms", seed=2)
    np.testing.assert_array_equal(direct, numpy_noise(rec, slices, True, "mad"))
    # with random_slices_kwargs, chunk_duration is a job kwarg (as in SpikeInterface) and changes nothing
    again = get_noise_levels(
        rec, random_slices_kwargs=dict(num_chunks_per_segment=5, chunk_duration="50ms", seed=2),
        chunk_duration="1s", force_recompute=True, progress_bar=False,
    )
    np.testing.assert_array_equal(direct, again)


def test_noise_levels_cache():
    rec = make_recording()
    first = get_noise_levels(rec, seed=1, progress_bar=False)
    # a cached value is returned as is: make it recognisable
    rec.set_property("noise_level_mad_scaled", np.full(5, 123.0))
    np.testing.assert_array_equal(get_noise_levels(rec, seed=1, progress_bar=False), np.full(5, 123.0))
    # other random chunks or force_recompute: computed again
    second = get_noise_levels(rec, seed=2, progress_bar=False)
    assert not np.array_equal(second, np.full(5, 123.0))
    np.testing.assert_array_equal(get_noise_levels(rec, seed=1, force_recompute=True, progress_bar=False), first)
    # scaled and raw, and each method, have their own cache entry
    raw = get_noise_levels(rec, return_scaled=False, seed=1, progress_bar=False)
    np.testing.assert_allclose(raw * 0.195, first, rtol=1e-6)
    assert {"noise_level_mad_scaled", "noise_level_mad_raw"} <= set(rec.get_property_keys())
    # a frame slice inherits the property but reads other chunks: computed again
    sliced = rec.frame_slice(0, 20_000)
    assert not np.array_equal(get_noise_levels(sliced, seed=1, progress_bar=False), first)
    # a channel slice keeps the cached values of its channels
    assert rec.get_annotation("noise_level_mad_scaled_params")["seed"] == 1
    np.testing.assert_array_equal(get_noise_levels(rec.channel_slice([3, 0]), seed=1), first[[3, 0]])
    # a property without the options annotation (e.g. set by SpikeInterface) is trusted
    rec2 = make_recording()
    rec2.set_property("noise_level_std_raw", np.arange(5.0))
    np.testing.assert_array_equal(get_noise_levels(rec2, return_scaled=False, method="std"), np.arange(5.0))


@pytest.mark.parametrize("job_kwargs", [dict(n_jobs=2), dict(n_jobs=2, pool_engine="thread"), dict(n_jobs=1)])
def test_noise_levels_parallel_equals_serial(job_kwargs):
    rec = make_recording()
    serial = get_noise_levels(rec, seed=3, n_jobs=1, progress_bar=False, force_recompute=True)
    parallel = get_noise_levels(rec, seed=3, progress_bar=False, force_recompute=True, **job_kwargs)
    np.testing.assert_array_equal(serial, parallel)


def test_noise_levels_on_a_binary_file(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((60_000, 8)) * 30).astype("int16")
    data.tofile(tmp_path / "traces.raw")
    rec = read_binary(tmp_path / "traces.raw", sampling_frequency=30_000.0, dtype="int16", num_channels=8,
                      gain_to_uV=0.5, offset_to_uV=-1.0)
    slices = get_random_recording_slices(rec, seed=0)
    expected = []
    for _, s, e in slices:
        x = data[s:e].astype(np.float32) * np.float32(0.5) + np.float32(-1.0)
        expected.append(np.median(np.abs(x - np.median(x, axis=0)), axis=0) / MAD_TO_STD_FACTOR)
    got = get_noise_levels(rec, seed=0, progress_bar=False)
    np.testing.assert_array_equal(got, np.mean(expected, axis=0))
    np.testing.assert_allclose(got, 15.0, rtol=0.05)


def test_noise_levels_errors():
    rec = make_recording(gains=None)
    with pytest.raises(ValueError, match="return_scaled"):
        get_noise_levels(rec)
    with pytest.raises(ValueError, match="method"):
        get_noise_levels(rec, return_scaled=False, method="median")
    with pytest.raises(TypeError, match="num_chunk"):
        get_noise_levels(rec, return_scaled=False, num_chunk=3)
    with pytest.raises(ValueError, match="given both"):
        get_noise_levels(rec, return_scaled=False, seed=1, random_slices_kwargs=dict(seed=1))
    with pytest.raises(TypeError, match="random_slices_kwargs"):
        get_noise_levels(rec, return_scaled=False, random_slices_kwargs=dict(n_jobs=2))


# ------------------------------------------------------------------------------ chunk with margin
def _segment(rec):
    return rec._recording_segments[0]


def test_chunk_with_margin_inside_and_at_edges_without_padding():
    rec = make_recording(lengths=(1000,))
    full = rec.get_traces()
    traces, left, right = get_chunk_with_margin(_segment(rec), 100, 200, None, 30)
    assert (left, right) == (30, 30)
    np.testing.assert_array_equal(traces, full[70:230])
    traces, left, right = get_chunk_with_margin(_segment(rec), 10, 990, np.array([3, 1]), 30)
    assert (left, right) == (10, 10)
    np.testing.assert_array_equal(traces, full[0:1000][:, [3, 1]])
    traces, left, right = get_chunk_with_margin(_segment(rec), None, None, slice(0, 2), 30)
    assert (left, right) == (0, 0)
    np.testing.assert_array_equal(traces, full[:, :2])
    traces, _, _ = get_chunk_with_margin(_segment(rec), 100, 200, None, 30, dtype="float32")
    assert traces.dtype == np.float32


def test_chunk_with_margin_zero_and_reflect_padding():
    rec = make_recording(lengths=(1000,))
    full = rec.get_traces()
    traces, left, right = get_chunk_with_margin(_segment(rec), 10, 990, None, 30, add_zeros=True)
    assert (left, right, traces.shape) == (30, 30, (1040, 5))
    np.testing.assert_array_equal(traces[:20], 0)
    np.testing.assert_array_equal(traces[20:1020], full)
    np.testing.assert_array_equal(traces[1020:], 0)
    traces, left, right = get_chunk_with_margin(_segment(rec), 0, 1000, None, 4, add_reflect_padding=True)
    assert (left, right) == (4, 4)
    np.testing.assert_array_equal(traces, np.pad(full, [(4, 4), (0, 0)], mode="reflect"))
    # inside the segment: real samples, no padding
    traces, _, _ = get_chunk_with_margin(_segment(rec), 100, 200, None, 30, add_zeros=True)
    np.testing.assert_array_equal(traces, full[70:230])


def test_chunk_with_margin_window_and_recording_input():
    rec = make_recording(lengths=(1000,), dtype="float32")
    full = rec.get_traces()
    traces, _, _ = get_chunk_with_margin(_segment(rec), 100, 200, None, 10, add_zeros=True, window_on_margin=True)
    taper = (1 - np.cos(np.arange(10) / 10 * np.pi)) / 2
    np.testing.assert_allclose(traces[:10], full[90:100] * taper[:, None], rtol=1e-6)
    np.testing.assert_allclose(traces[-10:], full[200:210] * taper[::-1, None], rtol=1e-6)
    np.testing.assert_array_equal(traces[10:-10], full[100:200])
    # a recording (with segment_index) instead of a segment
    two = make_recording(lengths=(500, 800))
    traces, left, right = get_chunk_with_margin(two, 790, 800, [0, 4], 20, add_zeros=True, segment_index=1)
    np.testing.assert_array_equal(traces[:30], two.get_traces(segment_index=1, start_frame=770)[:, [0, 4]])
    np.testing.assert_array_equal(traces[30:], 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(window_on_margin=True), "window_on_margin"),
        (dict(add_zeros=True, add_reflect_padding=True), "exclusive"),
        (dict(margin=-1), "margin"),
        (dict(start_frame=300, end_frame=200), "start_frame"),
        (dict(end_frame=2000), "end_frame"),
        (dict(add_zeros=True, window_on_margin=True, dtype="int16"), "float dtype"),
    ],
)
def test_chunk_with_margin_errors(kwargs, match):
    rec = make_recording(lengths=(1000,))
    args = dict(start_frame=100, end_frame=200, channel_indices=None, margin=10) | kwargs
    with pytest.raises(ValueError, match=match):
        get_chunk_with_margin(_segment(rec), **args)


# ---------------------------------------------------------------------------------- channel geometry
LOCATIONS = np.array([[0.0, 0.0], [0.0, 40.0], [30.0, 0.0], [30.0, 20.0], [0.0, 20.0]])


def geometry_recording():
    rec = make_recording(lengths=(100,))
    rec.set_channel_locations(LOCATIONS)
    return rec


def test_channel_distances():
    distances = get_channel_distances(geometry_recording())
    expected = np.array([[np.hypot(*(a - b)) for b in LOCATIONS] for a in LOCATIONS])
    np.testing.assert_allclose(distances, expected)
    assert distances.dtype == np.float64 and distances.shape == (5, 5)


def test_closest_channels():
    rec = geometry_recording()
    indices, distances = get_closest_channels(rec, num_channels=2)
    expected = np.array([[np.hypot(*(a - b)) for b in LOCATIONS] for a in LOCATIONS])
    for i in range(5):
        others = [j for j in np.argsort(expected[i], kind="stable") if j != i]
        np.testing.assert_array_equal(indices[i], others[:2])
        np.testing.assert_allclose(distances[i], expected[i, others[:2]])
    indices, distances = get_closest_channels(rec, channel_ids=[4, 0, 1])
    np.testing.assert_array_equal(indices, [[1, 2], [0, 2], [0, 1]])  # indices into channel_ids, ties stable
    np.testing.assert_allclose(distances, [[20, 20], [20, 40], [20, 40]])
    with pytest.raises(ValueError, match="num_channels"):
        get_closest_channels(rec, num_channels=5)


def test_order_channels_by_depth():
    rec = geometry_recording()
    order_f, order_r = order_channels_by_depth(rec)
    np.testing.assert_array_equal(order_f, np.lexsort((LOCATIONS[:, 0], LOCATIONS[:, 1])))
    np.testing.assert_array_equal(order_f, [0, 2, 4, 3, 1])  # by y, then x
    np.testing.assert_array_equal(order_f[order_r], np.arange(5))
    order_f, _ = order_channels_by_depth(rec, dimensions="y", flip=True)
    np.testing.assert_array_equal(LOCATIONS[order_f, 1], [40, 20, 20, 0, 0])
    order_f, _ = order_channels_by_depth(rec, channel_ids=[1, 3, 0])
    np.testing.assert_array_equal(order_f, [2, 1, 0])
    with pytest.raises(ValueError, match="dimensions"):
        order_channels_by_depth(rec, dimensions="z")
    with pytest.raises(ValueError, match="dimensions"):
        order_channels_by_depth(rec, dimensions="depth")


def test_geometry_without_locations_is_a_clear_error():
    rec = make_recording(lengths=(100,))
    for func in (get_channel_distances, get_closest_channels, order_channels_by_depth):
        with pytest.raises(ValueError, match="locations"):
            func(rec)
