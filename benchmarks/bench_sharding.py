"""Sharded heavy passes against the unsharded ones: the sharding overhead and a model of N shards on N nodes.

Usage::

    python benchmarks/bench_sharding.py [--duration 120] [--channels 384] [--shards 4] [--cores 2]
                                        [--model-shards 2 4 8] [--passes save_recording noise_levels ...]
                                        [--quick] [--workdir DIR] [--keep] [--json out.json]

Data (scale B by default): an int16 raw binary file, 384 channels (Neuropixels-1.0-like probe), 30 kHz,
120 s, generated noise (sigma = 5 counts) plus the spikes of a ground-truth-like sorting (64 units,
Poisson trains at 2-8 Hz, one template per unit on the channels within 80 um of its main channel),
and a binary_folder SortingAnalyzer on it (radius sparsity 100 um, ``random_spikes`` 500 per unit).

Every job is its own Python process, as a workflow job is (start-up, imports and opening the
analyzer are inside the time). For each pass (``save_recording`` of the raw file to binary and to
zarr, to binary with ``binary_layout="pieces"`` when sharded (``save_recording_pieces``: the gather moves
the shards' pieces into place instead of copying them), ``save_recording`` of a lazily generated float32
noise recording to int16 binary (a source whose reading costs CPU, like the workflow's default generated
dataset), ``noise_levels`` MAD in uV,
``templates`` from the recording, ``waveforms``):

* unsharded: one job with ``n_jobs = --cores`` (a rule with ``threads: 2`` under ``--cores 2``);
* sharded: ``--shards`` shard jobs with ``n_jobs=1`` run ``--cores`` at a time (a process pool of
  that size, as ``snakemake --cores 2`` schedules single-thread jobs), then the gather job (alone, with
  ``n_jobs = --cores``; ``remove_shards=True`` as with ``temp()`` shard outputs). The overhead ratio is
  sharded wall / unsharded wall (target <= 1.2);
* model of N shards on N nodes: the N shards of a plan run one at a time, alone on the machine (each
  as if it had its own node), with ``n_jobs=1``; then ``wall_N = max(shard) + gather`` against the
  unsharded job with ``n_jobs=1`` (one node, one core): ideal is ``1/N``.

End to end (``--workflow``): the whole Snakemake workflow (default config: save, sparsity, analyzer,
extensions, report) on the scale-B raw file with an npz sorting, ``snakemake --cores 2``, unsharded
against ``sharding: {shards: 4, binary_layout: --binary-layout}`` (default ``pieces``, the workflow's;
best of ``--repeats`` each, alternating, every run started 5 s after the previous one's outputs were
deleted; the issue's target is a sharded run no slower than 1.2x). ``--raw/--probe/--sorting-npz`` reuse an existing dataset read-only
(by default the one of bench_workflow.py under /tmp/bw0/data when present). The saved traces, noise
levels and waveforms of both runs are compared byte for byte.

The page cache is warm: the source file is read once before every phase (outputs are removed and the
disk synced between phases, outside the timers). The sharded outputs are checked against the
unsharded ones (files byte for byte, noise levels and waveforms bit for bit, templates max |diff|).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import (  # noqa: E402
    FS,
    GAIN_TO_UV,
    SETTLE_S,
    Cache,
    ensure_bytecode,
    format_table,
    json_default,
    machine_load,
    nw_probe,
    run_json_subprocess,
    write_noise_int16,
)

PASSES = ("save_recording", "save_recording_pieces", "save_recording_zarr", "save_recording_generated",
          "noise_levels", "templates", "waveforms")
TARGET_OVERHEAD = 1.2
MARKER = "BENCH_RESULT "
NOISE_PARAMS = {"method": "mad", "random_slices_kwargs": {"seed": 0}}
TEMPLATE_PARAMS = {"operators": ["average", "std"], "ms_before": 1.0, "ms_after": 2.0}
WAVEFORM_PARAMS = {"ms_before": 1.0, "ms_after": 2.0}
PARAMS = {"noise_levels": NOISE_PARAMS, "templates": TEMPLATE_PARAMS, "waveforms": WAVEFORM_PARAMS}


# ============================================================================ data
def make_dataset(workdir: Path, channels: int, seconds: float, num_units: int, seed: int = 0) -> dict:
    """The raw file with injected spikes, its probe, the recording's provenance JSON and the sorting."""
    import sicore as si

    num_samples = int(seconds * FS)
    raw = workdir / f"traces_{channels}ch_{seconds:g}s.raw"
    probegroup = nw_probe(channels, "np1")
    locations = probegroup.probes[0].contact_positions
    rng = np.random.default_rng(seed)
    main = rng.integers(0, channels, size=num_units)
    width_before, width_after = 30, 60
    t = np.arange(-width_before, width_after, dtype=np.float32)
    amplitudes = rng.uniform(40, 150, size=num_units).astype(np.float32)
    templates = []
    for unit in range(num_units):
        distance = np.linalg.norm(locations - locations[main[unit]], axis=1)
        near = np.flatnonzero(distance <= 80.0)
        shape = -np.exp(-(t / 6.0) ** 2) + 0.3 * np.exp(-((t - 15.0) / 10.0) ** 2)
        templates.append((near, amplitudes[unit] * shape[:, None] * np.exp(-distance[near] / 30.0)[None, :]))
    times, labels = [], []
    for unit in range(num_units):
        rate = rng.uniform(2.0, 8.0)
        isi = rng.exponential(FS / rate, size=int(rate * seconds * 1.5) + 10) + int(0.002 * FS)
        train = np.cumsum(isi).astype(np.int64)
        train = train[(train > width_before) & (train < num_samples - width_after)]
        times.append(train)
        labels.append(np.full(train.size, unit))
    times, labels = np.concatenate(times), np.concatenate(labels)
    order = np.argsort(times, kind="stable")
    times, labels = times[order], labels[order]

    def add_spikes(block: np.ndarray, start: int) -> None:
        lo, hi = np.searchsorted(times, [start - width_after, start + block.shape[0] + width_before])
        for sample, unit in zip(times[lo:hi].tolist(), labels[lo:hi].tolist()):
            near, waveform = templates[unit]
            first = sample - width_before - start
            a, b = max(first, 0), min(first + waveform.shape[0], block.shape[0])
            if a < b:
                block[a:b, near] += waveform[a - first : b - first]

    marker = raw.with_suffix(".done")
    if not (marker.is_file() and raw.is_file() and raw.stat().st_size == num_samples * channels * 2):
        t0 = time.perf_counter()
        write_noise_int16(raw, num_samples, channels, seed=1234 + channels, add_to_block=add_spikes)
        marker.write_text("ok")
        print(f"  generated {raw.name} ({raw.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.1f} s",
              flush=True)
    recording = si.read_binary(raw, sampling_frequency=FS, dtype="int16", num_channels=channels,
                               gain_to_uV=GAIN_TO_UV, offset_to_uV=0.0)
    recording = recording.set_probegroup(probegroup)
    source_json = workdir / "source.json"
    source_json.write_text(json.dumps(recording.to_dict(include_annotations=True, include_properties=True,
                                                        relative_to=workdir), default=json_default))
    # a lazily generated source (float32 noise computed on the fly): a save whose reading costs CPU
    generated = si.generate_recording(num_channels=channels, durations=[seconds], sampling_frequency=FS, seed=seed)
    generated_json = workdir / "generated.json"
    generated_json.write_text(json.dumps(generated.to_dict(), default=json_default))
    sorting = si.NumpySorting.from_times_labels([times], [labels], FS, unit_ids=np.arange(num_units))
    sparsity = si.ChannelSparsity.from_radius_and_main_channel(
        sorting.unit_ids, recording.channel_ids, main, locations, radius_um=100.0)
    return {"raw": str(raw), "source": str(source_json), "generated": str(generated_json), "recording": recording,
            "sorting": sorting,
            "sparsity": sparsity, "num_spikes": int(times.size), "max_channels": int(sparsity.mask.sum(1).max())}


def make_analyzer(ds: dict, folder: Path, max_spikes_per_unit: int | None = 500) -> None:
    """The analyzer of the analyzer passes; ``max_spikes_per_unit`` None: every spike (method "all")."""
    import sicore as si

    analyzer = si.create_sorting_analyzer(ds["sorting"], si.load(ds["source"]), format="binary_folder",
                                          folder=folder, sparsity=ds["sparsity"], overwrite=True)
    if max_spikes_per_unit is None:
        analyzer.compute("random_spikes", method="all")
    else:
        analyzer.compute("random_spikes", method="uniform", max_spikes_per_unit=max_spikes_per_unit, seed=0)


# ============================================================================ one job (child process)
def run_job(spec: dict) -> dict:
    """Run one workflow-like job in this process and return its in-call time."""
    import os

    if spec.get("cpus"):  # a node (or a SLURM job's cgroup) with this many CPUs: every thread shares them
        os.sched_setaffinity(0, range(spec["cpus"]))
    import sicore as si
    from sicore import sharding

    si.set_global_job_kwargs(progress_bar=False, chunk_duration="1s")
    kind, pass_name = spec["kind"], spec["pass"]
    job = {"n_jobs": spec["n_jobs"]}
    t0 = time.perf_counter()
    if kind == "noop":
        pass
    elif pass_name.startswith("save_recording"):
        fmt = "zarr" if pass_name.endswith("zarr") else "binary"
        source = spec["generated"] if pass_name.endswith("generated") else spec["source"]
        job["dtype"] = "int16"  # the generated source is float32 noise, saved as int16
        layout = {"binary_layout": "pieces"} if pass_name.endswith("pieces") else {}
        if kind == "unsharded":
            si.load(source).save(folder=spec["out"], format=fmt, **job)
        elif kind == "shard":
            sharding.shard_save_recording(source, spec["shard_folder"], spec["index"],
                                          num_shards=spec["num_shards"], format=fmt, **layout, **job)
        else:
            sharding.gather_save_recording(source, spec["shard_folders"], spec["out"], format=fmt,
                                           num_shards=spec["num_shards"], remove_shards=spec["remove_shards"],
                                           **layout, **job)
    else:
        params = PARAMS[pass_name]
        if kind == "unsharded":
            analyzer = si.load_sorting_analyzer(spec["analyzer"], load_extensions=False)
            analyzer.compute(pass_name, **params, **job)
        elif kind == "shard":
            sharding.shard_analyzer_pass(pass_name, spec["analyzer"], spec["shard_folder"], spec["index"],
                                         num_shards=spec["num_shards"], params=params, **job)
        else:
            sharding.gather_analyzer_pass(pass_name, spec["analyzer"], spec["shard_folders"],
                                          num_shards=spec["num_shards"], params=params,
                                          remove_shards=spec["remove_shards"], **job)
    return {"in_call_s": time.perf_counter() - t0}


def job(spec: dict, workdir: Path) -> dict:
    """Run a job in a fresh process; adds its wall time (start-up and imports included)."""
    t0 = time.perf_counter()
    result = run_json_subprocess([sys.executable, str(Path(__file__).resolve()), "--job", json.dumps(spec)],
                                 cwd=workdir, marker=MARKER, what=f"{spec['kind']} {spec['pass']}")
    result["wall_s"] = time.perf_counter() - t0
    return result


# ============================================================================ phases
class Bench:
    def __init__(self, ds: dict, workdir: Path, cores: int, cache: Cache, remove_shards: bool,
                 node_cpus: int = 0):
        self.ds, self.workdir, self.cores, self.cache = ds, workdir, cores, cache
        self.remove_shards = remove_shards
        self.node_cpus = node_cpus  # model jobs are pinned to this many CPUs (0: not pinned)

    def _prepare(self, *paths) -> None:
        for p in paths:
            for q in [Path(p)] + list(Path(p).parent.glob(f".{Path(p).name}.sicore-*")):
                shutil.rmtree(q, ignore_errors=True)
        self.cache.prepare(self.ds["raw"], 64 << 20)  # os.sync() + warm cache, outside the timers

    def _spec(self, pass_name: str, kind: str, **extra) -> dict:
        spec = {"pass": pass_name, "kind": kind, "source": self.ds["source"], "generated": self.ds["generated"],
                "cpus": 0}
        spec.update(extra)
        return spec

    def unsharded(self, pass_name: str, n_jobs: int, out: Path, analyzer: Path, cpus: int = 0) -> dict:
        self._prepare(out)
        return job(self._spec(pass_name, "unsharded", n_jobs=n_jobs, out=str(out), analyzer=str(analyzer),
                              cpus=cpus), self.workdir)

    def sharded(self, pass_name: str, num_shards: int, concurrency: int, out: Path, analyzer: Path,
                root: Path) -> dict:
        from sicore.sharding import shard_folders

        folders = shard_folders(root, num_shards)
        self._prepare(out, root)
        cpus = self.node_cpus if concurrency == 1 else 0  # the model's nodes
        specs = [self._spec(pass_name, "shard", n_jobs=1, index=i, num_shards=num_shards, shard_folder=str(f),
                            analyzer=str(analyzer), cpus=cpus) for i, f in enumerate(folders)]
        t0 = time.perf_counter()
        if concurrency > 1:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:  # each thread waits on one process
                shards = list(pool.map(lambda s: job(s, self.workdir), specs))
        else:
            shards = []
            for s in specs:  # alone on the machine: the model's "one node per shard"
                self.cache.prepare(self.ds["raw"], 64 << 20)
                shards.append(job(s, self.workdir))
        shards_wall = time.perf_counter() - t0
        # the gather runs alone after the shards: it gets the cores (a rule with threads = --cores)
        gather = job(self._spec(pass_name, "gather", n_jobs=concurrency, num_shards=num_shards,
                                shard_folders=[str(f) for f in folders], out=str(out), analyzer=str(analyzer),
                                remove_shards=self.remove_shards, cpus=cpus), self.workdir)
        return {"shards": shards, "gather": gather, "shards_wall_s": shards_wall,
                "wall_s": shards_wall + gather["wall_s"]}


def best(run, repeats: int, key=lambda result: result["wall_s"]) -> dict:
    """The fastest of ``repeats`` runs (the machine may be shared: the minimum is the least disturbed)."""
    results = [run() for _ in range(max(1, repeats))]
    return min(results, key=key)


def compare(pass_name: str, un_out: Path, sh_out: Path, un_analyzer: Path, sh_analyzer: Path) -> str:
    """How the sharded output compares with the unsharded one."""
    import sicore as si

    if pass_name == "save_recording_pieces":  # other files: compare the traces, read by sicore
        a, b = si.load(un_out), si.load(sh_out)
        for segment in range(a.get_num_segments()):
            n = a.get_num_samples(segment)
            for start in range(0, n, 3_000_000):
                end = min(n, start + 3_000_000)
                if not np.array_equal(a.get_traces(segment_index=segment, start_frame=start, end_frame=end),
                                      b.get_traces(segment_index=segment, start_frame=start, end_frame=end)):
                    return f"DIFFERENT traces in segment {segment} [{start}, {end})"
        return "traces bit-identical (pieces layout)"
    if pass_name.startswith("save_recording"):
        files_a = sorted(p.relative_to(un_out) for p in un_out.rglob("*") if p.is_file())
        files_b = sorted(p.relative_to(sh_out) for p in sh_out.rglob("*") if p.is_file())
        if files_a != files_b:
            return f"DIFFERENT file lists: {sorted(set(map(str, files_a)) ^ set(map(str, files_b)))}"
        differ = [str(f) for f in files_a if not filecmp.cmp(un_out / f, sh_out / f, shallow=False)]
        return "all files byte-identical" if not differ else f"DIFFERENT files: {differ}"
    a = si.load_sorting_analyzer(un_analyzer).get_extension(pass_name).data
    b = si.load_sorting_analyzer(sh_analyzer).get_extension(pass_name).data
    if pass_name == "templates":
        notes = []
        for key in a:
            x, y = np.asarray(a[key]), np.asarray(b[key])
            if np.array_equal(x.view(np.uint32), y.view(np.uint32)):
                notes.append(f"{key} bit-identical")
            else:
                ulp = np.abs(x.view(np.int32).astype(np.int64) - y.view(np.int32).astype(np.int64)).max()
                notes.append(f"{key} max |diff| {np.abs(x - y).max():.2g} ({ulp} ulp, "
                             f"{np.count_nonzero(x != y)} of {x.size} values)")
        return "; ".join(notes)
    x, y = np.asarray(a[pass_name]), np.asarray(b[pass_name])
    same = x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
    return "bit-identical" if same else f"DIFFERENT (max |diff| {np.abs(x - y).max():.3g})"


# ============================================================================ tables
def report(results: dict, shards: int, cores: int) -> str:
    """The overhead table and the N-nodes model table of ``results`` (pass -> measurements)."""
    rows, model_rows, totals = [], [], {"un": 0.0, "sh": 0.0}
    for pass_name, r in results.items():
        one = r["model"].get("unsharded_1core")
        if "sharded" in r:  # not with --model-only
            # the baseline is the faster unsharded job (n_jobs=cores or, when measured, n_jobs=1): on a shared
            # machine a disturbed unsharded run must not make sharding look cheap
            baseline = min(r["unsharded"]["wall_s"], one["wall_s"]) if one else r["unsharded"]["wall_s"]
            ratio = r["sharded"]["wall_s"] / baseline
            totals["un"] += baseline
            totals["sh"] += r["sharded"]["wall_s"]
            rows.append([pass_name, f"{r['unsharded']['wall_s']:.2f}", f"{one['wall_s']:.2f}" if one else "-",
                         f"{r['sharded']['wall_s']:.2f}", f"{ratio:.2f}",
                         " ".join(f"{x['wall_s']:.2f}" for x in r["sharded"]["shards"]),
                         f"{r['sharded']['gather']['wall_s']:.2f}", "yes" if ratio <= TARGET_OVERHEAD else "NO",
                         r["check"]])
        for n, m in r["model"].items():
            if n == "unsharded_1core":
                continue
            wall = m["model_wall_s"]
            model_rows.append([pass_name, n, f"{one['wall_s']:.2f}", " ".join(f"{t:.2f}" for t in m["shard_wall_s"]),
                               _wall_and_call(m["gather_wall_s"], m.get("gather_in_call_s")), f"{wall:.2f}",
                               f"{wall / one['wall_s']:.2f}",
                               f"{m['compute_fraction']:.2f}", f"{1 / int(n):.2f}", f"{one['wall_s'] / wall:.2f}x"])
    text = ""
    if rows:
        rows.append(["all passes", "", "", f"{totals['sh']:.2f}", f"{totals['sh'] / totals['un']:.2f}", "", "",
                     "yes" if totals["sh"] / totals["un"] <= TARGET_OVERHEAD else "NO",
                     f"baseline sum {totals['un']:.2f} s"])
        text = format_table(
            f"\nSharding overhead: {shards} shards run {cores} at a time (n_jobs=1 each) + gather (n_jobs={cores}), "
            f"vs the faster unsharded job (n_jobs={cores} or 1). Wall times of whole jobs (process start-up "
            "included), s.",
            ["pass", f"unsharded n_jobs={cores}", "unsharded n_jobs=1", "sharded", "ratio", "per-shard wall",
             "gather", f"<= {TARGET_OVERHEAD}x", "check"], rows)
    if model_rows:
        text += "\n" + format_table(
            "\nModel, N shards on N nodes: each shard run alone (n_jobs=1); wall_N = max(shard) + gather, vs the "
            "unsharded job with n_jobs=1; 'call': in-call times (the compute, without job start-up).",
            ["pass", "N", "1 core", "per-shard wall (alone)", "gather wall (call)", "wall_N", "wall_N / 1 core",
             "max shard call / 1-core call", "ideal 1/N", "speed-up"], model_rows)
    return text


def _wall_and_call(wall: float, call: float | None) -> str:
    """``"wall (call)"``: a job's wall time and the part spent in the library call (runs older than the
    ``gather_in_call_s`` field show the wall time alone)."""
    return f"{wall:.2f}" if call is None else f"{wall:.2f} ({call:.2f})"


def merge(files: list[str]) -> tuple[dict, dict]:
    """Results of several runs (``--json`` files), keeping for every phase its fastest measurement."""
    runs = [json.loads(Path(f).read_text()) for f in files]
    merged: dict = {}
    for run in runs:
        for pass_name, r in run["results"].items():
            m = merged.setdefault(pass_name, {"model": {}})
            for key in ("unsharded", "sharded"):
                if key not in r:  # a --model-only run
                    continue
                if key not in m or r[key]["wall_s"] < m[key]["wall_s"]:
                    m[key] = r[key]
                    if key == "sharded":
                        m["check"] = r["check"]
            for n, value in r["model"].items():
                fastest = (lambda v: v["wall_s"]) if n == "unsharded_1core" else (lambda v: v["model_wall_s"])
                if n not in m["model"] or fastest(value) < fastest(m["model"][n]):
                    m["model"][n] = value
    # compute fractions against the merged 1-core run
    for m in merged.values():
        one = m["model"].get("unsharded_1core")
        for n, value in m["model"].items():
            if n != "unsharded_1core" and one:
                value["compute_fraction"] = max(value["shard_in_call_s"]) / one["in_call_s"]
    return merged, runs[0]["meta"]


# ============================================================================ end to end (the workflow)
B_DATA = Path("/tmp/bw0/data")  # bench_workflow.py's scale-B dataset, reused read-only when present


def _workflow_dataset(args, workdir: Path) -> dict:
    """Paths of the raw file, its probe and the npz sorting: given, bench_workflow's, or generated here."""
    raw = args.raw or (B_DATA / "B_384ch_120s_32u.raw")
    probe = args.probe or (B_DATA / "B_384ch.json")
    npz = args.sorting_npz or (B_DATA / "B_384ch_120s_32u_sorting.npz")
    if all(Path(p).is_file() for p in (raw, probe, npz)):
        channels = args.channels
        return {"raw": str(raw), "probe": str(probe), "npz": str(npz), "channels": channels,
                "bytes": Path(raw).stat().st_size}
    from probeinterface import write_probeinterface

    from sicore.io import write_npz_sorting

    ds = make_dataset(workdir, args.channels, args.duration, args.units)
    probe = workdir / "probe.json"
    write_probeinterface(probe, ds["recording"].get_probegroup())
    npz = workdir / "sorting.npz"
    write_npz_sorting(ds["sorting"], npz)
    return {"raw": ds["raw"], "probe": str(probe), "npz": str(npz), "channels": args.channels,
            "bytes": Path(ds["raw"]).stat().st_size}


def _snakemake(run: Path, cores: int) -> tuple[float, str]:
    import os
    import subprocess

    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "snakemake"), "--snakefile", str(HERE.parent / "workflow" / "Snakefile"), "--directory",
           str(run), "--configfile", str(run / "config.yaml"), "--workflow-profile", "none", "--cores", str(cores)]
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return wall, proc.stdout


def _rule_times(run: Path) -> dict[str, float]:
    """{rule: summed seconds} from the benchmark TSVs (shards of one pass summed under shard_<pass>)."""
    import csv

    times: dict[str, float] = {}
    for tsv in sorted((run / "results").glob("*/benchmarks/**/*.tsv")):
        with open(tsv) as f:
            seconds = float(next(csv.DictReader(f, delimiter="\t"))["s"])
        name = tsv.stem
        if name.startswith("shard-"):
            name = f"shard_{tsv.parent.name}"
        elif name.endswith(".gather"):
            name = f"gather_{name[:-len('.gather')]}"
        times[name] = times.get(name, 0.0) + seconds
    return times


def workflow_end_to_end(args, workdir: Path, log) -> dict:
    """The whole workflow unsharded and with ``shards: args.shards``, ``snakemake --cores args.cores``."""
    import os

    import yaml

    from common import read_once, settle_memory

    data = _workflow_dataset(args, workdir)
    recording = {"type": "binary", "file_paths": [data["raw"]], "sampling_frequency": FS,
                 "num_channels": data["channels"], "dtype": "int16", "gain_to_uV": GAIN_TO_UV, "offset_to_uV": 0.0,
                 "probe_file": data["probe"]}
    sessions = {"B": {"recording": recording, "sorting": {"type": "npz", "file_path": data["npz"]}}}
    log(f"workflow end to end: {data['raw']} ({data['bytes'] / 1e9:.2f} GB), snakemake --cores {args.cores}, "
        f"{args.shards} shards vs unsharded; {machine_load()}")
    variants = {"unsharded": {},
                "sharded": {"sharding": {"shards": args.shards, "binary_layout": args.binary_layout}}}
    results = {name: [] for name in variants}
    for repeat in range(args.repeats):
        for name, extra in variants.items():
            run = workdir / f"workflow_{name}"
            shutil.rmtree(run, ignore_errors=True)
            run.mkdir(parents=True)
            (run / "config.yaml").write_text(yaml.safe_dump({"sessions": sessions, **extra}, sort_keys=False))
            os.sync()
            read_once(data["raw"], 1 << 24)  # warm cache, as for the per-pass figures
            if not args.quick:
                settle_memory()  # the previous run's freed memory, as for the per-pass figures
            wall, output = _snakemake(run, args.cores)
            rules = _rule_times(run)
            results[name].append({"wall_s": wall, "rules": rules})
            log(f"  [{repeat + 1}/{args.repeats}] {name}: {wall:.2f} s (" +
                ", ".join(f"{k} {v:.2f}" for k, v in sorted(rules.items())) + ")")
        check = _compare_workflow_runs(workdir / "workflow_unsharded", workdir / "workflow_sharded")
    best = {name: min(runs, key=lambda r: r["wall_s"]) for name, runs in results.items()}
    ratio = best["sharded"]["wall_s"] / best["unsharded"]["wall_s"]
    log(f"  best: unsharded {best['unsharded']['wall_s']:.2f} s, sharded {best['sharded']['wall_s']:.2f} s -> "
        f"{ratio:.2f}x (target <= {TARGET_OVERHEAD}); {check}")
    for name in variants:
        shutil.rmtree(workdir / f"workflow_{name}", ignore_errors=True)
    return {"dataset": data, "runs": results, "ratio": ratio, "check": check}


def _compare_workflow_runs(unsharded: Path, sharded: Path) -> str:
    """Saved traces, noise levels and waveforms byte for byte, templates max |diff| (read with numpy)."""
    un, sh = unsharded / "results" / "B", sharded / "results" / "B"
    if (sh / "recording" / "pieces").is_dir():  # binary_layout: pieces (one segment here)
        pieces = sorted((sh / "recording" / "pieces").glob("seg0_shard*/*.raw"))
        same_traces = _same_concatenation(un / "recording" / "traces_cached_seg0.raw", pieces)
    else:
        same_traces = all(filecmp.cmp(a, sh / "recording" / a.name, shallow=False)
                          for a in sorted((un / "recording").glob("*.raw")))
    same = {}
    for extension, name in (("noise_levels", "noise_levels"), ("waveforms", "waveforms"), ("templates", "average")):
        a = np.load(un / "analyzer" / "extensions" / extension / f"{name}.npy")
        b = np.load(sh / "analyzer" / "extensions" / extension / f"{name}.npy")
        same[extension] = a.tobytes() == b.tobytes()
    return (f"traces identical: {same_traces}; " + ", ".join(f"{k} identical: {v}" for k, v in same.items()))


def _same_concatenation(whole: Path, pieces: list[Path], block: int = 64 << 20) -> bool:
    """True when the files ``pieces`` end to end hold the bytes of ``whole``."""
    if sum(p.stat().st_size for p in pieces) != whole.stat().st_size:
        return False
    with open(whole, "rb") as a:
        for piece in pieces:
            with open(piece, "rb") as b:
                while chunk := b.read(block):
                    if a.read(len(chunk)) != chunk:
                        return False
    return True


# ============================================================================ main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of recording (scale B: 120)")
    parser.add_argument("--channels", type=int, default=384)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--cores", type=int, default=2, help="jobs at a time / n_jobs of the unsharded job")
    parser.add_argument("--model-shards", type=int, nargs="*", default=[2, 4, 8],
                        help="N of the N-shards-on-N-nodes model (empty: skip the model)")
    parser.add_argument("--passes", nargs="+", default=list(PASSES), choices=PASSES)
    parser.add_argument("--quick", action="store_true", help="10 s of recording, model for N=4 only")
    parser.add_argument("--cache", choices=["auto", "cold", "warm"], default="warm")
    parser.add_argument("--keep-shards", action="store_true",
                        help="gathers keep the shard folders (default: remove_shards=True, the recommended wiring "
                             "with temp() shard outputs)")
    parser.add_argument("--repeats", type=int, default=1, help="best of N for every phase")
    parser.add_argument("--node-cpus", type=int, default=0,
                        help="model: pin the 1-core baseline, every shard and the gather to this many CPUs, as a "
                             "cluster node (or a SLURM job's cgroup) would; 0: not pinned")
    parser.add_argument("--max-spikes-per-unit", type=int, default=500,
                        help="random spikes of the analyzer passes (0: every spike, whose work grows with the "
                             "duration)")
    parser.add_argument("--model-only", action="store_true",
                        help="only the N-nodes model (skip the overhead phase, shards run --cores at a time)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="print the tables of several --json runs, keeping each phase's fastest measurement")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument("--workflow", action="store_true",
                        help="end to end instead: the whole workflow unsharded vs sharding: {shards: --shards}")
    parser.add_argument("--raw", default=None, help="--workflow: an existing int16 raw file (read only)")
    parser.add_argument("--probe", default=None, help="--workflow: its probeinterface JSON")
    parser.add_argument("--sorting-npz", default=None, help="--workflow: its sorting (npz)")
    parser.add_argument("--binary-layout", choices=["single_file", "pieces"], default="pieces",
                        help="--workflow: sharding.binary_layout of the sharded run")
    args = parser.parse_args(argv)
    if args.job:
        result = run_job(json.loads(args.job))
        print(MARKER + json.dumps(result), flush=True)
        return 0
    ensure_bytecode()
    if args.merge:
        results, meta = merge(args.merge)
        print(f"merged {len(args.merge)} runs: {meta}")
        print(report(results, meta["shards"], meta["cores"]))
        return 0
    if args.quick:
        args.duration, args.model_shards = 10.0, [4]

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_sharding_"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    if args.workflow:
        try:
            result = workflow_end_to_end(args, workdir, log)
            if args.json:
                Path(args.json).write_text(json.dumps(result, default=json_default, indent=1))
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        return 0
    cache = Cache(args.cache, settle_s=0.0 if args.quick else SETTLE_S)
    import sicore as si
    results = {}
    try:
        log(f"bench_sharding: {args.channels} ch, {FS / 1000:g} kHz, {args.duration:g} s, {args.shards} shards, "
            f"--cores {args.cores}; {machine_load()}; cache {cache.describe()}")
        ds = make_dataset(workdir, args.channels, args.duration, args.units)
        log(f"  sorting: {args.units} units, {ds['num_spikes']} spikes; sparsity up to {ds['max_channels']} channels")
        analyzers = {"un": workdir / "analyzer_un", "sh": workdir / "analyzer_sh"}
        for folder in analyzers.values():
            make_analyzer(ds, folder, args.max_spikes_per_unit or None)
        bench = Bench(ds, workdir, args.cores, cache, remove_shards=not args.keep_shards, node_cpus=args.node_cpus)
        noop = best(lambda: job({"pass": "-", "kind": "noop", "n_jobs": 1}, workdir), 3)
        log(f"  job floor (python start-up + import sicore, nothing done): {noop['wall_s']:.2f} s")
        for pass_name in args.passes:
            log(f"\n== {pass_name}")
            suffix = ".zarr" if pass_name.endswith("zarr") else ""
            outs = {"un": workdir / f"saved_un{suffix}", "sh": workdir / f"saved_sh{suffix}"}
            if pass_name == "templates":  # from the recording: no waveforms may exist
                for folder in analyzers.values():
                    si.load_sorting_analyzer(folder, load_extensions=False).delete_extension("waveforms")
            entry = {"model": {}}
            if not args.model_only:
                un = best(lambda: bench.unsharded(pass_name, args.cores, outs["un"], analyzers["un"]), args.repeats)
                log(f"  unsharded n_jobs={args.cores}: {un['wall_s']:.2f} s (in call {un['in_call_s']:.2f} s)")
                sh = best(lambda: bench.sharded(pass_name, args.shards, args.cores, outs["sh"], analyzers["sh"],
                                                workdir / f"shards_{pass_name}"), args.repeats)
                check = compare(pass_name, outs["un"], outs["sh"], analyzers["un"], analyzers["sh"])
                ratio = sh["wall_s"] / un["wall_s"]
                log(f"  {args.shards} shards, {args.cores} at a time: {sh['wall_s']:.2f} s (shards "
                    f"{sh['shards_wall_s']:.2f} s + gather {sh['gather']['wall_s']:.2f} s) -> {ratio:.2f}x; {check}")
                entry.update({"unsharded": un, "sharded": sh, "ratio": ratio, "check": check})
            if args.model_shards:
                one = best(lambda: bench.unsharded(pass_name, 1, outs["un"], analyzers["un"], cpus=args.node_cpus),
                           args.repeats)
                log(f"  model baseline: unsharded n_jobs=1: {one['wall_s']:.2f} s")
                entry["model"]["unsharded_1core"] = one
                for n in args.model_shards:
                    m = best(lambda: bench.sharded(pass_name, n, 1, outs["sh"], analyzers["sh"],
                                                   workdir / f"model_{pass_name}"), args.repeats,
                             key=lambda r: max(s["wall_s"] for s in r["shards"]) + r["gather"]["wall_s"])
                    times = [s["wall_s"] for s in m["shards"]]
                    wall = max(times) + m["gather"]["wall_s"]
                    entry["model"][str(n)] = {"shard_wall_s": times, "shard_in_call_s": [s["in_call_s"] for s in
                                                                                          m["shards"]],
                                              "gather_wall_s": m["gather"]["wall_s"],
                                              "gather_in_call_s": m["gather"]["in_call_s"], "model_wall_s": wall}
                    log(f"  model N={n}: shards alone {' '.join(f'{t:.2f}' for t in times)} s, gather "
                        f"{m['gather']['wall_s']:.2f} s (in call {m['gather']['in_call_s']:.2f} s) -> wall_N {wall:.2f} s = {wall / one['wall_s']:.2f} of "
                        f"1 core (ideal {1 / n:.2f})")
                    entry["model"][str(n)]["compute_fraction"] = \
                        max(s["in_call_s"] for s in m["shards"]) / one["in_call_s"]
                    if args.model_only and n == args.model_shards[-1]:
                        entry["check"] = compare(pass_name, outs["un"], outs["sh"], analyzers["un"], analyzers["sh"])
                        log(f"  model N={n} output against the unsharded one: {entry['check']}")
            results[pass_name] = entry
            for path in [workdir / f"shards_{pass_name}", workdir / f"model_{pass_name}", *outs.values()]:
                shutil.rmtree(path, ignore_errors=True)

        log(report(results, args.shards, args.cores))
        if args.json:
            meta = {"channels": args.channels, "duration": args.duration, "shards": args.shards, "cores": args.cores,
                    "units": args.units, "num_spikes": ds["num_spikes"], "cache": cache.mode, "load": machine_load()}
            Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, default=json_default, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
