"""`rampart-collector evidence verify`: check an evidence pack offline, with no database and no config.

- the manifest's signature, with the collector key the manifest names; with `--key`, that key's
  fingerprint (SHA-256 of the raw public key, hex) must be the one given;
- every file: one the manifest does not list is "added", one it lists but the zip lacks is "removed",
  one whose SHA-256 or size differs is "changed";
- every signed agent report in reports/signed-reports.jsonl: its bytes against their SHA-256 and the
  agent's signature against the public key the inventory (agents.json) gives for that agent.

The pack is hostile input: every way a zip can be damaged or made (a bad central directory, a bad CRC,
a member name like ../x or /etc/x, a directory entry, a member compressed with bzip2 or encrypted, a zip
bomb) ends as a problem line, never as an exception. Nothing is ever extracted or written. What is read
whole (the manifest, agents.json) or a line at a time (the signed reports) is bounded in size, and a
listed member is hashed only if its size is the one the signed manifest gives, so a member that unpacks
to gigabytes costs neither memory nor time.

Imports stay small (the standard library and checks.wire): no database driver, no web framework.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from checks import wire

MANIFEST = "manifest.json"
REPORTS = "reports/signed-reports.jsonl"
AGENTS = "agents.json"
# Bounds of what is read into memory. A manifest lists a few hundred files; agents.json holds about 400
# bytes an agent (100,000 agents: 40 MB); a line of signed reports is one body of at most the collector's
# max_body_bytes (4 MiB by default), in base64.
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_AGENTS_BYTES = 128 * 2**20
MAX_REPORT_LINE_BYTES = 48 * 2**20
CHUNK = 2**20
# What reading a damaged zip raises, from the standard library's zipfile and zlib: a bad CRC or a header
# that disagrees with the central directory is BadZipFile; a truncated stream EOFError or zlib.error; a
# damaged directory ValueError or struct.error; an encrypted member RuntimeError.
ZIP_ERRORS = (
    OSError, EOFError, ValueError, struct.error, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError
)  # fmt: skip
# A name an export never writes: absolute, a drive, a backslash, a .. part, a control character, or empty.
_UNSAFE_NAME = re.compile(r"^$|^/|^[A-Za-z]:|\\|(^|/)\.\.(/|$)|[\x00-\x1f\x7f]")


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


def _unreadable(info: zipfile.ZipInfo) -> str | None:
    """Why a member is not read at all, or None: an export writes members stored or deflated, unencrypted.
    (bzip2 and LZMA members are refused unread: zipfile unpacks them without a bound on the output.)"""
    if info.flag_bits & 0x1:
        return "encrypted: an evidence pack is never encrypted"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return f"compressed with method {info.compress_type}: an evidence pack uses deflate only"
    return None


def _hash(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with archive.open(info) as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _read_json(archive: zipfile.ZipFile, name: str, limit: int, outcome: Outcome) -> Any:
    """The JSON document `name`, or None with a problem said (missing, too large, unreadable, not JSON)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    why = _unreadable(info)
    if why is None and info.file_size > limit:
        why = f"{info.file_size:,} bytes unpacked, more than the {limit:,} a pack's {name} can be"
    if why is not None:
        outcome.problems.append(f"{name}: {why}")
        return None
    try:
        with archive.open(info) as stream:
            return json.loads(stream.read(limit + 1))
    except ZIP_ERRORS as exc:
        if isinstance(exc, ValueError) and not isinstance(exc, zipfile.BadZipFile):
            outcome.problems.append(f"{name}: not valid JSON")
        else:
            outcome.problems.append(f"{name}: cannot be read from the zip: {exc}")
    except RecursionError:
        outcome.problems.append(f"{name}: not valid JSON (nested too deeply)")
    return None


def _manifest(archive: zipfile.ZipFile, outcome: Outcome, expected_key: str | None) -> dict[str, Any] | None:
    if MANIFEST not in archive.NameToInfo:
        outcome.problems.append(f"{MANIFEST}: missing: this is not an evidence pack, or its manifest was removed")
        return None
    before = len(outcome.problems)
    document = _read_json(archive, MANIFEST, MAX_MANIFEST_BYTES, outcome)
    if document is None:
        if len(outcome.problems) == before:
            outcome.problems.append(f"{MANIFEST}: not a signed document")
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
    if not isinstance(verified.get("files"), list):
        outcome.problems.append(f"{MANIFEST}: lists no files")
        return None
    return verified


def _agent_keys(archive: zipfile.ZipFile, outcome: Outcome) -> dict[str, str]:
    if AGENTS not in archive.NameToInfo:
        outcome.problems.append(f"{AGENTS}: missing: the signed reports cannot be checked without the agents' keys")
        return {}
    inventory = _read_json(archive, AGENTS, MAX_AGENTS_BYTES, outcome)
    agents = inventory.get("agents") if isinstance(inventory, dict) else None
    if not isinstance(agents, list):
        if inventory is not None:
            outcome.problems.append(f"{AGENTS}: lists no agents")
        return {}
    return {str(a.get("agent_id")): str(a.get("public_key")) for a in agents if isinstance(a, dict)}


def _lines(stream: IO[bytes], limit: int) -> Iterator[bytes | None]:
    """The lines of `stream`, read in chunks into one buffer; a line longer than `limit` is None (and
    skipped to its end), so memory stays near `limit` however long a line a bomb unpacks to."""
    buffer = bytearray()
    too_long = False
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            yield None if too_long or end > limit else bytes(buffer[:end])
            del buffer[: end + 1]
            too_long = False
        if len(buffer) > limit:
            too_long = True
            buffer.clear()
    if buffer or too_long:
        yield None if too_long else bytes(buffer)


def _check_report(record: Any, keys: dict[str, str], where: str, outcome: Outcome) -> None:
    try:
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
        method, path = str(signed["method"]), str(signed["path"])
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, wire.WireError):
        outcome.problems.append(f"{where}: not a signed report record")
        return
    where = f"{where}: report {report_id} of agent {agent_id}"
    if agent_id not in keys:
        outcome.problems.append(f"{where}: the agent is not in {AGENTS}")
        return
    try:
        wire.verify_request(wire.load_public_key(keys[agent_id]), headers, method, path, body)
    except wire.WireError as exc:
        outcome.problems.append(f"{where}: {exc.message}")
        return
    # Signed by the agent; the record's own fields (which the agent did not sign) must be the body's.
    try:
        document = json.loads(body) if body else {"agent_id": agent_id, "report_id": report_id}
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        outcome.problems.append(f"{where}: the body is not a JSON report")
        return
    if document.get("agent_id") != agent_id:
        outcome.problems.append(f"{where}: the body names another agent")
        return
    if "report_id" in document and document["report_id"] != report_id:
        outcome.problems.append(f"{where}: the body is report {document['report_id']!r}, not this record's")
        return
    outcome.reports += 1


def _check_reports(archive: zipfile.ZipFile, info: zipfile.ZipInfo, outcome: Outcome) -> None:
    keys = _agent_keys(archive, outcome)
    why = _unreadable(info)
    if why is not None:
        outcome.problems.append(f"{REPORTS}: {why}")
        return
    number = 0
    try:
        with archive.open(info) as stream:
            for number, line in enumerate(_lines(stream, MAX_REPORT_LINE_BYTES), start=1):
                where = f"{REPORTS}:{number}"
                if line is None:
                    outcome.problems.append(f"{where}: longer than {MAX_REPORT_LINE_BYTES:,} bytes: not a report")
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    outcome.problems.append(f"{where}: not a signed report record")
                    continue
                _check_report(record, keys, where, outcome)
    except ZIP_ERRORS as exc:
        outcome.problems.append(f"{REPORTS}: cannot be read from the zip after line {number}: {exc}")


def verify(path: Path, expected_key: str | None = None) -> Outcome:
    """Every problem with the pack at `path`, one line each (none: the pack is as signed)."""
    outcome = Outcome()
    try:
        archive = zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        outcome.problems.append(f"{path}: not a readable zip file: {exc}")
        return outcome
    with archive:
        # every entry counts, directories too: an export writes none, so one is added like any file
        names = [info.filename for info in archive.infolist()]
        for name in sorted(n for n, times in Counter(names).items() if times > 1):
            outcome.problems.append(f"{name}: appears more than once in the zip")
        for name in sorted({n for n in names if _UNSAFE_NAME.search(n)}):
            outcome.problems.append(f"{name}: not a name an evidence pack holds (absolute, .., or a control character)")
        payload = _manifest(archive, outcome, expected_key)
        if payload is None:
            return outcome
        listed = {str(e.get("path")): e for e in payload["files"] if isinstance(e, dict)}
        present = set(names) - {MANIFEST}
        for name in sorted(present - set(listed)):
            outcome.problems.append(f"{name}: added (not in the manifest)")
        for name in sorted(set(listed) - present):
            outcome.problems.append(f"{name}: removed (listed in the manifest, not in the pack)")
        for name in sorted(present & set(listed)):
            _check_file(archive, archive.getinfo(name), listed[name], outcome)
        if REPORTS in present:
            _check_reports(archive, archive.getinfo(REPORTS), outcome)
    return outcome


def _check_file(archive: zipfile.ZipFile, info: zipfile.ZipInfo, entry: dict[str, Any], outcome: Outcome) -> None:
    changed = f"{info.filename}: changed (its SHA-256 is not the one in the manifest)"
    why = _unreadable(info)
    if why is not None:
        outcome.problems.append(f"{info.filename}: {why}")
        return
    if info.file_size != entry.get("bytes"):  # zipfile unpacks no more than this: no need to read a bomb
        outcome.problems.append(changed)
        return
    try:
        digest, size = _hash(archive, info)
    except ZIP_ERRORS as exc:
        outcome.problems.append(f"{info.filename}: cannot be read from the zip: {exc}")
        return
    if digest != entry.get("sha256") or size != entry.get("bytes"):
        outcome.problems.append(changed)
    else:
        outcome.files += 1
