"""Running the tools of bench/endpoint_side_by_side.py: setting each one up (Rampart's baseline, Lynis with
a profile of our own, OpenSCAP on Debian's SCAP content adapted to this Debian), measuring one run of it
(wall time, CPU and peak memory of its whole process tree), and reading what it ran from its own output.

Support for bench/endpoint_side_by_side.py (a `_` module: not a benchmark).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
SSG_CONTENT = Path("/usr/share/xml/scap/ssg/content")
SCAP_PROFILE = "xccdf_org.ssgproject.content_profile_standard"
XCCDF = "{http://checklists.nist.gov/xccdf/1.2}"
# A rule was judged on this machine when it got one of these (not notapplicable, notselected, notchecked).
SCAP_JUDGED = ("pass", "fail", "error", "unknown", "informational", "fixed")
SAMPLE_S = 0.01


class BenchError(Exception):
    """Something this benchmark needs is missing or a tool did not do what it should."""


@dataclass
class Run:
    """One run of one tool."""

    wall_s: float
    cpu_s: float
    max_rss_mib: float  # the largest single process (ru_maxrss)
    tree_rss_mib: float  # the whole tree, sampled
    exit_code: int
    checks: dict[str, int] = field(default_factory=dict)  # what the tool says it ran
    judged: set[str] = field(default_factory=set)  # ids it judged here (for the topics)


@dataclass
class Tool:
    name: str
    label: str
    command: Callable[[Path], list[str]]
    read: Callable[[Path, Path], tuple[dict[str, int], set[str]]]  # (work dir, stdout file) -> checks, judged
    ok_codes: tuple[int, ...] = (0,)
    env: dict[str, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)


def measure(argv: Sequence[str], stdout: Path, env: dict[str, str], cwd: Path) -> Run:
    """Run argv to the end; its CPU and peak memory with every descendant it waited for (wait4)."""
    executable = shutil.which(argv[0], path=env.get("PATH")) or argv[0]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(stdout), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, str(stdout.with_suffix(".err")), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    done = threading.Event()
    peak = [0]
    started = time.monotonic()
    previous = os.getcwd()
    os.chdir(cwd)  # posix_spawn has no cwd argument (before Python 3.13's file actions)
    try:
        pid = os.posix_spawn(executable, list(argv), env, file_actions=actions)
    finally:
        os.chdir(previous)

    def sample() -> None:
        try:
            root = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            total = 0
            try:
                for process in (root, *root.children(recursive=True)):
                    try:
                        total += process.memory_info().rss
                    except psutil.NoSuchProcess:
                        pass  # a short-lived command ended between listing and reading it
            except psutil.NoSuchProcess:
                break
            peak[0] = max(peak[0], total)
            done.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    return Run(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        tree_rss_mib=max(peak[0] / 2**20, usage.ru_maxrss / 1024),  # a too-short run is never sampled
        exit_code=os.waitstatus_to_exitcode(status),
    )


# --- what each tool ran ---------------------------------------------------------------------------------


def read_rampart(work: Path, stdout: Path) -> tuple[dict[str, int], set[str]]:
    report = json.loads(stdout.read_text(encoding="utf-8"))
    statuses = Counter(str(r["status"]) for r in report["results"])
    judged = {str(r["check_id"]) for r in report["results"] if r["status"] != "not_applicable"}
    return {"checks": sum(statuses.values()), "judged": len(judged), **statuses}, judged


def read_lynis(work: Path, stdout: Path) -> tuple[dict[str, int], set[str]]:
    values: dict[str, str] = {}
    for line in (work / "lynis-report.dat").read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition("=")
        values.setdefault(key, value)
    executed = {t for t in values.get("tests_executed", "").split("|") if t}
    skipped = {t for t in values.get("tests_skipped", "").split("|") if t}
    return {
        "tests_done": int(values.get("lynis_tests_done", "0")),
        "executed": len(executed),
        "skipped": len(skipped),
    }, (executed)


def read_openscap(work: Path, stdout: Path) -> tuple[dict[str, int], set[str]]:
    results: Counter[str] = Counter()
    judged: set[str] = set()
    for _, element in ET.iterparse(work / "oscap-results.xml"):
        if element.tag != f"{XCCDF}rule-result":
            continue
        result = element.findtext(f"{XCCDF}result") or "unknown"
        if result == "notselected":
            element.clear()
            continue
        results[result] += 1
        if result in SCAP_JUDGED:
            judged.add(str(element.get("idref", "")).removeprefix("xccdf_org.ssgproject.content_rule_"))
        element.clear()
    return {"rules": sum(results.values()), "judged": len(judged), **results}, judged


# --- setting the tools up -------------------------------------------------------------------------------


def debian_major() -> int:
    text = Path("/etc/debian_version").read_text(encoding="utf-8").strip()
    match = re.match(r"(\d+)", text)
    if match is None:
        raise BenchError(f"/etc/debian_version says {text!r}: not a released Debian, no SCAP content to adapt")
    return int(match.group(1))


def adapted_datastream(work: Path, major: int) -> tuple[Path, Path, str]:
    """Debian's SCAP datastream for this release, or a copy of the newest one made applicable to it:
    (what to evaluate, the shipped file it comes from, how it was made)."""
    exact = SSG_CONTENT / f"ssg-debian{major}-ds.xml"
    if exact.is_file():
        return exact, exact, f"`{exact.name}`, as shipped"
    shipped = sorted(
        (int(m.group(1)), path)
        for path in SSG_CONTENT.glob("ssg-debian*-ds.xml")
        if (m := re.fullmatch(r"ssg-debian(\d+)-ds\.xml", path.name))
    )
    if not shipped:
        raise BenchError(f"no Debian SCAP content in {SSG_CONTENT}: run scripts/system-packages.sh bench")
    version, source = shipped[-1]
    # The one OVAL object deciding "this is Debian N" (the CPE's check): /etc/debian_version matched against
    # ^N.[0-9]+$. It is present in the datastream's checks component and in its CPE component.
    object_id = re.escape(f'id="oval:ssg-obj_debian_{version}:obj:1"')
    pattern = re.compile(
        rf"({object_id}[^>]*>\s*<ind:filepath>/etc/debian_version</ind:filepath>\s*"
        rf'<ind:pattern operation="pattern match">)\^{version}\.\[0-9\]\+\$(</ind:pattern>)'
    )
    text, count = pattern.subn(rf"\g<1>^{major}.[0-9]+$\g<2>", source.read_text(encoding="utf-8"))
    if count == 0:
        raise BenchError(f"{source}: the Debian {version} platform check was not found; cannot adapt it")
    copy = work / f"ssg-debian{version}-ds-as-debian{major}.xml"
    copy.write_text(text, encoding="utf-8")
    how = (
        f"`{source.name}` (Debian {version}'s, the newest ssg-debian ships) in a temporary copy whose platform "
        f"check matches Debian {major}: the pattern `^{version}.[0-9]+$` of the OVAL object "
        f"`oval:ssg-obj_debian_{version}:obj:1` (on /etc/debian_version) rewritten to `^{major}.[0-9]+$`, in "
        f"both OVAL components ({count} places), nothing else"
    )
    return copy, source, how


def scap_command(datastream: Path) -> Callable[[Path], list[str]]:
    def command(work: Path) -> list[str]:
        results = str(work / "oscap-results.xml")
        return ["oscap", "xccdf", "eval", "--profile", SCAP_PROFILE, "--results", results, str(datastream)]

    return command


def tools(work: Path, datastream: Path) -> list[Tool]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    clean["PATH"] = clean.get("PATH", "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin"
    config = work / "agent.yaml"
    config.write_text(f"agent:\n  state_dir: {work / 'no-agent-state'}\n", encoding="utf-8")
    rampart_env = {**clean, "XDG_CACHE_HOME": str(work / "xdg")}
    profile = work / "bench.prf"
    profile.write_text("# bench/endpoint_side_by_side.py: never refresh the package lists\nrefresh-repositories=no\n")
    profile.chmod(0o600)
    check = [str(BIN / "rampart-agent"), "check", "--format", "json", "--config", str(config)]
    return [
        Tool("rampart", "Rampart baseline (`rampart-agent check`, warm cache)", lambda w: check, read_rampart,
             env=rampart_env),
        Tool("rampart-no-cache", "Rampart baseline, `--no-cache`", lambda w: [*check, "--no-cache"], read_rampart,
             env=rampart_env),
        Tool("lynis", "Lynis (`lynis audit system --quick`)", lambda w: [
            "lynis", "audit", "system", "--quick", "--no-colors", "--profile", str(profile),
            "--logfile", str(w / "lynis.log"), "--report-file", str(w / "lynis-report.dat"),
        ], read_lynis, env=clean),
        # oscap exits 2 when a rule failed: that is a result, not an error.
        Tool("openscap", "OpenSCAP (`oscap xccdf eval`, standard profile)", scap_command(datastream), read_openscap,
             ok_codes=(0, 2), env=clean),
    ]  # fmt: skip


def run_tool(tool: Tool, work: Path) -> Run:
    out = work / f"{tool.name}.out"
    result = measure(tool.command(work), out, tool.env, work)
    if result.exit_code not in tool.ok_codes:
        error = out.with_suffix(".err").read_text(encoding="utf-8", errors="replace")[-2000:]
        raise BenchError(f"{tool.name} exited {result.exit_code}:\n{error}")
    result.checks, result.judged = tool.read(work, out)
    return result
