"""`users`, `api-token` and `audit`: who may use the API, and what was done."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from checks.output import print_json
from collector.commands.base import (
    EXIT_FAILED,
    EXIT_OK,
    Failed,
    UsageError,
    add_format,
    cli_actor,
    duration,
    now,
    output,
    read,
    show,
    whole_number,
    write,
)
from collector.commands.queries import MAX_OFFSET


def register(commands: Any) -> None:
    users = commands.add_parser("users", help="add, list, disable and enable users (admin, analyst, auditor)")
    user_commands = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = user_commands.add_parser(
        "add",
        help="add a user with a role",
        description="Roles: admin (everything), analyst (read, request and approve waivers), auditor (read, "
        "export, the audit log). Give the user an API token with `api-token create --user NAME`.",
    )
    add.add_argument("name", help="the user's name (they sign in with it)")
    add.add_argument("--role", choices=("admin", "analyst", "auditor"), required=True, help="what the user may do")
    add_format(add)
    add.set_defaults(handler=cmd_users_add)
    listing = user_commands.add_parser("list", help="users and their roles")
    add_format(listing)
    listing.set_defaults(handler=cmd_users_list)
    disable = user_commands.add_parser(
        "disable", help="disable a user: their API tokens stop working (not the last enabled admin)"
    )
    disable.add_argument("name", help="the user's name")
    disable.set_defaults(handler=cmd_users_disable)
    set_password = user_commands.add_parser(
        "set-password",
        help="set a user's password for the dashboard's sign-in (ends their dashboard sessions)",
        description="Asked twice on a terminal; or read from --password-file (- for standard input). At least "
        "12 characters; stored as an argon2id hash only.",
    )
    set_password.add_argument("name", help="the user's name")
    set_password.add_argument("--password-file", metavar="PATH", help="read the password from PATH (- : stdin)")
    set_password.set_defaults(handler=cmd_users_set_password)
    enable = user_commands.add_parser("enable", help="enable a disabled user again")
    enable.add_argument("name", help="the user's name")
    enable.set_defaults(handler=cmd_users_enable)

    tokens = commands.add_parser("api-token", help="create, list and revoke API tokens")
    token_commands = tokens.add_subparsers(dest="api_token_command", metavar="ACTION", required=True)
    create = token_commands.add_parser("create", help="create a token for a user (printed once)")
    create.add_argument("--user", required=True, help="the user the token acts as")
    create.add_argument("--label", default="", help="what the token is for")
    create.add_argument("--expires", help="valid for: 90d, 12h, 30m or bare seconds (86400) (default: until revoked)")
    add_format(create)
    create.set_defaults(handler=cmd_token_create)
    token_list = token_commands.add_parser("list", help="tokens (never their secrets)")
    token_list.add_argument("--user", help="only this user's tokens")
    add_format(token_list)
    token_list.set_defaults(handler=cmd_token_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the token's id, as `api-token list` shows it")
    revoke.set_defaults(handler=cmd_token_revoke)

    audit = commands.add_parser("audit", help="the audit log: who changed or exported what, and when")
    audit.add_argument("--actor", help="only this actor, e.g. user:alice or cli:root")
    audit.add_argument("--action", help="only this action, e.g. waiver.approve")
    audit.add_argument(
        "--since",
        type=moment,
        metavar="WHEN",
        help="only entries at or after this moment, ISO 8601 (2026-12-01, 2026-12-01T09:30, with an offset or Z; "
        "UTC when it has none), as the API's `since`",
    )
    audit.add_argument("--limit", type=whole_number(1, 1000), default=50, help="newest first, at most this many")
    audit.add_argument("--offset", type=whole_number(0, MAX_OFFSET), default=0, help="skip this many (newest first)")
    add_format(audit)
    audit.set_defaults(handler=cmd_audit)


def _user_errors(work: Any) -> Any:
    from collector.storage.users import UserError

    try:
        return work()
    except UserError as exc:
        if exc.code in ("not_found", "user_disabled", "duplicate_user", "last_admin", "cannot_disable_self"):
            raise Failed(exc.message) from None
        raise UsageError(exc.message) from None


def cmd_users_add(args: argparse.Namespace) -> int:
    from collector.storage import users

    user = _user_errors(
        lambda: write(args, lambda c: users.add_user(c, args.name, args.role, by=cli_actor(), now=now()))
    )
    if args.format == "json":
        print_json(user)
    else:
        show(f"added user {user['name']} ({user['role']})")
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace) -> int:
    from collector.storage import users

    people = read(args, users.list_users)
    output(
        args,
        people,
        ("NAME", "ROLE", "CREATED", "STATE"),
        [
            (u["name"], u["role"], u["created_at"], f"disabled {u['disabled_at']}" if u["disabled_at"] else "active")
            for u in people
        ],
    )
    return EXIT_OK


def cmd_users_disable(args: argparse.Namespace) -> int:
    from collector.storage import users

    changed = _user_errors(lambda: write(args, lambda c: users.disable_user(c, args.name, by=cli_actor(), now=now())))
    show(f"disabled user {args.name}" if changed else f"user {args.name} was already disabled")
    return EXIT_OK


def cmd_users_enable(args: argparse.Namespace) -> int:
    from collector.storage import users

    changed = _user_errors(lambda: write(args, lambda c: users.enable_user(c, args.name, by=cli_actor(), now=now())))
    show(f"enabled user {args.name}" if changed else f"user {args.name} was already enabled")
    return EXIT_OK


def cmd_users_set_password(args: argparse.Namespace) -> int:
    from collector.dashboard.passwords import read_new_password
    from collector.storage import sessions

    password = read_new_password(args.password_file)
    _user_errors(
        lambda: write(args, lambda c: sessions.set_password(c, args.name, password, by=cli_actor(), now=now()))
    )
    print(f"password set for {args.name} (any dashboard session of theirs was ended)")
    return EXIT_OK


def cmd_token_create(args: argparse.Namespace) -> int:
    from collector.storage import users

    valid_for = duration(args.expires) if args.expires else None
    secret, token = _user_errors(
        lambda: write(
            args,
            lambda c: users.create_token(
                c, args.user, by=cli_actor(), now=now(), label=args.label, valid_for=valid_for
            ),
        )
    )
    if args.format == "json":
        print_json({**token, "token": secret})
    else:
        show(
            f"API token {token['id']} for {token['user']} ({token['role']}), expires {token['expires_at'] or 'never'}:"
        )
        print(secret)
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    from collector.storage import users

    tokens = read(args, lambda c: users.list_tokens(c, args.user))
    output(
        args,
        tokens,
        ("ID", "USER", "ROLE", "LABEL", "CREATED", "EXPIRES", "STATE"),
        [
            (
                t["id"],
                t["user"],
                t["role"],
                t["label"],
                t["created_at"],
                t["expires_at"] or "never",
                f"revoked {t['revoked_at']}" if t["revoked_at"] else "active",
            )
            for t in tokens
        ],
    )
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from collector.storage import users

    if write(args, lambda c: users.revoke_token(c, args.token_id, by=cli_actor(), now=now())):
        show(f"revoked API token {args.token_id}")
        return EXIT_OK
    show(f"rampart-collector: no active API token {args.token_id}")
    return EXIT_FAILED


def cmd_audit(args: argparse.Namespace) -> int:
    from collector.storage import audit

    entries = read(
        args,
        lambda c: audit.entries(
            c, since=args.since, actor=args.actor, action=args.action, limit=args.limit, offset=args.offset
        ),
    )
    output(
        args,
        entries,
        ("AT", "ACTOR", "ACTION", "TARGET", "DETAILS"),
        [(e["at"], e["actor"], e["action"], e["target"], _details(e["details"])) for e in entries],
    )
    return EXIT_OK


def moment(text: str) -> dt.datetime:
    """An argparse type: an ISO 8601 date or date and time, in UTC (without a zone: taken as UTC, as the API
    takes its `since`), naive as the audit log stores it."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text[:60]!r} is not an ISO 8601 date or time (e.g. 2026-12-01 or 2026-12-01T09:30Z)"
        ) from None
    if value.tzinfo is not None:
        try:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:  # 9999-12-31T23:00-05:00: after the last instant in UTC
            raise argparse.ArgumentTypeError(f"{text[:60]!r} is out of range in UTC") from None
    return value


def _details(details: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in details.items() if v not in (None, "", [], {}))
