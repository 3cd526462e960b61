"""Shards of one recording and the safe files shard jobs exchange (see ``sicore.sharding``).

A *plan* cuts the recording's timeline (its segments laid end to end) into ``num_shards`` contiguous
time ranges whose borders fall on the chunk grid of the unsharded pass (``chunk_size`` samples from each
segment's start). A shard may cover the end of one segment and the start of the next, so any number of
shards works with any number of segments; a plan with more shards than chunks has empty shards (they
still run and write an empty partial, so a workflow always has exactly ``num_shards`` jobs).

Each shard job writes one *shard folder*, atomically: a hidden temporary sibling, ``shard.json`` (the
completion marker: pass, plan, params, source fingerprint) written last, then a rename. A killed job
leaves only the hidden temporary, which no gather reads and the next run of the same shard removes.
A gather checks every shard's marker against the plan it recomputes and names the shards that are
missing, incomplete or from another plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .io.atomic import TMP_MARK, atomic_folder
from .io.safe_files import read_json, to_json_compatible, write_json
from .version import __version__

SHARD_MARKER = "shard.json"
SHARD_FORMAT_VERSION = 2  # 2: templates shards of integer recordings hold raw-count sums
PASSES = ("save_recording", "noise_levels", "templates", "waveforms")


class ShardError(ValueError):
    """A shard output is missing, incomplete, or was computed for another plan / other parameters.

    A ValueError (like ``CorruptFolderError``), so command-line front ends report it as a user error.
    """


# ------------------------------------------------------------------------------------------ plan
@dataclass(frozen=True)
class Shard:
    """One shard: a contiguous time range of the recording, possibly across a segment border.

    Attributes
    ----------
    index : int
        Position of the shard in its plan, from 0.
    num_shards : int
        Number of shards of the plan.
    start, stop : int
        The range ``[start, stop)`` in *global frames*: the segments laid end to end (segment ``i`` starts at
        the sum of the lengths of segments ``0 .. i-1``).
    ranges : tuple of (int, int, int)
        The same range as ``(segment_index, start_frame, end_frame)`` pieces, one per segment it touches, in
        order (empty for an empty shard).
    """

    index: int
    num_shards: int
    start: int
    stop: int
    ranges: tuple[tuple[int, int, int], ...]

    @property
    def num_frames(self) -> int:
        return self.stop - self.start

    @property
    def name(self) -> str:
        """Conventional folder name of this shard, ``shard-002-of-004``."""
        return shard_folder_name(self.index, self.num_shards)

    def to_dict(self) -> dict:
        return {"index": self.index, "num_shards": self.num_shards, "start": self.start, "stop": self.stop,
                "ranges": [list(r) for r in self.ranges]}

    def chunk_slices(self, chunk_size: int) -> list[tuple[int, int, int]]:
        """``(segment_index, start_frame, end_frame)`` of the unsharded pass's chunks inside this shard."""
        slices = []
        for segment_index, start, end in self.ranges:
            slices.extend((segment_index, s, min(s + chunk_size, end)) for s in range(start, end, chunk_size))
        return slices


def shard_folder_name(shard_index: int, num_shards: int) -> str:
    """``shard-{index:03d}-of-{num_shards:03d}``: the folder name rules use for a shard's output."""
    return f"shard-{int(shard_index):03d}-of-{int(num_shards):03d}"


def _num_samples_of(recording) -> list[int]:
    return [int(recording.get_num_samples(i)) for i in range(recording.get_num_segments())]


def _sampling_frequency_of(recording) -> float:
    getter = getattr(recording, "get_sampling_frequency", None)
    return float(getter() if callable(getter) else recording.sampling_frequency)


def resolve_plan_chunk_size(recording, chunk_size: int | None = None, job_kwargs: dict | None = None) -> int:
    """Samples per chunk of the unsharded pass: ``chunk_size``, else from ``job_kwargs`` and the global ones."""
    from .job import ensure_chunk_size, fix_job_kwargs

    if chunk_size is not None:
        return ensure_chunk_size(recording, chunk_size=chunk_size)
    return ensure_chunk_size(recording, **fix_job_kwargs(dict(job_kwargs or {})))


def count_shards(recording, shard_duration) -> int:
    """Number of shards of about ``shard_duration`` each: ``ceil(total duration / shard_duration)``.

    Parameters
    ----------
    recording : BaseRecording or SortingAnalyzer
        Anything with ``get_num_segments``, ``get_num_samples`` and a sampling frequency.
    shard_duration : str or float
        Duration of a shard: seconds, or a string such as ``"30s"`` or ``"500ms"``.
    """
    from .recording_tools import chunk_duration_to_frames

    try:
        frames = chunk_duration_to_frames(shard_duration, _sampling_frequency_of(recording))
    except ValueError as err:
        raise ValueError(f"shard_duration: {err}") from None
    total = sum(_num_samples_of(recording))
    return max(1, math.ceil(total / frames))


def plan_shards(recording, num_shards: int | None = None, shard_duration=None, chunk_size: int | None = None,
                **job_kwargs) -> list[Shard]:
    """Cut a recording's timeline into ``num_shards`` contiguous, chunk-aligned shards (deterministic).

    The shard borders are the chunk borders (``chunk_size`` samples from each segment's start, as the
    unsharded pass cuts its chunks) nearest to ``k * total / num_shards``, so each chunk of the unsharded
    pass is processed whole by exactly one shard.

    Parameters
    ----------
    recording : BaseRecording or SortingAnalyzer
        Anything with ``get_num_segments``, ``get_num_samples`` and a sampling frequency (an analyzer works
        without its recording).
    num_shards : int or None, default: None
        Number of shards (exactly one of ``num_shards`` and ``shard_duration``).
    shard_duration : str or float or None, default: None
        Wanted shard duration instead ("30s", seconds); gives ``count_shards(recording, shard_duration)`` shards.
    chunk_size : int or None, default: None
        Samples per chunk of the unsharded pass; by default resolved from ``job_kwargs`` and the global job
        kwargs (``chunk_duration="1s"`` unless changed), as the unsharded pass resolves it.
    **job_kwargs
        Chunking job kwargs (``chunk_duration``, ``chunk_memory``, ...); others are ignored.

    Returns
    -------
    shards : list of Shard
        ``num_shards`` shards tiling the timeline in order; some are empty when there are fewer chunks than
        shards.
    """
    if (num_shards is None) == (shard_duration is None):
        raise ValueError(f"give exactly one of num_shards and shard_duration, got num_shards={num_shards!r}, "
                         f"shard_duration={shard_duration!r}")
    if num_shards is None:
        num_shards = count_shards(recording, shard_duration)
    if isinstance(num_shards, bool) or not isinstance(num_shards, (int, np.integer)) or num_shards < 1:
        raise ValueError(f"num_shards must be an int >= 1, got {num_shards!r}")
    num_shards = int(num_shards)
    from .job import job_keys

    unknown = sorted(k for k in job_kwargs if k not in job_keys)
    if unknown:
        raise TypeError(f"plan_shards got unexpected keyword arguments {unknown}; job kwargs are {list(job_keys)}")
    chunk_size = resolve_plan_chunk_size(recording, chunk_size, job_kwargs)

    num_samples = _num_samples_of(recording)
    offsets = np.concatenate([[0], np.cumsum(num_samples)]).astype(np.int64)
    total = int(offsets[-1])
    # every chunk border on the global timeline (segment borders included)
    edges = np.unique(np.concatenate(
        [np.arange(offsets[i], offsets[i] + n, chunk_size, dtype=np.int64) for i, n in enumerate(num_samples)]
        + [offsets]
    ))
    cuts = [0]
    for k in range(1, num_shards):
        target = k * total / num_shards
        i = int(np.searchsorted(edges, target))
        below, above = edges[max(i - 1, 0)], edges[min(i, edges.size - 1)]
        cut = int(below if target - below <= above - target else above)  # ties go to the earlier border
        cuts.append(max(cut, cuts[-1]))
    cuts.append(total)

    shards = []
    for index in range(num_shards):
        start, stop = cuts[index], cuts[index + 1]
        ranges = []
        for segment_index, n in enumerate(num_samples):
            lo, hi = max(start, int(offsets[segment_index])), min(stop, int(offsets[segment_index]) + n)
            if lo < hi:
                ranges.append((segment_index, lo - int(offsets[segment_index]), hi - int(offsets[segment_index])))
        shards.append(Shard(index, num_shards, start, stop, tuple(ranges)))
    return shards


def global_frames(segment_index: np.ndarray, frames: np.ndarray, num_samples: list[int]) -> np.ndarray:
    """Global frames (segments end to end) of ``(segment_index, frame)`` pairs, for assigning them to shards.

    A frame past its segment's end (a bad spike) counts as the segment's last frame, so every item
    belongs to exactly one shard and sorted ``(segment, frame)`` pairs stay sorted.
    """
    num_samples = np.asarray(num_samples, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(num_samples)])
    segment_index = np.asarray(segment_index, dtype=np.int64)
    last = np.maximum(num_samples[segment_index] - 1, 0)
    return offsets[segment_index] + np.clip(np.asarray(frames, dtype=np.int64), 0, last)


def select_shard(shard: Shard, keys: np.ndarray) -> tuple[int, int]:
    """``(first, stop)`` positions of the sorted global ``keys`` inside ``[shard.start, shard.stop)``."""
    first, stop = np.searchsorted(keys, [shard.start, shard.stop], side="left")
    return int(first), int(stop)


def get_shard(recording, shard_index: int, num_shards: int | None = None, shard_duration=None,
              chunk_size: int | None = None, **job_kwargs) -> Shard:
    """Shard ``shard_index`` of ``plan_shards(recording, ...)``; an out-of-range index is an error naming it."""
    plan = plan_shards(recording, num_shards=num_shards, shard_duration=shard_duration, chunk_size=chunk_size,
                       **job_kwargs)
    if isinstance(shard_index, bool) or not isinstance(shard_index, (int, np.integer)) \
            or not 0 <= shard_index < len(plan):
        raise ValueError(f"shard_index must be an int in [0, {len(plan)}), got {shard_index!r}")
    return plan[int(shard_index)]


def digest(array: np.ndarray) -> str:
    """SHA-1 of an array's bytes, dtype and shape: identifies e.g. the random spikes a shard used."""
    array = np.ascontiguousarray(array)
    h = hashlib.sha1(f"{array.dtype.str}{array.shape}".encode())
    h.update(memoryview(array).cast("B"))
    return h.hexdigest()


# ------------------------------------------------------------------------------ shard folders
def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Remove hidden temporaries of ``target`` left by a killed writer (``.<name>.sicore-tmp-*`` / ``-old-*``).

    Only the job that owns ``target`` may call this (a workflow never runs two jobs for one output).
    """
    target = Path(os.path.abspath(target))
    removed = []
    if not target.parent.is_dir():
        return removed
    for prefix in (f".{target.name}{TMP_MARK}", f".{target.name}.sicore-old-"):
        for path in target.parent.glob(f"{_glob_escape(prefix)}*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


@contextlib.contextmanager
def shard_output(shard_folder: str | Path, marker: dict) -> Iterator[Path]:
    """Yield a private temporary folder that becomes ``shard_folder`` (marker written last) on success.

    A previous output of the same shard is replaced only once the new one is complete; stale temporaries
    of a killed earlier run are removed first.
    """
    shard_folder = Path(os.path.abspath(shard_folder))
    remove_stale_temporaries(shard_folder)
    t0 = time.perf_counter()
    with atomic_folder(shard_folder, overwrite=True, argument="shard_folder") as tmp:
        yield tmp
        marker = dict(marker)
        marker["runtime_s"] = time.perf_counter() - t0
        marker["completed"] = True
        write_json(tmp / SHARD_MARKER, marker)  # last: marks a complete shard


def make_marker(pass_name: str, shard: Shard, chunk_size: int, params: dict, source: dict) -> dict:
    """The content of a shard's ``shard.json`` (``runtime_s`` and ``completed`` are added when it is written)."""
    if pass_name not in PASSES:
        raise ValueError(f"pass_name must be one of {list(PASSES)}, got {pass_name!r}")
    return to_json_compatible({
        "sicore_shard": SHARD_FORMAT_VERSION,
        "sicore_version": __version__,
        "pass": pass_name,
        "shard": shard.to_dict(),
        "chunk_size": int(chunk_size),
        "params": params,
        "source": source,
    }, "shard marker")


def check_shards(pass_name: str, shard_folders, plan: list[Shard], chunk_size: int, params: dict,
                 source: dict) -> list[tuple[Path, dict]]:
    """Check that every shard of ``plan`` is complete and was computed for this plan, params and source.

    Parameters
    ----------
    pass_name : str
        The pass (one of ``PASSES``).
    shard_folders : list of str or Path
        The shard folders, in shard order (``len == len(plan)``).
    plan : list of Shard
        The plan the gather recomputed.
    chunk_size : int
        The plan's chunk size.
    params : dict
        The pass's parameters (JSON-compatible), as the gather sees them.
    source : dict
        Fingerprint of the source (sizes, random spikes digest...), as the gather sees it.

    Returns
    -------
    shards : list of (Path, dict)
        Each shard folder with its marker.

    Raises
    ------
    ShardError
        Naming every shard that is missing, incomplete (e.g. its job was killed) or computed for another
        plan, other params or another source.
    """
    folders = [Path(os.path.abspath(f)) for f in shard_folders]
    if len(folders) != len(plan):
        raise ValueError(f"shard_folders: {len(folders)} folders given for a plan of {len(plan)} shards")
    expected = {"sicore_shard": SHARD_FORMAT_VERSION, "pass": pass_name, "chunk_size": int(chunk_size),
                "params": to_json_compatible(params), "source": to_json_compatible(source)}
    problems, out = [], []
    for shard, folder in zip(plan, folders):
        label = f"shard {shard.index} of {shard.num_shards} ({folder})"
        if not folder.is_dir():
            leftovers = list(folder.parent.glob(f"{_glob_escape('.' + folder.name + TMP_MARK)}*")) \
                if folder.parent.is_dir() else []
            hint = "; a hidden temporary shows its job was interrupted" if leftovers else ""
            problems.append(f"{label}: missing (run this shard's job{hint})")
            continue
        marker = read_json(folder / SHARD_MARKER, required=False)
        if not isinstance(marker, dict) or not marker.get("completed", False):
            problems.append(f"{label}: incomplete, no completed {SHARD_MARKER} (rerun this shard's job)")
            continue
        mismatches = [key for key, value in expected.items() if marker.get(key) != value]
        if marker.get("shard") != shard.to_dict():
            mismatches.append("shard")
        if mismatches:
            details = "; ".join(
                f"{key}: shard has {marker.get(key)!r}, gather expects "
                f"{shard.to_dict() if key == 'shard' else expected[key]!r}" for key in mismatches)
            problems.append(f"{label}: computed for another plan or other inputs ({details}); rerun this shard's job")
            continue
        out.append((folder, marker))
    if problems:
        raise ShardError(f"cannot gather {pass_name!r}: " + " | ".join(problems))
    return out


def take_shards(shards: list[tuple[Path, dict]]) -> list[tuple[Path, dict]]:
    """Move checked shard folders to hidden siblings (``.<name>.sicore-old-*``) that the gather then consumes.

    For a gather with ``remove_shards=True``: from here on the shards count as missing (a workflow reruns
    them if the gather fails), and the gather may delete each piece as soon as it is copied, so pages
    not yet written back never reach the disk. ``discard_shards`` removes the moved folders; a killed
    gather's leftovers are removed by the next run of the same shard (``remove_stale_temporaries``).
    """
    import tempfile

    taken = []
    for folder, marker in shards:
        hidden = Path(tempfile.mkdtemp(prefix=f".{folder.name}.sicore-old-", dir=folder.parent))
        os.rmdir(hidden)
        os.rename(folder, hidden)
        taken.append((hidden, marker))
    return taken


def discard_shards(shards: list[tuple[Path, dict]]) -> None:
    """Delete shard folders (e.g. those ``take_shards`` moved away)."""
    for folder, _ in shards:
        shutil.rmtree(folder, ignore_errors=True)


def shard_runtime(markers: list[dict]) -> float:
    """Summed ``runtime_s`` of the shards (the compute time of a sharded pass, without the gather)."""
    return float(sum(float(m.get("runtime_s") or 0.0) for m in markers))


def json_params(params: dict, where: str = "params") -> Any:
    """``params`` as plain JSON values (tuples become lists), as stored in markers and ``params.json``."""
    import json

    return json.loads(json.dumps(to_json_compatible(params, where)))
