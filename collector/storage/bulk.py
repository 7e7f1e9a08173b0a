"""Writing many rows in one statement, the fast way for each database.

PostgreSQL: one `INSERT ... SELECT ... FROM json_to_recordset(:rows)` (or `UPDATE ... FROM
json_to_recordset(...)`). The statement text is the same whatever the number of rows, so it is compiled
and prepared once; the rows travel as one JSON text (encoded in C by msgspec, parsed in C by
PostgreSQL) in one round trip. A plain executemany would send one statement per row; multi-row VALUES
would make a new statement text for each row count; arrays per column cost a Python call per value.
SQLite: executemany, which the sqlite3 module runs in C without round trips.

Statements are built once per (table, columns, conflict rule) and cached.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

Update = Callable[[Any], dict[str, Any]]


def upsert(connection: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT for the connection's dialect (both accept the same builder calls)."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _is_json(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.JSON)


def _recordset(table: sa.Table, names: tuple[str, ...], prefix: str = "") -> Any:
    """FROM json_to_recordset(:rows) AS u(a <type>, b <type>, ...): the rows as one JSON text parameter."""
    columns = [
        sa.column(prefix + name, postgresql.JSON() if _is_json(table.c[name]) else table.c[name].type) for name in names
    ]
    rows = sa.cast(sa.bindparam("rows", type_=sa.Text()), postgresql.JSON)
    return sa.func.json_to_recordset(rows).table_valued(*columns).render_derived(name="u", with_types=True)


# msgspec writes the JSON text in C, datetimes as ISO 8601 (as isoformat does), and the facts that the typed
# decoder kept as the agent sent them (msgspec.Raw, collector/storage/report_codec.py) as they came.
_encoder = msgspec.json.Encoder()


def _rows_param(rows: Sequence[dict[str, Any]], prefix: str = "", names: Sequence[str] | None = None) -> dict[str, str]:
    """The rows as one JSON text, encoded in C by msgspec, parsed in C by PostgreSQL."""
    if prefix:
        rows = [{prefix + name: row[name] for name in names or row} for row in rows]
    try:
        return {"rows": _encoder.encode(list(rows)).decode()}
    except TypeError as exc:
        raise TypeError(f"cannot send a value in a bulk statement: {exc}") from None


@functools.lru_cache(maxsize=64)
def _pg_insert(table: sa.Table, names: tuple[str, ...], key: tuple[str, ...] | None, update: Update | None) -> Any:
    source = _recordset(table, names)
    select = sa.select(*[source.c[name] for name in names])
    statement = postgresql.insert(table).from_select(list(names), select)
    if key is None:
        return statement
    if update is None:
        return statement.on_conflict_do_nothing(index_elements=list(key))
    return statement.on_conflict_do_update(index_elements=list(key), set_=update(statement.excluded))


@functools.lru_cache(maxsize=64)
def _sqlite_insert(table: sa.Table, key: tuple[str, ...] | None, update: Update | None) -> Any:
    statement = sqlite.insert(table)
    if key is None:
        return table.insert()
    if update is None:
        return statement.on_conflict_do_nothing(index_elements=list(key))
    return statement.on_conflict_do_update(index_elements=list(key), set_=update(statement.excluded))


def insert_rows(
    connection: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str] | None = None,
    update: Update | None = None,
) -> None:
    """INSERT rows (all with the same keys). With `key`: ON CONFLICT (key) DO UPDATE SET update(excluded),
    or DO NOTHING without `update`. Keys must be unique within `rows` (PostgreSQL will not update a row
    twice in one statement). `update` must be a module-level function, so the statement can be cached."""
    if not rows:
        return
    names = tuple(rows[0])
    conflict = tuple(key) if key is not None else None
    if connection.dialect.name == "postgresql":
        connection.execute(_pg_insert(table, names, conflict, update), _rows_param(rows))
    else:
        _sqlite_executemany(connection, _sqlite_insert(table, conflict, update), names, rows)


@functools.lru_cache(maxsize=32)
def _pg_update(
    table: sa.Table, match: tuple[str, ...], values: tuple[str, ...], null: tuple[str, ...], same: tuple[str, ...]
) -> Any:
    # The source columns are named s_<column>, so that a column can be both matched and set.
    source = _recordset(table, match + values, prefix="s_")
    condition = [table.c[name] == source.c[f"s_{name}"] for name in match]
    condition += [table.c[name].is_(None) for name in null]
    condition += [table.c[name] == sa.bindparam(f"c_{name}") for name in same]
    return table.update().where(*condition).values({name: source.c[f"s_{name}"] for name in values})


@functools.lru_cache(maxsize=32)
def _sqlite_update(
    table: sa.Table, match: tuple[str, ...], values: tuple[str, ...], null: tuple[str, ...], same: tuple[str, ...]
) -> Any:
    condition = [table.c[name] == sa.bindparam(f"m_{name}") for name in match]
    condition += [table.c[name].is_(None) for name in null]
    condition += [table.c[name] == sa.bindparam(f"c_{name}") for name in same]
    return table.update().where(*condition).values({name: sa.bindparam(f"v_{name}") for name in values})


def update_rows(
    connection: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    match: Sequence[str],
    values: Sequence[str],
    null: Sequence[str] = (),
    same: dict[str, Any] | None = None,
) -> None:
    """For each row: UPDATE table SET <values from the row> WHERE <match columns equal the row's> AND
    <null columns> IS NULL AND <same columns equal the given constants>.

    `same` is for what all rows share (e.g. one subject): as a constant it lets the planner pick the
    index it leads (an estimate of rows from a JSON parameter cannot).
    """
    if not rows:
        return
    constants = same or {}
    match_names, value_names, null_names = tuple(match), tuple(values), tuple(null)
    same_names = tuple(sorted(constants))
    fixed = {f"c_{name}": value for name, value in constants.items()}
    if connection.dialect.name == "postgresql":
        params = {**_rows_param(rows, prefix="s_", names=match_names + value_names), **fixed}
        connection.execute(_pg_update(table, match_names, value_names, null_names, same_names), params)
    else:
        _sqlite_executemany(
            connection,
            _sqlite_update(table, match_names, value_names, null_names, same_names),
            None,
            [
                {
                    **{f"m_{name}": row[name] for name in match_names},
                    **{f"v_{name}": row[name] for name in value_names},
                    **fixed,
                }
                for row in rows
            ],
        )


def _sqlite_executemany(
    connection: Connection, statement: Any, names: tuple[str, ...] | None, rows: Sequence[dict[str, Any]]
) -> None:
    """executemany of a statement compiled once: each row's values converted with their columns' own bind
    processors (SQLAlchemy's, so stored exactly as connection.execute would store them) and handed to
    sqlite3 as tuples. connection.execute(statement, rows) costs tens of microseconds a row in Python.
    An INSERT that leaves out a column with a Python-side default goes through connection.execute, which
    fills the default in."""
    plan = _sqlite_compiled(statement, names, connection.dialect)
    if plan is None:
        connection.execute(statement, list(rows))
        return
    sql, order, processors = plan
    connection.exec_driver_sql(
        sql,
        [
            tuple(value if p is None else p(value) for value, p in zip(values, processors, strict=True))
            for values in ([row[name] for name in order] for row in rows)
        ],
    )


@functools.lru_cache(maxsize=64)
def _sqlite_compiled(
    statement: Any, names: tuple[str, ...] | None, dialect: Any
) -> tuple[str, tuple[str, ...], tuple[Any, ...]] | None:
    """(SQL text, parameter names in order, each one's bind processor or None) of a statement; None when
    it takes a parameter the rows do not carry (a default for a column left out)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(names) if names is not None else None)
    order = tuple(compiled.positiontup or ())
    if names is not None and not set(order) <= set(names):
        return None
    processors = tuple(compiled.binds[name].type._cached_bind_processor(dialect) for name in order)
    return compiled.string, order, processors
