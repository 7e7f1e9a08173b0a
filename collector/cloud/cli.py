"""`rampart-collector cloud run`: judge the cloud policies now, store the results, print them.

Results are stored in the collector's database like an agent's, subject by subject (the tenant, each
cloud resource); the waivers the collector holds are applied when judging and again when storing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from checks.config import ConfigError
from checks.output import format_table, print_json
from checks.policy.loader import PolicyError
from checks.results import Status, score
from checks.safetext import printable
from collector.cloud.config import load_cloud_config
from collector.cloud.run import OK, CloudRun, load_cloud_policies, run_cloud_checks

if TYPE_CHECKING:  # the database stack is imported only when results are stored
    from collector.cloud.store import StoredRun

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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


def iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"


def _print_run_state(run: CloudRun, stored: StoredRun | None, record: dict[str, Any]) -> None:
    """A run that could not observe says so, since when, and that what was known stands."""
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
    for failure in run.failures():
        scope = "" if failure["scope"] == "all" else f" ({failure['scope']})"
        print(f"  not observed: {failure['check']}{scope}: {printable(failure['reason'])}")


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
    stored: StoredRun | None = None
    if args.no_store:
        run = run_cloud_checks(config, policies=policies, on_page=progress)
    else:
        from collector.cloud.job import run_and_store
        from collector.commands import base

        engine = base.engine_of(base.config_of(args))  # base.Failed (exit 1) when there is no schema
        try:
            run, stored = run_and_store(engine, config, base.now(), policies=policies, on_page=progress)
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
                r.title if r.status is Status.PASS else (r.reason or r.title),
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
        print(f"rampart-collector: {printable(run.sign_in_error)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
