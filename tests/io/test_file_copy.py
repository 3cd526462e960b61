"""copy_range: the bytes of the given ranges, through a buffer smaller than the copy; short sources are an error."""

import os

import numpy as np
import pytest

from sicore.io import file_copy
from sicore.io.file_copy import copy_range


@pytest.fixture
def mode(monkeypatch):
    monkeypatch.setattr(file_copy, "_BUFFER", 4096)  # many reads through the one buffer


def test_copy_range_offsets(tmp_path, mode):
    data = np.random.default_rng(0).integers(0, 256, size=100_003, dtype=np.uint8).tobytes()
    (tmp_path / "src").write_bytes(data)
    target = tmp_path / "dst"
    target.write_bytes(b"\xff" * 10)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(target, os.O_WRONLY)
    try:
        copy_range(src, dst, 50_000, source_offset=7, target_offset=10)
        copy_range(src, dst, 43_000, source_offset=50_007, target_offset=50_010)
    finally:
        os.close(src)
        os.close(dst)
    out = target.read_bytes()
    assert out[:10] == b"\xff" * 10
    assert out[10:] == data[7:93_007]


def test_copy_range_short_source(tmp_path, mode):
    (tmp_path / "src").write_bytes(b"abc")
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(ValueError, match="short file"):
            copy_range(src, dst, 10)
    finally:
        os.close(src)
        os.close(dst)
