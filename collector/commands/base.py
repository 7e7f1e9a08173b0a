"""What every subcommand shares: config, database, the acting user's name, output and errors."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from checks.durations import parse_duration
from checks.output import format_table, print_json
from checks.safetext import printable
from collector.config import CollectorConfig, load_collector_config

if TYPE_CHECKING:  # the database stack is imported when a command needs it: --help stays fast
    from sqlalchemy.engine import Connection, Engine

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
T = TypeVar("T")


class CommandError(Exception):
    """A message, and lines under it (one per problem). Printed with every control character escaped,
    newlines included: a value echoed in a message cannot add a line."""

    def __init__(self, message: str, *lines: str) -> None:
        super().__init__(message)
        self.lines = lines

    def shown(self) -> str:
        return "\n".join(printable(text) for text in (str(self), *self.lines))


class UsageError(CommandError):
    """Bad input: printed as `rampart-collector: error: ...`, exit 2."""


class Failed(CommandError):
    """The command could not do its work: exit 1."""


def config_of(args: argparse.Namespace) -> CollectorConfig:
    if args.config:
        # So that config_named can say which file named the database.
        os.environ["RAMPART_CONFIG"] = str(Path(args.config).absolute())
    return load_collector_config(args.config)


def config_path_of(args: argparse.Namespace) -> str | None:
    """The config file a command was given: --config, else $RAMPART_CONFIG (the CLI's documented default)."""
    if args.config:
        return str(Path(args.config).absolute())
    return os.environ.get("RAMPART_CONFIG") or None


def engine_of(config: CollectorConfig, *, require_schema: bool = True) -> Engine:
    import sqlalchemy as sa

    from collector.storage import migrate
    from collector.storage.engine import make_engine

    engine = make_engine(config.resolved_database_url(), pool_size=2)
    if require_schema:
        try:
            current = migrate.current_revision(engine)
        except sa.exc.SQLAlchemyError as exc:
            raise database_failure("cannot open", config, exc) from None
        if current is None:
            raise Failed(
                f"{database_named(config)} has no schema: run `rampart-collector init` (or `db upgrade`)",
                f"({config_named()})",
            )
        if current != migrate.head_revision():
            raise Failed(
                f"the database schema is {current}, this collector needs {migrate.head_revision()}: "
                "run `rampart-collector db upgrade`"
            )
    return engine


def database_named(config: CollectorConfig) -> str:
    """The database a command tried, for its messages: SQLite's file, or the URL without its password."""
    import sqlalchemy as sa

    from collector.storage.engine import normalise_url

    try:
        url = sa.engine.make_url(normalise_url(config.resolved_database_url()))
    except sa.exc.ArgumentError:
        return "the database (database_url is not a database URL)"
    if url.get_backend_name() == "sqlite":
        return f"the database {url.database} (SQLite)"
    return f"the database {url.render_as_string(hide_password=True)}"


def config_named() -> str:
    """Which config file named the database (config_of has put --config in $RAMPART_CONFIG)."""
    from checks.config import DEFAULT_CONFIG_PATHS, find_config_path

    path = find_config_path(None)
    if path:
        return f"config {Path(path).absolute()}"
    return (
        f"no config file: none given with --config or $RAMPART_CONFIG, none at {', '.join(DEFAULT_CONFIG_PATHS)}; "
        "data_dir defaults to ./rampart-data"
    )


def database_failure(doing: str, config: CollectorConfig, exc: Exception) -> Failed:
    """`cannot open the database /path (SQLite): unable to open database file`, which config named it, and
    what to do: run `init` when there is no database yet."""
    first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    named = database_named(config)
    hint = (
        "A new collector: run `rampart-collector init` first. An existing one: point data_dir (or database_url) "
        "in the config at its database."
        if named.endswith("(SQLite)")
        else "Is the database server running and reachable, and is database_url in the config right? "
        "Then run `rampart-collector init` once to create the schema."
    )
    return Failed(f"{doing} {named}: {first}", f"({config_named()})", hint)


def read(args: argparse.Namespace, work: Callable[[Connection], T]) -> T:
    from collector.storage.engine import read_tx

    engine = engine_of(config_of(args))
    try:
        with read_tx(engine) as connection:
            return work(connection)
    finally:
        engine.dispose()


def write(args: argparse.Namespace, work: Callable[[Connection], T]) -> T:
    from collector.storage.engine import run_write

    engine = engine_of(config_of(args))
    try:
        return run_write(engine, work)
    finally:
        engine.dispose()


def cli_actor() -> str:
    """`cli:<login>`: who runs this command, as the audit log records it (collector/commands/identity.py)."""
    from collector.commands.identity import cli_actor as actor

    return actor()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def duration(text: str) -> dt.timedelta:
    """A duration from now (a token's validity): refused when the date it ends on cannot be written."""
    try:
        span = dt.timedelta(seconds=parse_duration(text))
        now() + span
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OverflowError:
        raise UsageError(f"{text!r} is too long: it would end after the year 9999") from None
    return span


def day(text: str) -> dt.date:
    """An argparse type: a date as YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (a database's integers end; so do lists)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")


def show(text: str, *, file: TextIO | None = None, flush: bool = False) -> None:
    """Print one line that carries text from hosts, policies or people: control characters (an escape
    sequence in a host name, a newline that would forge a line) are shown escaped (checks/safetext.py)."""
    print(printable(text), file=file, flush=flush)


def output(args: argparse.Namespace, data: Any, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if getattr(args, "format", "table") == "json":
        print_json(data)
    else:
        print(format_table(headers, rows))
