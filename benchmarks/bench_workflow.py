"""The Snakemake workflow: end to end against a SpikeInterface script, per-job overhead, no-op reruns.

Usage::

    python benchmarks/bench_workflow.py [--quick] [--no-reference] [--si-python PATH] [--workdir DIR] [--keep] [--repeats 3]
                                        [--sessions 50] [--json out.json]

What is measured
----------------
1. End to end, scale B: an int16 raw binary file (384 channels, Neuropixels 1.0-like probe file, 30 kHz,
   120 s, Neuropixels-like gain 0.195 uV/count, noise with injected spikes; ``bench_analyzer.make_dataset``)
   and a ground-truth-like sorting (32 units at 5-10 Hz) written as an ``.npz`` (NpzSortingExtractor
   format). ``snakemake --cores 2`` (``--workflow-profile none``, the rules' default threads capped at 2)
   runs every rule from the raw file: save_recording, save_sorting, estimate_sparsity, create_analyzer,
   random_spikes, waveforms, templates, noise_levels, report. Against it: one SpikeInterface 0.105.3
   Python process doing the same steps (read_binary + probe, save binary, read the npz sorting and save
   it as numpy_folder, create_sorting_analyzer(format="binary_folder", sparse=True, radius 100 um,
   peak_sign both), compute random_spikes, waveforms, templates (average, std), noise_levels; n_jobs=2,
   chunk 1 s). SpikeInterface makes no report (the workflow's report job is included in its time).
   Both times are wall clock of the whole subprocess (Python start and imports included); the source
   file is read once before each run (warm page cache) and the disk synced, and each run starts
   ``common.SETTLE_S`` after the previous run's outputs were deleted (``common.settle_memory``: on
   this VM a write soon after a big free is twice as fast, which favoured whichever run wrote first).
2. Per-job overhead: the workflow on one tiny generated session with ``--cores 1`` (jobs one after
   the other): wall time against the sum of the rules' own times (the ``benchmark:`` TSVs, which
   include each job's Python start and ``import sicore``), and the time of ``python -c pass``,
   ``python -c "import sicore"``, ``sicore --help`` and of Snakemake's start (a dry run with nothing to do).
3. No-op rerun: N tiny sessions (50 by default). Running them all (~10 jobs x N) would take minutes, so
   one session is run and its results folder copied to the N - 1 others; ``snakemake --touch`` then
   marks every output up to date (in DAG order), and ``snakemake --cores 2`` (nothing to do) and
   ``--dry-run`` are timed.

``--quick``: small sizes (32 channels, 3 s; 5 no-op sessions), no SpikeInterface.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analyzer import make_dataset  # noqa: E402
from common import (  # noqa: E402
    DEFAULT_SI_PYTHON,
    FS,
    GAIN_TO_UV,
    SETTLE_S,
    ensure_bytecode,
    format_table,
    json_default,
    machine_load,
    ratio,
    read_once,
    resolve_si_python,
    settle_memory,
)

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "workflow" / "Snakefile"
BIN = Path(sys.executable).parent
CORES = 2
TINY = {"type": "generated", "durations": [3.0], "num_channels": 8, "num_units": 4, "seed": 2205}
SCALE = {"full": (384, 120.0, "np1", 32), "quick": (32, 3.0, "np1", 8)}
EXTENSIONS = ("random_spikes", "waveforms", "templates", "noise_levels")

SI_SCRIPT = r'''
import json, sys, time
t_start = time.perf_counter()
import numpy as np
import probeinterface as pi
import spikeinterface
import spikeinterface.core as si
t_imports = time.perf_counter() - t_start
spec = json.loads(sys.argv[1])
job = dict(n_jobs=spec["n_jobs"], chunk_duration="1s", progress_bar=False)
t0 = time.perf_counter()
steps = {}
def step(name, t):
    steps[name] = time.perf_counter() - t
    return time.perf_counter()
rec = si.read_binary(spec["path"], sampling_frequency=spec["fs"], dtype="int16", num_channels=spec["channels"],
                     gain_to_uV=spec["gain"], offset_to_uV=0.0)
rec.set_probe(pi.read_probeinterface(spec["probe"]).probes[0])  # in place in 0.105.3
rec = rec.save(folder=spec["out"] + "/recording", format="binary", overwrite=True, **job)
t = step("save_recording", t0)
sorting = si.read_npz_sorting(spec["sorting"])
sorting = sorting.save(folder=spec["out"] + "/sorting", format="numpy_folder", overwrite=True)
t = step("save_sorting", t)
analyzer = si.create_sorting_analyzer(sorting, rec, format="binary_folder", folder=spec["out"] + "/analyzer",
                                      sparse=True, overwrite=True, job_kwargs=job,
                                      peak_sign="both", sparsity_kwargs=dict(method="radius", radius_um=100.0))
t = step("create_analyzer (estimate_sparsity included)", t)
analyzer.compute("random_spikes", method="uniform", max_spikes_per_unit=500, seed=0)
t = step("random_spikes", t)
analyzer.compute("waveforms", ms_before=1.0, ms_after=2.0, **job)
t = step("waveforms", t)
analyzer.compute("templates", operators=["average", "std"])
t = step("templates", t)
analyzer.compute("noise_levels", method="mad",
                 random_slices_kwargs=dict(num_chunks_per_segment=20, chunk_size=int(0.5 * spec["fs"]), seed=0), **job)
t = step("noise_levels", t)
print("BENCH_RESULT " + json.dumps({"imports": t_imports, "steps": steps, "script": time.perf_counter() - t0,
                                    "version": spikeinterface.__version__}), flush=True)
'''


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    return e


def snakemake(workdir: Path, *args, cores: int = CORES, timeout: float = 3600) -> float:
    """Run the workflow in ``workdir`` on its config.yaml; returns the wall time (s)."""
    cmd = [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--workflow-profile", "none", "--cores", str(cores),
           *map(str, args)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    snakemake.last_output = proc.stdout
    return wall


def write_config(workdir: Path, sessions: dict) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump({"sessions": sessions}, sort_keys=False))


def rule_times(workdir: Path) -> dict[str, float]:
    """{rule: seconds} from the ``benchmark:`` TSVs of every session (summed over sessions)."""
    times: dict[str, float] = {}
    for tsv in sorted((workdir / "results").glob("*/benchmarks/**/*.tsv")):
        with open(tsv) as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        times[tsv.stem] = times.get(tsv.stem, 0.0) + float(row["s"])
    return times


def time_command(cmd: list[str], repeats: int = 3) -> float:
    """Fastest wall time of ``cmd`` over ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env())
        best = min(best, time.perf_counter() - t0)
    return best


# ============================================================================ 1. end to end
def write_npz(spikes_path: str, num_units: int, out: Path) -> None:
    import numpy as np

    import sicore
    from sicore.io import write_npz_sorting

    sorting = sicore.NumpySorting(np.load(spikes_path), FS, [str(i) for i in range(num_units)])
    write_npz_sorting(sorting, out)


def end_to_end(workdir: Path, quick: bool, si_python: str | None, log, repeats: int = 3) -> dict:
    """The workflow and the SpikeInterface script, ``repeats`` times each, alternating (this VM's writes of
    a few GB vary 1-6 s from run to run, whoever writes: the best run of each is compared)."""
    channels, seconds, probe_kind, units = SCALE["quick" if quick else "full"]
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    ds = make_dataset(data, "B", channels, seconds, probe_kind, units)
    npz = data / f"B_{channels}ch_{seconds:g}s_{units}u_sorting.npz"
    write_npz(ds["spikes"], units, npz)
    res = {"channels": channels, "seconds": seconds, "units": units, "num_spikes": ds["num_spikes"],
           "bytes": ds["bytes"], "workflow_runs": [], "si_runs": []}
    log(f"end to end: {channels} ch x {seconds:g} s ({ds['bytes'] / 1e6:.0f} MB int16), {units} units, "
        f"{ds['num_spikes']} spikes; {repeats} runs each, alternating")
    recording = {"type": "binary", "file_paths": [ds["path"]], "sampling_frequency": FS, "num_channels": channels,
                 "dtype": "int16", "gain_to_uV": GAIN_TO_UV, "offset_to_uV": 0.0, "probe_file": ds["probe"]}
    for attempt in range(repeats):
        run = workdir / "e2e"
        shutil.rmtree(run, ignore_errors=True)
        write_config(run, {"B": {"recording": recording, "sorting": {"type": "npz", "file_path": str(npz)}}})
        os.sync()
        settle_memory(0.0 if quick else SETTLE_S)
        read_once(ds["path"], 1 << 24)
        wall = snakemake(run)
        rules = rule_times(run)
        res["workflow_runs"].append({"wall": wall, "rules": rules})
        log(f"  [{attempt + 1}] snakemake --cores {CORES}: {wall:.2f} s ({len(rules)} jobs; rule times "
            + ", ".join(f"{k} {v:.2f}" for k, v in rules.items()) + ")")
        shutil.rmtree(run, ignore_errors=True)
        if si_python:
            res["si_runs"].append(_si_script(workdir, ds, npz, channels, si_python))
            si = res["si_runs"][-1]
            log(f"  [{attempt + 1}] SpikeInterface {si['si']['version']} script: {si['wall']:.2f} s (imports "
                f"{si['si']['imports']:.2f} s; " + ", ".join(f"{k} {v:.2f}" for k, v in si["si"]["steps"].items())
                + ")")
    best = min(res["workflow_runs"], key=lambda r: r["wall"])
    res["workflow_wall"], res["workflow_rules"] = best["wall"], best["rules"]
    res["workflow_jobs"] = len(best["rules"])
    if res["si_runs"]:
        best_si = min(res["si_runs"], key=lambda r: r["wall"])
        res["si_wall"], res["si"] = best_si["wall"], best_si["si"]
    return res


def _si_script(workdir: Path, ds: dict, npz: Path, channels: int, si_python: str) -> dict:
    out = workdir / "si_e2e"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spec = {"path": ds["path"], "probe": ds["probe"], "sorting": str(npz), "fs": FS, "channels": channels,
            "gain": GAIN_TO_UV, "n_jobs": CORES, "out": str(out)}
    os.sync()
    settle_memory()
    read_once(ds["path"], 1 << 24)
    t0 = time.perf_counter()
    proc = subprocess.run([si_python, "-c", SI_SCRIPT, json.dumps(spec)], capture_output=True, text=True, cwd=out)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"SpikeInterface script failed:\n{proc.stderr[-4000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")][-1]
    shutil.rmtree(out, ignore_errors=True)
    return {"wall": wall, "si": json.loads(line[len("BENCH_RESULT "):])}


# ============================================================================ 2. per-job overhead
def overhead(workdir: Path, log, repeats: int = 3) -> dict:
    run = workdir / "noop"
    shutil.rmtree(run, ignore_errors=True)
    write_config(run, {"s000": {"recording": dict(TINY)}})
    wall = snakemake(run, cores=1)
    rules = rule_times(run)
    jobs = len(rules)
    rules_sum = sum(rules.values())
    dry_noop = snakemake(run, "--dry-run", cores=1)  # Snakemake's own start: parse, DAG, nothing to do
    python = sys.executable
    py_start = time_command([python, "-c", "pass"], repeats)
    import_sicore = time_command([python, "-c", "import sicore"], repeats)
    cli_help = time_command([str(BIN / "sicore"), "--help"], repeats)
    res = {"wall": wall, "jobs": jobs, "rules": rules, "rules_sum": rules_sum, "snakemake_start": dry_noop,
           "python_start": py_start, "import_sicore": import_sicore, "sicore_cli_help": cli_help}
    res["scheduling_per_job"] = (wall - rules_sum - dry_noop) / jobs
    res["total_per_job"] = (wall - dry_noop) / jobs
    res["mean_rule"] = rules_sum / jobs
    log(f"per-job overhead (1 tiny session, --cores 1, {jobs} jobs): wall {wall:.2f} s, rules {rules_sum:.2f} s, "
        f"snakemake start (no-op dry run) {dry_noop:.2f} s, python start {py_start:.3f} s, "
        f"import sicore {import_sicore:.3f} s, sicore --help {cli_help:.3f} s")
    return res


# ============================================================================ 3. no-op rerun
def noop_rerun(workdir: Path, sessions: int, log, repeats: int = 2) -> dict:
    """Reuses the tiny run of ``overhead`` (session s000) as the source of the copies."""
    run = workdir / "noop"
    names = [f"s{i:03d}" for i in range(sessions)]
    write_config(run, {name: {"recording": dict(TINY)} for name in names})
    source = run / "results" / "s000"
    t0 = time.perf_counter()
    for name in names[1:]:
        shutil.copytree(source, run / "results" / name, symlinks=True, copy_function=shutil.copy2)
    copy_time = time.perf_counter() - t0
    touch = snakemake(run, "--touch")
    noop = [snakemake(run) for _ in range(repeats)]
    if "Nothing to be done" not in snakemake.last_output:
        raise RuntimeError("the no-op rerun had something to do:\n" + snakemake.last_output[-4000:])
    dry = [snakemake(run, "--dry-run") for _ in range(repeats)]
    if "Nothing to be done" not in snakemake.last_output:
        raise RuntimeError("the dry run had something to do:\n" + snakemake.last_output[-4000:])
    res = {"sessions": sessions, "outputs": len(list((run / "results").glob("*/benchmarks/**/*.tsv"))), "copy": copy_time, "touch": touch,
           "noop": min(noop), "noop_runs": noop, "dry_run": min(dry), "dry_runs": dry}
    log(f"no-op rerun, {sessions} sessions (1 run + {sessions - 1} copies, then --touch {touch:.2f} s): "
        f"snakemake --cores {CORES} {min(noop):.2f} s, --dry-run {min(dry):.2f} s")
    return res


# ============================================================================ table
def _s(v):
    return "-" if v is None else f"{v:.2f} s"


def build_rows(e2e: dict, ovh: dict, nop: dict) -> list[dict]:
    rows = []

    def row(figure, ours, si=None, target="", status="", note="", unit="s"):
        rows.append({"figure": figure, "sicore": ours, "si": si, "x_si": ratio(si, ours) if unit == "s" else None,
                     "target": target, "status": status, "note": note, "unit": unit})

    si_wall = e2e.get("si_wall")
    passed = None if si_wall is None else e2e["workflow_wall"] < si_wall
    runs = len(e2e["workflow_runs"])
    row(f"end to end, snakemake --cores {CORES} vs SI script (n_jobs={CORES}), best of {runs}", e2e["workflow_wall"],
        si_wall, "< SI", "-" if passed is None else ("PASS" if passed else "FAIL"),
        f"{e2e['channels']} ch x {e2e['seconds']:g} s, {e2e['units']} units, {e2e['workflow_jobs']} jobs incl. "
        "report (SI: no report)")
    walls = sorted(r["wall"] for r in e2e["workflow_runs"])
    si_walls = sorted(r["wall"] for r in e2e["si_runs"])
    row("  median of the runs", walls[len(walls) // 2], si_walls[len(si_walls) // 2] if si_walls else None,
        note="workflow " + ", ".join(f"{w:.1f}" for w in walls) + " s; SI " + ", ".join(f"{w:.1f}" for w in si_walls) + " s")
    row("  sum of the rules' own times (benchmark TSVs)", sum(e2e["workflow_rules"].values()),
        note="jobs overlap on 2 cores")
    if "report" in e2e["workflow_rules"]:
        row("  report job", e2e["workflow_rules"]["report"], note="SI script has no report")
    if "si" in e2e:
        row("  SI script: its steps only", e2e["si"]["script"], note=f"imports {e2e['si']['imports']:.2f} s")
    row("tiny session, --cores 1: wall", ovh["wall"], note=f"{ovh['jobs']} jobs")
    row("  sum of the rules' own times", ovh["rules_sum"], note=f"mean {ovh['mean_rule']:.2f} s per job")
    row("  snakemake start (no-op dry run, 1 session)", ovh["snakemake_start"])
    row("  per job: wall minus start, / jobs", ovh["total_per_job"], note="all a job costs on tiny data")
    row("  per job: Snakemake scheduling (outside the job)", ovh["scheduling_per_job"],
        note="(wall - rules - start) / jobs")
    row("  per job: python -c pass", ovh["python_start"], note="inside each rule's time")
    row("  per job: python -c 'import sicore'", ovh["import_sicore"], note="inside each rule's time")
    row("  per job: sicore --help (CLI start)", ovh["sicore_cli_help"], note="inside each rule's time")
    row(f"no-op rerun, {nop['sessions']} sessions: snakemake --cores {CORES}", nop["noop"],
        note=f"{nop['outputs']} jobs up to date; 1 run + copies + --touch")
    row(f"no-op rerun, {nop['sessions']} sessions: --dry-run", nop["dry_run"])
    return rows


def print_table(rows: list[dict], header: str) -> str:
    cols = ["figure", "sicore workflow", "SI", "x SI", "target", "result", "note"]
    lines = [[r["figure"], _s(r["sicore"]), _s(r["si"]), "-" if r["x_si"] is None else f"{r['x_si']:.2f}x",
              r["target"], r["status"], r["note"]] for r in rows]
    text = format_table(header, cols, lines)
    print(text, flush=True)
    return text


# ============================================================================ main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, no SpikeInterface (smoke run)")
    parser.add_argument("--no-reference", action="store_true", help="skip SpikeInterface")
    parser.add_argument("--si-python", default=DEFAULT_SI_PYTHON)
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end runs of each, alternating (best kept)")
    parser.add_argument("--sessions", type=int, default=None, help="sessions of the no-op rerun (50; quick 5)")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a new folder under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (and reuse its data)")
    parser.add_argument("--json", default=None, help="write rows and raw results to this file")
    args = parser.parse_args(argv)
    ensure_bytecode()

    si_python = None if (args.quick or args.no_reference) else resolve_si_python(args.si_python)
    sessions = args.sessions or (5 if args.quick else 50)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="sicore_bench_workflow_"))
    workdir.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, flush=True)

    load_before = machine_load()
    log(f"sicore bench_workflow: workdir {workdir}, {load_before}, python {platform.python_version()}, "
        f"SpikeInterface: {si_python or 'not run'}")
    try:
        e2e = end_to_end(workdir, args.quick, si_python, log, repeats=1 if args.quick else args.repeats)
        ovh = overhead(workdir, log, repeats=1 if args.quick else 3)
        nop = noop_rerun(workdir, sessions, log, repeats=1 if args.quick else 2)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = build_rows(e2e, ovh, nop)
    load_after = machine_load()
    table = print_table(rows, f"\n== sicore workflow ({'quick' if args.quick else 'scale B'}), "
                              f"--cores {CORES}; before: {load_before}; after: {load_after} ==")
    if args.json:
        meta = {"cpus": os.cpu_count(), "python": platform.python_version(), "si_python": si_python,
                "quick": args.quick, "sessions": sessions, "cores": CORES, "load_before": load_before,
                "load_after": load_after, "platform": platform.platform()}
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows, "table": table,
                                               "raw": {"end_to_end": e2e, "overhead": ovh, "noop": nop}},
                                              indent=1, default=json_default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
