"""Analyzer storage helpers: StackedArrays writes the bytes np.save writes for the concatenation."""

import numpy as np
import pytest

from sicore.analyzer.storage import StackedArrays


@pytest.mark.parametrize("dtype, trailing", [("float32", (7, 3)), ("<i2", (5,)), (">f8", ())])
def test_stacked_arrays_write_the_bytes_of_np_save(tmp_path, monkeypatch, dtype, trailing):
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(n,) + trailing).astype(dtype) for n in (5, 0, 12, 1)]
    monkeypatch.setattr(StackedArrays, "_BLOCK_BYTES", 40)  # several blocks per part, partial last blocks
    stacked = StackedArrays(parts)
    assert stacked.shape == (18,) + trailing and stacked.dtype == np.dtype(dtype)
    stacked.write_npy(tmp_path / "stacked.npy")
    np.save(tmp_path / "expected.npy", np.concatenate(parts).astype(dtype))  # concatenate makes it native
    assert (tmp_path / "stacked.npy").read_bytes() == (tmp_path / "expected.npy").read_bytes()
    np.testing.assert_array_equal(np.asarray(stacked), np.concatenate(parts))


def test_stacked_arrays_refuse_parts_that_do_not_stack():
    with pytest.raises(ValueError, match="parts: at least one"):
        StackedArrays([])
    with pytest.raises(ValueError, match="does not stack"):
        StackedArrays([np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)])
    with pytest.raises(ValueError, match="does not stack"):
        StackedArrays([np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float64)])
