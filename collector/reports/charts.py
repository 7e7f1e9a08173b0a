"""The project's one charting module: series and categories in, accessible SVG out.

Every chart is a `Chart`: its title, a text alternative (a sentence saying what it shows, for screen
readers and for whoever cannot see the colours), its figures as table data, and the SVG. `Chart.html()`
gives a `<figure>` with the SVG (`role="img"`, `<title>` and `<desc>`), a caption and the figures as a
table with scoped headers, so that nothing is only in the picture. The briefing uses these; the dashboard
uses the same functions.

The SVG is drawn by matplotlib (its SVG backend, no GUI and no pyplot state): it is a library every
Python packager ships, it draws lines, bars and reference lines well at print quality, and its SVG is
deterministic when `svg.hashsalt` is fixed and no date is written, so the same figures give the same
bytes (evidence packs hash them). WeasyPrint renders that SVG in the PDF itself. Text stays text in the
SVG (`svg.fonttype: none`), so it is searchable in the PDF and follows the page's fonts.

Colours are the Okabe-Ito palette (told apart with the common colour-vision deficiencies); series also
differ by line style, marker and hatching, and every figure is in the table.

    chart = line_chart("MFA coverage", ["Jul", "Aug", "Sep"], {"Users with MFA": [61.0, 74.5, 90.2]})
    chart.svg          # the SVG document
    chart.html()       # figure + caption + table (markupsafe.Markup, safe to put in a Jinja template)
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

if TYPE_CHECKING:  # matplotlib is imported when a chart is drawn
    from matplotlib.axes import Axes

__all__ = ["Chart", "bar_chart", "format_value", "line_chart", "PALETTE"]

# Okabe-Ito: blue, vermillion, bluish green, reddish purple, orange, sky blue, yellow.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
_LINE_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_HATCHES = ("", "//", "..", "xx", "\\\\", "--")
_TEXT = "#0b0c0c"  # near black: contrast above 18:1 on white
_GRID = "#b1b4b6"
_WIDTH_IN, _HEIGHT_IN = 6.3, 2.5  # fits an A4 page's text width with 18 mm margins
_LOCK = threading.Lock()  # matplotlib's rc settings are process-wide
_ID = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Chart:
    """A drawn chart: what it shows in words and in a table, and the SVG."""

    chart_id: str
    title: str
    summary: str  # the text alternative
    columns: tuple[str, ...]  # the table's header row
    rows: tuple[tuple[str, ...], ...]  # the figures, as text; the first cell of each row is its header
    svg: str
    notes: tuple[str, ...] = field(default=())  # what the figures leave out, said under the table

    def html(self, *, heading_level: int | None = None, table: bool = True) -> Markup:
        """The chart as a `<figure>`: the SVG, a caption, and the figures as a table. With `table=False`
        the caption links to the table instead (`table_html()`, placed elsewhere on the page)."""
        title = escape(self.title)
        parts = [f'<figure class="chart" id="{self.chart_id}" aria-labelledby="{self.chart_id}-caption">']
        if heading_level:
            parts.append(f"<h{heading_level}>{title}</h{heading_level}>")
        parts.append(f'<div class="chart-image">{self.svg}</div>')
        link = "" if table else f' <a href="#{self.chart_id}-table">The figures, as a table.</a>'
        parts.append(f'<figcaption id="{self.chart_id}-caption">{title}. {escape(self.summary)}{link}</figcaption>')
        if table:
            parts.append(self.table_html())
        parts.append("</figure>")
        return Markup("".join(parts))

    def table_html(self) -> Markup:
        head = "".join(f'<th scope="col">{escape(c)}</th>' for c in self.columns)
        body = []
        for row in self.rows:
            cells = [f'<th scope="row">{escape(row[0])}</th>'] + [f"<td>{escape(c)}</td>" for c in row[1:]]
            body.append(f"<tr>{''.join(cells)}</tr>")
        notes = "".join(f'<p class="chart-note">{escape(n)}</p>' for n in self.notes)
        return Markup(
            f'<table class="chart-data" id="{self.chart_id}-table"><caption>Figures: {escape(self.title)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{notes}"
        )


def format_value(value: float | None, unit: str = "") -> str:
    """A figure as people read it: "92.5%", "1,204", "no data"."""
    if value is None:
        return "no data"
    if unit == "%":
        return f"{value:.1f}%"
    if float(value).is_integer():
        return f"{int(value):,}{unit}"
    return f"{value:,.1f}{unit}"


def _chart_id(title: str, given: str | None) -> str:
    text = _ID.sub("-", (given or title).lower()).strip("-")
    return "chart-" + (text[:48] or "figure")


def _accessible_svg(raw: str, chart_id: str, title: str, summary: str) -> str:
    """matplotlib's SVG with the XML prologue and metadata removed, and a title and description added."""
    start = raw.index("<svg")
    svg = raw[start:]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.S)
    open_end = svg.index(">")
    opening = svg[:open_end]
    opening = re.sub(r'\swidth="[^"]*"', "", opening, count=1)
    opening = re.sub(r'\sheight="[^"]*"', "", opening, count=1)
    labelled = (
        f'{opening} role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'preserveAspectRatio="xMidYMid meet" class="chart-svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(summary)}</desc>'
    )
    return labelled + svg[open_end + 1 :].strip()


def _render(chart_id: str, draw: Callable[[Axes], None], height_in: float = _HEIGHT_IN) -> str:
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    settings: dict[Any, Any] = {
        "svg.hashsalt": chart_id,  # deterministic, and ids that differ between charts on one page
        "svg.fonttype": "none",
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
        "font.size": 8.5,
        "axes.edgecolor": _TEXT,
        "axes.labelcolor": _TEXT,
        "xtick.color": _TEXT,
        "ytick.color": _TEXT,
        "text.color": _TEXT,
    }
    with _LOCK, matplotlib.rc_context(settings):
        figure = Figure(figsize=(_WIDTH_IN, height_in), layout="constrained")
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        draw(axes)
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", color=_GRID, linewidth=0.5)
        axes.set_axisbelow(True)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def _legend(axes: Axes, count: int) -> None:
    if count > 1:
        axes.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    unit: str = "%",
    summary: str | None = None,
    y_range: tuple[float, float] | None = (0.0, 100.0),
    reference: Mapping[str, float] | None = None,
    chart_id: str | None = None,
    notes: Sequence[str] = (),
    divider: tuple[int, str] | None = None,
) -> Chart:
    """Values over time: one line per series (None is a gap); `reference` draws labelled horizontal lines
    (e.g. the green threshold); `divider` (index, label) a labelled vertical line before that point (e.g.
    where this period starts). The table has one row per label and one column per series."""
    chart_id = _chart_id(title, chart_id)
    names = list(series)
    for name in names:
        if len(series[name]) != len(labels):
            raise ValueError(f"series {name!r} has {len(series[name])} values for {len(labels)} labels")
    if summary is None:
        summary = _line_summary(labels, series, unit)

    def draw(axes: Axes) -> None:
        positions = list(range(len(labels)))
        for index, name in enumerate(names):
            values = [float("nan") if v is None else float(v) for v in series[name]]
            axes.plot(
                positions,
                values,
                label=name,
                color=PALETTE[index % len(PALETTE)],
                linestyle=_LINE_STYLES[index % len(_LINE_STYLES)],
                marker=_MARKERS[index % len(_MARKERS)],
                markersize=3.5,
                linewidth=1.6,
            )
        for label, value in (reference or {}).items():
            axes.axhline(value, color=_TEXT, linewidth=0.8, linestyle=(0, (4, 3)))
            axes.annotate(
                label,
                (0, value),
                xytext=(2, 2),
                textcoords="offset points",
                fontsize=7,
                xycoords=("axes fraction", "data"),
            )
        if divider is not None and 0 < divider[0] < len(labels):
            where = divider[0] - 0.5
            axes.axvline(where, color=_TEXT, linewidth=0.8, linestyle=":")
            axes.annotate(
                divider[1],
                (where, 0.0),
                xytext=(3, 4),
                textcoords="offset points",
                fontsize=7,
                xycoords=("data", "axes fraction"),
            )
        step = max(1, len(labels) // 8)
        axes.set_xticks(positions[::step], [labels[i] for i in positions[::step]])
        if y_range is not None:
            axes.set_ylim(*y_range)
        if unit == "%":
            axes.yaxis.set_major_formatter(lambda value, _pos: f"{value:.0f}%")
        _legend(axes, len(names))

    svg = _accessible_svg(_render(chart_id, draw), chart_id, title, summary)
    rows = tuple((label, *(format_value(series[name][i], unit) for name in names)) for i, label in enumerate(labels))
    return Chart(chart_id, title, summary, ("Date", *names), rows, svg, tuple(notes))


def _line_summary(labels: Sequence[str], series: Mapping[str, Sequence[float | None]], unit: str) -> str:
    if not labels:
        return "No figures for this period."
    parts = []
    for name, values in series.items():
        known = [(labels[i], v) for i, v in enumerate(values) if v is not None]
        if not known:
            parts.append(f"{name}: no data")
        elif len(known) == 1:
            parts.append(f"{name}: {format_value(known[0][1], unit)} on {known[0][0]}")
        else:
            (first_label, first), (last_label, last) = known[0], known[-1]
            parts.append(
                f"{name}: {format_value(first, unit)} on {first_label}, {format_value(last, unit)} on {last_label}"
            )
    return f"Line chart from {labels[0]} to {labels[-1]}. " + "; ".join(parts) + "."


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    unit: str = "",
    summary: str | None = None,
    horizontal: bool = True,
    stacked: bool = False,
    chart_id: str | None = None,
    notes: Sequence[str] = (),
    category_heading: str = "Category",
) -> Chart:
    """Categories compared: grouped (or stacked) bars, one colour and hatching per series; horizontal by
    default so that long names stay readable. The table has one row per category."""
    chart_id = _chart_id(title, chart_id)
    names = list(series)
    for name in names:
        if len(series[name]) != len(categories):
            raise ValueError(f"series {name!r} has {len(series[name])} values for {len(categories)} categories")
    if summary is None:
        summary = _bar_summary(categories, series, unit)

    def draw(axes: Axes) -> None:
        count = max(1, len(names))
        thickness = 0.8 if stacked else 0.8 / count
        offsets = [0.0] * len(categories)
        positions = list(range(len(categories)))
        for index, name in enumerate(names):
            values = [float(v) for v in series[name]]
            where: list[float] = (
                [float(p) for p in positions] if stacked else [p - 0.4 + thickness * (index + 0.5) for p in positions]
            )
            style: dict[str, Any] = {
                "color": PALETTE[index % len(PALETTE)],
                "hatch": _HATCHES[index % len(_HATCHES)],
                "edgecolor": _TEXT,
                "linewidth": 0.4,
                "label": name,
            }
            if horizontal:
                bars = axes.barh(where, values, height=thickness, left=offsets if stacked else None, **style)
            else:
                bars = axes.bar(where, values, width=thickness, bottom=offsets if stacked else None, **style)
            if not stacked:
                axes.bar_label(bars, labels=[format_value(v, unit) for v in values], fontsize=7, padding=2)
            if stacked:
                offsets = [o + v for o, v in zip(offsets, values, strict=True)]
        from matplotlib.ticker import MaxNLocator

        if horizontal:
            axes.set_yticks(positions, list(categories))
            axes.invert_yaxis()
            axes.grid(axis="x", color=_GRID, linewidth=0.5)
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            axes.set_xticks(positions, list(categories))
            axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.margins(x=0.12 if horizontal else 0.02)
        _legend(axes, len(names))

    # Horizontal bars: the chart grows with the number of bars, so one category is not a slab.
    height = min(_HEIGHT_IN * 2, 0.7 + 0.22 * len(categories) * max(1, len(names))) if horizontal else _HEIGHT_IN
    svg = _accessible_svg(_render(chart_id, draw, height), chart_id, title, summary)
    rows = tuple(
        (category, *(format_value(series[name][i], unit) for name in names)) for i, category in enumerate(categories)
    )
    return Chart(chart_id, title, summary, (category_heading, *names), rows, svg, tuple(notes))


def _bar_summary(categories: Sequence[str], series: Mapping[str, Sequence[float]], unit: str) -> str:
    if not categories:
        return "No figures for this period."
    parts = []
    for index, category in enumerate(categories):
        values = ", ".join(f"{name} {format_value(values[index], unit)}" for name, values in series.items())
        parts.append(f"{category}: {values}")
    return "Bar chart. " + "; ".join(parts) + "."
