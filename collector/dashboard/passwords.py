"""Reading a new password for `users set-password`: from a file, standard input, or asked twice."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from collector.commands.base import UsageError


def read_new_password(path: str | None) -> str:
    if path == "-":
        text = sys.stdin.readline()
    elif path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read --password-file {path}: {exc.strerror or exc}") from None
    elif sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise UsageError("the two passwords differ")
        text = first
    else:
        raise UsageError("no terminal to ask on: give --password-file PATH (or - for standard input)")
    password = text.rstrip("\r\n")
    if not password:
        raise UsageError("the password is empty")
    return password
