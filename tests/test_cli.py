"""The ``sicore`` command: every subcommand on small generated data, its errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sicore
from sicore import cli

GENERATED = json.dumps({"type": "generated", "durations": [1.0], "num_channels": 8, "num_units": 4, "seed": 3})
COMMANDS = ["info", "save-recording", "save-sorting", "estimate-sparsity", "create-analyzer", "compute", "report"]
TRACE_COMMANDS = ["save-recording", "estimate-sparsity", "create-analyzer", "compute"]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved recording and sorting (through the CLI) shared by the tests."""
    folder = tmp_path_factory.mktemp("cli")
    assert cli.main(["save-recording", GENERATED, str(folder / "rec"), "--no-progress-bar"]) == 0
    assert cli.main(["save-sorting", GENERATED, str(folder / "sort")]) == 0
    return folder


# ---------------------------------------------------------------------------- help and parsing
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: sicore {command}")
    for option in ("--chunk-duration", "--progress-bar", "--no-progress-bar", "--mp-context"):
        assert (option in out) == (command in TRACE_COMMANDS), (command, option)
    # the report draws its figures in --n-jobs processes
    assert ("--n-jobs" in out) == (command in TRACE_COMMANDS + ["report"]), command


def test_usage_errors_exit_2_naming_the_argument(capsys):
    code, _, err = run(capsys, "compute", "waveforms", "x", "--n-jobs", "many")
    assert code == 2 and "argument --n-jobs: expected a number of jobs" in err
    code, _, err = run(capsys, "compute", "waveforms", "x", "-p", "ms_before")
    assert code == 2 and "argument -p/--param: expected KEY=VALUE" in err
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and "invalid choice: 'frobnicate'" in err
    assert run(capsys, "--version")[1].strip() == f"sicore {sicore.__version__}"


# ---------------------------------------------------------------------------- the whole chain
def test_save_estimate_create_compute_report_info(capsys, saved, tmp_path):
    code, out, _ = run(capsys, "estimate-sparsity", saved / "rec", saved / "sort", tmp_path / "sparsity.json",
                       "--method", "radius", "--radius-um", "50", "-p", "num_spikes_for_sparsity=20",
                       "--n-jobs", "2", "--no-progress-bar")
    assert code == 0 and "sparsity of 4 units" in out
    sparsity = json.loads((tmp_path / "sparsity.json").read_text())
    assert sorted(sparsity) == ["channel_ids", "unit_id_to_channel_ids", "unit_ids"]

    analyzer_folder = tmp_path / "analyzer.zarr"
    code, out, _ = run(capsys, "create-analyzer", saved / "rec", saved / "sort", analyzer_folder,
                       "--sparsity", tmp_path / "sparsity.json")
    assert code == 0 and "created a sparse zarr analyzer of 4 units on 8 channels" in out
    for extension, params in [("random_spikes", ["-p", "max_spikes_per_unit=30", "-p", "seed=1"]),
                              ("waveforms", ["--params", '{"ms_before": 0.5, "ms_after": 1.5}']),
                              ("templates", ["-p", 'operators=["average", "median"]']),
                              ("noise_levels", ["-p", "seed=0"])]:
        code, out, err = run(capsys, "compute", extension, analyzer_folder, *params, "--n-jobs", "1",
                             "--chunk-duration", "250ms", "--no-progress-bar")
        assert code == 0, err
        assert out.startswith(f"computed {extension} of {analyzer_folder}")

    analyzer = sicore.load_sorting_analyzer(analyzer_folder)
    assert analyzer.format == "zarr"
    assert analyzer.get_extension("random_spikes").params["max_spikes_per_unit"] == 30
    assert analyzer.get_extension("templates").params["ms_before"] == 0.5  # from the waveforms
    waveforms = analyzer.get_extension("waveforms").get_data()
    median = analyzer.get_extension("templates").get_data(operator="median")
    assert waveforms.shape[1] == median.shape[1] == int(0.5 * 25) + int(1.5 * 25)
    expected_mask = sicore.sparsity.ChannelSparsity.from_dict(sparsity).mask
    np.testing.assert_array_equal(analyzer.sparsity_mask, expected_mask)

    code, out, _ = run(capsys, "report", analyzer_folder, tmp_path / "report", "--session-name", "demo")
    assert code == 0 and "report of demo" in out
    assert (tmp_path / "report" / "units.csv").is_file() and (tmp_path / "report" / "report.html").is_file()

    code, out, _ = run(capsys, "info", analyzer_folder)
    assert code == 0 and out.startswith(f"SortingAnalyzer at {analyzer_folder}")
    assert "random_spikes: complete" in out and '"max_spikes_per_unit": 30' in out
    code, out, _ = run(capsys, "info", analyzer_folder, "--json")
    summary = json.loads(out)
    assert summary["num_units"] == 4 and list(summary["extensions"]) == ["random_spikes", "waveforms", "templates",
                                                                         "noise_levels"]
    code, out, _ = run(capsys, "info", tmp_path / "sparsity.json")
    assert code == 0 and out.startswith("ChannelSparsity") and "num_units: 4" in out


def _main_channel_ids_by_numpy(folder: Path, ms_before: float = 1.0, ms_after: float = 2.5) -> list[str]:
    """Each unit's main channel from the saved files alone: the channel of the largest |mean| over every
    spike's window (in µV) of the raw traces; the units have fewer spikes than the estimate samples."""
    rec_info = json.loads((folder / "rec" / "binary.json").read_text())["kwargs"]
    traces = np.fromfile(folder / "rec" / "traces_cached_seg0.raw", dtype=rec_info["dtype"])
    traces = traces.reshape(-1, rec_info["num_channels"]).astype(np.float64) * np.asarray(rec_info["gain_to_uV"])
    spikes = np.load(folder / "sort" / "spikes.npy")
    fs = rec_info["sampling_frequency"]
    before, after = int(ms_before * fs / 1000), int(ms_after * fs / 1000)
    channel_ids = [str(c) for c in rec_info["channel_ids"]]
    main = []
    for unit_index in np.unique(spikes["unit_index"]):
        times = spikes["sample_index"][spikes["unit_index"] == unit_index]
        times = times[(times >= before) & (times + after <= traces.shape[0])]
        template = np.mean([traces[t - before:t + after] for t in times], axis=0)
        main.append(channel_ids[int(np.argmax(np.abs(template).max(axis=0)))])
    return main


def test_main_channels_from_the_sparsity_pass(capsys, saved, tmp_path):
    """estimate-sparsity --main-channels writes the units' main channels; create-analyzer --main-channels
    stores them (no pass of its own); they match numpy and the analyzer's own estimate."""
    main_file = tmp_path / "main_channels.json"
    code, out, err = run(capsys, "estimate-sparsity", saved / "rec", saved / "sort", tmp_path / "sparsity.json",
                         "--peak-sign", "both", "--main-channels", main_file, "--no-progress-bar")
    assert code == 0, err
    written = json.loads(main_file.read_text())
    assert written["unit_ids"] == [str(u) for u in sicore.load(saved / "sort").unit_ids]
    assert written["main_channel_ids"] == _main_channel_ids_by_numpy(saved)

    code, _, err = run(capsys, "create-analyzer", saved / "rec", saved / "sort", tmp_path / "given",
                       "--sparsity", tmp_path / "sparsity.json", "--main-channels", main_file)
    assert code == 0, err
    given = sicore.load_sorting_analyzer(tmp_path / "given")
    assert [str(c) for c in given.sorting.get_property("main_channel_id")] == written["main_channel_ids"]
    assert run(capsys, "create-analyzer", saved / "rec", saved / "sort", tmp_path / "own",
               "--sparsity", tmp_path / "sparsity.json")[0] == 0
    own = sicore.load_sorting_analyzer(tmp_path / "own")
    assert [str(c) for c in own.sorting.get_property("main_channel_id")] == written["main_channel_ids"]

    # a file of other units, or not a main channels file, is refused naming the option
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"unit_ids": ["x"] * len(written["unit_ids"]),
                                 "main_channel_ids": written["main_channel_ids"]}))
    for bad in (wrong, tmp_path / "sparsity.json"):
        code, _, err = run(capsys, "create-analyzer", saved / "rec", saved / "sort", tmp_path / "bad",
                           "--sparsity", tmp_path / "sparsity.json", "--main-channels", bad)
        assert code == 2 and "--main-channels" in err and not (tmp_path / "bad").exists()


def test_compute_reads_the_recording_only_when_it_needs_it(saved, tmp_path):
    """random_spikes and templates from waveforms never touch the recording: the command does not even
    import probeinterface; waveforms does read it."""
    folder = tmp_path / "analyzer"
    assert cli.main(["create-analyzer", str(saved / "rec"), str(saved / "sort"), str(folder)]) == 0
    probe = ("import sys; from sicore import cli; code = cli.main(sys.argv[1:]); "
             "print('PROBEINTERFACE', 'probeinterface' in sys.modules); sys.exit(code)")
    for argv, imported in [(["compute", "random_spikes", str(folder)], False),
                           (["compute", "waveforms", str(folder), "--no-progress-bar"], True),
                           (["compute", "templates", str(folder), "--from", "waveforms"], False)]:
        run_ = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120)
        assert run_.returncode == 0, run_.stderr
        assert f"PROBEINTERFACE {imported}" in run_.stdout, (argv, run_.stdout)
    analyzer = sicore.load_sorting_analyzer(folder)
    assert analyzer.has_recording() and analyzer.get_extension("templates") is not None


def test_recompute_parent_deletes_children_and_templates_from_random_spikes(capsys, saved, tmp_path):
    folder = tmp_path / "analyzer"
    assert run(capsys, "create-analyzer", saved / "rec", saved / "sort", folder, "--dense")[0] == 0
    assert not sicore.load_sorting_analyzer(folder).is_sparse()
    for extension in ("random_spikes", "waveforms"):
        assert run(capsys, "compute", extension, folder, "--no-progress-bar")[0] == 0
    # waveforms exist, yet templates come from the random spikes with their own window
    code, _, err = run(capsys, "compute", "templates", folder, "--from", "random_spikes", "-p", "ms_before=0.4",
                       "-p", "ms_after=0.8", "--no-progress-bar")
    assert code == 0, err
    templates = sicore.load_sorting_analyzer(folder).get_extension("templates")
    assert templates.params["ms_before"] == 0.4 and templates.get_data().shape[1] == 10 + 20
    assert run(capsys, "compute", "random_spikes", folder, "-p", "seed=5")[0] == 0
    assert sorted(p.name for p in (folder / "extensions").iterdir() if not p.name.startswith(".")) == ["random_spikes"]
    code, _, err = run(capsys, "compute", "templates", folder, "--from", "waveforms")
    assert code == 2 and "--from waveforms: the analyzer" in err and "has no computed waveforms" in err


def test_save_recording_zarr_compression_options(capsys, tmp_path):
    code, out, err = run(capsys, "save-recording", GENERATED, tmp_path / "rec.zarr", "--format", "zarr",
                         "--compressor", "lz4", "--compression-level", "3", "--shuffle", "byte",
                         "--channel-chunk-size", "4", "--dtype", "float32", "--no-progress-bar")
    assert code == 0, err
    assert "as zarr to" in out
    meta = json.loads((tmp_path / "rec.zarr" / "traces_seg0" / ".zarray").read_text())
    assert meta["compressor"]["cname"] == "lz4" and meta["compressor"]["clevel"] == 3
    assert meta["compressor"]["shuffle"] == 1 and meta["chunks"][1] == 4
    code, _, err = run(capsys, "save-recording", GENERATED, tmp_path / "bin", "--compressor", "lz4")
    assert code == 2 and err.strip() == "sicore save-recording: error: --compressor: only applies to --format zarr"


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("argv, message", [
    (["info", "{tmp}/nowhere"], "sicore info: error: PATH: {tmp}/nowhere does not exist"),
    (["save-recording", '{"type": "generated", "num_chanels": 4}', "{tmp}/x"],
     "sicore save-recording: error: recording.num_chanels: unknown key for a 'generated' source"),
    (["save-recording", "{tmp}/missing", "{tmp}/x"],
     "sicore save-recording: error: recording: {tmp}/missing does not exist"),
    (["save-recording", GENERATED, "{saved}/rec"], "already exists; use overwrite=True"),
    (["save-sorting", '{"type": "ground_truth"}', "{tmp}/s"],
     "sicore save-sorting: error: sorting.type: 'ground_truth' needs a recording"),
    (["compute", "waveform", "{saved}/rec"], "sicore compute: error: EXTENSION: unknown extension 'waveform'"),
    (["compute", "waveforms", "{tmp}/none"], "sicore compute: error: ANALYZER: {tmp}/none does not exist"),
    (["create-analyzer", "{saved}/rec", "{saved}/sort", "{tmp}/a", "--dense", "-p", "radius_um=5"],
     "sicore create-analyzer: error: parameter 'radius_um': sparsity parameters need sparsity"),
    (["estimate-sparsity", "{saved}/rec", "{saved}/sort", "{tmp}/s.json", "-p", "radius=5"],
     "sicore estimate-sparsity: error: parameter 'radius': unknown for estimate-sparsity"),
    (["create-analyzer", "{saved}/rec", "{saved}/sort", "{tmp}/a", "--sparsity", "{saved}/rec/binary.json"],
     "sicore create-analyzer: error: --sparsity: "),
])
def test_user_errors_exit_2_with_one_line(capsys, saved, tmp_path, argv, message):
    argv = [a.format(tmp=tmp_path, saved=saved) if "{tmp" in a or "{saved" in a else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message.format(tmp=tmp_path, saved=saved) in lines[0]


def test_library_errors_are_user_errors(capsys, saved, tmp_path):
    folder = tmp_path / "a"
    assert run(capsys, "create-analyzer", saved / "rec", saved / "sort", folder, "--dense")[0] == 0
    code, _, err = run(capsys, "compute", "waveforms", folder)
    assert code == 2 and "extension 'waveforms' depends on 'random_spikes', which is not computed" in err
    code, _, err = run(capsys, "compute", "random_spikes", folder, "-p", "max_spikes=3")
    assert code == 2 and "has no parameter ['max_spikes']" in err
    code, _, err = run(capsys, "--traceback", "compute", "random_spikes", folder, "-p", "max_spikes=3")
    assert code == 2 and "Traceback (most recent call last)" in err


def test_unexpected_errors_exit_1_with_traceback(capsys, monkeypatch, saved):
    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "cmd_info", broken)
    code, _, err = run(capsys, "info", saved / "rec")
    assert code == 1
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err
    assert err.strip().endswith("sicore info: unexpected error (please report it with the traceback above)")


def test_console_script(saved):
    """The installed `sicore` command (what the workflow rules run)."""
    script = Path(sys.executable).parent / "sicore"
    result = subprocess.run([str(script), "info", str(saved / "sort")], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("NumpyFolderSorting at")
    result = subprocess.run([str(script), "info", str(saved / "nothing")], capture_output=True, text=True,
                            env={**os.environ, "SICORE_TRACEBACK": ""})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("sicore info: error: PATH: ")


def test_parser_imports_nothing_heavy():
    """Every workflow job starts a `sicore` process: building the parser (and --help) must not import numpy,
    the analyzer, probeinterface or the sharding passes; the shard commands list the sharded passes."""
    script = (
        "import sys\n"
        "from sicore.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'probeinterface', 'matplotlib', "
        "'pandas', 'zarr', 'tqdm') or m.startswith(('sicore.sharding_', 'sicore.analyzer', 'sicore.io'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    from sicore import sharding
    from sicore.sharding_analyzer import ANALYZER_PASSES

    assert sharding._ANALYZER_PASS_NAMES == ANALYZER_PASSES
    assert sharding.plan_shards is sicore.sharding_plan.plan_shards  # lazy re-exports
