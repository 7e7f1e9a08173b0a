"""Who runs a command: the operating-system login recorded as `cli:<login>` on every change it makes.

The login is, in order:
1. the kernel's audit login id (/proc/self/loginuid, Linux): the account that logged in, kept across
   `sudo` and `su`, and which an unprivileged process cannot change;
2. when running as root with no audit login id (a container, a system without pam_loginuid) and `sudo`
   set SUDO_USER: that user (only root could have set it, and root could do anything anyway);
3. the account of the process's real user id.
Environment variables ($USER, $LOGNAME) are never believed on their own: anyone can set them.

A login may act as the collector user of its own name, and as the users `collector.cli_users` maps it
to (`--as USER`); anything else is refused (exit 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from checks.config import ConfigError

_NO_LOGIN_UID = 4294967295  # (uid_t)-1: no audit login id was set for this session


def _account(uid: int) -> str:
    try:
        import pwd
    except ImportError:  # Windows
        import getpass

        return getpass.getuser()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"


def _login_uid() -> int | None:
    try:
        value = int(Path("/proc/self/loginuid").read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return None if value == _NO_LOGIN_UID else value


def os_login() -> str:
    login_uid = _login_uid()
    if login_uid is not None:
        return _account(login_uid)
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows
        return _account(-1)
    uid = getuid()
    sudo_user = os.environ.get("SUDO_USER", "")
    if uid == 0 and sudo_user and sudo_user != "root":
        return sudo_user
    return _account(uid)


def cli_actor() -> str:
    return f"cli:{os_login()}"


def allowed_users(cli_users: Mapping[str, object], login: str) -> list[str]:
    """The collector users `login` may act as: its own name, and what the config maps it to."""
    mapped = cli_users.get(login, [])
    if isinstance(mapped, str):
        mapped = [mapped]
    if not isinstance(mapped, list) or not all(isinstance(name, str) for name in mapped):
        raise ConfigError(f"collector.cli_users.{login} must be a list of user names")
    return [login, *(name for name in mapped if name != login)]
