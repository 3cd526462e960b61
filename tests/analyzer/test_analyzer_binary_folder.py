"""SortingAnalyzer as a binary_folder: layout, load (memory-mapped), recordingless mode, save=False,
children deleted on disk, atomic extension writes and save_as."""

import json
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from sicore.analyzer import create_sorting_analyzer, load_sorting_analyzer
from sicore.io.binary_folder import write_binary_folder

from analyzer_data import make_pair

QUIET = {"progress_bar": False}
NOISE = {"noise_levels": {"random_slices_kwargs": {"chunk_size": 500, "seed": 1}}}
ALL = ["random_spikes", "waveforms", "templates", "noise_levels"]


def _saved_pair(folder):
    recording, sorting, *_ = make_pair()
    return write_binary_folder(recording, folder / "rec", progress_bar=False), sorting


@pytest.fixture
def disk_analyzer(tmp_path):
    recording, sorting = _saved_pair(tmp_path)
    analyzer = create_sorting_analyzer(sorting, recording, format="binary_folder", folder=tmp_path / "an",
                                       radius_um=30, **QUIET)
    analyzer.compute(ALL, extension_params=NOISE, **QUIET)
    return analyzer


def _data(analyzer):
    return {name: {k: np.array(v) for k, v in analyzer.get_extension(name).data.items()}
            for name in analyzer.get_loaded_extension_names()}


def _assert_same_data(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for key in a[name]:
            assert a[name][key].dtype == b[name][key].dtype, (name, key)
            np.testing.assert_array_equal(a[name][key], b[name][key])


def test_layout(tmp_path, disk_analyzer):
    folder = tmp_path / "an"
    assert json.loads((folder / "settings.json").read_text()) == {"return_in_uV": True, "peak_sign": "both",
                                                                  "peak_mode": "extremum"}
    info = json.loads((folder / "spikeinterface_info.json").read_text())
    assert info["object"] == "SortingAnalyzer"
    recording_json = json.loads((folder / "recording.json").read_text())
    assert recording_json["relative_paths"] is True and recording_json["kwargs"]["folder_path"] == "../rec"
    attributes = json.loads((folder / "recording_info" / "recording_attributes.json").read_text())
    assert attributes["num_samples"] == [4000, 2500] and attributes["channel_ids"][0] == "c0"
    assert (folder / "recording_info" / "probegroup.json").is_file()
    mask = np.load(folder / "sparsity_mask.npy")
    assert mask.dtype == bool and mask.shape == (4, 6)
    assert (folder / "sorting" / "spikes.npy").is_file() and (folder / "sorting" / "si_folder.json").is_file()
    for name in ALL:
        files = {p.name for p in (folder / "extensions" / name).iterdir()}
        assert {"params.json", "info.json", "run_info.json"} <= files
    assert np.load(folder / "extensions" / "templates" / "average.npy").dtype == np.float64
    assert np.load(folder / "extensions" / "waveforms" / "waveforms.npy").dtype == np.float32
    run_info = json.loads((folder / "extensions" / "waveforms" / "run_info.json").read_text())
    assert run_info["run_completed"] is True
    assert not [p for p in (folder / "extensions").iterdir() if p.name.startswith(".")]


def test_load_is_memory_mapped_and_equal(tmp_path, disk_analyzer):
    loaded = load_sorting_analyzer(tmp_path / "an")
    assert repr(loaded) == (
        "SortingAnalyzer: 6 channels - 4 units - 2 segments - binary_folder - sparse - has recording\n"
        "Loaded 4 extensions: random_spikes, waveforms, templates, noise_levels"
    )
    assert isinstance(loaded.get_extension("waveforms").data["waveforms"], np.memmap)
    _assert_same_data(_data(disk_analyzer), _data(loaded))
    assert loaded.get_extension("templates").params == disk_analyzer.get_extension("templates").params
    np.testing.assert_array_equal(loaded.sparsity.mask, disk_analyzer.sparsity.mask)
    lazy = load_sorting_analyzer(tmp_path / "an", load_extensions=False)
    assert lazy.get_loaded_extension_names() == []
    assert lazy.has_extension("templates")
    np.testing.assert_array_equal(lazy.get_extension("templates").get_data(), loaded.get_extension("templates").get_data())


def test_moved_folders_keep_the_recording(tmp_path, disk_analyzer):
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(tmp_path / "an", moved / "an")
    shutil.move(tmp_path / "rec", moved / "rec")
    loaded = load_sorting_analyzer(moved / "an")
    assert loaded.has_recording()
    np.testing.assert_array_equal(loaded.recording.get_traces(segment_index=1), make_pair()[0].get_traces(segment_index=1))


@pytest.mark.parametrize("fmt", ["binary_folder", "zarr"])
def test_deferred_load_reads_recording_and_probe_on_first_use(tmp_path, fmt):
    """The sicore command's load: recording and probe group are read when first used, not before."""
    from sicore.analyzer.analyzer import load_analyzer_deferred
    from sicore.analyzer.storage import Deferred

    recording, sorting = _saved_pair(tmp_path)
    folder = tmp_path / ("an.zarr" if fmt == "zarr" else "an")
    create_sorting_analyzer(sorting, recording, format=fmt, folder=folder, radius_um=30, **QUIET)
    loaded = load_analyzer_deferred(folder)
    assert isinstance(loaded._recording_value, Deferred) and isinstance(loaded._probegroup_value, Deferred)
    loaded.compute("random_spikes", max_spikes_per_unit=5, seed=0)  # needs neither
    assert isinstance(loaded._recording_value, Deferred) and isinstance(loaded._probegroup_value, Deferred)
    assert loaded.has_recording()
    np.testing.assert_array_equal(loaded.get_channel_locations(), recording.get_channel_locations())
    assert loaded.get_probe().get_contact_count() == recording.get_num_channels()  # the recording's probe

    # a recording that cannot be rebuilt: no warning at load; recordingless (with the warning) on first use
    shutil.rmtree(tmp_path / "rec")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_analyzer_deferred(folder)
    with pytest.warns(UserWarning, match="recording could not be loaded"):
        assert not loaded.has_recording()
    with pytest.raises(ValueError, match="recording"):
        loaded.compute("waveforms")
    np.testing.assert_array_equal(loaded.get_channel_locations(), recording.get_channel_locations())
    assert not isinstance(loaded._probegroup_value, Deferred)  # the stored probe group, read now


def test_recordingless(tmp_path, disk_analyzer):
    shutil.rmtree(tmp_path / "rec")
    with pytest.warns(UserWarning, match="recording"):
        loaded = load_sorting_analyzer(tmp_path / "an")
    assert not loaded.has_recording()
    assert repr(loaded).splitlines()[0] == "SortingAnalyzer: 6 channels - 4 units - 2 segments - binary_folder - sparse"
    assert loaded.get_num_samples(1) == 2500 and loaded.get_total_samples() == 6500
    np.testing.assert_array_equal(loaded.get_channel_locations(), make_pair()[0].get_channel_locations())
    np.testing.assert_array_equal(loaded.get_extension("templates").get_data(),
                                  disk_analyzer.get_extension("templates").get_data())
    with pytest.raises(ValueError, match="recording"):
        loaded.compute("waveforms")
    with pytest.raises(ValueError, match="recording"):
        loaded.recording
    # templates from existing waveforms need no recording
    loaded.compute("templates", operators=["median"])
    # a temporary recording must match; then computing works
    recording = make_pair()[0]
    with pytest.raises(ValueError, match="num_samples"):
        loaded.set_temporary_recording(recording.frame_slice(0, 2000))
    loaded.set_temporary_recording(recording)
    assert "has temporary recording" in repr(loaded)
    ext = loaded.compute("waveforms", **QUIET)
    np.testing.assert_array_equal(ext.get_data(), disk_analyzer.get_extension("waveforms").get_data())


def test_children_deleted_on_disk(tmp_path, disk_analyzer):
    extensions = tmp_path / "an" / "extensions"
    disk_analyzer.compute("random_spikes", seed=3)
    assert sorted(p.name for p in extensions.iterdir()) == ["noise_levels", "random_spikes"]
    assert load_sorting_analyzer(tmp_path / "an").get_loaded_extension_names() == ["random_spikes", "noise_levels"]
    disk_analyzer.compute(["waveforms", "templates"], **QUIET)
    disk_analyzer.delete_extension("random_spikes")
    assert sorted(p.name for p in extensions.iterdir()) == ["noise_levels"]


def test_save_false_keeps_disk_untouched(tmp_path, disk_analyzer):
    before = _data(load_sorting_analyzer(tmp_path / "an"))
    ext = disk_analyzer.compute("waveforms", ms_before=0.5, save=False, **QUIET)
    assert ext.params["ms_before"] == 0.5
    assert not disk_analyzer.has_extension("templates") or "templates" not in disk_analyzer.extensions
    reloaded = load_sorting_analyzer(tmp_path / "an")
    assert reloaded.get_extension("waveforms").params["ms_before"] == 1.0
    _assert_same_data(before, _data(reloaded))


def test_incomplete_extension_is_not_loaded(tmp_path, disk_analyzer):
    (tmp_path / "an" / "extensions" / "templates" / "run_info.json").unlink()
    with pytest.warns(UserWarning, match="incomplete"):
        loaded = load_sorting_analyzer(tmp_path / "an")
    assert loaded.get_loaded_extension_names() == ["random_spikes", "waveforms", "noise_levels"]
    run_info = tmp_path / "an" / "extensions" / "waveforms" / "run_info.json"
    run_info.write_text(json.dumps({"run_completed": False, "runtime_s": None}))
    with pytest.warns(UserWarning, match="incomplete"):
        assert not load_sorting_analyzer(tmp_path / "an").has_extension("waveforms")


_KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import sicore.analyzer.storage as storage
from sicore.analyzer import load_sorting_analyzer

original = storage.write_json
def write_json(path, data, *args, **kwargs):
    if str(path).endswith({kill_at!r}):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(path, data, *args, **kwargs)
storage.write_json = write_json
analyzer = load_sorting_analyzer({folder!r})
analyzer.compute("waveforms", ms_before=0.5, progress_bar=False)
"""


@pytest.mark.parametrize("kill_at", ["params.json", "run_info.json"])
def test_killed_compute_never_leaves_a_complete_looking_extension(tmp_path, disk_analyzer, kill_at):
    import os

    folder = tmp_path / "an"
    before = np.array(disk_analyzer.get_extension("waveforms").get_data())
    script = _KILL_SCRIPT.format(tests=os.path.dirname(__file__), kill_at=kill_at, folder=str(folder))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_sorting_analyzer(folder)
    # the previous waveforms are intact; templates (child) were deleted before the recompute
    assert loaded.get_extension("waveforms").params["ms_before"] == 1.0
    np.testing.assert_array_equal(loaded.get_extension("waveforms").get_data(), before)
    assert not loaded.has_extension("templates")
    # a fresh extension killed mid-write does not appear at all
    loaded.delete_extension("waveforms")
    subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True)
    assert not load_sorting_analyzer(folder).has_extension("waveforms")
    assert "waveforms" not in [p.name for p in (folder / "extensions").iterdir()]


def test_save_as_round_trips(tmp_path, pair):
    recording, sorting, *_ = pair
    memory = create_sorting_analyzer(sorting, recording, radius_um=30, **QUIET)
    memory.compute(ALL, extension_params=NOISE, **QUIET)
    on_disk = memory.save_as(folder=tmp_path / "copy", format="binary_folder")
    assert on_disk.format == "binary_folder" and on_disk.folder == tmp_path / "copy"
    _assert_same_data(_data(memory), _data(load_sorting_analyzer(tmp_path / "copy", load_extensions=True)))
    back = on_disk.save_as(format="memory")
    assert back.format == "memory"
    _assert_same_data(_data(memory), _data(back))
    with pytest.raises(FileExistsError, match="folder"):
        memory.save_as(folder=tmp_path / "copy", format="binary_folder")
    with pytest.raises(FileExistsError, match="folder"):
        create_sorting_analyzer(sorting, recording, format="binary_folder", folder=tmp_path / "copy")


def test_parallel_spawn_equals_serial(tmp_path, disk_analyzer):
    serial = np.array(disk_analyzer.get_extension("waveforms").get_data())
    ext = disk_analyzer.compute("waveforms", n_jobs=2, chunk_size=700, mp_context="spawn", **QUIET)
    np.testing.assert_array_equal(ext.get_data(), serial)
    templates = disk_analyzer.compute("templates", n_jobs=1, **QUIET)
    assert templates.get_data().dtype == np.float64


def test_hide_waveforms_computes_templates_from_recording(tmp_path, disk_analyzer):
    """hide_extension("waveforms"): templates come from the recording; the waveforms and params.json stay."""
    from analyzer_data import cutouts

    recording, sorting, traces_list, gains, offsets = make_pair()
    params_file = tmp_path / "an" / "extensions" / "templates" / "params.json"
    params_before = json.loads(params_file.read_text())
    analyzer = load_sorting_analyzer(tmp_path / "an")
    analyzer.hide_extension("waveforms")
    assert not analyzer.has_extension("waveforms") and analyzer.get_extension("waveforms") is None
    assert analyzer.get_hidden_extension_names() == ["waveforms"]
    templates = analyzer.compute("templates", **QUIET)
    assert templates.run_info["run_completed"]
    assert json.loads(params_file.read_text()) == params_before  # no extra key: SpikeInterface still loads it
    assert (tmp_path / "an" / "extensions" / "waveforms" / "waveforms.npy").is_file()
    # the average equals numpy means of cut-outs taken here, on each unit's sparse channels
    spikes = analyzer.get_extension("random_spikes").get_random_spikes()
    windows = cutouts(traces_list, spikes, templates.nbefore, templates.nafter, gains, offsets)
    average = templates.get_data(operator="average")
    for unit_index in range(analyzer.get_num_units()):
        channels = analyzer.sparsity.mask[unit_index]
        expected = windows[spikes["unit_index"] == unit_index].astype(np.float64).mean(axis=0)[:, channels]
        np.testing.assert_allclose(average[unit_index][:, channels], expected, rtol=1e-5, atol=1e-3)
    analyzer.unhide_extension("waveforms")
    assert analyzer.has_extension("waveforms")
    with pytest.raises(ValueError, match="extension_name"):
        analyzer.hide_extension("nope")


def test_main_channels(tmp_path, disk_analyzer):
    expected = np.array([0, 2, 5, 3])  # the channels the spikes were injected on
    np.testing.assert_array_equal(disk_analyzer.get_main_channels(), expected)
    ids = disk_analyzer.get_main_channels(outputs="id", with_dict=True)
    assert ids == dict(zip(disk_analyzer.unit_ids, disk_analyzer.channel_ids[expected]))
    # stored at create as SpikeInterface 0.105.3 does: sorting property saved with the sorting
    saved = np.load(tmp_path / "an" / "sorting" / "properties" / "main_channel_id.npy")
    np.testing.assert_array_equal(saved, disk_analyzer.channel_ids[expected])
    analyzer = load_sorting_analyzer(tmp_path / "an")
    analyzer.hide_extension("templates")
    np.testing.assert_array_equal(analyzer.main_channel_indices, expected)
    # a folder without the property (older sicore), without templates: from the sparsity (channel
    # closest to the centre of the unit's channels)
    (tmp_path / "an" / "sorting" / "properties" / "main_channel_id.npy").unlink()
    analyzer = load_sorting_analyzer(tmp_path / "an")
    analyzer.hide_extension("templates")
    centres = [int(np.argmin(np.abs(np.flatnonzero(m).mean() - np.arange(m.size)))) for m in analyzer.sparsity.mask]
    np.testing.assert_array_equal(analyzer.main_channel_indices, centres)
    # the sorting property wins when present
    sorting = disk_analyzer.sorting
    sorting.set_property("main_channel_id", disk_analyzer.channel_ids[[1, 1, 1, 1]])
    np.testing.assert_array_equal(disk_analyzer.get_main_channels(), [1, 1, 1, 1])
    with pytest.raises(ValueError, match="outputs"):
        disk_analyzer.get_main_channels(outputs="name")


@pytest.mark.parametrize("job", [{"n_jobs": 1}, {"n_jobs": 2, "chunk_size": 700},
                                 {"n_jobs": 2, "chunk_size": 900, "mp_context": "spawn"}])
def test_waveforms_are_written_in_place(tmp_path, disk_analyzer, job):
    """The pass writes waveforms.npy itself (workers included): the saved file is np.save's, the data a
    read-only memmap of it, and no temporary folder is left."""
    recording, sorting, *_ = make_pair()
    memory = create_sorting_analyzer(sorting, recording, radius_um=30, **QUIET)
    memory.compute(["random_spikes", "waveforms"], **QUIET)
    ext = disk_analyzer.compute("waveforms", **job, **QUIET)
    final = tmp_path / "an" / "extensions" / "waveforms" / "waveforms.npy"
    data = ext.data["waveforms"]
    assert isinstance(data, np.memmap) and data.mode == "r" and Path(data.filename) == final
    np.save(tmp_path / "expected.npy", np.asarray(memory.get_extension("waveforms").get_data()))
    assert final.read_bytes() == (tmp_path / "expected.npy").read_bytes()
    assert not [p.name for p in (tmp_path / "an" / "extensions").iterdir() if p.name.startswith(".")]


def test_waveforms_pass_never_holds_the_whole_array(tmp_path, disk_analyzer):
    """Python-side allocations while computing stay well under the waveforms array (numpy reports its
    buffers to tracemalloc): each chunk's cut-outs go to the file and are dropped. Kept in memory
    (save=False), the same compute holds the whole array."""
    import tracemalloc

    disk_analyzer.compute("random_spikes", method="all")
    peaks = {}
    for save in (True, False):
        tracemalloc.start()
        try:
            ext = disk_analyzer.compute("waveforms", ms_before=5.0, ms_after=5.0, chunk_size=100, save=save, **QUIET)
            peaks[save] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    array_bytes = ext.data["waveforms"].nbytes
    assert array_bytes > 400_000
    assert peaks[True] < array_bytes / 2 < array_bytes < peaks[False], (peaks, array_bytes)


def test_failed_compute_leaves_the_previous_extension_and_no_stage(tmp_path, disk_analyzer, monkeypatch):
    from sicore.analyzer import waveform_tools

    before = np.array(disk_analyzer.get_extension("waveforms").get_data())
    calls = []
    original = waveform_tools._cut_spikes

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return original(*args)

    monkeypatch.setattr(waveform_tools, "_cut_spikes", failing)
    for job in ({"n_jobs": 1, "chunk_size": 500}, {"n_jobs": 2, "chunk_size": 500}):
        calls.clear()
        with pytest.raises(RuntimeError, match="disk on fire"):
            disk_analyzer.compute("waveforms", ms_before=0.5, **job, **QUIET)
        extensions = tmp_path / "an" / "extensions"
        assert not [p.name for p in extensions.iterdir() if p.name.startswith(".")]
        loaded = load_sorting_analyzer(tmp_path / "an")
        assert loaded.get_extension("waveforms").params["ms_before"] == 1.0
        np.testing.assert_array_equal(loaded.get_extension("waveforms").get_data(), before)
