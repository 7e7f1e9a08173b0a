"""The `agent:` section of the config file.

Every key is documented with its default in config.example.yaml (a test keeps the two in step). Durations
are written like policy intervals (`30s`, `15m`, `6h`, `1d`) or as a plain number of seconds; they are
checked when the config is loaded, so a typo is reported with its file and line before anything runs.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from checks.config import ENV_PREFIX, ConfigError, bounded, find_config_path, load_section, read_config
from checks.durations import parse_seconds as parse_seconds  # the one parser (checks/durations.py)
from checks.logformat import LOG_FORMATS

# Files whose content policies from the collector may read (file_content, key_value_file, file with hash):
# configuration that posture checks judge, nothing that holds secrets. Globs: `*` within one path
# component, `**` across components. Only the local config can change this (docs/security.md).
DEFAULT_PUSHED_READ_PATHS = (
    "/etc/passwd",
    "/etc/group",
    "/etc/login.defs",
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/issue",
    "/etc/issue.net",
    "/etc/motd",
    "/etc/hosts",
    "/etc/hosts.allow",
    "/etc/hosts.deny",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/fstab",
    "/etc/securetty",
    "/etc/shells",
    "/etc/sudoers",
    "/etc/sudoers.d/**",
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d/**",
    "/etc/ssh/ssh_config",
    "/etc/ssh/ssh_config.d/**",
    "/etc/pam.d/**",
    "/etc/security/**",
    "/etc/sysctl.conf",
    "/etc/sysctl.d/**",
    "/etc/modprobe.d/**",
    "/etc/audit/**",
    "/etc/default/**",
    "/etc/apt/**",
    "/etc/yum.conf",
    "/etc/yum.repos.d/**",
    "/etc/dnf/**",
    "/etc/selinux/config",
    "/etc/systemd/**",
    "/etc/crontab",
    "/etc/cron.allow",
    "/etc/cron.deny",
    "/etc/cron.d/**",
    "/etc/at.allow",
    "/etc/at.deny",
    "/etc/rsyslog.conf",
    "/etc/rsyslog.d/**",
    "/etc/logrotate.conf",
    "/etc/logrotate.d/**",
    "/etc/chrony.conf",
    "/etc/chrony/chrony.conf",
    "/etc/ntp.conf",
    "/etc/ufw/**",
    "/etc/firewalld/**",
    "/etc/nftables.conf",
    "/etc/profile",
    "/etc/profile.d/**",
    "/etc/bash.bashrc",
    "/etc/bashrc",
    "/etc/gdm3/**",
    "/etc/dconf/db/**",
    "/etc/aide.conf",
    "/etc/aide/**",
    "/etc/exports",
    "/proc/cmdline",
    "/proc/mounts",
    "C:/Windows/System32/drivers/etc/**",
    "C:/ProgramData/ssh/sshd_config",
)
# Never read for a policy from the collector even where pushed_read_paths would allow it: password hashes,
# key material and stored credentials. The agent's own state directory is never readable, whatever this says.
DEFAULT_PUSHED_READ_EXCLUDE = (
    "/etc/shadow*",
    "/etc/gshadow*",
    "/etc/security/opasswd*",
    "/etc/ssh/ssh_host_*_key",
    "/etc/ssl/private/**",
    "/etc/pki/**/private/**",
    "/etc/apt/auth.conf",
    "/etc/apt/auth.conf.d/**",
    "/etc/rampart/**",
    "**/*.key",
    "**/*_key",
    "**/*.keys",
    "**/*.keytab",
    "**/private/**",
    "**/*secret*",
    "**/*secret*/**",
    "**/*credentials*",
    "**/*credentials*/**",
    "C:/ProgramData/ssh/ssh_host_*_key",
)


@dataclass
class AgentConfig:
    # Where the agent keeps its key, enrolment, cached policy and spool. Owner-only (0700).
    state_dir: str = "/var/lib/rampart-agent"
    # The collector's base URL; empty means the URL given at enrolment.
    collector_url: str = ""
    # CA certificate (PEM) that signs the collector's TLS certificate. Empty means the CA given at
    # enrolment (stored in the state directory), else the system's trust store. Never taken from
    # REQUESTS_CA_BUNDLE or similar environment variables.
    ca_cert: str = ""
    # Let policies pushed by the collector use the `command` probe (runs programs on this machine).
    allow_command_probe: bool = False
    # Files whose content policies pushed by the collector may read, and exceptions to that (globs).
    pushed_read_paths: list[str] = field(default_factory=lambda: list(DEFAULT_PUSHED_READ_PATHS))
    pushed_read_exclude: list[str] = field(default_factory=lambda: list(DEFAULT_PUSHED_READ_EXCLUDE))
    # Let policies pushed by the collector see and match other processes' command lines.
    pushed_process_cmdlines: bool = False
    # Per-check interval overrides: {check id: duration}; a check not named runs on its policy's interval.
    check_intervals: dict[str, str] = field(default_factory=dict)
    # Floor for any interval, so a policy cannot make the agent run checks back to back.
    min_interval: str = "5m"
    # The first run after start waits a random delay up to this (and never more than the interval), so a
    # fleet that boots together does not report together.
    splay: str = "10m"
    # Each later run is delayed by a random amount up to this.
    jitter: str = "5m"
    # How often the agent checks in (host facts for the inventory, policy changes, pending deliveries).
    checkin_interval: str = "1h"
    # A worker (one run of checks, a check-in or a delivery) taking longer than this is stopped.
    run_timeout: str = "15m"
    # Size bound of the local spool (the JSON of undelivered reports). When full, the oldest reports go
    # first and the number of results dropped is reported to the collector.
    spool_max_mb: float = bounded(64.0, 0.01, 1024 * 1024)
    # A run's results are split into reports of at most this many results and this many kilobytes.
    report_max_results: int = bounded(200, 1, 100_000)
    report_max_kb: int = bounded(512, 1, 64 * 1024)
    # HTTP timeouts.
    connect_timeout: str = "10s"
    read_timeout: str = "60s"
    # Attempts per request within one worker before the delivery is left for later.
    request_attempts: int = bounded(4, 1, 100)
    # Exponential backoff between attempts (and between failed deliveries), with jitter, up to a cap.
    backoff_initial: str = "2s"
    backoff_max: str = "15m"
    # Longest `Retry-After` honoured; a longer one is cut to this.
    retry_after_max: str = "1h"
    # A backlog drains at most this many reports per second.
    drain_rate: float = bounded(2.0, 0.01, 10_000)
    # Longest one worker spends delivering; the rest waits for the next attempt.
    delivery_budget: str = "10m"
    # debug, info, warning or error.
    log_level: str = "info"
    # text or json (one object a line, as the collector writes), for the daemon and its workers alike;
    # every line has a UTC timestamp. `rampart-agent run --log-format` overrides it.
    log_format: str = "text"

    # --- derived values (validated by load_agent_config) ---

    def seconds(self, name: str) -> float:
        return parse_seconds(getattr(self, name))

    def interval_override_s(self, check_id: str) -> float | None:
        value = self.check_intervals.get(check_id)
        return None if value is None else parse_seconds(str(value))

    @property
    def spool_max_bytes(self) -> int:
        return int(self.spool_max_mb * 1024 * 1024)

    @property
    def report_max_bytes(self) -> int:
        return self.report_max_kb * 1024


DURATION_KEYS = (
    "min_interval",
    "splay",
    "jitter",
    "checkin_interval",
    "run_timeout",
    "connect_timeout",
    "read_timeout",
    "backoff_initial",
    "backoff_max",
    "retry_after_max",
    "delivery_budget",
)
LOG_LEVELS = ("debug", "info", "warning", "error")


def _where(path: str | None, keys: tuple[str | int, ...], environ: Mapping[str, str]) -> str:
    env_name = ENV_PREFIX + "__".join(str(k).upper() for k in keys)
    if env_name in environ:
        return f"environment variable {env_name}"
    _, source = read_config(path)
    return source.where(keys)


def load_agent_config(config_path: str | None = None, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """The agent section from the file (--config, $RAMPART_CONFIG, /etc/rampart/config.yaml) and environment."""
    environ = os.environ if environ is None else environ
    path = find_config_path(config_path)
    config = load_section(AgentConfig, "agent", path, environ)

    def fail(keys: tuple[str | int, ...], message: str) -> ConfigError:
        return ConfigError(f"{_where(path, keys, environ)}: {'.'.join(map(str, keys))}: {message}")

    for key in DURATION_KEYS:
        try:
            value = config.seconds(key)
        except ValueError as exc:
            raise fail(("agent", key), str(exc)) from None
        if value <= 0 and key not in ("splay", "jitter"):
            raise fail(("agent", key), "must be more than zero")
    for check_id, text in config.check_intervals.items():
        try:
            parse_seconds(str(text))
        except ValueError as exc:
            raise fail(("agent", "check_intervals", check_id), str(exc)) from None
    # The numbers' ranges (spool_max_mb, report_max_*, request_attempts, drain_rate) are their fields'
    # bounded(): load_section refuses what is outside with the file and line, or the environment variable.
    if config.spool_max_bytes < config.report_max_bytes:
        raise fail(("agent", "spool_max_mb"), "the spool must hold at least one report (report_max_kb)")
    if config.log_level.lower() not in LOG_LEVELS:
        raise fail(("agent", "log_level"), f"must be one of {', '.join(LOG_LEVELS)}")
    if config.log_format not in LOG_FORMATS:
        raise fail(("agent", "log_format"), f"must be one of {', '.join(LOG_FORMATS)}")
    if not config.state_dir:
        raise fail(("agent", "state_dir"), "must not be empty")
    for key in ("pushed_read_paths", "pushed_read_exclude"):
        for index, pattern in enumerate(getattr(config, key)):
            if not re.match(r"^(/|\*\*/|[A-Za-z]:[\\/])", pattern) or "\x00" in pattern:
                raise fail(("agent", key, index), f"{pattern!r} is not an absolute path or glob (/..., **/..., C:/...)")
    if config.collector_url and not config.collector_url.startswith("https://"):
        raise fail(("agent", "collector_url"), "must be an https:// URL")
    return config


def defaults() -> dict[str, object]:
    """Every key with its default, as config.example.yaml documents it."""
    return dataclasses.asdict(AgentConfig())
