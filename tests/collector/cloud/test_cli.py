"""`rampart-collector cloud run` as a process against the fake tenant."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.collector.cloud.conftest import SUB_A
from tests.conftest import run_cli
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
