"""Keeps benchmarks/bench_io.py working: a tiny run without the SpikeInterface comparison."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_io.py"


def test_bench_io_quick_runs(tmp_path):
    out = tmp_path / "out.json"
    workdir = tmp_path / "work"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--duration", "3", "--no-reference", "--scales", "A", "--n-jobs", "2",
         "--cache", "warm", "--workdir", str(workdir), "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert elapsed < 20, f"smoke run took {elapsed:.1f} s"
    assert "save(format='binary')" in proc.stdout
    result = json.loads(out.read_text())
    rows = result["rows"]
    figures = {(r["figure"], r["n_jobs"]) for r in rows}
    for n_jobs in (2,):  # n_jobs=2: worker processes, the path with most to break
        for figure in ("save(format='binary')", "save(format='zarr')", "zarr compression ratio",
                       "get_noise_levels (MAD, uV)", "peak RSS, save binary", "peak RSS 2x duration / 1x, save zarr"):
            assert (figure, n_jobs) in figures
    for r in rows:
        if r["figure"].startswith("save("):
            assert r["note"].endswith("copy checked, probe kept"), r  # the copies equal the source, keep the probe
        if r["figure"] == "zarr compression ratio":
            assert 1.5 < r["sicore"] < 2.5  # sigma = 5 counts int16 noise compresses about 2x
    assert result["meta"]["cache"] == "warm"
    assert not workdir.exists()  # scratch removed without --keep


BENCH_ANALYZER = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_analyzer.py"


def test_bench_analyzer_quick_runs(tmp_path):
    """benchmarks/bench_analyzer.py: a tiny run (scale A, 3 s, n_jobs=2) without SpikeInterface."""
    out = tmp_path / "out.json"
    workdir = tmp_path / "work"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(BENCH_ANALYZER), "--quick", "--duration", "3", "--no-reference", "--scales", "A",
         "--n-jobs", "2", "--cache", "warm", "--workdir", str(workdir), "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert elapsed < 20, f"smoke run took {elapsed:.1f} s"
    assert "create_sorting_analyzer(sparse=True)" in proc.stdout
    result = json.loads(out.read_text())
    figures = {(r["figure"], r["n_jobs"]): r for r in result["rows"]}
    for figure in ("create_sorting_analyzer(sparse=True)", "compute('waveforms')", "waveforms: peak RSS growth",
                   "compute('templates') from recording", "peak RSS 2x duration / 1x, waveforms"):
        assert (figure, 2) in figures, figure
    load = figures[("load: RSS growth", "-")]
    assert load["status"] == "PASS", load  # waveforms come back memory-mapped, the load costs no memory
    raw = result["raw"]["A"]
    waveforms = raw["runs"]["2"]["sicore_waveforms"]
    assert waveforms["dtype"] == "float32" and waveforms["shape"][1] == 90  # 1 ms + 2 ms at 30 kHz
    assert 0 < waveforms["shape"][2] < 32  # sparse: the injected units are local
    assert waveforms["file_bytes"] >= waveforms["array_bytes"]
    assert raw["runs"]["2"]["sicore_create"]["max_channels"] == waveforms["shape"][2]
    assert not workdir.exists()  # scratch removed without --keep


BENCH_WORKFLOW = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_workflow.py"


def test_bench_workflow_quick_runs(tmp_path):
    """benchmarks/bench_workflow.py: small end-to-end run, per-job overhead, 5-session no-op rerun, no SI."""
    out = tmp_path / "out.json"
    workdir = tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, str(BENCH_WORKFLOW), "--quick", "--no-reference", "--workdir", str(workdir),
         "--json", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    assert "no-op rerun" in proc.stdout
    result = json.loads(out.read_text())
    raw = result["raw"]
    assert raw["end_to_end"]["workflow_jobs"] == 9  # every rule ran, report included
    assert raw["end_to_end"].get("si_wall") is None  # no reference
    assert raw["overhead"]["jobs"] == 9 and raw["overhead"]["rules_sum"] > 0
    assert raw["noop"]["sessions"] == 5 and raw["noop"]["outputs"] == 45
    assert {r["figure"].split(",")[0] for r in result["rows"]} >= {"end to end", "tiny session"}
    assert not workdir.exists()  # scratch removed without --keep
