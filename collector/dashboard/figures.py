"""The dashboard's charts: drawn by collector/reports/charts.py (the project's one charting module), made
fit for the dashboard's Content-Security-Policy, and shown with their text alternative and a table.

matplotlib writes its SVG with `style="..."` attributes and a `<style>` element, which a policy without
'unsafe-inline' styles refuses when the SVG is inline in the page. The same declarations are SVG
presentation attributes (fill, stroke, font-size...), which no policy restricts: they are rewritten so.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

from collector.reports.charts import Chart

_STYLE_ATTRIBUTE = re.compile(r'\sstyle="([^"]*)"')
_STYLE_ELEMENT = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
_UNIVERSAL_RULE = re.compile(r"\*\s*\{([^}]*)\}")
_PROPERTY = re.compile(r"^[a-z-]+$")


def _attributes(declarations: str) -> str:
    parts = []
    for declaration in declarations.split(";"):
        name, _, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if name and value and _PROPERTY.match(name):
            parts.append(f' {name}="{escape(value)}"')
    return "".join(parts)


def csp_safe_svg(svg: str) -> str:
    """The SVG with every inline style turned into presentation attributes (and the `*{...}` rule of its
    style element put on the root, whence it is inherited)."""
    inherited = ""
    for sheet in _STYLE_ELEMENT.findall(svg):
        for rule in _UNIVERSAL_RULE.findall(sheet):
            inherited += _attributes(rule)
    svg = _STYLE_ELEMENT.sub("", svg)
    svg = _STYLE_ATTRIBUTE.sub(lambda m: _attributes(m.group(1).replace("&#x27;", "'").replace("&quot;", '"')), svg)
    return svg.replace("<svg", "<svg" + inherited, 1) if inherited else svg


_drawn: OrderedDict[str, Chart] = OrderedDict()
_lock = threading.Lock()


def drawn(draw: Callable[..., Chart], *args: Any, **kwargs: Any) -> Chart:
    """`draw(*args, **kwargs)`, remembered for the same figures (a page shown again costs no drawing:
    matplotlib takes tens of milliseconds a chart)."""
    key = repr((draw.__name__, args, sorted(kwargs.items())))
    with _lock:
        if key in _drawn:
            _drawn.move_to_end(key)
            return _drawn[key]
    chart = draw(*args, **kwargs)
    with _lock:
        _drawn[key] = chart
        while len(_drawn) > 64:
            _drawn.popitem(last=False)
    return chart


def figure(chart: Chart, *, table_open: bool = False) -> Markup:
    """A GOV.UK-styled figure: the SVG (role img, with its title and description), a caption with the
    text alternative, and the figures in a table (in a details element, open when asked)."""
    safe = dataclasses.replace(chart, svg=csp_safe_svg(chart.svg))
    head = "".join(f'<th scope="col" class="govuk-table__header">{escape(c)}</th>' for c in safe.columns)
    rows = []
    for row in safe.rows:
        cells = [f'<th scope="row" class="govuk-table__header">{escape(row[0])}</th>']
        cells += [f'<td class="govuk-table__cell">{escape(c)}</td>' for c in row[1:]]
        rows.append(f'<tr class="govuk-table__row">{"".join(cells)}</tr>')
    notes = "".join(f'<p class="govuk-body-s">{escape(n)}</p>' for n in safe.notes)
    return Markup(
        f'<figure class="rampart-chart" id="{safe.chart_id}">'
        f'<div class="rampart-chart__image">{safe.svg}</div>'
        f'<figcaption class="govuk-body">{escape(safe.summary)}</figcaption>'
        f'<details class="govuk-details"{" open" if table_open else ""}>'
        f'<summary class="govuk-details__summary"><span class="govuk-details__summary-text">'
        f"The figures of this chart</span></summary>"
        f'<div class="govuk-details__text"><table class="govuk-table">'
        f'<caption class="govuk-table__caption govuk-table__caption--s">{escape(safe.title)}</caption>'
        f'<thead class="govuk-table__head"><tr class="govuk-table__row">{head}</tr></thead>'
        f'<tbody class="govuk-table__body">{"".join(rows)}</tbody></table>{notes}</div></details>'
        "</figure>"
    )
