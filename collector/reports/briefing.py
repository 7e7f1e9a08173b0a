"""The audit-committee briefing: the figures of a period (collector/reports/figures.py) as an accessible
HTML page, and the same page as a PDF through WeasyPrint.

Every text from hosts, policies and people goes through Jinja2 with autoescaping on, so a host name or a
waiver justification holding markup is shown as text in both. Charts are SVG (collector/reports/charts.py)
inline in the page, each with its figures in a table; WeasyPrint draws the SVG in the PDF itself.
"""

from __future__ import annotations

import datetime as dt
import functools
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from checks.safetext import html_finalize
from collector.reports import charts
from collector.reports.areas import Rag
from collector.reports.figures_checks import LONG_FAILING_DAYS

FORMATS = {"html": "text/html", "pdf": "application/pdf"}


def _short(day: str) -> str:
    value = dt.date.fromisoformat(day)
    return f"{value.day} {value:%b}"


def _rag_label(value: str | None) -> str:
    try:
        return Rag(value or "unknown").label
    except ValueError:
        return "Not known"


def _enforced_text(status: str | None) -> str:
    return {"pass": "", "fail": "not", "waived": "not (waived)"}.get(status or "", "not known to be")


def build_charts(figures: dict[str, Any]) -> dict[str, charts.Chart]:
    """The briefing's charts, by name: one trend per area judged by checks, the MFA rollout of each
    tenant, devices and cloud findings this period against last, and the most failing checks."""
    labels = [_short(day) for day in figures["weeks"]]
    by = "week by week" if figures["bucket"] == "week" else "at the end of each month"
    starts = figures["period"]["start"]
    first = next((i for i, day in enumerate(figures["weeks"]) if day >= starts), None)
    divider = (first, f"{figures['period']['label']} starts") if first else None
    thresholds = figures["thresholds"]
    found: dict[str, charts.Chart] = {}
    previous = figures["previous"]["label"]
    current = figures["period"]["label"]
    for area in figures["areas"]:
        if area["kind"] == "checks" and any(value is not None for value in area["trend"]):
            found[f"trend-{area['key']}"] = charts.line_chart(
                f"{area['title']}: results passing, {by}",
                labels,
                {"Passing": area["trend"]},
                reference={f"Green at {thresholds['green_at_percent']:g}%": thresholds["green_at_percent"]},
                chart_id=f"trend-{area['key']}",
                divider=divider,
            )
        elif area["kind"] == "devices":
            now, before = area["now"], area["before"] or {}
            names = ["Reporting", "Stopped reporting", "Never reported", "Revoked in the period"]
            keys = ["reporting", "stale", "never_seen", "revoked_in_period"]
            series = {}
            if before:
                series[f"Last period ({previous})"] = [float(before.get(k, 0)) for k in keys]
            series[f"This period ({current})"] = [float(now[k]) for k in keys]
            found["devices"] = charts.bar_chart(
                "Devices at the end of each period", names, series, chart_id="devices", category_heading="Devices"
            )
    for index, tenant in enumerate(figures["mfa"], start=1):
        found[f"mfa-{index}"] = charts.line_chart(
            f"MFA rollout: staff accounts that can use MFA ({tenant['tenant']})",
            labels,
            {"Accounts with MFA": tenant["curve"]},
            reference={"Target 100%": 100.0},
            chart_id=f"mfa-{index}",
            divider=divider,
        )
    cloud = figures["cloud"]
    if cloud["now"]:
        kinds = sorted(set(cloud["now"]) | set(cloud["before"]))
        series = {}
        if figures["previous"]["known"]:
            series["Last period"] = [float(cloud["before"].get(k, {}).get("failing_resources", 0)) for k in kinds]
        series["This period"] = [float(cloud["now"].get(k, {}).get("failing_resources", 0)) for k in kinds]
        found["cloud"] = charts.bar_chart(
            "Azure resources with a failing check, by type",
            [cloud["names"][k] for k in kinds],
            series,
            chart_id="cloud",
            category_heading="Resource type",
            notes=[
                f"{cloud['names'][k]}: {cloud['now'].get(k, {}).get('resources', 0):,} checked now, "
                f"{cloud['now'].get(k, {}).get('fail', 0):,} failing results, "
                f"{cloud['now'].get(k, {}).get('error', 0):,} errors."
                for k in kinds
            ],
        )
    top = figures["top_failing"]
    if top:
        series = {}
        if figures["previous"]["known"]:
            series["Last period"] = [float(c["before_failing"] or 0) for c in top]
        series["This period"] = [float(c["failing"]) for c in top]
        found["top-failing"] = charts.bar_chart(
            "Subjects failing each of the most failing checks",
            [c["title"] or c["check"] for c in top],
            series,
            chart_id="top-failing",
            category_heading="Check",
        )
    return found


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("collector.reports", "templates"),
        autoescape=select_autoescape(("html",), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        finalize=html_finalize,  # hostile text's control characters shown as escapes
    )


def _css() -> str:
    return resources.files("collector.reports").joinpath("templates/briefing.css").read_text(encoding="utf-8")


def render_html(figures: dict[str, Any]) -> str:
    """The briefing as one self-contained HTML page (styles and charts inline)."""
    totals, before = figures["totals"], figures["totals_before"]
    overall = {
        "now": None if totals["compliance"] is None else round(100 * totals["compliance"], 1),
        "before": None if not before or before["compliance"] is None else round(100 * before["compliance"], 1),
    }
    template = _environment().get_template("briefing.html")
    return template.render(
        **figures,
        overall=overall,
        charts=build_charts(figures),
        css=Markup(_css()),  # our own stylesheet: escaped, its quotes would break the font names
        long_days=LONG_FAILING_DAYS,
        rag_label=_rag_label,
        enforced_text=_enforced_text,
    )


def render_pdf(html: str) -> bytes:
    """The same page as an A4 PDF (WeasyPrint; the SVG charts are drawn by it)."""
    import logging

    from weasyprint import HTML

    # WeasyPrint reports CSS it does not use (e.g. `columns` on lists) as warnings on its own logger.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    document: bytes = HTML(string=html, base_url=None).write_pdf()
    return document


def render(figures: dict[str, Any], fmt: str) -> bytes:
    html = render_html(figures)
    if fmt == "pdf":
        return render_pdf(html)
    return html.encode("utf-8")
