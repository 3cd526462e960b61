"""Analyzer storage helpers: StackedArrays writes the bytes np.save writes for the concatenation; an
ExtensionStage gives .npy files that a pass fills in place."""

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


# ------------------------------------------------------------------------------ ExtensionStage
def test_stage_arrays_are_npy_files_written_in_place(tmp_path):
    from sicore.analyzer.storage import ExtensionStage, file_backing

    stage = ExtensionStage(tmp_path)
    array = stage.new_array("waveforms", (6, 4, 3), "<f4")
    assert isinstance(array, np.memmap) and not array.any()
    path, offset = file_backing(array)
    values = np.arange(72, dtype="<f4").reshape(6, 4, 3)
    with open(path, "r+b") as f:  # what a worker process does: write rows into the file
        f.seek(offset + 2 * 12 * 4)
        f.write(values[2:5].tobytes())
    expected = np.zeros_like(values)
    expected[2:5] = values[2:5]
    np.testing.assert_array_equal(array, expected)  # the mapping sees the file
    np.save(tmp_path / "expected.npy", expected)
    assert (tmp_path / "waveforms.npy").read_bytes() == (tmp_path / "expected.npy").read_bytes()


def test_stage_keeps_only_the_arrays_the_data_holds(tmp_path):
    from sicore.analyzer.storage import ExtensionStage

    stage = ExtensionStage(tmp_path)
    kept = stage.new_array("kept", (3, 2), "int16")
    stage.new_array("dropped", (3, 2), "int16")
    replaced = stage.new_array("replaced", (3, 2), "int16")
    data = {"kept": kept, "replaced": np.array(replaced)}
    assert list(stage.keep_only(data)) == ["kept"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.npy"]


def test_stage_empty_arrays_and_bad_keys(tmp_path):
    from sicore.analyzer.storage import ExtensionStage, file_backing

    stage = ExtensionStage(tmp_path)
    empty = stage.new_array("waveforms", (0, 5, 2), "float32")
    assert type(empty) is np.ndarray and empty.shape == (0, 5, 2) and file_backing(empty) is None
    assert not list(tmp_path.iterdir())  # an empty file cannot be mapped: np.save writes it at save time
    with pytest.raises(ValueError, match="key must be"):
        stage.new_array("../escape", (2,), "float32")


def test_file_backing_only_for_whole_writable_mappings(tmp_path):
    from sicore.analyzer.storage import file_backing

    array = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype="float32", shape=(4, 3))
    assert file_backing(array) == (str(tmp_path / "a.npy"), array.offset)
    assert file_backing(array[1:]) is None  # a view: its rows do not start at the offset
    assert file_backing(np.load(tmp_path / "a.npy", mmap_mode="r")) is None  # read-only
    assert file_backing(np.zeros((4, 3), np.float32)) is None
