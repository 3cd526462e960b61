"""Templates: construction, dense/sparse views, selections, locations and JSON round trips."""

import dataclasses
import json

import numpy as np
import probeinterface as pi
import pytest

from sicore.sparsity import ChannelSparsity
from sicore.templates import Templates
from reference_env import run_reference


def _probe(num_channels: int, wiring=None) -> pi.Probe:
    probe = pi.Probe(ndim=2, si_units="um")
    probe.set_contacts(np.c_[np.zeros(num_channels), np.arange(num_channels) * 20.0], shapes="circle",
                       shape_params={"radius": 5})
    probe.set_device_channel_indices(np.arange(num_channels) if wiring is None else wiring)
    return probe


@pytest.fixture
def dense_array():
    rng = np.random.default_rng(7)
    return rng.normal(size=(3, 40, 5)).astype("float32")


@pytest.fixture
def mask():
    return np.array([[1, 1, 0, 0, 0], [0, 1, 1, 1, 0], [0, 0, 0, 1, 1]], dtype=bool)


def test_dense_attributes_and_defaults(dense_array):
    t = Templates(dense_array, 30000.0, 10)
    assert (t.num_units, t.num_samples, t.num_channels) == (3, 40, 5)
    assert t.nafter == 30
    assert t.ms_before == pytest.approx(10 / 30.0)
    assert t.ms_after == pytest.approx(30 / 30.0)
    np.testing.assert_array_equal(t.unit_ids, np.arange(3))
    np.testing.assert_array_equal(t.channel_ids, np.arange(5))
    assert not t.are_templates_sparse() and t.sparsity is None
    assert t.is_in_uV and t.is_scaled
    assert t.get_dense_templates() is t.templates_array
    np.testing.assert_array_equal(t.get_one_template_dense(1), dense_array[1])


def test_is_scaled_alias(dense_array):
    assert Templates(dense_array, 30000.0, 10, is_scaled=False).is_in_uV is False
    assert Templates(dense_array, 30000.0, 10, is_in_uV=False).is_scaled is False
    with pytest.raises(ValueError, match="disagree"):
        Templates(dense_array, 30000.0, 10, is_in_uV=True, is_scaled=False)


def test_sparse_templates_densify(dense_array, mask):
    sparsity = ChannelSparsity(mask, [10, 20, 30], list("abcde"))
    dense = Templates(dense_array, 30000.0, 10, unit_ids=[10, 20, 30], channel_ids=list("abcde"))
    sparse = dense.to_sparse(sparsity)
    assert sparse.are_templates_sparse()
    assert sparse.templates_array.shape == (3, 40, 3)
    assert sparse.num_channels == 5
    expected = dense_array * mask[:, None, :]
    np.testing.assert_array_equal(sparse.get_dense_templates(), expected)
    np.testing.assert_array_equal(sparse.get_one_template_dense(2), expected[2])
    # unit 0 has 2 active channels: its row is padded with zeros
    np.testing.assert_array_equal(sparse.templates_array[0, :, 2], 0)
    np.testing.assert_array_equal(sparse.to_dense().templates_array, expected)
    assert sparse.sparsity == sparsity


def test_inconsistent_sparsity_is_an_error(dense_array, mask):
    with pytest.raises(ValueError, match="not sparse"):
        Templates(dense_array, 30000.0, 10, sparsity_mask=mask)
    with pytest.raises(ValueError, match="sparsity_mask"):
        Templates(dense_array, 30000.0, 10, sparsity_mask=mask[:2])


def test_bad_inputs(dense_array):
    with pytest.raises(ValueError, match="3-d"):
        Templates(dense_array[0], 30000.0, 10)
    with pytest.raises(ValueError, match="unit_ids"):
        Templates(dense_array, 30000.0, 10, unit_ids=[1, 2])
    with pytest.raises(ValueError, match="channel_ids"):
        Templates(dense_array, 30000.0, 10, channel_ids=[1, 2])
    with pytest.raises(ValueError, match="nbefore"):
        Templates(dense_array, 30000.0, 41)
    with pytest.raises(ValueError, match="sampling_frequency"):
        Templates(dense_array, -1.0, 10)


def test_select_units_and_channels(dense_array, mask):
    t = Templates(dense_array, 30000.0, 10, unit_ids=["u0", "u1", "u2"], channel_ids=list("abcde"), probe=_probe(5))
    sub = t.select_units(["u2", "u0"])
    np.testing.assert_array_equal(sub.templates_array, dense_array[[2, 0]])
    np.testing.assert_array_equal(sub.unit_ids, ["u2", "u0"])
    with pytest.raises(KeyError, match="unit_ids"):
        t.select_units(["nope"])

    chans = t.select_channels(["d", "b"])
    np.testing.assert_array_equal(chans.templates_array, dense_array[:, :, [3, 1]])
    np.testing.assert_array_equal(chans.channel_ids, ["d", "b"])
    np.testing.assert_allclose(chans.get_channel_locations(), [[0, 60], [0, 20]])

    sparse = t.to_sparse(mask)
    sub_sparse = sparse.select_units(["u1"])
    np.testing.assert_array_equal(sub_sparse.sparsity_mask, mask[[1]])
    np.testing.assert_array_equal(sub_sparse.get_dense_templates()[0], dense_array[1] * mask[1])
    with pytest.raises(ValueError, match="dense"):
        sparse.select_channels(["a"])


def test_channel_locations_follow_wiring(dense_array):
    # contact i wired to channel wiring[i]: channel c sits at the contact wired to it
    wiring = np.array([2, 0, 1, 4, 3])
    t = Templates(dense_array, 30000.0, 10, probe=_probe(5, wiring))
    locations = t.get_channel_locations()
    expected = np.zeros((5, 2))
    expected[wiring] = np.c_[np.zeros(5), np.arange(5) * 20.0]
    np.testing.assert_allclose(locations, expected)
    with pytest.raises(ValueError, match="probe"):
        Templates(dense_array, 30000.0, 10).get_channel_locations()


def test_dict_and_json_round_trips(dense_array, mask):
    t = Templates(dense_array, 30000.0, 10, unit_ids=[5, 6, 7], channel_ids=list("abcde"), probe=_probe(5),
                  is_in_uV=False).to_sparse(mask)
    assert Templates.from_dict(t.to_dict()) == t
    text = t.to_json()
    json.loads(text)  # plain JSON, nothing pickled
    back = Templates.from_json(text)
    assert back == t
    assert back.templates_array.dtype == np.float32
    assert back.is_in_uV is False
    np.testing.assert_array_equal(back.unit_ids, [5, 6, 7])
    np.testing.assert_allclose(back.get_channel_locations(), t.get_channel_locations())


def test_dataclass_replace(dense_array):
    t = Templates(dense_array, 30000.0, 10, unit_ids=[4, 5, 6])
    shifted = dataclasses.replace(t, nbefore=12)
    assert shifted.nbefore == 12 and shifted.nafter == 28
    np.testing.assert_array_equal(shifted.unit_ids, [4, 5, 6])
    assert "templates_array" in [f.name for f in dataclasses.fields(Templates)]


def test_equality(dense_array):
    a = Templates(dense_array, 30000.0, 10)
    assert a == Templates(dense_array.copy(), 30000.0, 10)
    assert a != Templates(dense_array, 30000.0, 11)
    assert a != Templates(dense_array + 1, 30000.0, 10)
    assert a != "templates"


def test_main_channels(dense_array):
    arr = np.zeros((2, 20, 4), dtype="float32")
    arr[0, 5, 2] = -10
    arr[1, 7, 1] = 8
    t = Templates(arr, 30000.0, 5, channel_ids=list("wxyz"))
    np.testing.assert_array_equal(t.get_main_channels(), [2, 1])
    assert t.get_main_channels(outputs="id", with_dict=True) == {0: "y", 1: "x"}


def test_repr_matches_spikeinterface(tmp_path, dense_array, mask):
    np.save(tmp_path / "arr.npy", dense_array)
    np.save(tmp_path / "mask.npy", mask)
    script = """
import numpy as np
from spikeinterface.core import Templates, ChannelSparsity
arr = np.load("arr.npy"); mask = np.load("mask.npy")
t = Templates(arr, 30000., 10)
print(repr(t)); print("@@")
s = ChannelSparsity(mask, np.arange(3), np.arange(5))
print(repr(t.to_sparse(s)))
"""
    out = run_reference(script, tmp_path)
    dense_repr, sparse_repr = (part.strip() for part in out.split("@@"))
    t = Templates(dense_array, 30000.0, 10)
    assert repr(t).strip() == dense_repr
    assert repr(t.to_sparse(mask)).strip() == sparse_repr
