"""Per-session report of a SortingAnalyzer: a table of units, three figures, an HTML page and a JSON summary.

``make_report(analyzer_folder, output_folder, session_name)`` loads a saved analyzer (binary_folder or
zarr; the recording is not needed) and writes, with stable names so a Snakemake rule can declare them
as outputs and mark them with ``report(...)``:

* ``units.csv`` / ``units.html``: one row per unit (spike count, firing rate, main channel, amplitude,
  noise level and SNR); ``units.html`` is a self-contained fragment (table + scoped style)
* ``templates.png``, ``noise_levels.png``, ``probe_sparsity.png`` (see ``sicore.report_figures``)
* ``report.html``: the session page (table inline, figures by relative path)
* ``report.json``: a summary (counts, medians, settings, file names)

Amplitudes and noise levels are in µV when the analyzer works in µV (``return_scaled``); otherwise in
the recording's raw units, and the columns say so (``amplitude_raw`` instead of ``amplitude_uV``).

The report is one workflow job per session, so its cost is mostly start-up: it reads only the arrays it
shows (templates, noise levels, sparsity, spike counts; never the waveforms), keeps its small table as
plain columns (pandas only for the public ``build_units_table``) and lays its figures out by hand (no
constrained layout, few artists).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .template_tools import (
    get_template_extremum_amplitude,
    get_template_extremum_channel,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["make_report", "build_units_table", "units_columns", "REPORT_FILES"]

# Stable output names (the workflow declares them as rule outputs).
REPORT_FILES = {
    "units_csv": "units.csv",
    "units_html": "units.html",
    "templates": "templates.png",
    "noise_levels": "noise_levels.png",
    "probe_sparsity": "probe_sparsity.png",
    "report_html": "report.html",
    "report_json": "report.json",
}

_PEAK_SIGNS = ("neg", "pos", "both")


# ------------------------------------------------------------------------------ loading
def _load_analyzer(analyzer_or_folder):
    """A SortingAnalyzer from a folder (or the analyzer itself), without needing its recording."""
    if callable(getattr(analyzer_or_folder, "get_extension", None)):
        return analyzer_or_folder
    import warnings

    from .analyzer import load_sorting_analyzer

    folder = Path(analyzer_or_folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"analyzer folder {folder} does not exist")
    with warnings.catch_warnings():
        # A report only reads saved extensions: a missing raw recording (recordingless load) is expected.
        warnings.filterwarnings("ignore", message=".*recording.*")
        # get_extension() loads what the report shows on demand: the waveforms (the largest) never are
        return load_sorting_analyzer(folder, load_extensions=False)


def _check_templates(analyzer, where: str) -> None:
    if analyzer.get_extension("templates") is None:
        saved = analyzer.get_saved_extension_names() if analyzer.format != "memory" else list(analyzer.extensions)
        raise ValueError(
            f"cannot make a report: the analyzer {where} has no 'templates' extension "
            f"(computed extensions: {saved or 'none'}); compute it first, "
            "e.g. analyzer.compute(['random_spikes', 'templates', 'noise_levels'])"
        )


def _resolve_peak_sign(analyzer, peak_sign: str | None) -> str:
    peak_sign = analyzer.peak_sign if peak_sign is None else peak_sign
    if peak_sign not in _PEAK_SIGNS:
        raise ValueError(f"peak_sign must be one of {list(_PEAK_SIGNS)} or None, got {peak_sign!r}")
    return peak_sign


def _noise_levels(analyzer) -> np.ndarray | None:
    """Per-channel noise levels of the analyzer's noise_levels extension, None when not computed."""
    extension = analyzer.get_extension("noise_levels")
    if extension is None:
        return None
    return np.asarray(extension.get_data(), dtype=np.float64)


def _value_unit(analyzer) -> tuple[str, str]:
    """(column suffix, display unit) of amplitudes and noise levels."""
    return ("uV", "µV") if analyzer.return_scaled else ("raw", "raw units")


# -------------------------------------------------------------------------------- table
def build_units_table(analyzer, peak_sign: str | None = "neg") -> "pd.DataFrame":
    """One row per unit: spikes, firing rate, main channel, amplitude, noise level and SNR.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        An analyzer with the "templates" extension ("noise_levels" optional).
    peak_sign : "neg" | "pos" | "both" | None, default: "neg"
        Sign of the template peak used for the main channel and the amplitude; None uses the analyzer's
        ``peak_sign`` setting.

    Returns
    -------
    units : pandas.DataFrame
        Columns ``unit_id``, ``num_spikes``, ``firing_rate_hz`` (spikes / total duration of all segments),
        ``main_channel_id``, ``main_channel_index``, ``main_channel_x_um``, ``main_channel_y_um``,
        ``num_sparse_channels``, ``amplitude_uV`` (extremum of the average template on the main channel,
        absolute value), ``noise_level_uV`` (noise of the main channel) and ``snr`` (amplitude / noise level).
        With raw (unscaled) templates the suffix is ``_raw``. Noise level and SNR are NaN when the
        noise_levels extension is missing; the main channel is empty for a unit whose template is all zeros
        (no spikes).
    """
    import pandas as pd

    columns = units_columns(analyzer, peak_sign)
    columns["unit_id"] = pd.array(columns["unit_id"], dtype=object)
    columns["main_channel_id"] = pd.array(columns["main_channel_id"], dtype=object)
    columns["main_channel_index"] = pd.array(columns["main_channel_index"], dtype="Int64")
    return pd.DataFrame(columns)


def units_columns(analyzer, peak_sign: str | None = "neg") -> dict:
    """The columns of ``build_units_table`` as a dict (the report's table, without pandas).

    Parameters
    ----------
    analyzer : SortingAnalyzer
        An analyzer with the "templates" extension ("noise_levels" optional).
    peak_sign : "neg" | "pos" | "both" | None, default: "neg"
        As for ``build_units_table``.

    Returns
    -------
    units : dict
        ``{column: values}`` in column order: numpy arrays, except ``unit_id``, ``main_channel_id`` and
        ``main_channel_index``, which are lists of Python values (None for a unit without spikes).
    """
    _check_templates(analyzer, "given")
    peak_sign = _resolve_peak_sign(analyzer, peak_sign)
    suffix, _ = _value_unit(analyzer)
    unit_ids = analyzer.unit_ids
    num_units = len(unit_ids)

    counts = np.asarray(analyzer.sorting.count_num_spikes_per_unit(outputs="array"), dtype=np.int64)
    duration = float(analyzer.get_total_duration())
    rates = counts / duration if duration > 0 else np.full(num_units, np.nan)

    # "extremum": the peak value over time, as SpikeInterface's SNR metric (peak_mode="extremum").
    main_index = get_template_extremum_channel(analyzer, peak_sign=peak_sign, mode="extremum", outputs="index")
    amplitude = get_template_extremum_amplitude(analyzer, peak_sign=peak_sign, mode="extremum")
    main_index = np.array([int(main_index[u]) for u in unit_ids], dtype=np.int64)
    amplitude = np.array([float(amplitude[u]) for u in unit_ids], dtype=np.float64)

    templates = np.asarray(analyzer.get_extension("templates").get_templates(operator="average"))
    empty = ~np.any(templates != 0, axis=(1, 2)) if num_units else np.zeros(0, dtype=bool)

    channel_ids = np.asarray(analyzer.channel_ids)
    locations = _channel_locations_or_none(analyzer)

    def location(axis: int) -> np.ndarray:
        if locations is None or locations.shape[1] <= axis:
            return np.full(num_units, np.nan)
        values = locations[main_index, axis].astype(np.float64)
        values[empty] = np.nan
        return values

    mask = analyzer.sparsity_mask
    num_sparse = mask.sum(axis=1) if mask is not None else np.full(num_units, analyzer.get_num_channels())

    noise = _noise_levels(analyzer)
    if noise is None:
        unit_noise = np.full(num_units, np.nan)
    else:
        unit_noise = noise[main_index].copy()
        unit_noise[empty] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(unit_noise > 0, amplitude / unit_noise, np.nan)

    return {
        "unit_id": [u.item() if isinstance(u, np.generic) else u for u in unit_ids],
        "num_spikes": counts,
        "firing_rate_hz": rates,
        "main_channel_id": [None if empty[i] else channel_ids[main_index[i]].item() for i in range(num_units)],
        "main_channel_index": [None if empty[i] else int(main_index[i]) for i in range(num_units)],
        "main_channel_x_um": location(0),
        "main_channel_y_um": location(1),
        "num_sparse_channels": np.asarray(num_sparse, dtype=np.int64),
        f"amplitude_{suffix}": amplitude,
        f"noise_level_{suffix}": unit_noise,
        "snr": snr,
    }


def _num_rows(units: dict) -> int:
    return len(units["unit_id"])


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def write_units_csv(units: dict, path) -> None:
    """``units.csv``: a header, one row per unit; floats with 9 significant digits, missing values as NaN."""
    def cell(value) -> str:
        if _is_missing(value):
            return "NaN"
        if isinstance(value, (float, np.floating)):
            return f"{float(value):.9g}"
        return str(value.item() if isinstance(value, np.generic) else value)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(units))
    for i in range(_num_rows(units)):
        writer.writerow([cell(values[i]) for values in units.values()])
    Path(path).write_text(buffer.getvalue(), encoding="utf-8")


def _channel_locations_or_none(analyzer) -> np.ndarray | None:
    try:
        return np.asarray(analyzer.get_channel_locations(), dtype=np.float64)
    except ValueError:
        return None


# --------------------------------------------------------------------------------- HTML
_TABLE_STYLE = """<style>
.sicore-units table { border-collapse: collapse; font-family: sans-serif; font-size: 13px; }
.sicore-units th, .sicore-units td { padding: 3px 9px; border-bottom: 1px solid #ddd; text-align: right; }
.sicore-units th { background: #f2f2f2; position: sticky; top: 0; }
.sicore-units tr:hover td { background: #f7f7ff; }
.sicore-units caption { caption-side: top; text-align: left; padding: 4px 0; color: #444; }
.sicore-units p.note { color: #a04000; font-family: sans-serif; font-size: 13px; }
</style>"""

_HEADERS = {
    "unit_id": "unit",
    "num_spikes": "spikes",
    "firing_rate_hz": "firing rate (Hz)",
    "main_channel_id": "main channel",
    "main_channel_x_um": "x (µm)",
    "main_channel_y_um": "y (µm)",
    "num_sparse_channels": "sparse channels",
    "snr": "SNR",
}


def units_table_html(units, session_name: str, value_unit: str, has_noise: bool, peak_sign: str) -> str:
    """The units table as a self-contained HTML fragment (a ``div`` with a scoped ``style``).

    Parameters
    ----------
    units : dict or pandas.DataFrame
        The table of ``units_columns`` (or ``build_units_table``).
    session_name : str
        Shown in the caption.
    value_unit : str
        Unit of amplitudes and noise levels ("µV" or "raw units").
    has_noise : bool
        Whether noise levels were available (otherwise a note explains the empty columns).
    peak_sign : str
        The peak sign used, shown in the caption.
    """
    columns = {name: list(units[name]) for name in units}
    num_rows = len(columns["unit_id"])
    headers = dict(_HEADERS)
    digits = {"firing_rate_hz": 2, "main_channel_x_um": 0, "main_channel_y_um": 0, "snr": 1}
    for column in columns:
        if column.startswith("amplitude_"):
            headers[column], digits[column] = f"amplitude ({value_unit})", 1
        elif column.startswith("noise_level_"):
            headers[column], digits[column] = f"noise level ({value_unit})", 2
    # the channel index duplicates the channel id for the reader; it stays in units.csv
    shown = [c for c in columns if c != "main_channel_index"]

    def cell(column: str, value) -> str:
        if column in digits:
            return _fmt(value, digits[column])
        if _is_missing(value) or value is _pandas_na():
            return "n/a"
        return html.escape(str(value.item() if isinstance(value, np.generic) else value))

    caption = (f"<caption>Units of session {html.escape(session_name)}: {num_rows} units; amplitude = "
               f"extremum (peak sign {html.escape(peak_sign)}) of the average template on the main channel; "
               "SNR = amplitude / noise level of the main channel</caption>")
    lines = [f'<table class="dataframe">{caption}', "  <thead>", '    <tr style="text-align: right;">']
    lines += [f"      <th>{html.escape(headers.get(c, c))}</th>" for c in shown]
    lines += ["    </tr>", "  </thead>", "  <tbody>"]
    for i in range(num_rows):
        lines.append("    <tr>")
        lines += [f"      <td>{cell(c, columns[c][i])}</td>" for c in shown]
        lines.append("    </tr>")
    lines += ["  </tbody>", "</table>"]
    note = "" if has_noise else (
        '<p class="note">The noise_levels extension is not computed for this analyzer: '
        "noise level and SNR are not available (n/a).</p>")
    table = "\n".join(lines)
    return f'<div class="sicore-units">\n{_TABLE_STYLE}\n{note}{table}\n</div>\n'


def _pandas_na():
    """pandas' NA when pandas is already imported (a DataFrame was given), else a sentinel."""
    import sys

    pandas = sys.modules.get("pandas")
    return pandas.NA if pandas is not None else _NO_NA


_NO_NA = object()


def _fmt(value, digits: int) -> str:
    if _is_missing(value) or value is _pandas_na():
        return "n/a"
    return f"{float(value):.{digits}f}"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>sicore report: {title}</title>
<style>
body {{ font-family: sans-serif; margin: 24px auto; max-width: 1400px; padding: 0 16px; color: #222; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ccc; }}
dl.summary {{ display: grid; grid-template-columns: max-content auto; gap: 3px 14px; font-size: 14px; }}
dl.summary dt {{ font-weight: bold; }} dl.summary dd {{ margin: 0; }}
figure {{ margin: 12px 0; }} figure img {{ max-width: 100%; height: auto; border: 1px solid #eee; }}
figcaption {{ font-size: 13px; color: #444; max-width: 1000px; }}
</style>
</head>
<body>
<h1>Session {title}</h1>
<dl class="summary">
{summary}
</dl>
<h2>Units</h2>
<p>Also as <a href="{units_csv}">{units_csv}</a>.</p>
{table}
<h2>Templates</h2>
<figure><img src="{templates}" alt="average templates on the probe layout">
<figcaption>{templates_caption}</figcaption></figure>
<h2>Noise levels</h2>
<figure><img src="{noise_levels}" alt="noise level of each channel against its depth">
<figcaption>{noise_caption}</figcaption></figure>
<h2>Probe and sparsity</h2>
<figure><img src="{probe_sparsity}" alt="probe contacts with the sparsity of some units">
<figcaption>{probe_caption}</figcaption></figure>
</body>
</html>
"""


# --------------------------------------------------------------------------------- main
def make_report(analyzer_folder, output_folder, session_name: str, peak_sign: str | None = "neg",
                max_template_units: int = 12, max_sparsity_units: int = 4, dpi: int = 110,
                n_jobs: int = 1) -> dict:
    """Write the report of one session's SortingAnalyzer (table, figures, HTML page, JSON summary).

    Parameters
    ----------
    analyzer_folder : str or Path or SortingAnalyzer
        A saved analyzer (binary_folder or zarr; loaded with ``load_sorting_analyzer``, recordingless is
        fine), or an analyzer object. It needs the "templates" extension; "noise_levels" is optional.
    output_folder : str or Path
        Folder for the report files (created if needed; existing report files are replaced).
    session_name : str
        Name shown in titles and in ``report.json``.
    peak_sign : "neg" | "pos" | "both" | None, default: "neg"
        Sign of the template peak for main channels and amplitudes; None uses the analyzer's setting.
    max_template_units : int, default: 12
        The templates figure shows the first ``max_template_units`` units (in unit order).
    max_sparsity_units : int, default: 4
        Units whose sparsity is highlighted on the probe (chosen spread along the probe).
    dpi : int, default: 110
        Resolution of the PNG figures.
    n_jobs : int, default: 1
        With 2 or more (and where ``fork`` exists), a second process draws the noise-level and sparsity
        figures while this one draws the templates; the files are the same.

    Returns
    -------
    paths : dict
        ``{key: Path}`` of every file written, keys ``units_csv``, ``units_html``, ``templates``,
        ``noise_levels``, ``probe_sparsity``, ``report_html``, ``report_json`` (file names in
        ``REPORT_FILES``). ``noise_levels.png`` is always written (a notice when noise levels are missing)
        so the outputs are the same for every session.

    Raises
    ------
    ValueError
        When the analyzer has no "templates" extension (nothing is written).
    """
    from . import report_figures as figures

    if not isinstance(session_name, str) or not session_name:
        raise ValueError(f"session_name must be a non-empty string, got {session_name!r}")
    analyzer = _load_analyzer(analyzer_folder)
    where = f"at {analyzer_folder}" if isinstance(analyzer_folder, (str, Path)) else "given"
    _check_templates(analyzer, where)
    peak_sign = _resolve_peak_sign(analyzer, peak_sign)
    units = units_columns(analyzer, peak_sign=peak_sign)
    noise = _noise_levels(analyzer)
    suffix, value_unit = _value_unit(analyzer)

    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    paths = {key: output_folder / name for key, name in REPORT_FILES.items()}

    write_units_csv(units, paths["units_csv"])
    table_html = units_table_html(units, session_name, value_unit, noise is not None, peak_sign)
    paths["units_html"].write_text(table_html, encoding="utf-8")

    layout = figures.ChannelLayout.from_analyzer(analyzer)

    def templates_figure():
        return figures.plot_templates_on_probe(analyzer, units, layout, paths["templates"], session_name,
                                               value_unit, max_units=max_template_units, dpi=dpi)

    def probe_figures():
        figures.plot_noise_levels(noise, layout, paths["noise_levels"], session_name, value_unit, dpi=dpi)
        return figures.plot_probe_sparsity(analyzer, units, layout, paths["probe_sparsity"], session_name,
                                           max_units=max_sparsity_units, dpi=dpi)

    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int, got {n_jobs!r}")
    if n_jobs > 1:
        shown_template_units, highlighted = _run_side_by_side(templates_figure, probe_figures)
    else:
        shown_template_units, highlighted = templates_figure(), probe_figures()

    summary = _summary(analyzer, units, noise, session_name, peak_sign, suffix, value_unit,
                       shown_template_units, highlighted)
    paths["report_json"].write_text(json.dumps(summary, indent=2, default=_json_default) + "\n", encoding="utf-8")
    paths["report_html"].write_text(_page(summary, table_html, value_unit), encoding="utf-8")
    return paths


def _run_side_by_side(here, there) -> tuple:
    """``(here(), there())`` with ``there`` run in a forked child process (the report is one job with
    a few figures: drawing two at once halves the longest part of it). Falls back to one process where
    ``fork`` does not exist. The child's exception is raised here, with its traceback text."""
    import multiprocessing
    import traceback

    if "fork" not in multiprocessing.get_all_start_methods():
        return here(), there()
    import matplotlib.backends.backend_agg  # noqa: F401  imported once, before the fork, for both

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child():
        try:
            sender.send(("ok", there()))
        except BaseException:  # noqa: BLE001  reported to the parent, which raises it
            sender.send(("error", traceback.format_exc()))

    process = context.Process(target=child, daemon=True)
    process.start()
    sender.close()
    try:
        first = here()
    finally:
        try:
            status, second = receiver.recv()
        except EOFError:
            status, second = "error", f"the figure process ended with exit code {process.exitcode}"
        process.join()
        receiver.close()
    if status != "ok":
        raise RuntimeError(f"drawing the noise-level and sparsity figures failed:\n{second}")
    return first, second


def _summary(analyzer, units: dict, noise, session_name: str, peak_sign: str,
             suffix: str, value_unit: str, template_units: list, highlighted: list) -> dict:
    def median(column: str):
        values = np.asarray(units[column], dtype=np.float64)
        values = values[np.isfinite(values)]
        return float(np.median(values)) if values.size else None

    folder = analyzer.folder  # None for an in-memory analyzer
    return {
        "session_name": session_name,
        "analyzer_folder": None if folder is None else str(folder),
        "analyzer_format": analyzer.format,
        "num_units": int(analyzer.get_num_units()),
        "num_channels": int(analyzer.get_num_channels()),
        "num_segments": int(analyzer.get_num_segments()),
        "sampling_frequency_hz": float(analyzer.sampling_frequency),
        "total_duration_s": float(analyzer.get_total_duration()),
        "total_num_spikes": int(np.sum(units["num_spikes"])),
        "sparse": bool(analyzer.is_sparse()),
        "has_recording": bool(analyzer.has_recording()),
        # computed extensions (a saved analyzer's are loaded on demand: list what is on disk)
        "extensions": (analyzer.get_loaded_extension_names() if analyzer.format == "memory"
                       else analyzer.get_saved_extension_names()),
        "has_noise_levels": noise is not None,
        "peak_sign": peak_sign,
        "amplitude_unit": value_unit,
        "amplitude_column": f"amplitude_{suffix}",
        "noise_level_column": f"noise_level_{suffix}",
        "median_firing_rate_hz": median("firing_rate_hz"),
        "median_amplitude": median(f"amplitude_{suffix}"),
        "median_noise_level": None if noise is None else float(np.median(noise)),
        "median_snr": median("snr"),
        "template_figure_unit_ids": template_units,
        "sparsity_figure_unit_ids": highlighted,
        "files": dict(REPORT_FILES),
    }


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _page(summary: dict, table_html: str, value_unit: str) -> str:
    def number(value, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    rows = [
        ("analyzer", f"{summary['analyzer_folder'] or '(in memory)'} ({summary['analyzer_format']})"),
        ("units", str(summary["num_units"])),
        ("channels", f"{summary['num_channels']} ({'sparse' if summary['sparse'] else 'dense'} templates)"),
        ("duration", f"{summary['total_duration_s']:.2f} s in {summary['num_segments']} segment(s) at "
                     f"{summary['sampling_frequency_hz']:g} Hz"),
        ("spikes", str(summary["total_num_spikes"])),
        ("median firing rate", f"{number(summary['median_firing_rate_hz'], 2)} Hz"),
        ("median amplitude", f"{number(summary['median_amplitude'], 1)} {value_unit}"),
        ("median noise level", f"{number(summary['median_noise_level'], 2)} {value_unit}"
         if summary["has_noise_levels"] else "n/a (noise_levels extension not computed)"),
        ("median SNR", number(summary["median_snr"], 1)),
        ("extensions", ", ".join(summary["extensions"])),
    ]
    summary_html = "\n".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    num_shown = len(summary["template_figure_unit_ids"])
    templates_caption = (
        f"Average template of {num_shown} of {summary['num_units']} units (first ones in unit order), one panel "
        "per unit: each trace is drawn at its channel's position on the probe (horizontal: contact x plus time; "
        "vertical: contact depth plus scaled amplitude). Only the unit's sparse channels are drawn; the main "
        "channel is the thick trace. The vertical bar gives the amplitude scale of each panel.")
    noise_caption = (f"Noise level ({value_unit}) of each channel against the channel's depth on the probe."
                     if summary["has_noise_levels"] else
                     "The noise_levels extension is not computed for this analyzer: no noise levels to show.")
    probe_caption = (
        "Probe contacts; the sparse channels of a few units (spread along the probe) are coloured, the main "
        "channel of each is outlined in black. On probes taller than 700 µm, the left panel shows the whole probe "
        "and the unit panels are zoomed (dashed boxes).")
    return _PAGE.format(
        title=html.escape(summary["session_name"]), summary=summary_html, table=table_html,
        units_csv=REPORT_FILES["units_csv"], templates=REPORT_FILES["templates"],
        noise_levels=REPORT_FILES["noise_levels"], probe_sparsity=REPORT_FILES["probe_sparsity"],
        templates_caption=html.escape(templates_caption), noise_caption=html.escape(noise_caption),
        probe_caption=html.escape(probe_caption))
