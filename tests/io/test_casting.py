"""cast_traces: rounding half to even and saturating, checked against numpy."""

import numpy as np
import pytest

from sicore.io.casting import cast_traces


@pytest.mark.parametrize("target", ["int8", "uint8", "int16", "uint16", "int32", "int64"])
@pytest.mark.parametrize("source", ["float32", "float64"])
def test_float_to_int_matches_numpy_rint_and_clip(source, target):
    rng = np.random.default_rng(3)
    info = np.iinfo(target)
    values = np.concatenate([rng.uniform(-3e4, 3e4, 500), np.arange(-10.5, 10.5, 0.5),
                             [float(info.min) - 5, float(info.max) + 5, 1e30, -1e30]]).astype(source)
    if target == "int64":  # float64 cannot represent int64's bounds: numpy's clip+astype is no reference there
        values = values[np.abs(values.astype(float)) < 2**62]
    traces = values.reshape(-1, 1)
    expected = np.clip(np.rint(traces.astype("float64")), info.min, info.max).astype(target)
    result = cast_traces(traces, np.dtype(target))
    assert result.dtype == np.dtype(target) and result.flags.c_contiguous
    np.testing.assert_array_equal(result, expected)


def test_int64_saturates_at_its_bounds():
    result = cast_traces(np.array([[1e19, -1e19, 9.3e18]]), np.dtype("int64"))
    np.testing.assert_array_equal(result, [[np.iinfo("int64").max, np.iinfo("int64").min, np.iinfo("int64").max]])


def test_half_to_even():
    np.testing.assert_array_equal(cast_traces(np.array([[0.5, 1.5, 2.5, -0.5, -1.5]]), np.dtype("int16")),
                                  [[0, 2, 2, 0, -2]])


@pytest.mark.parametrize(("source", "target"), [("int32", "int16"), ("int16", "uint8"), ("uint16", "int16"),
                                                ("int64", "uint64"), ("uint64", "int64")])
def test_int_narrowing_saturates(source, target):
    src, tgt = np.iinfo(source), np.iinfo(target)
    values = np.array([[src.min, -1 if src.min < 0 else 0, 0, 1, src.max]], dtype=source)
    expected = np.clip(values.astype(object), tgt.min, tgt.max).astype(target)
    np.testing.assert_array_equal(cast_traces(values, np.dtype(target)), expected)


def test_widening_and_float_targets_are_exact():
    traces = np.array([[-32768, 32767]], dtype="int16")
    np.testing.assert_array_equal(cast_traces(traces, np.dtype("int32")), traces.astype("int32"))
    np.testing.assert_array_equal(cast_traces(traces, np.dtype("float32")), traces.astype("float32"))
    assert cast_traces(traces, np.dtype("int16")) is traces


def test_nan_is_an_error_naming_the_chunk():
    with pytest.raises(ValueError, match="segment 2.*NaN"):
        cast_traces(np.array([[np.nan]]), np.dtype("int16"), where="segment 2 frames [0, 1)")
