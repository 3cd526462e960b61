"""Saving, loading and parallel chunk processing: sicore against the machine's floors and SpikeInterface.

Usage::

    python benchmarks/bench_io.py [--scales A B] [--n-jobs 1 2] [--quick] [--cache auto|cold|warm]
                                  [--no-reference] [--si-python PATH] [--workdir DIR] [--keep]
                                  [--json out.json] [--repeats N] [--no-flatness]

What is measured
----------------
An int16 raw binary file (generated noise, sigma = 5 counts truncated to int16, like SpikeInterface's
generated data) is written once per scale into ``--workdir`` with a probe file next to it:

* A: 32 channels (linear probe, 20 um pitch), 30 kHz, 300 s;
* B: 384 channels (Neuropixels 1.0-like staggered 4-column layout), 30 kHz, 120 s;
* A at twice the duration (600 s), for the bounded-memory check (``--no-flatness`` skips it).

Every pass runs in its own fresh subprocess (so its peak memory is its own), on a recording opened
before the timer starts (``read_binary`` + ``set_probe`` in place, identical for both libraries):

* floors: reading the file once in 1 s chunks (``readinto`` a reused buffer), ``cp`` of the file,
  writing it once into a new file in 1 s chunks, each ``pwrite``-n from a memory map of the source (one
  kernel copy per byte: the least a binary save does; ``cp`` may use ``copy_file_range``, and a
  read-then-write copy through a buffer copies every byte twice, both slower on this project's VMs),
  reading it once and compressing every 1 s chunk with the zarr default codec (Blosc zstd 5 with bit
  shuffle, numcodecs' default threads; nothing written: the floor of a zarr save), and reading once the
  random chunks that ``get_noise_levels`` uses;
* sicore and SpikeInterface 0.105.3 (run in its own environment, ``--si-python``):
  ``save(format="binary")``, ``save(format="zarr")``, ``get_noise_levels`` (MAD, in uV, seed 0),
  for each ``n_jobs`` with ``chunk_duration="1s"`` and no progress bar.

Timing is wall-clock around the call only (imports, including zarr's, and opening the recording excluded). Writes are not
fsync-ed inside the timer (like ``cp``); outputs are removed and the disk synced between passes.
Cache: ``cold`` drops the page cache before each pass (``echo 3 > /proc/sys/vm/drop_caches``, needs
root); ``warm`` reads the source file once before each pass so all passes start from memory;
``auto`` (default) is cold when dropping the cache works, else warm.

Peak memory of a pass: the exact high-water mark of the largest process of the pass (``VmHWM`` of the
pass process itself, ``ru_maxrss`` of its waited-for worker processes), and the sum of the resident sizes of the process
tree sampled every 25 ms. Memory is "flat in recording length" when the 600 s run of scale A peaks
within 10 % of the 300 s run. With ``--repeats N`` the time is the fastest run, the memory the median run.

Ratios: "x SI" is SpikeInterface's time / sicore's time (above 1: sicore is faster; for the memory rows
SpikeInterface's MB / sicore's MB, above 1: sicore uses less); "x read" and "x cp" are sicore's time /
the floor's time (1 = as fast as the floor).

Reading the results: with a cold cache the passes over the whole file are bound by the disk (and on a
virtual disk vary run to run), so compare the software with ``--cache warm``; use ``--repeats 3`` (fastest
run kept) on a machine that other jobs share.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import (  # noqa: E402  (the benchmarks' shared helpers, next to this file)
    SETTLE_S,
    Cache,
    TreeMemorySampler,
    ensure_bytecode,
    json_default,
    nw_probe,
    ratio,
    read_once,
    remove,
    vm_hwm_kb,
)

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
DEFAULT_SI_PYTHON = os.environ.get("SI_PYTHON", str(Path(tempfile.gettempdir()) / "spikeinterface-0.105.3" / "bin" /
                                                  "python"))
FS = 30000.0
GAIN_TO_UV = 0.195  # Neuropixels-like gain, so noise levels in uV go through the scaling path
NOISE_SEED = 0
NOISE_SIGMA = 5.0

SCALES = {
    # name: (channels, seconds, quick seconds, probe kind)
    "A": (32, 300.0, 10.0, "linear"),
    "B": (384, 120.0, 3.0, "np1"),
}

# targets -------------------------------------------------------------------------------------
TARGET_BINARY_VS_SI = {"A": 5.0, "B": 1.5}
TARGET_BINARY_VS_CP = 3.0
TARGET_ZARR_VS_SI = 2.0
TARGET_NOISE_VS_SI = 3.0
TARGET_NOISE_REL_DIFF = 1e-6
TARGET_FLAT = 1.10


# ============================================================================ pass runners (children)
def _rusage() -> dict:
    # children: the pool's worker processes (forked, not exec-ed), waited for when the pool shut down
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"maxrss_self_kb": vm_hwm_kb(), "maxrss_children_kb": int(children)}


def _read_slices(path: str, slices, num_channels: int) -> int:
    frame = num_channels * 2
    longest = max(e - s for _, s, e in slices)
    buf = bytearray(longest * frame)
    total = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        for _, s, e in slices:
            view = memoryview(buf)[: (e - s) * frame]
            got = 0
            while got < len(view):
                n = os.preadv(fd, [view[got:]], s * frame + got)
                if n == 0:
                    break
                got += n
            total += got
    finally:
        os.close(fd)
    return total


def _zarr_compression(store: Path, nbytes: int) -> float:
    arr = store / "traces_seg0"
    stored = sum(f.stat().st_size for f in arr.iterdir() if not f.name.startswith("."))
    return nbytes / stored


def write_once(source: str, target: str, chunk_bytes: int) -> int:
    """Copy a file into a new file of its size, ``chunk_bytes`` at a time, each chunk ``pwrite``-n straight
    from a memory map of the source: every byte copied once by the kernel (no user buffer, no
    ``copy_file_range``), the least a binary save does. Returns the bytes copied."""
    import mmap

    size = os.path.getsize(source)
    with open(source, "rb") as src, open(target, "wb", buffering=0) as dst:
        dst.truncate(size)
        if size == 0:
            return 0
        with mmap.mmap(src.fileno(), 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as whole:
            for offset in range(0, size, chunk_bytes):
                with whole[offset: offset + chunk_bytes] as chunk:
                    done = 0
                    while done < len(chunk):  # pwrite may write less than asked
                        with chunk[done:] as rest:
                            done += os.pwrite(dst.fileno(), rest, offset + done)
    return size


def run_sicore_pass(spec: dict) -> dict:
    """One pass in this (fresh) process; returns the timing and what the parent checks."""
    kind = spec["pass"]
    path, channels = spec["path"], spec["channels"]
    out: dict = {}
    if kind == "read_once":
        t0 = time.perf_counter()
        nread = read_once(path, int(FS) * channels * 2)
        out["seconds"] = time.perf_counter() - t0
        out["bytes"] = nread
    elif kind == "cp":
        t0 = time.perf_counter()
        subprocess.run(["cp", path, spec["out"]], check=True)
        out["seconds"] = time.perf_counter() - t0
    elif kind == "write_once":
        t0 = time.perf_counter()
        out["bytes"] = write_once(path, spec["out"], int(FS) * channels * 2)
        out["seconds"] = time.perf_counter() - t0
    elif kind == "compress":
        # read in 1 s chunks and compress each with the zarr default (Blosc zstd 5, bit shuffle), no writing
        from numcodecs import Blosc

        codec = Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE)
        chunk_bytes = int(FS) * channels * 2
        buf = np.empty(chunk_bytes, dtype=np.uint8)
        stored = 0
        t0 = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while True:
                n = f.readinto(memoryview(buf))
                if not n:
                    break
                stored += len(codec.encode(buf[:n].view(np.int16).reshape(-1, channels)))
        out["seconds"] = time.perf_counter() - t0
        out["compression_ratio"] = os.path.getsize(path) / stored
    elif kind == "read_chunks":
        t0 = time.perf_counter()
        out["bytes"] = _read_slices(path, spec["slices"], channels)
        out["seconds"] = time.perf_counter() - t0
    else:
        import probeinterface as pi

        import sicore
        from sicore.io.binary import read_binary
        from sicore.recording_tools import get_noise_levels, get_random_recording_slices

        # sicore imports its modules on first use, `import spikeinterface.core` all of them up front: import
        # the public API here so that neither library's imports fall inside a timer
        for name in sicore.__all__:
            getattr(sicore, name)

        rec = read_binary(path, sampling_frequency=FS, dtype="int16", num_channels=channels,
                          gain_to_uV=GAIN_TO_UV, offset_to_uV=0.0)
        # in place, as SpikeInterface 0.105.3 always does: the recording stays a plain binary extractor
        rec.set_probe(pi.read_probeinterface(spec["probe"]).probes[0], in_place=True)
        job = dict(n_jobs=spec["n_jobs"], chunk_duration="1s", progress_bar=False)
        if kind == "zarr":
            # sicore imports zarr lazily, `import spikeinterface.core` imports it up front: keep imports
            # out of both timers
            import numcodecs  # noqa: F401
            import zarr  # noqa: F401
        out["version"] = getattr(sicore, "__version__", "?")
        if kind in ("binary", "zarr"):
            save = getattr(rec, "save", None)
            t0 = time.perf_counter()
            if callable(save):
                saved = save(folder=spec["out"], format=kind, **job)
            else:  # the method is not on the base class yet
                from sicore.io import save_recording

                saved = save_recording(rec, folder=spec["out"], format=kind, **job)
            out["seconds"] = time.perf_counter() - t0
            out["save_api"] = "recording.save" if callable(save) else "sicore.io.save_recording"
            out["check"] = _spot_check(rec, saved)
            out["has_probe"] = bool(saved.has_probe())
            if kind == "zarr":
                store = Path(spec["out"])
                store = store if store.suffix == ".zarr" else store.with_name(store.name + ".zarr")
                out["compression_ratio"] = _zarr_compression(store, rec.get_num_samples(0) * channels * 2)
        elif kind == "noise":
            t0 = time.perf_counter()
            levels = get_noise_levels(rec, return_in_uV=True, method="mad", force_recompute=True,
                                      random_slices_kwargs=dict(seed=NOISE_SEED), **job)
            out["seconds"] = time.perf_counter() - t0
            np.save(spec["result"], np.asarray(levels))
            out["slices"] = [list(map(int, s)) for s in get_random_recording_slices(rec, seed=NOISE_SEED)]
        else:
            raise ValueError(f"unknown pass {kind!r}")
    out.update(_rusage())
    if kind == "cp":
        out["maxrss_children_kb"] = 0  # cp is exec-ed from this process: its ru_maxrss counts ours
    return out


def _spot_check(source, saved) -> bool:
    """First and last second of the saved copy equal the source (outside the timer)."""
    n = source.get_num_samples(0)
    step = min(int(FS), n)
    for s in (0, n - step):
        if not np.array_equal(source.get_traces(start_frame=s, end_frame=s + step),
                              saved.get_traces(start_frame=s, end_frame=s + step)):
            return False
    return True


# The same passes for SpikeInterface, executed by its own interpreter (it needs zarr 2).
SI_SCRIPT = r'''
import json, os, resource, sys, time
from pathlib import Path
import numpy as np
spec = json.loads(sys.argv[1])
import probeinterface as pi
import spikeinterface
import spikeinterface.core as si
from spikeinterface.core.time_series_tools import get_random_sample_slices
fs, channels = spec["fs"], spec["channels"]
rec = si.read_binary(spec["path"], sampling_frequency=fs, dtype="int16", num_channels=channels,
                     gain_to_uV=spec["gain"], offset_to_uV=0.0)
rec.set_probe(pi.read_probeinterface(spec["probe"]).probes[0])  # always in place in 0.105.3
job = dict(n_jobs=spec["n_jobs"], chunk_duration="1s", progress_bar=False)
out = {"version": spikeinterface.__version__}
kind = spec["pass"]
if kind in ("binary", "zarr"):
    t0 = time.perf_counter()
    saved = rec.save(folder=spec["out"], format=kind, **job)
    out["seconds"] = time.perf_counter() - t0
    n = rec.get_num_samples(0)
    step = min(int(fs), n)
    out["check"] = all(np.array_equal(rec.get_traces(start_frame=s, end_frame=s + step),
                                      saved.get_traces(start_frame=s, end_frame=s + step)) for s in (0, n - step))
    out["has_probe"] = bool(saved.has_probe())
    if kind == "zarr":
        store = Path(spec["out"])
        store = store if store.suffix == ".zarr" else store.with_name(store.name + ".zarr")
        arr = store / "traces_seg0"
        stored = sum(f.stat().st_size for f in arr.iterdir() if not f.name.startswith("."))
        out["compression_ratio"] = n * channels * 2 / stored
elif kind == "noise":
    t0 = time.perf_counter()
    levels = si.get_noise_levels(rec, return_in_uV=True, method="mad", force_recompute=True,
                                 random_slices_kwargs=dict(seed=spec["seed"]), **job)
    out["seconds"] = time.perf_counter() - t0
    np.save(spec["result"], np.asarray(levels))
    out["slices"] = [list(map(int, s)) for s in get_random_sample_slices(rec, seed=spec["seed"])]
out["maxrss_self_kb"] = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
out["maxrss_children_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("BENCH_RESULT " + json.dumps(out))
'''


# ============================================================================ parent side
def run_pass(runner: str, spec: dict, workdir: Path, si_python: str | None) -> dict:
    """Run one pass in a fresh subprocess; returns its JSON result plus the sampled tree memory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if runner == "si":
        cmd = [si_python, "-c", SI_SCRIPT, json.dumps(spec)]
    else:
        cmd = [sys.executable, str(HERE), "--_pass", json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=workdir, env=env)
    with TreeMemorySampler(proc.pid) as sampler:
        stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{runner} pass {spec['pass']} failed (exit {proc.returncode}):\n{stderr[-4000:]}")
    line = [ln for ln in stdout.splitlines() if ln.startswith("BENCH_RESULT ")][-1]
    result = json.loads(line[len("BENCH_RESULT "):])
    result["peak_rss_mb"] = max(result["maxrss_self_kb"], result["maxrss_children_kb"]) / 1024
    result["tree_rss_mb"] = sampler.peak_rss / 1024
    result["tree_anon_mb"] = sampler.peak_anon / 1024
    return result


def make_dataset(workdir: Path, name: str, channels: int, seconds: float, probe_kind: str) -> dict:
    """The raw int16 file and its probe (reused when a previous --keep run left the same one)."""
    import probeinterface as pi

    num_samples = int(seconds * FS)
    path = workdir / f"{name}_{channels}ch_{seconds:g}s.raw"
    probe_path = workdir / f"{name}_{channels}ch.json"
    size = num_samples * channels * 2
    info = {"name": name, "path": str(path), "probe": str(probe_path), "channels": channels, "seconds": seconds,
            "num_samples": num_samples, "bytes": size}
    marker = path.with_suffix(".done")
    if not (path.is_file() and path.stat().st_size == size and marker.is_file()):
        t0 = time.perf_counter()
        rng = np.random.default_rng(1234 + channels)
        step = int(FS)
        with open(path, "wb") as f:
            for start in range(0, num_samples, step):
                n = min(step, num_samples - start)
                block = rng.standard_normal((n, channels), dtype=np.float32)
                block *= NOISE_SIGMA
                block.astype(np.int16).tofile(f)  # astype truncates toward zero, as SI's generated int16 data
        marker.write_text("ok")
        print(f"  generated {path.name} ({size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s", flush=True)
    pi.write_probeinterface(probe_path, nw_probe(channels, probe_kind))
    return info


def measure_dataset(ds: dict, n_jobs_list, cache: Cache, workdir: Path, si_python: str | None,
                    repeats: int, log) -> dict:
    """All passes on one file: floors once, then sicore (and SI) for every n_jobs."""
    chunk_bytes = int(FS) * ds["channels"] * 2
    base = {"path": ds["path"], "probe": ds["probe"], "channels": ds["channels"], "fs": FS, "gain": GAIN_TO_UV,
            "seed": NOISE_SEED}
    out_dir = workdir / "out"
    out_dir.mkdir(exist_ok=True)

    def one(runner: str, kind: str, n_jobs: int = 1) -> dict:
        best = None
        peaks = {"peak_rss_mb": [], "tree_rss_mb": [], "tree_anon_mb": []}
        for _ in range(repeats):
            target = out_dir / f"{runner}_{kind}_{n_jobs}"
            remove(target)
            spec = dict(base, **{"pass": kind, "n_jobs": n_jobs, "out": str(target),
                                 "result": str(workdir / f"{ds['name']}_{runner}_{kind}_{n_jobs}.npy")})
            if kind == "read_chunks":
                spec["slices"] = results["slices"]
            cache.prepare(ds["path"], chunk_bytes)
            r = run_pass("si" if runner == "si" else "sicore", spec, workdir, si_python)
            remove(target)
            for key in peaks:
                peaks[key].append(r[key])
            if best is None or r["seconds"] < best["seconds"]:
                best = r
        # time: the fastest run (other load only adds time); memory: the median run (the peak varies by a few MB)
        best = dict(best, **{key: float(np.median(values)) for key, values in peaks.items()},
                    peak_rss_mb_runs=peaks["peak_rss_mb"])
        if kind == "noise":
            best["levels"] = np.load(spec["result"]).tolist()
        log(f"    {runner:6s} {kind:11s} n_jobs={n_jobs}: {best['seconds']:8.3f} s   peak RSS "
            f"{best['peak_rss_mb']:7.1f} MB (tree {best['tree_rss_mb']:7.1f} MB, anon {best['tree_anon_mb']:7.1f} MB)")
        return best

    results: dict = {"dataset": ds, "floors": {}, "runs": {}}
    results["floors"]["read_once"] = one("floor", "read_once")
    results["floors"]["cp"] = one("floor", "cp")
    results["floors"]["write_once"] = one("floor", "write_once")
    results["floors"]["compress"] = one("floor", "compress")
    for n_jobs in n_jobs_list:
        runs = {}
        for kind in ("binary", "zarr", "noise"):
            runs[f"sicore_{kind}"] = one("sicore", kind, n_jobs)
            if si_python:
                runs[f"si_{kind}"] = one("si", kind, n_jobs)
        results["runs"][n_jobs] = runs
        if "slices" not in results:
            results["slices"] = runs["sicore_noise"]["slices"]
    results["floors"]["read_chunks"] = one("floor", "read_chunks")
    return results


# ============================================================================ figures and table
def build_rows(scale: str, res: dict, flat: dict | None) -> list[dict]:
    rows = []
    read = res["floors"]["read_once"]["seconds"]
    cp = res["floors"]["cp"]["seconds"]
    chunks = res["floors"]["read_chunks"]["seconds"]
    mb = res["dataset"]["bytes"] / 1e6

    def row(figure, n_jobs, ours, theirs, target, passed, note="", unit="s", x_read=None, x_cp=None):
        rows.append({"scale": scale, "n_jobs": n_jobs, "figure": figure, "unit": unit, "sicore": ours, "si": theirs,
                     "x_si": ratio(theirs, ours) if unit == "s" else ratio(ours, theirs) if unit == "ratio" else
                     ratio(theirs, ours),
                     "x_read": x_read, "x_cp": x_cp, "target": target,
                     "status": "n/a" if passed is None else ("PASS" if passed else "FAIL"), "note": note})

    row("floor: read file once (1 s chunks)", "-", read, None, "", None, f"{mb / read:.0f} MB/s", x_read=1.0,
        x_cp=ratio(read, cp))
    row("floor: cp of the file", "-", cp, None, "", None, f"{mb / cp:.0f} MB/s", x_read=ratio(cp, read), x_cp=1.0)
    write = res["floors"].get("write_once", {}).get("seconds")  # absent from runs older than this floor
    if write:
        row("floor: write once (1 s chunks, pwrite from a map)", "-", write, None, "", None,
            f"{mb / write:.0f} MB/s", x_read=ratio(write, read), x_cp=ratio(write, cp))
    comp = res["floors"]["compress"]["seconds"]
    row("floor: read + compress once (zarr codec)", "-", comp, None, "", None,
        f"{mb / comp:.0f} MB/s, no write", x_read=ratio(comp, read), x_cp=ratio(comp, cp))
    row("floor: read the noise chunks once", "-", chunks, None, "", None,
        f"{len(res['slices'])} chunks", x_read=ratio(chunks, read), x_cp=ratio(chunks, cp))
    for n_jobs, runs in res["runs"].items():
        si_ok = "si_binary" in runs
        b, z, nl = runs["sicore_binary"], runs["sicore_zarr"], runs["sicore_noise"]
        sb, sz, snl = runs.get("si_binary"), runs.get("si_zarr"), runs.get("si_noise")
        # save binary
        x_si = ratio(sb["seconds"], b["seconds"]) if si_ok else None
        x_cp = b["seconds"] / cp
        goal_si = TARGET_BINARY_VS_SI.get(scale[0], 1.5)
        passed = x_cp <= TARGET_BINARY_VS_CP and (x_si is None or x_si >= goal_si)
        floor_note = "" if not write else (f"x write-floor {b['seconds'] / write:.2f}" +
                                           (f" (SI {sb['seconds'] / write:.2f})" if si_ok else "") + "; ")
        row("save(format='binary')", n_jobs, b["seconds"], sb["seconds"] if si_ok else None,
            f">={goal_si:g}x SI, <={TARGET_BINARY_VS_CP:g}x cp", passed, floor_note + _check_note(b, sb),
            x_read=b["seconds"] / read, x_cp=x_cp)
        # save zarr
        x_si = ratio(sz["seconds"], z["seconds"]) if si_ok else None
        row("save(format='zarr')", n_jobs, z["seconds"], sz["seconds"] if si_ok else None,
            f">={TARGET_ZARR_VS_SI:g}x SI", None if x_si is None else x_si >= TARGET_ZARR_VS_SI,
            f"x codec-floor {z['seconds'] / comp:.2f}; " + _check_note(z, sz),
            x_read=z["seconds"] / read, x_cp=z["seconds"] / cp)
        cr, scr = z["compression_ratio"], sz["compression_ratio"] if si_ok else None
        row("zarr compression ratio", n_jobs, cr, scr, ">= SI's", None if scr is None else cr >= scr * (1 - 1e-3),
            "nbytes / stored chunk bytes", unit="ratio")
        # noise levels
        x_si = ratio(snl["seconds"], nl["seconds"]) if si_ok else None
        note = f"x chunk-floor {nl['seconds'] / chunks:.1f}"
        passed = None if x_si is None else x_si >= TARGET_NOISE_VS_SI
        row("get_noise_levels (MAD, uV)", n_jobs, nl["seconds"], snl["seconds"] if si_ok else None,
            f">={TARGET_NOISE_VS_SI:g}x SI", passed, note, x_read=nl["seconds"] / read, x_cp=nl["seconds"] / cp)
        if si_ok:
            ours, theirs = np.asarray(nl["levels"]), np.asarray(snl["levels"])
            rel = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
            same_chunks = nl["slices"] == snl["slices"]
            row("noise levels: max relative difference", n_jobs, rel, None, f"<={TARGET_NOISE_REL_DIFF:g}",
                rel <= TARGET_NOISE_REL_DIFF and same_chunks,
                "same chunks as SI" if same_chunks else "CHUNK POSITIONS DIFFER", unit="rel")
        # memory
        for kind, label in (("binary", "save binary"), ("zarr", "save zarr"), ("noise", "noise levels")):
            ours = runs[f"sicore_{kind}"]
            theirs = runs.get(f"si_{kind}")
            row(f"peak RSS, {label}", n_jobs, ours["peak_rss_mb"], theirs["peak_rss_mb"] if theirs else None,
                "", None, f"tree {ours['tree_rss_mb']:.0f} MB (anon {ours['tree_anon_mb']:.0f})"
                + (f" / SI tree {theirs['tree_rss_mb']:.0f} MB (anon {theirs['tree_anon_mb']:.0f})" if theirs else ""),
                unit="MB")
    if flat is not None:
        for n_jobs, runs in res["runs"].items():
            long_runs = flat["runs"][n_jobs]
            for kind, label in (("binary", "save binary"), ("zarr", "save zarr"), ("noise", "noise levels")):
                a, b2 = runs[f"sicore_{kind}"], long_runs[f"sicore_{kind}"]
                r = b2["peak_rss_mb"] / a["peak_rss_mb"]
                sa, sb2 = runs.get(f"si_{kind}"), long_runs.get(f"si_{kind}")
                sr = sb2["peak_rss_mb"] / sa["peak_rss_mb"] if sa and sb2 else None
                tree = b2["tree_rss_mb"] / a["tree_rss_mb"] if a["tree_rss_mb"] else float("nan")
                anon = b2["tree_anon_mb"] / a["tree_anon_mb"] if a["tree_anon_mb"] else float("nan")
                row(f"peak RSS 2x duration / 1x, {label}", n_jobs, r, sr, f"<={TARGET_FLAT:.2f}", r <= TARGET_FLAT,
                    f"{a['peak_rss_mb']:.0f}->{b2['peak_rss_mb']:.0f} MB; tree x{tree:.2f}, anon x{anon:.2f}",
                    unit="x")
    return rows


def _check_note(ours: dict, theirs: dict | None) -> str:
    notes = []
    if not ours.get("check", True):
        notes.append("SICORE COPY DIFFERS")
    if theirs is not None and not theirs.get("check", True):
        notes.append("SI COPY DIFFERS")
    if not ours.get("has_probe", True):
        notes.append("sicore copy lost the probe")
    return "; ".join(notes) or "copy checked, probe kept"


def _fmt(value, unit="s"):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if unit == "rel":
        return f"{value:.1e}"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit in ("ratio", "x"):
        return f"{value:.3f}"
    return f"{value:.3f}"


def _fmt_x(value):
    return "-" if value is None else f"{value:.2f}x"


def print_table(rows: list[dict], header: str) -> str:
    cols = ["figure", "n_jobs", "sicore", "SI", "x SI", "x read", "x cp", "target", "result", "note"]
    lines = []
    for r in rows:
        x_si = r["x_si"] if r["unit"] in ("s", "MB") else None
        lines.append([r["figure"] + (f" [{r['scale']}]" if r["figure"].startswith("floor") else ""), str(r["n_jobs"]),
                      _fmt(r["sicore"], r["unit"]), _fmt(r["si"], r["unit"]), _fmt_x(x_si), _fmt_x(r["x_read"]),
                      _fmt_x(r["x_cp"]), r["target"], r["status"], r["note"]])
    widths = [max(len(c), *(len(l[i]) for l in lines)) for i, c in enumerate(cols)]
    sep = "-+-".join("-" * w for w in widths)
    text = [header, " | ".join(c.ljust(w) for c, w in zip(cols, widths)), sep]
    for l in lines:
        text.append(" | ".join(v.ljust(w) for v, w in zip(l, widths)))
    out = "\n".join(text)
    print(out, flush=True)
    return out


# ============================================================================ main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", nargs="+", default=["A", "B"], choices=sorted(SCALES))
    parser.add_argument("--n-jobs", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="short recordings (smoke run)")
    parser.add_argument("--duration", type=float, default=None, help="override every scale's duration (s)")
    parser.add_argument("--cache", choices=["auto", "cold", "warm"], default="auto")
    parser.add_argument("--no-reference", action="store_true", help="skip SpikeInterface")
    parser.add_argument("--si-python", default=DEFAULT_SI_PYTHON)
    parser.add_argument("--no-flatness", action="store_true", help="skip the 2x-duration run of scale A")
    parser.add_argument("--repeats", type=int, default=1, help="runs per pass; the fastest is kept")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a new folder under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (and reuse its files)")
    parser.add_argument("--json", default=None, help="write rows and raw results to this file")
    parser.add_argument("--_pass", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._pass is not None:  # child: one pass
        print("BENCH_RESULT " + json.dumps(run_sicore_pass(json.loads(args._pass))), flush=True)
        return 0
    ensure_bytecode()

    si_python = None
    if not args.no_reference:
        si_python = args.si_python
        if not Path(si_python).exists():
            try:
                sys.path.insert(0, str(REPO / "tests"))
                from reference_env import reference_python  # creates the environment when missing

                si_python = reference_python()
            except BaseException as err:  # pytest.skip raises a BaseException subclass
                raise SystemExit(f"SpikeInterface 0.105.3 environment not found ({err}); give --si-python or "
                                 "use --no-reference")

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="sicore_bench_io_"))
    workdir.mkdir(parents=True, exist_ok=True)
    cache = Cache(args.cache, settle_s=0.0 if args.quick else SETTLE_S)

    def log(msg):
        print(msg, flush=True)

    log(f"sicore bench_io: workdir {workdir}, cache {cache.mode}"
        f"{' (page cache dropped before every pass)' if cache.mode == 'cold' else ' (source file read once before every pass)'}, "
        f"{os.cpu_count()} CPUs, python {platform.python_version()}, SpikeInterface: {si_python or 'not run'}")
    all_rows, raw, tables = [], {}, []
    try:
        for scale in args.scales:
            channels, seconds, quick_seconds, probe_kind = SCALES[scale]
            seconds = args.duration or (quick_seconds if args.quick else seconds)
            log(f"scale {scale}: {channels} ch, {FS / 1000:g} kHz, {seconds:g} s")
            ds = make_dataset(workdir, scale, channels, seconds, probe_kind)
            res = measure_dataset(ds, args.n_jobs, cache, workdir, si_python, args.repeats, log)
            flat = None
            if scale == "A" and not args.no_flatness:
                log(f"scale A2x: {channels} ch, {2 * seconds:g} s (bounded-memory check)")
                ds2 = make_dataset(workdir, "A2x", channels, 2 * seconds, probe_kind)
                flat = measure_dataset(ds2, args.n_jobs, cache, workdir, si_python, args.repeats, log)
                raw["A2x"] = flat
                if not args.keep:
                    remove(Path(ds2["path"]))
            raw[scale] = res
            if not args.keep:
                remove(Path(ds["path"]))
            rows = build_rows(scale, res, flat)
            all_rows += rows
            tables.append(print_table(rows, f"\n== scale {scale}: {channels} ch x {seconds:g} s "
                                            f"({ds['bytes'] / 1e6:.0f} MB int16), cache {cache.mode} =="))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [r for r in all_rows if r["status"] == "FAIL"]
    log(f"\n{len([r for r in all_rows if r['status'] == 'PASS'])} PASS, {len(failed)} FAIL")
    if args.json:
        meta = {"cache": cache.mode, "cpus": os.cpu_count(), "python": platform.python_version(),
                "si_python": si_python, "quick": args.quick, "scales": args.scales, "n_jobs": args.n_jobs,
                "repeats": args.repeats, "platform": platform.platform()}
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": all_rows, "tables": tables, "raw": raw},
                                              indent=1, default=json_default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
