"""`summary`, `hosts`, `host`, `check` and `trends`: the compliance views for people (tables) and machines."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from checks.output import format_table, print_json, remediation_rows
from checks.safetext import printable
from collector.commands.base import (
    EXIT_OK,
    Failed,
    UsageError,
    add_format,
    config_of,
    day,
    now,
    read,
    show,
    whole_number,
)

# The same bounds as the API's (collector/storage/queries/common.py, kept out of the import for --help's speed).
MAX_OFFSET = 1_000_000_000
MAX_SEARCH = 200

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

STATUS_CHOICES = ("pass", "fail", "error", "not_applicable", "waived")


def register(commands: Any) -> None:
    summary = commands.add_parser(
        "summary",
        help="compliance overall and by policy, group, check or framework control",
        description="Compliance = passed / (passed + failed); errors, not applicable and waived are counted "
        "beside it. --as-of shows the state at the end of a past day (UTC).",
    )
    summary.add_argument("--as-of", type=day, metavar="DATE", help="state at the end of this day (YYYY-MM-DD)")
    summary.add_argument("--group", help="only hosts in this group")
    summary.add_argument("--policy", help="only this policy")
    summary.add_argument(
        "--by",
        choices=("policy", "group", "check", "control"),
        action="append",
        help="breakdowns to show (repeatable; default: policy, group and the 10 most failing checks)",
    )
    add_format(summary)
    summary.set_defaults(handler=cmd_summary)

    hosts = commands.add_parser("hosts", help="hosts with last contact, stale flag and compliance")
    hosts.add_argument("--group", help="only this group")
    hosts.add_argument("--stale", action="store_true", help="only hosts not heard from within stale_after_hours")
    hosts.add_argument("--search", help=f"part of a host name or agent id, literally (up to {MAX_SEARCH} characters)")
    hosts.add_argument("--include-revoked", action="store_true", help="list revoked agents too")
    hosts.add_argument("--limit", type=whole_number(1, 1000), default=100, help="at most this many (1-1000)")
    hosts.add_argument("--offset", type=whole_number(0, MAX_OFFSET), default=0, help="skip this many")
    hosts.add_argument("--as-of", type=day, metavar="DATE", help="hosts enrolled then, results at the end of this day")
    add_format(hosts)
    hosts.set_defaults(handler=cmd_hosts)

    host = commands.add_parser("host", help="one host's results with the observed facts")
    host.add_argument("host", metavar="ID", help="agent id, or host name when unique")
    host.add_argument("--as-of", type=day, metavar="DATE", help="results at the end of this day")
    host.add_argument("--status", choices=STATUS_CHOICES, help="only results with this status")
    add_format(host)
    host.set_defaults(handler=cmd_host)

    check = commands.add_parser("check", help="one check: counts and the subjects failing it (or in another status)")
    check.add_argument("check", metavar="ID", help="check id")
    check.add_argument("--policy", help="policy id (needed when several policies have this check id)")
    check.add_argument(
        "--status", choices=STATUS_CHOICES, default="fail", help="subjects in this status (default: fail)"
    )
    check.add_argument("--as-of", type=day, metavar="DATE", help="state at the end of this day")
    check.add_argument("--group", help="only this group")
    check.add_argument("--limit", type=whole_number(1, 1000), default=100, help="at most this many (1-1000)")
    check.add_argument("--offset", type=whole_number(0, MAX_OFFSET), default=0, help="skip this many")
    add_format(check)
    check.set_defaults(handler=cmd_check)

    trends = commands.add_parser("trends", help="compliance at the end of each day, week or month")
    trends.add_argument(
        "--period",
        choices=("day", "week", "month"),
        default="day",
        help="one point per day, week or month (default: day)",
    )
    trends.add_argument("--from", dest="start", type=day, metavar="DATE", help="first day (default: a span back)")
    trends.add_argument("--to", dest="end", type=day, metavar="DATE", help="last day (default: today)")
    trends.add_argument("--group", help="only hosts in this group")
    trends.add_argument("--policy", help="only this policy")
    trends.add_argument("--check", help="only this check id")
    add_format(trends)
    trends.set_defaults(handler=cmd_trends)


def _query(args: argparse.Namespace, work: Any, as_of: dt.date | None = None) -> Any:
    from collector.storage.queries.common import QueryError, check_as_of

    config = config_of(args)
    try:
        check_as_of(as_of, now().date(), config.retention_days, "--as-of")
        return read(args, work)
    except QueryError as exc:
        if exc.code == "ambiguous" and exc.candidates:
            # Bad input, as a wrong name is: exit 2, with what to give instead (each agent id).
            rows = [
                (c["agent_id"], c["group"], c["last_seen"] or "never", "revoked" if c["revoked_at"] else "active")
                for c in exc.candidates
            ]
            table = format_table(("AGENT ID", "GROUP", "LAST SEEN", "STATE"), rows).splitlines()
            raise UsageError(exc.message + ":", *table) from None
        if exc.code in ("not_found", "ambiguous"):
            raise Failed(exc.message) from None
        raise UsageError(exc.message) from None


def _stale_after(args: argparse.Namespace) -> dt.timedelta:
    return dt.timedelta(hours=config_of(args).stale_after_hours)


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _score_cells(item: dict[str, Any]) -> tuple[Any, ...]:
    return (
        _ratio(item["compliance"]),
        item["pass"],
        item["fail"],
        item["error"],
        item["not_applicable"],
        item["waived"],
    )


SCORE_HEADERS = ("COMPLIANCE", "PASS", "FAIL", "ERROR", "N/A", "WAIVED")


def cmd_summary(args: argparse.Namespace) -> int:
    from collector.storage.queries import common
    from collector.storage.queries import summary as summary_view

    stale_after = _stale_after(args)
    data = _query(
        args,
        lambda c: summary_view.summary(
            c, now=now(), stale_after=stale_after, as_of=args.as_of, filters=common.Filters(args.group, args.policy)
        ),
        args.as_of,
    )
    if args.format == "json":
        print_json(data)
        return EXIT_OK
    totals, hosts = data["totals"], data["hosts"]
    when = f" as at the end of {data['as_of']}" if data["as_of"] else ""
    weighted = totals.get("compliance_weighted")
    show(
        f"Compliance{when}: {_ratio(totals['compliance'])}"
        + (f" (weighted by severity {_ratio(weighted)})" if weighted is not None else "")
        + f"; {totals['pass']} pass, {totals['fail']} fail, {totals['error']} error, "
        f"{totals['not_applicable']} not applicable, {totals['waived']} waived"
    )
    # Past contact times are not kept, so a stale count exists only for now.
    stale = (
        f"{hosts['stale']} stale (not heard from in {hosts['stale_after_hours']:g}h)"
        if hosts["stale"] is not None
        else "staleness is known only for now"
    )
    show(f"Hosts: {hosts['total']}, {stale}" + (f"; filtered to group {args.group}" if args.group else ""))
    for cloud in data.get("cloud") or []:
        show(_cloud_line(cloud))
    if not (args.group or args.policy or args.as_of or data.get("cloud")):
        for line in _next_steps(config_of(args), hosts["total"], sum(totals[s] for s in STATUS_CHOICES)):
            show(line)
    wanted = args.by or ["policy", "group", "top"]
    if "policy" in wanted and data["by_policy"]:
        print()
        print(format_table(("POLICY",) + SCORE_HEADERS, [(p["policy"],) + _score_cells(p) for p in data["by_policy"]]))
    if "group" in wanted and data["by_group"]:
        print()
        print(format_table(("GROUP",) + SCORE_HEADERS, [(g["group"],) + _score_cells(g) for g in data["by_group"]]))
    checks = data["by_check"]
    if "top" in wanted:
        checks = [c for c in checks if c["fail"]][:10]
    if ("top" in wanted or "check" in wanted) and checks:
        print()
        print(
            format_table(
                ("CHECK", "SEVERITY", "COMPLIANCE", "FAIL", "ERROR", "TITLE"),
                [
                    (c["check"], c["severity"], _ratio(c["compliance"]), c["fail"], c["error"], c["title"])
                    for c in checks
                ],
                coloured=(1,),
            )
        )
    if "control" in wanted and data["by_control"]:
        print()
        print(
            format_table(
                ("FRAMEWORK", "CONTROL") + SCORE_HEADERS,
                [(c["framework"], c["control"]) + _score_cells(c) for c in data["by_control"]],
            )
        )
    return EXIT_OK


def _next_steps(config: Any, host_count: int, result_count: int) -> list[str]:
    """What to do next on a collector with nothing to show yet (a first run): enrol, then run the agent."""
    if result_count:
        return []
    _cert, _key, ca = config.tls_paths()
    scheme = "https" if config.tls else "http"
    # The address agents reach: listening on every address (or loopback only) says nothing of the host's name.
    shown_host = "COLLECTOR-HOST" if config.listen_host in ("0.0.0.0", "::", "") else config.listen_host
    url = f"{scheme}://{shown_host}:{config.listen_port}"
    if host_count:
        return [
            "",
            f"No results yet from the {host_count} enrolled agent(s). On each machine:",
            "  rampart-agent run --once      check in, run the assigned policy's checks, deliver the results",
            "  rampart-agent status          the last run, delivery and spool, when nothing arrives",
        ]
    return [
        "",
        "No agents yet. Next steps:",
        "  1. rampart-collector serve    (or its service; `rampart-collector init` first on a new collector)",
        f"  2. rampart-collector enroll-token create [--group GROUP]    a one-time token (default group: "
        f"{config.default_group})",
        f"  3. on each machine: rampart-agent enroll --collector {url} --token-file FILE --ca-cert {ca}",
        "     (copy the CA certificate there), then `rampart-agent run` (or its service)",
        "  The results show here after the agent's first delivery; `rampart-collector policy list` shows "
        "what each group is checked against.",
    ]


def _cloud_line(cloud: dict[str, Any]) -> str:
    """One tenant's cloud checks: whether the last run observed everything, and how old what is known is."""
    line = f"Cloud (tenant {printable(cloud['tenant'])}): last run {cloud['last_run_at']} {cloud['status']}"
    if cloud["status"] != "ok":
        line += f": {printable(cloud['reason'])}; not fully observed since {cloud['failing_since']}"
        line += f", last complete run {cloud['last_success_at'] or 'never'}"
    if cloud["stale_results"]:
        line += (
            f"; {cloud['stale_results']} of {cloud['results']} results stale (older than "
            f"{cloud['stale_after_hours']:g}h, oldest {cloud['oldest_result_at']})"
        )
    return line


def cmd_hosts(args: argparse.Namespace) -> int:
    from collector.storage.queries import hosts as hosts_view

    stale_after = _stale_after(args)
    data = _query(
        args,
        lambda c: hosts_view.hosts(
            c,
            now=now(),
            stale_after=stale_after,
            group=args.group,
            stale_only=args.stale,
            search=args.search,
            include_revoked=args.include_revoked,
            limit=args.limit,
            offset=args.offset,
            as_of=args.as_of,
        ),
        args.as_of,
    )
    if args.format == "json":
        print_json(data)
        return EXIT_OK
    if data["hosts"] and args.as_of:
        print(f"Hosts as at the end of {args.as_of.isoformat()} (UTC):")
    print(
        format_table(
            ("AGENT", "HOSTNAME", "GROUP", "OS", "LAST SEEN", "STALE", "COMPLIANCE", "FAIL", "ERROR"),
            [
                (
                    h["agent_id"],
                    h["hostname"],
                    h["group"],
                    h["os"],
                    h["last_seen"] or "never",
                    "stale" if h["stale"] else "",
                    _ratio(h["compliance"]),
                    h["fail"],
                    h["error"],
                )
                for h in data["hosts"]
            ],
        )
    )
    shown = len(data["hosts"])
    if data["total"] > shown:
        print()
        print(f"{shown} of {data['total']} hosts (use --offset {args.offset + shown} for more)")
    return EXIT_OK


def _facts(observed: Any, limit: int = 100) -> str:
    if observed is None:
        return ""
    text = json.dumps(observed, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cmd_host(args: argparse.Namespace) -> int:
    from collector.storage.queries import host as host_view

    stale_after = _stale_after(args)

    def work(connection: Connection) -> dict[str, Any]:
        return host_view.host(
            connection, args.host, now=now(), stale_after=stale_after, as_of=args.as_of, status=args.status
        )

    data = _query(args, work, args.as_of)
    if args.format == "json":
        print_json(data)
        return EXIT_OK
    info = data["host"]
    when = f" as at the end of {data['as_of']}" if data["as_of"] else ""
    show(
        f"{info['hostname'] or info['agent_id']} ({info['agent_id']}, group {info['group']}, "
        f"{' '.join(p for p in (info['os'], info['os_version']) if p) or 'unknown OS'}){when}"
    )
    show(
        f"last seen {info['last_seen'] or 'never'}{' (stale)' if info['stale'] else ''}; "
        f"compliance {_ratio(data['score']['compliance'])}, "
        f"{data['score']['fail']} fail, {data['score']['error']} error"
        + (f"; revoked {info['revoked_at']}" if info["revoked_at"] else "")
    )
    print()
    print(
        format_table(
            ("STATUS", "SEVERITY", "CHECK", "SINCE", "OBSERVED", "DETAIL"),
            [
                (
                    r["status"],
                    r["severity"],
                    r["check"],
                    r["since"],
                    _facts(r["observed"], 60),
                    r["title"] if r["status"] == "pass" else (r["reason"] or r["title"]),
                )
                for r in data["results"]
            ],
            coloured=(0, 1),
        )
    )
    fixes = remediation_rows([(r["check"], r["status"], r.get("remediation")) for r in data["results"]])
    if fixes:
        print()
        print("To fix (the whole text: --format json, or `rampart-collector check ID`):")
        print(format_table(("CHECK", "REMEDIATION"), fixes))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from collector.storage.queries import checks as check_view

    def work(connection: Connection) -> dict[str, Any]:
        return check_view.check(
            connection,
            args.check,
            policy_id=args.policy,
            status=args.status,
            as_of=args.as_of,
            group=args.group,
            limit=args.limit,
            offset=args.offset,
        )

    data = _query(args, work, args.as_of)
    if args.format == "json":
        print_json(data)
        return EXIT_OK
    score = data["score"]
    when = f" as at the end of {data['as_of']}" if data["as_of"] else ""
    show(f"{data['check']} ({data['policy']}, {data['severity'] or 'unknown severity'}): {data['title']}{when}")
    show(
        f"compliance {_ratio(score['compliance'])}: {score['pass']} pass, {score['fail']} fail, "
        f"{score['error']} error, {score['not_applicable']} not applicable, {score['waived']} waived"
    )
    frameworks = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in sorted(data["frameworks"].items()))
    if frameworks:
        show(f"frameworks: {frameworks}")
    if data.get("remediation"):
        # The whole text, one shown line per line written (each escaped: a policy is text from people).
        print("remediation:")
        for line in str(data["remediation"]).strip().splitlines():
            show(f"  {line}")
    print()
    print(f"subjects with status {data['status']}:")
    print(
        format_table(
            ("SUBJECT", "NAME", "GROUP", "SINCE", "DETAIL"),
            [
                (s["id"], s["name"], s["group"], s["since"], s.get("reason") or _facts(s.get("observed")))
                for s in data["subjects"]
            ],
        )
    )
    return EXIT_OK


def cmd_trends(args: argparse.Namespace) -> int:
    from collector.storage.queries import common
    from collector.storage.queries import trends as trend_view

    try:
        start, end = trend_view.trend_range(
            args.period, args.start, args.end, now().date(), config_of(args).retention_days, ("--from", "--to")
        )
    except common.QueryError as exc:
        raise UsageError(exc.message) from None
    data = _query(
        args,
        lambda c: trend_view.trends(
            c,
            period=args.period,
            start=start,
            end=end,
            filters=common.Filters(args.group, args.policy),
            check_id=args.check,
        ),
    )
    if args.format == "json":
        print_json(data)
        return EXIT_OK
    print(format_table(("DATE",) + SCORE_HEADERS, [(p["date"],) + _score_cells(p) for p in data["points"]]))
    return EXIT_OK
