"""`rampart-agent enroll`, `run` and `status`: the commands that tie this machine to a collector.

Imports stay inside the handlers: `run` becomes the long-lived daemon and must not carry what the other
commands need (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from checks.logformat import LOG_FORMAT_HELP, LOG_FORMATS
from checks.output import format_table, print_json
from checks.safetext import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
FORMAT_HELP = "output format (default: table)"


class CommandError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_commands(commands: Any) -> None:
    enroll = commands.add_parser(
        "enroll",
        help="enrol this machine with a collector (one-time token)",
        description="Generate this agent's Ed25519 key in the state directory, enrol with the collector using "
        "a one-time token, and pin the collector's public key (and CA, with --ca-cert). The token is not "
        "stored. Exit 0 enrolled, 1 the collector refused or could not be reached, 2 bad input or already "
        "enrolled (use --force to enrol again with a new identity).",
    )
    enroll.add_argument("--collector", required=True, metavar="URL", help="the collector's https:// URL")
    token = enroll.add_mutually_exclusive_group(required=True)
    token.add_argument("--token", metavar="TOKEN", help="enrolment token (visible to other local users in ps)")
    token.add_argument("--token-file", metavar="FILE", help="read the enrolment token from FILE ('-': stdin)")
    enroll.add_argument("--ca-cert", metavar="FILE", help="CA certificate (PEM) of the collector's TLS certificate")
    enroll.add_argument("--force", action="store_true", help="enrol again, replacing this machine's identity")
    enroll.add_argument("--format", choices=("table", "json"), default="table", help=FORMAT_HELP)
    enroll.set_defaults(handler=cmd_enroll)

    run = commands.add_parser(
        "run",
        help="the agent daemon: run checks on schedule and deliver results",
        description="Run the checks of the policy the collector assigns, each on its interval, with jitter; "
        "results are committed to the local spool and delivered when the collector can be reached. Stops "
        "cleanly on SIGTERM; SIGHUP re-reads the config. With --once: check in, run every check once, "
        "deliver, and exit (1 when results could not all be delivered; they stay in the spool).",
    )
    run.add_argument("--once", action="store_true", help="run every check once, deliver, exit")
    run.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help=LOG_FORMAT_HELP + "; the workers' lines too (default: log_format from the config, text)",
    )
    run.set_defaults(handler=cmd_run)

    status = commands.add_parser(
        "status",
        help="enrolment, policy, last run, last delivery, spool depth",
        description="Show this agent's enrolment, the policy in force, the last run and delivery, the spool "
        "depth and how many results were dropped.",
        epilog="Exit codes: 0 enrolled, accepted and delivering; 1 a problem (printed on standard error, and "
        "under `problems` in --format json): not enrolled, refused by the collector, or reports waiting in the "
        "spool after the last delivery failed (the collector unreachable or refusing them); 2 bad usage or "
        "config. Monitoring can run it and alert on a non-zero exit.",
    )
    status.add_argument("--format", choices=("table", "json"), default="table", help=FORMAT_HELP)
    status.set_defaults(handler=cmd_status)


def _config(args: argparse.Namespace) -> Any:
    from agent.config import load_agent_config
    from checks.config import ConfigError

    try:
        return load_agent_config(args.config)
    except ConfigError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc


def _setup_logging(log_format: str | None) -> None:
    from checks.logformat import log_to_stderr

    # Until the first worker reports the config's format (the daemon does not read the config: it would
    # import YAML), lines are text; the level follows the config's once the plan is read.
    log_to_stderr("info", log_format or "text")


def cmd_enroll(args: argparse.Namespace) -> int:
    from agent.enroll import EnrolError, enroll
    from agent.hostinfo import host_facts

    config = _config(args)
    if args.token_file:
        try:
            token = sys.stdin.read() if args.token_file == "-" else open(args.token_file, encoding="utf-8").read()
        except OSError as exc:
            raise CommandError(f"--token-file {args.token_file}: {exc.strerror or exc}", EXIT_USAGE) from exc
    else:
        token = args.token
    try:
        enrolled = enroll(
            config,
            collector_url=args.collector,
            token=token,
            ca_cert=args.ca_cert,
            host=host_facts(),
            force=args.force,
        )
    except EnrolError as exc:
        raise CommandError(str(exc), EXIT_USAGE if exc.usage else EXIT_FAILED) from exc
    except OSError as exc:
        raise CommandError(f"cannot write the state directory {config.state_dir}: {exc}", EXIT_FAILED) from exc
    identity = enrolled.identity
    policy = _first_checkin(config)
    if args.format == "json":
        print_json(
            {**identity.to_dict(), "replaced": enrolled.replaced, "state_dir": config.state_dir, "policy": policy}
        )
    else:
        print(f"enrolled as {identity.agent_id} with {identity.collector_url}")
        if identity.group:
            print(f"group: {identity.group}")
        print(f"policy: {policy}")
        if enrolled.replaced:
            print(f"replaces {enrolled.replaced} (its undelivered results are kept aside in {config.state_dir})")
        print(f"state: {config.state_dir}; start the agent with `rampart-agent run` (or its service)")
    return EXIT_OK


def _first_checkin(config: Any) -> str:
    """Check in at once, so the inventory shows the machine and the policy is here before the first run."""
    from agent.transport import CollectorError
    from agent.worker import Worker, WorkerError

    worker = Worker(config)
    try:
        bundle = worker.checkin()
    except (CollectorError, WorkerError) as exc:
        return f"not fetched yet ({exc}); the agent fetches it at its first check-in"
    finally:
        worker.close()
    if bundle is None:
        return worker.summary.get("policy_error") or "none assigned yet"
    return bundle.describe()


def cmd_run(args: argparse.Namespace) -> int:
    from agent import daemon

    _setup_logging(args.log_format)
    if args.once:
        return daemon.run_once(args.config, args.log_format)
    return daemon.Daemon(args.config, log_format=args.log_format).run_forever()


def _when(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(value)))


def gather_status(config: Any) -> dict[str, Any]:
    import json
    from pathlib import Path

    from agent.policy_cache import PolicyCache, PolicyRefused
    from agent.spool import Spool, SpoolError
    from agent.state import StateError, StatePaths, read_identity

    paths = StatePaths(Path(config.state_dir))
    try:
        identity = read_identity(paths)
    except (StateError, PermissionError) as exc:
        raise CommandError(str(exc), EXIT_FAILED) from exc
    status: dict[str, Any] = {
        "state_dir": str(paths.root),
        "enrolled": identity is not None,
        "agent_id": identity.agent_id if identity else None,
        "collector_url": (config.collector_url or identity.collector_url) if identity else None,
        "group": identity.group if identity else None,
        "enrolled_at": identity.enrolled_at if identity else None,
    }
    if identity is not None:
        try:
            bundle = PolicyCache(paths, identity.collector_public_key, identity.agent_id).load()
            status["policy"] = (
                {
                    "etag": bundle.etag,
                    "issued_at": bundle.issued_at,
                    "policies": [{"id": p.id, "version": p.version, "sha256": p.sha256} for p in bundle.policies],
                    "checks": sum(len(p.checks) for p in bundle.policies),
                }
                if bundle
                else None
            )
        except PolicyRefused as exc:
            status["policy"] = {"error": str(exc)}
    meta: dict[str, Any] = {}
    spool: dict[str, Any] = {"reports": 0, "results": 0, "bytes": 0, "max_bytes": config.spool_max_bytes}
    if paths.spool.exists():
        try:
            with Spool(paths.spool, config.spool_max_bytes) as opened:
                stats = opened.stats()
                meta = opened.meta()
        except (SpoolError, OSError) as exc:
            raise CommandError(f"cannot read the spool: {exc}", EXIT_FAILED) from exc
        spool = {
            "reports": stats.reports,
            "results": stats.results,
            "bytes": stats.bytes,
            "max_bytes": stats.max_bytes,
            "oldest": stats.oldest_created_at,
            "dropped_pending": stats.dropped_pending,
            "rejected_reports": stats.rejected_reports,
        }
    counts = meta.get("last_run_counts")
    status.update(
        last_run={
            "at": _when(meta.get("last_run_at")),
            "results": meta.get("last_run_results"),
            "counts": json.loads(counts) if counts else None,
        },
        last_checkin_at=_when(meta.get("last_checkin_at")),
        last_delivery={
            "at": _when(meta.get("last_delivery_at")),
            "error": meta.get("last_delivery_error"),
            "failures_in_a_row": int(meta.get("delivery_failures") or 0),
            "next_attempt_at": _when(meta.get("next_attempt_at")),
        },
        delivered={
            "reports": int(meta.get("delivered_reports") or 0),
            "results": int(meta.get("delivered_results") or 0),
        },
        spool=spool,
        dropped_total=int(meta.get("dropped_total") or 0),
        refused_by_collector=meta.get("refused"),
        policy_error=meta.get("policy_error"),
        clock_offset_s=float(meta.get("clock_offset_s") or 0),
    )
    return status


def status_problems(status: dict[str, Any]) -> list[str]:
    """What makes `status` exit 1, in words: this agent's results are not reaching the collector."""
    problems = []
    if not status["enrolled"]:
        problems.append("not enrolled: run `rampart-agent enroll`")
    if status["refused_by_collector"]:
        problems.append(f"the collector no longer accepts this agent ({status['refused_by_collector']})")
    delivery, spool = status["last_delivery"], status["spool"]
    if spool["reports"] and delivery["error"]:
        problems.append(
            f"{spool['reports']} report(s) wait in the spool and the last delivery failed "
            f"({delivery['failures_in_a_row']} in a row): {delivery['error']}"
        )
    return problems


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    status = gather_status(config)
    problems = status_problems(status)
    status["problems"] = problems
    healthy = not problems
    if args.format == "json":
        print_json(status)
        return EXIT_OK if healthy else EXIT_FAILED
    policy = status.get("policy")
    if policy is None:
        policy_text = "none yet"
    elif "error" in policy:
        policy_text = f"REFUSED: {policy['error']}"
    else:
        names = ", ".join(f"{p['id']} {p['version']}" for p in policy["policies"]) or "no policies"
        policy_text = f"{names}; {policy['checks']} checks (etag {policy['etag']}, issued {policy['issued_at']})"
    last_run = status["last_run"]
    counts = last_run["counts"] or {}
    delivery = status["last_delivery"]
    spool = status["spool"]
    rows = [
        ("enrolment", f"{status['agent_id']} with {status['collector_url']}" if status["enrolled"] else "NOT ENROLLED"),
        ("group", status["group"] or "-"),
        ("policy", policy_text),
        (
            "last run",
            f"{last_run['at']}: {last_run['results']} results ("
            + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
            + ")"
            if last_run["at"]
            else "never",
        ),
        ("last check-in", status["last_checkin_at"] or "never"),
        ("last delivery", delivery["at"] or "never"),
        (
            "spool",
            f"{spool['reports']} reports, {spool['results']} results, {spool['bytes']} of {spool['max_bytes']} bytes",
        ),
        ("dropped", f"{status['dropped_total']} results (spool full or refused)"),
        ("delivered", f"{status['delivered']['reports']} reports, {status['delivered']['results']} results"),
    ]
    if delivery["error"]:
        rows.append(
            (
                "delivery error",
                f"{delivery['error']} ({delivery['failures_in_a_row']} in a row; next attempt "
                f"{delivery['next_attempt_at'] or 'at the next run'})",
            )
        )
    if status["refused_by_collector"]:
        rows.append(("REFUSED", f"the collector no longer accepts this agent ({status['refused_by_collector']})"))
    if status["policy_error"]:
        rows.append(("policy error", status["policy_error"]))
    print(format_table(("ITEM", "VALUE"), rows))
    for problem in problems:
        print(f"rampart-agent: {printable(problem)}", file=sys.stderr)
    return EXIT_OK if healthy else EXIT_FAILED
