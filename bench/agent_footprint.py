"""The agent's footprint: resident memory idle and during a run, CPU seconds per full baseline run.

Runs everything for real on this machine: a collector (`rampart-collector serve`, SQLite) on loopback, an
agent enrolled with it in a temporary state directory, the daemon (`rampart-agent run`) and its workers.

    .venv/bin/python bench/agent_footprint.py [--runs 5] [--idle-seconds 20] [--quick] [--write-docs] [--json FILE]

Figures (medians unless said otherwise):
- import cost: resident memory of a bare interpreter and of one with what each process imports;
- idle daemon: RSS (and USS) of `rampart-agent run` between runs, and its CPU use while idle;
- during a run: the daemon's RSS plus the worker's peak RSS (its own getrusage), both at once;
- CPU per full baseline run: the worker's user+system seconds for `run` of every check of the baseline,
  including interpreter start-up, policy verification, signing and delivery to the collector; and the CPU
  of the commands the probes ran (children), reported apart and in the total.
Targets (the issue): under 35 MB resident idle; under 1 CPU second per baseline run.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import yaml
from _support import ROOT, parser, write_docs

BENCHMARK = True
NAME = "agent_footprint"
BIN = Path(sys.executable).parent
IDLE_TARGET_MB = 35.0
CPU_TARGET_S = 1.0

IMPORT_SETS = {
    "bare interpreter": "",
    "daemon (agent.cli + agent.daemon: APScheduler 3)": "import agent.cli, agent.daemon",
    "APScheduler 3 alone (BackgroundScheduler)": "import apscheduler.schedulers.background",
    "worker (agent.worker + requests, cryptography, policy engine, probes)": (
        "import agent.worker, agent.transport, agent.runner, agent.hostinfo, psutil\n"
        # The nine generic probes (once checks/probes/generic.py), each a package now: the same code loaded.
        "import checks.probes.file.spec, checks.probes.file_content.spec, checks.probes.key_value_file.spec, "
        "checks.probes.command.spec, checks.probes.sysctl.spec, checks.probes.service.spec, "
        "checks.probes.package.spec, checks.probes.process.spec, checks.probes.os.spec"
    ),
    "requests": "import requests",
    "cryptography (Ed25519)": "import cryptography.hazmat.primitives.asymmetric.ed25519",
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env.update(extra)
    return env


def rss_after_import(code: str) -> float:
    probe = (
        f"{code}\n"
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith('VmRSS'): print(int(line.split()[1]) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip())


def import_costs(repeats: int = 3) -> dict[str, float]:
    return {
        name: statistics.median(rss_after_import(code) for _ in range(repeats)) for name, code in IMPORT_SETS.items()
    }


def run_worker(config: Path, task: str) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "agent.worker", task, "--config", str(config)],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd="/",
        timeout=600,
    )
    summary: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    summary["process_wall_s"] = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"worker {task} failed ({proc.returncode}): {summary}\n{proc.stderr[-2000:]}")
    return summary


def mb(value: float) -> float:
    return round(value / 2**20, 1)


def measure(runs: int, idle_seconds: float) -> dict[str, Any]:
    from tests.support.collector import collector_process

    figures: dict[str, Any] = {"imports_rss_mb": import_costs()}
    with tempfile.TemporaryDirectory(prefix="rampart-bench-") as tmp, collector_process(Path(tmp) / "c") as collector:
        token = json.loads(collector.cli("enroll-token", "create", "--format", "json").stdout)["token"]
        config = Path(tmp) / "agent.yaml"
        agent = {"state_dir": str(Path(tmp) / "state"), "splay": "0", "jitter": "0", "checkin_interval": "1h"}
        config.write_text(yaml.safe_dump({"agent": agent}), encoding="utf-8")
        enroll = subprocess.run(
            [str(BIN / "rampart-agent"), "--config", str(config), "enroll", "--collector", collector.url,
             "--token", token, "--ca-cert", collector.ca_file],
            capture_output=True, text=True, env=clean_env(), timeout=120,
        )  # fmt: skip
        if enroll.returncode != 0:
            raise RuntimeError(f"enrol failed: {enroll.stderr}")
        run_worker(config, "checkin")  # fetch the policy bundle the collector assigns

        # CPU and peak memory of full runs (every check of the assigned policy, delivered to the collector)
        summaries = [run_worker(config, "run") for _ in range(runs)]
        figures["checks_per_run"] = summaries[0]["results"]
        figures["run_cpu_s"] = statistics.median(s["cpu_s"] for s in summaries)
        figures["run_cpu_children_s"] = statistics.median(s["cpu_children_s"] for s in summaries)
        figures["run_cpu_total_s"] = round(statistics.median(s["cpu_s"] + s["cpu_children_s"] for s in summaries), 3)
        figures["run_cpu_max_total_s"] = round(max(s["cpu_s"] + s["cpu_children_s"] for s in summaries), 3)
        figures["run_wall_s"] = round(statistics.median(s["process_wall_s"] for s in summaries), 3)
        figures["worker_peak_rss_mb"] = statistics.median(s["max_rss_mb"] for s in summaries)
        figures["delivered"] = all(s["pending"] == 0 for s in summaries)

        # the daemon: first check-in and run at once (splay 0), then idle
        log = (Path(tmp) / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [str(BIN / "rampart-agent"), "--config", str(config), "run"],
            stdout=subprocess.DEVNULL, stderr=log, env=clean_env(), cwd="/",
        )  # fmt: skip
        try:
            parent = psutil.Process(daemon.pid)
            deadline = time.monotonic() + 120
            during: list[float] = []
            seen_runs = 0
            while time.monotonic() < deadline:
                text = (Path(tmp) / "daemon.log").read_text()
                seen_runs = text.count(" run: ")
                workers = parent.children()
                if workers:
                    try:
                        during.append(parent.memory_info().rss + sum(w.memory_info().rss for w in workers))
                    except psutil.NoSuchProcess:
                        pass
                if seen_runs >= 1 and "checkin:" in text and not workers:
                    break
                time.sleep(0.02)
            if seen_runs < 1:
                raise RuntimeError("the daemon did not run its checks:\n" + (Path(tmp) / "daemon.log").read_text())
            time.sleep(2)
            cpu_before = sum(parent.cpu_times()[:2])
            samples_rss, samples_uss = [], []
            end = time.monotonic() + idle_seconds
            while time.monotonic() < end:
                info = parent.memory_full_info()
                samples_rss.append(info.rss)
                samples_uss.append(info.uss)
                time.sleep(0.5)
            cpu_idle = sum(parent.cpu_times()[:2]) - cpu_before
            figures["daemon_idle_rss_mb"] = mb(statistics.median(samples_rss))
            figures["daemon_idle_rss_max_mb"] = mb(max(samples_rss))
            figures["daemon_idle_uss_mb"] = mb(statistics.median(samples_uss))
            figures["daemon_idle_cpu_s_per_min"] = round(cpu_idle / idle_seconds * 60, 4)
            figures["daemon_threads"] = parent.num_threads()
            figures["daemon_plus_worker_peak_sampled_mb"] = mb(max(during)) if during else None
            figures["daemon_plus_worker_peak_mb"] = round(
                figures["daemon_idle_rss_max_mb"] + figures["worker_peak_rss_mb"], 1
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
            log.close()
    figures["machine"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "processor": platform.processor() or platform.machine(),
    }
    return figures


def report(f: dict[str, Any]) -> str:
    lines = [
        "| measure | value | target |",
        "|---|---|---|",
        f"| daemon resident memory, idle (median RSS) | {f['daemon_idle_rss_mb']} MB | < {IDLE_TARGET_MB:g} MB |",
        f"| daemon idle, max RSS / USS | {f['daemon_idle_rss_max_mb']} MB / {f['daemon_idle_uss_mb']} MB | |",
        f"| daemon CPU while idle | {f['daemon_idle_cpu_s_per_min']} s per minute | |",
        f"| worker peak RSS during a full run | {f['worker_peak_rss_mb']} MB | |",
        f"| daemon + worker during a run (sum of peaks) | {f['daemon_plus_worker_peak_mb']} MB | |",
        f"| daemon + worker during a run (sampled every 20 ms) | {f['daemon_plus_worker_peak_sampled_mb']} MB | |",
        f"| CPU per full baseline run ({f['checks_per_run']} checks), worker | {f['run_cpu_s']} s | |",
        f"| CPU of the commands the probes ran | {f['run_cpu_children_s']} s | |",
        f"| CPU per full baseline run, total (median / max) | {f['run_cpu_total_s']} s / "
        f"{f['run_cpu_max_total_s']} s | < {CPU_TARGET_S:g} s |",
        f"| wall time of a worker process, start to exit (median) | {f['run_wall_s']} s | |",
        "",
        "| process imports | RSS |",
        "|---|---|",
        *(f"| {name} | {value:.1f} MB |" for name, value in f["imports_rss_mb"].items()),
    ]
    return "\n".join(lines)


def main() -> int:
    parsed = parser(__doc__)
    parsed.add_argument("--runs", type=int, help="full runs to measure (5; quick 2)")
    parsed.add_argument("--idle-seconds", type=float, help="how long to sample the idle daemon (20; quick 5)")
    args = parsed.parse_args()
    figures = measure(args.runs or (2 if args.quick else 5), args.idle_seconds or (5 if args.quick else 20))
    print(json.dumps(figures, indent=2))
    print("Agent footprint (bench/agent_footprint.py)\n")
    text = report(figures) + f"\n\nMachine: {figures['machine']}."
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    if args.write_docs:
        write_docs(NAME, text)
    idle_ok = figures["daemon_idle_rss_mb"] < IDLE_TARGET_MB
    cpu_ok = figures["run_cpu_total_s"] < CPU_TARGET_S
    if not (idle_ok and cpu_ok and figures["delivered"]):
        print("\nTARGET MISSED" if figures["delivered"] else "\nRESULTS NOT DELIVERED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
