"""The briefing as people get it: `rampart-collector briefing` as a process and GET /api/v1/briefing over
HTTPS, checked in the PDF's text (pdftotext), its pages drawn (pdftoppm) and the HTML's markup."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from tests.collector.reports.fleet import shipped_result
from tests.conftest import run_cli
from tests.support.live import LiveCollector

HOSTILE = "<script>alert(1)</script>"
QUESTIONS = (
    "Are our computers up to date?",
    "Is MFA on for everyone, and for administrators above all?",
    "Are disks encrypted, firewalls on, malware protection running?",
    "Is the cloud configured safely?",
    "Do we know all our devices?",
    "What risks have we accepted?",
)


def config_file(live: LiveCollector, directory: Path) -> Path:
    path = directory / "collector.yaml"
    path.write_text(
        yaml.safe_dump({"collector": {"data_dir": live.config.data_dir, "database_url": live.config.database_url}})
    )
    return path


def populate(live: LiveCollector) -> None:
    good = live.enrolled_agent(hostname="pc-good")
    bad = live.enrolled_agent(hostname="pc-bad")
    live.enrolled_agent(hostname=HOSTILE)  # enrolled, never reports: listed by name
    updates, disks = "security-updates-within-14-days", "disks-encrypted"
    assert good.report([shipped_result(updates, "pass"), shipped_result(disks, "pass")]).status_code == 200
    assert bad.report([shipped_result(updates, "fail"), shipped_result(disks, "fail")]).status_code == 200
    admin = live.admin()
    users = [("alice", "analyst"), ("bob", "analyst"), ("audrey", "auditor")]
    for name, role in users:
        assert admin.post(live.url + "/api/v1/users", json={"name": name, "role": role}).status_code == 201
    tokens = {n: admin.post(live.url + "/api/v1/api-tokens", json={"user": n}).json()["token"] for n, _ in users}
    expires = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    waiver = live.session(tokens["alice"]).post(
        live.url + "/api/v1/waivers",
        json={"check": disks, "policy": "baseline", "scope": {"hosts": ["pc-bad"]}, "expires": expires,
              "justification": '<img src=x onerror="alert(2)"> Replacement laptop ordered', "ticket": "=1+2"},
    )  # fmt: skip
    assert waiver.status_code == 201, waiver.text
    approved = live.session(tokens["bob"]).post(f"{live.url}/api/v1/waivers/{waiver.json()['id']}/approve")
    assert approved.status_code == 200, approved.text
    live.tokens = tokens  # type: ignore[attr-defined]


def page_texts(pdf: Path) -> list[str]:
    pages = int(
        next(
            line.split()[-1]
            for line in subprocess.run(
                ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True
            ).stdout.splitlines()
            if line.startswith("Pages:")
        )
    )
    return [
        subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), "-layout", str(pdf), "-"], capture_output=True,
                       text=True, check=True).stdout
        for n in range(1, pages + 1)
    ]  # fmt: skip


def test_the_briefing_pdf_answers_the_questions_with_figures_names_and_charts(
    live: LiveCollector, tmp_path: Path
) -> None:
    populate(live)
    config = config_file(live, tmp_path)
    pdf = tmp_path / "briefing.pdf"
    done = run_cli("rampart-collector", "--config", str(config), "briefing", "--out", str(pdf))
    assert done.returncode == 0, done.stderr
    assert "Wrote" in done.stdout and "Do we know all our devices?" in done.stdout
    assert done.stderr == ""  # no progress bar when not on a terminal
    assert pdf.read_bytes().startswith(b"%PDF-")
    pages = page_texts(pdf)
    assert 3 <= len(pages) <= 12
    text = "\n".join(" ".join(page.split()) for page in pages)
    for question in QUESTIONS:
        assert question in text
    assert "50.0% of results pass" in text  # updates: pc-good passes, pc-bad fails
    assert HOSTILE in text  # the never-reporting host, by name, as text
    assert '<img src=x onerror="alert(2)"> Replacement laptop ordered' in text
    assert "=1+2" in text and "alice" in text and "bob" in text
    assert "Cyber Essentials" in text and "B4.d" in text and "Uncovered: no check evidences this control" in text
    # The charts: their text is in the PDF (SVG text stays text) and their bars are drawn on the page.
    assert "Green at 95%" in text and "results passing" in text and "Devices at the end of each period" in text
    chart_page = next(i for i, page in enumerate(pages, start=1) if "Stopped reporting" in page)
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", str(chart_page), "-l", str(chart_page), str(pdf),
                    str(tmp_path / "page")], check=True)  # fmt: skip
    (png,) = tmp_path.glob("page*.png")
    colours: list[tuple[int, Any]] = Image.open(png).convert("RGB").getcolors(maxcolors=1 << 24) or []
    # This period's bars are the palette's second colour, vermillion #D55E00 (hatched).
    drawn = sum(n for n, (r, g, b) in colours if abs(r - 0xD5) < 40 and abs(g - 0x5E) < 40 and abs(b - 0x00) < 40)
    assert drawn > 200, "the devices chart's bars are not drawn on its page"
    assert "Figures: Devices at the end of each period" in text  # each chart's figures, as a table


def test_the_briefing_html_shows_hostile_text_as_text_and_is_accessible(live: LiveCollector, tmp_path: Path) -> None:
    populate(live)
    html_path = tmp_path / "briefing.html"
    done = run_cli("rampart-collector", "--config", str(config_file(live, tmp_path)), "briefing", "--quarter",
                   "2026-Q3", "--out", str(html_path), "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    html = html_path.read_text()
    assert "<script>" not in html and "<img src=x" not in html
    devices = html[html.find("Do we know all our devices?") :][:3000]
    risks = html[html.find("What risks have we accepted?") :][:3000]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, devices  # the never-reporting host, by name
    assert "&lt;img src=x onerror=" in html, risks  # the waiver's justification
    assert 'font-family: "Liberation Sans"' in html  # the stylesheet as written, not entity-escaped
    assert '<html lang="en-GB">' in html and html.count('role="img"') >= 3 and "<title id=" in html
    assert html.count('<th scope="col">') > 10 and "<caption>" in html and "<h1>" in html
    bad = run_cli("rampart-collector", "--config", str(config_file(live, tmp_path)), "briefing", "--out", "x.txt")
    assert bad.returncode == 2 and ".html or .pdf" in bad.stderr
    wrong = run_cli("rampart-collector", "--config", str(config_file(live, tmp_path)), "briefing", "--quarter",
                    "2026-Q5", "--out", str(html_path))  # fmt: skip
    assert wrong.returncode == 2 and "YYYY-QN" in wrong.stderr


def test_the_api_serves_the_briefing_by_accept_header_to_auditors(live: LiveCollector) -> None:
    populate(live)
    tokens = live.tokens  # type: ignore[attr-defined]
    auditor = live.session(tokens["audrey"])
    for accept, status, media in (
        ("application/pdf", 200, "application/pdf"),
        ("text/html", 200, "text/html; charset=utf-8"),
        ("application/pdf;q=0.5, text/html", 200, "text/html; charset=utf-8"),
        ("image/png", 406, "application/json"),
    ):
        response = auditor.get(live.url + "/api/v1/briefing", headers={"Accept": accept})
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == media
        if status == 406:
            assert response.json()["code"] == "not_acceptable"
        elif media == "application/pdf":
            assert response.content.startswith(b"%PDF-")
        else:
            assert "&lt;script&gt;" in response.text and "Are our computers up to date?" in response.text
    forbidden = live.session(tokens["alice"]).get(live.url + "/api/v1/briefing")
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    entries = live.admin().get(live.url + "/api/v1/audit", params={"action": "briefing.create"}).json()["entries"]
    assert [e["actor"] for e in entries] == ["user:audrey"] * 3


def test_a_bad_period_is_a_clear_400(live: LiveCollector) -> None:
    admin = live.admin()
    both = admin.get(live.url + "/api/v1/briefing", params={"quarter": "2026-Q1", "from": "2026-01-01"})
    assert both.status_code == 400 and "not both" in both.json()["message"]
    future = admin.get(live.url + "/api/v1/briefing", params={"quarter": "2099-Q1"})
    assert future.status_code == 400 and "after today" in future.json()["message"]
