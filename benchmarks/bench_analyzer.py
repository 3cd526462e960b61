"""SortingAnalyzer hot paths: sicore against the machine's floor and SpikeInterface 0.105.3.

Usage::

    python benchmarks/bench_analyzer.py [--scales A B] [--n-jobs 1 2] [--quick] [--duration S]
                                        [--cache auto|cold|warm] [--no-reference] [--si-python PATH]
                                        [--no-flatness] [--repeats N] [--workdir DIR] [--keep] [--json out.json]

Data
----
Like ``bench_io.py``: an int16 raw binary file per scale (noise sigma = 5 counts truncated to int16,
Neuropixels-like gain 0.195 uV/count), with a probe file next to it, plus a ground-truth-like sorting
whose spikes are injected into the file (so the estimated sparsity is meaningful):

* A: 32 channels (linear probe, 20 um pitch), 30 kHz, 300 s, 20 units;
* B: 384 channels (Neuropixels 1.0-like staggered 4-column probe), 30 kHz, 120 s, 100 units;
* A at twice the duration (600 s), for the bounded-memory check (``--no-flatness`` skips it).

Each unit fires at 5-10 Hz (uniform times, 2 ms refractory period); its template is a 3 ms
biphasic spike of 40-120 counts on its main channel, decaying with distance (exp(-d / 30 um), cut at
80 um). The sorting is kept as a spike vector (``spikes.npy``) that both libraries wrap in ``NumpySorting``.

Passes
------
Every pass runs in its own fresh subprocess (sicore: this venv; SpikeInterface: its own environment)
running the *same script* with the same steps; the recording (``read_binary`` + probe) and the sorting
are opened before the timer. Job kwargs: ``n_jobs`` from ``--n-jobs``, ``chunk_duration="1s"``, no
progress bar.

* floor: read the file once in 1 s chunks (``readinto`` a reused buffer);
* ``create``: ``create_sorting_analyzer(sorting, recording, format="binary_folder", sparse=True)``
  (main-channel / sparsity estimation: one pass over the chunks holding the selected spikes). Each
  library's first ``create`` folder then gets ``random_spikes`` (uniform, 500 per unit, seed 0), outside
  the timer: it is the base copied (outside the timer) for the two next passes;
* ``waveforms``: ``load_sorting_analyzer(copy of base)`` then, timed, ``compute("waveforms")``
  (1 ms before, 2 ms after, float32 uV, written to ``waveforms.npy``);
* ``templates``: ``load_sorting_analyzer(copy of base)`` then, timed, ``compute("templates")`` *without*
  waveforms (average + std from the recording);
* ``load``: timed ``load_sorting_analyzer(folder)`` of the folder with waveforms (and templates computed
  from them); the waveforms must come back memory-mapped.

Memory
------
In the pass process, right before the timed call, the resident high-water mark is restarted
(``/proc/self/clear_refs``) and the current RSS is the *baseline* (after imports and the set-up). The
*peak growth* of a pass is ``max(VmHWM of the pass process, ru_maxrss of its pool workers) - baseline``.
For ``load`` the RSS growth after the call is reported too. The summed RSS of the whole process tree
(sampled every 25 ms from the parent) is shown in the notes. The flatness check compares the peak
(largest process, absolute, as ``bench_io.py``) of each pass at 600 s with 300 s on scale A.
MB here is 2**20 bytes.

Ratios: "x SI" is SpikeInterface's time / sicore's (above 1: sicore is faster); "x read" is sicore's
time / the floor's (1 = as fast as reading the file once). Each pass runs ``--repeats`` times: the
fastest time is kept, with the largest memory figures of the repeats.

Cross-checks (outside the timers): the sparsity masks of both libraries, and the largest difference
between their templates (same random spikes: both draw them with seed 0).

The analyzer folders are written under ``<workdir>/out_<scale>`` and removed after each scale (set
``BENCH_KEEP_OUTPUTS=1`` to keep them); ``--keep`` keeps the generated data files for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_SI_PYTHON,
    FS,
    GAIN_TO_UV,
    SETTLE_S,
    Cache,
    ensure_bytecode,
    format_table,
    json_default,
    machine_load,
    nw_probe,
    ratio,
    remove,
    resolve_si_python,
    run_json_subprocess,
    write_noise_int16,
)

SCALES = {
    # name: (channels, seconds, quick seconds, probe kind, units)
    "A": (32, 300.0, 10.0, "linear", 20),
    "B": (384, 120.0, 3.0, "np1", 100),
}
MAX_SPIKES_PER_UNIT = 500
RANDOM_SEED = 0
TEMPLATE_MS_BEFORE, TEMPLATE_MS_AFTER = 1.0, 2.0  # injected template window

# targets -------------------------------------------------------------------------------------
TARGET_CREATE_VS_SI = 2.0
TARGET_WAVEFORMS_VS_SI = 2.0
TARGET_WAVEFORMS_EXTRA_MB = 150.0
TARGET_TEMPLATES_VS_SI = 3.0
TARGET_TEMPLATES_VS_READ = 3.0
TARGET_LOAD_GROWTH_MB = 50.0
TARGET_FLAT = 1.10

PASSES = ("create", "waveforms", "templates", "load")


# ============================================================================ the pass script
# Run by both interpreters (sicore's venv and SpikeInterface's): the same steps for both libraries.
PASS_SCRIPT = r'''
import json, os, resource, sys, time
import numpy as np

spec = json.loads(sys.argv[1])


def field_kb(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5\n")
        return True
    except OSError:
        return False


out = {"pass": spec["pass"], "lib": spec["lib"]}
kind = spec["pass"]
if kind == "read_once":
    buf = bytearray(int(spec["fs"]) * spec["channels"] * 2)
    view = memoryview(buf)
    total = 0
    out["rss_after_imports_kb"] = field_kb("VmRSS")
    t0 = time.perf_counter()
    with open(spec["path"], "rb", buffering=0) as f:
        while True:
            n = f.readinto(view)
            if not n:
                break
            total += n
    out["seconds"] = time.perf_counter() - t0
    out["bytes"] = total
    out["baseline_kb"] = out["rss_after_imports_kb"]
    out["peak_self_kb"] = field_kb("VmHWM")
    out["children_kb"] = 0
    print("BENCH_RESULT " + json.dumps(out), flush=True)
    sys.exit(0)

import probeinterface as pi

if spec["lib"] == "si":
    import spikeinterface as pkg
    import spikeinterface.core as L
else:
    import sicore as pkg
    L = pkg
    # sicore imports its modules on first use, `import spikeinterface.core` all of them up front: import the
    # public API here so that neither library's imports fall inside a timer
    for name in pkg.__all__:
        getattr(pkg, name)
out["version"] = pkg.__version__
out["rss_after_imports_kb"] = field_kb("VmRSS")
fs = spec["fs"]
job = dict(n_jobs=spec["n_jobs"], chunk_duration="1s", progress_bar=False)

rec = L.read_binary(spec["path"], sampling_frequency=fs, dtype="int16", num_channels=spec["channels"],
                    gain_to_uV=spec["gain"], offset_to_uV=0.0)
probe = pi.read_probeinterface(spec["probe"]).probes[0]
if spec["lib"] == "si":
    rec.set_probe(probe)  # in place in 0.105.3
else:
    rec.set_probe(probe, in_place=True)
sorting = L.NumpySorting(np.load(spec["spikes"]), fs, [str(i) for i in range(spec["num_units"])])


def start():
    out["peak_reset"] = reset_peak()
    out["baseline_kb"] = field_kb("VmRSS")
    return time.perf_counter()


def stop(t0):
    out["seconds"] = time.perf_counter() - t0
    out["peak_self_kb"] = field_kb("VmHWM")
    out["children_kb"] = int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    out["rss_after_kb"] = field_kb("VmRSS")


if kind == "create":
    t0 = start()
    analyzer = L.create_sorting_analyzer(sorting, rec, format="binary_folder", folder=spec["out"], sparse=True,
                                         job_kwargs=job)
    stop(t0)
    mask = np.asarray(analyzer.sparsity.mask, dtype=bool)
    np.save(spec["result"], mask)
    out["max_channels"] = int(mask.sum(axis=1).max())
    out["mean_channels"] = float(mask.sum(axis=1).mean())
    if spec.get("make_base"):
        analyzer.compute("random_spikes", method="uniform", max_spikes_per_unit=spec["max_spikes"],
                         seed=spec["seed"])
elif kind == "waveforms":
    analyzer = L.load_sorting_analyzer(spec["out"])
    t0 = start()
    ext = analyzer.compute("waveforms", **job)
    stop(t0)
    data = ext.get_data()
    out["shape"] = list(data.shape)
    out["array_bytes"] = int(data.nbytes)
    out["dtype"] = str(data.dtype)
    out["file_bytes"] = os.path.getsize(os.path.join(spec["out"], "extensions", "waveforms", "waveforms.npy"))
    if spec.get("then_templates"):  # for the load pass (outside the timer)
        analyzer.compute("templates")
elif kind == "templates":
    analyzer = L.load_sorting_analyzer(spec["out"])
    assert not analyzer.has_extension("waveforms")
    t0 = start()
    ext = analyzer.compute("templates", **job)
    stop(t0)
    average = np.asarray(ext.get_data(operator="average"))
    np.save(spec["result"], average)
    out["shape"] = list(average.shape)
elif kind == "load":
    t0 = start()
    analyzer = L.load_sorting_analyzer(spec["out"])
    stop(t0)
    waveforms = analyzer.get_extension("waveforms").data["waveforms"]
    out["memmap"] = isinstance(waveforms, np.memmap)
    out["waveforms_type"] = type(waveforms).__name__
    out["waveforms_bytes"] = int(waveforms.nbytes)
    out["loaded"] = sorted(analyzer.extensions) if isinstance(analyzer.extensions, dict) else []
else:
    raise ValueError(kind)
print("BENCH_RESULT " + json.dumps(out), flush=True)
'''


def run_pass(spec: dict, workdir: Path, si_python: str | None, timeout: float) -> dict:
    """One pass in a fresh interpreter; memory figures in MB."""
    python = si_python if spec["lib"] == "si" else sys.executable
    r = run_json_subprocess([python, "-c", PASS_SCRIPT, json.dumps(spec)], cwd=workdir, timeout=timeout,
                            what=f"{spec['lib']} {spec['pass']} n_jobs={spec.get('n_jobs')}")
    r["baseline_mb"] = r["baseline_kb"] / 1024
    r["peak_rss_mb"] = max(r["peak_self_kb"], r["children_kb"]) / 1024
    r["growth_mb"] = r["peak_rss_mb"] - r["baseline_mb"]
    r["growth_self_mb"] = r["peak_self_kb"] / 1024 - r["baseline_mb"]
    r["growth_children_mb"] = (r["children_kb"] / 1024 - r["baseline_mb"]) if r["children_kb"] else None
    if "rss_after_kb" in r:
        r["rss_growth_after_mb"] = r["rss_after_kb"] / 1024 - r["baseline_mb"]
    if not r.get("peak_reset", True):
        r["note"] = "clear_refs refused: peak includes the set-up"
    return r


# ============================================================================ data
def _template_shape(width: int, nbefore: int) -> np.ndarray:
    t = (np.arange(width) - nbefore) / FS * 1000.0  # ms
    shape = -np.exp(-((t / 0.25) ** 2)) + 0.35 * np.exp(-(((t - 0.55) / 0.4) ** 2))
    return (shape / -shape.min()).astype(np.float32)  # trough at -1


def make_ground_truth(num_units: int, num_samples: int, locations: np.ndarray, seed: int):
    """Spike vector, and per unit (channels, template (width, len(channels))) to inject."""
    rng = np.random.default_rng(seed)
    nbefore = int(TEMPLATE_MS_BEFORE * FS / 1000)
    width = nbefore + int(TEMPLATE_MS_AFTER * FS / 1000)
    refractory = int(0.002 * FS)
    margin = width
    duration = num_samples / FS
    rates = rng.uniform(5.0, 10.0, num_units)
    samples_list, units_list = [], []
    for u in range(num_units):
        n = rng.poisson(rates[u] * duration)
        s = np.unique(rng.integers(margin, num_samples - margin, n))
        keep = np.r_[True, np.diff(s) >= refractory]
        s = s[keep]
        samples_list.append(s)
        units_list.append(np.full(s.size, u))
    samples = np.concatenate(samples_list)
    units = np.concatenate(units_list)
    order = np.lexsort((units, samples))
    dtype = [("sample_index", "int64"), ("unit_index", "int64"), ("segment_index", "int64")]
    spikes = np.zeros(samples.size, dtype=dtype)
    spikes["sample_index"] = samples[order]
    spikes["unit_index"] = units[order]

    channels_total = locations.shape[0]
    main = rng.choice(channels_total, num_units, replace=num_units > channels_total)
    amplitudes = rng.uniform(40.0, 120.0, num_units)
    shape = _template_shape(width, nbefore)
    injected = []
    for u in range(num_units):
        d = np.linalg.norm(locations - locations[main[u]], axis=1)
        chans = np.flatnonzero(d <= 80.0)
        weights = np.exp(-d[chans] / 30.0).astype(np.float32)
        injected.append((chans, amplitudes[u] * shape[:, None] * weights[None, :]))
    return spikes, injected, nbefore, width


def make_dataset(workdir: Path, name: str, channels: int, seconds: float, probe_kind: str, num_units: int) -> dict:
    """The raw int16 file with injected spikes, its probe and its spike vector (reused when already there)."""
    import probeinterface as pi

    num_samples = int(seconds * FS)
    stem = f"{name}_{channels}ch_{seconds:g}s_{num_units}u"
    path = workdir / f"{stem}.raw"
    probe_path = workdir / f"{name}_{channels}ch.json"
    spikes_path = workdir / f"{stem}_spikes.npy"
    size = num_samples * channels * 2
    probegroup = nw_probe(channels, probe_kind)
    pi.write_probeinterface(probe_path, probegroup)
    info = {"name": name, "path": str(path), "probe": str(probe_path), "spikes": str(spikes_path),
            "channels": channels, "seconds": seconds, "num_samples": num_samples, "bytes": size,
            "num_units": num_units}
    marker = path.with_suffix(".done")
    if not (path.is_file() and path.stat().st_size == size and marker.is_file() and spikes_path.is_file()):
        t0 = time.perf_counter()
        locations = probegroup.probes[0].contact_positions
        spikes, injected, nbefore, width = make_ground_truth(num_units, num_samples, locations, seed=4321 + channels)
        samples, units = spikes["sample_index"], spikes["unit_index"]

        def add_spikes(block: np.ndarray, start: int) -> None:
            n = block.shape[0]
            lo = np.searchsorted(samples, start - (width - nbefore) + 1)
            hi = np.searchsorted(samples, start + n + nbefore)
            for s, u in zip(samples[lo:hi].tolist(), units[lo:hi].tolist()):
                t0_ = s - nbefore - start
                r0, r1 = max(t0_, 0), min(t0_ + width, n)
                chans, template = injected[u]
                block[r0:r1, chans] += template[r0 - t0_: r1 - t0_]

        write_noise_int16(path, num_samples, channels, seed=1234 + channels, add_to_block=add_spikes)
        np.save(spikes_path, spikes)
        marker.write_text("ok")
        print(f"  generated {path.name} ({size / 1e6:.0f} MB, {spikes.size} spikes) in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    info["num_spikes"] = int(np.load(spikes_path, mmap_mode="r").shape[0])
    return info


# ============================================================================ measuring one dataset
def measure_dataset(ds: dict, n_jobs_list, cache: Cache, workdir: Path, si_python: str | None, repeats: int,
                    timeout: float, log) -> dict:
    """Floor once, then every pass for sicore (and SpikeInterface) for every n_jobs."""
    chunk_bytes = int(FS) * ds["channels"] * 2
    libs = ["sicore"] + (["si"] if si_python else [])
    base = {"path": ds["path"], "probe": ds["probe"], "spikes": ds["spikes"], "channels": ds["channels"],
            "num_units": ds["num_units"], "fs": FS, "gain": GAIN_TO_UV, "max_spikes": MAX_SPIKES_PER_UNIT,
            "seed": RANDOM_SEED}
    out_dir = workdir / f"out_{ds['name']}"
    remove(out_dir)
    out_dir.mkdir()
    results: dict = {"dataset": ds, "floor": None, "runs": {n: {} for n in n_jobs_list}, "load": {}}

    def one(lib: str, kind: str, n_jobs: int | None, source: Path | None = None, keep_as: Path | None = None,
            **extra) -> dict:
        best = None
        for rep in range(repeats):
            target = out_dir / f"{lib}_{kind}_{n_jobs}"
            remove(target)
            if source is not None and kind != "load":
                shutil.copytree(source, target)
            spec = dict(base, **{"lib": lib, "pass": kind, "n_jobs": n_jobs,
                                 "out": str(source if kind == "load" else target),
                                 "result": str(out_dir / f"{lib}_{kind}_{n_jobs}.npy")}, **extra)
            if rep:
                spec.pop("make_base", None)
                spec.pop("then_templates", None)
            cache.prepare(ds["path"], chunk_bytes)
            r = run_pass(spec, workdir, si_python, timeout)
            if kind == "create" and spec.get("make_base") or kind == "waveforms" and spec.get("then_templates"):
                remove(keep_as)
                target.rename(keep_as)
            elif kind != "load":
                remove(target)
            if best is None or r["seconds"] < best["seconds"]:
                peak = max(r["peak_rss_mb"], best["peak_rss_mb"]) if best else r["peak_rss_mb"]
                growth = max(r["growth_mb"], best["growth_mb"]) if best else r["growth_mb"]
                best = dict(r, peak_rss_mb=peak, growth_mb=growth)
        log(f"    {lib:6s} {kind:9s} n_jobs={n_jobs!s:4s}: {best['seconds']:8.3f} s   peak {best['peak_rss_mb']:7.1f} "
            f"MB (baseline {best['baseline_mb']:6.1f}, growth {best['growth_mb']:7.1f}; "
            f"tree {best['tree_rss_mb']:7.1f} MB, anon {best['tree_anon_mb']:7.1f} MB)")
        return best

    results["floor"] = one("floor", "read_once", None)
    bases = {lib: out_dir / f"base_{lib}" for lib in libs}
    fulls = {lib: out_dir / f"full_{lib}" for lib in libs}
    for kind in ("create", "waveforms", "templates"):
        for i, n_jobs in enumerate(n_jobs_list):
            for lib in libs:
                if kind == "create":
                    r = one(lib, kind, n_jobs, keep_as=bases[lib], make_base=(i == 0))
                    r["mask"] = np.load(out_dir / f"{lib}_create_{n_jobs}.npy").tolist()
                elif kind == "waveforms":
                    r = one(lib, kind, n_jobs, source=bases[lib], keep_as=fulls[lib], then_templates=(i == 0))
                else:
                    r = one(lib, kind, n_jobs, source=bases[lib])
                    r["average_file"] = str(out_dir / f"{lib}_templates_{n_jobs}.npy")
                results["runs"][n_jobs][f"{lib}_{kind}"] = r
    for lib in libs:
        results["load"][lib] = one(lib, "load", None, source=fulls[lib])
    # cross-checks between the libraries (outside every timer)
    checks = {}
    n0 = n_jobs_list[0]
    if "si_create" in results["runs"][n0]:
        ours = np.asarray(results["runs"][n0]["sicore_create"]["mask"])
        theirs = np.asarray(results["runs"][n0]["si_create"]["mask"])
        checks["sparsity_units_differing"] = int(np.sum(np.any(ours != theirs, axis=1)))
        a = np.load(results["runs"][n0]["sicore_templates"]["average_file"])
        b = np.load(results["runs"][n0]["si_templates"]["average_file"])
        checks["templates_max_abs_diff_uV"] = float(np.max(np.abs(a - b))) if a.shape == b.shape else None
        checks["templates_max_abs_uV"] = float(np.max(np.abs(b)))
    for runs in results["runs"].values():
        for r in runs.values():
            r.pop("mask", None)
    results["checks"] = checks
    if not os.environ.get("BENCH_KEEP_OUTPUTS"):
        remove(out_dir)
    return results


# ============================================================================ figures and table
def _status(passed):
    return "n/a" if passed is None else ("PASS" if passed else "FAIL")


def build_rows(scale: str, res: dict, flat: dict | None) -> list[dict]:
    rows = []
    read = res["floor"]["seconds"]
    mb = res["dataset"]["bytes"] / 1e6

    def row(figure, n_jobs, ours, theirs, target, passed, note="", unit="s", x_si=None, x_read=None):
        rows.append({"scale": scale, "n_jobs": n_jobs, "figure": figure, "unit": unit, "sicore": ours, "si": theirs,
                     "x_si": x_si, "x_read": x_read, "target": target, "status": _status(passed), "note": note})

    row("floor: read file once (1 s chunks)", "-", read, None, "", None, f"{mb / read:.0f} MB/s", x_read=1.0)
    for n_jobs, runs in res["runs"].items():
        c, w, t = runs["sicore_create"], runs["sicore_waveforms"], runs["sicore_templates"]
        sc, sw, st = runs.get("si_create"), runs.get("si_waveforms"), runs.get("si_templates")
        # create
        x = ratio(sc["seconds"], c["seconds"]) if sc else None
        note = f"max {c['max_channels']} ch/unit (mean {c['mean_channels']:.1f})"
        if sc:
            note += f"; SI max {sc['max_channels']} (mean {sc['mean_channels']:.1f})"
        row("create_sorting_analyzer(sparse=True)", n_jobs, c["seconds"], sc["seconds"] if sc else None,
            f">={TARGET_CREATE_VS_SI:g}x SI", None if x is None else x >= TARGET_CREATE_VS_SI, note,
            x_si=x, x_read=c["seconds"] / read)
        # waveforms
        x = ratio(sw["seconds"], w["seconds"]) if sw else None
        array_mb = w["array_bytes"] / 2**20
        row("compute('waveforms')", n_jobs, w["seconds"], sw["seconds"] if sw else None,
            f">={TARGET_WAVEFORMS_VS_SI:g}x SI", None if x is None else x >= TARGET_WAVEFORMS_VS_SI,
            f"{w['shape']} {w['dtype']} = {array_mb:.0f} MB" + (f"; SI {sw['shape']}" if sw else ""),
            x_si=x, x_read=w["seconds"] / read)
        limit = array_mb + TARGET_WAVEFORMS_EXTRA_MB
        row("waveforms: peak RSS growth", n_jobs, w["growth_mb"], sw["growth_mb"] if sw else None,
            f"<= array+{TARGET_WAVEFORMS_EXTRA_MB:g} = {limit:.0f} MB", w["growth_mb"] <= limit,
            _mem_note(w, sw, array_mb), unit="MB")
        # templates
        x = ratio(st["seconds"], t["seconds"]) if st else None
        x_read = t["seconds"] / read
        passed = x_read <= TARGET_TEMPLATES_VS_READ and (x is None or x >= TARGET_TEMPLATES_VS_SI)
        row("compute('templates') from recording", n_jobs, t["seconds"], st["seconds"] if st else None,
            f">={TARGET_TEMPLATES_VS_SI:g}x SI, <={TARGET_TEMPLATES_VS_READ:g}x read", passed,
            "" if n_jobs != list(res["runs"])[0] or res["checks"].get("templates_max_abs_diff_uV") is None else
            f"max |sicore - SI| = {res['checks']['templates_max_abs_diff_uV']:.2g} uV "
            f"(peak {res['checks']['templates_max_abs_uV']:.0f} uV)",
            x_si=x, x_read=x_read)
        for kind, label in (("create", "create"), ("templates", "templates")):
            ours, theirs = runs[f"sicore_{kind}"], runs.get(f"si_{kind}")
            row(f"{label}: peak RSS growth", n_jobs, ours["growth_mb"], theirs["growth_mb"] if theirs else None,
                "", None, _mem_note(ours, theirs), unit="MB")
    # load
    ld, sld = res["load"]["sicore"], res["load"].get("si")
    x = ratio(sld["seconds"], ld["seconds"]) if sld else None
    row("load_sorting_analyzer (binary_folder)", "-", ld["seconds"], sld["seconds"] if sld else None, "", None,
        f"waveforms {ld['waveforms_type']}" + (f"; SI {sld['waveforms_type']}" if sld else ""), x_si=x)
    row("load: RSS growth", "-", ld["growth_mb"], sld["growth_mb"] if sld else None,
        f"<{TARGET_LOAD_GROWTH_MB:g} MB, memmap", ld["growth_mb"] < TARGET_LOAD_GROWTH_MB and ld["memmap"],
        f"peak growth; after the call {ld['rss_growth_after_mb']:.1f} MB"
        + (f" (SI {sld['rss_growth_after_mb']:.1f} MB)" if sld else "")
        + f"; waveforms.npy {ld['waveforms_bytes'] / 2**20:.0f} MB", unit="MB")
    if res["checks"].get("sparsity_units_differing") is not None:
        n = res["checks"]["sparsity_units_differing"]
        row("sparsity mask vs SI", "-", n, None, "", None, f"{n} of {res['dataset']['num_units']} units differ",
            unit="n")
    if flat is not None:
        for n_jobs, runs in res["runs"].items():
            long_runs = flat["runs"][n_jobs]
            for kind in ("create", "waveforms", "templates"):
                rows.append(_flat_row(scale, n_jobs, kind, runs[f"sicore_{kind}"], long_runs[f"sicore_{kind}"],
                                      runs.get(f"si_{kind}"), long_runs.get(f"si_{kind}")))
        rows.append(_flat_row(scale, "-", "load", res["load"]["sicore"], flat["load"]["sicore"],
                              res["load"].get("si"), flat["load"].get("si")))
    return rows


def _flat_row(scale, n_jobs, kind, a, b, sa, sb) -> dict:
    r = b["peak_rss_mb"] / a["peak_rss_mb"]
    sr = sb["peak_rss_mb"] / sa["peak_rss_mb"] if sa and sb else None
    return {"scale": scale, "n_jobs": n_jobs, "figure": f"peak RSS 2x duration / 1x, {kind}", "unit": "x",
            "sicore": r, "si": sr, "x_si": None, "x_read": None, "target": f"<={TARGET_FLAT:.2f}",
            "status": _status(r <= TARGET_FLAT),
            "note": f"{a['peak_rss_mb']:.0f}->{b['peak_rss_mb']:.0f} MB (growth {a['growth_mb']:.0f}->"
                    f"{b['growth_mb']:.0f})"}


def _mem_note(ours: dict, theirs: dict | None, array_mb: float | None = None) -> str:
    def one(r):
        text = f"peak {r['peak_rss_mb']:.0f} (base {r['baseline_mb']:.0f}"
        if r.get("growth_children_mb") is not None:
            text += f", workers +{r['growth_children_mb']:.0f}"
        return text + f"), tree {r['tree_rss_mb']:.0f}"

    note = "sicore " + one(ours)
    if theirs:
        note += "; SI " + one(theirs)
        if array_mb:
            note += f"; SI growth = {theirs['growth_mb'] / array_mb:.1f}x array"
    return note


def _fmt(value, unit="s"):
    if value is None:
        return "-"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "n":
        return f"{value:d}"
    return f"{value:.3f}"


def print_table(rows: list[dict], header: str) -> str:
    cols = ["figure", "n_jobs", "sicore", "SI", "x SI", "x read", "target", "result", "note"]
    lines = [[r["figure"], str(r["n_jobs"]), _fmt(r["sicore"], r["unit"]), _fmt(r["si"], r["unit"]),
              "-" if r["x_si"] is None else f"{r['x_si']:.2f}x", "-" if r["x_read"] is None else f"{r['x_read']:.2f}x",
              r["target"], r["status"], r["note"]] for r in rows]
    text = format_table(header, cols, lines)
    print(text, flush=True)
    return text


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
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per pass")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a new folder under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (and reuse its data files)")
    parser.add_argument("--json", default=None, help="write rows and raw results to this file")
    args = parser.parse_args(argv)
    ensure_bytecode()

    si_python = None if args.no_reference else resolve_si_python(args.si_python)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="sicore_bench_analyzer_"))
    workdir.mkdir(parents=True, exist_ok=True)
    cache = Cache(args.cache, settle_s=0.0 if args.quick else SETTLE_S)

    def log(msg):
        print(msg, flush=True)

    load_before = machine_load()
    log(f"sicore bench_analyzer: workdir {workdir}, cache {cache.describe()}, python {platform.python_version()}, "
        f"{load_before}, SpikeInterface: {si_python or 'not run'}")
    all_rows, raw, tables = [], {}, []
    try:
        for scale in args.scales:
            channels, seconds, quick_seconds, probe_kind, units = SCALES[scale]
            seconds = args.duration or (quick_seconds if args.quick else seconds)
            log(f"scale {scale}: {channels} ch, {FS / 1000:g} kHz, {seconds:g} s, {units} units ({machine_load()})")
            ds = make_dataset(workdir, scale, channels, seconds, probe_kind, units)
            res = measure_dataset(ds, args.n_jobs, cache, workdir, si_python, args.repeats, args.timeout, log)
            flat = None
            if scale == "A" and not args.no_flatness:
                log(f"scale A2x: {channels} ch, {2 * seconds:g} s (bounded-memory check) ({machine_load()})")
                ds2 = make_dataset(workdir, "A2x", channels, 2 * seconds, probe_kind, units)
                flat = measure_dataset(ds2, args.n_jobs, cache, workdir, si_python, args.repeats, args.timeout, log)
                raw["A2x"] = flat
                if not args.keep:
                    remove(Path(ds2["path"]))
            raw[scale] = res
            if not args.keep:
                remove(Path(ds["path"]))
            rows = build_rows(scale, res, flat)
            all_rows += rows
            tables.append(print_table(rows, f"\n== scale {scale}: {channels} ch x {seconds:g} s "
                                            f"({ds['bytes'] / 1e6:.0f} MB int16, {units} units, {ds['num_spikes']} "
                                            f"spikes), cache {cache.mode}, n_jobs {args.n_jobs} =="))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [r for r in all_rows if r["status"] == "FAIL"]
    load_after = machine_load()
    log(f"\n{len([r for r in all_rows if r['status'] == 'PASS'])} PASS, {len(failed)} FAIL "
        f"(machine {load_before} at start, {load_after} at the end)")
    if args.json:
        meta = {"cache": cache.mode, "cpus": os.cpu_count(), "python": platform.python_version(),
                "si_python": si_python, "quick": args.quick, "scales": args.scales, "n_jobs": args.n_jobs,
                "repeats": args.repeats, "platform": platform.platform(), "load_start": load_before,
                "load_end": load_after}
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": all_rows, "tables": tables, "raw": raw},
                                              indent=1, default=json_default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
