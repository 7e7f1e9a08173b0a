"""The collector's config section: config.example.yaml documents every key with its default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from checks.config import ConfigError
from collector.config import CollectorConfig, load_collector_config

EXAMPLE = Path(__file__).parents[2] / "config.example.yaml"


def test_the_example_lists_every_key_with_its_default() -> None:
    documented = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["collector"]
    defaults = dataclasses.asdict(CollectorConfig())
    assert documented == defaults


def test_the_example_loads_as_a_config() -> None:
    assert load_collector_config(str(EXAMPLE), environ={}) == CollectorConfig()


def test_environment_overrides_and_paths_derived_from_the_data_dir(tmp_path: Path) -> None:
    config = load_collector_config(
        None, environ={"RAMPART_COLLECTOR__DATA_DIR": str(tmp_path), "RAMPART_COLLECTOR__LISTEN_PORT": "9443"}
    )
    assert config.listen_port == 9443
    assert config.resolved_database_url() == f"sqlite:///{tmp_path / 'collector.db'}"
    assert config.signing_key_path() == tmp_path / "signing-key.pem"
    assert config.tls_paths()[2] == tmp_path / "tls" / "ca.pem"


def test_unknown_keys_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("collector:\n  data_dir: x\n  listen_prot: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.yaml:3: unknown key collector\.listen_prot; did you mean 'listen_port'"):
        load_collector_config(str(path), environ={})


def test_database_url_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "db-url"
    secret.write_text("postgresql://rampart:s3cret@db/rampart\n", encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(f"collector:\n  database_url_file: {secret}\n", encoding="utf-8")
    assert load_collector_config(str(path), environ={}).database_url == "postgresql://rampart:s3cret@db/rampart"
