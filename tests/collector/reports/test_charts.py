"""Charts: accessible SVG with a title, a text alternative and the figures as a table; hostile text stays text."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from collector.reports.charts import bar_chart, format_value, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_a_line_chart_has_a_title_a_description_and_its_figures_in_a_table() -> None:
    chart = line_chart(
        "MFA coverage", ["1 Jul", "8 Jul", "15 Jul"], {"Users": [61.0, None, 90.25]}, reference={"Green": 95}
    )
    root = ElementTree.fromstring(chart.svg)
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == "MFA coverage"
    assert desc is not None and desc.text == chart.summary
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert "61.0% on 1 Jul" in chart.summary and "90.2% on 15 Jul" in chart.summary
    assert chart.columns == ("Date", "Users")
    assert chart.rows == (("1 Jul", "61.0%"), ("8 Jul", "no data"), ("15 Jul", "90.2%"))
    html = str(chart.html())
    assert '<th scope="row">8 Jul</th><td>no data</td>' in html and "<figcaption" in html
    assert "<metadata>" not in chart.svg and "<?xml" not in chart.svg  # no date, no generator version


def test_the_same_figures_give_the_same_bytes_and_other_charts_other_ids() -> None:
    first = bar_chart("Findings", ["Storage", "NSG"], {"Last": [3, 4], "Now": [1, 2]})
    again = bar_chart("Findings", ["Storage", "NSG"], {"Last": [3, 4], "Now": [1, 2]})
    other = bar_chart("Devices", ["Storage", "NSG"], {"Last": [3, 4], "Now": [1, 2]})
    assert first.svg == again.svg
    assert first.chart_id != other.chart_id
    assert first.rows == (("Storage", "3", "1"), ("NSG", "4", "2"))
    assert "Storage: Last 3, Now 1" in first.summary


def test_hostile_names_are_text_in_the_svg_and_the_table() -> None:
    chart = bar_chart("<script>alert(1)</script>", ['<img src=x onerror="alert(2)">'], {"Now & then": [1]})
    root = ElementTree.fromstring(chart.svg)  # still well-formed XML
    assert root.find(f"{SVG}script") is None
    assert "<script>" not in chart.svg and "<img" not in chart.svg
    html = str(chart.html())
    assert "<script>" not in html and "<img" not in html
    assert "&lt;img src=x onerror=" in html and "Now &amp; then" in html


def test_series_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        line_chart("x", ["a", "b", "c"], {"s": [1, 2]})


def test_figures_read_as_people_say_them() -> None:
    assert format_value(None) == "no data"
    assert format_value(1204) == "1,204"
    assert format_value(92.456, "%") == "92.5%"
    assert format_value(2.5) == "2.5"
