"""Secret-looking content never leaves the probe layer, whatever the policy asks and wherever it came from:
private keys and password hashes are replaced on the way in (before a probe splits text into lines) and on
the way out, and the result says that something was redacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from checks.policy.evaluate import REDACTED_FACT, collect
from checks.policy.model import ProbeRef
from checks.probes.local import LocalHost
from checks.probes.redact import HASH_MARKER, KEY_MARKER, PASSWORD_HASH, PRIVATE_KEY, redact_text
from checks.probes.replay import ReplayHost
from tests.conftest import run_cli

HOST = LocalHost()


def private_keys() -> dict[str, str]:
    """Private keys in every encoding a file on a server holds them."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    pem, raw = serialization.Encoding.PEM, serialization.NoEncryption()
    formats = serialization.PrivateFormat
    return {
        "rsa-traditional": rsa_key.private_bytes(pem, formats.TraditionalOpenSSL, raw).decode(),
        "rsa-pkcs8": rsa_key.private_bytes(pem, formats.PKCS8, raw).decode(),
        "ec": ec_key.private_bytes(pem, formats.TraditionalOpenSSL, raw).decode(),
        "ed25519-pkcs8": ed_key.private_bytes(pem, formats.PKCS8, raw).decode(),
        "openssh": ed_key.private_bytes(pem, formats.OpenSSH, raw).decode(),
        "encrypted": rsa_key.private_bytes(
            pem, formats.PKCS8, serialization.BestAvailableEncryption(b"passphrase")
        ).decode(),
    }


# Made with `openssl passwd` (-1, -5, -6, -apr1 with salt abcdefgh and password "secret"); the others are
# the examples their specifications publish (bcrypt: Provos and Mazieres via Wikipedia; argon2: the
# reference implementation's README; yescrypt: Debian's mkpasswd).
HASHES = [
    "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1",
    "$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.",
    "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.",
    "$6$rounds=656000$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.",
    "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/",
    "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
    "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
    "pbkdf2_sha256$260000$abcdefghijkl$QWxhZGRpbiBpcyBub3QgYSByZWFsIGhhc2ggYXQgYWxs",
    "{SSHA}WpyRmNKmXxUKFF4QsMQ4mxx4v8tnMjM3",
]

# Text with dollars and braces that is not a secret: it must come through unchanged.
ORDINARY = [
    "PS1='\\u@\\h:\\w\\$ '",
    "s/(a)(b)/$1$2/",
    "costs $5 a month, $6$ with VAT",
    "ExecStart=/usr/bin/env ${HOME}/bin/x {a}",
    "root:*:19000:0:99999:7:::",
    "alice:!:19000:0:99999:7:::",
    "bob::19000:0:99999:7:::",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5tY2m3mV2x3QZ4bR3u5mKZ5Xz8Yb0b9ZJx6c8i1Bq6 user@host",
    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
]


@pytest.mark.parametrize("name", list(private_keys()))
def test_private_keys_are_replaced_whole(name: str) -> None:
    key = private_keys()[name]
    text = f"before\n{key}after\n"
    redacted, kinds = redact_text(text)
    assert redacted == f"before\n{KEY_MARKER}\nafter\n" and kinds == {PRIVATE_KEY}
    cut_short, kinds = redact_text(key[: len(key) // 2])  # output capped in the middle of a key
    assert cut_short == KEY_MARKER and kinds == {PRIVATE_KEY}


@pytest.mark.parametrize("value", HASHES)
def test_password_hashes_are_replaced_in_place(value: str) -> None:
    line = f"svc:{value}:19000:0:99999:7:::"
    assert redact_text(line) == (f"svc:{HASH_MARKER}:19000:0:99999:7:::", frozenset({PASSWORD_HASH}))
    locked, _ = redact_text(f"svc:!{value}:19000::::::")
    assert locked == f"svc:!{HASH_MARKER}:19000::::::"  # a locked account still reads as locked


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == (text, frozenset())


def test_a_policy_cannot_pick_the_lines_of_a_key_out_of_a_file(tmp_path: Path) -> None:
    keys = private_keys()
    key_file = tmp_path / "server.key"
    key_file.write_text("# TLS key\n" + keys["rsa-traditional"] + keys["openssh"], encoding="utf-8")
    body = [line for line in keys["rsa-traditional"].splitlines() if not line.startswith("-----")]
    for pattern in (None, "^[A-Za-z0-9+/=]{20,}$", "PRIVATE", "."):
        params = {"path": str(key_file), **({"pattern": pattern} if pattern else {})}
        facts = collect(HOST, ProbeRef("file_content", params))
        shown = json.dumps(facts)
        assert not any(line in shown for line in body)
        assert "BEGIN" not in shown
        assert facts[REDACTED_FACT] == [PRIVATE_KEY]
    kv = collect(HOST, ProbeRef("key_value_file", {"path": str(key_file)}))
    assert not any(line in json.dumps(kv) for line in body) and kv[REDACTED_FACT] == [PRIVATE_KEY]


def test_shadow_style_files_keep_their_fields_but_lose_their_hashes(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text(f"root:{HASHES[2]}:19000:0:99999:7:::\nlocked:!{HASHES[7]}:19000::::::\nempty::19000::::::\n")
    facts = collect(HOST, ProbeRef("file_content", {"path": str(shadow)}))
    assert facts["lines"] == [
        f"root:{HASH_MARKER}:19000:0:99999:7:::",
        f"locked:!{HASH_MARKER}:19000::::::",
        "empty::19000::::::",
    ]
    empty = collect(HOST, ProbeRef("file_content", {"path": str(shadow), "pattern": "^[^:]*::"}))
    assert empty["lines"] == ["empty::19000::::::"]  # a check for empty passwords still works
    assert empty[REDACTED_FACT] == [PASSWORD_HASH]  # the file held hashes, even if the lines kept do not


def test_command_output_and_command_lines_are_redacted(tmp_path: Path) -> None:
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(private_keys()["openssh"], encoding="utf-8")
    facts = collect(HOST, ProbeRef("command", {"argv": ["cat", str(key_file)], "parse": "lines"}))
    assert facts["stdout"] == KEY_MARKER + "\n" and facts["lines"] == [KEY_MARKER]
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    (recorded / "host.json").write_text(
        json.dumps(
            {
                "platform": "linux",
                "source": "typed in: a process started with a hash on its command line",
                "processes": [
                    {"pid": 7, "name": "useradd", "user": "root", "cmdline": ["useradd", "-p", HASHES[2], "x"]}
                ],
            }
        )
    )
    found = collect(ReplayHost(recorded), ProbeRef("process", {"name": "useradd"}))
    assert found["processes"][0]["cmdline"] == f"useradd -p {HASH_MARKER} x"


def test_a_file_hash_is_of_the_bytes_not_of_redacted_text(tmp_path: Path) -> None:
    import hashlib

    key_file = tmp_path / "k.pem"
    key_file.write_bytes(private_keys()["ec"].encode() + b"\xff\xfe")
    facts = collect(HOST, ProbeRef("file", {"path": str(key_file), "hash": True}))
    assert facts["sha256"] == hashlib.sha256(key_file.read_bytes()).hexdigest()
    assert REDACTED_FACT not in facts


def test_local_check_redacts_too_and_says_so(tmp_path: Path) -> None:
    keys = private_keys()
    key_file = tmp_path / "agent.key"
    key_file.write_text(keys["ed25519-pkcs8"], encoding="utf-8")
    policy = tmp_path / "local.yaml"
    policy.write_text(
        f"""\
id: local
version: "1"
title: Local
checks:
  - id: key-lines
    title: The key file has lines
    description: d
    rationale: r
    remediation: r
    severity: low
    probe: {{name: file_content, params: {{path: {key_file}}}}}
    expect: {{fact: match_count, gt: 0}}
""",
        encoding="utf-8",
    )
    result = run_cli("rampart-agent", "check", "--policy", str(policy), "--format", "json")
    assert result.returncode == 0, result.stderr
    body = keys["ed25519-pkcs8"].splitlines()[1]
    assert body not in result.stdout
    (checked,) = json.loads(result.stdout)["results"]
    assert checked["status"] == "pass" and checked["observed"]["lines"] == [KEY_MARKER]
    assert checked["observed"][REDACTED_FACT] == [PRIVATE_KEY]
    assert "secret-looking content (private key) was redacted" in checked["reason"]
    table = run_cli("rampart-agent", "check", "--policy", str(policy))
    assert body not in table.stdout
