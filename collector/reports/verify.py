"""`rampart-collector evidence verify`: check an evidence pack offline, with no database and no config.

- the manifest's signature, with the collector key the manifest names; with `--key`, that key's
  fingerprint (SHA-256 of the raw public key, hex) must be the one given;
- every file: one the manifest does not list is "added", one it lists but the zip lacks is "removed",
  one whose SHA-256 or size differs is "changed";
- every signed agent report in reports/signed-reports.jsonl: its bytes against their SHA-256 and the
  agent's signature against the public key the inventory (agents.json) gives for that agent.

Imports stay small (the standard library and checks.wire): no database driver, no web framework.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks import wire

MANIFEST = "manifest.json"
REPORTS = "reports/signed-reports.jsonl"
AGENTS = "agents.json"


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    files: int = 0
    reports: int = 0
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def normalise_fingerprint(text: str) -> str:
    value = text.strip().lower()
    for prefix in ("sha256:", "sha256="):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    return value.replace(":", "").replace(" ", "")


def _hash(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with archive.open(name) as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _manifest(archive: zipfile.ZipFile, outcome: Outcome, expected_key: str | None) -> dict[str, Any] | None:
    try:
        document = json.loads(archive.read(MANIFEST))
    except KeyError:
        outcome.problems.append(f"{MANIFEST}: missing: this is not an evidence pack, or its manifest was removed")
        return None
    except ValueError:
        outcome.problems.append(f"{MANIFEST}: not valid JSON")
        return None
    payload = document.get("payload") if isinstance(document, dict) else None
    collector = payload.get("collector") if isinstance(payload, dict) else None
    if not isinstance(collector, dict) or not isinstance(collector.get("public_key"), str):
        outcome.problems.append(f"{MANIFEST}: names no collector public key")
        return None
    try:
        key = wire.load_public_key(collector["public_key"])
    except wire.WireError as exc:
        outcome.problems.append(f"{MANIFEST}: the collector public key is not usable: {exc.message}")
        return None
    outcome.fingerprint = hashlib.sha256(wire.public_key_bytes(key)).hexdigest()
    if expected_key is not None:
        expected = normalise_fingerprint(expected_key)
        if outcome.fingerprint != expected and wire.key_id(key) != expected:
            outcome.problems.append(
                f"{MANIFEST}: signed by collector key {outcome.fingerprint}, not the key given ({expected_key})"
            )
    try:
        verified = wire.verify_document(key, document)
    except wire.WireError as exc:
        outcome.problems.append(f"{MANIFEST}: {exc.message}")
        return None
    if verified.get("format") != "rampart-evidence/1":
        outcome.problems.append(f"{MANIFEST}: unknown format {verified.get('format')!r}")
    return verified


def _agent_keys(archive: zipfile.ZipFile, outcome: Outcome) -> dict[str, str]:
    try:
        inventory = json.loads(archive.read(AGENTS))
    except KeyError:
        outcome.problems.append(f"{AGENTS}: missing: the signed reports cannot be checked without the agents' keys")
        return {}
    except ValueError:
        outcome.problems.append(f"{AGENTS}: not valid JSON")
        return {}
    return {
        str(a.get("agent_id")): str(a.get("public_key")) for a in (inventory.get("agents") or []) if isinstance(a, dict)
    }


def _check_reports(archive: zipfile.ZipFile, outcome: Outcome) -> None:
    keys = _agent_keys(archive, outcome)
    with archive.open(REPORTS) as stream:
        for number, line in enumerate(stream, start=1):
            where = f"{REPORTS}:{number}"
            try:
                record = json.loads(line)
                report_id = str(record["report_id"])
                agent_id = str(record["agent_id"])
                signed = record["signed"]
                body = base64.b64decode(record["body_base64"], validate=True)
                headers = wire.SignedHeaders(
                    agent_id,
                    int(signed["timestamp"]),
                    str(signed["content_sha256"]),
                    wire.b64url_decode(str(signed["signature"])),
                )
            except (ValueError, KeyError, TypeError, binascii.Error, wire.WireError):
                outcome.problems.append(f"{where}: not a signed report record")
                continue
            where = f"{where}: report {report_id} of agent {agent_id}"
            if agent_id not in keys:
                outcome.problems.append(f"{where}: the agent is not in {AGENTS}")
                continue
            if body and json.loads(body).get("agent_id") != agent_id:
                outcome.problems.append(f"{where}: the body names another agent")
            try:
                wire.verify_request(
                    wire.load_public_key(keys[agent_id]), headers, str(signed["method"]), str(signed["path"]), body
                )
            except wire.WireError as exc:
                outcome.problems.append(f"{where}: {exc.message}")
                continue
            except ValueError:
                outcome.problems.append(f"{where}: the body is not the JSON that was signed")
                continue
            outcome.reports += 1


def verify(path: Path, expected_key: str | None = None) -> Outcome:
    """Every problem with the pack at `path`, one line each (none: the pack is as signed)."""
    outcome = Outcome()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        outcome.problems.append(f"{path}: not a readable zip file: {exc}")
        return outcome
    with archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        for name in sorted(n for n, times in Counter(names).items() if times > 1):
            outcome.problems.append(f"{name}: appears more than once in the zip")
        payload = _manifest(archive, outcome, expected_key)
        if payload is None:
            return outcome
        listed = {str(e.get("path")): e for e in payload.get("files") or [] if isinstance(e, dict)}
        present = set(names) - {MANIFEST}
        for name in sorted(present - set(listed)):
            outcome.problems.append(f"{name}: added (not in the manifest)")
        for name in sorted(set(listed) - present):
            outcome.problems.append(f"{name}: removed (listed in the manifest, not in the pack)")
        for name in sorted(present & set(listed)):
            digest, size = _hash(archive, name)
            if digest != listed[name].get("sha256") or size != listed[name].get("bytes"):
                outcome.problems.append(f"{name}: changed (its SHA-256 is not the one in the manifest)")
            else:
                outcome.files += 1
        if REPORTS in present:
            _check_reports(archive, outcome)
    return outcome
