"""ChannelSparsity, compute_sparsity and estimate_sparsity: hand-computed masks, the chunked pass checked
against cut-outs extracted here, invariance to n_jobs/chunking, and agreement with SpikeInterface 0.105.3."""

import json

import numpy as np
import probeinterface as pi
import pytest

from reference_env import run_reference
from sicore.numpy_objects import NumpyRecording, NumpySorting
from sicore.sorting_tools import random_spikes_selection
from sicore.sparsity import ChannelSparsity, _estimate_templates_for_sparsity, compute_sparsity, estimate_sparsity
from sicore.template_tools import estimate_main_channel_from_recording
from sicore.templates import Templates

FS = 30000.0
NUM_CHANNELS = 12
# two columns 30 µm apart, six rows 20 µm apart
LOCATIONS = np.array([[30.0 * (c % 2), 20.0 * (c // 2)] for c in range(NUM_CHANNELS)])
MAIN_CHANNELS = [1, 4, 9, 11]
NO_PROGRESS = {"progress_bar": False}


# ----------------------------------------------------------------------------- data
def _unit_templates(num_samples: int = 90, nbefore: int = 30) -> np.ndarray:
    """(4, num_samples, 12) templates: a trough at nbefore on each unit's main channel, decaying with distance."""
    t = np.arange(num_samples)
    shape = -np.exp(-0.5 * ((t - nbefore) / 2.0) ** 2) + 0.35 * np.exp(-0.5 * ((t - nbefore - 10) / 5.0) ** 2)
    out = np.zeros((len(MAIN_CHANNELS), num_samples, NUM_CHANNELS))
    for u, main in enumerate(MAIN_CHANNELS):
        d = np.linalg.norm(LOCATIONS - LOCATIONS[main], axis=1)
        out[u] = 400.0 * shape[:, None] * np.exp(-d / 25.0)[None, :]
    return out


def _make_data(dtype="int16", lengths=(60000, 45000), seed=0):
    """Recording with the unit templates added at known spikes, plus noise; gains on int16 data."""
    rng = np.random.default_rng(seed)
    templates = _unit_templates()
    traces_list, samples_list, labels_list = [], [], []
    for length in lengths:
        traces = rng.normal(scale=8.0, size=(length, NUM_CHANNELS))
        samples = np.sort(rng.choice(np.arange(10, length - 10), size=240, replace=False))
        labels = rng.integers(0, len(MAIN_CHANNELS), size=samples.size)
        for s, u in zip(samples, labels):
            lo, hi = s - 30, s + 60
            tlo, thi = max(lo, 0), min(hi, length)
            traces[tlo:thi] += templates[u][tlo - lo: templates.shape[1] - (hi - thi)]
        traces_list.append(traces.astype(dtype))
        samples_list.append(samples)
        labels_list.append(np.array(["u0", "u1", "u2", "u3"])[labels])
    recording = NumpyRecording(traces_list, sampling_frequency=FS, channel_ids=[f"ch{i}" for i in range(NUM_CHANNELS)])
    recording.set_dummy_probe_from_locations(LOCATIONS)
    if dtype == "int16":
        recording.set_channel_gains(np.linspace(0.5, 1.5, NUM_CHANNELS))
        recording.set_channel_offsets(np.arange(NUM_CHANNELS, dtype=float) - 6.0)
    sorting = NumpySorting.from_times_labels(samples_list, labels_list, FS, unit_ids=["u0", "u1", "u2", "u3"])
    return recording, sorting, traces_list


@pytest.fixture(scope="module")
def int_data():
    return _make_data("int16")


@pytest.fixture(scope="module")
def float_data():
    return _make_data("float32", seed=1)


def _cutout_means(recording, sorting, traces_list, indices, nbefore, nafter, scaled=True):
    """Per-unit mean of the windows at the selected spikes, extracted independently with numpy."""
    spikes = sorting.to_spike_vector()[indices]
    gains = recording.get_channel_gains() if scaled and recording.has_scaleable_traces() else np.ones(NUM_CHANNELS)
    offsets = recording.get_channel_offsets() if scaled and recording.has_scaleable_traces() else np.zeros(NUM_CHANNELS)
    out = np.zeros((sorting.get_num_units(), nbefore + nafter, NUM_CHANNELS))
    for u in range(sorting.get_num_units()):
        mine = spikes[spikes["unit_index"] == u]
        windows = [traces_list[seg][s - nbefore: s + nafter].astype(np.float64) * gains + offsets
                   for s, seg in zip(mine["sample_index"], mine["segment_index"])]
        out[u] = np.mean(windows, axis=0)
    return out


def _distances():
    d = np.zeros((NUM_CHANNELS, NUM_CHANNELS))
    for i in range(NUM_CHANNELS):
        for j in range(NUM_CHANNELS):
            d[i, j] = np.hypot(*(LOCATIONS[i] - LOCATIONS[j]))
    return d


def _probe() -> pi.Probe:
    probe = pi.Probe(ndim=2)
    probe.set_contacts(LOCATIONS, shapes="circle", shape_params={"radius": 5})
    probe.set_device_channel_indices(np.arange(NUM_CHANNELS))
    return probe


# ----------------------------------------------------------------------------- ChannelSparsity
@pytest.fixture
def sparsity():
    mask = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]], dtype=bool)
    return ChannelSparsity(mask, ["a", "b", "c"], [10, 11, 12, 13, 14])


def test_sparsity_views(sparsity):
    assert sparsity.max_num_active_channels == 3
    assert sparsity.num_units == 3 and sparsity.num_channels == 5
    np.testing.assert_array_equal(sparsity.unit_id_to_channel_ids["b"], [12, 13, 14])
    np.testing.assert_array_equal(sparsity.unit_id_to_channel_indices["a"], [0, 1])
    assert repr(sparsity) == "ChannelSparsity - units: 3 - channels: 5 - density, P(x=1): 0.40"


def test_sparsity_equality_and_dicts(sparsity):
    other = ChannelSparsity.from_unit_id_to_channel_ids({"a": [10, 11], "b": [12, 13, 14], "c": [14]},
                                                        ["a", "b", "c"], [10, 11, 12, 13, 14])
    assert other == sparsity
    assert ChannelSparsity(~sparsity.mask, sparsity.unit_ids, sparsity.channel_ids) != sparsity
    d = sparsity.to_dict()
    assert d == {"unit_id_to_channel_ids": {"a": [10, 11], "b": [12, 13, 14], "c": [14]},
                 "channel_ids": [10, 11, 12, 13, 14], "unit_ids": ["a", "b", "c"]}
    assert ChannelSparsity.from_dict(json.loads(json.dumps(d))) == sparsity
    int_units = ChannelSparsity(sparsity.mask, [1, 2, 3], ["x", "y", "z", "v", "w"])
    # JSON turns integer unit ids into string keys
    assert ChannelSparsity.from_dict(json.loads(json.dumps(int_units.to_dict()))) == int_units


def test_sparsify_densify(sparsity):
    rng = np.random.default_rng(0)
    waveforms = rng.normal(size=(7, 20, 5))
    sparse = sparsity.sparsify_waveforms(waveforms, "b")
    np.testing.assert_array_equal(sparse, waveforms[..., 2:])
    dense = sparsity.densify_waveforms(sparse, "b")
    np.testing.assert_array_equal(dense[..., 2:], waveforms[..., 2:])
    np.testing.assert_array_equal(dense[..., :2], 0)
    # a single template, and zero-padded storage
    padded = np.zeros((20, 3))
    padded[:, :1] = waveforms[0][:, [4]]
    np.testing.assert_array_equal(sparsity.densify_waveforms(padded, "c")[:, 4], waveforms[0][:, 4])
    templates = rng.normal(size=(3, 20, 5))
    sparse_t = sparsity.sparsify_templates(templates)
    assert sparse_t.shape == (3, 20, 3)
    np.testing.assert_array_equal(sparsity.densify_templates(sparse_t), templates * sparsity.mask[:, None, :])


def test_sparsity_errors(sparsity):
    with pytest.raises(ValueError, match="mask must have shape"):
        ChannelSparsity(np.ones((2, 5), dtype=bool), ["a", "b", "c"], range(5))
    with pytest.raises(KeyError, match="unit_id"):
        sparsity.sparsify_waveforms(np.zeros((20, 5)), "zz")
    with pytest.raises(ValueError, match="dense"):
        sparsity.sparsify_waveforms(np.zeros((20, 3)), "a")
    with pytest.raises(ValueError, match="not sparse"):
        sparsity.densify_waveforms(np.ones((20, 3)), "a")
    with pytest.raises(KeyError, match="not among channel_ids"):
        ChannelSparsity.from_unit_id_to_channel_ids({"a": [99]}, ["a"], [1, 2])
    with pytest.raises(KeyError, match="not among unit_ids"):
        ChannelSparsity.from_unit_id_to_channel_ids({"q": [1]}, ["a"], [1, 2])


def test_create_dense():
    t = Templates(np.zeros((2, 10, 3)), FS, 3)
    dense = ChannelSparsity.create_dense(t)
    assert dense.mask.all() and dense.mask.shape == (2, 3)


# ----------------------------------------------------------------------------- compute_sparsity
@pytest.fixture
def templates():
    return Templates(_unit_templates().astype("float32"), FS, 30, unit_ids=["u0", "u1", "u2", "u3"],
                     channel_ids=[f"ch{i}" for i in range(NUM_CHANNELS)], probe=_probe())


def _hand_radius_mask(radius):
    d = _distances()
    return np.array([[d[main, c] <= radius for c in range(NUM_CHANNELS)] for main in MAIN_CHANNELS])


@pytest.mark.parametrize("radius", [0.0, 25.0, 36.06, 50.0, 1000.0])
def test_radius_by_hand(templates, radius):
    sparsity = compute_sparsity(templates, method="radius", radius_um=radius)
    np.testing.assert_array_equal(sparsity.mask, _hand_radius_mask(radius))
    assert sparsity == ChannelSparsity.from_radius(templates, radius)


def test_best_and_closest_channels_by_hand(templates):
    amplitudes = -templates.templates_array.min(axis=1)  # (units, channels)
    d = _distances()
    best = compute_sparsity(templates, method="best_channels", num_channels=3)
    closest = compute_sparsity(templates, method="closest_channels", num_channels=3)
    for u, main in enumerate(MAIN_CHANNELS):
        assert set(np.flatnonzero(best.mask[u])) == set(np.argsort(-amplitudes[u])[:3])
        assert set(np.flatnonzero(closest.mask[u])) == set(np.argsort(d[main], kind="stable")[:3])
        assert best.mask[u].sum() == 3 and closest.mask[u].sum() == 3


def test_snr_threshold_and_amplitude_by_hand(templates):
    noise = np.linspace(5.0, 20.0, NUM_CHANNELS)
    amplitudes = -templates.templates_array.min(axis=1)
    expected = amplitudes / noise[None, :] >= 4.0
    snr = compute_sparsity(templates, method="snr", threshold=4.0, noise_levels=noise)
    np.testing.assert_array_equal(snr.mask, expected)
    # the spec's name of the same method
    assert compute_sparsity(templates, method="threshold", threshold=4.0, noise_levels=noise) == snr
    amp = compute_sparsity(templates, method="amplitude", threshold=100.0)
    np.testing.assert_array_equal(amp.mask, amplitudes >= 100.0)
    ptp = compute_sparsity(templates, method="amplitude", threshold=100.0, amplitude_mode="peak_to_peak")
    np.testing.assert_array_equal(ptp.mask, np.ptp(templates.templates_array, axis=1) >= 100.0)


def test_compute_sparsity_errors(templates):
    with pytest.raises(ValueError, match="method must be one of"):
        compute_sparsity(templates, method="nearest")
    with pytest.raises(ValueError, match="peak_sign"):
        compute_sparsity(templates, peak_sign="up")
    with pytest.raises(ValueError, match="amplitude_mode"):
        compute_sparsity(templates, method="best_channels", amplitude_mode="max")
    no_probe = Templates(templates.templates_array, FS, 30)
    with pytest.raises(ValueError, match="channel locations"):
        compute_sparsity(no_probe, method="radius")
    with pytest.raises(ValueError, match="noise_levels"):
        compute_sparsity(templates, method="snr")
    with pytest.raises(ValueError, match="one value per channel"):
        compute_sparsity(templates, method="snr", noise_levels=np.ones(3))
    with pytest.raises(ValueError, match="µV"):
        compute_sparsity(Templates(templates.templates_array, FS, 30, is_in_uV=False), method="amplitude")
    with pytest.raises(ValueError, match="SortingAnalyzer"):
        compute_sparsity(templates, method="by_property", by_property="group")
    with pytest.raises(ValueError, match="num_channels"):
        compute_sparsity(templates, method="best_channels", num_channels=0)
    with pytest.raises(TypeError, match="Templates or a SortingAnalyzer"):
        compute_sparsity(templates.templates_array)


class _Ext:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    def get_templates(self, unit_ids=None, operator="average"):
        return self.array

    def get_data(self):
        return self.data

    def get_waveforms_one_unit(self, unit_id, force_dense=True):
        return self.waveforms[unit_id]


class _Analyzer:
    """The SortingAnalyzer protocol used by compute_sparsity."""

    def __init__(self, recording, sorting, templates_array, nbefore, noise=None, waveforms=None):
        self.recording, self.sorting = recording, sorting
        self.unit_ids, self.channel_ids = sorting.unit_ids, recording.channel_ids
        self.sparsity = None
        self.return_scaled = True
        self._ext = {"templates": _Ext(array=templates_array, nbefore=nbefore)}
        if noise is not None:
            self._ext["noise_levels"] = _Ext(data=noise)
        if waveforms is not None:
            self._ext["waveforms"] = _Ext(waveforms=waveforms, nbefore=nbefore, nafter=templates_array.shape[1] - nbefore)

    def get_extension(self, name):
        return self._ext.get(name)

    def get_channel_locations(self):
        return self.recording.get_channel_locations()


def test_compute_sparsity_on_analyzer(int_data, templates):
    recording, sorting, _ = int_data
    noise = np.full(NUM_CHANNELS, 10.0)
    analyzer = _Analyzer(recording, sorting, templates.templates_array, 30, noise=noise)
    assert compute_sparsity(analyzer, method="radius", radius_um=30.0) == compute_sparsity(templates, radius_um=30.0)
    # noise levels come from the analyzer's extension
    np.testing.assert_array_equal(compute_sparsity(analyzer, method="snr", threshold=5).mask,
                                  compute_sparsity(templates, method="snr", threshold=5, noise_levels=noise).mask)


def test_energy_on_analyzer(int_data):
    recording, sorting, _ = int_data
    rng = np.random.default_rng(0)
    waveforms = {u: rng.normal(size=(20, 10, NUM_CHANNELS)) * np.linspace(0.5, 3, NUM_CHANNELS) for u in sorting.unit_ids}
    noise = np.ones(NUM_CHANNELS)
    analyzer = _Analyzer(recording, sorting, np.zeros((4, 10, NUM_CHANNELS)), 4, noise=noise, waveforms=waveforms)
    sparsity = compute_sparsity(analyzer, method="energy", threshold=1.5)
    for u, unit_id in enumerate(sorting.unit_ids):
        w = waveforms[unit_id]
        expected = np.sqrt((w ** 2).sum(axis=(0, 1))) / (np.sqrt(10) * np.sqrt(20)) >= 1.5
        np.testing.assert_array_equal(sparsity.mask[u], expected)
    with pytest.raises(TypeError, match="SortingAnalyzer"):
        compute_sparsity(Templates(np.zeros((1, 5, 2)), FS, 2), method="energy")


def test_by_property():
    recording = NumpyRecording([np.zeros((100, 8), dtype="int16")], sampling_frequency=FS)
    recording.set_channel_groups([0, 0, 0, 0, 1, 1, 1, 1])  # two tetrodes
    sorting = NumpySorting.from_times_labels([np.array([10, 20, 30])], [np.array([5, 6, 7])], FS)
    sorting.set_property("group", np.array([1, 0, 1]))
    sparsity = ChannelSparsity.from_property(sorting, recording, "group")
    np.testing.assert_array_equal(sparsity.mask, [[0, 0, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0, 0],
                                                  [0, 0, 0, 0, 1, 1, 1, 1]])
    # only the recording has it: the unit takes its main channel's value
    bare = NumpySorting.from_times_labels([np.array([10, 20])], [np.array([5, 6])], FS)
    by_main = ChannelSparsity.from_property(bare, recording, "group", main_channel_indices=[6, 1])
    np.testing.assert_array_equal(by_main.mask, [[0, 0, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="not a unit property of the sorting"):
        ChannelSparsity.from_property(bare, recording, "group")
    with pytest.raises(ValueError, match="'shank' is not a channel property"):
        ChannelSparsity.from_property(sorting, recording, "shank")
    sorting.set_property("group", np.array([1, 0, 2]))
    with pytest.raises(ValueError, match="no channel of the recording"):
        ChannelSparsity.from_property(sorting, recording, "group")
    # values stored as strings on one side
    sorting.set_property("group", np.array(["1", "0", "1"]))
    assert ChannelSparsity.from_property(sorting, recording, "group") == sparsity


def test_by_property_on_analyzer(int_data, templates):
    recording, sorting, _ = int_data
    recording = recording.channel_slice(recording.channel_ids)
    recording.set_property("group", np.repeat([0, 1, 2], 4))
    analyzer = _Analyzer(recording, sorting, templates.templates_array, 30)
    # main channels 1, 4, 9, 11 -> groups 0, 1, 2, 2
    expected = np.repeat(np.eye(3, dtype=bool), 4, axis=1)[[0, 1, 2, 2]]
    np.testing.assert_array_equal(compute_sparsity(analyzer, method="by_property", by_property="group").mask, expected)


# ----------------------------------------------------------------------------- estimate_sparsity
def test_estimated_templates_equal_cutout_means(int_data):
    recording, sorting, traces_list = int_data
    templates_array, nbefore, indices = _estimate_templates_for_sparsity(
        sorting, recording, num_spikes_for_sparsity=50, ms_before=1.0, ms_after=2.0, seed=3, chunk_size=997,
        **NO_PROGRESS)
    assert nbefore == 30 and templates_array.shape == (4, 90, NUM_CHANNELS)
    assert templates_array.dtype == np.float32
    # the spikes are the uniform random selection with a border margin
    num_samples = [recording.get_num_samples(i) for i in range(2)]
    np.testing.assert_array_equal(indices, random_spikes_selection(sorting, num_samples, "uniform", 50, 60, seed=3))
    expected = _cutout_means(recording, sorting, traces_list, indices, 30, 60)
    np.testing.assert_allclose(templates_array, expected, rtol=1e-5, atol=1e-3)
    raw, _, _ = _estimate_templates_for_sparsity(sorting, recording, num_spikes_for_sparsity=50, ms_before=1.0,
                                                 ms_after=2.0, seed=3, return_scaled=False, **NO_PROGRESS)
    np.testing.assert_allclose(raw, _cutout_means(recording, sorting, traces_list, indices, 30, 60, scaled=False),
                               rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("job_kwargs", [
    {"n_jobs": 2, "chunk_duration": "1s"},
    {"n_jobs": 1, "chunk_size": 97},  # most windows cross a chunk border
    {"n_jobs": 2, "chunk_size": 4001},
])
def test_estimate_is_identical_for_any_chunking(int_data, job_kwargs):
    recording, sorting, _ = int_data
    reference, _, _ = _estimate_templates_for_sparsity(sorting, recording, n_jobs=1, chunk_size=30000, **NO_PROGRESS)
    other, _, _ = _estimate_templates_for_sparsity(sorting, recording, **job_kwargs, **NO_PROGRESS)
    np.testing.assert_array_equal(other, reference)  # int16 traces are summed exactly


def test_estimate_spawn_file_backed(tmp_path, int_data):
    """Workers started with spawn rebuild a file-backed recording from its provenance."""
    from sicore.io.binary import read_binary

    recording, sorting, traces_list = int_data
    paths = []
    for i, traces in enumerate(traces_list):
        paths.append(tmp_path / f"seg{i}.raw")
        traces.tofile(paths[-1])
    on_disk = read_binary(paths, sampling_frequency=FS, dtype="int16", num_channels=NUM_CHANNELS,
                          channel_ids=recording.channel_ids, gain_to_uV=recording.get_channel_gains(),
                          offset_to_uV=recording.get_channel_offsets())
    on_disk.set_dummy_probe_from_locations(LOCATIONS)
    reference, _, _ = _estimate_templates_for_sparsity(sorting, recording, **NO_PROGRESS)
    spawned, _, _ = _estimate_templates_for_sparsity(sorting, on_disk, n_jobs=2, chunk_size=7000, mp_context="spawn",
                                                     **NO_PROGRESS)
    np.testing.assert_array_equal(spawned, reference)
    assert estimate_sparsity(sorting, on_disk, n_jobs=2, mp_context="spawn", **NO_PROGRESS) == \
        estimate_sparsity(sorting, recording, **NO_PROGRESS)


def test_estimate_float_recording_chunking(float_data):
    recording, sorting, traces_list = float_data
    a, _, indices = _estimate_templates_for_sparsity(sorting, recording, n_jobs=1, chunk_size=50000, **NO_PROGRESS)
    b, _, _ = _estimate_templates_for_sparsity(sorting, recording, n_jobs=2, chunk_size=1234, **NO_PROGRESS)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(a, _cutout_means(recording, sorting, traces_list, indices, 30, 75), rtol=1e-5, atol=1e-3)
    for method in ("radius", "best_channels", "snr"):
        kwargs = {"method": method, "radius_um": 40.0, "noise_levels": np.full(NUM_CHANNELS, 8.0), **NO_PROGRESS}
        assert estimate_sparsity(sorting, recording, n_jobs=1, **kwargs) == \
            estimate_sparsity(sorting, recording, n_jobs=2, chunk_size=777, **kwargs)


@pytest.mark.parametrize("job_kwargs", [
    {"n_jobs": 1, "chunk_size": 30000},
    {"n_jobs": 1, "chunk_size": 97},
    {"n_jobs": 2, "chunk_size": 4001},
])
@pytest.mark.parametrize("dtype", ["int16", "uint16", "int8"])
def test_accumulated_windows_equal_cutout_sums(job_kwargs, dtype):
    """Packed sums and sums of squares of the raw windows (zero outside the segment) equal numpy's, exactly."""
    from sicore.sparsity import _accumulate_spike_windows

    rng = np.random.default_rng(5)
    info = np.iinfo(dtype)
    lengths = (9000, 7000)
    # full-range values: the squares' int32 / int64 paths are exercised at their limits
    traces_list = [rng.integers(info.min, int(info.max) + 1, size=(n, NUM_CHANNELS)).astype(dtype) for n in lengths]
    recording = NumpyRecording(traces_list, sampling_frequency=FS)
    samples = [np.sort(np.r_[0, 3, rng.choice(np.arange(5, n - 5), 300, replace=False), n - 1]) for n in lengths]
    sorting = NumpySorting.from_times_labels(samples, [rng.integers(0, 3, s.size) for s in samples], FS)
    spikes = sorting.to_spike_vector()
    nbefore, nafter = 20, 40
    table = np.array([[0, 1, 2, -1], [5, 7, 8, 11], [3, 4, -1, -1]])
    sums, squares = _accumulate_spike_windows(recording, spikes, 3, nbefore, nafter, channel_table=table,
                                              with_squares=True, zero_pad=True, **job_kwargs, **NO_PROGRESS)
    dense_sums, dense_squares = _accumulate_spike_windows(recording, spikes, 3, nbefore, nafter, with_squares=True,
                                                          zero_pad=True, **job_kwargs, **NO_PROGRESS)
    expected = np.zeros((3, nbefore + nafter, NUM_CHANNELS), dtype=object)  # Python ints: no overflow
    expected_sq = np.zeros_like(expected)
    for s in spikes:
        padded = np.zeros((nbefore + nafter, NUM_CHANNELS), dtype=np.int64)
        start = int(s["sample_index"]) - nbefore
        traces = traces_list[s["segment_index"]]
        lo, hi = max(start, 0), min(start + nbefore + nafter, traces.shape[0])
        padded[lo - start: hi - start] = traces[lo:hi]
        expected[s["unit_index"]] += padded.astype(object)
        expected_sq[s["unit_index"]] += padded.astype(object) ** 2
    assert sums.dtype.kind == "i" and squares.dtype == np.int64
    np.testing.assert_array_equal(dense_sums.astype(object), expected)
    np.testing.assert_array_equal(dense_squares.astype(object), expected_sq)
    for u in range(3):
        channels = table[u][table[u] >= 0]
        np.testing.assert_array_equal(sums[u][:, : channels.size].astype(object), expected[u][:, channels])
        np.testing.assert_array_equal(squares[u][:, : channels.size].astype(object), expected_sq[u][:, channels])
        assert not sums[u][:, channels.size:].any() and not squares[u][:, channels.size:].any()  # padding
    with pytest.raises(ValueError, match="cross a segment border"):
        _accumulate_spike_windows(recording, spikes, 3, nbefore, nafter, **NO_PROGRESS)


def test_estimate_sparsity_masks_by_hand(int_data):
    recording, sorting, traces_list = int_data
    _, _, indices = _estimate_templates_for_sparsity(sorting, recording, **NO_PROGRESS)
    means = _cutout_means(recording, sorting, traces_list, indices, 30, 75)  # default 1.0 / 2.5 ms
    amplitudes = -means.min(axis=1)
    main = amplitudes.argmax(axis=1)
    np.testing.assert_array_equal(main, MAIN_CHANNELS)
    np.testing.assert_array_equal(estimate_main_channel_from_recording(recording, sorting, **NO_PROGRESS), MAIN_CHANNELS)
    d = _distances()
    radius = estimate_sparsity(sorting, recording, radius_um=45.0, **NO_PROGRESS)
    np.testing.assert_array_equal(radius.mask, d[main] <= 45.0)
    np.testing.assert_array_equal(radius.unit_ids, sorting.unit_ids)
    np.testing.assert_array_equal(radius.channel_ids, recording.channel_ids)
    best = estimate_sparsity(sorting, recording, method="best_channels", num_channels=4, **NO_PROGRESS)
    for u in range(4):
        assert set(np.flatnonzero(best.mask[u])) == set(np.argsort(-amplitudes[u])[:4])
    noise = np.full(NUM_CHANNELS, 12.0)
    snr = estimate_sparsity(sorting, recording, method="threshold", threshold=5, noise_levels=noise, **NO_PROGRESS)
    np.testing.assert_array_equal(snr.mask, amplitudes / 12.0 >= 5)
    amp = estimate_sparsity(sorting, recording, method="amplitude", threshold=50, **NO_PROGRESS)
    np.testing.assert_array_equal(amp.mask, amplitudes >= 50)
    closest = estimate_sparsity(sorting, recording, method="closest_channels", num_channels=3, **NO_PROGRESS)
    assert closest.mask.sum(axis=1).tolist() == [3, 3, 3, 3]
    # main channels given: no pass over the recording needed
    given = estimate_sparsity(sorting, recording, radius_um=45.0, main_channel_indices=MAIN_CHANNELS)
    assert given == radius


def test_estimate_snr_computes_noise_levels(int_data):
    recording, sorting, _ = int_data
    get_noise_levels = pytest.importorskip("sicore.recording_tools").get_noise_levels
    noise = get_noise_levels(recording, return_scaled=True)
    assert estimate_sparsity(sorting, recording, method="snr", threshold=5, **NO_PROGRESS) == \
        estimate_sparsity(sorting, recording, method="snr", threshold=5, noise_levels=noise, **NO_PROGRESS)


def test_estimate_by_property(int_data):
    recording, sorting, _ = int_data
    recording = recording.channel_slice(recording.channel_ids)
    recording.set_property("group", np.repeat([0, 1, 2], 4))
    # property only on the recording: from each unit's extremum channel (1, 4, 9, 11)
    expected = np.repeat(np.eye(3, dtype=bool), 4, axis=1)[[0, 1, 2, 2]]
    np.testing.assert_array_equal(
        estimate_sparsity(sorting, recording, method="by_property", by_property="group", **NO_PROGRESS).mask, expected)
    # and on the sorting too: the sorting's values win
    sorting = sorting.select_units(sorting.unit_ids)
    sorting.set_property("group", np.array([2, 2, 0, 1]))
    np.testing.assert_array_equal(
        estimate_sparsity(sorting, recording, method="by_property", by_property="group").mask,
        np.repeat(np.eye(3, dtype=bool), 4, axis=1)[[2, 2, 0, 1]])


def test_estimate_sparsity_errors(int_data):
    recording, sorting, _ = int_data
    with pytest.raises(ValueError, match="method must be one of"):
        estimate_sparsity(sorting, recording, method="energy")
    with pytest.raises(ValueError, match="peak_sign"):
        estimate_sparsity(sorting, recording, peak_sign="max")
    with pytest.raises(ValueError, match="'shank' is not a channel property"):
        estimate_sparsity(sorting, recording, method="by_property", by_property="shank")
    with pytest.raises(ValueError, match="by_property"):
        estimate_sparsity(sorting, recording, method="by_property")
    bare = NumpyRecording([np.zeros((60000, NUM_CHANNELS), dtype="int16"), np.zeros((45000, NUM_CHANNELS), "int16")],
                          sampling_frequency=FS)
    with pytest.raises(ValueError, match="channel locations"):
        estimate_sparsity(sorting, bare, method="radius")
    with pytest.raises(ValueError, match="segments"):
        estimate_sparsity(sorting, NumpyRecording([np.zeros((100, 2), "int16")], sampling_frequency=FS))
    with pytest.raises(ValueError, match="sampling_frequency"):
        estimate_sparsity(sorting, NumpyRecording([np.zeros((100, 2), "int16")] * 2, sampling_frequency=FS / 2))
    with pytest.raises(TypeError, match="unexpected keyword"):
        estimate_sparsity(sorting, recording, radius=50)
    with pytest.raises(ValueError, match="radius_um"):
        estimate_sparsity(sorting, recording, radius_um=-1)


def test_estimate_sparsity_matches_spikeinterface(tmp_path):
    recording, sorting, traces_list = _make_data("int16", lengths=(60000, 30000), seed=4)
    for i, traces in enumerate(traces_list):
        np.save(tmp_path / f"traces{i}.npy", traces)
    np.save(tmp_path / "spikes.npy", sorting.to_spike_vector())
    np.save(tmp_path / "locations.npy", LOCATIONS)
    noise = np.full(NUM_CHANNELS, 10.0)
    np.save(tmp_path / "noise.npy", noise)
    script = f"""
import json, warnings
import numpy as np
warnings.simplefilter("ignore")
from spikeinterface.core import NumpyRecording, NumpySorting, estimate_sparsity
from spikeinterface.core.template_tools import estimate_main_channel_from_recording
rec = NumpyRecording([np.load("traces0.npy"), np.load("traces1.npy")], {FS},
                     channel_ids=["ch%d" % i for i in range({NUM_CHANNELS})])
rec.set_dummy_probe_from_locations(np.load("locations.npy"))
sorting = NumpySorting(np.load("spikes.npy"), {FS}, ["u0", "u1", "u2", "u3"])
noise = np.load("noise.npy")
out = {{}}
for name, kwargs in [("radius", dict(method="radius", radius_um=40.0)),
                     ("best", dict(method="best_channels", num_channels=5)),
                     ("closest", dict(method="closest_channels", num_channels=4)),
                     ("snr", dict(method="snr", threshold=6, noise_levels=noise))]:
    s = estimate_sparsity(sorting, rec, peak_sign="both", progress_bar=False, **kwargs)
    out[name] = s.mask.tolist()
    out[name + "_dict"] = json.loads(json.dumps(s.to_dict(), default=lambda x: x.item()))
    out[name + "_repr"] = repr(s)
out["main"] = estimate_main_channel_from_recording(rec, sorting, peak_sign="neg", peak_mode="extremum", seed=7,
                                                   progress_bar=False).tolist()
print(json.dumps(out))
"""
    ref = json.loads(run_reference(script, tmp_path))
    # SpikeInterface estimates raw templates: compare with return_scaled=False
    common = dict(peak_sign="both", return_scaled=False, **NO_PROGRESS)
    ours = {
        "radius": estimate_sparsity(sorting, recording, method="radius", radius_um=40.0, **common),
        "best": estimate_sparsity(sorting, recording, method="best_channels", num_channels=5, **common),
        "closest": estimate_sparsity(sorting, recording, method="closest_channels", num_channels=4, **common),
        "snr": estimate_sparsity(sorting, recording, method="snr", threshold=6, noise_levels=noise, **common),
    }
    for name, sparsity in ours.items():
        np.testing.assert_array_equal(sparsity.mask, ref[name], err_msg=name)
        assert sparsity.to_dict() == ref[name + "_dict"]
        assert repr(sparsity) == ref[name + "_repr"]
    main = estimate_main_channel_from_recording(recording, sorting, peak_sign="neg", seed=7, **NO_PROGRESS)
    assert main.tolist() == ref["main"]


def test_compute_sparsity_matches_spikeinterface(tmp_path, templates):
    np.save(tmp_path / "arr.npy", templates.templates_array)
    np.save(tmp_path / "locations.npy", LOCATIONS)
    script = """
import json, warnings
import numpy as np
import probeinterface as pi
warnings.simplefilter("ignore")
from spikeinterface.core import Templates, compute_sparsity
probe = pi.Probe(ndim=2)
probe.set_contacts(np.load("locations.npy"), shapes="circle", shape_params={"radius": 5})
probe.set_device_channel_indices(np.arange(12))
t = Templates(np.load("arr.npy"), 30000., 30, probe=probe)
noise = np.linspace(5, 20, 12)
out = {}
for ps in ["neg", "both"]:
    for mode in ["extremum", "peak_to_peak"]:
        for method, kw in [("radius", dict(radius_um=33.0)), ("best_channels", dict(num_channels=4)),
                           ("snr", dict(threshold=5, noise_levels=noise)), ("amplitude", dict(threshold=80.0))]:
            s = compute_sparsity(t, method=method, peak_sign=ps, amplitude_mode=mode, **kw)
            out[f"{ps}-{mode}-{method}"] = s.mask.tolist()
print(json.dumps(out))
"""
    ref = json.loads(run_reference(script, tmp_path))
    noise = np.linspace(5, 20, 12)
    kwargs = {"radius": dict(radius_um=33.0), "best_channels": dict(num_channels=4),
              "snr": dict(threshold=5, noise_levels=noise), "amplitude": dict(threshold=80.0)}
    for key, expected in ref.items():
        ps, mode, method = key.split("-")
        ours = compute_sparsity(templates, method=method, peak_sign=ps, amplitude_mode=mode, **kwargs[method])
        np.testing.assert_array_equal(ours.mask, expected, err_msg=key)


def test_estimate_shared_accumulators_cleaned_up(int_data, monkeypatch, tmp_path):
    """n_jobs > 1 adds into per-worker shared accumulators that are removed afterwards (also on errors)."""
    import sicore.sparsity as sparsity_module

    recording, sorting = int_data[:2]
    made = []
    real_mkdtemp = sparsity_module.tempfile.mkdtemp

    def mkdtemp(prefix="", dir=None):
        made.append(real_mkdtemp(prefix=prefix, dir=str(tmp_path)))
        return made[-1]

    monkeypatch.setattr(sparsity_module.tempfile, "mkdtemp", mkdtemp)
    reference, _, _ = _estimate_templates_for_sparsity(sorting, recording, n_jobs=1, **NO_PROGRESS)
    assert made == []  # in-process: no shared memory
    parallel, _, _ = _estimate_templates_for_sparsity(sorting, recording, n_jobs=3, chunk_size=3001, **NO_PROGRESS)
    np.testing.assert_array_equal(parallel, reference)
    assert len(made) == 1 and not (tmp_path / made[0]).exists()


def test_accumulator_folders_of_killed_owners_are_removed(tmp_path, monkeypatch):
    """A pass killed with SIGKILL leaves its accumulator folder; the next pass removes it, never a live one's."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from sicore import sparsity

    monkeypatch.setattr(sparsity, "_accumulator_base", lambda: str(tmp_path))
    killed = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(killed.stdout)  # that process has ended
    orphan = tmp_path / f"sicore_acc_{dead_pid}_x1"
    orphan.mkdir()
    (orphan / "slots_0.bin").write_bytes(b"\0" * 16)
    alive = tmp_path / f"sicore_acc_{os.getpid()}_x2"
    alive.mkdir()
    unrelated = tmp_path / "sicore_acc_notapid"
    unrelated.mkdir()
    with sparsity._SharedAccumulators(2, (3,), [np.int64]) as accumulators:
        assert Path(accumulators.folder).parent == tmp_path
        assert Path(accumulators.folder).name.startswith(f"sicore_acc_{os.getpid()}_")
        assert not orphan.exists() and alive.is_dir() and unrelated.is_dir()
        np.testing.assert_array_equal(accumulators.total()[0], np.zeros(3, dtype=np.int64))
    assert not Path(accumulators.folder).exists()
