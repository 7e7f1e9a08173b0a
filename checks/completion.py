"""`completion bash|zsh` for both command lines: the shell script that completes their commands and
options, generated from the argparse parsers by shtab, so it never lags behind them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

SHELLS = ("bash", "zsh")


def add_completion_command(commands: Any, build_parser: Callable[[], argparse.ArgumentParser], prog: str) -> None:
    """Register `completion SHELL` in `commands` (a subparsers action); the script is made from a fresh
    build_parser(), the very parser the command line uses."""
    completion = commands.add_parser(
        "completion",
        help="print the shell completion script (bash or zsh)",
        description=f"Print the completion script for {prog}'s commands and options. Bash: "
        f"`{prog} completion bash > /etc/bash_completion.d/{prog}` (or source it from ~/.bashrc). Zsh: "
        f'`{prog} completion zsh > "${{fpath[1]}}/_{prog}"`, then start a new shell.',
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell to complete in")

    def handler(args: argparse.Namespace) -> int:
        import shtab  # only here: the daemon and the other commands do not need it

        print(shtab.complete(build_parser(), shell=args.shell), end="")
        return 0

    completion.set_defaults(handler=handler)
