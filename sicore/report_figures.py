"""Figures of the session report (``sicore.report``): templates on the probe, noise levels, probe sparsity.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot, so making a
report neither needs a display nor changes the caller's matplotlib backend or global state.

Speed (the report is one job per session): the margins are fixed in inches (``_grid``) instead of a
constrained layout, which measures every tick label of every panel; each template panel draws its traces
as two line collections, not one artist per channel; contacts are polygon collections.

The ``units`` table the plotting functions take is ``sicore.report.units_columns`` (a dict of columns) or
the DataFrame of ``build_units_table``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ChannelLayout", "plot_templates_on_probe", "plot_noise_levels", "plot_probe_sparsity"]

_GREY = "#d0d0d0"
# Probes taller than this (µm) get an overview plus zoomed panels in the sparsity figure.
_ZOOM_ABOVE_UM = 700.0
_MIN_ZOOM_HEIGHT_UM = 260.0
# Channels drawn for a dense (non-sparse) analyzer: within this radius of the main channel (SI's default).
_DENSE_RADIUS_UM = 100.0


def _unit_colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _grid(figure, nrows: int, ncols: int, left: float, right: float, bottom: float, top: float,
          col_gap: float = 0.0, row_gap: float = 0.0, width_ratios=None) -> dict:
    """``gridspec_kw`` with margins and gaps given in inches (fixed room for labels, titles, scale bars)."""
    width, height = figure.get_size_inches()
    axes_width = max((width - left - right - (ncols - 1) * col_gap) / ncols, 0.1)
    axes_height = max((height - top - bottom - (nrows - 1) * row_gap) / nrows, 0.1)
    grid = {"left": left / width, "right": 1 - right / width, "bottom": bottom / height, "top": 1 - top / height,
            "wspace": col_gap / axes_width, "hspace": row_gap / axes_height}
    if width_ratios is not None:
        grid["width_ratios"] = width_ratios
    return grid


def _column(units, name: str) -> list:
    """One column of the units table (dict of columns or DataFrame) as a list."""
    return list(units[name])


def _num_units(units) -> int:
    return len(units["unit_id"])


def _save(figure, path, dpi: int) -> None:
    # zlib level 3 instead of 6: a few % larger files, a third less encoding time
    figure.savefig(Path(path), dpi=dpi, format="png", facecolor="white", pil_kwargs={"compress_level": 3})


def _nice_number(value: float) -> float:
    """The largest of 1, 2, 5 x 10^k not above ``value`` (for scale bars)."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (5, 2, 1):
        if step * 10**exponent <= value:
            return float(step * 10**exponent)
    return float(10**exponent)


def _unit_label(unit_id) -> str:
    return str(unit_id.item() if isinstance(unit_id, np.generic) else unit_id)


# ------------------------------------------------------------------------------ layout
@dataclass
class ChannelLayout:
    """Channel positions of an analyzer and the pitches used to scale the drawings.

    Attributes
    ----------
    locations : np.ndarray
        ``(num_channels, 2)`` x, y in µm (``has_locations`` False: x = 0, y = 20 µm * channel index).
    has_locations : bool
        Whether the positions come from the probe / channel locations.
    probegroup : probeinterface.ProbeGroup or None
        The probes (for ``plot_probe``), None when unavailable.
    column_pitch : float
        Smallest horizontal distance between contact columns (µm), or the row pitch for one column.
    row_pitch : float
        Smallest vertical distance between contacts of the same column (µm).
    """

    locations: np.ndarray
    has_locations: bool
    probegroup: object
    column_pitch: float
    row_pitch: float

    @classmethod
    def from_analyzer(cls, analyzer) -> "ChannelLayout":
        num_channels = analyzer.get_num_channels()
        try:
            locations = np.asarray(analyzer.get_channel_locations(), dtype=np.float64)[:, :2]
            has_locations = locations.shape == (num_channels, 2)
        except ValueError:
            has_locations = False
        if not has_locations:
            locations = np.stack([np.zeros(num_channels), 20.0 * np.arange(num_channels)], axis=1)
        try:
            probegroup = analyzer.get_probegroup() if has_locations else None
        except ValueError:
            probegroup = None
        if probegroup is not None and any(p.ndim != 2 or p.contact_sides is not None for p in probegroup.probes):
            probegroup = None  # 3D and two-sided probes: the scatter fallback is clearer
        row_pitch, column_pitch = _pitches(locations)
        return cls(locations, has_locations, probegroup, column_pitch, row_pitch)

    @property
    def depth_label(self) -> str:
        return "depth y (µm)" if self.has_locations else "channel (no probe: 20 µm per channel)"


def _pitches(locations: np.ndarray) -> tuple[float, float]:
    """(row pitch within a column, column pitch) in µm, robust to irregular layouts."""
    x = np.round(locations[:, 0], 1)
    y = locations[:, 1]
    row_steps = []
    for column in np.unique(x):
        ys = np.unique(y[x == column])
        if ys.size > 1:
            row_steps.append(np.min(np.diff(ys)))
    columns = np.unique(x)
    if row_steps:
        row_pitch = float(np.min(row_steps))
    elif locations.shape[0] > 1:
        distances = np.hypot(*(locations[:, None, :] - locations[None, :, :]).transpose(2, 0, 1))
        distances[distances == 0] = np.inf
        row_pitch = float(np.min(distances)) if np.isfinite(distances).any() else 20.0
    else:
        row_pitch = 20.0
    column_pitch = float(np.min(np.diff(columns))) if columns.size > 1 else row_pitch
    # Many close columns (irregular layouts): keep traces readable even if neighbours overlap a bit.
    column_pitch = max(column_pitch, 0.5 * row_pitch)
    return max(row_pitch, 1e-3), max(column_pitch, 1e-3)


def _unit_channels(analyzer, unit_index: int, main_index: int, layout: ChannelLayout) -> np.ndarray:
    """Channels drawn for a unit: its sparse channels, or those near its main channel when dense."""
    mask = analyzer.sparsity_mask
    if mask is not None and mask[unit_index].any():
        return np.flatnonzero(mask[unit_index])
    distances = np.linalg.norm(layout.locations - layout.locations[main_index], axis=1)
    return np.flatnonzero(distances <= _DENSE_RADIUS_UM)


# --------------------------------------------------------------------------- templates
def plot_templates_on_probe(analyzer, units, layout: ChannelLayout, path, session_name: str, value_unit: str,
                            max_units: int = 12, dpi: int = 110) -> list:
    """Average template of the first units, each trace drawn at its channel's position (``templates.png``).

    Parameters
    ----------
    analyzer : SortingAnalyzer
        Analyzer with the "templates" extension.
    units : dict or pandas.DataFrame
        The units table (``sicore.report.units_columns``), for main channels and amplitudes.
    layout : ChannelLayout
        Channel positions and pitches.
    path : str or Path
        Output PNG.
    session_name : str
        For the title.
    value_unit : str
        Unit of the template values ("µV" or "raw units").
    max_units : int, default: 12
        Units drawn (the first ones in unit order), one panel each.
    dpi : int, default: 110
        Resolution.

    Returns
    -------
    unit_ids : list
        The units drawn.
    """
    extension = analyzer.get_extension("templates")
    templates = np.asarray(extension.get_templates(operator="average"), dtype=np.float64)
    fs = analyzer.sampling_frequency
    ms_before, ms_after = float(extension.params["ms_before"]), float(extension.params["ms_after"])
    num_units = _num_units(units)
    shown = list(range(min(max(int(max_units), 0), num_units)))
    amplitude_column = next(c for c in units if c.startswith("amplitude_"))
    unit_id_col, main_index_col = _column(units, "unit_id"), _column(units, "main_channel_index")
    main_id_col, amplitude_col = _column(units, "main_channel_id"), _column(units, amplitude_column)

    if not shown:
        figure = _new_figure(6.0, 2.5)
        ax = figure.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no units in this session", ha="center", va="center", fontsize=12)
        figure.suptitle(f"{session_name}: average templates", fontsize=12)
        _save(figure, path, dpi)
        return []

    num_columns = min(len(shown), 4 if len(shown) <= 12 else math.ceil(math.sqrt(len(shown) * 1.5)))
    num_rows = math.ceil(len(shown) / num_columns)
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator

    figure = _new_figure(2.7 * num_columns + 0.6, 3.1 * num_rows + 0.9)
    rotate_x = layout.column_pitch > 0 and np.unique(np.round(layout.locations[:, 0], 1)).size > 4
    # the column gap holds the amplitude scale bar of a panel and the y tick labels of the next one
    axes = figure.subplots(num_rows, num_columns, squeeze=False, gridspec_kw=_grid(
        figure, num_rows, num_columns, left=0.85, right=0.4, bottom=0.75 if rotate_x else 0.55, top=0.85,
        col_gap=0.85, row_gap=0.85 if rotate_x else 0.7))
    colors = _unit_colors(min(len(shown), 10))  # one unit per panel: strong colours may repeat
    width = 0.8 * layout.column_pitch  # trace width (µm): neighbouring columns never overlap
    num_samples = templates.shape[1]
    time_offsets = (np.arange(num_samples) / max(num_samples - 1, 1) - 0.5) * width

    for k, unit_index in enumerate(shown):
        ax = axes.flat[k]
        template = templates[unit_index]
        unit_label = _unit_label(unit_id_col[unit_index])
        if _isna(main_index_col[unit_index]) or not np.any(template):
            ax.text(0.5, 0.5, "no spikes:\nempty template", ha="center", va="center", fontsize=8,
                    transform=ax.transAxes)
            ax.set_title(f"unit {unit_label}", fontsize=9, y=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        main_index = int(main_index_col[unit_index])
        channels = _unit_channels(analyzer, unit_index, main_index, layout)
        peak = float(np.max(np.abs(template[:, channels])))
        y_scale = 0.9 * layout.row_pitch / peak if peak > 0 else 1.0
        color = colors[k % len(colors)]
        x0, y0 = layout.locations[channels, 0], layout.locations[channels, 1]
        # (channels, samples, 2) polylines: the baselines, then the traces (main channel thick, on top)
        baselines = np.stack([np.stack([x0 + time_offsets[0], y0], axis=1),
                              np.stack([x0 + time_offsets[-1], y0], axis=1)], axis=1)
        traces = np.stack([x0[:, None] + time_offsets[None, :],
                           y0[:, None] + template[:, channels].T * y_scale], axis=2)
        is_main = channels == main_index
        ax.add_collection(LineCollection(baselines, colors="0.8", linewidths=0.5, zorder=1), autolim=False)
        ax.add_collection(LineCollection(traces[~is_main], colors=[color], linewidths=0.9, zorder=2), autolim=False)
        ax.add_collection(LineCollection(traces[is_main], colors=[color], linewidths=1.8, zorder=3), autolim=False)
        xs, ys = layout.locations[channels, 0], layout.locations[channels, 1]
        low = float(np.min(ys + template[:, channels].min(axis=0) * y_scale))
        high = float(np.max(ys + template[:, channels].max(axis=0) * y_scale))
        pad_y = 0.25 * layout.row_pitch
        ax.set_ylim(low - pad_y, high + pad_y)
        ax.set_xlim(xs.min() - 0.6 * width, xs.max() + 0.6 * width)
        _amplitude_bar(ax, peak, y_scale, value_unit)
        ax.set_xticks(np.unique(np.round(xs, 1)))
        ax.tick_params(labelsize=7, length=2, pad=1)
        if np.unique(np.round(xs, 1)).size > 4:
            ax.tick_params(axis="x", labelrotation=90)
        ax.set_title(f"unit {unit_label}: {float(amplitude_col[unit_index]):.0f} {value_unit}\n"
                     f"main channel {main_id_col[unit_index]} ({channels.size} ch)", fontsize=8.5, y=1.0)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))  # fewer ticks: each costs a text layout
    for ax in axes.flat[len(shown):]:
        ax.set_axis_off()

    what = f"all {num_units} units" if len(shown) == num_units else f"first {len(shown)} of {num_units} units"
    figure.suptitle(f"{session_name}: average templates on the probe ({what})", fontsize=12)
    figure.supxlabel(f"contact x (µm); each trace spans {ms_before + ms_after:g} ms "
                     f"({ms_before:g} ms before the spike); thick trace: main channel; bar: amplitude scale",
                     fontsize=9)
    figure.supylabel(layout.depth_label, fontsize=10)
    _save(figure, path, dpi)
    return [unit_id_col[i] for i in shown]


def _isna(value) -> bool:
    """None, NaN or pandas' NA (a DataFrame's missing Int64), without importing pandas."""
    if value is None or type(value).__name__ == "NAType":
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _amplitude_bar(ax, peak: float, y_scale: float, value_unit: str) -> None:
    """A vertical scale bar (a round amplitude) just right of the panel, outside the traces."""
    from matplotlib.transforms import blended_transform_factory

    value = _nice_number(0.5 * peak)
    transform = blended_transform_factory(ax.transAxes, ax.transData)
    bottom = ax.get_ylim()[0] + 0.04 * (ax.get_ylim()[1] - ax.get_ylim()[0])
    ax.plot([1.04, 1.04], [bottom, bottom + value * y_scale], color="black", lw=2, transform=transform,
            clip_on=False, solid_capstyle="butt")
    ax.text(1.07, bottom, f"{value:g} {value_unit}", transform=transform, rotation=90, ha="left", va="bottom",
            fontsize=7, clip_on=False)


# ------------------------------------------------------------------------------- noise
def plot_noise_levels(noise_levels, layout: ChannelLayout, path, session_name: str, value_unit: str,
                      dpi: int = 110) -> None:
    """Noise level of each channel against its depth (``noise_levels.png``); a notice when not computed.

    Parameters
    ----------
    noise_levels : np.ndarray or None
        Per-channel noise levels (None: the extension is missing).
    layout : ChannelLayout
        Channel positions.
    path : str or Path
        Output PNG.
    session_name : str
        For the title.
    value_unit : str
        Unit of the noise levels.
    dpi : int, default: 110
        Resolution.
    """
    num_channels = layout.locations.shape[0]
    if noise_levels is None:
        figure = _new_figure(6.5, 2.5)
        ax = figure.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "noise_levels extension not computed:\nno noise levels for this session",
                ha="center", va="center", fontsize=12)
        figure.suptitle(f"{session_name}: noise level per channel", fontsize=12)
        _save(figure, path, dpi)
        return
    noise_levels = np.asarray(noise_levels, dtype=np.float64)
    figure = _new_figure(7.0, 4.8 if num_channels <= 64 else 8.0)
    ax = figure.add_subplot(figure.add_gridspec(1, 1, **_grid(figure, 1, 1, left=0.85, right=0.2, bottom=0.6,
                                                               top=0.45))[0, 0])
    x = np.round(layout.locations[:, 0], 1)
    y = layout.locations[:, 1]
    columns = np.unique(x)
    marker_size = 4 if num_channels <= 64 else 2.5
    if 1 < columns.size <= 8 and layout.has_locations:
        for column, color in zip(columns, _unit_colors(columns.size)):
            chans = np.flatnonzero(x == column)
            chans = chans[np.argsort(y[chans], kind="stable")]
            ax.plot(noise_levels[chans], y[chans], marker="o", ms=marker_size, lw=0.8, color=color,
                    label=f"column x = {column:g} µm")
    else:
        order = np.argsort(y, kind="stable")
        ax.plot(noise_levels[order], y[order], marker="o", ms=marker_size, lw=0.8, color="tab:blue",
                label="channels")
    median = float(np.median(noise_levels))
    ax.axvline(median, color="0.3", ls="--", lw=1, label=f"median {median:.3g} {value_unit}")
    ax.set_xlim(*_noise_limits(noise_levels, median))
    ax.set_xlabel(f"noise level ({value_unit})", fontsize=10)
    ax.set_ylabel(layout.depth_label, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left" if columns.size <= 8 else "best", framealpha=0.9)
    ax.set_title(f"{session_name}: noise level per channel ({num_channels} channels)", fontsize=12, y=1.0)
    _save(figure, path, dpi)


def _noise_limits(noise_levels: np.ndarray, median: float) -> tuple[float, float]:
    """x range of the noise plot: the data, but at least median ± 10 % so that small fluctuations are not
    blown up into apparent problems (a dead or very noisy channel still stands out)."""
    finite = noise_levels[np.isfinite(noise_levels)]
    if finite.size == 0:
        return 0.0, 1.0
    low = min(float(finite.min()), 0.9 * median)
    high = max(float(finite.max()), 1.1 * median)
    pad = 0.05 * (high - low) if high > low else 1.0
    return max(low - pad, 0.0) if low >= 0 else low - pad, high + pad


# ---------------------------------------------------------------------------- sparsity
def _pick_spread_units(units, max_units: int) -> list[int]:
    """Up to ``max_units`` unit indices with a template, evenly spread along the probe depth."""
    main_index = _column(units, "main_channel_index")
    candidates = [i for i in range(_num_units(units)) if not _isna(main_index[i])]
    if not candidates or max_units <= 0:
        return []
    depth = np.asarray(_column(units, "main_channel_y_um"), dtype=np.float64)[candidates]
    depth = np.where(np.isfinite(depth), depth, np.array([float(main_index[i]) for i in candidates]))
    order = [candidates[i] for i in np.argsort(depth, kind="stable")]
    if len(order) <= max_units:
        return order
    picks = np.unique(np.round(np.linspace(0, len(order) - 1, max_units)).astype(int))
    return [order[i] for i in picks]


def _draw_contacts(ax, layout: ChannelLayout, face_colors: list, edge_colors: list, line_widths: list) -> None:
    """Contacts (probeinterface's polygons when a probe is known, else squares) with per-channel colours."""
    if layout.probegroup is not None:
        # the polygons of probeinterface's plot_probe, without plot_probe (it imports pyplot)
        from probeinterface.plotting import create_probe_polygons

        for probe in layout.probegroup.probes:
            device = probe.device_channel_indices
            count = probe.get_contact_count()
            device = np.arange(count) if device is None else np.asarray(device)
            wired = device >= 0
            faces = [face_colors[d] if w else "white" for d, w in zip(device, wired)]
            poly, contour = create_probe_polygons(probe, contacts_colors=faces, contact_kwargs=dict(alpha=1.0),
                                                  probe_shape_kwargs=dict(facecolor="#e8e8e8", edgecolor="0.4",
                                                                          lw=0.6, alpha=1.0))
            ax.add_collection(poly, autolim=False)  # the callers set the limits
            if contour is not None:
                ax.add_collection(contour, autolim=False)
            poly.set_edgecolor([edge_colors[d] if w else "0.6" for d, w in zip(device, wired)])
            poly.set_linewidth([line_widths[d] if w else 0.5 for d, w in zip(device, wired)])
            poly.set_zorder(3)
            if contour is not None:
                contour.set_zorder(1)
    else:
        ax.scatter(layout.locations[:, 0], layout.locations[:, 1], s=30, marker="s", c=face_colors,
                   edgecolors=edge_colors, linewidths=line_widths, zorder=3)


def _x_limits(layout: ChannelLayout) -> tuple[float, float]:
    xs = layout.locations[:, 0]
    margin = max(layout.column_pitch, 20.0)
    if layout.probegroup is not None:
        contours = [p.probe_planar_contour for p in layout.probegroup.probes if p.probe_planar_contour is not None]
        if contours:
            all_x = np.concatenate([c[:, 0] for c in contours] + [xs])
            return float(all_x.min() - 0.3 * margin), float(all_x.max() + 0.3 * margin)
    return float(xs.min() - margin), float(xs.max() + margin)


def plot_probe_sparsity(analyzer, units, layout: ChannelLayout, path, session_name: str, max_units: int = 4,
                        dpi: int = 110) -> list:
    """The probe with the sparse channels of a few units coloured (``probe_sparsity.png``).

    One panel per highlighted unit (its channels coloured, its main channel outlined in black). For tall
    probes the panels are zoomed around each unit and an overview panel of the whole probe shows where
    they are.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        The analyzer (for its sparsity).
    units : dict or pandas.DataFrame
        The units table (``sicore.report.units_columns``: main channels and depths).
    layout : ChannelLayout
        Channel positions and probes.
    path : str or Path
        Output PNG.
    session_name : str
        For the title.
    max_units : int, default: 4
        Units highlighted, spread along the probe depth.
    dpi : int, default: 110
        Resolution.

    Returns
    -------
    unit_ids : list
        The highlighted units.
    """
    from matplotlib.patches import Rectangle

    picked = _pick_spread_units(units, max_units)
    colors = _unit_colors(len(picked))
    num_channels = layout.locations.shape[0]
    y = layout.locations[:, 1]
    height = float(y.max() - y.min()) if num_channels else 0.0
    zoom = height > _ZOOM_ABOVE_UM
    x_limits = _x_limits(layout)
    margin_y = max(2 * layout.row_pitch, 20.0)
    unit_id_col, main_index_col = _column(units, "unit_id"), _column(units, "main_channel_index")
    main_id_col, main_y_col = _column(units, "main_channel_id"), _column(units, "main_channel_y_um")
    channel_sets = [_unit_channels(analyzer, i, int(main_index_col[i]), layout) for i in picked]

    num_panels = len(picked) + (1 if zoom or not picked else 0)
    probe_width = x_limits[1] - x_limits[0]
    if zoom:
        windows = []
        for channels in channel_sets:
            low, high = float(y[channels].min()), float(y[channels].max())
            centre, half = 0.5 * (low + high), max(0.5 * (high - low) + margin_y, 0.5 * _MIN_ZOOM_HEIGHT_UM)
            windows.append((centre - half, centre + half))
        panel_height_um = max(w[1] - w[0] for w in windows)
        # panels share the figure height; width follows the probe's aspect (equal axes) plus tick labels
        panel_width = float(np.clip(5.2 * probe_width / panel_height_um + 0.9, 1.8, 4.0))
        widths = [1.6] + [panel_width] * len(picked)
        figure = _new_figure(sum(widths) + 0.4 + 0.6 * len(picked), 6.8)
    else:
        low, high = float(y.min()) - margin_y, float(y.max()) + margin_y
        if layout.probegroup is not None:  # a short probe is shown whole, tip included
            for probe in layout.probegroup.probes:
                if probe.probe_planar_contour is not None:
                    low = min(low, float(probe.probe_planar_contour[:, 1].min()) - 5.0)
                    high = max(high, float(probe.probe_planar_contour[:, 1].max()) + 5.0)
        windows = [(low, high)] * len(picked)
        panel_width = float(np.clip(5.2 * probe_width / (high - low) + 0.9, 1.8, 4.0))
        widths = [panel_width] * max(num_panels, 1)
        figure = _new_figure(sum(widths) + 0.4 + 0.6 * (len(widths) - 1), 6.8)
    # gaps between panels hold the y tick labels of the next panel
    axes = figure.subplots(1, max(num_panels, 1), squeeze=False, gridspec_kw=_grid(
        figure, 1, len(widths), left=0.8, right=0.15, bottom=0.55, top=0.85, col_gap=0.6, width_ratios=widths))[0]

    if zoom or not picked:
        ax = axes[0]
        owner = np.full(num_channels, -1)
        best = np.full(num_channels, np.inf)
        for k, (unit_index, channels) in enumerate(zip(picked, channel_sets)):
            main_y = float(main_y_col[unit_index]) if layout.has_locations else \
                float(y[int(main_index_col[unit_index])])
            distance = np.abs(y[channels] - main_y)
            closer = distance < best[channels]  # a contact shared by two units takes the closer unit's colour
            owner[channels[closer]] = k
            best[channels[closer]] = distance[closer]
        faces = [colors[o] if o >= 0 else _GREY for o in owner]
        _draw_contacts(ax, layout, faces, ["0.5"] * num_channels, [0.3] * num_channels)
        ax.set_aspect("auto")  # the whole probe is far taller than wide
        ax.set_xlim(*x_limits)
        ax.set_ylim(float(y.min()) - margin_y, float(y.max()) + margin_y)
        for k, window in enumerate(windows if zoom else []):
            ax.add_patch(Rectangle((x_limits[0], window[0]), x_limits[1] - x_limits[0], window[1] - window[0],
                                   fill=False, edgecolor=colors[k], lw=1.2, ls="--", zorder=4))
        ax.set_title("whole probe" if picked else "no unit to highlight", fontsize=9, y=1.0)
        ax.set_xticks([])
        ax.set_ylabel(layout.depth_label, fontsize=9)
        ax.set_xlabel("")
        ax.tick_params(labelsize=7)
        unit_axes = axes[1:]
    else:
        unit_axes = axes

    for k, (ax, unit_index, channels) in enumerate(zip(unit_axes, picked, channel_sets)):
        main_index = int(main_index_col[unit_index])
        faces = [_GREY] * num_channels
        edges = ["0.55"] * num_channels
        widths_lw = [0.4] * num_channels
        for channel in channels:
            faces[channel] = colors[k]
        edges[main_index], widths_lw[main_index] = "black", 2.0
        _draw_contacts(ax, layout, faces, edges, widths_lw)
        ax.set_xlim(*x_limits)
        ax.set_ylim(*windows[k])
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(f"unit {_unit_label(unit_id_col[unit_index])}\n{channels.size} channels, main "
                     f"{main_id_col[unit_index]}", fontsize=9, color="black", y=1.0)
        ax.set_xlabel("x (µm)", fontsize=8)
        ax.set_ylabel(layout.depth_label if (k == 0 and not zoom) else "", fontsize=9)
        ax.tick_params(labelsize=7)
        for spine in ax.spines.values():
            spine.set_edgecolor(colors[k])
            spine.set_linewidth(1.5 if zoom else 0.8)

    sparsity = "sparse channels" if analyzer.is_sparse() else f"channels within {_DENSE_RADIUS_UM:g} µm (dense)"
    figure.suptitle(f"{session_name}: probe ({num_channels} channels) and the {sparsity} of "
                    f"{len(picked)} of {_num_units(units)} units", fontsize=11)
    _save(figure, path, dpi)
    return [unit_id_col[i] for i in picked]
