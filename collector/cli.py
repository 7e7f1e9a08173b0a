"""`rampart-collector`: the server's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from checks import __version__
from collector.cloud import cli as cloud_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rampart-collector",
        description="Rampart collector: keeps verified results, serves the compliance API, runs cloud checks.",
        epilog="Exit codes: 0 ok, 1 failed, 2 bad usage or input.",
    )
    parser.add_argument("--version", action="version", version=f"rampart-collector {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", help="config file (default: $RAMPART_CONFIG, /etc/rampart/config.yaml)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cloud_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
