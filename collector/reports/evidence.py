"""The auditor's evidence pack: a zip of what the collector holds for a period, hashed and signed.

    pack.zip
      manifest.json                 SHA-256 and size of every other file, the export's parameters and the
                                    collector's Ed25519 public key, signed with that key (checks.wire)
      README.txt                    what each file is, and how to verify the pack
      results.csv, results.jsonl    every result in force at the end of the period: status, since when,
                                    the observed facts, expectation and reason behind that status
      changes.csv, changes.jsonl    every status change in the period (from, to, when, which report)
      policies/index.json           every policy version stored by the end, with its SHA-256, and which
      policies/<id>/<version>-<sha>.json   groups they were assigned to then; each document as stored
      waivers.json, waivers.csv     every waiver requested by the end, its state then and its whole history
      audit-log.jsonl, audit-log.csv   the audit log of the period
      agents.csv, agents.json       the agent inventory as at the end: id, host, OS, group, enrolled,
                                    revoked, last report, public key
      briefing.pdf                  the audit-committee briefing of the period
      oscal/assessment-results.json OSCAL assessment results
      ocsf/compliance-findings.jsonl  OCSF Compliance Finding events (class 2003), one per result
      reports/signed-reports.jsonl  (--with-reports) every signed agent report received in the period,
                                    its bytes and signature headers, so each agent's signature verifies

Everything is "as at the end of the period" from the stored history (status intervals, the reports
kept, the waivers' dates, the audit log), so an export as at a past date made today shows the state on
that date, not today's state relabelled. A result's facts are those of the signed report that set its
status (agents), the tenant's observation of that day (Microsoft 365), or not kept (Azure resources).

The files are written to a temporary directory one row at a time (one pass over the results feeds the
CSV, the JSON lines and the OCSF events), then zipped: memory stays bounded whatever the period.
Every CSV cell is formula-safe (checks.safetext).

This module makes the pack (checks the request, writes every file, signs the manifest, zips); the files
are written by `evidence_results.py` and `evidence_records.py`, sharing `evidence_files.py`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Connection, Engine

from checks import __version__, wire
from collector.config import CollectorConfig
from collector.reports import oscal
from collector.reports.evidence_files import ExportRequest, Files, Progress
from collector.reports.evidence_records import (
    write_agents,
    write_audit_log,
    write_changes,
    write_policies,
    write_reports,
    write_waivers,
)
from collector.reports.evidence_results import catalog_entries, result_rows, write_results
from collector.storage import audit
from collector.storage.engine import read_tx, write_tx
from collector.storage.models import daily_changes, iso
from collector.storage.queries import common

FORMAT = "rampart-evidence/1"
FRAMEWORKS = ("cyber_essentials", "ncsc_caf", "cis_controls_v8")


class EvidenceError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _expected_results(connection: Connection, day: dt.date) -> int:
    rows = connection.execute(sa.select(sa.func.sum(daily_changes.c.delta)).where(daily_changes.c.day <= day)).scalar()
    return int(rows or 0)


def check_request(request: ExportRequest, today: dt.date, retention_days: int) -> None:
    if request.framework is not None and request.framework not in FRAMEWORKS:
        raise EvidenceError("bad_request", f"framework must be one of {', '.join(FRAMEWORKS)}")
    if request.start and request.start > request.end:
        raise EvidenceError("bad_request", "the period ends before it starts")
    if request.end > today:
        raise EvidenceError("bad_request", f"{request.end.isoformat()} is after today: the state then is not known")
    try:
        common.check_as_of(request.first_day, today, retention_days)
    except common.QueryError as exc:
        raise EvidenceError(exc.code, exc.message) from None


def fingerprint(key: Ed25519PrivateKey) -> str:
    """The collector key's fingerprint: the SHA-256 of its raw 32-byte public key, in hex."""
    return hashlib.sha256(wire.public_key_bytes(key)).hexdigest()


README = """Rampart evidence pack
=====================

{summary}

Verify it (offline; no database, no configuration; the fingerprint comes from the collector's
administrator, out of band):

    rampart-collector evidence verify {name} --key {fingerprint}

verify names every file added, removed or changed since the pack was signed, checks the manifest's
signature with the collector key it names (and that key against --key), and checks every signed agent
report in reports/ against the agent's public key in agents.json. Without Rampart: each file's SHA-256
is in manifest.json ("payload"."files"); the signature is Ed25519 over the payload serialised as JSON
with sorted keys and no spaces (UTF-8), in base64url without padding.

Files: see docs/evidence.md. CSV cells that begin with =, +, -, @, tab or carriage return are prefixed
with ' so that a spreadsheet shows them as text.
"""


# --- the pack ------------------------------------------------------------------------------------------


def _zip(
    files: Files, out: Path, sign: Callable[[dict[str, Any]], dict[str, Any]], payload: dict[str, Any]
) -> dict[str, Any]:
    """Hash every file, sign the manifest, write the zip (renamed into place when complete)."""
    entries = []
    names: list[str] = sorted(set(files.names))
    for name in names:
        digest = hashlib.sha256()
        size = 0
        with (files.root / name).open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        entries.append({"path": name, "sha256": digest.hexdigest(), "bytes": size})
    signed = {**payload, "files": entries}
    manifest = sign(signed)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6, allowZip64=True) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        for name in names:
            archive.write(files.root / name, name)
    os.replace(partial, out)
    return signed


def export(
    engine: Engine,
    config: CollectorConfig,
    key: Ed25519PrivateKey,
    request: ExportRequest,
    out: Path,
    *,
    now: dt.datetime,
    actor: str,
    progress: Progress | None = None,
    render_briefing: bool = True,
) -> dict[str, Any]:
    """Write the pack to `out`; returns the signed manifest's payload. The export is audited first."""
    from collector.reports import briefing, figures
    from collector.reports.periods import month_number

    check_request(request, now.date(), config.retention_days)
    report: Progress = progress or (lambda _what, _n, _total: None)
    with write_tx(engine) as connection:
        audit.record(connection, actor, "evidence.export", str(out.name), request.parameters(), now)
    start = dt.datetime.combine(request.first_day, dt.time())
    end = common.end_of(request.end)
    year_starts = month_number(config.briefing.year_starts)
    counts: dict[tuple[str, str], dict[str, int]] = {}
    summary: dict[str, Any] = {}
    directory = Path(tempfile.mkdtemp(prefix=".rampart-evidence-", dir=out.parent))
    try:
        files = Files(directory)
        with read_tx(engine) as connection, read_tx(engine) as lookups:
            catalog = catalog_entries(connection)
            checks = (
                {k for k, v in catalog.items() if request.framework in (v.get("frameworks") or {})}
                if request.framework
                else None
            )
            # How many results to expect, from the counters (the whole fleet: a filter only makes it fewer).
            expected = None if request.group or request.framework else _expected_results(connection, request.end)
            report("results", 0, expected)
            at_ms = int(end.replace(tzinfo=dt.UTC).timestamp() * 1000)
            counts = write_results(files, result_rows(connection, lookups, request, end), at_ms, report, expected)
            summary["results"] = sum(sum(v.values()) for v in counts.values())
            report("changes", 0, None)
            summary["changes"] = write_changes(files, connection, request, start, end, checks, report)
            write_policies(files, connection, end)
            write_waivers(files, connection, end)
            summary["audit_entries"] = write_audit_log(files, connection, start, end)
            summary["agents"] = len(write_agents(files, connection, request, end))
            if request.with_reports:
                report("signed reports", 0, None)
                summary["signed_reports"] = write_reports(files, connection, request, start, end, report)
            title = (
                f"Rampart evidence as at the end of {request.end.isoformat()}"
                if not request.start
                else f"Rampart evidence from {request.first_day.isoformat()} to {request.end.isoformat()}"
            )
            files.write_bytes(
                "oscal/assessment-results.json",
                oscal.validated_json(
                    oscal.document(
                        title=title, start=start, end=end, now=now, checks=catalog, counts=counts,
                        frameworks={request.framework} if request.framework else None,
                        pack_id=f"{title}/{now.isoformat()}",
                    )
                ).encode(),
            )  # fmt: skip
            if render_briefing:
                report("briefing", 0, None)
                try:
                    data = figures.gather(
                        connection, period=request.period(year_starts), group=request.group, config=config, now=now
                    )
                except common.QueryError as exc:
                    raise EvidenceError(exc.code, exc.message) from None
                files.write_bytes("briefing.pdf", briefing.render(data, "pdf"))
        public = wire.public_key_text(key)
        files.write_bytes(
            "README.txt",
            README.format(
                summary=title + (f", group {request.group}" if request.group else "")
                + (f", framework {request.framework}" if request.framework else "") + ".",
                name=out.name, fingerprint=fingerprint(key),
            ).encode(),
        )  # fmt: skip
        payload = {
            "format": FORMAT,
            "created_at": iso(now),
            "created_by": actor,
            "rampart_version": __version__,
            "parameters": request.parameters(),
            "collector": {"public_key": public, "fingerprint": fingerprint(key), "key_id": wire.key_id(key)},
            "counts": summary,
        }
        report("zip", 0, None)
        return _zip(files, out, lambda p: wire.sign_document(key, p), payload)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
