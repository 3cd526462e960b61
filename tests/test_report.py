"""Session report (sicore.report): the table's numbers against numpy, the files, binary/zarr/recordingless."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import sicore as si
from sicore.report import REPORT_FILES, build_units_table, make_report

DURATION = 4.0
PNG_NAMES = ("templates.png", "noise_levels.png", "probe_sparsity.png")


@pytest.fixture(scope="module")
def ground_truth():
    recording, sorting = si.generate_ground_truth_recording(durations=[DURATION], num_channels=16, num_units=6,
                                                            seed=0)
    return recording, sorting


@pytest.fixture(scope="module")
def binary_folder(ground_truth, tmp_path_factory):
    """binary_folder analyzer of the lazy generated recording (loads with its recording)."""
    recording, sorting = ground_truth
    folder = tmp_path_factory.mktemp("binary") / "analyzer"
    analyzer = si.create_sorting_analyzer(sorting, recording, format="binary_folder", folder=folder)
    analyzer.compute(["random_spikes", "templates", "noise_levels"], progress_bar=False)
    return folder


@pytest.fixture(scope="module")
def zarr_folder(ground_truth, tmp_path_factory):
    """zarr analyzer of an in-memory copy of the recording: it loads recordingless."""
    recording, sorting = ground_truth
    memory = si.NumpyRecording([recording.get_traces()], recording.sampling_frequency,
                               channel_ids=recording.channel_ids)
    memory.set_channel_gains(recording.get_channel_gains())
    memory.set_channel_offsets(recording.get_channel_offsets())
    memory = memory.set_probe(recording.get_probe())
    folder = tmp_path_factory.mktemp("zarr") / "analyzer.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyzer = si.create_sorting_analyzer(sorting, memory, format="zarr", folder=folder)
        analyzer.compute(["random_spikes", "waveforms", "templates", "noise_levels"], progress_bar=False)
    return folder


def _load(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return si.load_sorting_analyzer(folder)


def _expected(analyzer, sorting, peak_sign="neg"):
    """Expected table columns, computed with numpy from the spike vector and the templates array."""
    spikes = sorting.to_spike_vector()
    counts = np.bincount(spikes["unit_index"], minlength=sorting.get_num_units())
    templates = np.asarray(analyzer.get_extension("templates").get_templates(operator="average"))
    if peak_sign == "both":
        per_channel = np.abs(templates).max(axis=1)  # argmax of |template|
    elif peak_sign == "neg":
        per_channel = -templates.min(axis=1)
    else:
        per_channel = templates.max(axis=1)
    main = np.argmax(per_channel, axis=1)
    amplitude = per_channel[np.arange(main.size), main]
    expected = {"counts": counts, "rates": counts / DURATION, "main": main, "amplitude": amplitude}
    if analyzer.get_extension("noise_levels") is not None:
        noise = np.asarray(analyzer.get_extension("noise_levels").get_data())[main]
        expected.update(noise=noise, snr=amplitude / noise)
    return expected


def _check_table(units, analyzer, sorting, peak_sign="neg"):
    expected = _expected(analyzer, sorting, peak_sign)
    assert list(units["unit_id"]) == list(sorting.unit_ids)
    np.testing.assert_array_equal(units["num_spikes"].to_numpy(), expected["counts"])
    np.testing.assert_allclose(units["firing_rate_hz"].to_numpy(dtype=float), expected["rates"], rtol=1e-12)
    np.testing.assert_array_equal(units["main_channel_index"].to_numpy(dtype=int), expected["main"])
    assert list(units["main_channel_id"]) == list(np.asarray(analyzer.channel_ids)[expected["main"]])
    locations = analyzer.get_channel_locations()
    np.testing.assert_allclose(units["main_channel_y_um"].to_numpy(dtype=float), locations[expected["main"], 1])
    np.testing.assert_allclose(units["amplitude_uV"].to_numpy(dtype=float), expected["amplitude"], rtol=1e-6)
    if "noise" in expected:
        np.testing.assert_allclose(units["noise_level_uV"].to_numpy(dtype=float), expected["noise"], rtol=1e-6)
        np.testing.assert_allclose(units["snr"].to_numpy(dtype=float), expected["snr"], rtol=1e-6)
    return expected


def _check_files(paths, output, session_name):
    assert set(paths) == set(REPORT_FILES)
    for key, name in REPORT_FILES.items():
        assert paths[key] == output / name and paths[key].is_file() and paths[key].stat().st_size > 0
    for name in PNG_NAMES:
        with open(output / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        with Image.open(output / name) as image:
            image.verify()
        with Image.open(output / name) as image:
            width, height = image.size
            pixels = np.asarray(image.convert("L"))
        assert 400 <= width <= 4000 and 250 <= height <= 4000, (name, image.size)
        assert pixels.std() > 5  # something is drawn, not a blank canvas
    page = (output / "report.html").read_text(encoding="utf-8")
    for name in PNG_NAMES + ("units.csv",):
        assert f'"{name}"' in page  # relative links
    assert session_name in page and '<table class="dataframe">' in page
    return json.loads((output / "report.json").read_text(encoding="utf-8"))


def test_report_binary_folder(binary_folder, ground_truth, tmp_path):
    recording, sorting = ground_truth
    output = tmp_path / "report"
    paths = make_report(binary_folder, output, "mouse1_day1")
    summary = _check_files(paths, output, "mouse1_day1")
    analyzer = _load(binary_folder)
    units = pd.read_csv(paths["units_csv"], dtype={"unit_id": str, "main_channel_id": str})
    expected = _check_table(units, analyzer, sorting)
    assert (units["snr"] > 0).all() and np.isfinite(units["snr"]).all()

    assert summary["session_name"] == "mouse1_day1" and summary["has_noise_levels"] is True
    assert summary["num_units"] == 6 and summary["num_channels"] == 16
    assert summary["total_num_spikes"] == int(expected["counts"].sum())
    assert summary["total_duration_s"] == pytest.approx(DURATION)
    assert summary["median_snr"] == pytest.approx(float(np.median(expected["snr"])))
    assert summary["amplitude_column"] == "amplitude_uV" and summary["peak_sign"] == "neg"
    fragment = paths["units_html"].read_text(encoding="utf-8")
    assert fragment.count("<tr>") == 6 and "amplitude (µV)" in fragment and "SNR" in fragment


def test_report_zarr_recordingless(zarr_folder, ground_truth, tmp_path):
    recording, sorting = ground_truth
    analyzer = _load(zarr_folder)
    assert analyzer.format == "zarr" and not analyzer.has_recording()
    output = tmp_path / "nested" / "report"  # parents are created
    paths = make_report(zarr_folder, output, "zarr_session")
    summary = _check_files(paths, output, "zarr_session")
    assert summary["analyzer_format"] == "zarr" and summary["has_recording"] is False
    units = pd.read_csv(paths["units_csv"], dtype={"unit_id": str, "main_channel_id": str})
    _check_table(units, analyzer, sorting)


def test_peak_sign_both_is_argmax_abs(binary_folder, ground_truth):
    _, sorting = ground_truth
    analyzer = _load(binary_folder)
    _check_table(build_units_table(analyzer, peak_sign="both"), analyzer, sorting, peak_sign="both")
    # None: the analyzer's own setting ("both" for analyzers made by create_sorting_analyzer)
    assert analyzer.peak_sign == "both"
    _check_table(build_units_table(analyzer, peak_sign=None), analyzer, sorting, peak_sign="both")
    with pytest.raises(ValueError, match="peak_sign"):
        build_units_table(analyzer, peak_sign="up")


def test_report_without_noise_levels(binary_folder, ground_truth, tmp_path):
    _, sorting = ground_truth
    copy = _load(binary_folder).save_as(folder=tmp_path / "no_noise", format="binary_folder")
    copy.delete_extension("noise_levels")
    output = tmp_path / "report"
    paths = make_report(tmp_path / "no_noise", output, "no_noise")
    summary = _check_files(paths, output, "no_noise")
    assert summary["has_noise_levels"] is False
    assert summary["median_snr"] is None and summary["median_noise_level"] is None

    units = pd.read_csv(paths["units_csv"], dtype={"unit_id": str, "main_channel_id": str})
    assert units["noise_level_uV"].isna().all() and units["snr"].isna().all()
    assert "NaN" in paths["units_csv"].read_text()  # written explicitly, not as empty cells
    _check_table(units, _load(tmp_path / "no_noise"), sorting)  # the other columns are unaffected
    fragment = paths["units_html"].read_text(encoding="utf-8")
    assert "noise_levels extension is not computed" in fragment and "n/a" in fragment


def test_missing_templates_is_a_clear_error(ground_truth, tmp_path):
    recording, sorting = ground_truth
    folder = tmp_path / "analyzer"
    analyzer = si.create_sorting_analyzer(sorting, recording, format="binary_folder", folder=folder)
    analyzer.compute("random_spikes")
    output = tmp_path / "report"
    with pytest.raises(ValueError, match="no 'templates' extension.*random_spikes"):
        make_report(folder, output, "s")
    assert not output.exists()  # nothing written
    with pytest.raises(FileNotFoundError):
        make_report(tmp_path / "missing", output, "s")
    with pytest.raises(ValueError, match="session_name"):
        make_report(folder, output, "")


def test_raw_dense_analyzer_and_empty_unit(ground_truth, tmp_path):
    """Unscaled templates give *_raw columns; dense templates and a unit without spikes still plot."""
    recording, sorting = ground_truth
    spikes = sorting.to_spike_vector()
    times = {str(u): spikes["sample_index"][spikes["unit_index"] == i] for i, u in enumerate(sorting.unit_ids)}
    times["silent"] = np.array([], dtype=np.int64)
    with_empty = si.NumpySorting.from_unit_dict([times], sorting.sampling_frequency)
    analyzer = si.create_sorting_analyzer(with_empty, recording, sparse=False, return_scaled=False)
    analyzer.compute(["random_spikes", "templates"], progress_bar=False)
    output = tmp_path / "report"
    paths = make_report(analyzer, output, "raw", dpi=60)
    units = pd.read_csv(paths["units_csv"], dtype={"unit_id": str, "main_channel_id": str})
    assert "amplitude_raw" in units.columns and "noise_level_raw" in units.columns
    assert "amplitude_uV" not in units.columns
    silent = units[units["unit_id"] == "silent"].iloc[0]
    assert silent["num_spikes"] == 0 and silent["firing_rate_hz"] == 0
    assert pd.isna(silent["main_channel_id"]) and silent["amplitude_raw"] == 0
    assert json.loads(paths["report_json"].read_text())["amplitude_unit"] == "raw units"
    for name in PNG_NAMES:
        with Image.open(output / name) as image:
            assert min(image.size) >= 150


def test_report_imports_neither_pandas_nor_pyplot(binary_folder, tmp_path):
    """The report job's start-up: no pandas (a small table needs none) and no pyplot state machine; the
    waveforms (the largest extension) are never loaded."""
    import subprocess
    import sys

    script = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from sicore.report import make_report\n"
        f"make_report({str(binary_folder)!r}, {str(tmp_path / 'report')!r}, 's')\n"
        "print(sorted(m for m in ('pandas', 'matplotlib.pyplot') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "report" / "templates.png").is_file()


def test_two_processes_draw_the_same_files(binary_folder, tmp_path):
    """n_jobs=2 draws the noise-level and sparsity figures in a second process: the same bytes."""
    one = make_report(binary_folder, tmp_path / "one", "s", n_jobs=1)
    two = make_report(binary_folder, tmp_path / "two", "s", n_jobs=2)
    for key in one:
        assert one[key].read_bytes() == two[key].read_bytes(), key
    with pytest.raises(ValueError, match="n_jobs must be a positive int"):
        make_report(binary_folder, tmp_path / "bad", "s", n_jobs=0)


def test_an_error_in_the_figure_process_is_raised(binary_folder, tmp_path, monkeypatch):
    from sicore import report_figures

    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(report_figures, "plot_probe_sparsity", broken)
    with pytest.raises(RuntimeError, match=r"(?s)sparsity figures failed.*disk full \(simulated\)"):
        make_report(binary_folder, tmp_path / "report", "s", n_jobs=2)
