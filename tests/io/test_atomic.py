"""Atomic saves: a save killed mid-way (SIGKILL) or failing leaves no folder that loads as complete."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sicore.io import CorruptFolderError, load_extractor, save_recording
from sicore.io.atomic import TMP_MARK, atomic_folder
from sicore.numpy_objects import NumpyRecording

SLOW_SAVE = """
import sys, time
import numpy as np
from sicore.numpy_objects import NumpyRecording
from sicore.io import save_recording

class SlowRecording(NumpyRecording):
    calls = 0

    def get_traces(self, *args, **kwargs):
        SlowRecording.calls += 1
        if SlowRecording.calls == 20:
            print("writing", flush=True)  # the parent kills the save now: 20 of 400 chunks are done
        time.sleep(0.02)
        return super().get_traces(*args, **kwargs)

rec = SlowRecording([np.full((400_000, 16), 7, dtype="int16")], sampling_frequency=20000.0)
save_recording(rec, folder=sys.argv[1], format=sys.argv[2], chunk_size=1000, progress_bar=False, overwrite=True)
"""


def _kill_mid_save(target: Path, fmt: str) -> None:
    """Start a slow save in a subprocess and SIGKILL it once it has written some chunks."""
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(target), fmt], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # blocks until 20 chunks are written (or the process dies)
        assert line.strip() == "writing", proc.stderr.read()
        assert [p for p in target.parent.iterdir() if TMP_MARK in p.name], "no temporary folder while saving"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("fmt", ["binary", "zarr"])
def test_killed_save_leaves_nothing_loadable(tmp_path, fmt):
    target = tmp_path / ("rec.zarr" if fmt == "zarr" else "rec")
    _kill_mid_save(target, fmt)
    assert not target.exists()
    with pytest.raises(FileNotFoundError):
        load_extractor(target)
    leftovers = [p for p in tmp_path.iterdir() if TMP_MARK in p.name]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".")  # hidden, never the target
    with pytest.raises((CorruptFolderError, FileNotFoundError)):
        load_extractor(leftovers[0])


def test_killed_overwrite_keeps_the_previous_folder(tmp_path):
    target = tmp_path / "rec"
    old = NumpyRecording([np.arange(300, dtype="int16").reshape(100, 3)], sampling_frequency=1000.0)
    save_recording(old, folder=target, progress_bar=False)
    _kill_mid_save(target, "binary")
    kept = load_extractor(target)
    np.testing.assert_array_equal(kept.get_traces(), old.get_traces())


def test_failing_overwrite_keeps_the_previous_folder(tmp_path):
    target = tmp_path / "rec"
    old = NumpyRecording([np.ones((50, 2), dtype="float32")], sampling_frequency=1000.0)
    save_recording(old, folder=target, progress_bar=False)
    bad = NumpyRecording([np.full((50, 2), np.nan, dtype="float32")], sampling_frequency=1000.0)
    with pytest.raises(ValueError, match="NaN"):
        save_recording(bad, folder=target, dtype="int16", overwrite=True, progress_bar=False)
    np.testing.assert_array_equal(load_extractor(target).get_traces(), old.get_traces())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_atomic_folder_renames_only_on_success(tmp_path):
    with atomic_folder(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("x")
        assert not (tmp_path / "out").exists()
    assert (tmp_path / "out" / "a.txt").read_text() == "x"
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "out2"):
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="not a folder"):
        with atomic_folder(tmp_path / "file", overwrite=True):
            pass
