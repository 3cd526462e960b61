"""Sharded analyzer passes: ``noise_levels``, ``templates`` (from the recording) and ``waveforms``.

Shards only read the analyzer (its root, ``random_spikes``, the recording) and write their own shard
folder; the gather writes the extension through the analyzer's storage (atomic: temporary sibling,
``run_info`` last), after deleting the extension's children on disk as ``compute`` does, so the
analyzer folder afterwards is the one ``compute(name, **params)`` leaves.

How each gathered result equals the unsharded one:

noise_levels
    The random chunks are drawn once from the params' seed, exactly as ``get_noise_levels`` draws them;
    each shard estimates the chunks whose first frame lies in its range; the gather stacks the per-chunk
    estimates in chunk order and averages them with the same code: bit for bit.
waveforms
    Each random spike belongs to the shard holding its sample; a shard cuts its spikes' waveforms with
    the unsharded code (reading margins beyond its range as needed); the gather concatenates them in
    spike order: bit for bit.
templates (without waveforms)
    Each shard accumulates float64 sums and sums of squares of its spikes' waveforms, in spike order,
    with the unsharded code; the gather adds the shards' sums in shard order and finishes with the
    unsharded code. When the cut-outs are integers (``return_scaled=False`` on an integer recording)
    every float64 sum is exact, so the templates are bit for bit equal. With float cut-outs (µV) the
    sums are regrouped at shard borders: float64 sums within a few ulp (relative ~1e-16), so the float32
    templates are equal except for rare last-bit differences: ``average`` within 1 float32 ulp, ``std``
    within 1 float32 ulp + 1e-6 x max |average| (the variance cancels when std << |mean|).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .sharding_plan import (
    Shard,
    ShardError,
    check_shards,
    digest,
    discard_shards,
    global_frames,
    json_params,
    make_marker,
    plan_shards,
    remove_stale_temporaries,
    resolve_plan_chunk_size,
    select_shard,
    shard_output,
    shard_runtime,
)

ANALYZER_PASSES = ("noise_levels", "templates", "waveforms")


# ------------------------------------------------------------------------------------------ helpers
def _open_analyzer(analyzer, recording=None, pass_name: str = "", from_random_spikes: bool = False):
    """A SortingAnalyzer from an analyzer or its folder (extensions loaded on demand)."""
    from .analyzer import load_sorting_analyzer

    if isinstance(analyzer, (str, Path)):
        analyzer = load_sorting_analyzer(analyzer, load_extensions=False)
    if not hasattr(analyzer, "get_extension"):
        raise ValueError(f"analyzer must be a SortingAnalyzer or its folder, got {type(analyzer).__name__}")
    if recording is not None:
        from .sharding_recording import _as_recording

        analyzer.set_temporary_recording(_as_recording(recording))
    if from_random_spikes:
        if pass_name != "templates":
            raise ValueError(f"from_random_spikes only applies to templates, not {pass_name!r}")
        # keep the waveforms out of sight, as `sicore compute templates --from random_spikes` does
        analyzer.hide_extension("waveforms")
    return analyzer


def _split_job_kwargs(job_kwargs: dict, pass_name: str) -> dict:
    from .job import split_job_kwargs

    extra, job_kwargs = split_job_kwargs(dict(job_kwargs))
    if extra:
        raise TypeError(f"unexpected arguments for the sharded {pass_name!r} pass: {sorted(extra)}; give the "
                        "extension's parameters in params={...}")
    return job_kwargs


def _prepared_extension(analyzer, pass_name: str, params: dict | None):
    """The extension object of ``pass_name`` with validated params (dependencies checked as compute does)."""
    from .analyzer.extension import get_extension_class

    if pass_name not in ANALYZER_PASSES:
        raise ValueError(f"pass_name must be one of {list(ANALYZER_PASSES)}, got {pass_name!r}")
    params = dict(params or {})
    cls = get_extension_class(pass_name)
    for group in cls.get_required_dependencies():
        if not any(analyzer.has_extension(parent) for parent in group):
            raise ValueError(f"extension {pass_name!r} depends on {' or '.join(repr(p) for p in group)}, which is "
                             f"not computed: compute({group[-1]!r}) first")
    if pass_name == "noise_levels":
        rsk = params.get("random_slices_kwargs") or {}
        if params.get("seed") is None and rsk.get("seed") is None:
            raise ValueError("params: a sharded noise_levels pass needs an explicit seed (params={'seed': 0} or "
                             "random_slices_kwargs={'seed': 0}) so that every shard draws the same random chunks")
    if pass_name == "templates" and analyzer.has_extension("waveforms"):
        raise ValueError("templates: this analyzer has waveforms, so templates are computed from them without "
                         "reading the recording; use compute('templates') (nothing to shard), or "
                         "from_random_spikes=True to compute them from the recording anyway")
    extension = cls(analyzer)
    extension.set_params(**params)
    if extension.need_recording and not analyzer._any_recording():
        raise ValueError(f"extension {pass_name!r} needs the recording, but this analyzer is recordingless; "
                         "give recording=... (the path of the recording)")
    return extension


def _source_fingerprint(analyzer, pass_name: str) -> dict:
    source = {
        "num_samples": [int(analyzer.get_num_samples(i)) for i in range(analyzer.get_num_segments())],
        "sampling_frequency": float(analyzer.sampling_frequency),
        "num_channels": int(analyzer.get_num_channels()),
        "num_units": int(analyzer.get_num_units()),
        "return_scaled": bool(analyzer.return_scaled),
        "sparsity": None if analyzer.sparsity_mask is None else digest(np.asarray(analyzer.sparsity_mask, bool)),
    }
    if pass_name in ("templates", "waveforms"):
        indices = analyzer.get_extension("random_spikes").data["random_spikes_indices"]
        source["random_spikes"] = digest(np.asarray(indices, dtype=np.int64))
    return source


def _plan(analyzer, num_shards, shard_duration, job_kwargs) -> tuple[list[Shard], int]:
    recording = analyzer.recording if analyzer._any_recording() else analyzer
    chunk_size = resolve_plan_chunk_size(recording, None, job_kwargs)
    return plan_shards(analyzer, num_shards=num_shards, shard_duration=shard_duration, chunk_size=chunk_size), \
        chunk_size


def _shard_of(plan: list[Shard], shard_index) -> Shard:
    if isinstance(shard_index, bool) or not isinstance(shard_index, (int, np.integer)) \
            or not 0 <= shard_index < len(plan):
        raise ValueError(f"shard_index must be an int in [0, {len(plan)}), got {shard_index!r}")
    return plan[int(shard_index)]


def _spike_bounds(analyzer, shard: Shard) -> tuple[np.ndarray, int, int]:
    """The random spikes and the ``[first, stop)`` run of them whose sample lies in the shard."""
    spikes = analyzer.get_extension("random_spikes").get_random_spikes()
    num_samples = [analyzer.get_num_samples(i) for i in range(analyzer.get_num_segments())]
    keys = global_frames(spikes["segment_index"], spikes["sample_index"], num_samples)
    first, stop = select_shard(shard, keys)
    return spikes, first, stop


def _store_extension(analyzer, extension) -> None:
    """Attach a computed extension and save it, deleting its children first (as ``compute`` does)."""
    name = extension.extension_name
    on_disk = analyzer.format != "memory"
    analyzer._delete_children(name, on_disk=on_disk)
    analyzer.extensions[name] = extension
    if on_disk:
        extension.save()
        analyzer._stale_on_disk.discard(name)


# ------------------------------------------------------------------------------------------ shard
def shard_analyzer_pass(pass_name: str, analyzer, shard_folder, shard_index: int, num_shards: int | None = None,
                        shard_duration=None, params: dict | None = None, recording=None,
                        from_random_spikes: bool = False, **job_kwargs) -> Path:
    """Compute shard ``shard_index`` of an analyzer pass into ``shard_folder`` (atomically).

    Parameters
    ----------
    pass_name : "noise_levels" | "templates" | "waveforms"
        The extension computed in shards.
    analyzer : SortingAnalyzer or str or Path
        The analyzer or its folder (binary_folder or zarr); it is only read.
    shard_folder : str or Path
        This shard's output folder (replaced atomically when it exists).
    shard_index : int
        The shard, in ``[0, num_shards)``.
    num_shards : int or None, default: None
        Number of shards (or give ``shard_duration``).
    shard_duration : str or float or None, default: None
        Shard duration instead of ``num_shards`` (see ``plan_shards``).
    params : dict or None, default: None
        The extension's parameters, as for ``compute(pass_name, **params)`` (noise_levels needs a seed).
    recording : BaseRecording or str or Path or None, default: None
        A recording for a recordingless analyzer (as ``set_temporary_recording``).
    from_random_spikes : bool, default: False
        templates only: compute them from the recording even when the analyzer has waveforms (as
        ``sicore compute templates --from random_spikes``); otherwise such an analyzer is an error.
    **job_kwargs
        ``n_jobs``, chunking options (they set the shard borders: give the gather the same), ...

    Returns
    -------
    shard_folder : Path
        The completed shard folder.
    """
    job_kwargs = _split_job_kwargs(job_kwargs, pass_name)
    analyzer = _open_analyzer(analyzer, recording, pass_name, from_random_spikes)
    extension = _prepared_extension(analyzer, pass_name, params)
    plan, chunk_size = _plan(analyzer, num_shards, shard_duration, job_kwargs)
    shard = _shard_of(plan, shard_index)
    marker = make_marker(pass_name, shard, chunk_size, json_params(extension.params),
                         _source_fingerprint(analyzer, pass_name))
    with shard_output(shard_folder, marker) as tmp:
        if pass_name == "noise_levels":
            _noise_levels_shard(analyzer, extension, shard, tmp, job_kwargs)
        elif pass_name == "waveforms":
            spikes, first, stop = _spike_bounds(analyzer, shard)
            from .analyzer.storage import ExtensionStage

            # written in place by the pass (its workers included), as an unsharded compute does
            stage = ExtensionStage(tmp)
            out = stage.new_array("waveforms", extension.waveforms_shape(stop - first), extension.params["dtype"])
            waveforms = extension._cut_waveforms(spikes[first:stop], job_kwargs, out=out)
            if not stage.keep_only({"waveforms": waveforms}):  # no spike: nothing was mapped
                np.save(tmp / "waveforms.npy", waveforms)
            np.save(tmp / "spike_range.npy", np.array([first, stop], dtype=np.int64))
        else:
            spikes, first, stop = _spike_bounds(analyzer, shard)
            sums, squares = extension._accumulate_from_recording(spikes[first:stop], job_kwargs)
            np.save(tmp / "sums.npy", sums)
            np.save(tmp / "squares.npy", squares)
            np.save(tmp / "spike_range.npy", np.array([first, stop], dtype=np.int64))
    return Path(os.path.abspath(shard_folder))


def _noise_levels_setup(analyzer, extension, job_kwargs: dict):
    from .recording_tools import noise_levels_setup

    kwargs = extension._noise_levels_kwargs(job_kwargs)
    return_scaled, _, slices, chunk_job_kwargs = noise_levels_setup(analyzer.recording, **kwargs)
    return return_scaled, kwargs.get("method", "mad"), slices, chunk_job_kwargs


def _noise_levels_shard(analyzer, extension, shard: Shard, folder: Path, job_kwargs: dict) -> None:
    from .recording_tools import _compute_noise_levels_on_slices, _scaling_of

    recording = analyzer.recording
    return_scaled, method, slices, chunk_job_kwargs = _noise_levels_setup(analyzer, extension, job_kwargs)
    num_samples = [recording.get_num_samples(i) for i in range(recording.get_num_segments())]
    keys = global_frames([s[0] for s in slices], [s[1] for s in slices], num_samples)
    # slices are sorted by segment then start, so a shard's chunks are one run of them
    first, stop = select_shard(shard, keys)
    _scaling_of(recording, return_scaled)
    per_chunk = _compute_noise_levels_on_slices(recording, slices[first:stop], return_scaled, method,
                                                chunk_job_kwargs) if stop > first else []
    values = np.stack(per_chunk) if per_chunk else np.zeros((0, recording.get_num_channels()))
    np.save(folder / "chunk_noise_levels.npy", values)
    np.save(folder / "chunk_range.npy", np.array([first, stop], dtype=np.int64))


def shard_noise_levels(analyzer, shard_folder, shard_index: int, num_shards: int | None = None, shard_duration=None,
                       params: dict | None = None, recording=None, **job_kwargs) -> Path:
    """Shard of the ``noise_levels`` pass (see ``shard_analyzer_pass``); params need a seed."""
    return shard_analyzer_pass("noise_levels", analyzer, shard_folder, shard_index, num_shards, shard_duration,
                               params, recording, **job_kwargs)


def shard_templates(analyzer, shard_folder, shard_index: int, num_shards: int | None = None, shard_duration=None,
                    params: dict | None = None, recording=None, from_random_spikes: bool = False,
                    **job_kwargs) -> Path:
    """Shard of the ``templates`` pass from the recording (see ``shard_analyzer_pass``)."""
    return shard_analyzer_pass("templates", analyzer, shard_folder, shard_index, num_shards, shard_duration,
                               params, recording, from_random_spikes, **job_kwargs)


def shard_waveforms(analyzer, shard_folder, shard_index: int, num_shards: int | None = None, shard_duration=None,
                    params: dict | None = None, recording=None, **job_kwargs) -> Path:
    """Shard of the ``waveforms`` pass (see ``shard_analyzer_pass``)."""
    return shard_analyzer_pass("waveforms", analyzer, shard_folder, shard_index, num_shards, shard_duration,
                               params, recording, **job_kwargs)


# ------------------------------------------------------------------------------------------ gather
def gather_analyzer_pass(pass_name: str, analyzer, shard_folders, num_shards: int | None = None,
                         shard_duration=None, params: dict | None = None, recording=None, remove_shards: bool = False,
                         from_random_spikes: bool = False, **job_kwargs):
    """Combine the shards of an analyzer pass and save the extension as ``compute(pass_name, **params)`` would.

    Parameters
    ----------
    pass_name : "noise_levels" | "templates" | "waveforms"
        The extension.
    analyzer : SortingAnalyzer or str or Path
        The analyzer or its folder; the extension is written into it (its children are deleted first).
    shard_folders : list of str or Path
        The shard folders, in shard order.
    num_shards, shard_duration, params, recording, from_random_spikes, **job_kwargs :
        As given to the shards (the chunking job kwargs set the plan).
    remove_shards : bool, default: False
        Delete the shard folders once the extension is saved (for temporary shard outputs).

    Returns
    -------
    extension : AnalyzerExtension
        The computed extension; ``run_info["runtime_s"]`` is the shards' summed runtime plus the gather's.

    Raises
    ------
    ShardError
        When a shard is missing, incomplete or from another plan / params / analyzer (the error names each).
    """
    t0 = time.perf_counter()
    job_kwargs = _split_job_kwargs(job_kwargs, pass_name)
    analyzer = _open_analyzer(analyzer, recording, pass_name, from_random_spikes)
    extension = _prepared_extension(analyzer, pass_name, params)
    plan, chunk_size = _plan(analyzer, num_shards, shard_duration, job_kwargs)
    shards = check_shards(pass_name, shard_folders, plan, chunk_size, json_params(extension.params),
                          _source_fingerprint(analyzer, pass_name))
    if analyzer.folder is not None:
        remove_stale_temporaries(Path(analyzer.folder) / "extensions" / pass_name)
    if pass_name == "noise_levels":
        extension.data = _gather_noise_levels(analyzer, extension, plan, shards, job_kwargs)
    elif pass_name == "waveforms":
        extension.data = _gather_waveforms(analyzer, extension, plan, shards)
    else:
        extension.data = _gather_templates(analyzer, extension, plan, shards)
    runtime = shard_runtime([marker for _, marker in shards]) + time.perf_counter() - t0
    extension.run_info = {"run_completed": True, "runtime_s": runtime}
    _store_extension(analyzer, extension)
    if pass_name == "waveforms" and analyzer.format == "binary_folder":
        # the saved file, memory-mapped as a loaded extension's data is (the shards may go next)
        extension.data = analyzer._storage.load_extension("waveforms").data
    if remove_shards:
        discard_shards(shards)
    return extension


def _load(folder: Path, name: str, shard: Shard, mmap: bool = False) -> np.ndarray:
    from .io.safe_files import load_npy

    file = folder / name
    if not file.is_file():
        raise ShardError(f"shard {shard.index} of {shard.num_shards} ({folder}): {name} is missing; "
                         "rerun this shard's job")
    return load_npy(file, mmap_mode="r" if mmap else None)


def _check_range(folder: Path, name: str, shard: Shard, expected: tuple[int, int]) -> None:
    got = tuple(int(v) for v in _load(folder, name, shard))
    if got != expected:
        raise ShardError(f"shard {shard.index} of {shard.num_shards} ({folder}): {name} covers {list(got)}, the "
                         f"plan gives {list(expected)}; rerun this shard's job")


def _gather_noise_levels(analyzer, extension, plan, shards, job_kwargs) -> dict:
    from .recording_tools import average_chunk_noise_levels

    _, _, slices, _ = _noise_levels_setup(analyzer, extension, job_kwargs)
    num_samples = [analyzer.get_num_samples(i) for i in range(analyzer.get_num_segments())]
    keys = global_frames([s[0] for s in slices], [s[1] for s in slices], num_samples)
    rows = []
    for shard, (folder, _) in zip(plan, shards):
        first, stop = select_shard(shard, keys)
        _check_range(folder, "chunk_range.npy", shard, (first, stop))
        values = _load(folder, "chunk_noise_levels.npy", shard)
        if values.shape[0] != stop - first:
            raise ShardError(f"shard {shard.index} of {shard.num_shards} ({folder}): {values.shape[0]} chunk "
                             f"estimates for {stop - first} chunks; rerun this shard's job")
        rows.extend(values)  # chunk order: shards are in time order and so are their chunks
    return {"noise_levels": np.asarray(average_chunk_noise_levels(rows))}


def _gather_waveforms(analyzer, extension, plan, shards) -> dict:
    spikes = analyzer.get_extension("random_spikes").get_random_spikes()
    num_samples = [analyzer.get_num_samples(i) for i in range(analyzer.get_num_segments())]
    keys = global_frames(spikes["segment_index"], spikes["sample_index"], num_samples)
    parts = []
    for shard, (folder, _) in zip(plan, shards):
        first, stop = select_shard(shard, keys)
        _check_range(folder, "spike_range.npy", shard, (first, stop))
        part = _load(folder, "waveforms.npy", shard, mmap=True)
        if part.shape[0] != stop - first or part.dtype != np.dtype(extension.params["dtype"]):
            raise ShardError(f"shard {shard.index} of {shard.num_shards} ({folder}): waveforms.npy has shape "
                             f"{part.shape} and dtype {part.dtype}, expected {stop - first} spikes of "
                             f"{extension.params['dtype']}; rerun this shard's job")
        parts.append(part)
    if analyzer.format == "binary_folder":
        from .analyzer.storage import StackedArrays

        return {"waveforms": StackedArrays(parts)}  # streamed from the shard files into waveforms.npy
    return {"waveforms": np.concatenate(parts, axis=0)}


def _gather_templates(analyzer, extension, plan, shards) -> dict:
    spikes = analyzer.get_extension("random_spikes").get_random_spikes()
    num_samples = [analyzer.get_num_samples(i) for i in range(analyzer.get_num_segments())]
    keys = global_frames(spikes["segment_index"], spikes["sample_index"], num_samples)
    sums = squares = None
    for shard, (folder, _) in zip(plan, shards):
        _check_range(folder, "spike_range.npy", shard, select_shard(shard, keys))
        shard_sums, shard_squares = _load(folder, "sums.npy", shard), _load(folder, "squares.npy", shard)
        if sums is None:
            sums, squares = np.array(shard_sums, dtype=np.float64), np.array(shard_squares, dtype=np.float64)
        elif shard_sums.shape != sums.shape or shard_squares.shape != sums.shape:
            raise ShardError(f"shard {shard.index} of {shard.num_shards} ({folder}): sums of shape "
                             f"{shard_sums.shape}, expected {sums.shape}; rerun this shard's job")
        else:
            sums += shard_sums  # in shard order: exact for integer cut-outs, regrouped float64 sums otherwise
            squares += shard_squares
    return extension._templates_from_sums(sums, squares, spikes)


def gather_noise_levels(analyzer, shard_folders, num_shards: int | None = None, shard_duration=None,
                        params: dict | None = None, recording=None, remove_shards: bool = False, **job_kwargs):
    """Gather of the ``noise_levels`` pass (see ``gather_analyzer_pass``)."""
    return gather_analyzer_pass("noise_levels", analyzer, shard_folders, num_shards, shard_duration, params,
                                recording, remove_shards, **job_kwargs)


def gather_templates(analyzer, shard_folders, num_shards: int | None = None, shard_duration=None,
                     params: dict | None = None, recording=None, remove_shards: bool = False,
                     from_random_spikes: bool = False, **job_kwargs):
    """Gather of the ``templates`` pass (see ``gather_analyzer_pass``)."""
    return gather_analyzer_pass("templates", analyzer, shard_folders, num_shards, shard_duration, params,
                                recording, remove_shards, from_random_spikes, **job_kwargs)


def gather_waveforms(analyzer, shard_folders, num_shards: int | None = None, shard_duration=None,
                     params: dict | None = None, recording=None, remove_shards: bool = False, **job_kwargs):
    """Gather of the ``waveforms`` pass (see ``gather_analyzer_pass``)."""
    return gather_analyzer_pass("waveforms", analyzer, shard_folders, num_shards, shard_duration, params,
                                recording, remove_shards, **job_kwargs)
