"""Rampart's baseline side by side with Lynis and OpenSCAP on this machine, in the same run.

Each round runs, one after the other in an order that rotates every round:
- Rampart: `rampart-agent check --format json` with the shipped baseline and a warm apt cache (the per-user
  cache `check` keeps, in a temporary XDG_CACHE_HOME, warmed by one untimed run first);
- Rampart without its cache (`--no-cache`): what every `check` cost before it kept one;
- Lynis: `lynis audit system --quick` with a profile of our own (a temporary file) that sets
  `refresh-repositories=no`, so that it never runs `apt-get update`; its log and report in the temporary
  directory too, not /var/log;
- OpenSCAP: `oscap xccdf eval` of the `standard` profile of Debian's SCAP content (the ssg-debian package).
  That package ships content for Debian 10 and 11 only; on a later Debian every rule would be "not
  applicable", because the content's platform (CPE `cpe:/o:debian:debian_linux:11`) is decided by one OVAL
  object that matches /etc/debian_version against `^11.[0-9]+$`. A temporary copy of the newest datastream
  has that pattern (in both of its OVAL components) rewritten to this machine's major version, and nothing
  else: the rules and their checks are Debian 11's, judged on this Debian.

For each run: wall time; CPU (user + system) of the process and every descendant it waited for, from
wait4()'s resource usage; peak memory, both the largest single process's (ru_maxrss, what `/usr/bin/time -v`
prints) and the whole tree's (RSS summed over the process and its descendants, sampled every 10 ms);
checks run, from each tool's own output (Rampart's JSON, Lynis's report file, OpenSCAP's XCCDF results);
and topics shared: a hand-made mapping (TOPICS below) of which of our checks cover the same thing as which
Lynis tests and SCAP rules, counted as shared when both tools actually judged it here. Medians over rounds.

The agent's own footprint (daemon idle RSS, CPU per baseline run) comes from bench/agent_footprint.py, run
as it is, in the same run.

    .venv/bin/python bench/endpoint_side_by_side.py [--rounds 3] [--quick] [--write-docs] [--json]

Needs root (Lynis and OpenSCAP read what only root may) and `scripts/system-packages.sh bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _side_by_side import (
    BenchError,
    Tool,
    adapted_datastream,
    debian_major,
    read_openscap,
    run_tool,
    scap_command,
    tools,
)

BENCHMARK = True
ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:endpoint_side_by_side -->", "<!-- /bench:endpoint_side_by_side -->"

# Issue 14's figures (measured before `check` kept apt's cache) and the agent's targets.
ISSUE = {"rampart": (0.84, 48.0), "openscap": (1.26, 200.0), "lynis": (40.0, 81.0)}  # CPU s, MiB
IDLE_TARGET_MB, RUN_CPU_TARGET_S = 35.0, 1.0

# topic: (our baseline's checks, Lynis tests, SCAP rules of the standard profile) covering the same thing.
TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # Lynis's FILE-7524 checks the files its profile lists: /etc/passwd and /etc/group in Debian's default one.
    "permissions of the account files (/etc/passwd, /etc/shadow)": (
        ("shadow-file-permissions", "passwd-file-permissions"),
        ("FILE-7524",),
        tuple(
            f"file_{kind}_etc_{name}"
            for kind in ("permissions", "owner", "groupowner")
            for name in ("shadow", "passwd", "gshadow", "group")
        ),
    ),
    "sticky bit on /tmp": (("tmp-sticky-bit",), ("FILE-6362",), ()),
    "kernel hardening (ASLR, setuid core dumps)": (
        ("kernel-aslr", "suid-core-dumps-off"),
        ("KRNL-6000",),
        ("sysctl_kernel_randomize_va_space", "sysctl_fs_suid_dumpable"),
    ),
    "no telnet or rsh server": (
        ("no-telnet-server", "no-rsh-server"),
        ("INSE-8304", "INSE-8322"),
        ("package_telnetd_removed", "package_inetutils-telnetd_removed", "package_telnetd-ssl_removed"),
    ),
    "SSH server configuration": (
        ("ssh-root-login-disabled", "ssh-no-empty-passwords", "ssh-no-weak-algorithms"),
        ("SSH-7408",),  # SSH-7402 only looks for a running sshd
        ("sshd_disable_root_login", "sshd_disable_empty_passwords", "sshd_allow_only_protocol2"),
    ),
    "password policy (aging, strength)": (
        ("password-max-age", "password-min-length"),
        ("AUTH-9286", "AUTH-9262"),
        (),
    ),
    "account lockout": (("account-lockout",), (), ()),
    "security updates pending": (
        ("security-updates-within-14-days", "no-pending-security-updates", "package-index-fresh"),
        ("PKGS-7392",),
        (),
    ),
    "reboot pending (newer kernel installed)": (("no-reboot-pending",), ("KRNL-5830",), ()),
    "disk encryption": (("disks-encrypted",), ("CRYP-7930",), ()),
    "host firewall": (
        ("host-firewall-enabled", "firewall-blocks-inbound"),
        ("FIRE-4502", "FIRE-4590"),
        (),
    ),
    "anti-malware": (
        ("antimalware-realtime", "antimalware-signatures-current", "antimalware-service-running"),
        ("MALW-3280",),
        (),
    ),
    "accounts with administrator rights": (("local-admins-limited",), ("AUTH-9204",), ()),
    "screen lock": (("screen-locks-when-idle",), (), ()),
    "operating system still supported": (("os-supported", "os-end-of-life-not-near"), (), ()),
}


def footprint(quick: bool) -> dict[str, Any]:
    """bench/agent_footprint.py's figures, run as it is (it exits 1 when a target is missed: still figures)."""
    args = ["--runs", "2", "--idle-seconds", "5"] if quick else ["--runs", "5", "--idle-seconds", "20"]
    with tempfile.TemporaryDirectory(prefix="rampart-footprint-") as scratch:
        written = Path(scratch) / "footprint.json"
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "agent_footprint.py"), *args, "--json", str(written)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=1800,
        )
        text = written.read_text(encoding="utf-8") if written.exists() else ""
    try:
        figures: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        raise BenchError(
            f"bench/agent_footprint.py gave no figures ({done.returncode}):\n{done.stderr[-2000:]}"
        ) from exc
    figures["args"] = " ".join(args)
    return figures


def machine() -> dict[str, Any]:
    virt = (
        subprocess.run(["systemd-detect-virt"], capture_output=True, text=True)
        if shutil.which("systemd-detect-virt")
        else None
    )
    versions = {}
    for name, argv in {"lynis": ["lynis", "--version"], "oscap": ["oscap", "--version"]}.items():
        shown = subprocess.run(argv, capture_output=True, text=True)
        versions[name] = (shown.stdout.strip().splitlines() or ["?"])[0].split()[-1]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "debian": Path("/etc/debian_version").read_text(encoding="utf-8").strip(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "virtualisation": (virt.stdout.strip() if virt else "") or "unknown",
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **versions,
    }  # fmt: skip


# --- the run ----------------------------------------------------------------------------------------------


def bench(rounds: int, quick: bool, with_footprint: bool) -> dict[str, Any]:
    if os.geteuid() != 0:
        raise BenchError("run as root: Lynis and OpenSCAP read what only root may")
    for needed in ("lynis", "oscap"):
        if shutil.which(needed, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
            raise BenchError(f"{needed} is not installed: run scripts/system-packages.sh bench")
    with tempfile.TemporaryDirectory(prefix="rampart-side-by-side-") as tmp:
        work = Path(tmp)
        datastream, source, adaptation = adapted_datastream(work, debian_major())
        every = tools(work, datastream)
        by_name = {t.name: t for t in every}
        # Untimed: warm Rampart's apt cache (the figure is a warm-cache run) and the files every tool reads.
        run_tool(by_name["rampart"], work)
        run_tool(by_name["openscap"], work)
        unadapted: dict[str, int] = {}
        if datastream != source:  # how much of the shipped content applies here without the rewrite
            shipped = Tool("shipped", "", scap_command(source), read_openscap, (0, 2), by_name["openscap"].env)
            unadapted = run_tool(shipped, work).checks
        for index in range(rounds):
            shift = index % len(every)
            for tool in every[shift:] + every[:shift]:  # a different tool goes first each round
                run = run_tool(tool, work)
                tool.runs.append(run)
                print(
                    f"round {index + 1}/{rounds} {tool.name}: {run.wall_s:.2f} s wall, {run.cpu_s:.2f} s CPU, "
                    f"{run.max_rss_mib:.0f} MiB",
                    file=sys.stderr,
                )
    figures: dict[str, Any] = {
        "machine": machine(),
        "rounds": rounds,
        "scap_content": adaptation,
        "scap_unadapted": unadapted,
        "tools": {},
    }
    for tool in every:
        figures["tools"][tool.name] = {
            "label": tool.label,
            "wall_s": statistics.median(r.wall_s for r in tool.runs),
            "cpu_s": statistics.median(r.cpu_s for r in tool.runs),
            "max_rss_mib": statistics.median(r.max_rss_mib for r in tool.runs),
            "tree_rss_mib": statistics.median(r.tree_rss_mib for r in tool.runs),
            "checks": tool.runs[-1].checks,
            "judged": sorted(tool.runs[-1].judged),
        }
    figures["topics"] = topics(figures["tools"])
    if with_footprint:
        figures["footprint"] = footprint(quick)
    return figures


def topics(measured: dict[str, Any]) -> list[dict[str, Any]]:
    judged = {name: set(t["judged"]) for name, t in measured.items()}
    rows = []
    for topic, (ours, lynis, scap) in TOPICS.items():
        rows.append(
            {
                "topic": topic,
                "rampart": sorted(judged["rampart"] & set(ours)),
                "rampart_has": bool(ours),
                "lynis": sorted(judged["lynis"] & set(lynis)),
                "lynis_has": bool(lynis),
                "openscap": sorted(judged["openscap"] & set(scap)),
                "openscap_has": bool(scap),
            }
        )
    return rows


# --- the report -------------------------------------------------------------------------------------------


def _checks_text(name: str, checks: dict[str, int]) -> str:
    if name == "lynis":
        return f"{checks['executed']} tests run, {checks['skipped']} skipped"
    total, unit = (checks["checks"], "checks") if name.startswith("rampart") else (checks["rules"], "rules")
    counts = ", ".join(f"{checks.get(s, 0)} {s}" for s in ("pass", "fail", "error") if checks.get(s))
    return f"{total} {unit}: {checks['judged']} applicable here ({counts})"


def _cell(ids: list[str], has: bool, unit: str) -> str:
    if ids:
        shown = ", ".join(f"`{i}`" for i in ids[:3]) + (f" +{len(ids) - 3}" if len(ids) > 3 else "")
        return f"yes: {shown}"
    return f"not judged here ({unit} exists)" if has else "-"


def render(f: dict[str, Any]) -> str:
    m, t = f["machine"], f["tools"]
    rampart = t["rampart"]
    rows = []
    for name in ("rampart", "rampart-no-cache", "openscap", "lynis"):
        x = t[name]
        issue = ISSUE.get(name)
        rows.append(
            f"| {x['label']} | {x['wall_s']:.2f} s | **{x['cpu_s']:.2f} s** | {x['max_rss_mib']:.0f} MiB | "
            f"{x['tree_rss_mib']:.0f} MiB | {_checks_text(name, x['checks'])} | "
            + (f"{issue[0]:g} s, {issue[1]:g} MiB |" if issue else "- |")
        )
    topic_rows = [
        f"| {r['topic']} | {_cell(r['rampart'], r['rampart_has'], 'a check')} | "
        f"{_cell(r['lynis'], r['lynis_has'], 'a test')} | {_cell(r['openscap'], r['openscap_has'], 'a rule')} |"
        for r in f["topics"]
    ]
    ours = [r for r in f["topics"] if r["rampart"]]
    with_lynis = sum(1 for r in ours if r["lynis"])
    with_scap = sum(1 for r in ours if r["openscap"])
    scap = t["openscap"]["checks"]
    unadapted = f["scap_unadapted"]
    lines = [
        BEGIN,
        "## Endpoint side by side: Rampart, Lynis, OpenSCAP (`bench/endpoint_side_by_side.py`)",
        "",
        "On this machine, in the same run, interleaved (the order rotates every round), medians over the rounds:",
        "",
        "- **Rampart**: `rampart-agent check --format json`, the shipped baseline, with apt's cache kept by `check`",
        "  (the per-user cache, in a temporary `XDG_CACHE_HOME`, warmed by one untimed run); and the same with",
        "  `--no-cache`, what every `check` cost before it kept one (issue 14's 0.84 s);",
        "- **Lynis**: `lynis audit system --quick` with a profile of the benchmark's own (a temporary file) that",
        "  sets `refresh-repositories=no`, so it never runs `apt-get update`; its log and report kept in the",
        "  temporary directory;",
        "- **OpenSCAP**: `oscap xccdf eval --profile standard` of Debian's SCAP content (ssg-debian): "
        + f["scap_content"]
        + ". The rules and their checks are Debian's; only the question \"is this the Debian the content is"
        ' for" is answered yes'
        + (
            f" (without the rewrite: {unadapted.get('notapplicable', 0)} of the {unadapted.get('rules', 0)} rules "
            "not applicable)."
            if unadapted
            else "."
        ),
        "",
        "CPU is user + system of the tool and every process it waited for (`wait4`); peak memory is the largest",
        "single process's (`ru_maxrss`, what `/usr/bin/time -v` prints, and what issue 14 quotes) and the whole",
        "tree's (RSS summed over the tool and its descendants, sampled every 10 ms). Checks run are each tool's",
        "own count: Rampart's results, Lynis's report file (`lynis_tests_done`, `tests_executed`,",
        "`tests_skipped`), OpenSCAP's XCCDF results (rules selected by the profile; judged = pass, fail, error).",
        "",
        "### Results",
        "",
        f"Measured {m['date']}: {m['cpus']} vCPUs (shared), Debian {m['debian']}, Linux {m['kernel']}, "
        f"virtualisation: {m['virtualisation']}, Lynis {m['lynis']}, OpenSCAP {m['oscap']}, Python {m['python']}, "
        f"load average {m['load_avg_1m']} at the end; {f['rounds']} round(s). Wall times grow with the load of this "
        "shared machine; CPU seconds and memory hardly do.",
        "",
        "| tool | wall | CPU with children | peak RSS, largest process | peak RSS, tree | checks run | issue 14 |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Rampart's warm baseline uses {t['openscap']['cpu_s'] / rampart['cpu_s']:.1f}x less CPU than OpenSCAP and "
        f"{t['lynis']['cpu_s'] / rampart['cpu_s']:.0f}x less than Lynis, and "
        f"{t['openscap']['max_rss_mib'] / rampart['max_rss_mib']:.1f}x less memory than OpenSCAP "
        f"({t['lynis']['max_rss_mib'] / rampart['max_rss_mib']:.1f}x less than Lynis); the kept apt cache saves "
        f"{t['rampart-no-cache']['cpu_s'] - rampart['cpu_s']:.2f} s of CPU per `check`. OpenSCAP's profile: "
        + ", ".join(f"{v} {k}" for k, v in sorted(scap.items()) if k not in ("rules", "judged"))
        + ". Rules it finds not applicable include those restricted to a real machine (partitions, auditd, sysctl),"
        " which OpenSCAP skips in a container, and those on packages not installed here.",
        "",
        "### Topics shared",
        "",
        "A hand-made mapping (`TOPICS` in the script) of which of our baseline's checks cover the same thing as",
        'which Lynis tests and SCAP rules of the standard profile; "yes" when the tool judged it here.',
        "",
        "| topic | Rampart | Lynis | OpenSCAP |",
        "|---|---|---|---|",
        *topic_rows,
        "",
        f"Of the {len(ours)} topics Rampart judged here, Lynis judged {with_lynis} and OpenSCAP {with_scap}. "
        "Lynis's `FILE-7524` checks the files its profile lists: /etc/passwd and /etc/group in Debian's default "
        "profile, not /etc/shadow.",
    ]
    fp = f.get("footprint")
    if fp:
        lines += [
            "",
            "### The agent's footprint, same run (`bench/agent_footprint.py`)",
            "",
            f"`bench/agent_footprint.py {fp['args']}`: the daemon enrolled with a local collector, full runs of the",
            f"assigned baseline ({fp['checks_per_run']} checks) by the worker, then the daemon idle.",
            "",
            "| measure | this run | target | issue 14 |",
            "|---|---|---|---|",
            f"| daemon idle, median RSS | **{fp['daemon_idle_rss_mb']} MB** | < {IDLE_TARGET_MB:g} MB | 25 MB |",
            f"| CPU per full baseline run, worker + commands (median) | **{fp['run_cpu_total_s']} s** "
            f"(max {fp['run_cpu_max_total_s']} s) | < {RUN_CPU_TARGET_S:g} s | 0.45 s |",
            f"| of which the commands the probes ran | {fp['run_cpu_children_s']} s | | |",
            f"| worker peak RSS during a run | {fp['worker_peak_rss_mb']} MB | | |",
            f"| daemon CPU while idle | {fp['daemon_idle_cpu_s_per_min']} s per minute | | |",
        ]
    lines += [
        "",
        "Re-run (as root, after `scripts/system-packages.sh bench`): `.venv/bin/python "
        "bench/endpoint_side_by_side.py [--rounds N] [--quick] [--write-docs] [--json] [--no-footprint]`.",
        END,
    ]
    return "\n".join(_wrap(line) for line in lines)


def _wrap(line: str, width: int = 110) -> str:
    """Long prose lines folded as the rest of docs/ is (tables, headings and markers left whole)."""
    if len(line) <= width or line.startswith(("|", "#", "<!--")):
        return line
    indent = "  " if line.startswith("- ") else ""
    return textwrap.fill(line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def write_docs(section: str, path: Path = DOCS) -> None:
    """Replace the marked section of docs/benchmarks.md (or add it, before the cloud benchmark's)."""
    text = path.read_text(encoding="utf-8")
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    elif "\n## Cloud: MFA" in text:
        text = text.replace("\n## Cloud: MFA", "\n" + section + "\n\n## Cloud: MFA", 1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every tool (default: 3)")
    parser.add_argument("--quick", action="store_true", help="one round, and a short agent footprint run")
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite this benchmark's section of {DOCS.name}")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-footprint", action="store_true", help="do not run bench/agent_footprint.py")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        figures = bench(1 if args.quick else args.rounds, args.quick, not args.no_footprint)
    except BenchError as exc:
        print(f"endpoint_side_by_side: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(figures, indent=2), flush=True)
    section = render(figures)
    if not args.json:
        print(section)
    if args.write_docs:
        write_docs(section)
    for problem in regressions(figures):
        print(f"endpoint_side_by_side: {problem}", file=sys.stderr)
    return 0


def regressions(f: dict[str, Any]) -> list[str]:
    """What issue 14 asks to keep: Rampart the lightest of the three, the agent within its targets.
    Said on stderr (bench/agent_footprint.py is the one that fails on its targets)."""
    t, problems = f["tools"], []
    for other in ("openscap", "lynis"):
        for key, what in (("cpu_s", "CPU"), ("max_rss_mib", "memory")):
            if t["rampart"][key] >= t[other][key]:
                problems.append(f"Rampart's baseline uses no less {what} than {other}")
    fp = f.get("footprint")
    if fp and fp["daemon_idle_rss_mb"] >= IDLE_TARGET_MB:
        problems.append(f"TARGET MISSED: daemon idle {fp['daemon_idle_rss_mb']} MB (< {IDLE_TARGET_MB:g} MB)")
    if fp and fp["run_cpu_total_s"] >= RUN_CPU_TARGET_S:
        problems.append(f"TARGET MISSED: baseline run {fp['run_cpu_total_s']} CPU s (< {RUN_CPU_TARGET_S:g} s)")
    return problems


if __name__ == "__main__":
    sys.exit(main())
