"""Pieces shared by the benchmarks: test data, floors, memory measurement, page-cache control, tables.

The approach is the one of ``bench_io.py`` (which keeps its own copies for now): an int16 raw binary
file of generated noise (sigma = 5 counts, truncated to int16) written in 1 s blocks with a probe file
next to it; every measured pass runs in its own fresh subprocess so its peak memory is its own; the
floor is reading the file once in 1 s chunks (``readinto`` a reused buffer) in the same run.

Peak memory inside a pass process:

* ``vm_hwm_kb()`` / ``vm_rss_kb()``: this process's high-water mark and current resident size
  (``/proc/self/status``; ``ru_maxrss`` would also count the resident size of the parent before exec);
* ``reset_peak_rss()``: restarts the high-water mark (``echo 5 > /proc/self/clear_refs``), so a pass
  that does some set-up first (opening the recording, loading an analyzer) can measure only its timed
  call; returns False when the kernel refuses (then the mark includes the set-up);
* ``rusage_children_kb()``: largest ``ru_maxrss`` of the waited-for child processes (pool workers).

Outside: ``TreeMemorySampler`` samples the summed RSS and anonymous RSS of a process tree every 25 ms.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_SI_PYTHON = os.environ.get("SI_PYTHON", str(Path(tempfile.gettempdir()) / "spikeinterface-0.105.3" / "bin" /
                                                  "python"))
FS = 30000.0
GAIN_TO_UV = 0.195  # Neuropixels-like gain: results in uV go through the scaling path
NOISE_SIGMA = 5.0


# ============================================================================ inside a pass process
def _status_field_kb(field: str, pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def vm_hwm_kb() -> int:
    """This process's resident high-water mark (kB) since its exec or the last ``reset_peak_rss``."""
    value = _status_field_kb("VmHWM")
    return value or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def vm_rss_kb() -> int:
    """This process's current resident size (kB)."""
    return _status_field_kb("VmRSS")


def reset_peak_rss() -> bool:
    """Restart this process's high-water mark at its current RSS (Linux >= 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5\n")
        return True
    except OSError:
        return False


def rusage_children_kb() -> int:
    """Largest ``ru_maxrss`` (kB) of the waited-for child processes (e.g. a process pool's workers)."""
    return int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


# Memory a run frees is handed back to the hypervisor about 2 s later (virtio-balloon free page
# reporting on these VMs); writing a few GB right after a big free reuses still-backed pages and runs
# about 2x faster than a few seconds later (cp of 2.7 GB: 0.8-1.3 s against 1.6-2.5 s, measured). Every
# timed run therefore starts this long after the previous run's outputs were deleted, whoever runs.
SETTLE_S = 5.0


def ensure_bytecode() -> None:
    """Compile sicore's modules once, as an installed package has them: an editable install has no
    bytecode, and with PYTHONDONTWRITEBYTECODE set (as on this project's machines) every job process
    would otherwise compile sicore again, while SpikeInterface, installed by pip, comes compiled."""
    import compileall

    import sicore

    compileall.compile_dir(str(Path(sicore.__file__).parent), quiet=1)


def settle_memory(seconds: float = SETTLE_S) -> None:
    """Wait until the memory freed by the previous run is no longer backed (the same start for every run)."""
    time.sleep(seconds)


def read_once(path: str, chunk_bytes: int) -> int:
    """Read a file once, ``chunk_bytes`` at a time, into one reused buffer (the floor); returns bytes read."""
    buf = bytearray(chunk_bytes)
    view = memoryview(buf)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(view)
            if not n:
                break
            total += n
    return total


# ============================================================================ parent side
def status_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of a process in kB (zeros when it is gone)."""
    rss = anon = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
    except OSError:
        pass
    return rss, anon


def _children(pid: int) -> list[int]:
    """Descendants of ``pid`` (from /proc/<pid>/task/*/children; no psutil needed)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


class TreeMemorySampler:
    """Samples the summed RSS (and anonymous RSS) of a process and its descendants."""

    def __init__(self, pid: int, interval: float = 0.025):
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.peak_anon = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            rss = anon = 0
            for p in [self.pid] + _children(self.pid):
                r, a = status_kb(p)
                rss += r
                anon += a
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_anon = max(self.peak_anon, anon)
            self._stop.wait(self.interval)


class Cache:
    """Puts the page cache in the same state before every pass.

    ``cold`` drops it (``/proc/sys/vm/drop_caches``, needs the right to write there); ``warm`` reads the
    source file once so every pass starts from memory; ``auto`` is cold when dropping works, else warm.
    """

    def __init__(self, mode: str = "auto", settle_s: float = SETTLE_S):
        self.settle_s = settle_s  # 0 for smoke runs (--quick), whose figures mean nothing
        self.can_drop = self._try_drop()
        if mode == "auto":
            mode = "cold" if self.can_drop else "warm"
        if mode == "cold" and not self.can_drop:
            raise SystemExit("--cache cold needs write access to /proc/sys/vm/drop_caches (root); use --cache warm")
        self.mode = mode

    @staticmethod
    def _try_drop() -> bool:
        try:
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            return True
        except OSError:
            return False

    def prepare(self, source: str, chunk_bytes: int) -> None:
        os.sync()  # write back the previous pass's outputs outside any timer
        settle_memory(self.settle_s)
        if self.mode == "cold":
            self._try_drop()
        else:
            read_once(source, chunk_bytes)

    def describe(self) -> str:
        return ("cold (page cache dropped before every pass)" if self.mode == "cold"
                else "warm (source file read once before every pass)")


def run_json_subprocess(cmd: list[str], cwd: Path, marker: str = "BENCH_RESULT ", timeout: float | None = None,
                        what: str = "pass") -> dict:
    """Run ``cmd`` (which prints one ``marker + json`` line) while sampling its process tree's memory.

    Adds ``tree_rss_mb`` and ``tree_anon_mb`` (sampled peaks of the summed RSS / anonymous RSS).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    with TreeMemorySampler(proc.pid) as sampler:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            raise RuntimeError(f"{what} timed out after {timeout} s:\n{stderr[-4000:]}")
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{stderr[-4000:]}")
    lines = [ln for ln in stdout.splitlines() if ln.startswith(marker)]
    if not lines:
        raise RuntimeError(f"{what} printed no result:\n{stdout[-2000:]}\n{stderr[-4000:]}")
    result = json.loads(lines[-1][len(marker):])
    result["tree_rss_mb"] = sampler.peak_rss / 1024
    result["tree_anon_mb"] = sampler.peak_anon / 1024
    return result


def resolve_si_python(path: str | None) -> str:
    """The reference SpikeInterface interpreter: ``path`` when it exists, else ``tests/reference_env.py``'s."""
    if path and Path(path).exists():
        return path
    try:
        sys.path.insert(0, str(REPO / "tests"))
        from reference_env import reference_python  # creates the environment when missing

        return reference_python()
    except BaseException as err:  # pytest.skip raises a BaseException subclass
        raise SystemExit(f"SpikeInterface 0.105.3 environment not found ({err}); give --si-python or "
                         "use --no-reference")


# ============================================================================ data
def nw_probe(channels: int, kind: str):
    """A ProbeGroup: ``"linear"`` (one column, 20 um pitch) or ``"np1"`` (Neuropixels 1.0-like, 4 staggered
    columns 16 um apart, 40 um pitch per column, every other column shifted by 20 um)."""
    import probeinterface as pi

    if kind == "linear":
        probe = pi.generate_linear_probe(num_elec=channels, ypitch=20, contact_shapes="square",
                                         contact_shape_params={"width": 12})
    else:
        if channels % 4:
            raise ValueError("the Neuropixels-like layout needs a multiple of 4 channels")
        probe = pi.generate_multi_columns_probe(num_columns=4, num_contact_per_column=channels // 4, xpitch=16,
                                                ypitch=40, y_shift_per_column=[20, 0, 20, 0],
                                                contact_shapes="square", contact_shape_params={"width": 12})
    probe.set_device_channel_indices(np.arange(channels))
    group = pi.ProbeGroup()
    group.add_probe(probe)
    return group


def write_noise_int16(path: Path, num_samples: int, channels: int, seed: int, add_to_block=None,
                      block_samples: int = int(FS)) -> None:
    """Write ``(num_samples, channels)`` int16 noise (sigma = NOISE_SIGMA counts, truncated toward zero).

    ``add_to_block(block, start)``, when given, adds signal to each float32 block (rows ``start`` ...) before
    the conversion, e.g. spikes.
    """
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        for start in range(0, num_samples, block_samples):
            n = min(block_samples, num_samples - start)
            block = rng.standard_normal((n, channels), dtype=np.float32)
            block *= NOISE_SIGMA
            if add_to_block is not None:
                add_to_block(block, start)
            np.clip(block, -32768, 32767, out=block)
            block.astype(np.int16).tofile(f)  # astype truncates toward zero, as SI's generated int16 data


def remove(path: Path) -> None:
    """Remove a file or folder (and a ``.zarr`` sibling) if present."""
    path = Path(path)
    for p in (path, path.with_name(path.name + ".zarr")):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


def ratio(a, b):
    """a / b, None when either is missing or b is 0."""
    return None if a is None or b is None or b == 0 else a / b


def format_table(header: str, columns: list[str], lines: list[list[str]]) -> str:
    """A plain-text table (columns padded to their widest cell)."""
    widths = [max(len(c), *(len(l[i]) for l in lines)) if lines else len(c) for i, c in enumerate(columns)]
    text = [header, " | ".join(c.ljust(w) for c, w in zip(columns, widths)), "-+-".join("-" * w for w in widths)]
    for l in lines:
        text.append(" | ".join(v.ljust(w) for v, w in zip(l, widths)))
    return "\n".join(text)


def machine_load() -> str:
    """``uptime``-style load averages and CPU count, to print with the results."""
    try:
        one, five, fifteen = os.getloadavg()
        return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"
    except OSError:
        return f"{os.cpu_count()} CPUs"


def timed(func, *args, **kwargs):
    """(result, seconds) of one call."""
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - t0
