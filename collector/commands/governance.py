"""`policy`, `waivers` and `jobs`: what agents are judged by, accepted risks, scheduled work."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from checks.output import print_json
from collector.commands.base import (
    EXIT_OK,
    Failed,
    UsageError,
    add_format,
    cli_actor,
    config_of,
    config_path_of,
    day,
    engine_of,
    now,
    output,
    read,
    show,
    whole_number,
    write,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def register(commands: Any) -> None:
    policy = commands.add_parser("policy", help="store policies and assign them to groups of agents")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    add = policy_commands.add_parser(
        "add", help="validate and store a policy file (a new version of a policy id replaces the old for agents)"
    )
    add.add_argument("file", metavar="FILE", help="policy file (YAML), checked as `rampart-agent policy validate` does")
    add.add_argument("--group", action="append", default=[], help="also assign it to this group (repeatable)")
    add.set_defaults(handler=cmd_policy_add)
    listing = policy_commands.add_parser("list", help="stored policies and their groups")
    add_format(listing)
    listing.set_defaults(handler=cmd_policy_list)
    assign = policy_commands.add_parser("assign", help="agents in GROUP get POLICY")
    assign.add_argument("policy", metavar="POLICY", help="a stored policy's id (`policy list`)")
    assign.add_argument("group", metavar="GROUP", help="the group of agents")
    assign.set_defaults(handler=cmd_policy_assign)
    unassign = policy_commands.add_parser("unassign", help="agents in GROUP no longer get POLICY")
    unassign.add_argument("policy", metavar="POLICY", help="a stored policy's id (`policy list`)")
    unassign.add_argument("group", metavar="GROUP", help="the group of agents")
    unassign.set_defaults(handler=cmd_policy_unassign)

    waivers = commands.add_parser(
        "waivers",
        help="request, approve, reject, revoke and list waivers",
        description="A waiver is requested by one user and approved by another; once approved, the results "
        "it covers are shown as waived until it expires or is revoked. Changes are made as the collector "
        "user of your login's name, or --as USER where collector.cli_users maps your login to USER (a user "
        "with the admin or analyst role); the audit log records your login and the user. Whoever requested "
        "a waiver cannot approve it, under any name.",
    )
    waiver_commands = waivers.add_subparsers(dest="waivers_command", metavar="ACTION", required=True)
    waiver_list = waiver_commands.add_parser("list", help="waivers and their state")
    waiver_list.add_argument(
        "--state",
        choices=("requested", "approved", "rejected", "revoked", "expired"),
        help="only waivers in this state",
    )
    add_format(waiver_list)
    waiver_list.set_defaults(handler=cmd_waivers_list)
    request = waiver_commands.add_parser("request", help="request a waiver")
    request.add_argument("--check", required=True, metavar="CHECK_ID", help="the check to waive")
    request.add_argument("--policy", help="the policy id, when check ids could clash")
    request.add_argument("--host", action="append", default=[], help="agent id or host name pattern (repeatable)")
    request.add_argument("--group", action="append", default=[], help="group (repeatable)")
    request.add_argument("--tenant", action="append", default=[], help="tenant (repeatable)")
    request.add_argument("--resource", action="append", default=[], help="cloud resource pattern (repeatable)")
    request.add_argument("--all", action="store_true", help="every subject")
    request.add_argument(
        "--justification", required=True, help="why the risk is accepted (shown to approvers and auditors)"
    )
    request.add_argument("--expires", type=day, required=True, metavar="DATE", help="last day it applies")
    request.add_argument("--ticket", default="", help="a change or risk ticket reference")
    request.add_argument("--id", help="waiver id (default: generated)")
    request.add_argument("--as", dest="as_user", metavar="USER", help="the requesting user (default: your login)")
    add_format(request)
    request.set_defaults(handler=cmd_waivers_request)
    for action, text in (
        ("approve", "approve a requested waiver (not your own)"),
        ("reject", "reject a requested waiver"),
        ("revoke", "revoke an approved waiver: its results return to their own status"),
    ):
        sub = waiver_commands.add_parser(action, help=text)
        sub.add_argument("waiver_id", metavar="WAIVER_ID", help="the waiver's id (`waivers list`)")
        sub.add_argument("--as", dest="as_user", metavar="USER", help="the user acting (default: your login)")
        add_format(sub)
        sub.set_defaults(handler=cmd_waivers_decide, action=action)

    jobs = commands.add_parser("jobs", help="scheduled jobs (retention): their runs, or run them now")
    job_commands = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    run = job_commands.add_parser(
        "run", help="run due jobs now (with --force, run them whatever their schedule); once across replicas"
    )
    run.add_argument("names", nargs="*", metavar="JOB", help="only these jobs")
    run.add_argument("--force", action="store_true", help="make the jobs due first")
    add_format(run)
    run.set_defaults(handler=cmd_jobs_run)
    runs = job_commands.add_parser("list", help="recent runs, newest first")
    runs.add_argument(
        "--limit", type=whole_number(1, 1000), default=20, help="at most this many runs (1-1000, default 20)"
    )
    add_format(runs)
    runs.set_defaults(handler=cmd_jobs_list)


# --- policies ------------------------------------------------------------------------------------------


def cmd_policy_add(args: argparse.Namespace) -> int:
    from checks.policy.loader import PolicyError, load_policy_file
    from collector.storage import policies

    try:
        policy = load_policy_file(args.file)
    except PolicyError as exc:
        raise UsageError("invalid policy:", *(str(issue) for issue in exc.issues)) from None
    except RecursionError:  # YAML nested beyond what its parser can follow
        raise UsageError(f"invalid policy: {args.file} nests too deeply to be read") from None

    def work(connection: Connection) -> dict[str, Any]:
        stored = policies.add(connection, policy, by=cli_actor(), now=now(), source=args.file)
        for group in args.group:
            policies.assign(connection, group, policy.id, by=cli_actor(), now=now())
        return stored

    stored = write(args, work)
    state = "stored" if stored["added"] else "already stored"
    show(f"{state}: policy {policy.id} {policy.version} ({len(policy.checks)} checks), sha256 {policy.sha256}")
    for group in args.group:
        show(f"assigned to group {group}")
    return EXIT_OK


def cmd_policy_list(args: argparse.Namespace) -> int:
    from collector.storage import policies

    stored = read(args, policies.list_policies)
    output(
        args,
        stored,
        ("POLICY", "VERSION", "CHECKS", "GROUPS", "SHA256", "ADDED"),
        [
            (p["id"], p["version"], p["checks"], ", ".join(p["groups"]) or "-", p["sha256"][:16], p["added_at"])
            for p in stored
        ],
    )
    return EXIT_OK


def cmd_policy_assign(args: argparse.Namespace) -> int:
    from collector.storage import policies

    try:
        changed = write(args, lambda c: policies.assign(c, args.group, args.policy, by=cli_actor(), now=now()))
    except LookupError as exc:
        raise Failed(str(exc)) from None
    show(f"policy {args.policy} {'assigned to' if changed else 'was already assigned to'} group {args.group}")
    return EXIT_OK


def cmd_policy_unassign(args: argparse.Namespace) -> int:
    from collector.storage import policies

    if not write(args, lambda c: policies.unassign(c, args.group, args.policy, by=cli_actor(), now=now())):
        raise Failed(f"policy {args.policy} is not assigned to group {args.group}")
    show(f"policy {args.policy} no longer assigned to group {args.group}")
    return EXIT_OK


# --- waivers -------------------------------------------------------------------------------------------


def _acting_as(args: argparse.Namespace) -> tuple[str, str]:
    """(the user this command acts as, the actor the audit log records): --as USER only where the
    config lets this login act as USER."""
    from collector.commands.identity import allowed_users, os_login

    login = os_login()
    user = args.as_user or login
    allowed = allowed_users(config_of(args).cli_users, login)
    if user not in allowed:
        raise UsageError(
            f"--as {user}: the login {login} may act only as {', '.join(allowed)} "
            f"(collector.cli_users in the config maps logins to the users they may act as)"
        )
    return user, f"cli:{login}"


def _acting_user(connection: Connection, name: str) -> str:
    """The user acted as must exist, be enabled, and be allowed to handle waivers."""
    import sqlalchemy as sa

    from collector.security import Permission, allowed
    from collector.storage.models import users

    row = connection.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None or row.disabled_at is not None:
        raise UsageError(f"acting as {name}: no such active user (see `rampart-collector users list`)")
    if not allowed(row.role, Permission.WAIVE):
        raise UsageError(f"acting as {name}: the {row.role} role may not handle waivers")
    return str(row.name)


def _waiver_errors(work: Any) -> Any:
    from collector.storage.waivers import WaiverError

    try:
        return work()
    except WaiverError as exc:
        if exc.code in ("bad_waiver", "unknown_check"):
            raise UsageError(exc.message) from None
        raise Failed(exc.message) from None


def _show_waiver(args: argparse.Namespace, waiver: dict[str, Any]) -> None:
    if args.format == "json":
        print_json(waiver)
    else:
        show(f"waiver {waiver['id']} for {waiver['check']}: {waiver['state']} (expires {waiver['expires']})")


def cmd_waivers_list(args: argparse.Namespace) -> int:
    from collector.storage import waivers

    items = read(args, lambda c: waivers.list_waivers(c, args.state))
    output(
        args,
        items,
        ("ID", "CHECK", "STATE", "EXPIRES", "REQUESTED BY", "APPROVED BY", "SCOPE", "JUSTIFICATION"),
        [
            (
                w["id"],
                w["check"],
                w["state"],
                w["expires"],
                w["requested_by"],
                w["approved_by"] or "",
                "; ".join(f"{k}: {v if isinstance(v, bool) else ', '.join(v)}" for k, v in w["scope"].items()),
                w["justification"],
            )
            for w in items
        ],
    )
    return EXIT_OK


def cmd_waivers_request(args: argparse.Namespace) -> int:
    from collector.storage import waivers
    from collector.storage.policies import known_checks

    scope: dict[str, Any] = {
        key: value
        for key, value in (
            ("hosts", args.host),
            ("groups", args.group),
            ("tenants", args.tenant),
            ("resources", args.resource),
        )
        if value
    }
    if args.all:
        scope["all"] = True
    if not scope:
        raise UsageError("name what the waiver covers: --host, --group, --tenant, --resource or --all")
    user, actor = _acting_as(args)

    def work(connection: Connection) -> dict[str, Any]:
        return waivers.request(
            connection,
            check_id=args.check,
            policy_id=args.policy,
            scope=scope,
            justification=args.justification,
            expires=args.expires,
            requested_by=_acting_user(connection, user),
            now=now(),
            ticket=args.ticket,
            waiver_id=args.id,
            known_checks=known_checks(connection),
            actor=actor,
        )

    _show_waiver(args, _waiver_errors(lambda: write(args, work)))
    return EXIT_OK


def cmd_waivers_decide(args: argparse.Namespace) -> int:
    from collector.storage import waivers

    user, actor = _acting_as(args)

    def work(connection: Connection) -> dict[str, Any]:
        name = _acting_user(connection, user)
        if args.action == "approve":
            return waivers.approve(connection, args.waiver_id, approver=name, now=now(), actor=actor)
        return waivers.close(connection, args.waiver_id, by=name, now=now(), action=args.action, actor=actor)

    _show_waiver(args, _waiver_errors(lambda: write(args, work)))
    return EXIT_OK


# --- jobs ----------------------------------------------------------------------------------------------


def cmd_jobs_run(args: argparse.Namespace) -> int:
    from collector import jobs
    from collector.storage.engine import write_tx
    from collector.storage.models import job_schedule

    known = jobs.build_jobs(config_path_of(args))  # the cloud job reads its section from the same file
    unknown = [name for name in args.names if name not in known]
    if unknown:
        raise UsageError(f"no job {unknown[0]!r} (jobs: {', '.join(sorted(known))})")
    config = config_of(args)
    engine = engine_of(config)
    try:
        if args.force:
            with write_tx(engine) as connection:
                for name in args.names or list(known):
                    connection.execute(
                        job_schedule.update().where(job_schedule.c.name == name).values(next_run_at=now())
                    )
        ran = jobs.run_due(engine, config, cli_actor(), only=set(args.names) if args.names else None, jobs=known)
    finally:
        engine.dispose()
    if args.format == "json":
        print_json(ran)
    elif not ran:
        print("no job was due (another collector process may have run it; use --force to run now)")
    for outcome in ran if args.format != "json" else []:
        show(f"{outcome['job']}: {outcome['status']} {outcome['detail']}")
    return EXIT_OK if all(r["status"] == "ok" for r in ran) else 1


def cmd_jobs_list(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from collector.storage.models import iso, job_runs

    def work(connection: Connection) -> list[dict[str, Any]]:
        rows = connection.execute(sa.select(job_runs).order_by(job_runs.c.id.desc()).limit(args.limit))
        return [
            {
                "job": r.name,
                "holder": r.holder,
                "started_at": iso(r.started_at),
                "finished_at": iso(r.finished_at),
                "status": r.status,
                "detail": r.detail,
            }
            for r in rows
        ]

    runs = read(args, work)
    output(
        args,
        runs,
        ("JOB", "STARTED", "FINISHED", "STATUS", "HOLDER"),
        [(r["job"], r["started_at"], r["finished_at"] or "", r["status"], r["holder"]) for r in runs],
    )
    return EXIT_OK
