"""Recomputation semantics: what a parameter change reruns, shown by `--dry-run --summary`, then by real runs."""

from __future__ import annotations

import sicore
from conftest import NO_REPORT, ONE_THREAD, copy_run, pending, snakemake, stamps, summary, write_config

ANALYZER = "results/s/analyzer"
EXT = ANALYZER + "/extensions/"


def changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_parent_child_and_leaf_changes(tiny_run, workdir):
    copy_run(tiny_run, workdir)
    base = stamps(workdir)
    assert None not in base.values()
    assert "Nothing to be done" in snakemake(workdir, "--dry-run").stdout

    # 1. a parent's params: it and exactly its children rerun, not its sibling noise_levels
    write_config(workdir, random_spikes={"max_spikes_per_unit": 20}, **NO_REPORT)
    rows = summary(workdir)
    assert rows[EXT + "random_spikes"] == ("params changed", "update pending")
    assert pending(rows) == {EXT + "random_spikes", EXT + "waveforms", EXT + "templates"}
    assert rows[EXT + "noise_levels"] == ("ok", "no update")
    snakemake(workdir, *ONE_THREAD)
    after_parent = stamps(workdir)
    assert changed(base, after_parent) == {"random_spikes", "waveforms", "templates"}
    analyzer = sicore.load_sorting_analyzer(workdir / ANALYZER)
    assert analyzer.get_extension("random_spikes").params["max_spikes_per_unit"] == 20
    assert analyzer.get_extension("waveforms").get_data().shape[0] == 4 * 20

    # 2. a leaf's params: only templates rerun
    write_config(workdir, random_spikes={"max_spikes_per_unit": 20}, templates={"operators": ["average", "median"]},
                 **NO_REPORT)
    rows = summary(workdir)
    assert pending(rows) == {EXT + "templates"}
    assert rows[EXT + "templates"][0] == "params changed"
    snakemake(workdir, *ONE_THREAD)
    after_leaf = stamps(workdir)
    assert changed(after_parent, after_leaf) == {"templates"}
    templates = sicore.load_sorting_analyzer(workdir / ANALYZER).get_extension("templates")
    assert templates.params["operators"] == ["average", "median"]

    # 3. a run that targets only the parent: its children are deleted, no stale one stays on disk
    config = dict(random_spikes={"max_spikes_per_unit": 20, "seed": 9}, templates={"operators": ["average", "median"]},
                  **NO_REPORT)
    write_config(workdir, **config)
    snakemake(workdir, EXT + "random_spikes", *ONE_THREAD)  # targets before the nargs="+" option
    on_disk = sorted(p.name for p in (workdir / EXT).iterdir() if not p.name.startswith("."))
    assert on_disk == ["noise_levels", "random_spikes"]
    analyzer = sicore.load_sorting_analyzer(workdir / ANALYZER)
    assert analyzer.get_loaded_extension_names() == ["random_spikes", "noise_levels"]
    assert analyzer.get_extension("random_spikes").params["seed"] == 9
    only_parent = stamps(workdir)
    assert changed(after_leaf, only_parent) == {"random_spikes", "waveforms", "templates"}
    assert only_parent["waveforms"] is None and only_parent["templates"] is None
    # ... and the next full run computes exactly the missing children
    rows = summary(workdir)
    assert pending(rows) == {EXT + "waveforms", EXT + "templates"}
    snakemake(workdir, *ONE_THREAD)
    assert changed(only_parent, stamps(workdir)) == {"waveforms", "templates"}


def test_templates_source_and_options_that_do_not_rerun(tiny_run, workdir):
    """Switching templates to random spikes reruns templates only; job options never rerun anything."""
    copy_run(tiny_run, workdir)
    base = stamps(workdir)
    write_config(workdir, templates={"source": "random_spikes", "ms_before": 0.5, "ms_after": 1.0},
                 job={"chunk_duration": "250ms"}, **NO_REPORT)
    rows = summary(workdir, "--set-threads", "waveforms=2")  # threads are not params
    assert pending(rows) == {EXT + "templates"}
    snakemake(workdir, *ONE_THREAD)
    assert changed(base, stamps(workdir)) == {"templates"}
    templates = sicore.load_sorting_analyzer(workdir / ANALYZER).get_extension("templates")
    assert templates.params["ms_before"] == 0.5 and templates.get_data().shape[1] == int(0.5 * 25) + 25
    assert templates.params["operators"] == ["average", "std"]
