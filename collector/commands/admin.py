"""`enroll-token` and `agents`: enrolling and revoking agents."""

from __future__ import annotations

import argparse
from typing import Any

from checks.output import print_json
from collector.commands.base import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_format,
    cli_actor,
    config_of,
    duration,
    now,
    output,
    read,
    show,
    whole_number,
    write,
)


def register(commands: Any) -> None:
    tokens = commands.add_parser("enroll-token", help="create, list and revoke agent enrolment tokens")
    token_commands = tokens.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = token_commands.add_parser(
        "create",
        help="create a token (printed once)",
        description="Create an enrolment token. It is printed once and stored only as a hash. Agents enrolled "
        "with it join its group, which decides their policies.",
    )
    create.add_argument("--group", help="group the agents join (default: default_group from the config)")
    create.add_argument(
        "--uses", type=whole_number(1, 1_000_000), default=1, help="how many agents may enrol with it (default: 1)"
    )
    create.add_argument(
        "--expires",
        default="24h",
        help="how long it is valid: 30m, 24h, 1.5h, 7d or bare seconds (3600) (default: 24h)",
    )
    create.add_argument("--note", default="", help="a note shown in listings")
    add_format(create)
    create.set_defaults(handler=cmd_token_create)
    listing = token_commands.add_parser("list", help="list tokens with their uses and state")
    add_format(listing)
    listing.set_defaults(handler=cmd_token_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token so that no agent can enrol with it")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the token's id, as `enroll-token list` shows it")
    revoke.set_defaults(handler=cmd_token_revoke)

    agents = commands.add_parser("agents", help="list and revoke enrolled agents")
    agent_commands = agents.add_subparsers(dest="agents_command", metavar="ACTION", required=True)
    agent_list = agent_commands.add_parser("list", help="enrolled agents, with last contact and state")
    agent_list.add_argument("--active", action="store_true", help="leave out revoked agents")
    add_format(agent_list)
    agent_list.set_defaults(handler=cmd_agents_list)
    agent_revoke = agent_commands.add_parser(
        "revoke", help="revoke an agent: its requests are refused from now on, its history is kept"
    )
    agent_revoke.add_argument("agent_id", metavar="AGENT_ID", help="the agent's id, as `agents list` shows it")
    agent_revoke.set_defaults(handler=cmd_agents_revoke)


def cmd_token_create(args: argparse.Namespace) -> int:
    from collector.storage import registry

    valid_for = duration(args.expires)
    group = args.group or config_of(args).default_group
    try:
        secret, listing = write(
            args,
            lambda c: registry.create_token(
                c,
                group=group,
                max_uses=args.uses,
                valid_for=valid_for,
                created_by=cli_actor(),
                now=now(),
                note=args.note,
            ),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.format == "json":
        print_json({**listing, "token": secret})
    else:
        show(
            f"enrolment token {listing['id']} for group {group}: {listing['max_uses']} use(s), "
            f"valid until {listing['expires_at']}"
        )
        print(secret)
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    from collector.storage import registry

    tokens = read(args, lambda c: registry.list_tokens(c, now()))
    output(
        args,
        tokens,
        ("ID", "GROUP", "USES", "EXPIRES", "STATE", "CREATED BY", "NOTE"),
        [
            (t["id"], t["group"], f"{t['uses']}/{t['max_uses']}", t["expires_at"], t["state"], t["created_by"])
            + (t["note"],)
            for t in tokens
        ],
    )
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from collector.storage import registry

    if write(args, lambda c: registry.revoke_token(c, args.token_id, by=cli_actor(), now=now())):
        show(f"revoked enrolment token {args.token_id}")
        return EXIT_OK
    show(f"rampart-collector: no active enrolment token {args.token_id}")
    return EXIT_FAILED


def cmd_agents_list(args: argparse.Namespace) -> int:
    from collector.storage import registry

    agents = read(args, lambda c: registry.list_agents(c, include_revoked=not args.active))
    output(
        args,
        agents,
        ("AGENT", "HOSTNAME", "GROUP", "OS", "LAST SEEN", "STATE"),
        [
            (
                a["agent_id"],
                a["hostname"],
                a["group"],
                " ".join(p for p in (a["os"], a["os_version"]) if p),
                a["last_seen"] or "never",
                f"revoked {a['revoked_at']}" if a["revoked_at"] else "active",
            )
            for a in agents
        ],
    )
    return EXIT_OK


def cmd_agents_revoke(args: argparse.Namespace) -> int:
    from collector.storage import registry

    if write(args, lambda c: registry.revoke_agent(c, args.agent_id, by=cli_actor(), now=now())):
        show(f"revoked agent {args.agent_id}")
        return EXIT_OK
    show(f"rampart-collector: no active agent {args.agent_id}")
    return EXIT_FAILED
