"""`rampart-collector cloud run` as a process against the fake tenant."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import trustme
import yaml

from tests.collector.cloud.conftest import SUB_A
from tests.conftest import BIN, run_cli
from tests.fakes.microsoft import CLIENT_SECRET, FakeMicrosoft, Fault


def write_config(fake: FakeMicrosoft, tmp_path: Path, **overrides: object) -> Path:
    values = fake.config(**overrides)
    secret = tmp_path / "cloud-secret"
    secret.write_text(str(values.pop("client_secret")) + "\n")
    values["client_secret_file"] = str(secret)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"cloud": values}))
    return path


def test_cloud_run_prints_a_table_and_exits_0(fake: FakeMicrosoft, tmp_path: Path) -> None:
    fake.scenario.faults = [Fault(f"/subscriptions/{SUB_A}/providers/Microsoft.KeyVault", 403, "AuthorizationFailed")]
    done = run_cli("rampart-collector", "--config", str(write_config(fake, tmp_path)), "cloud", "run", "--no-store")
    assert done.returncode == 0, done.stderr
    assert "Cloud checks for Contoso Borough Council" in done.stdout
    assert "mfa-coverage" in done.stdout and "stcouncildocs" in done.stdout
    assert "Reader role" in done.stdout  # the unreadable vaults are an error naming what to grant
    assert "15 pass, 0 fail, 1 error" in done.stdout
    assert CLIENT_SECRET not in done.stdout + done.stderr


def test_cloud_run_json(fake: FakeMicrosoft, tmp_path: Path) -> None:
    config = write_config(fake, tmp_path)
    done = run_cli("rampart-collector", "--config", str(config), "cloud", "run", "--no-store", "--format", "json")
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert output["tenant"] == {"kind": "tenant", "id": fake.scenario.tenant_id, "name": "Contoso Borough Council"}
    assert output["counts"]["pass"] == 16 and output["sign_in_error"] is None
    kinds = {r["check_id"]: r["subject"]["kind"] for r in output["results"]}
    assert kinds["mfa-coverage"] == "tenant" and kinds["storage-https-only"] == "cloud_resource"


def test_a_refused_sign_in_exits_1_without_showing_the_secret(fake: FakeMicrosoft, tmp_path: Path) -> None:
    config = write_config(fake, tmp_path, client_secret="not-the-secret-xyz")
    done = run_cli("rampart-collector", "--config", str(config), "cloud", "run", "--no-store")
    assert done.returncode == 1
    assert "AADSTS7000215" in done.stderr
    assert "not-the-secret-xyz" not in done.stdout + done.stderr


def test_bad_configuration_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("cloud:\n  tenant_id: t\n  client_id: c\n")
    done = run_cli("rampart-collector", "--config", str(config), "cloud", "run")
    assert done.returncode == 2
    assert "exactly one credential" in done.stderr


def test_help_explains_the_command() -> None:
    done = run_cli("rampart-collector", "cloud", "run", "--help")
    assert done.returncode == 0 and "Exit codes" in done.stdout and "--format" in done.stdout


def test_a_refused_sign_in_is_said_once_with_what_to_fix(fake: FakeMicrosoft, tmp_path: Path) -> None:
    config = write_config(fake, tmp_path, client_secret="not-the-secret-xyz")
    done = run_cli("rampart-collector", "--config", str(config), "cloud", "run", "--no-store")
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert output.count("Invalid client secret provided") == 1, output  # not once per check (16)
    assert output.count("cloud.client_secret (or client_secret_file): it must be the secret's Value, not") == 1
    assert "the app could not sign in (AADSTS7000215)" in done.stderr
    assert done.stdout.count("not observed: sign-in failed (see Run failed below)") == 16
    assert "16 error" in done.stdout


def test_an_untrusted_certificate_is_one_line_naming_ca_bundle(fake: FakeMicrosoft, tmp_path: Path) -> None:
    """An inspecting proxy: the fake's certificate is from a CA that cloud.ca_bundle does not name."""
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    config = write_config(fake, tmp_path, ca_bundle=str(other_ca))
    done = run_cli("rampart-collector", "--config", str(config), "cloud", "run", "--no-store")
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "Max retries exceeded" not in output and "SSLCertVerificationError" not in output
    (line,) = [line for line in output.splitlines() if "not trusted" in line]
    verify = "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate"
    assert f"https://127.0.0.1:{fake.port} was not trusted ({verify})" in line
    assert "set cloud.ca_bundle" in line and str(other_ca) in line


def test_a_retry_after_wait_is_announced_with_its_length(fake: FakeMicrosoft, tmp_path: Path) -> None:
    fake.scenario.faults = [
        Fault("/v1.0/reports/authenticationMethods", 429, "TooManyRequests", "Too many requests.", "1", times=1)
    ]
    config = write_config(fake, tmp_path)
    command = [str(BIN / "rampart-collector"), "--config", str(config), "cloud", "run", "--no-store"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    with subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stderr is not None
        first = process.stderr.readline()  # said before the wait starts: the event, not a sleep
        out, rest = process.communicate(timeout=60)
    assert "HTTP 429; waiting 1s as its Retry-After asks (retry 1 of 3), until " in first, first + rest
    assert first.startswith("rampart-collector: Graph /graph/v1.0/reports/authenticationMethods/")
    assert process.returncode == 0 and "16 pass" in out
