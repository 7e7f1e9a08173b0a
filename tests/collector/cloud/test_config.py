"""The `cloud:` config section: documented defaults, secrets from files and environment, clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from checks.config import ConfigError
from collector.cloud.config import CloudConfig, defaults, load_cloud_config

ROOT = Path(__file__).resolve().parents[3]


def test_config_example_documents_every_cloud_key_with_its_default() -> None:
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text())["cloud"]
    assert example == defaults()


def test_secret_from_a_file_and_never_in_repr(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    secret = write("secret", "s3cr3t-from-file\n")
    config_path = write(
        "config.yaml",
        f"""
        cloud:
          tenant_id: t-1
          client_id: c-1
          client_secret_file: {secret}
        """,
    )
    config = load_cloud_config(str(config_path), environ={})
    assert config.client_secret == "s3cr3t-from-file"
    assert "s3cr3t" not in repr(config)
    config.validate()


def test_environment_overrides_the_file(write: Callable[[str, str], Path]) -> None:
    config_path = write("config.yaml", "cloud:\n  tenant_id: from-file\n  subscriptions: [a]\n")
    environ = {
        "RAMPART_CLOUD__TENANT_ID": "from-env",
        "RAMPART_CLOUD__CLIENT_SECRET": "env-secret",
        "RAMPART_CLOUD__SUBSCRIPTIONS": "s1, s2",
        "RAMPART_CLOUD__RETRY_BUDGET_S": "12.5",
    }
    config = load_cloud_config(str(config_path), environ=environ)
    assert (config.tenant_id, config.client_secret, config.subscriptions) == ("from-env", "env-secret", ["s1", "s2"])
    assert config.retry_budget_s == 12.5


def test_unknown_key_is_reported_with_file_and_line(write: Callable[[str, str], Path]) -> None:
    config_path = write("config.yaml", "cloud:\n  tenant_id: t\n  client_secert: x\n")
    with pytest.raises(
        ConfigError, match=r"config.yaml:3: unknown key cloud.client_secert; did you mean 'client_secret'"
    ):
        load_cloud_config(str(config_path), environ={})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tenant_id": ""}, "cloud.tenant_id is not set"),
        ({"client_id": ""}, "cloud.client_id is not set"),
        ({"client_secret": ""}, "exactly one credential"),
        ({"certificate_path": "/x.pem"}, "exactly one credential"),
        ({"cloud": "mars"}, "cloud.cloud must be one of public, usgov, usgov_dod, china"),
        ({"graph_url": "http://graph.local"}, "cloud.graph_url must be an https:// URL"),
        ({"interval": "soon"}, "cloud.interval"),
    ],
)
def test_invalid_settings_are_named(overrides: dict[str, str], message: str) -> None:
    values = {"tenant_id": "t", "client_id": "c", "client_secret": "s", **overrides}
    with pytest.raises(ConfigError, match=message):
        CloudConfig(**values).validate()  # type: ignore[arg-type]
