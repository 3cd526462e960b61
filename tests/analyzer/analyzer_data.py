"""Fixtures for the analyzer tests: a small int16 recording with gains and a probe, and a sorting with
spikes at the segment borders; helpers that cut waveforms out of the raw arrays independently."""

import numpy as np

FS = 10000.0
NUM_CHANNELS = 6


def make_pair(seed: int = 0):
    """(recording, sorting, traces_list, gains, offsets): 2 segments, 6 channels on a line 25 um apart."""
    from sicore.numpy_objects import NumpyRecording, NumpySorting

    rng = np.random.default_rng(seed)
    lengths = [4000, 2500]
    traces_list = [rng.integers(-300, 300, size=(n, NUM_CHANNELS)).astype("int16") for n in lengths]
    recording = NumpyRecording(traces_list, sampling_frequency=FS, channel_ids=[f"c{i}" for i in range(NUM_CHANNELS)])
    gains = np.linspace(0.5, 1.5, NUM_CHANNELS)
    offsets = np.arange(NUM_CHANNELS, dtype=float) - 2.0
    recording.set_channel_gains(gains)
    recording.set_channel_offsets(offsets)
    locations = np.stack([np.zeros(NUM_CHANNELS), 25.0 * np.arange(NUM_CHANNELS)], axis=1)
    recording.set_dummy_probe_from_locations(locations)
    # units have a "main" channel where their spikes are big, so sparsity estimation is meaningful
    times, labels = [], []
    for n, traces in zip(lengths, traces_list):
        seg_times, seg_labels = [], []
        for unit, channel in enumerate([0, 2, 5, 3]):
            t = np.sort(rng.choice(np.arange(5, n - 5), size=40 + 10 * unit, replace=False))
            if unit == 0:
                t = np.concatenate([[0, 2], t, [n - 3, n - 1]])  # border spikes: zero-padded cut-outs
            for s in t:
                traces[max(s - 3, 0): s + 4, channel] -= 1500
            seg_times.append(t)
            seg_labels.append(np.full(t.size, unit))
        times.append(np.concatenate(seg_times))
        labels.append(np.concatenate(seg_labels))
    sorting = NumpySorting.from_times_labels(times, labels, FS)
    return recording, sorting, traces_list, gains, offsets


def cutouts(traces_list, spikes, nbefore, nafter, gains=None, offsets=None):
    """Waveforms (n, nbefore + nafter, channels) cut from the raw arrays, zero outside the segment."""
    out = []
    for s in spikes:
        traces = traces_list[int(s["segment_index"])].astype(np.float32)
        if gains is not None:
            traces = traces * gains.astype(np.float32) + offsets.astype(np.float32)
        window = np.zeros((nbefore + nafter, traces.shape[1]), dtype=np.float32)
        start = int(s["sample_index"]) - nbefore
        for k in range(nbefore + nafter):
            if 0 <= start + k < traces.shape[0]:
                window[k] = traces[start + k]
        out.append(window)
    return np.array(out).reshape(len(out), nbefore + nafter, -1)
