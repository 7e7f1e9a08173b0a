"""The evidence verifier under hostile packs: one real pack, made once by a collector over HTTPS, then
tampered with in every way a forger or a broken disk could.

- the untampered pack verifies (in-process and as `rampart-collector evidence verify`);
- any changed byte of any member, a removed or an added member (names like ../x or /etc/x too), a
  truncated file, damage to the zip's own structure (central directory, CRCs, sizes), or input that is
  no zip at all: refused with problems of its own, never passed and never another exception;
- an edited manifest (the hash list, the files, any field) is refused by its signature; re-signed by a
  forger it is refused by --key; re-signed with the collector's own key (an insider), a forged or swapped
  agent report is still refused by the agent's signature;
- a zip bomb (members far larger unpacked than packed) is refused within bounded memory, and nothing is
  ever written anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checks import wire
from collector.initialise import load_signing_key
from collector.reports import verify as verifier
from tests.collector.reports.test_evidence_pack import auditor_token, populate
from tests.conftest import run_cli
from tests.reliability.figures import Figures
from tests.support.live import LiveCollector, live_collector

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

MANIFEST = "manifest.json"
REPORTS = "reports/signed-reports.jsonl"
TRAVERSAL_NAMES = ["../x", "../../etc/cron.d/x", "/etc/x", "/abs/results.csv", "a/../../x", "..\\x", "C:\\x", "C:/x"]


class Pack:
    """A real evidence pack, its members, the collector key that signed it and its fingerprint."""

    def __init__(self, data: bytes, key: Any) -> None:
        self.data = data
        self.key = key
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            self.members = {info.filename: archive.read(info.filename) for info in archive.infolist()}
        self.manifest: dict[str, Any] = json.loads(self.members[MANIFEST])
        self.fingerprint: str = self.manifest["payload"]["collector"]["fingerprint"]

    def names(self) -> list[str]:
        return sorted(self.members)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCollector]:
    directory = tmp_path_factory.mktemp("evidence")
    with live_collector(directory, f"sqlite:///{directory / 'collector.db'}") as live:
        yield live


@pytest.fixture(scope="module")
def pack(collector: LiveCollector) -> Pack:
    """One real pack with signed reports, made over HTTPS (in a fixture of its own, so that its response
    and connection are gone before the collector stops)."""
    populate(collector)
    response = collector.session(auditor_token(collector)).get(
        collector.url + "/api/v1/evidence", params={"with_reports": "true"}
    )
    assert response.status_code == 200, response.text
    return Pack(response.content, load_signing_key(collector.config))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("verify")


def zipped(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return buffer.getvalue()


def resigned(pack: Pack, members: dict[str, bytes], key: Any | None = None) -> dict[str, bytes]:
    """The members with a manifest that lists them as they are, signed with `key` (the collector's)."""

    payload = dict(pack.manifest["payload"])
    payload["files"] = [
        {**entry, "sha256": hashlib.sha256(members[entry["path"]]).hexdigest(), "bytes": len(members[entry["path"]])}
        for entry in payload["files"]
        if entry["path"] in members
    ]
    return {**members, MANIFEST: json.dumps(wire.sign_document(key or pack.key, payload)).encode()}


def check(
    data: bytes, workdir: Path, figures: Figures, expected_key: str | None = None, name: str = "pack.zip"
) -> verifier.Outcome:
    """Verify `data` in a directory of its own: the outcome, and nothing written anywhere near."""
    figures.add("inputs_tried")
    path = workdir / name
    path.write_bytes(data)
    before = sorted(p.name for p in workdir.parent.iterdir()), sorted(p.name for p in workdir.iterdir())
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        outcome = verifier.verify(path, expected_key)
    finally:
        os.chdir(cwd)
    assert (sorted(p.name for p in workdir.parent.iterdir()), sorted(p.name for p in workdir.iterdir())) == before
    assert all(isinstance(p, str) and p for p in outcome.problems)
    return outcome


def refused(outcome: verifier.Outcome, figures: Figures, *, mentioning: str | None = None) -> None:
    assert not outcome.ok, "a tampered pack verified"
    if mentioning is not None:
        assert any(mentioning in p for p in outcome.problems), (mentioning, outcome.problems)
    figures.add("refused")


def test_the_untampered_pack_verifies_in_process_and_as_a_command(pack: Pack, workdir: Path, figures: Figures) -> None:
    """The untampered pack verifies, with its collector key given, in-process and as the command."""
    outcome = check(pack.data, workdir, figures, pack.fingerprint)
    assert outcome.ok, outcome.problems
    assert outcome.files == len(pack.members) - 1 and outcome.reports == 3
    done = run_cli("rampart-collector", "evidence", "verify", str(workdir / "pack.zip"), "--key", pack.fingerprint,
                   env={"RAMPART_CONFIG": "/nonexistent/config.yaml"}, cwd=workdir)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # and rebuilt member by member and re-signed with the collector's key, it verifies too (the helpers are fair)
    again = zipped(list(resigned(pack, dict(pack.members)).items()))
    assert check(again, workdir, figures, pack.fingerprint).ok
    figures.set(passed=2)


@given(data=st.data())
def test_a_changed_byte_in_any_member_is_refused(
    pack: Pack, workdir: Path, data: st.DataObject, figures: Figures
) -> None:
    """Any byte of any member changed (the manifest too): refused, naming the member."""
    name = data.draw(st.sampled_from(pack.names()))
    content = bytearray(pack.members[name])
    position = data.draw(st.integers(0, max(len(content) - 1, 0)))
    flip = data.draw(st.integers(1, 255))
    if content:
        content[position] ^= flip
    else:
        content = bytearray(b"x")
    members = {**pack.members, name: bytes(content)}
    outcome = check(zipped(list(members.items())), workdir, figures, pack.fingerprint)
    refused(outcome, figures, mentioning=MANIFEST if name == MANIFEST else name)


@given(data=st.data())
def test_a_removed_or_added_member_is_refused(pack: Pack, workdir: Path, data: st.DataObject, figures: Figures) -> None:
    """A member removed, or one added under any name (../x, /etc/x, a listed name as a directory): refused."""
    members = dict(pack.members)
    if data.draw(st.booleans()):
        name = data.draw(st.sampled_from(pack.names()))
        del members[name]
        expected = MANIFEST if name == MANIFEST else f"{name}: removed"
    else:
        name = data.draw(
            st.sampled_from(TRAVERSAL_NAMES)
            | st.sampled_from(pack.names()).map(lambda n: n + "/")
            | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=30)
        )
        if name in members or name == MANIFEST + "/":
            name = "extra/" + name
        members[name] = data.draw(st.binary(max_size=200))
        expected = None
    outcome = check(zipped(list(members.items())), workdir, figures, pack.fingerprint)
    refused(outcome, figures, mentioning=expected)


# ids of their own: the names themselves would give two scenarios the same figures file
TRAVERSAL_IDS = [
    "parent",
    "parents-cron",
    "absolute",
    "absolute-listed",
    "inner-parents",
    "backslash",
    "drive",
    "drive-slash",
]


@pytest.mark.parametrize("name", TRAVERSAL_NAMES, ids=TRAVERSAL_IDS)
def test_a_traversal_name_is_refused_even_when_signed(pack: Pack, workdir: Path, name: str, figures: Figures) -> None:
    """A member named ../x or /etc/x, listed in a manifest signed with the collector's own key: refused,
    as no export writes such a name and unzipping it would write outside the auditor's directory."""
    members = {**pack.members, name: b"planted"}
    payload = dict(pack.manifest["payload"])

    payload["files"] = [*payload["files"], {"path": name, "sha256": hashlib.sha256(b"planted").hexdigest(), "bytes": 7}]
    members[MANIFEST] = json.dumps(wire.sign_document(pack.key, payload)).encode()
    outcome = check(zipped(list(members.items())), workdir, figures, pack.fingerprint)
    refused(outcome, figures, mentioning="not a name an evidence pack holds")
    done = run_cli("rampart-collector", "evidence", "verify", str(workdir / "pack.zip"),
                   env={"RAMPART_CONFIG": "/nonexistent/config.yaml"}, cwd=workdir)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-500:]
    assert not (workdir.parent / "x").exists() and not Path("/etc/x").exists()


@given(length=st.integers(0, 10**9), data=st.data())
def test_a_truncated_pack_is_refused(
    pack: Pack, workdir: Path, length: int, data: st.DataObject, figures: Figures
) -> None:
    """The pack cut short anywhere: refused as not a readable zip (or with what is missing)."""
    cut = length % len(pack.data)
    outcome = check(pack.data[:cut], workdir, figures, pack.fingerprint)
    refused(outcome, figures)


def same_members(pack: Pack, data: bytes) -> bool:
    """Whether `data` still reads as the pack's members, byte for byte (a change outside them is harmless)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            read = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    except Exception:  # noqa: BLE001 - any failure to read means it is not the same
        return False
    return read == pack.members


@given(data=st.data())
def test_damage_to_the_zip_itself_is_refused_or_harmless(
    pack: Pack, workdir: Path, data: st.DataObject, figures: Figures
) -> None:
    """Bytes of the zip file changed anywhere, most often in its central directory and end record (names,
    sizes, offsets, CRCs): refused with the verifier's own problems, or, if it still verifies, every member
    still reads back exactly as signed."""
    raw = bytearray(pack.data)
    directory_at = raw.rfind(b"PK\x01\x02", 0, len(raw))
    start = raw.find(b"PK\x01\x02")
    region = data.draw(st.sampled_from(["central directory", "end record", "anywhere"]))
    low, high = {"central directory": (start, directory_at), "end record": (len(raw) - 22, len(raw) - 1)}.get(
        region, (0, len(raw) - 1)
    )
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(max(low, 0), high))
        raw[position] = data.draw(st.integers(0, 255))
    outcome = check(bytes(raw), workdir, figures, pack.fingerprint)
    if outcome.ok:
        assert same_members(pack, bytes(raw)), "a damaged pack verified with different members"
        figures.add("harmless_changes")
    else:
        figures.add("refused")


@given(blob=st.binary(max_size=2000) | st.sampled_from([b"", b"PK\x05\x06" + b"\x00" * 18, b"%PDF-1.7\n"]))
def test_input_that_is_no_zip_is_refused(workdir: Path, blob: bytes, figures: Figures) -> None:
    """Bytes that are no zip (empty, a PDF, random, a bare end record): refused, not an exception."""
    outcome = check(blob, workdir, figures)
    refused(outcome, figures)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@given(data=st.data())
def test_an_edited_manifest_is_refused(pack: Pack, workdir: Path, data: st.DataObject, figures: Figures) -> None:
    """The manifest's payload edited (a hash, a size, a file, any field, any shape): refused by its
    signature; re-signed by a forger: refused by --key, and without --key never an exception."""
    payload = json.loads(json.dumps(pack.manifest["payload"]))
    edit = data.draw(st.sampled_from(["hash", "size", "drop file", "add file", "field", "files shape"]))
    files = payload["files"]
    if edit == "hash":
        entry = data.draw(st.sampled_from(files))
        old_hash = entry["sha256"]
        entry["sha256"] = data.draw(st.text("0123456789abcdef", min_size=64, max_size=64).filter(
            lambda h: h != old_hash))  # fmt: skip
    elif edit == "size":
        entry = data.draw(st.sampled_from(files))
        old_size = entry["bytes"]
        entry["bytes"] = data.draw(st.integers(-5, 10**12).filter(lambda b: b != old_size))
    elif edit == "drop file":
        files.pop(data.draw(st.integers(0, len(files) - 1)))
    elif edit == "add file":
        files.append({"path": data.draw(st.text(min_size=1, max_size=20)), "sha256": "0" * 64, "bytes": 1})
    elif edit == "field":
        payload[data.draw(st.sampled_from(sorted(payload)))] = data.draw(json_values)
    else:
        payload["files"] = data.draw(json_values)
    if payload == pack.manifest["payload"]:
        return
    tampered = {"payload": payload, "signature": pack.manifest["signature"]}
    members = {**pack.members, MANIFEST: json.dumps(tampered).encode()}
    refused(check(zipped(list(members.items())), workdir, figures), figures, mentioning=MANIFEST)
    forger = wire.generate_key()  # who names their own key in the payload, as a forger would
    if isinstance(payload.get("collector"), dict):
        payload["collector"] = {**payload["collector"], "public_key": wire.public_key_text(forger)}
    members[MANIFEST] = json.dumps(wire.sign_document(forger, payload)).encode()
    forged = zipped(list(members.items()))
    refused(check(forged, workdir, figures, pack.fingerprint), figures, mentioning=MANIFEST)
    # without --key a forger's pack whose files match verifies, as docs/evidence.md says: never an exception
    if check(forged, workdir, figures).ok:
        figures.add("forged_verified_without_key")
    else:
        figures.add("refused")


SIGNED = ("method", "path", "timestamp", "content_sha256", "signature")


def records(pack: Pack) -> list[dict[str, Any]]:
    return [json.loads(line) for line in pack.members[REPORTS].splitlines()]


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


@given(data=st.data())
def test_forged_or_swapped_agent_reports_are_refused_even_with_the_collector_key(
    pack: Pack, workdir: Path, data: st.DataObject, figures: Figures
) -> None:
    """An insider with the collector's key re-signs the manifest over an altered reports file or inventory:
    signatures swapped between reports, a body changed, a field of any shape, a line of anything, an agent's
    key replaced: refused by the agents' signatures, never an exception."""
    lines = records(pack)
    members = dict(pack.members)
    edit = data.draw(st.sampled_from(["swap signatures", "body", "field", "line", "agent key", "inventory"]))
    index = data.draw(st.integers(0, len(lines) - 1))
    if edit == "swap signatures":
        other = (index + data.draw(st.integers(1, len(lines) - 1))) % len(lines)
        lines[index]["signed"], lines[other]["signed"] = lines[other]["signed"], lines[index]["signed"]
    elif edit == "body":
        body = bytearray(base64.b64decode(lines[index]["body_base64"]))
        body[data.draw(st.integers(0, len(body) - 1))] ^= data.draw(st.integers(1, 255))
        lines[index]["body_base64"] = base64.b64encode(bytes(body)).decode()
    elif edit == "field":
        record = lines[index]
        # every field but received_at, the collector's own note, which only the manifest's signature covers
        field = data.draw(st.sampled_from(["report_id", "agent_id", "body_base64", *(f"signed.{k}" for k in SIGNED)]))
        target = record["signed"] if field.startswith("signed.") else record
        target[field.removeprefix("signed.")] = data.draw(json_values)
    elif edit == "line":
        members[REPORTS] = pack.members[REPORTS] + data.draw(st.binary(min_size=1, max_size=300)) + b"\n"
    if edit in ("swap signatures", "body", "field"):
        members[REPORTS] = jsonl(lines)
    if edit == "agent key":
        inventory = json.loads(pack.members["agents.json"])
        inventory["agents"][0]["public_key"] = wire.public_key_text(wire.generate_key())
        members["agents.json"] = json.dumps(inventory).encode()
    elif edit == "inventory":
        members["agents.json"] = json.dumps(data.draw(json_values)).encode()
    if members == pack.members:
        return
    outcome = check(zipped(list(resigned(pack, members).items())), workdir, figures, pack.fingerprint)
    refused(outcome, figures)


BOMB = 300 * 1024 * 1024  # 300 MB unpacked from about 300 kB packed


def with_bomb(members: dict[str, bytes], name: str, prefix: bytes, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """The members plus `name` unpacking to BOMB bytes (the prefix, then zeros), streamed into the zip so
    the test itself stays small."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            if member != name:
                archive.writestr(member, content)
        info = zipfile.ZipInfo(name)
        info.compress_type = compression
        with archive.open(info, "w", force_zip64=True) as stream:
            stream.write(prefix)
            chunk = b"\x00" * (1 << 20)
            for _ in range((BOMB - len(prefix)) // len(chunk)):
                stream.write(chunk)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "prefix", "resign", "compression"),
    [
        # a manifest that never ends
        pytest.param(MANIFEST, b'{"payload": "', False, zipfile.ZIP_DEFLATED, id="manifest"),
        # the inventory the verifier reads whole
        pytest.param("agents.json", b'{"agents": "', True, zipfile.ZIP_DEFLATED, id="agents.json"),
        # one line of reports that never ends
        pytest.param(REPORTS, b'{"report_id": "', True, zipfile.ZIP_DEFLATED, id="report-line"),
        # a listed member far larger than listed
        pytest.param("results.csv", b"", True, zipfile.ZIP_DEFLATED, id="listed-member"),
        pytest.param("extra/bomb.bin", b"", False, zipfile.ZIP_DEFLATED, id="added-member"),  # an added one
        # bzip2, which zipfile unpacks without bound
        pytest.param("results.csv", b"", True, zipfile.ZIP_BZIP2, id="bzip2-member"),
    ],
)
def test_a_zip_bomb_is_refused_in_bounded_memory(
    pack: Pack, workdir: Path, name: str, prefix: bytes, resign: bool, compression: int, figures: Figures
) -> None:
    """A member that unpacks to 300 MB from a few hundred kB, in each place the verifier reads: refused,
    with the verifier's memory bounded (by the longest line of signed reports it reads, 48 MB)."""
    merged = with_bomb(resigned(pack, dict(pack.members)) if resign else pack.members, name, prefix, compression)
    assert len(merged) < 5 * 1024 * 1024
    tracemalloc.start()
    try:
        outcome = check(merged, workdir, figures, pack.fingerprint)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    refused(outcome, figures, mentioning=name)
    figures.set(packed_bytes=len(merged), unpacked_bytes=BOMB, peak_memory_mb=round(peak / 2**20, 1))
    # the most it reads whole is a line of signed reports (48 MB); everything else in 1 MB chunks
    assert peak < verifier.MAX_REPORT_LINE_BYTES + 24 * 2**20, f"the verifier held {peak / 2**20:.0f} MB"


def test_the_command_refuses_hostile_packs_without_a_traceback(pack: Pack, workdir: Path, figures: Figures) -> None:
    """`evidence verify` as a process: no zip, a truncated pack, a bad CRC: exit 1, one line per problem."""
    crc = bytearray(pack.data)
    at = crc.rfind(b"PK\x01\x02")
    crc[at + 16] ^= 0xFF  # the last member's CRC-32 in the central directory
    cases: dict[str, bytes] = {
        "none.zip": b"not a zip",
        "cut.zip": pack.data[: len(pack.data) // 2],
        "crc.zip": bytes(crc),
    }
    for file_name, blob in cases.items():
        path = workdir / file_name
        path.write_bytes(blob)
        done = run_cli(
            "rampart-collector", "evidence", "verify", str(path), env={"RAMPART_CONFIG": "/nonexistent/config.yaml"}
        )
        figures.add("inputs_tried")
        assert done.returncode == 1, (file_name, done.stdout, done.stderr[-800:])
        assert "Traceback" not in done.stderr and done.stdout.strip(), (file_name, done.stderr[-800:])
        figures.add("refused")


@pytest.mark.parametrize(
    "change",
    ["body is a list", "body is no json", "no method", "infinite timestamp", "record is a list", "report id"],
)
def test_a_report_record_of_another_shape_is_a_problem_not_a_crash(
    pack: Pack, workdir: Path, change: str, figures: Figures
) -> None:
    """Records the verifier once raised on (AttributeError, ValueError, KeyError, OverflowError), under a
    manifest re-signed with the collector's key: each a problem on its line."""
    lines: list[Any] = records(pack)  # one edit makes a line a list
    record: Any = lines[0]
    if change == "body is a list":
        record["body_base64"] = base64.b64encode(b"[1]").decode()
    elif change == "body is no json":
        record["body_base64"] = base64.b64encode(b"\xff not json").decode()
    elif change == "no method":
        del record["signed"]["method"]
    elif change == "infinite timestamp":
        record["signed"]["timestamp"] = float("inf")
    elif change == "record is a list":
        lines[0] = [record]
    else:
        record["report_id"] = "another-report"
    members = {**pack.members, REPORTS: jsonl(lines)}
    outcome = check(zipped(list(resigned(pack, members).items())), workdir, figures, pack.fingerprint)
    refused(outcome, figures, mentioning=f"{REPORTS}:1")
