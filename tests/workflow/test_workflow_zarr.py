"""Several rule jobs writing one zarr analyzer at once leave a store equal to a sequential run's."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
import zarr

import sicore
from conftest import (
    EXTENSIONS,
    REPO,
    NO_REPORT,
    ONE_THREAD,
    TINY,
    assert_same_extensions,
    copy_run,
    extension_arrays,
    snakemake,
    write_config,
)

sys.path.insert(0, str(REPO / "tests"))
from reference_env import run_reference  # noqa: E402

# SpikeInterface 0.105.3 opens the workflow's analyzers (Snakemake's timestamp files inside) as they are
SI_LOADS = """
import json, numpy as np, spikeinterface.full as si
summary = {{}}
for name, folder in {folders!r}.items():
    analyzer = si.load_sorting_analyzer(folder)
    analyzer.compute("unit_locations", method="center_of_mass")  # writes into the folder
    summary[name] = sorted(analyzer.get_loaded_extension_names())
    np.save(name + "_templates.npy", analyzer.get_extension("templates").get_data())
print(json.dumps(summary))
"""


ZARR = dict(save_recording={"format": "zarr"}, analyzer={"format": "zarr"}, **NO_REPORT)


@pytest.fixture(scope="module")
def sequential_zarr_run(tmp_path_factory):
    """The zarr workflow run one job at a time (one core)."""
    folder = tmp_path_factory.mktemp("zarr") / "run"
    write_config(folder, **ZARR)
    snakemake(folder, *ONE_THREAD, cores=1)
    return folder


def max_concurrent(log: str, rules: tuple[str, ...]) -> int:
    """The largest number of jobs of ``rules`` running at the same time, from Snakemake's job log."""
    running, most = set(), 0
    for line in log.splitlines():
        started = re.match(r"Job (\d+): \[\w+\] (\w+)", line)
        finished = re.match(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line)
        if started and started.group(2) in rules:
            running.add(started.group(1))
            most = max(most, len(running))
        elif finished:
            running.discard(finished.group(1))
    return most


# zarr-python 3 notices Snakemake's timestamp file in the directory outputs (harmless)
@pytest.mark.filterwarnings("ignore:Object at .snakemake_timestamp")
def test_parallel_jobs_on_one_zarr_analyzer(sequential_zarr_run, tiny_run, workdir):
    write_config(workdir, {"s": {"recording": dict(TINY)}}, **ZARR)
    log = snakemake(workdir, *ONE_THREAD, cores=2).stdout
    # random_spikes and noise_levels start together, then waveforms may overlap noise_levels
    assert max_concurrent(log, EXTENSIONS) >= 2, log

    folder = workdir / "results" / "s" / "analyzer.zarr"
    assert (workdir / "results" / "s" / "recording.zarr" / ".zgroup").is_file()
    analyzer = sicore.load_sorting_analyzer(folder)
    assert analyzer.format == "zarr" and analyzer.get_loaded_extension_names() == list(EXTENSIONS)
    # the store is whole for plain zarr readers too: every group and array opens and reads
    root = zarr.open_group(str(folder), mode="r", zarr_format=2, use_consolidated=False)
    assert sorted(root["extensions"].group_keys()) == sorted(EXTENSIONS)
    for name in EXTENSIONS:
        group = root["extensions"][name]
        assert group.attrs["run_info"]["run_completed"]
        for key in group.array_keys():
            group[key][...]
    assert not [p.name for p in (folder / "extensions").iterdir() if p.name.startswith(".") and p.is_dir()]

    # every extension equals the sequential (one core) run's, and the binary_folder run's
    parallel = extension_arrays(folder)
    assert_same_extensions(parallel, extension_arrays(sequential_zarr_run / "results" / "s" / "analyzer.zarr"))
    assert_same_extensions(parallel, extension_arrays(tiny_run / "results" / "s" / "analyzer"))
    assert "Nothing to be done" in snakemake(workdir, "--dry-run").stdout


def test_spikeinterface_opens_the_workflows_analyzers(sequential_zarr_run, tiny_run, tmp_path):
    # copies: SpikeInterface adds an extension to the analyzers
    folders = {"binary": str(copy_run(tiny_run, tmp_path / "binary") / "results" / "s" / "analyzer"),
               "zarr": str(copy_run(sequential_zarr_run, tmp_path / "zarr") / "results" / "s" / "analyzer.zarr")}
    summary = json.loads(run_reference(SI_LOADS.format(folders=folders), cwd=tmp_path).splitlines()[-1])
    for name, folder in folders.items():
        assert set(EXTENSIONS) | {"unit_locations"} <= set(summary[name]), name
        expected = sicore.load_sorting_analyzer(folder).get_extension("templates").get_data()
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}_templates.npy"), expected)
