"""Time get_noise_levels (MAD) against reading its chunks once and against SpikeInterface.

Usage::

    python benchmarks/bench_noise_levels.py [--channels 384] [--duration 30] [--dtype int16]
                                            [--si-python /path/to/python-with-spikeinterface]

A raw binary file is written to a temporary folder. SpikeInterface, when an interpreter that has it
is given (or found at $SI_PYTHON), runs in a subprocess on the same file with the same seed, so both
estimate the noise on the same chunks; the largest difference between the two results is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sicore.io.binary import read_binary
from sicore.recording_tools import get_noise_levels, get_random_recording_slices

SI_SCRIPT = """
import json, sys, time, numpy as np
import spikeinterface.core as sc
a = json.loads(sys.argv[1])
rec = sc.read_binary(a["path"], sampling_frequency=a["fs"], dtype=a["dtype"], num_channels=a["channels"],
                     gain_to_uV=0.195, offset_to_uV=0.0)
best = np.inf
for _ in range(a["repeats"]):
    t = time.perf_counter()
    nl = sc.get_noise_levels(rec, return_in_uV=True, method="mad", force_recompute=True,
                             random_slices_kwargs=dict(seed=a["seed"]), n_jobs=1, progress_bar=False)
    best = min(best, time.perf_counter() - t)
np.save(a["out"], nl)
print(best)
"""


def best_time(func, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=384)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--fs", type=float, default=30000.0)
    parser.add_argument("--dtype", default="int16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--si-python", default=os.environ.get("SI_PYTHON", "/tmp/spikeinterface-0.105.3/bin/python"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traces.raw"
        num_samples = int(args.duration * args.fs)
        rng = np.random.default_rng(0)
        data = np.memmap(path, dtype=args.dtype, mode="w+", shape=(num_samples, args.channels))
        step = int(args.fs)
        for start in range(0, num_samples, step):
            block = rng.standard_normal((min(step, num_samples - start), args.channels)) * 20
            data[start : start + step] = block.astype(args.dtype)
        data.flush()
        del data
        rec = read_binary(path, sampling_frequency=args.fs, dtype=args.dtype, num_channels=args.channels,
                          gain_to_uV=0.195, offset_to_uV=0.0)
        slices = get_random_recording_slices(rec, seed=args.seed)
        size_mb = path.stat().st_size / 1e6
        print(f"{args.channels} channels, {args.duration:g} s, {args.dtype}: file {size_mb:.0f} MB, "
              f"{len(slices)} chunks of {slices[0][2] - slices[0][1]} samples")

        def read_file_once():
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass

        def read_chunks_once():
            for seg, s, e in slices:
                np.array(rec.get_traces(segment_index=seg, start_frame=s, end_frame=e))

        read_file_once()  # warm the page cache: all timings are from memory
        timings = {
            "read the whole file once": best_time(read_file_once, args.repeats),
            "read the 20 chunks once (floor)": best_time(read_chunks_once, args.repeats),
        }
        kwargs = dict(seed=args.seed, force_recompute=True, progress_bar=False)
        timings["sicore get_noise_levels n_jobs=1"] = best_time(lambda: get_noise_levels(rec, n_jobs=1, **kwargs),
                                                                args.repeats)
        timings["sicore n_jobs=2 threads"] = best_time(
            lambda: get_noise_levels(rec, n_jobs=2, pool_engine="thread", **kwargs), args.repeats)
        timings["sicore n_jobs=2 processes"] = best_time(lambda: get_noise_levels(rec, n_jobs=2, **kwargs),
                                                         args.repeats)
        ours = get_noise_levels(rec, n_jobs=1, **kwargs)

        si_time = None
        if args.si_python and Path(args.si_python).exists():
            out = Path(tmp) / "si.npy"
            spec = dict(path=str(path), fs=args.fs, dtype=args.dtype, channels=args.channels, seed=args.seed,
                        repeats=args.repeats, out=str(out))
            proc = subprocess.run([args.si_python, "-c", SI_SCRIPT, json.dumps(spec)], capture_output=True, text=True)
            if proc.returncode == 0:
                si_time = float(proc.stdout.strip().splitlines()[-1])
                timings["SpikeInterface get_noise_levels n_jobs=1"] = si_time
                theirs = np.load(out)
                print(f"SpikeInterface vs sicore: max |difference| = {np.max(np.abs(theirs - ours)):.3g} µV "
                      f"(identical: {np.array_equal(theirs, ours)})")
            else:
                print("SpikeInterface run failed:\n" + proc.stderr[-2000:])
        else:
            print("SpikeInterface not run (give --si-python or set SI_PYTHON)")

        floor = timings["read the 20 chunks once (floor)"]
        for name, seconds in timings.items():
            extra = f"  {seconds / floor:5.1f}x floor"
            if si_time is not None:
                extra += f"  {si_time / seconds:5.1f}x faster than SpikeInterface"
            print(f"{name:45s} {seconds * 1000:8.1f} ms{extra}")


if __name__ == "__main__":
    sys.exit(main())
