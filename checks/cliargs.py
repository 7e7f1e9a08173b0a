"""What both command lines share in how they read their arguments."""

from __future__ import annotations

import argparse

CONFIG_HELP = "config file (default: $RAMPART_CONFIG, /etc/rampart/config.yaml)"


def add_config_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--config PATH` before the command (`prog --config X run`) and after it, at any depth
    (`prog run --config X`, `prog tokens create --config X`): administrators type it both ways.

    The top-level option sets the default (None); each subcommand's copy has default=SUPPRESS, so that it
    changes `args.config` only when given there and never resets what was given before the command."""
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    _add_to_subcommands(parser)


def _add_to_subcommands(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for sub in action.choices.values():
            if not any("--config" in known.option_strings for known in sub._actions):
                sub.add_argument(
                    "--config", metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP + "; as before the command"
                )
            _add_to_subcommands(sub)
