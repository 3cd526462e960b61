"""Template tools on hand-built templates (known peaks), on sparse templates, on an analyzer-like object,
and against SpikeInterface 0.105.3."""

import json

import numpy as np
import pytest

from reference_env import run_reference
from sicore.sparsity import ChannelSparsity
from sicore.template_tools import (
    _get_dense_templates_array,
    _get_nbefore,
    get_template_amplitudes,
    get_template_extremum_amplitude,
    get_template_extremum_channel,
    get_template_extremum_channel_peak_shift,
)
from sicore.templates import Templates

NBEFORE = 10
CHANNELS = np.array(["c0", "c1", "c2", "c3"])


def _hand_array() -> np.ndarray:
    """3 units, 30 samples, 4 channels, zeros except a few known samples."""
    arr = np.zeros((3, 30, 4), dtype="float32")
    # unit 0: -50 at s12 on c2, -20 at s10 on c1, +30 at s15 on c0
    arr[0, 12, 2], arr[0, 10, 1], arr[0, 15, 0] = -50, -20, 30
    # unit 1: +40 at s9 on c3, -25 at s10 on c0
    arr[1, 9, 3], arr[1, 10, 0] = 40, -25
    # unit 2: -30 at s10 and +12 at s14 on c1, -10 at s10 on c2
    arr[2, 10, 1], arr[2, 14, 1], arr[2, 10, 2] = -30, 12, -10
    return arr


@pytest.fixture
def templates():
    return Templates(_hand_array(), 30000.0, NBEFORE, unit_ids=["a", "b", "c"], channel_ids=CHANNELS)


# expected values, worked out by hand from _hand_array
AMPLITUDES = {
    ("neg", "extremum"): [[0, 20, 50, 0], [25, 0, 0, 0], [0, 30, 10, 0]],
    ("pos", "extremum"): [[30, 0, 0, 0], [0, 0, 0, 40], [0, 12, 0, 0]],
    ("both", "extremum"): [[30, 20, 50, 0], [25, 0, 0, 40], [0, 30, 10, 0]],
    ("neg", "at_index"): [[0, 20, 0, 0], [25, 0, 0, 0], [0, 30, 10, 0]],
    ("both", "at_index"): [[0, 20, 0, 0], [25, 0, 0, 0], [0, 30, 10, 0]],
    ("neg", "peak_to_peak"): [[30, 20, 50, 0], [25, 0, 0, 40], [0, 42, 10, 0]],
}
EXTREMUM_CHANNEL = {"neg": ["c2", "c0", "c1"], "pos": ["c0", "c3", "c1"], "both": ["c2", "c3", "c1"]}
PEAK_SHIFT = {"neg": [2, 0, 0], "pos": [5, -1, 4], "both": [2, -1, 0]}


@pytest.mark.parametrize("peak_sign,mode", list(AMPLITUDES))
def test_amplitudes_by_hand(templates, peak_sign, mode):
    amplitudes = get_template_amplitudes(templates, peak_sign=peak_sign, mode=mode)
    assert list(amplitudes) == ["a", "b", "c"]
    for i, unit_id in enumerate(["a", "b", "c"]):
        np.testing.assert_array_equal(amplitudes[unit_id], AMPLITUDES[(peak_sign, mode)][i])


def test_amplitudes_signed_and_aliases(templates):
    signed = get_template_amplitudes(templates, peak_sign="neg", abs_value=False)
    np.testing.assert_array_equal(signed["a"], [0, -20, -50, 0])
    signed = get_template_amplitudes(templates, peak_sign="pos", mode="at_index", abs_value=False)
    np.testing.assert_array_equal(signed["b"], [-25, 0, 0, 0])
    # SpikeInterface 0.105 spelling
    np.testing.assert_array_equal(get_template_amplitudes(templates, peak_mode="peak_to_peak")["c"], [0, 42, 10, 0])
    with pytest.raises(ValueError, match="disagree"):
        get_template_amplitudes(templates, mode="extremum", peak_mode="at_index")


@pytest.mark.parametrize("peak_sign", ["neg", "pos", "both"])
def test_extremum_channel_and_shift_by_hand(templates, peak_sign):
    ids = get_template_extremum_channel(templates, peak_sign=peak_sign)
    assert list(ids.values()) == EXTREMUM_CHANNEL[peak_sign]
    indices = get_template_extremum_channel(templates, peak_sign=peak_sign, outputs="index")
    assert [CHANNELS[i] for i in indices.values()] == EXTREMUM_CHANNEL[peak_sign]
    shifts = get_template_extremum_channel_peak_shift(templates, peak_sign=peak_sign)
    assert list(shifts.values()) == PEAK_SHIFT[peak_sign]


def test_extremum_channel_other_modes(templates):
    # at_index: |value at nbefore|; unit 0's largest is c1 (-20)
    assert get_template_extremum_channel(templates, mode="at_index")["a"] == "c1"
    assert get_template_extremum_channel(templates, mode="peak_to_peak")["c"] == "c1"


def test_extremum_amplitude_by_hand(templates):
    # default: peak_sign "neg", mode "at_index" on the "neg" extremum channel
    assert get_template_extremum_amplitude(templates) == {"a": 0, "b": 25, "c": 30}
    assert get_template_extremum_amplitude(templates, mode="extremum") == {"a": 50, "b": 25, "c": 30}
    assert get_template_extremum_amplitude(templates, peak_sign="pos", mode="extremum") == {"a": 30, "b": 40, "c": 12}
    assert get_template_extremum_amplitude(templates, peak_sign="both", mode="peak_to_peak") == {"a": 50, "b": 40, "c": 42}
    assert get_template_extremum_amplitude(templates, mode="extremum", abs_value=False) == {"a": -50, "b": -25, "c": -30}


def test_sparse_templates_use_each_units_channels(templates):
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0]], dtype=bool)
    sparse = templates.to_sparse(mask)
    amplitudes = get_template_amplitudes(sparse, peak_sign="both")
    np.testing.assert_array_equal(amplitudes["a"], [30, 20, 50])
    np.testing.assert_array_equal(amplitudes["b"], [25, 40])
    np.testing.assert_array_equal(amplitudes["c"], [30, 10])
    assert get_template_extremum_channel(sparse, peak_sign="both") == {"a": "c2", "b": "c3", "c": "c1"}


class _TemplatesExtension:
    def __init__(self, array, nbefore):
        self.array, self.nbefore = array, nbefore

    def get_templates(self, unit_ids=None, operator="average"):
        assert operator in ("average", "median")
        return self.array if operator == "average" else self.array * 2


class _Analyzer:
    """The analyzer protocol the template tools rely on."""

    def __init__(self, array, nbefore, sparsity=None, return_scaled=True):
        self.unit_ids = np.array(["a", "b", "c"])
        self.channel_ids = CHANNELS
        self.sparsity = sparsity
        self.return_scaled = return_scaled
        self._extensions = {"templates": _TemplatesExtension(array, nbefore)}

    def get_extension(self, name):
        return self._extensions.get(name)


def test_analyzer_protocol_dense():
    analyzer = _Analyzer(_hand_array(), NBEFORE)
    np.testing.assert_array_equal(_get_dense_templates_array(analyzer), _hand_array())
    assert _get_nbefore(analyzer) == NBEFORE
    # defaults work on an analyzer (NOTES: get_template_extremum_amplitude(analyzer))
    assert get_template_extremum_amplitude(analyzer) == {"a": 0, "b": 25, "c": 30}
    assert list(get_template_extremum_channel(analyzer).values()) == EXTREMUM_CHANNEL["neg"]
    assert list(get_template_extremum_channel_peak_shift(analyzer).values()) == PEAK_SHIFT["neg"]
    np.testing.assert_array_equal(get_template_amplitudes(analyzer)["a"], [0, 20, 50, 0])
    np.testing.assert_array_equal(get_template_amplitudes(analyzer, operator="median")["a"], [0, 40, 100, 0])


def test_analyzer_protocol_sparse_restricts_channels():
    # dense templates with energy outside the sparsity: only each unit's channels count
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1]], dtype=bool)
    analyzer = _Analyzer(_hand_array(), NBEFORE, sparsity=ChannelSparsity(mask, ["a", "b", "c"], CHANNELS))
    np.testing.assert_array_equal(get_template_amplitudes(analyzer)["a"], [0, 20])
    assert get_template_extremum_channel(analyzer) == {"a": "c1", "b": "c0", "c": "c1"}
    assert get_template_extremum_channel(analyzer, peak_sign="both") == {"a": "c0", "b": "c0", "c": "c1"}
    assert list(get_template_extremum_channel_peak_shift(analyzer).values()) == [0, 0, 0]


def test_errors(templates):
    with pytest.raises(ValueError, match="peak_sign"):
        get_template_amplitudes(templates, peak_sign="negative")
    with pytest.raises(ValueError, match="peak_sign"):
        get_template_extremum_channel(templates, peak_sign=None)
    with pytest.raises(ValueError, match="mode"):
        get_template_amplitudes(templates, mode="max")
    with pytest.raises(ValueError, match="outputs"):
        get_template_extremum_channel(templates, outputs="name")
    with pytest.raises(TypeError, match="Templates or a SortingAnalyzer"):
        get_template_amplitudes(_hand_array())
    with pytest.raises(ValueError, match="return_scaled"):
        get_template_amplitudes(Templates(_hand_array(), 30000.0, NBEFORE, is_in_uV=False), return_scaled=True)
    no_templates = _Analyzer(_hand_array(), NBEFORE)
    no_templates._extensions.clear()
    with pytest.raises(ValueError, match="'templates' extension"):
        get_template_extremum_amplitude(no_templates)


def test_same_numbers_as_spikeinterface(tmp_path):
    rng = np.random.default_rng(5)
    # realistic-ish templates: a negative trough near nbefore plus noise, on 8 channels
    t = np.arange(60)
    arr = rng.normal(scale=2.0, size=(6, 60, 8)).astype("float32")
    for u in range(6):
        main = rng.integers(0, 8)
        trough = 20 + rng.integers(-3, 4)
        gains = np.exp(-np.abs(np.arange(8) - main))
        arr[u] += (-60 * np.exp(-0.5 * ((t - trough) / 2.0) ** 2))[:, None] * gains[None, :]
        arr[u] += (25 * np.exp(-0.5 * ((t - trough - 8) / 4.0) ** 2))[:, None] * gains[None, :]
    np.save(tmp_path / "arr.npy", arr)
    script = """
import json, warnings
import numpy as np
warnings.simplefilter("ignore")
from spikeinterface.core import Templates
from spikeinterface.core import template_tools as tt
arr = np.load("arr.npy")
t = Templates(arr, 30000., 20, unit_ids=np.arange(6) + 100)
out = {"amplitudes": {}, "extremum_amplitude": {}}
for ps in ["neg", "pos", "both"]:
    for mode in ["extremum", "at_index", "peak_to_peak"]:
        for av in [True, False]:
            a = tt.get_template_amplitudes(t, peak_sign=ps, peak_mode=mode, abs_value=av)
            out["amplitudes"][f"{ps}-{mode}-{av}"] = np.array([a[u] for u in t.unit_ids]).tolist()
        e = tt.get_template_extremum_amplitude(t, peak_sign=ps, peak_mode=mode)
        out["extremum_amplitude"][f"{ps}-{mode}"] = [float(e[u]) for u in t.unit_ids]
out["default_extremum_amplitude"] = [float(v) for v in tt.get_template_extremum_amplitude(t).values()]
out["channel"] = [int(v) for v in tt.get_template_extremum_channel(t, outputs="index").values()]
out["shift"] = [int(v) for v in tt.get_template_extremum_channel_peak_shift(t).values()]
print(json.dumps(out))
"""
    ref = json.loads(run_reference(script, tmp_path))
    ours_t = Templates(arr, 30000.0, 20, unit_ids=np.arange(6) + 100)
    for key, expected in ref["amplitudes"].items():
        ps, mode, av = key.split("-")
        ours = get_template_amplitudes(ours_t, peak_sign=ps, mode=mode, abs_value=av == "True")
        np.testing.assert_allclose(np.array(list(ours.values())), expected, rtol=1e-6, err_msg=key)
    for key, expected in ref["extremum_amplitude"].items():
        ps, mode = key.split("-")
        ours = get_template_extremum_amplitude(ours_t, peak_sign=ps, mode=mode)
        np.testing.assert_allclose(list(ours.values()), expected, rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(list(get_template_extremum_amplitude(ours_t).values()),
                               ref["default_extremum_amplitude"], rtol=1e-6)
    # SpikeInterface 0.105.3 finds the extremum channel and shift of Templates with peak_sign "both"
    # whatever is asked; on these negative-trough templates "neg" and "both" agree.
    for ps in ("neg", "both"):
        assert list(get_template_extremum_channel(ours_t, peak_sign=ps, outputs="index").values()) == ref["channel"]
        assert list(get_template_extremum_channel_peak_shift(ours_t, peak_sign=ps).values()) == ref["shift"]
