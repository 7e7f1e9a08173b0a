"""`rampart-collector`: the server's command line.

Commands that read or change the collector's state work on its database directly (the config names it),
so they work on the collector host whether or not `serve` is running. Changes are written to the audit
log as made by `cli:<login name>`.

Exit codes: 0 ok, 1 failed, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from checks import __version__
from checks.cliargs import add_config_everywhere
from checks.completion import add_completion_command
from checks.config import ConfigError
from checks.safetext import printable
from collector.cloud import cli as cloud_cli
from collector.commands import admin, base, governance, people, queries, reports, setup


class Parser(argparse.ArgumentParser):
    """argparse, with what it echoes of the command line (an invalid choice, an unknown argument) shown
    with its control characters escaped; subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        super().error(printable(message))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rampart-collector",
        description="Rampart collector: keeps verified results, serves the compliance API, runs cloud checks.",
        epilog="Exit codes: 0 ok, 1 failed, 2 bad usage or input. Run `rampart-collector COMMAND --help` for more.",
    )
    parser.add_argument("--version", action="version", version=f"rampart-collector {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    setup.register(commands)
    admin.register(commands)
    queries.register(commands)
    governance.register(commands)
    people.register(commands)
    reports.register(commands)
    cloud_cli.register(commands)
    add_completion_command(commands, build_parser, "rampart-collector")
    add_config_everywhere(parser)  # before the command and after it, on every command
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # here, not at exit: a reader gone by then is handled below too
        return code
    except BrokenPipeError:
        # The reader (`| head`) went away: not an error of ours (as the agent does). Point stdout at
        # /dev/null so that Python's own flush at exit does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return base.EXIT_OK
    except base.UsageError as exc:
        print(f"rampart-collector: error: {exc.shown()}", file=sys.stderr)
        return base.EXIT_USAGE
    except ConfigError as exc:
        print(f"rampart-collector: error: {printable(str(exc))}", file=sys.stderr)
        return base.EXIT_USAGE
    except base.Failed as exc:
        print(f"rampart-collector: {exc.shown()}", file=sys.stderr)
        return base.EXIT_FAILED
    except KeyboardInterrupt:
        return base.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
