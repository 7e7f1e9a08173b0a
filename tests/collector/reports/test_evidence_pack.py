"""The evidence pack over HTTPS and from the command line, read back with the formats' own tools, and
`evidence verify` as a process with no database and no config: a fresh pack passes; a changed, an added
and a removed file, a changed raw report, a wrong --key and a manifest signed by another key fail,
each named."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import os
import pty
import subprocess
import sys
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Any

import yaml
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding  # type: ignore[import-untyped]  # no py.typed
from trestle.oscal.assessment_results import AssessmentResults

from checks import wire
from collector.reports.evidence import fingerprint as evidence_fingerprint
from tests.collector.reports.fleet import shipped_result
from tests.conftest import BIN, run_cli
from tests.support.live import LiveCollector

FORMULA_HOST = '=HYPERLINK("http://x","y")'
EXPECTED_FILES = {
    "README.txt", "results.csv", "results.jsonl", "changes.csv", "changes.jsonl", "policies/index.json",
    "waivers.json", "waivers.csv", "audit-log.jsonl", "audit-log.csv", "agents.csv", "agents.json",
    "briefing.pdf", "oscal/assessment-results.json", "ocsf/compliance-findings.jsonl",
    "reports/signed-reports.jsonl",
}  # fmt: skip


def auditor_token(live: LiveCollector) -> str:
    admin = live.admin()
    assert admin.post(live.url + "/api/v1/users", json={"name": "audrey", "role": "auditor"}).status_code == 201
    token: str = admin.post(live.url + "/api/v1/api-tokens", json={"user": "audrey"}).json()["token"]
    return token


def populate(live: LiveCollector) -> list[Any]:
    plain = live.enrolled_agent(hostname="pc-1")
    formula = live.enrolled_agent(hostname=FORMULA_HOST)
    updates, disks = "security-updates-within-14-days", "disks-encrypted"
    for agent, status in ((plain, "pass"), (formula, "fail")):
        observed = {"value": "@SUM(1+1)", "note": "-2+3"}
        assert agent.report([shipped_result(updates, status, observed=observed), shipped_result(disks, "pass")]).ok
    assert formula.report([shipped_result(updates, "pass", observed={"value": "+1 day", "note": "@SUM(1+1)"})]).ok
    return [plain, formula]


def pack_path(live: LiveCollector, tmp_path: Path, **params: Any) -> Path:
    response = live.session(auditor_token(live)).get(live.url + "/api/v1/evidence", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    path = tmp_path / "pack.zip"
    path.write_bytes(response.content)
    return path


def verify(pack: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`evidence verify` with no database, no config file and no collector data anywhere near."""
    return run_cli(
        "rampart-collector", "evidence", "verify", str(pack), *args,
        env={"RAMPART_CONFIG": "/nonexistent/config.yaml"}, cwd=pack.parent,
    )  # fmt: skip


def on_a_terminal(*command: str) -> tuple[str, str]:
    """Run a command with standard error on a pseudo-terminal: (its standard output, what the terminal got)."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    process = subprocess.Popen([str(BIN / command[0]), *command[1:]], stdout=subprocess.PIPE, stderr=secondary,
                               env={**env, "TERM": "xterm", "COLUMNS": "100"})  # fmt: skip
    os.close(secondary)
    received: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal's other end closed with the process
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    stdout, _ = process.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(primary)
    assert process.returncode == 0, b"".join(received).decode(errors="replace")
    return stdout.decode(), b"".join(received).decode(errors="replace")


def rewrite(source: Path, target: Path, change: Any) -> Path:
    """A copy of the zip with `change(name, data)` applied to each entry (None drops it)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for info in original.infolist():
            data = change(info.filename, original.read(info.filename))
            if data is not None:
                copy.writestr(info.filename, data)
    return target


def test_the_pack_holds_every_part_in_formats_their_tools_read(live: LiveCollector, tmp_path: Path) -> None:
    agents = populate(live)
    pack = pack_path(live, tmp_path, with_reports="true")
    with zipfile.ZipFile(pack) as archive:
        names = set(archive.namelist())
        assert EXPECTED_FILES <= names and "manifest.json" in names
        assert any(n.startswith("policies/baseline/1.3.0-") for n in names)
        manifest = json.loads(archive.read("manifest.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        lines = [json.loads(line) for line in archive.read("results.jsonl").splitlines()]
        events = [json.loads(line) for line in archive.read("ocsf/compliance-findings.jsonl").splitlines()]
        oscal = json.loads(archive.read("oscal/assessment-results.json"))
        inventory = list(csv.DictReader(io.StringIO(archive.read("agents.csv").decode())))
        changes = list(csv.DictReader(io.StringIO(archive.read("changes.csv").decode())))
        signed = [json.loads(line) for line in archive.read("reports/signed-reports.jsonl").splitlines()]
        audit_rows = list(csv.DictReader(io.StringIO(archive.read("audit-log.csv").decode())))
        assert archive.read("briefing.pdf").startswith(b"%PDF-")
    payload = manifest["payload"]
    assert {f["path"] for f in payload["files"]} == names - {"manifest.json"}
    assert payload["parameters"]["with_reports"] is True and payload["created_by"] == "user:audrey"
    assert wire.verify_document(wire.load_public_key(payload["collector"]["public_key"]), manifest) == payload
    # Results with facts, read back by the csv module; formula-looking cells are text in CSV, raw in JSON.
    assert len(rows) == len(lines) == len(events) == 4
    by_host = {(r["subject_name"], r["check"]): r for r in rows}
    risky = by_host[("'" + FORMULA_HOST, "security-updates-within-14-days")]
    assert risky["status"] == "pass" and risky["facts_from"].startswith("signed report ")
    assert json.loads(risky["observed"]) == {"note": "@SUM(1+1)", "value": "+1 day"}  # the report that set it
    assert {r["subject_name"] for r in rows} == {"pc-1", "'" + FORMULA_HOST}
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r.values())
    assert {line["subject_name"] for line in lines} == {"pc-1", FORMULA_HOST}
    assert any(r["hostname"] == "'" + FORMULA_HOST for r in inventory)
    assert {a["agent_id"] for a in inventory} == {a.agent_id for a in agents}
    assert all(a["public_key"] and a["enrolled_at"] for a in inventory)
    assert [(c["from_status"], c["to_status"]) for c in changes if c["check"] == "security-updates-within-14-days"
            and c["subject_name"] != "pc-1"] == [("", "fail"), ("fail", "pass")]  # fmt: skip
    assert len(signed) == 3 and {s["agent_id"] for s in signed} == {a.agent_id for a in agents}
    assert any(r["action"] == "evidence.export" and r["actor"] == "user:audrey" for r in audit_rows)
    # The formats' own models accept them.
    for event in events:
        finding = ComplianceFinding.model_validate(event)
        assert finding.class_uid == 2003 and finding.type_uid == 200301
    document = AssessmentResults.model_validate(oscal["assessment-results"])
    (result,) = document.results
    targets = {f.target.target_id: f.target.status and f.target.status.state.value for f in result.findings or []}
    assert targets["caf-b4.d"] == "satisfied" and targets["caf-b3.c"] == "satisfied"
    assert {o.title for o in result.observations or []} >= {"Every fixed disk volume is encrypted with protection on"}
    # The export is in the audit log of the collector too.
    entries = live.admin().get(live.url + "/api/v1/audit", params={"action": "evidence.export"}).json()["entries"]
    assert [(e["actor"], e["details"]["with_reports"]) for e in entries] == [("user:audrey", True)]


def test_verify_passes_a_fresh_pack_and_names_each_tampering(live: LiveCollector, tmp_path: Path) -> None:
    populate(live)
    pack = pack_path(live, tmp_path, with_reports="true")
    with zipfile.ZipFile(pack) as archive:
        fingerprint = json.loads(archive.read("manifest.json"))["payload"]["collector"]["fingerprint"]
        hashed = len(archive.namelist()) - 1  # every file but the manifest
    assert hashed >= len(EXPECTED_FILES) + 1  # and at least one stored policy
    fresh = verify(pack, "--key", fingerprint)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert f"verified {hashed} files and 3 signed agent reports" in fresh.stdout and fingerprint in fresh.stdout

    changed = rewrite(
        pack, tmp_path / "changed.zip", lambda n, d: d.replace(b"pass", b"fail", 1) if n == "results.csv" else d
    )
    added = rewrite(pack, tmp_path / "added.zip", lambda n, d: d)
    with zipfile.ZipFile(added, "a") as archive:
        archive.writestr("extra/notes.txt", "added later")
    removed = rewrite(pack, tmp_path / "removed.zip", lambda n, d: None if n == "agents.csv" else d)
    expectations = {
        changed: ["results.csv: changed (its SHA-256 is not the one in the manifest)"],
        added: ["extra/notes.txt: added (not in the manifest)"],
        removed: ["agents.csv: removed (listed in the manifest, not in the pack)"],
    }
    duplicated = rewrite(pack, tmp_path / "duplicated.zip", lambda n, d: d)
    with warnings.catch_warnings(), zipfile.ZipFile(duplicated, "a") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name: that is the point
        archive.writestr("results.csv", "subject_id\nforged\n")
    assert "results.csv: appears more than once in the zip" in verify(duplicated).stdout.splitlines()
    for path, lines in expectations.items():
        outcome = verify(path)
        assert outcome.returncode == 1, outcome.stdout
        assert outcome.stdout.splitlines() == lines

    def alter_report(name: str, data: bytes) -> bytes:
        if name != "reports/signed-reports.jsonl":
            return data
        records = [json.loads(line) for line in data.splitlines()]
        body = json.loads(base64.b64decode(records[1]["body_base64"]))
        body["results"][0]["status"] = "pass" if body["results"][0]["status"] == "fail" else "fail"
        records[1]["body_base64"] = base64.b64encode(json.dumps(body).encode()).decode()
        return b"".join(json.dumps(r).encode() + b"\n" for r in records)

    report = verify(rewrite(pack, tmp_path / "report.zip", alter_report))
    assert report.returncode == 1
    problem_lines = report.stdout.splitlines()
    assert problem_lines[0] == "reports/signed-reports.jsonl: changed (its SHA-256 is not the one in the manifest)"
    assert problem_lines[1].startswith("reports/signed-reports.jsonl:2: report ")
    assert problem_lines[1].endswith("the body does not match its SHA-256 header") and len(problem_lines) == 2

    wrong_key = verify(pack, "--key", "ab" * 32)
    assert wrong_key.returncode == 1
    assert wrong_key.stdout.splitlines() == [
        f"manifest.json: signed by collector key {fingerprint}, not the key given ({'ab' * 32})"
    ]

    # A manifest signed by another key: as it is (the collector's key named), and with the forger's own key
    # named in it too, which only --key can tell.
    real = json.loads(zipfile.ZipFile(pack).read("manifest.json"))
    forger = wire.generate_key()
    swapped = {
        **real["payload"],
        "collector": {**real["payload"]["collector"], "public_key": wire.public_key_text(forger)},
    }
    for payload, expected in (
        (real["payload"], "manifest.json: the document was signed by another key than the one pinned"),
        (
            swapped,
            f"manifest.json: signed by collector key {evidence_fingerprint(forger)}, not the key given ({fingerprint})",
        ),
    ):
        forged = json.dumps(wire.sign_document(forger, payload)).encode()
        tampered = rewrite(pack, tmp_path / "forged.zip", lambda n, d, f=forged: f if n == "manifest.json" else d)
        outcome = verify(tampered, "--key", fingerprint)
        assert outcome.returncode == 1
        assert outcome.stdout.splitlines() == [expected]


def test_export_from_the_command_line_as_at_a_date_for_one_framework(live: LiveCollector, tmp_path: Path) -> None:
    populate(live)
    config = tmp_path / "collector.yaml"
    config.write_text(
        yaml.safe_dump({"collector": {"data_dir": live.config.data_dir, "database_url": live.config.database_url}})
    )
    out = tmp_path / "caf.zip"
    today = dt.date.today().isoformat()
    stdout, terminal = on_a_terminal(
        "rampart-collector", "--config", str(config), "evidence", "export", "--as-of", today,
        "--framework", "cyber_essentials", "--out", str(out), "--format", "json",
    )  # fmt: skip
    assert "results" in terminal and "\x1b[" in terminal  # rich's progress display, on the terminal only
    answer = json.loads(stdout)
    assert answer["parameters"] == {"as_of": today, "framework": "cyber_essentials", "from": None, "to": None,
                                    "group": None, "with_reports": False}  # fmt: skip
    with zipfile.ZipFile(out) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        assert "reports/signed-reports.jsonl" not in archive.namelist()
    # disks-encrypted maps to no Cyber Essentials control: only the updates check is in this pack.
    assert {r["check"] for r in rows} == {"security-updates-within-14-days"}
    key = run_cli("rampart-collector", "--config", str(config), "evidence", "key", "--format", "json")
    assert json.loads(key.stdout)["fingerprint"] == answer["collector"]["fingerprint"]
    assert verify(out, "--key", answer["collector"]["fingerprint"]).returncode == 0
    future = run_cli("rampart-collector", "--config", str(config), "evidence", "export", "--as-of", "2999-01-01",
                     "--out", str(out))  # fmt: skip
    assert future.returncode == 2 and "after today" in future.stderr
    both = run_cli("rampart-collector", "--config", str(config), "evidence", "export", "--as-of", today,
                   "--from", today, "--to", today, "--out", str(out))  # fmt: skip
    assert both.returncode == 2 and "not both" in both.stderr
    missing = verify(tmp_path / "nothing.zip")
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_verify_imports_no_database_or_web_stack() -> None:
    heavy = "{'sqlalchemy', 'fastapi', 'sqlmodel', 'psycopg', 'weasyprint', 'matplotlib'}"
    probe = (
        "import sys, collector.cli, collector.reports.verify; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
