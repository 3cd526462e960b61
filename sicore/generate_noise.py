"""Lazy, seeded white-noise recordings: traces exist only while being read.

Noise is produced in blocks of ``noise_block_size`` samples, each from its own random generator
seeded by ``(seed, segment_index[, block_index])``; a read assembles the blocks it overlaps, so any
sub-range read returns exactly the values of a full read and nothing is allocated before reading.
"""

from __future__ import annotations

import numpy as np
import probeinterface as pi

from .generate_spiketrains import (
    check_positive_int,
    check_sampling_frequency,
    durations_to_num_samples,
    resolve_seed,
)
from .recording import BaseRecording, BaseRecordingSegment

_STRATEGIES = ("tile_pregenerated", "on_the_fly")


class NoiseGeneratorRecording(BaseRecording):
    """A lazy recording of Gaussian noise, generated only when ``get_traces`` is called.

    Parameters
    ----------
    num_channels : int
        Number of channels (ids ``"0", "1", ...``).
    sampling_frequency : float
        Sampling rate in Hz.
    durations : list of float
        Duration of each segment in seconds (one segment per entry).
    noise_levels : float or array-like, default: 1.0
        Standard deviation of the noise, for all channels or one per channel.
    cov_matrix : array-like or None, default: None
        Covariance between channels, (num_channels, num_channels) positive definite; the noise is then
        correlated with that covariance before being multiplied by ``noise_levels``.
    dtype : str or numpy dtype, default: "float32"
        "float32" or "float64".
    seed : int or None, default: None
        Random seed; None draws one, which is kept (in the provenance) so the traces can be regenerated.
    strategy : "tile_pregenerated" | "on_the_fly", default: "tile_pregenerated"
        "tile_pregenerated": one block per segment, generated on the first read, then repeated (fast
        reads, one block kept in memory, the noise is periodic). "on_the_fly": every block is generated
        from its own seed when read (aperiodic; the last generated block is kept for the next read).
    noise_block_size : int, default: 30000
        Block size in samples.
    t_starts : list of float or None, default: None
        Time in seconds of the first sample of each segment.
    """

    def __init__(self, num_channels: int, sampling_frequency: float, durations, noise_levels=1.0,
                 cov_matrix=None, dtype="float32", seed: int | None = None, strategy: str = "tile_pregenerated",
                 noise_block_size: int = 30000, t_starts=None):
        num_channels = check_positive_int(num_channels, "num_channels")
        sampling_frequency = check_sampling_frequency(sampling_frequency)
        num_samples_list = durations_to_num_samples(durations, sampling_frequency)
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype("float32"), np.dtype("float64")):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype}")
        if strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}")
        noise_block_size = check_positive_int(noise_block_size, "noise_block_size")
        levels = np.asarray(noise_levels, dtype=np.float64)
        if levels.size == 1:
            levels = np.full(num_channels, float(levels.reshape(-1)[0]))
        elif levels.size == num_channels:
            levels = levels.reshape(-1)
        else:
            raise ValueError(
                f"noise_levels must be a number or one level per channel ({num_channels}), got shape {levels.shape}"
            )
        if np.any(~np.isfinite(levels)) or np.any(levels < 0):
            raise ValueError(f"noise_levels must be non-negative, got {levels.tolist()}")
        mixing = None
        if cov_matrix is not None:
            cov = np.asarray(cov_matrix, dtype=np.float64)
            if cov.shape != (num_channels, num_channels):
                raise ValueError(f"cov_matrix must have shape ({num_channels}, {num_channels}), got {cov.shape}")
            try:
                mixing = np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise ValueError("cov_matrix must be symmetric positive definite") from None
            mixing = (mixing.T * levels[np.newaxis, :]).astype(dtype)  # noise = z @ (L.T * levels)
        if t_starts is not None and len(t_starts) != len(num_samples_list):
            raise ValueError(f"t_starts has {len(t_starts)} values for {len(num_samples_list)} segments")
        seed = resolve_seed(seed)

        BaseRecording.__init__(self, sampling_frequency, np.arange(num_channels).astype(str), dtype)
        for segment_index, num_samples in enumerate(num_samples_list):
            t_start = None if t_starts is None else float(t_starts[segment_index])
            self.add_recording_segment(NoiseGeneratorRecordingSegment(
                num_samples, num_channels, sampling_frequency, noise_block_size, levels.astype(dtype), mixing,
                dtype, seed, segment_index, strategy, t_start,
            ))
        self._kwargs = {
            "num_channels": num_channels,
            "sampling_frequency": sampling_frequency,
            "durations": [float(d) for d in durations],
            "noise_levels": float(levels[0]) if np.all(levels == levels[0]) else levels.tolist(),
            "cov_matrix": None if cov_matrix is None else np.asarray(cov_matrix, dtype=np.float64).tolist(),
            "dtype": dtype.name,
            "seed": seed,
            "strategy": strategy,
            "noise_block_size": noise_block_size,
            "t_starts": None if t_starts is None else [float(t) for t in t_starts],
        }


class NoiseGeneratorRecordingSegment(BaseRecordingSegment):
    # get_traces always returns a new array the caller may modify in place
    returns_fresh_traces = True

    def __init__(self, num_samples, num_channels, sampling_frequency, noise_block_size, noise_levels, mixing, dtype,
                 seed, segment_index, strategy, t_start):
        BaseRecordingSegment.__init__(self, sampling_frequency, t_start=t_start)
        self.num_samples = int(num_samples)
        self.num_channels = num_channels
        self.noise_block_size = noise_block_size
        self.noise_levels = noise_levels
        self.mixing = mixing
        self.dtype = dtype
        self.seed = seed
        self.segment_index = segment_index
        self.strategy = strategy
        # (block_index, block): the tile, or the last on-the-fly block (one tuple: atomic to swap)
        self._cached_block: tuple[int, np.ndarray] | None = None

    def get_num_samples(self) -> int:
        return self.num_samples

    def _make_block(self, block_index: int) -> np.ndarray:
        # one independent stream per (seed, segment[, block]): any read order gives the same values
        if self.strategy == "tile_pregenerated":
            rng = np.random.default_rng([self.seed, self.segment_index])
        else:
            rng = np.random.default_rng([self.seed, self.segment_index, block_index])
        block = rng.standard_normal((self.noise_block_size, self.num_channels), dtype=self.dtype)
        if self.mixing is not None:
            return block @ self.mixing
        block *= self.noise_levels
        return block

    def _get_block(self, block_index: int) -> np.ndarray:
        if self.strategy == "tile_pregenerated":
            block_index = 0
        cached = self._cached_block
        if cached is not None and cached[0] == block_index:
            return cached[1]
        block = self._make_block(block_index)
        self._cached_block = (block_index, block)
        return block

    def get_traces(self, start_frame, end_frame, channel_indices):
        start_frame = 0 if start_frame is None else int(start_frame)
        end_frame = self.num_samples if end_frame is None else int(end_frame)
        if isinstance(channel_indices, (int, np.integer)):
            channel_indices = [int(channel_indices)]
        all_channels = isinstance(channel_indices, slice) and channel_indices == slice(None)
        num_out = self.num_channels if all_channels else np.arange(self.num_channels)[channel_indices].size
        traces = np.empty((end_frame - start_frame, num_out), dtype=self.dtype)
        size = self.noise_block_size
        pos, frame = 0, start_frame
        while frame < end_frame:
            block_index, offset = divmod(frame, size)
            take = min(size - offset, end_frame - frame)
            block = self._get_block(block_index)
            if all_channels:
                traces[pos:pos + take] = block[offset:offset + take]
            else:
                traces[pos:pos + take] = block[offset:offset + take, channel_indices]
            pos += take
            frame += take
        return traces


def noise_generator_recording(*args, **kwargs) -> NoiseGeneratorRecording:
    """Function form of :class:`NoiseGeneratorRecording` (same parameters)."""
    return NoiseGeneratorRecording(*args, **kwargs)


def generate_recording(num_channels: int = 2, sampling_frequency: float = 30000.0, durations=(5.0, 2.5),
                       set_probe: bool = True, ndim: int = 2, t_starts=None, seed: int | None = None,
                       mode: str = "lazy") -> BaseRecording:
    """A lazy noise recording (standard deviation 1), optionally with a linear probe.

    Parameters
    ----------
    num_channels : int, default: 2
        Number of channels (ids ``"0", "1", ...``).
    sampling_frequency : float, default: 30000.0
        Sampling rate in Hz.
    durations : list of float, default: [5.0, 2.5]
        Duration of each segment in seconds (one segment per entry).
    set_probe : bool, default: True
        Attach a one-column linear probe (20 µm pitch, circular contacts of radius 6 µm), contact ``i``
        wired to channel ``i``.
    ndim : 2 | 3, default: 2
        Dimension of the probe (a 3-d probe lies in the x-z plane, as probeinterface's ``to_3d``).
    t_starts : list of float or None, default: None
        Time in seconds of the first sample of each segment.
    seed : int or None, default: None
        Random seed.
    mode : "lazy" | "legacy", default: "lazy"
        "lazy": a :class:`NoiseGeneratorRecording`; "legacy": the same traces loaded in a NumpyRecording.

    Returns
    -------
    recording : BaseRecording
        The recording.
    """
    if mode not in ("lazy", "legacy"):
        raise ValueError(f"mode must be 'lazy' or 'legacy', got {mode!r}")
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
    recording = NoiseGeneratorRecording(num_channels=num_channels, sampling_frequency=sampling_frequency,
                                        durations=durations, noise_levels=1.0, dtype="float32", seed=seed,
                                        strategy="tile_pregenerated", noise_block_size=30000, t_starts=t_starts)
    if mode == "legacy":
        from .numpy_objects import NumpyRecording

        recording = NumpyRecording.from_recording(recording)
    if set_probe:
        probe = pi.generate_linear_probe(num_elec=recording.get_num_channels(), ypitch=20)
        if ndim == 3:
            probe = probe.to_3d()
        probe.set_device_channel_indices(np.arange(recording.get_num_channels()))
        recording.set_probe(probe, in_place=True)
    return recording


def generate_recording_by_size(full_traces_size_GiB: float, seed: int | None = None,
                               strategy: str = "tile_pregenerated") -> NoiseGeneratorRecording:
    """A lazy 384-channel float32 noise recording at 30 kHz whose traces would take ``full_traces_size_GiB``.

    Parameters
    ----------
    full_traces_size_GiB : float
        Size of the full traces in GiB (nothing is allocated).
    seed : int or None, default: None
        Random seed.
    strategy : "tile_pregenerated" | "on_the_fly", default: "tile_pregenerated"
        Noise strategy, see :class:`NoiseGeneratorRecording`.
    """
    if not full_traces_size_GiB > 0:
        raise ValueError(f"full_traces_size_GiB must be > 0, got {full_traces_size_GiB}")
    num_channels, sampling_frequency = 384, 30000.0
    num_samples = int(full_traces_size_GiB * 1024**3 / (num_channels * np.dtype("float32").itemsize))
    if num_samples < 1:
        raise ValueError(f"full_traces_size_GiB {full_traces_size_GiB} is smaller than one sample")
    return NoiseGeneratorRecording(num_channels=num_channels, sampling_frequency=sampling_frequency,
                                   durations=[num_samples / sampling_frequency], dtype="float32", seed=seed,
                                   strategy=strategy)
