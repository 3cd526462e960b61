"""A workflow killed (SIGKILL, whole process group) while computing waveforms, then rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np

import sicore
from conftest import snakemake, snakemake_command, snakemake_env, write_config
from sicore.sparsity import ChannelSparsity

# large enough that cutting the waveforms takes most of a second: every spike, in 2 ms chunks
SESSION = {"type": "generated", "durations": [160.0], "num_channels": 16, "num_units": 20, "firing_rate": 20.0,
           "seed": 5}
SETTINGS = dict(random_spikes={"max_spikes_per_unit": 5000}, noise_levels={"enabled": False},
                report={"enabled": False}, job={"chunk_duration": "2ms"})


def wait_for_staged_waveforms(extensions_folder, process, timeout: float = 120.0) -> None:
    """Until `sicore compute waveforms` has begun writing waveforms.npy into its pending folder."""
    deadline = time.monotonic() + timeout
    while not list(extensions_folder.glob(".waveforms*/waveforms.npy")):
        assert process.poll() is None, "snakemake ended before the waveforms job started writing"
        assert time.monotonic() < deadline, "the waveforms job never started writing"
        time.sleep(0.01)


def test_killed_during_waveforms_is_recomputed_and_equals_a_clean_run(workdir):
    write_config(workdir, {"s": {"recording": SESSION}}, **SETTINGS)
    analyzer_folder = workdir / "results" / "s" / "analyzer"
    waveforms_log = workdir / "results" / "s" / "logs" / "analyzer" / "waveforms.log"
    with open(workdir / "killed.log", "w") as output:
        process = subprocess.Popen(snakemake_command(workdir, "--set-threads", "waveforms=2", cores=2),
                                   stdout=output, stderr=subprocess.STDOUT, env=snakemake_env(),
                                   start_new_session=True)
        try:
            # killed as soon as the cutting has begun: a fixed delay would race with a fast machine
            wait_for_staged_waveforms(analyzer_folder / "extensions", process)
            assert process.poll() is None
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "computed waveforms" not in waveforms_log.read_text(), "killed too late: waveforms were complete"

    # nothing half-written: the analyzer loads, without waveforms
    analyzer = sicore.load_sorting_analyzer(analyzer_folder)
    assert analyzer.get_loaded_extension_names() == ["random_spikes"]
    assert not (analyzer_folder / "extensions" / "waveforms").exists()

    # the rerun (Snakemake's lock is left by the kill) completes what was cut short
    snakemake(workdir, "--unlock")
    rerun = snakemake(workdir, "--rerun-incomplete", "--set-threads", "waveforms=2").stdout
    assert "[s] waveforms:" in rerun and "[s] random_spikes:" not in rerun
    assert "Nothing to be done" in snakemake(workdir, "--dry-run").stdout
    assert not [p for p in (analyzer_folder / "extensions").iterdir() if p.name.startswith(".")]

    # ... and equals a clean computation from scratch
    resumed = sicore.load_sorting_analyzer(analyzer_folder)
    recording, sorting = sicore.generate_ground_truth_recording(
        durations=SESSION["durations"], sampling_frequency=25000.0, num_channels=16, num_units=20, seed=5,
        generate_sorting_kwargs={"firing_rate": 20.0, "refractory_period": 4.0})
    sparsity = ChannelSparsity.from_dict(json.loads((workdir / "results" / "s" / "sparsity.json").read_text()))
    clean = sicore.create_sorting_analyzer(sorting, recording, sparsity=sparsity)
    clean.compute("random_spikes", max_spikes_per_unit=5000, seed=0)
    clean.compute("waveforms", progress_bar=False)
    clean.compute("templates")
    for name in ("random_spikes", "waveforms", "templates"):
        for key, value in clean.get_extension(name).data.items():
            np.testing.assert_array_equal(resumed.get_extension(name).data[key], value, err_msg=f"{name}/{key}")
