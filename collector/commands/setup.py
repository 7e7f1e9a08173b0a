"""`init`, `serve` and `db upgrade|current`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from checks.logformat import LOG_FORMAT_HELP, LOG_FORMATS
from checks.output import print_json
from collector.commands.base import (
    EXIT_OK,
    Failed,
    UsageError,
    add_format,
    config_of,
    database_failure,
    engine_of,
    show,
    whole_number,
)


def register(commands: Any) -> None:
    init = commands.add_parser(
        "init",
        help="create the data directory, database, signing key, TLS certificate and a first admin token",
        description="Prepare a collector: data directory, database schema, the collector's Ed25519 signing "
        "key, a TLS CA and server certificate (unless the config names them), the shipped baseline policy "
        "for the default group, and a first admin API token, printed once. Running it again keeps what exists.",
    )
    add_format(init)
    init.set_defaults(handler=cmd_init)

    serve = commands.add_parser(
        "serve",
        help="serve the agent protocol and the API (HTTPS unless told otherwise)",
        description="Serve the agent endpoints and the API over HTTPS with the configured certificate. "
        "--plain-http is for running behind a proxy that terminates TLS. SIGTERM stops it cleanly.",
    )
    serve.add_argument("--host", help="address to listen on (default: listen_host from the config)")
    serve.add_argument(
        "--port", type=whole_number(1, 65535), help="port to listen on (default: listen_port from the config)"
    )
    serve.add_argument(
        "--workers", type=whole_number(1, 256), help="worker processes (default: workers from the config)"
    )
    serve.add_argument("--plain-http", action="store_true", help="serve plain HTTP (behind a TLS proxy only)")
    serve.add_argument(
        "--log-format", choices=LOG_FORMATS, help=LOG_FORMAT_HELP + " (default: log_format from the config, json)"
    )
    serve.set_defaults(handler=cmd_serve)

    db = commands.add_parser("db", help="database schema migrations")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="bring the schema up to date (safe to run on every start)")
    upgrade.add_argument(
        "--revision", default="head", metavar="REVISION", help="target revision id, e.g. 0008 (default: head)"
    )
    upgrade.set_defaults(handler=cmd_db_upgrade)
    current = db_commands.add_parser("current", help="show the schema revision")
    add_format(current)
    current.set_defaults(handler=cmd_db_current)


def cmd_init(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from collector.initialise import InitError, initialise

    config = config_of(args)
    engine = engine_of(config, require_schema=False)
    try:
        outcome = initialise(config, engine)
    except InitError as exc:
        raise Failed(str(exc)) from None
    except sa.exc.SQLAlchemyError as exc:
        raise database_failure("cannot prepare", config, exc) from None
    finally:
        engine.dispose()
    if args.format == "json":
        print_json(
            {
                "created": outcome.created,
                "kept": outcome.kept,
                "admin_token": outcome.admin_token,
                "ca_file": outcome.ca_file,
                "collector_public_key": outcome.public_key,
                "warnings": outcome.warnings,
            }
        )
        return EXIT_OK
    for line in outcome.created:
        show(f"created  {line}")
    for line in outcome.kept:
        show(f"kept     {line}")
    for line in outcome.warnings:
        show(f"warning  {line}")
    print()
    show(f"agents pin this CA:    {outcome.ca_file}")
    print(f"collector public key:  {outcome.public_key}")
    if outcome.admin_token:
        print("\nFirst admin API token (shown once; store it now):")
        print(f"  {outcome.admin_token}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from collector.api import server
    from collector.initialise import InitError, check_ready_to_serve

    config = config_of(args)
    try:
        check_ready_to_serve(config)
    except InitError as exc:
        raise Failed(str(exc)) from None
    engine = engine_of(config)
    engine.dispose()
    plain = args.plain_http or not config.tls
    # Worker processes build the app from the same config: hand them its path.
    if args.config:
        os.environ["RAMPART_CONFIG"] = str(Path(args.config).absolute())
    if args.log_format:
        # The worker processes read the config anew: the environment carries the override to them too.
        os.environ["RAMPART_COLLECTOR__LOG_FORMAT"] = args.log_format
        config.log_format = args.log_format
    from collector.logs import setup_logging

    setup_logging(config.log_level, config.log_format)
    host = args.host or config.listen_host
    port = args.port if args.port is not None else config.listen_port
    workers = args.workers or config.workers
    settings = server.server_config(
        config,
        "collector.api.app:app_from_env",
        host=host,
        port=port,
        workers=workers,
        plain_http=plain,
        factory=True,
    )
    check_can_listen(host, port)
    server.raise_open_file_limit(config.max_connections)
    show(
        f"rampart-collector serving {'http' if plain else 'https'}://{host}:{port}",
        file=sys.stderr,
        flush=True,
    )
    with shared_metrics_dir(workers):
        try:
            started = server.run(settings)
        except SystemExit as exc:  # uvicorn exits when it cannot bind (taken since the check above)
            if exc.code in (0, None):
                raise
            started = False
    if not started:
        raise Failed("the server did not start (see the log above)")
    return EXIT_OK


def check_can_listen(host: str, port: int) -> None:
    """Bind the address once before serving, so that a port in use (or not ours to take) is one plain line
    on standard error, not only a JSON log line from uvicorn after the application has started."""
    import errno
    import socket

    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as exc:
        raise Failed(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    probe = socket.socket(family, kind, proto)
    try:
        # As uvicorn binds: a port left in TIME_WAIT by a collector that just stopped is free to take.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
    except OSError as exc:
        why = {
            errno.EADDRINUSE: "the address is already in use (another collector or program listens there; "
            "choose another with --port or listen_port)",
            errno.EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
            errno.EADDRNOTAVAIL: "the address is not one of this machine's",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise Failed(f"cannot listen on {host}:{port}: {why}") from None
    finally:
        probe.close()


@contextmanager
def shared_metrics_dir(workers: int) -> Iterator[None]:
    """With several workers, each keeps its metrics in files of one owner-only temporary directory, and
    /metrics (answered by whichever worker) adds them all up: otherwise a scrape would see one worker's
    counts, a different one each time. It is this `serve`'s own directory, removed when it stops."""
    from collector.api.metrics import METRICS_DIR_VARIABLE

    if workers <= 1 or METRICS_DIR_VARIABLE in os.environ:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="rampart-metrics-") as directory:
        os.environ[METRICS_DIR_VARIABLE] = directory  # read by the workers' prometheus_client at import
        try:
            yield
        finally:
            del os.environ[METRICS_DIR_VARIABLE]


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from collector.storage import migrate

    config = config_of(args)
    known = migrate.known_revisions()
    if args.revision not in ("head", *known):
        # Alembic's own answer is a traceback; name what was asked and what there is.
        raise UsageError(f"no schema revision {args.revision!r}: the revisions are {', '.join(known)} (or head)")
    engine = engine_of(config, require_schema=False)
    try:
        before, after = migrate.upgrade(engine, args.revision)
    except sa.exc.SQLAlchemyError as exc:
        raise database_failure("cannot upgrade", config, exc) from None
    finally:
        engine.dispose()
    print(f"schema {before or '(empty)'} -> {after}" if before != after else f"schema {after} is current")
    return EXIT_OK


def cmd_db_current(args: argparse.Namespace) -> int:
    from collector.storage import migrate

    config = config_of(args)
    engine = engine_of(config, require_schema=False)
    try:
        current = migrate.current_revision(engine)
    finally:
        engine.dispose()
    head = migrate.head_revision()
    if args.format == "json":
        print_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        print(f"current {current or '(empty)'}; head {head}{'' if current == head else ' (run db upgrade)'}")
    return EXIT_OK
