"""The agent's Debian package, built as `make package` builds it, installed on a booted Debian 12.

systemd runs as PID 1 in the container (tests/packaging/container.py), so the package's maintainer scripts,
its units and their restrictions are the real ones: what passes here is what a host gets. The probes are
run under the shipped unit's own [Service] settings, applied by systemd, and compared with what
unrestricted root sees; the firewall probe reads a ruleset loaded in a network namespace of the test's own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.e2e import new_token, stored_reports
from tests.packaging.container import Machine, booted, debian_root, lintian_layer, missing_prerequisites, overlay, spawn
from tests.support.collector import RunningCollector, collector_process

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "agent" / "deploy" / "rampart-agent.service"
DEB_INSIDE = "/var/tmp/rampart-agent.deb"
# CAP_DAC_READ_SEARCH is capability 2, CAP_NET_ADMIN 12 (linux/capability.h).
AGENT_CAPABILITIES = (1 << 2) | (1 << 12)
RULESET = """
table inet filter {
    chain input {
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        iif lo accept
    }
}
"""

pytestmark = [
    pytest.mark.slow,
    # The first run debootstraps the cached Debian (a few minutes); later ones take about as long as the build.
    pytest.mark.timeout(1800),
    pytest.mark.skipif(missing_prerequisites() is not None, reason=str(missing_prerequisites())),
]


@pytest.fixture(scope="module")
def deb(built_distributions: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    (wheel,) = built_distributions.glob("rampart-*.whl")
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build_deb.py"), "deb", str(wheel), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


@pytest.fixture(scope="module")
def debian() -> Path:
    return debian_root()


@pytest.fixture(scope="module")
def machine(debian: Path, deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    """A booted Debian 12 with the package installed by dpkg, as an administrator installs it."""
    with booted(debian, tmp_path_factory.mktemp("machine")) as machine:
        machine.path(DEB_INSIDE).write_bytes(deb.read_bytes())
        machine.run("dpkg", "-i", DEB_INSIDE)
        yield machine


def confined_run(machine: Machine, name: str, unit_text: str, command: str, *extra: str) -> str:
    """Run `command` once under `unit_text`'s [Service] settings, applied by the container's systemd.

    The unit is the shipped one with only these changes: a oneshot, no restarts, no condition, the given
    command, standard output to a file, and `extra` lines. Returns what the command printed.
    """
    # Its own runtime directory, so that its end does not empty the daemon's.
    unit_text = re.sub(
        r"^(RuntimeDirectory=|Environment=TMPDIR=/run/)rampart-agent$", rf"\g<1>{name}", unit_text, flags=re.M
    )
    lines = []
    for line in unit_text.splitlines():
        if line.startswith(("ExecStart=", "Type=", "Restart", "Condition")):
            continue
        lines.append(line)
        if line == "[Service]":
            lines += ["Type=oneshot", f"ExecStart={command}", f"StandardOutput=truncate:/var/tmp/{name}.out", *extra]
    machine.path(f"/etc/systemd/system/{name}.service").write_text("\n".join(lines) + "\n")
    machine.run("systemctl", "daemon-reload")
    started = machine.run("systemctl", "start", f"{name}.service", check=False)
    assert started.returncode == 0, f"{started.stderr}\n{machine.journal(f'{name}.service')}"
    return machine.path(f"/var/tmp/{name}.out").read_text()


def statuses(check_output: str) -> dict[str, tuple[str, str]]:
    report = json.loads(check_output)
    return {r["check_id"]: (r["status"], r.get("reason") or "") for r in report["results"]}


def with_grants(unit_text: str, capabilities: str, families: str) -> str:
    text = re.sub(r"^AmbientCapabilities=.*$", f"AmbientCapabilities={capabilities}", unit_text, flags=re.M)
    text = re.sub(r"^CapabilityBoundingSet=.*$", f"CapabilityBoundingSet={capabilities}", text, flags=re.M)
    return re.sub(r"^RestrictAddressFamilies=.*$", f"RestrictAddressFamilies={families}", text, flags=re.M)


def test_install_makes_the_user_and_state_directory_and_waits_for_enrolment(machine: Machine) -> None:
    user = machine.run("getent", "passwd", "rampart").stdout.strip().split(":")
    assert user[5] == "/nonexistent" and user[6] == "/usr/sbin/nologin" and int(user[2]) < 1000
    assert machine.run("stat", "-c", "%U:%G %a", "/var/lib/rampart-agent").stdout.strip() == "rampart:rampart 700"
    assert machine.run("systemctl", "is-enabled", "rampart-agent.service").stdout.strip() == "enabled"
    assert machine.run("systemctl", "is-enabled", "rampart-agent.timer", check=False).stdout.strip() == "disabled"
    # Started at install, and skipped, not failed: there is nothing to run before enrolment.
    shown = machine.run("systemctl", "show", "rampart-agent", "-p", "ActiveState", "-p", "ConditionResult").stdout
    assert "ActiveState=inactive" in shown and "ConditionResult=no" in shown

    assert (
        machine.run("dpkg-query", "-W", "-f", "${Conffiles}", "rampart-agent").stdout.split()[0]
        == "/etc/rampart/config.yaml"
    )
    assert machine.run("dpkg", "--verify", "rampart-agent").stdout == ""  # every file as shipped
    version = machine.run("rampart-agent", "--version").stdout.strip()
    assert re.fullmatch(r"rampart-agent \d+\.\d+\.\d+\S*", version)
    as_nobody = machine.run(
        "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "rampart-agent", "--version"
    )
    assert as_nobody.stdout.strip() == version
    site = machine.run("sh", "-c", "ls -d /opt/rampart-agent/lib/python3.11/site-packages").stdout.strip()
    packages = machine.run("ls", site).stdout.split()
    assert "agent" in packages and "checks" in packages and "collector" not in packages
    for server_only in ("fastapi", "uvicorn", "sqlalchemy", "alembic", "psycopg", "msal", "jinja2"):
        assert not [p for p in packages if p.lower().startswith(server_only)], server_only
    assert not machine.path("/opt/rampart-agent/bin/pip").exists()
    # Bytecode for every module ships, so nothing is compiled at run time (the unit makes /opt read-only).
    missing = machine.run(
        "/opt/rampart-agent/bin/python", "-c",
        "import pathlib, importlib.util as u, sys; "
        f"print([str(p) for p in pathlib.Path('{site}').rglob('*.py') "
        "if not pathlib.Path(u.cache_from_source(str(p))).exists()][:5])",
    ).stdout.strip()  # fmt: skip
    assert missing == "[]"


def test_every_probe_sees_under_the_unit_what_root_sees(machine: Machine) -> None:
    # No binary package cache, as after an index refresh: apt-cache must read the signed lists, which it
    # does through a temporary file.
    machine.run("sh", "-c", "rm -f /var/cache/apt/*.bin")
    confined = statuses(
        confined_run(
            machine, "rampart-probes", UNIT.read_text(), "/opt/rampart-agent/bin/rampart-agent check --format json"
        )
    )
    unrestricted = statuses(machine.run("/opt/rampart-agent/bin/rampart-agent", "check", "--format", "json").stdout)
    assert [c for c, (status, _) in unrestricted.items() if status == "error"] == []
    differences = {c: (confined[c], unrestricted[c]) for c in unrestricted if confined[c][0] != unrestricted[c][0]}
    assert differences == {}
    assert confined["security-updates-within-14-days"][0] != "error"  # apt-cache found a writable TMPDIR


def test_the_firewall_is_read_under_the_unit_and_each_grant_is_needed(machine: Machine) -> None:
    machine.path("/var/tmp/ruleset.nft").write_text(RULESET)
    machine.run("ip", "netns", "add", "rampart-firewall")
    try:
        machine.run("ip", "netns", "exec", "rampart-firewall", "nft", "-f", "/var/tmp/ruleset.nft")
        checks = "--only host-firewall-enabled --only firewall-blocks-inbound"
        command = f"/opt/rampart-agent/bin/rampart-agent check {checks} --format json"
        netns = "NetworkNamespacePath=/run/netns/rampart-firewall"

        shipped = statuses(confined_run(machine, "rampart-firewall", UNIT.read_text(), command, netns))
        assert shipped == {"host-firewall-enabled": ("pass", ""), "firewall-blocks-inbound": ("pass", "")}

        # The grants of the unit before: no netlink socket at all.
        before = with_grants(UNIT.read_text(), "CAP_DAC_READ_SEARCH", "AF_UNIX AF_INET AF_INET6")
        for status, reason in statuses(confined_run(machine, "rampart-firewall", before, command, netns)).values():
            assert status == "error" and "Address family not supported" in reason
        # A netlink socket but not the capability: the kernel refuses to list the ruleset.
        no_admin = with_grants(UNIT.read_text(), "CAP_DAC_READ_SEARCH", "AF_UNIX AF_INET AF_INET6 AF_NETLINK")
        for status, reason in statuses(confined_run(machine, "rampart-firewall", no_admin, command, netns)).values():
            assert status == "error" and "Operation not permitted" in reason
    finally:
        machine.run("ip", "netns", "delete", "rampart-firewall", check=False)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    # On the host's loopback, which the container shares.
    with collector_process(tmp_path_factory.mktemp("collector")) as running:
        yield running


@pytest.fixture(scope="module")
def enrolled(machine: Machine, collector: RunningCollector) -> str:
    """The machine enrolled as an administrator does it: root runs /usr/bin/rampart-agent enroll."""
    token = machine.path("/root/rampart-token")
    token.write_text(new_token(collector) + "\n")
    token.chmod(0o600)  # root's alone: the agent reads it as rampart through CAP_DAC_READ_SEARCH
    machine.path("/var/tmp/collector-ca.pem").write_bytes(Path(collector.ca_file).read_bytes())
    config = machine.path("/etc/rampart/config.yaml")
    shipped = config.read_text()
    edited = shipped.replace("  #splay: 10m", "  splay: 0s").replace("  #jitter: 5m", "  jitter: 0s")
    assert edited.count("0s") == shipped.count("0s") + 2
    config.write_text(edited)  # the first run at once, not within ten minutes
    result = machine.run(
        "rampart-agent", "enroll", "--collector", collector.url, "--token-file", "/root/rampart-token",
        "--ca-cert", "/var/tmp/collector-ca.pem", "--format", "json",
    )  # fmt: skip
    agent_id: str = json.loads(result.stdout)["agent_id"]
    # Everything the enrolment wrote belongs to the service's user, so the service can use it.
    owners = machine.run("find", "/var/lib/rampart-agent", "-printf", "%u %m %p\n").stdout.splitlines()
    assert owners and all(line.startswith("rampart ") for line in owners), owners
    assert "rampart 600 /var/lib/rampart-agent/agent.key" in owners
    return agent_id


def wait_for_reports(collector: RunningCollector, agent_id: str, more_than: int, timeout: float = 300) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(stored_reports(collector, agent_id))
        if count > more_than:
            return count
        time.sleep(0.5)
    raise AssertionError(f"no new report from {agent_id} within {timeout}s")


def wait_for_state(machine: Machine, unit: str, wanted: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = machine.run("systemctl", "is-active", unit, check=False).stdout.strip()
        if state == wanted:
            break
        time.sleep(0.2)
    return state


def process_status(machine: Machine, unit: str) -> dict[str, str]:
    pid = machine.run("systemctl", "show", unit, "-p", "MainPID", "--value").stdout.strip()
    assert pid not in ("", "0"), f"{unit} has no main process:\n{machine.journal(unit)}"
    fields = (line.split(":", 1) for line in machine.run("cat", f"/proc/{pid}/status").stdout.splitlines())
    return {key: value.strip() for key, value in fields}


def test_the_enrolled_daemon_runs_confined_and_delivers(
    machine: Machine, collector: RunningCollector, enrolled: str
) -> None:
    before = len(stored_reports(collector, enrolled))
    machine.run("systemctl", "restart", "rampart-agent.service")
    wait_for_reports(collector, enrolled, before)
    assert machine.run("systemctl", "is-active", "rampart-agent.service").stdout.strip() == "active"

    status = process_status(machine, "rampart-agent.service")
    uid = machine.run("id", "-u", "rampart").stdout.strip()
    assert status["Uid"].split() == [uid] * 4
    for capabilities in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(status[capabilities], 16) == AGENT_CAPABILITIES, capabilities
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"

    results: list[dict[str, Any]] = json.loads(collector.cli("host", enrolled, "--format", "json").stdout)["results"]
    errors = {r["check_id"]: r.get("reason") for r in results if r["status"] == "error"}
    assert errors == {}
    agent_status = json.loads(machine.run("rampart-agent", "status", "--format", "json").stdout)
    assert agent_status["enrolled"] and agent_status["last_delivery"]["error"] is None
    assert agent_status["delivered"]["reports"] >= 1


def test_the_timer_alternative_runs_once_and_stands_in_for_the_daemon(
    machine: Machine, collector: RunningCollector, enrolled: str
) -> None:
    machine.run("systemctl", "start", "rampart-agent.service")
    machine.run("systemctl", "start", "rampart-agent.timer")
    try:
        # One or the other: the timer stops the daemon (which first stops its worker).
        assert wait_for_state(machine, "rampart-agent.service", "inactive") == "inactive"
        shown = machine.run("systemctl", "show", "rampart-agent.timer", "-p", "NextElapseUSecMonotonic").stdout
        assert shown.strip() != "NextElapseUSecMonotonic=infinity"
        before = len(stored_reports(collector, enrolled))
        machine.run("systemctl", "start", "rampart-agent-once.service", timeout=900)  # returns when the run ends
        result = machine.run(
            "systemctl", "show", "rampart-agent-once.service", "-p", "Result", "-p", "ExecMainStatus"
        ).stdout
        assert "Result=success" in result and "ExecMainStatus=0" in result
        assert len(stored_reports(collector, enrolled)) > before
        assert "delivered" in machine.journal("rampart-agent-once.service")
    finally:
        machine.run("systemctl", "stop", "rampart-agent.timer", check=False)


def test_lintian_passes_with_only_the_overrides_it_explains(debian: Path, deb: Path, tmp_path: Path) -> None:
    # What it would say without the overrides (each explained in packaging/debian/lintian-overrides) is
    # kept quiet only by that file: a tag it does not name fails the test. --pedantic, and a warning
    # counts as a failure; as an ordinary user, as lintian's manual asks.
    options = ["--pedantic", "--fail-on", "error,warning"]
    if shutil.which("lintian"):
        result = subprocess.run(["lintian", *options, str(deb)], capture_output=True, text=True, timeout=600)
    else:  # Debian 12's lintian, installed once over the cached system and kept as a layer of its own
        with overlay([lintian_layer(debian), debian], tmp_path) as root:
            shutil.copyfile(deb, root / "var/tmp" / deb.name)
            result = spawn(root, "lintian", *options, f"/var/tmp/{deb.name}", user="nobody", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    unexplained = [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert unexplained == []


# --- install, upgrade, remove, purge ------------------------------------------------------------------

# What changes on any Debian system whatever is installed: logs, caches, dpkg's and apt's own records,
# systemd's runtime state, and the backups adduser and deluser keep of the account files.
VOLATILE = re.compile(
    r"^/(proc|sys|dev|run|tmp|var/tmp|var/log|var/cache|var/lib/dpkg|var/lib/apt|root)(/|$)"
    r"|^/var/lib/systemd/(random-seed|timers|catalog)|^/etc/(passwd|group|shadow|gshadow)-$|^/etc/ld\.so\.cache$"
)


def snapshot(machine: Machine) -> dict[str, str]:
    """Every path of the container's tree but the volatile ones: its mode and owner, and a file's size."""
    tree: dict[str, str] = {}
    for directory, dirnames, filenames in os.walk(machine.root):
        relative = os.path.relpath(directory, machine.root)
        inside = "/" if relative == "." else "/" + relative
        dirnames[:] = [d for d in dirnames if not VOLATILE.search(os.path.join(inside, d))]
        for name in filenames:
            path = os.path.join(inside, name)
            if not VOLATILE.search(path):
                info = os.lstat(os.path.join(directory, name))
                tree[path] = f"{oct(info.st_mode)} {info.st_uid}:{info.st_gid} {info.st_size}"
        for name in dirnames:
            info = os.lstat(os.path.join(directory, name))
            tree[os.path.join(inside, name) + "/"] = f"{oct(info.st_mode)} {info.st_uid}:{info.st_gid}"
    return tree


def test_upgrade_keeps_local_choices_and_purge_leaves_the_system_as_it_was(
    debian: Path, deb: Path, tmp_path: Path
) -> None:
    with booted(debian, tmp_path / "machine") as machine:
        machine.path(DEB_INSIDE).write_bytes(deb.read_bytes())
        pristine = snapshot(machine)
        accounts = machine.path("/etc/passwd").read_text(), machine.path("/etc/group").read_text()

        machine.run("dpkg", "-i", DEB_INSIDE)
        config = machine.path("/etc/rampart/config.yaml")
        config.write_text(config.read_text().replace("  #log_level: info", "  log_level: debug"))
        machine.run("systemctl", "disable", "rampart-agent.service")
        machine.run("systemctl", "enable", "rampart-agent.timer")

        upgrade = machine.run("dpkg", "-i", DEB_INSIDE)  # the upgrade path: postinst configure with the old version
        assert "config.yaml" not in upgrade.stdout  # no conffile question: the admin's edit stays
        assert "  log_level: debug" in config.read_text()
        assert machine.run("systemctl", "is-enabled", "rampart-agent.service", check=False).stdout.strip() == "disabled"
        assert machine.run("systemctl", "is-enabled", "rampart-agent.timer").stdout.strip() == "enabled"

        machine.run("dpkg", "--remove", "rampart-agent")
        for gone in ("/opt/rampart-agent", "/usr/bin/rampart-agent", "/lib/systemd/system/rampart-agent.service"):
            assert not machine.path(gone).exists(), gone
        # Removed, not purged: the admin's config, the machine's identity and the user stay for a reinstall.
        assert config.is_file() and machine.path("/var/lib/rampart-agent").is_dir()
        assert machine.run("getent", "passwd", "rampart", check=False).returncode == 0
        assert "LoadState=masked" in machine.run("systemctl", "show", "rampart-agent.service", "-p", "LoadState").stdout

        machine.run("dpkg", "--purge", "rampart-agent")
        assert machine.run("dpkg-query", "-W", "rampart-agent", check=False).returncode != 0
        assert machine.run("getent", "passwd", "rampart", check=False).returncode == 2
        assert machine.run("getent", "group", "rampart", check=False).returncode == 2
        assert (machine.path("/etc/passwd").read_text(), machine.path("/etc/group").read_text()) == accounts
        after = snapshot(machine)
        left = {p: after[p] for p in after if pristine.get(p) != after[p]}
        lost = {p: pristine[p] for p in pristine if p not in after}
        assert (left, lost) == ({}, {})
