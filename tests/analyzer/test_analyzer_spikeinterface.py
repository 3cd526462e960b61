"""Compatibility with SpikeInterface 0.105.3, both ways, run in the reference environment (subprocess).

* analyzers written by sicore (binary_folder and zarr) load in SI's ``load_sorting_analyzer`` with the
  recording and identical extension arrays;
* analyzers written by SI load in sicore with identical arrays, and sicore recomputes the same random
  spikes and waveforms (and templates up to rounding) on SI's data.
"""

import numpy as np

from sicore.analyzer import create_sorting_analyzer, load_sorting_analyzer
from sicore.io.binary_folder import write_binary_folder

from analyzer_data import make_pair
from reference_env import run_reference

QUIET = {"progress_bar": False}
ALL = ["random_spikes", "waveforms", "templates", "noise_levels"]

_DUMP = """
import numpy as np, spikeinterface.core as si
out = {{}}
for fmt in {folders!r}:
    an = si.load_sorting_analyzer(fmt)
    out[fmt + "::has_recording"] = np.array(an.has_recording())
    out[fmt + "::unit_ids"] = np.asarray(an.unit_ids).astype(str)
    out[fmt + "::mask"] = an.sparsity.mask
    for name in an.get_loaded_extension_names():
        for key, value in an.get_extension(name).data.items():
            out[fmt + "::" + name + "::" + key] = np.asarray(value)
np.savez("dump.npz", **out)
"""


def test_sicore_analyzers_load_in_spikeinterface(tmp_path):
    recording, sorting, *_ = make_pair()
    recording = write_binary_folder(recording, tmp_path / "rec", progress_bar=False)
    analyzers = {}
    for fmt, name in (("binary_folder", "an"), ("zarr", "an.zarr")):
        analyzer = create_sorting_analyzer(sorting, recording, format=fmt, folder=tmp_path / name, radius_um=30)
        analyzer.compute(ALL, extension_params={"noise_levels": {"random_slices_kwargs": {"chunk_size": 500}}},
                         **QUIET)
        analyzers[name] = analyzer
    run_reference(_DUMP.format(folders=list(analyzers)), cwd=tmp_path)
    dump = np.load(tmp_path / "dump.npz")
    for name, analyzer in analyzers.items():
        assert bool(dump[f"{name}::has_recording"])
        assert list(dump[f"{name}::unit_ids"]) == [str(u) for u in analyzer.unit_ids]
        np.testing.assert_array_equal(dump[f"{name}::mask"], analyzer.sparsity.mask)
        for ext in ALL:
            for key, value in analyzer.get_extension(ext).data.items():
                got = dump[f"{name}::{ext}::{key}"]
                assert got.dtype == np.asarray(value).dtype, (name, ext, key)
                np.testing.assert_array_equal(got, value)


_SI_WRITE = """
import numpy as np, spikeinterface.core as si
rec, sort = si.generate_ground_truth_recording(durations=[3.0, 2.0], num_channels=8, num_units=5, seed=0)
rec = rec.save(folder="rec", progress_bar=False)
sort = sort.save(folder="sort")
for fmt, folder in (("binary_folder", "si_an"), ("zarr", "si_an.zarr")):
    an = si.create_sorting_analyzer(sort, rec, format=fmt, folder=folder, radius_um=30, progress_bar=False)
    an.compute("random_spikes", seed=42)
    an.compute(["waveforms", "templates", "noise_levels"], progress_bar=False)
an = si.load_sorting_analyzer("si_an")
an.compute("templates", operators=["average", "std"], save=False)
"""


def test_spikeinterface_analyzers_load_in_sicore(tmp_path):
    run_reference(_SI_WRITE, cwd=tmp_path)
    run_reference(_DUMP.format(folders=["si_an", "si_an.zarr"]), cwd=tmp_path)
    dump = np.load(tmp_path / "dump.npz")
    for name in ("si_an", "si_an.zarr"):
        analyzer = load_sorting_analyzer(tmp_path / name)
        assert analyzer.has_recording()
        assert analyzer.get_loaded_extension_names() == ALL
        np.testing.assert_array_equal(analyzer.sparsity.mask, dump[f"{name}::mask"])
        for ext in ALL:
            for key, value in analyzer.get_extension(ext).data.items():
                np.testing.assert_array_equal(np.asarray(value), dump[f"{name}::{ext}::{key}"])
        assert analyzer.get_extension("random_spikes").params["seed"] == 42

    # sicore recomputes SI's results on SI's data
    analyzer = load_sorting_analyzer(tmp_path / "si_an")
    si_random = np.array(analyzer.get_extension("random_spikes").get_data())
    si_waveforms = np.array(analyzer.get_extension("waveforms").get_data())
    si_templates = np.array(analyzer.get_extension("templates").get_data())
    mine = analyzer.save_as(format="memory")
    mine.compute("random_spikes", seed=42)
    np.testing.assert_array_equal(mine.get_extension("random_spikes").get_data(), si_random)
    mine.compute(["waveforms", "templates"], n_jobs=2, chunk_size=3000, **QUIET)
    np.testing.assert_array_equal(mine.get_extension("waveforms").get_data(), si_waveforms)
    np.testing.assert_allclose(mine.get_extension("templates").get_data(), si_templates, rtol=1e-6, atol=1e-6)
