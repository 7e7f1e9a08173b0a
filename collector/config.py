"""The `collector:` section of the config file (documented key by key in config.example.yaml).

Paths left empty are derived from `data_dir`, so a fresh `rampart-collector init` needs no config at all.
Numbers with a range (`bounded`) are refused outside it with the file and line: a port, a count of workers,
a number of hours.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from checks.config import ENV_PREFIX, ConfigError, bounded, find_config_path, load_section, read_config
from checks.logformat import LOG_FORMATS
from collector.dashboard.config import DashboardConfig


@dataclass
class RagThresholds:
    """When an area of the briefing is red, amber or green (docs/briefing.md explains each rule)."""

    # Share of an area's judged results (pass / (pass + fail)) at or above which it is green, and at or
    # above which it is amber; below that it is red.
    green_at_percent: float = bounded(95.0, 0, 100)
    amber_at_percent: float = bounded(85.0, 0, 100)
    # A failing check of critical severity (e.g. an administrator without MFA) makes its area red.
    critical_failure_is_red: bool = True
    # More than this share of an area's results in error (the check could not tell): at best amber.
    error_amber_percent: float = bounded(5.0, 0, 100)
    # Devices: the share of enrolled hosts that reported within stale_after_hours.
    devices_green_at_percent: float = bounded(95.0, 0, 100)
    devices_amber_at_percent: float = bounded(85.0, 0, 100)
    # Accepted risks: the share of all results that are waived above which the area is amber, and red.
    waived_amber_percent: float = bounded(2.0, 0, 100)
    waived_red_percent: float = bounded(10.0, 0, 100)
    # Accepted risks: amber when a waiver in force expires within the next period (renew it or fix it).
    expiring_is_amber: bool = True


@dataclass
class BriefingConfig:
    # The month the financial year starts (a name or 1-12); quarters count from it (UK councils: April).
    year_starts: str = "april"
    # How many of the most failing checks the briefing lists.
    top_failing: int = bounded(10, 1)
    # The areas and framework names (YAML); empty: the shipped policies/mappings/areas.yaml.
    areas_file: str = ""
    rag: RagThresholds = field(default_factory=RagThresholds)


@dataclass
class CollectorConfig:
    # Where the collector keeps its SQLite database, signing key and TLS files.
    data_dir: str = "rampart-data"
    # SQLAlchemy URL; empty means SQLite at <data_dir>/collector.db. PostgreSQL: postgresql://user@host/db
    database_url: str = ""
    # Connections each collector process keeps to the database (PostgreSQL; SQLite uses one per thread).
    db_pool_size: int = bounded(8, 1)
    listen_host: str = "127.0.0.1"
    listen_port: int = bounded(8443, 1, 65535)
    # Plain HTTP is only for running behind a TLS-terminating proxy.
    tls: bool = True
    # Certificate files; empty means the ones `init` created under <data_dir>/tls.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    # Extra names and addresses for the server certificate `init` creates (localhost and this host's
    # name are always included).
    tls_hostnames: list[str] = field(default_factory=list)
    # The collector's Ed25519 key (signs policy bundles and evidence); empty means <data_dir>/signing-key.pem.
    signing_key_file: str = ""
    # uvicorn worker processes for `serve`.
    workers: int = bounded(1, 1, 256)
    # Largest request body accepted (413 above it).
    max_body_bytes: int = bounded(4 * 1024 * 1024, 1)
    # Seconds a connection may stay open with no request in progress (since it was opened, or since its
    # last response).
    idle_timeout_s: int = bounded(5, 1)
    # Seconds from a request's first byte to the end of its headers (408 after), and their largest size
    # (431 above it).
    header_timeout_s: int = bounded(10, 1)
    max_header_bytes: int = bounded(32 * 1024, 1)
    # Seconds to receive a request's body (408 after).
    body_timeout_s: int = bounded(60, 1)
    # Connections and requests each process serves at once; beyond it, requests get 503.
    max_connections: int = bounded(1000, 1)
    # Largest difference between an agent's timestamp and the collector's clock.
    max_clock_skew_s: int = bounded(300, 1)
    # Reports stored at once by each process; more wait, up to max_pending_ingest, then 503.
    max_concurrent_ingest: int = bounded(4, 1)
    max_pending_ingest: int = bounded(64, 0)
    # Reports of one agent admitted at once by each process (after their body is read and verified).
    max_pending_ingest_per_agent: int = bounded(2, 1)
    # Seconds an agent is told to wait (Retry-After) when the collector is overloaded.
    retry_after_s: int = bounded(5, 0)
    # Enrolment attempts each client address may make per minute (each process); 429 beyond.
    enroll_attempts_per_minute: int = bounded(60, 1)
    # API calls with an unknown, revoked or expired token each client address may make per minute (each
    # process); beyond it, every API call from that address gets 429 until the minute has passed.
    api_auth_failures_per_minute: int = bounded(30, 1)
    # Proxies (addresses or networks) whose X-Forwarded-For header names the client; empty: none is
    # believed, the client is the connection's peer.
    trusted_proxies: list[str] = field(default_factory=list)
    # Operating-system logins that may act as other collector users on the command line (`--as USER`):
    # {login: [user, ...]}. A login may always act as the user of its own name.
    cli_users: dict[str, list[str]] = field(default_factory=dict)
    # Group given to agents enrolled with a token that names none, and whose policies apply by default.
    default_group: str = "default"
    # A host that has not been heard from for this long is flagged stale.
    stale_after_hours: int = bounded(48, 1)
    # A result judged against a policy version that a newer one replaced still counts when it was
    # evaluated less than this long after the replacement (agents pick up a new version at check-in).
    policy_change_grace_hours: int = bounded(24, 0)
    # History (status intervals, daily changes) and raw reports older than this are deleted.
    retention_days: int = bounded(400, 1)
    # How often the retention job runs (once across all collector processes).
    retention_interval_s: int = bounded(3600, 1)
    # How often each process looks for scheduled jobs that are due.
    job_poll_s: int = bounded(30, 1)
    # debug, info, warning or error; logs go to standard error.
    log_level: str = "info"
    # json (one object a line, for a log system) or text; every line has a UTC timestamp. `serve
    # --log-format` overrides it.
    log_format: str = "json"
    # The web dashboard at / (collector/dashboard, docs/dashboard.md).
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    # The audit-committee briefing (docs/briefing.md).
    briefing: BriefingConfig = field(default_factory=BriefingConfig)

    def data_path(self) -> Path:
        return Path(self.data_dir)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_path() / 'collector.db').absolute()}"

    def signing_key_path(self) -> Path:
        return Path(self.signing_key_file) if self.signing_key_file else self.data_path() / "signing-key.pem"

    def tls_paths(self) -> tuple[Path, Path, Path]:
        """(server certificate, server key, CA certificate the agents pin)."""
        tls_dir = self.data_path() / "tls"
        return (
            Path(self.tls_cert_file) if self.tls_cert_file else tls_dir / "server.pem",
            Path(self.tls_key_file) if self.tls_key_file else tls_dir / "server-key.pem",
            Path(self.tls_ca_file) if self.tls_ca_file else tls_dir / "ca.pem",
        )


def load_collector_config(path: str | None = None, environ: Mapping[str, str] | None = None) -> CollectorConfig:
    """The collector section from --config PATH, $RAMPART_CONFIG or /etc/rampart/config.yaml, then env."""
    environ = os.environ if environ is None else environ
    found = find_config_path(path)
    config = load_section(CollectorConfig, "collector", found, environ)
    if config.log_format not in LOG_FORMATS:
        keys = ("collector", "log_format")
        env_name = ENV_PREFIX + "__".join(k.upper() for k in keys)
        where = f"environment variable {env_name}" if env_name in environ else read_config(found)[1].where(keys)
        raise ConfigError(f"{where}: collector.log_format: must be one of {', '.join(LOG_FORMATS)}")
    return config
