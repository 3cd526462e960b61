"""One run over sessions of every source format (small real files), with per-session overrides."""

from __future__ import annotations

import numpy as np
import pytest

import sicore
import source_builders as sb
from conftest import EXTENSIONS, ONE_THREAD, snakemake, write_config


@pytest.mark.filterwarnings("ignore:Object at .snakemake_timestamp")
def test_every_source_format_in_one_run(workdir):
    data = workdir / "data"
    recording, sorting, traces = sb.ground_truth(seed=7, duration=1.0, num_channels=8, num_units=4)
    sessions = {
        "raw": {"recording": sb.raw_binary(data / "raw", recording, traces),
                "sorting": sb.npz(data / "sorting.npz", sorting)},
        "binfolder": {"recording": sb.saved_binary_folder(data / "binary_folder", recording),
                      "sorting": sb.numpy_folder(data / "numpy_folder", sorting)},
        "zarrrec": {"recording": sb.saved_zarr(data / "recording.zarr", recording),
                    "sorting": sb.phy(data / "phy", sorting)},
        "sglx": {"recording": sb.spikeglx(data / "spikeglx", traces),
                 "sorting": sb.phy(data / "kilosort", sorting, kilosort=True)},
        # Open Ephys without a probe: no channel locations, so no radius sparsity
        "oe": {"recording": sb.openephys(data / "openephys", num_samples=traces.shape[0]),
               "sorting": sb.npz(data / "sorting.npz", sorting),
               "overrides": {"sparsity": {"enabled": False}}},
        "mearec": {"recording": sb.mearec(data / "mearec.h5", recording, sorting),
                   "overrides": {"analyzer": {"format": "zarr"}, "waveforms": {"enabled": True},
                                 "templates": {"source": "waveforms"}, "noise_levels": {"enabled": True},
                                 "report": {"enabled": True}}},
    }
    for session in sessions.values():  # paths relative to the run folder, as a user would write them
        for source in (session["recording"], session.get("sorting", {})):
            for key in ("file_paths", "folder_path", "file_path", "probe_file"):
                if key in source:
                    source[key] = str(source[key]).replace(f"{workdir}/", "")
    # the formats matter up to the analyzer: the other sessions compute their templates in one pass
    write_config(workdir, sessions, report={"enabled": False}, random_spikes={"max_spikes_per_unit": 50},
                 waveforms={"enabled": False}, templates={"source": "random_spikes"},
                 noise_levels={"enabled": False})
    snakemake(workdir, *ONE_THREAD, cores=2, timeout=600)

    results = workdir / "results"
    analyzers = {}
    for name in sessions:
        folder = results / name / ("analyzer.zarr" if name == "mearec" else "analyzer")
        analyzers[name] = sicore.load_sorting_analyzer(folder)
        analyzer = analyzers[name]
        assert analyzer.has_recording(), name
        expected = list(EXTENSIONS) if name == "mearec" else ["random_spikes", "templates"]
        assert analyzer.get_loaded_extension_names() == expected, name
        assert analyzer.get_num_units() == 4, name
        assert analyzer.sampling_frequency == sb.FS
    assert analyzers["oe"].get_num_channels() == 4 and not analyzers["oe"].is_sparse()
    assert all(analyzers[name].is_sparse() for name in sessions if name != "oe")
    assert sorted(p.name for p in results.iterdir()) == sorted(sessions)
    assert (results / "mearec" / "report" / "report.html").is_file()
    assert not (results / "raw" / "report").exists()

    # the same spikes on the same traces give the same templates, whatever the files held them
    def average(name):
        return analyzers[name].get_extension("templates").get_data(operator="average")

    reference = average("binfolder")
    for name in ("zarrrec", "mearec"):
        np.testing.assert_allclose(average(name), reference, rtol=1e-5, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(average("raw"), reference, atol=sb.GAIN)  # int16 copy with 0.25 µV steps
    assert analyzers["sglx"].get_extension("random_spikes").params["max_spikes_per_unit"] == 50
    np.testing.assert_array_equal(np.sign(average("sglx").min(axis=1)), np.sign(reference.min(axis=1)))
