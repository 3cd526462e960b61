"""The config: defaults filled by the schema, per-session overrides, and errors that name the bad key."""

from __future__ import annotations

import copy
import sys

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO, TINY, snakemake, write_config

sys.path.insert(0, str(REPO / "workflow"))
from sicore_workflow import build_sessions  # noqa: E402
from sicore_workflow import resources  # noqa: E402

SCHEMA = str(REPO / "config" / "schema.yaml")


def load(config: dict) -> dict:
    """What the Snakefile does: validate (filling defaults), then build the sessions from the raw overrides."""
    raw = copy.deepcopy(config)
    validate(config, SCHEMA)
    return build_sessions(config, raw)


def error_of(config: dict) -> str:
    with pytest.raises((WorkflowError, ValueError)) as err:
        load(config)
    return str(err.value) + "".join(str(a) for a in getattr(err.value, "args", ()))


def test_embedded_config_is_valid_and_complete():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    sessions = load(config)
    assert list(sessions) == ["toy"]
    toy = sessions["toy"]
    assert toy.sorting["type"] == "generated" and toy.sorting["seed"] == toy.recording["seed"]
    assert toy.targets() == [f"results/toy/analyzer/extensions/{name}" for name in
                             ("random_spikes", "waveforms", "templates", "noise_levels")] + ["results/toy/report"]


def test_defaults_fill_every_section_and_overrides_keep_the_global_values():
    config = {"sessions": {"a": {"recording": {"type": "generated"}},
                           "b": {"recording": dict(TINY),
                                 "overrides": {"random_spikes": {"max_spikes_per_unit": 50},
                                               "analyzer": {"format": "zarr"}}}},
              "random_spikes": {"seed": 7}}
    sessions = load(config)
    assert config["waveforms"] == {"enabled": True, "ms_before": 1.0, "ms_after": 2.0, "dtype": None}
    assert config["job"] == {"chunk_duration": "1s", "progress_bar": False, "mp_context": None}
    a, b = sessions["a"], sessions["b"]
    assert a.recording["durations"] == [10.0] and a.recording["num_channels"] == 16
    assert a.settings["random_spikes"] == {"method": "uniform", "max_spikes_per_unit": 500, "margin_size": None,
                                           "seed": 7}
    # the override changes one key; the global seed (not the schema default) stays
    assert b.settings["random_spikes"]["max_spikes_per_unit"] == 50 and b.settings["random_spikes"]["seed"] == 7
    assert b.analyzer_dir == "analyzer.zarr" and a.analyzer_dir == "analyzer"
    assert b.extension_path("waveforms") == "results/b/analyzer.zarr/extensions/waveforms"


def test_params_are_canonical_and_hold_only_what_matters():
    sessions = load({"sessions": {"a": {"recording": dict(TINY)}},
                     "save_recording": {"compressor": "lz4"}, "templates": {"ms_before": 3.0}})
    a = sessions["a"]
    # compression options and the templates window do not apply here: changing them must not rerun anything
    assert a.params_json("save_recording") == '{"format":"binary"}'
    assert a.params_json("templates") == '{"operators":["average","std"]}'
    assert a.params_json("noise_levels") == ('{"method":"mad","random_slices_kwargs":{"chunk_duration":"500ms",'
                                             '"num_chunks_per_segment":20,"seed":0}}')
    assert a.params_json("estimate_sparsity") == a.params_json("estimate_sparsity")
    assert '"radius_um":100.0' in a.params_json("estimate_sparsity") and "num_channels" not in \
        a.params_json("estimate_sparsity")
    assert a.create_analyzer_options() == ("--format binary_folder --return-scaled --main-channels "
                                           f"{a.main_channels_path} --sparsity")


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(random_spike={"seed": 1}), "'random_spike' was unexpected"),
    (lambda c: c["waveforms"].update(ms_befor=1.0), "'ms_befor' was unexpected"),
    (lambda c: c["random_spikes"].update(max_spikes_per_unit="many"), "['random_spikes']['max_spikes_per_unit']"),
    (lambda c: c["random_spikes"].update(max_spikes_per_unit=0), "['random_spikes']['max_spikes_per_unit']"),
    (lambda c: c["analyzer"].update(format="hdf5"), "['analyzer']['format']"),
    (lambda c: c["noise_levels"].update(chunk_duration="half a second"), "['noise_levels']['chunk_duration']"),
    (lambda c: c["sessions"]["s"]["recording"].update(num_chanels=4), "'num_chanels' was unexpected"),
    (lambda c: c["sessions"]["s"]["recording"].update(type="edf"), "['sessions']['s']['recording']['type']"),
    (lambda c: c["sessions"]["s"].update(sorting={"type": "phy"}), "'folder_path' is a required property"),
    (lambda c: c["sessions"]["s"].update(overrides={"job": {}}), "'job' was unexpected"),
    (lambda c: c["sessions"].update({"bad name": {"recording": dict(TINY)}}), "'bad name' does not match"),
    (lambda c: c["sessions"]["s"].update(recording={"type": "spikeglx", "folder_path": "x"}),
     "sessions.s.sorting.type: 'ground_truth' needs a recording of type generated or mearec"),
    (lambda c: c.update(waveforms={"enabled": False}),
     "sessions.s: templates.source is 'waveforms' but waveforms.enabled is false"),
    (lambda c: c.update(templates={"source": "random_spikes", "operators": ["median"]}),
     "sessions.s: templates.operators ['median'] need templates.source: waveforms"),
])
def test_bad_values_are_rejected_naming_the_key(change, message):
    config = {"sessions": {"s": {"recording": dict(TINY)}}, "waveforms": {}, "random_spikes": {}, "analyzer": {},
              "noise_levels": {}}
    change(config)
    assert message in error_of(config)


def test_snakemake_reports_config_errors_naming_the_key(workdir):
    write_config(workdir, random_spikes={"max_spikes_per_unit": "many"})
    result = snakemake(workdir, "--dry-run", check=False)
    assert result.returncode != 0
    assert "Error validating config file" in result.stdout
    assert "On instance['random_spikes']['max_spikes_per_unit']" in result.stdout
    write_config(workdir, {"s": {"recording": dict(TINY), "sorting": {"type": "npz", "file_path": "x.npz"}}},
                 templates={"source": "random_spikes", "operators": [["percentile", 90]]})
    result = snakemake(workdir, "--dry-run", check=False)
    assert result.returncode != 0
    assert "sessions.s: templates.operators [['percentile', 90]] need templates.source: waveforms" in result.stdout


def test_missing_source_files_stop_the_dry_run_naming_them(workdir):
    write_config(workdir, {"s": {"recording": {"type": "spikeglx", "folder_path": "data/none"},
                                 "sorting": {"type": "npz", "file_path": "data/none.npz"}}})
    result = snakemake(workdir, "--dry-run", check=False)
    assert result.returncode != 0 and "data/none" in result.stdout


def test_resource_estimates_grow_with_the_data():
    small, large = load({"sessions": {
        "small": {"recording": dict(TINY)},
        "large": {"recording": {**TINY, "durations": [3600.0], "num_channels": 384, "num_units": 400}}}}).values()
    for operation in ("save_recording", "waveforms", "templates", "noise_levels", "report"):
        assert resources.mem_mb(small, operation, 1) >= resources.BASE_MB
        assert resources.mem_mb(large, operation, 4) >= resources.mem_mb(small, operation, 4)
    assert resources.runtime_min(small, "waveforms", 4) == resources.MIN_RUNTIME_MIN
    assert resources.runtime_min(large, "waveforms", 1) > resources.runtime_min(large, "waveforms", 8) > 5
    # waveforms: 400 units x 500 spikes x 75 samples x 384 channels x 4 bytes, on top of the chunks
    assert resources.mem_mb(large, "waveforms", 1) > 400 * 500 * 75 * 384 * 4 / 1e6
    assert resources.mem_mb(large, "waveforms", 1, attempt=3) == 3 * resources.mem_mb(large, "waveforms", 1)
    assert resources.runtime_min(small, "report", 1, attempt=2) == 2 * resources.MIN_RUNTIME_MIN


@pytest.mark.parametrize("cores, expected", [
    (1, {"save-recording": 1, "estimate-sparsity": 1, "waveforms": 1, "templates": 1, "report": 1}),
    (2, {"save-recording": 1, "estimate-sparsity": 1, "waveforms": 1, "templates": 1, "report": 2}),
    (3, {"save-recording": 2, "estimate-sparsity": 2, "waveforms": 2, "templates": 1, "report": 2}),
    (8, {"save-recording": 4, "estimate-sparsity": 2, "waveforms": 4, "templates": 1, "report": 2}),
])
def test_jobs_with_a_sibling_leave_it_a_core_on_small_machines(workdir, cores, expected):
    """save_recording (beside save_sorting and estimate_sparsity) and waveforms (beside noise_levels) ask
    for all local cores but one when their usual request would take them all; templates from waveforms (an
    in-process reduction) take one thread."""
    write_config(workdir)
    result = snakemake(workdir, "--dry-run", "--printshellcmds", cores=cores)
    found = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if "sicore" in words and "--n-jobs" in words:
            command = words[words.index("sicore") + 1]
            command = words[words.index("sicore") + 2] if command == "compute" else command
            found[command] = int(words[words.index("--n-jobs") + 1])
    assert {key: found.get(key) for key in expected} == expected, result.stdout


@pytest.mark.parametrize("cores, expected", [(2, 1), (8, 2)])
def test_templates_from_the_recording_use_two_threads_beside_a_sibling(workdir, cores, expected):
    write_config(workdir, templates={"source": "random_spikes"})
    result = snakemake(workdir, "--dry-run", "--printshellcmds", cores=cores)
    lines = [line.split() for line in result.stdout.splitlines() if "--from random_spikes" in line]
    assert lines and all(int(words[words.index("--n-jobs") + 1]) == expected for words in lines), result.stdout
