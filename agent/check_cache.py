"""Where `rampart-agent check` keeps tools' caches between runs, as the daemon's worker does in its state directory.

The probes keep apt's binary package cache there (`apt-pkgcache.bin`, passed to apt-cache as
`Dir::Cache::pkgcache`) and the record of when pending apt security updates appeared. Without it apt-cache
parses every package list on each call: about half a CPU second of a `check` on Debian.

apt maps that cache file into memory and trusts what it reads, so a directory qualifies only when nobody
but the current user can change what is in it: the directory itself owned by the user and not writable by
group or others, and every directory above it owned by the user or root and not writable by group or others
unless sticky (as /tmp is: others cannot rename or remove what is ours in it). Anything else (another user's
directory, a world-writable one, one that cannot be created or written) means no cache: the run is slower
and otherwise the same. In that order:

1. the agent's own probe cache (`cache/` in the config's `agent.state_dir`), shared with the daemon's
   worker, when the state directory exists and is the current user's: root's when the agent runs as root;
   the `rampart` user's with the Debian package, whose /usr/bin/rampart-agent runs `check` for root as
   that user, as its service runs. Root never uses a state directory another user owns: it would read a
   cache that user could write. `check` never creates the state directory;
2. a per-user cache directory: `$XDG_CACHE_HOME/rampart`, else `~/.cache/rampart` (created 0700);
3. none.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from agent.config import load_agent_config
from agent.state import StatePaths
from checks.config import ConfigError

DIR_MODE = 0o700
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def private_dir(path: Path, *, create: bool) -> Path | None:
    """`path` (symbolic links resolved) when only this user can change what is in it, creating what is missing
    (0700) when `create`; None when it is missing, unsafe, or cannot be created or written."""
    if os.name != "posix":
        return None
    uid = os.geteuid()
    real = Path(os.path.realpath(path))
    parts = real.parts
    current = Path(parts[0])
    for index, part in enumerate(parts):
        current = current / part if index else current
        final = index == len(parts) - 1
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.mkdir(current, DIR_MODE)
            except FileExistsError:
                pass  # someone made it meanwhile: judged just below, like any existing directory
            except OSError:
                return None
            try:
                info = os.lstat(current)
            except OSError:
                return None
        except OSError:
            return None
        # A symbolic link here (realpath resolved them all) appeared since: refuse rather than follow it.
        if not stat.S_ISDIR(info.st_mode):
            return None
        if not _safe(info, uid, final=final):
            return None
    return real if os.access(real, os.W_OK | os.X_OK) else None


def _safe(info: os.stat_result, uid: int, *, final: bool) -> bool:
    if final:
        return info.st_uid == uid and not info.st_mode & _OTHERS_WRITE
    if info.st_uid not in (0, uid):
        return False
    return not info.st_mode & _OTHERS_WRITE or bool(info.st_mode & stat.S_ISVTX)


def agent_probe_cache(config_path: str | None) -> Path | None:
    """The agent's own probe cache, when its state directory exists and is the current user's.

    A config named with --config must be valid, as every command's (ConfigError otherwise). The default one
    only decides where the cache is: when it cannot be read, `check` does without the agent's directory."""
    if os.name != "posix":
        return None
    try:
        config = load_agent_config(config_path)
    except ConfigError:
        if config_path:
            raise
        return None
    state_dir = private_dir(Path(config.state_dir), create=False)  # never created by `check`
    if state_dir is None:
        return None
    return private_dir(StatePaths(state_dir).probe_cache, create=True)


def user_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """$XDG_CACHE_HOME/rampart, else ~/.cache/rampart (a relative XDG_CACHE_HOME is ignored, as the XDG spec
    says), created owner-only; None when unsafe or unwritable."""
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = environ.get("HOME") or os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return private_dir(Path(base) / "rampart", create=True)


def check_cache_dir(config_path: str | None, environ: Mapping[str, str]) -> Path | None:
    """Where this `check` keeps tools' caches, or None (see the module's docstring)."""
    return agent_probe_cache(config_path) or user_cache_dir(environ)
