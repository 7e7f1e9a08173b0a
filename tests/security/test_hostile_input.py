"""Input made to break the collector: SQL metacharacters and LIKE wildcards in every filter, path traversal
wherever a path or name is taken, and hostile text (HTML, script, terminal escapes, CSV formulas) in every
field that is shown, through every output that exists today (CLI tables, JSON, CSV).

The collector holds three hosts whose names are themselves hostile, with results; every filter of every
query route is then called with each payload: the answer is never a 5xx, an equality filter matches
nothing it should not, and the data is all there afterwards.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from collector.storage import sessions, users
from collector.storage.engine import write_tx
from collector.storage.models import utcnow
from tests.collector.dashboard.helpers import PASSWORD, Web
from tests.conftest import run_cli
from tests.reliability.figures import Figures
from tests.security.conftest import Callers
from tests.support.agents import make_result, make_results
from tests.support.live import LiveCollector
from tests.support.policies import CHECK_IDS, FLEET_POLICY_ID

pytestmark = [pytest.mark.security, pytest.mark.slow]

SQL = [
    "'",
    "''",
    "' OR '1'='1",
    '" OR "1"="1',
    "'; DROP TABLE reports; --",
    "1; SELECT pg_sleep(5)",
    "\\",
    "%",
    "_",
    "%_%",
    "[a-z]*",
    "🙂",
    "é" * 300,
    "x" * 5000,
]
TRAVERSAL = ["../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/", "/etc/passwd", "..\\..\\windows", "."]
# one per kind of hostile text: markup, script, terminal escapes (clear screen, set title, hyperlink), CSV formulas
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\x1b[2J\x1b[31mRED\x1b[0m",
    "\x1b]0;owned\x07",
    "\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07",
    '=HYPERLINK("https://evil.example","x")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "line one\nline two\rcarriage",
]
QUERY_FILTERS: list[tuple[str, str]] = [
    ("/api/v1/hosts", "search"),
    ("/api/v1/hosts", "group"),
    ("/api/v1/summary", "group"),
    ("/api/v1/summary", "policy"),
    ("/api/v1/checks/c00", "group"),
    ("/api/v1/checks/c00", "policy"),
    ("/api/v1/trends", "group"),
    ("/api/v1/trends", "policy"),
    ("/api/v1/trends", "check"),
    ("/api/v1/export/results", "group"),
    ("/api/v1/export/results", "policy"),
    ("/api/v1/audit", "actor"),
    ("/api/v1/audit", "action"),
    ("/api/v1/waivers", "state"),
    ("/api/v1/api-tokens", "user"),
]
PATH_PARAMS = ["/api/v1/hosts/{}", "/api/v1/checks/{}", "/api/v1/reports/{}"]
# the check whose results carry the hostile facts: one of the stored test policy's, as only results judged
# against a stored, assigned policy are counted (tests/support/policies.py)
HOSTILE_CHECK = CHECK_IDS[-1]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")  # anything a terminal acts on (tab and newline aside)


def hostile_fleet(live: LiveCollector) -> list[str]:
    """Hosts named with hostile text, each with results whose facts and reasons are hostile too."""
    names = ["alpha-01", "beta_02", "gamma%03", *HOSTILE[:6]]
    for index, name in enumerate(names):
        agent = live.enrolled_agent(hostname=name)
        hostile = HOSTILE[index % len(HOSTILE)]
        results = make_results(4) + [make_result(HOSTILE_CHECK, "fail", observed={"value": hostile, "name": name})]
        answer = agent.report(results)
        assert answer.status_code == 200, answer.text
    return names


def test_sql_metacharacters_and_like_wildcards_in_every_filter(
    live: LiveCollector, callers: Callers, figures: Figures
) -> None:
    """Every filter of every query route with SQL metacharacters and wildcards: no 5xx, nothing matched wrongly."""
    hostile_fleet(live)
    admin = live.session(callers.roles["admin"])
    reports_before = admin.get(live.url + "/api/v1/hosts", params={"limit": 1000}).json()["total"]
    tried = 0
    failures = []
    for path, name in QUERY_FILTERS:
        for payload in SQL:
            answer = admin.get(live.url + path, params={name: payload})
            tried += 1
            if answer.status_code >= 500:
                failures.append(f"{path}?{name}={payload[:30]!r}: {answer.status_code} {answer.text[:120]}")
            if name == "group" and path == "/api/v1/hosts" and answer.status_code == 200:
                assert answer.json()["total"] == 0, (payload, answer.json()["total"])
    for template in PATH_PARAMS:
        for payload in SQL + TRAVERSAL:
            answer = admin.get(live.url + template.format(payload))
            tried += 1
            if answer.status_code >= 500:
                failures.append(f"{template.format(payload[:30])}: {answer.status_code} {answer.text[:120]}")
    figures.set(inputs_tried=tried, server_errors=len(failures))
    assert failures == []
    assert admin.get(live.url + "/api/v1/hosts", params={"limit": 1000}).json()["total"] == reports_before


def test_like_wildcards_in_the_host_search_are_literal(live: LiveCollector, callers: Callers) -> None:
    hostile_fleet(live)
    admin = live.session(callers.roles["admin"])

    def names(search: str) -> set[str]:
        return {h["hostname"] for h in admin.get(live.url + "/api/v1/hosts", params={"search": search}).json()["hosts"]}

    assert names("_") == {"beta_02"}
    assert names("%") == {"gamma%03"}


def test_path_traversal_wherever_a_path_or_name_is_taken(
    live: LiveCollector, callers: Callers, tmp_path: Path, figures: Figures
) -> None:
    """Names and paths with ../ and absolute paths: refused or kept as data, never a file touched, never a 5xx."""
    admin = live.session(callers.roles["admin"])
    tried = 0
    data_dir = Path(live.config.data_dir)
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    for payload in TRAVERSAL:
        policy = yaml.safe_load(
            yaml.safe_dump({"id": payload, "version": "1.0.0", "title": "t", "description": "d", "checks": []})
        )
        answers = [
            admin.post(live.url + "/api/v1/policies", json=policy),
            admin.put(live.url + f"/api/v1/policies/{payload}/groups/{payload}"),
            admin.post(live.url + "/api/v1/users", json={"name": payload, "role": "analyst"}),
            admin.post(live.url + "/api/v1/enroll-tokens", json={"group": payload}),
        ]
        tried += len(answers)
        for answer in answers:
            assert answer.status_code < 500, (payload, answer.status_code, answer.text[:200])
    # the CLI takes file names: a missing or unreadable one is a clear error, exit 2 or 1, no traceback
    config = tmp_path / "cli.yaml"
    config.write_text(
        yaml.safe_dump({"collector": {"data_dir": live.config.data_dir, "database_url": live.config.database_url}})
    )
    for payload in ("../../no/such/policy.yaml", "/etc", "/dev/null"):
        done = run_cli("rampart-collector", "--config", str(config), "policy", "add", payload)
        tried += 1
        assert done.returncode in (1, 2) and "Traceback" not in done.stderr, (payload, done.stderr[-500:])
    after = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    figures.set(inputs_tried=tried)
    assert {str(p) for p in after} - {str(p) for p in before} <= {"collector.db-wal", "collector.db-shm"}


def cli_outputs(live: LiveCollector, tmp_path: Path) -> dict[str, tuple[str, str]]:
    config = tmp_path / "cli.yaml"
    config.write_text(
        yaml.safe_dump({"collector": {"data_dir": live.config.data_dir, "database_url": live.config.database_url}})
    )
    outputs = {}
    commands = {
        "hosts": ["hosts"],
        "host": ["host", "beta_02"],
        "check": ["check", HOSTILE_CHECK],
        "summary": ["summary"],
        "agents": ["agents", "list"],
        "audit": ["audit"],
    }
    for name, args in commands.items():
        table = run_cli("rampart-collector", "--config", str(config), *args)
        assert table.returncode == 0, (args, table.stderr[-500:])
        as_json = "{}"
        if name in ("hosts", "host"):  # JSON is JSON: two commands show it carries the text exactly
            done = run_cli("rampart-collector", "--config", str(config), *args, "--format", "json")
            assert done.returncode == 0, (args, done.stderr[-500:])
            as_json = done.stdout
        outputs[name] = (table.stdout, as_json)
    return outputs


def test_hostile_text_is_shown_as_text_in_every_output(
    live: LiveCollector, callers: Callers, tmp_path: Path, figures: Figures
) -> None:
    """Hostile host names and facts through CLI tables (no control characters), JSON (exact) and CSV (no formula)."""
    names = hostile_fleet(live)
    tried = 0
    for command, (table, as_json) in cli_outputs(live, tmp_path).items():
        tried += 2
        assert not CONTROL.findall(table), (command, CONTROL.findall(table)[:5], table[:400])
        json.loads(as_json)  # JSON carries the text exactly, escaped by JSON itself
    hosts = live.session(callers.roles["admin"]).get(live.url + "/api/v1/hosts", params={"limit": 100}).json()
    assert {h["hostname"] for h in hosts["hosts"]} >= set(names)  # stored as sent, shown escaped
    export = live.session(callers.roles["auditor"]).get(live.url + "/api/v1/export/results", params={"format": "csv"})
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.text)))
    tried += len(rows)
    for row in rows[1:]:
        for value in row:
            assert value[:1] not in ("=", "+", "-", "@", "\t", "\r"), (value[:60], row[:3])
    figures.set(inputs_tried=tried, hostile_texts=len(HOSTILE), outputs=["cli table", "cli json", "api json", "csv"])


def hostile_policy_check(path: str) -> dict[str, Any]:
    return {
        "id": "evil-file",
        "title": "A file with a hostile name",
        "description": "d",
        "rationale": "r",
        "remediation": "r",
        "severity": "low",
        "platforms": ["linux"],
        "probe": {"name": "file", "params": {"path": path}},
        "expect": {"fact": "exists", "eq": False},
    }


def test_the_agents_own_table_escapes_what_it_observed(tmp_path: Path, figures: Figures) -> None:
    """`rampart-agent check` prints a table of results whose facts and reasons came from a hostile file.

    The hostile text is what the probe reads (a setting's value), not the policy's own path: a path with
    control characters is refused by the path grammar before anything runs (checks/probes/grammar.py).
    """
    tried = 0
    target = tmp_path / "settings.conf"
    for index, text in enumerate(HOSTILE):
        # one setting per line: the characters str.splitlines splits on would end the value early
        value = "".join(" " if ch in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029" else ch for ch in text)
        target.write_text(f"name={value}\n", encoding="utf-8")
        check = hostile_policy_check(str(target))
        check["probe"] = {"name": "key_value_file", "params": {"path": str(target), "separator": "="}}
        check["expect"] = {"fact": "settings.name", "eq": "harmless"}
        policy = {"id": "hostile", "version": "1.0.0", "title": "t", "description": "d", "checks": [check]}
        path = tmp_path / f"policy-{index}.yaml"
        path.write_text(yaml.safe_dump(policy))
        done = run_cli("rampart-agent", "check", "--policy", str(path))
        tried += 1
        assert done.returncode in (0, 1), done.stderr[-400:]
        assert not CONTROL.findall(done.stdout), (text, done.stdout[-400:])
    figures.set(inputs_tried=tried)


# what hostile text must never become in HTML: live markup, script, or a link that goes to evil.example
LIVE_MARKUP = ["<script>alert(1)</script>", "<img src=x onerror", '"><img']
EVIL_LINK = re.compile(r"""(href|src|action)\s*=\s*["']?[^"'>\s]*evil\.example""", re.IGNORECASE)
WAIVER_JUSTIFICATION = '<script>alert("waiver")</script> =HYPERLINK("https://evil.example","x") \x1b[2Jcleared'


def hostile_waiver(live: LiveCollector, callers: Callers) -> str:
    """A waiver whose justification and ticket are hostile, approved so that every output shows it."""
    with write_tx(live.engine) as connection:
        users.add_user(connection, "analyst-2", "analyst", by="test", now=utcnow())
        second, _ = users.create_token(connection, "analyst-2", by="test", now=utcnow())
    expires = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    waiver = live.session(callers.roles["analyst"]).post(
        live.url + "/api/v1/waivers",
        json={"check": HOSTILE_CHECK, "policy": FLEET_POLICY_ID, "scope": {"hosts": ["alpha-01"]},
              "expires": expires, "justification": WAIVER_JUSTIFICATION, "ticket": "=1+2"},
    )  # fmt: skip
    assert waiver.status_code == 201, waiver.text
    approved = live.session(second).post(f"{live.url}/api/v1/waivers/{waiver.json()['id']}/approve")
    assert approved.status_code == 200, approved.text
    return str(waiver.json()["id"])


def assert_html_is_safe(where: str, html: str) -> None:
    for markup in LIVE_MARKUP:
        assert markup not in html, (where, markup, html[max(html.find(markup) - 200, 0) :][:400])
    assert not EVIL_LINK.search(html), (where, EVIL_LINK.search(html))
    assert not CONTROL.findall(html), (where, CONTROL.findall(html)[:5])


def test_hostile_text_is_text_in_the_dashboard_pages(live: LiveCollector, callers: Callers, figures: Figures) -> None:
    """Hostile host names, facts and a waiver's justification through every dashboard page that shows them,
    signed in: escaped markup, no script, no live link to evil.example, no control characters."""
    names = hostile_fleet(live)
    waiver = hostile_waiver(live, callers)
    with write_tx(live.engine) as connection:
        sessions.set_password(connection, "admin-1", PASSWORD, by="test", now=utcnow())
    web = Web(live)
    assert web.sign_in("admin-1").status_code == 303
    admin = live.session(callers.roles["admin"])
    hosts = admin.get(live.url + "/api/v1/hosts", params={"limit": 100}).json()["hosts"]
    pages = ["/", "/hosts", f"/checks/{FLEET_POLICY_ID}/{HOSTILE_CHECK}", "/waivers", "/audit", "/agents", "/downloads"]
    pages.append(f"/waivers/{quote(waiver)}")
    pages += [f"/hosts/{h['agent_id']}" for h in hosts if h["hostname"] in names]
    pages += ["/hosts?search=" + quote(name) for name in HOSTILE[:2]]
    shown = ""
    for path in pages:
        page = web.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:300])
        assert_html_is_safe(path, page.text)
        shown += page.text
    # shown, as text: the markup escaped, and the terminal escapes' printable remains
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in shown or "&quot;&gt;&lt;img src=x" in shown
    assert "=HYPERLINK(" in shown and ("alert(&#34;waiver&#34;)" in shown or "alert(&quot;waiver&quot;)" in shown)
    assert "\\x1b[2Jcleared" in shown  # the escape character shown as an escape
    figures.set(inputs_tried=len(pages) * len(HOSTILE), pages=len(pages), outputs=["dashboard html"])


def test_hostile_text_is_text_in_the_briefing_html_and_pdf(
    live: LiveCollector, callers: Callers, tmp_path: Path, figures: Figures
) -> None:
    """The briefing over HTTPS, as HTML and as PDF, with hostile host names and a hostile waiver: the HTML
    escapes them; the PDF (read by pdftotext) shows them as literal text, has no JavaScript and no link."""
    hostile_fleet(live)
    live.enrolled_agent(hostname=HOSTILE[0] + " silent")  # never reports: the briefing names it
    hostile_waiver(live, callers)
    auditor = live.session(callers.roles["auditor"])
    html = auditor.get(live.url + "/api/v1/briefing", headers={"Accept": "text/html"})
    assert html.status_code == 200, html.text[:300]
    assert_html_is_safe("briefing.html", html.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; silent" in html.text
    pdf = auditor.get(live.url + "/api/v1/briefing", headers={"Accept": "application/pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    path = tmp_path / "briefing.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    assert "<script>alert(1)</script> silent" in flat  # as literal text
    assert 'alert("waiver")' in flat and "HYPERLINK" in flat
    assert not CONTROL.findall(text.replace("\x0c", "")), CONTROL.findall(text)[:5]  # form feeds end pages
    urls = subprocess.run(["pdfinfo", "-url", str(path)], capture_output=True, text=True, check=True).stdout
    assert "evil.example" not in urls, urls
    scripts = subprocess.run(["pdfinfo", "-js", str(path)], capture_output=True, text=True, check=True).stdout
    assert "alert" not in scripts and "evil" not in scripts, scripts
    figures.set(inputs_tried=2 * (len(HOSTILE) + 1), outputs=["briefing html", "briefing pdf"])


def test_hostile_text_is_text_in_the_evidence_packs_members(
    live: LiveCollector, callers: Callers, figures: Figures
) -> None:
    """The evidence pack's CSV, JSON and text members with hostile host names, facts and a waiver: no cell a
    spreadsheet evaluates, no control character in any CSV cell, JSON exact, the briefing in it as text."""
    names = hostile_fleet(live)
    hostile_waiver(live, callers)
    pack = live.session(callers.roles["auditor"]).get(live.url + "/api/v1/evidence")
    assert pack.status_code == 200, pack.text[:300]
    tried = 0
    with zipfile.ZipFile(io.BytesIO(pack.content)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    for name, data in members.items():
        if name.endswith(".csv"):
            rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
            for row in rows[1:]:
                for value in row:
                    tried += 1
                    assert value[:1] not in ("=", "+", "-", "@", "\t", "\r"), (name, value[:60])
                    assert not CONTROL.findall(value), (name, value[:80])
        elif name.endswith((".json", ".jsonl", ".txt")):
            tried += 1
            assert not CONTROL.findall(data.decode("utf-8")), (name, CONTROL.findall(data.decode())[:5])
    inventory = json.loads(members["agents.json"])["agents"]
    assert {a["hostname"] for a in inventory} >= set(names)  # the JSON keeps the text exactly, escaped by JSON
    waivers = json.loads(members["waivers.json"])["waivers"]
    assert [w["justification"] for w in waivers] == [WAIVER_JUSTIFICATION]
    (waiver_row,) = list(csv.DictReader(io.StringIO(members["waivers.csv"].decode("utf-8"), newline="")))
    assert waiver_row["justification"] == WAIVER_JUSTIFICATION.replace("\x1b", "\\x1b")
    assert waiver_row["ticket"] == "'=1+2"
    figures.set(inputs_tried=tried, members=len(members), outputs=["evidence csv", "evidence json"])
