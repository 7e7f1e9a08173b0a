"""`rampart-collector cloud run`: judge the cloud policies now, store the results, print them.

Results are stored in the collector's database like an agent's, subject by subject (the tenant, each
cloud resource); the waivers the collector holds are applied when judging and again when storing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from checks.config import ConfigError
from checks.output import format_table, print_json
from checks.policy.loader import PolicyError
from checks.results import Status, score
from checks.safetext import printable
from collector.cloud.client import Wait, WaitHook
from collector.cloud.config import load_cloud_config
from collector.cloud.run import OK, CloudRun, load_cloud_policies, run_cloud_checks

if TYPE_CHECKING:  # the database stack is imported only when results are stored
    from collector.cloud.store import StoredRun

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SEE_BELOW = "see Run failed below"


def register(subparsers: Any) -> None:
    cloud = subparsers.add_parser(
        "cloud",
        help="Microsoft 365 / Entra ID and Azure checks",
        description="Checks of the tenant and Azure subscriptions named in the config's cloud: section.",
    )
    commands = cloud.add_subparsers(dest="cloud_command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="run the cloud checks now, store and print the results",
        description="Sign in as the configured app registration, judge policies/microsoft365.yaml and "
        "policies/azure.yaml (or cloud.policies) on the tenant and its subscriptions, store the results "
        "and print them. A missing permission or licence is an `error` result naming what to grant.",
        epilog="Exit codes: 0 the run completed (whatever the results), 1 the app could not sign in, "
        "2 bad configuration or policy.",
    )
    run.add_argument("--format", choices=("table", "json"), default="table", help="output (default: table)")
    run.add_argument(
        "--no-store",
        action="store_true",
        help="print the results without opening the database (no waivers applied, nothing stored)",
    )
    run.set_defaults(handler=cmd_cloud_run)


def _progress() -> Callable[[str, str, int, int], None] | None:
    if not sys.stderr.isatty():
        return None
    totals: dict[str, int] = {}

    def show(api: str, path: str, page: int, items: int) -> None:
        totals[path] = totals.get(path, 0) + items
        name = path.rstrip("/").rsplit("/", 1)[-1]
        sys.stderr.write(f"\r\033[K{api} {name}: page {page}, {totals[path]:,} items")
        sys.stderr.flush()

    return show


def _waits(on_terminal: bool) -> WaitHook:
    """Say each wait before it starts, with its length and end: a Retry-After of minutes is no hang.

    On a terminal it takes the progress line (the next page overwrites it); elsewhere it is a line of
    its own on stderr, so that a log shows why the run took as long as it did.
    """

    def show(wait: Wait) -> None:
        until = (dt.datetime.now() + dt.timedelta(seconds=wait.seconds)).strftime("%H:%M:%S")
        text = printable(f"{wait.describe()}, until {until}")
        sys.stderr.write(f"\r\033[K{text}" if on_terminal else f"rampart-collector: {text}\n")
        sys.stderr.flush()

    return show


def _detail(run: CloudRun, reason: str) -> str:
    """A result's detail in the table: a reason every check shares (a refused sign-in) is said once, below."""
    if run.sign_in_error and reason == run.sign_in_error:
        return f"not observed: sign-in failed ({SEE_BELOW})"
    return reason


def iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"


def _print_run_state(run: CloudRun, stored: StoredRun | None, record: dict[str, Any]) -> None:
    """A run that could not observe says so, since when, and that what was known stands.

    Each reason is said once, with the checks it stopped: one refused sign-in stops every check, and
    sixteen copies of it hide what to fix. A sign-in failure itself is said on stderr (the exit status
    goes to stderr with only a pointer here, unless stdout carries JSON.
    """
    if run.status == OK:
        return
    print(f"\nRun {run.status}: {printable(run.reason)}")
    if record:
        since, last = iso(record.get("failing_since")), iso(record.get("last_success_at"))
        print(
            f"Not fully observed since {since}; "
            + (f"last complete run {last}" if last else "no complete run yet")
            + "."
        )
    if stored is not None and stored.standing:
        print(f"{stored.standing} results not replaced: the last known results stand, stale past cloud.stale_after.")
    grouped: dict[str, list[str]] = {}
    for failure in run.failures():
        if failure["reason"] == run.sign_in_error:
            continue
        scope = "" if failure["scope"] == "all" else f" ({failure['scope']})"
        grouped.setdefault(failure["reason"], []).append(failure["check"] + scope)
    for reason, checks in grouped.items():
        print(f"  not observed: {', '.join(checks)}: {printable(reason)}")


def cmd_cloud_run(args: argparse.Namespace) -> int:
    try:
        config = load_cloud_config(getattr(args, "config", None))
        config.validate()
        policies = load_cloud_policies(config)
    except ConfigError as exc:
        print(f"rampart-collector: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except PolicyError as exc:
        issues = "\n".join(printable(str(issue)) for issue in exc.issues)
        print("rampart-collector: error: invalid cloud policy:\n" + issues, file=sys.stderr)
        return EXIT_USAGE
    progress = _progress()
    waits = _waits(on_terminal=progress is not None)
    stored: StoredRun | None = None
    if args.no_store:
        run = run_cloud_checks(config, policies=policies, on_page=progress, on_wait=waits)
    else:
        from collector.cloud.job import run_and_store
        from collector.commands import base

        engine = base.engine_of(base.config_of(args))  # base.Failed (exit 1) when there is no schema
        try:
            run, stored = run_and_store(engine, config, base.now(), policies=policies, on_page=progress, on_wait=waits)
        finally:
            engine.dispose()
    if progress is not None:
        sys.stderr.write("\r\033[K")
    record = (stored.record if stored is not None else None) or {}
    summary = score(run.results, weighted=True)
    counts = {status: sum(1 for r in run.results if r.status is status) for status in Status}
    if args.format == "json":
        print_json(
            {
                "tenant": run.tenant.to_dict(),
                "started_at": run.started_at,
                "duration_s": round(run.duration_s, 3),
                "sign_in_error": run.sign_in_error,
                "status": run.status,
                "reason": run.reason,
                "failures": run.failures(),
                "failing_since": iso(record.get("failing_since")),
                "last_success_at": iso(record.get("last_success_at")),
                "stored": None if stored is None else stored.stored,
                "retired": None if stored is None else stored.retired,
                "standing": None if stored is None else stored.standing,
                "requests": vars(run.stats),
                "counts": {status.value: n for status, n in counts.items()},
                "score": summary.ratio,
                "results": [r.to_dict() for r in run.results],
                "expired_waivers": [w.to_dict() for w in run.expired_waivers],
            }
        )
    else:
        rows = [
            (
                r.status.value,
                r.severity.value,
                r.check_id,
                (r.subject.name or r.subject.id) if r.subject else "",
                r.title if r.status is Status.PASS else _detail(run, r.reason or r.title),
            )
            for r in run.results
        ]
        print(printable(f"Cloud checks for {run.tenant.name} ({run.tenant.id})"))
        print(format_table(("STATUS", "SEVERITY", "CHECK", "SUBJECT", "DETAIL"), rows, coloured=(0, 1)))
        ratio = "n/a" if summary.ratio is None else f"{summary.ratio:.0%}"
        print(
            f"\n{counts[Status.PASS]} pass, {counts[Status.FAIL]} fail, {counts[Status.ERROR]} error, "
            f"{counts[Status.NOT_APPLICABLE]} not applicable, {counts[Status.WAIVED]} waived; "
            f"score {ratio} (weighted by severity); {run.stats.requests} requests, {run.stats.pages} pages, "
            f"{run.stats.retries} retries in {run.duration_s:.1f}s"
            + ("" if stored is None else f"; {stored.stored} results stored, {stored.retired} retired")
        )
        for waiver in run.expired_waivers:
            print(printable(f"expired waiver: {waiver.id} for {waiver.check} expired on {waiver.expires}"))
        _print_run_state(run, stored, record)
    if run.sign_in_error:
        if args.format == "json":
            print(f"rampart-collector: {printable(run.sign_in_error)}", file=sys.stderr)
        else:  # said once, under "Run failed" above
            code = re.search(r"AADSTS\d+", run.sign_in_error)
            print(
                "rampart-collector: the app could not sign in"
                + (f" ({code.group(0)})" if code else "")
                + "; what to fix is under Run failed above",
                file=sys.stderr,
            )
        return EXIT_FAILED
    return EXIT_OK
