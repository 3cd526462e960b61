"""The embedded default: `snakemake --cores N` from the repository root (default config and profile)."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np

import sicore
from conftest import BIN, EXTENSIONS, REPO, snakemake_env


def test_default_config_runs_out_of_the_box_then_nothing_to_do(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("workflow", "rules", "config", "profiles"):  # the repository, without its results
        os.symlink(REPO / name, root / name)
    run = subprocess.run([str(BIN / "snakemake"), "--cores", "2"], cwd=root, capture_output=True, text=True,
                         timeout=300, env=snakemake_env())
    assert run.returncode == 0, run.stdout + run.stderr
    log = run.stdout + run.stderr
    assert "Using workflow specific profile profiles/default" in log
    for message in ("[toy] save_recording:", "[toy] create_analyzer:", "[toy] waveforms:",
                    "[toy] templates from waveforms:", "[toy] noise_levels:", "[toy] report:"):
        assert message in log
    assert "sicore compute waveforms results/toy/analyzer" in log  # printshellcmds

    results = root / "results" / "toy"
    assert sorted(p.name for p in results.iterdir()) == ["analyzer", "benchmarks", "logs", "main_channels.json",
                                                        "recording", "report", "sorting", "sparsity.json"]
    for rule in ("save_recording", "create_analyzer", "random_spikes", "waveforms", "templates", "noise_levels"):
        subfolder = "recording" if rule == "save_recording" else "analyzer"
        assert (results / "logs" / subfolder / f"{rule}.log").is_file()
        assert (results / "benchmarks" / subfolder / f"{rule}.tsv").is_file()
    assert (results / "logs" / "report.log").is_file()
    report = json.loads((results / "report" / "report.json").read_text())
    assert report["session_name"] == "toy" and report["num_units"] == 10
    assert (results / "report" / "report.html").is_file() and (results / "report" / "units.csv").is_file()

    analyzer = sicore.load_sorting_analyzer(results / "analyzer")
    assert analyzer.format == "binary_folder" and analyzer.is_sparse() and analyzer.has_recording()
    assert analyzer.get_num_units() == 10 and analyzer.get_num_channels() == 16
    assert analyzer.get_loaded_extension_names() == list(EXTENSIONS)

    # the pipeline finds the templates the data were generated with
    recording, _ = sicore.generate_ground_truth_recording(durations=[10.0], sampling_frequency=25000.0,
                                                        num_channels=16, num_units=10, seed=2205)
    ground_truth = np.asarray(recording.templates)  # same nbefore (1 ms) as the analyzer's window
    templates = analyzer.get_extension("templates").get_data(operator="average")
    assert templates.shape == (10, 75, 16)
    np.testing.assert_allclose(templates.min(axis=(1, 2)), ground_truth.min(axis=(1, 2)), rtol=0.25)
    assert (templates.min(axis=1).argmin(axis=1) == ground_truth.min(axis=1).argmin(axis=1)).mean() >= 0.9

    again = subprocess.run([str(BIN / "snakemake"), "--cores", "2", "--dry-run"], cwd=root, capture_output=True,
                           text=True, timeout=120, env=snakemake_env())
    assert again.returncode == 0
    assert "Nothing to be done (all requested files are present and up to date)." in again.stdout + again.stderr

    # Snakemake's own report embeds each session's table and figures
    html = subprocess.run([str(BIN / "snakemake"), "--report", "report.html"], cwd=root, capture_output=True,
                          text=True, timeout=300, env=snakemake_env())
    assert html.returncode == 0, html.stdout + html.stderr
    text = (root / "report.html").read_text()
    for name in ("units.csv", "units.html", "templates.png", "noise_levels.png", "probe_sparsity.png"):
        assert name in text, f"{name} is not in snakemake's report"
