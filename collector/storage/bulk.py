"""Writing many rows in one statement, the fast way for each database.

PostgreSQL: one `INSERT ... SELECT * FROM unnest(<array per column>)` (or `UPDATE ... FROM unnest(...)`).
The statement text is the same whatever the number of rows, so it is compiled and prepared once, and the
rows travel as one array per column (psycopg adapts them in C) in one round trip. A plain executemany
would send one statement per row; multi-row VALUES would make a new statement text for each row count.
SQLite: executemany, which the sqlite3 module runs in C without round trips.

Statements are built once per (table, columns, conflict rule) and cached.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

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


def _array_param(table: sa.Table, name: str) -> sa.BindParameter[Any]:
    column = table.c[name]
    element = sa.Text() if _is_json(column) else column.type
    return sa.bindparam(f"u_{name}", type_=postgresql.ARRAY(element))


def _unnest(table: sa.Table, names: tuple[str, ...]) -> sa.Select[Any]:
    """SELECT unnest(:u_a) AS a, unnest(:u_b) AS b, ... (several unnest() in one SELECT run in step)."""
    columns = []
    for name in names:
        value: Any = sa.func.unnest(_array_param(table, name))
        if _is_json(table.c[name]):
            value = sa.cast(value, postgresql.JSON)
        columns.append(value.label(name))
    return sa.select(*columns)


def _arrays(table: sa.Table, names: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    arrays: dict[str, list[Any]] = {}
    for name in names:
        if _is_json(table.c[name]):
            arrays[f"u_{name}"] = [None if row[name] is None else json.dumps(row[name]) for row in rows]
        else:
            arrays[f"u_{name}"] = [row[name] for row in rows]
    return arrays


@functools.lru_cache(maxsize=64)
def _pg_insert(table: sa.Table, names: tuple[str, ...], key: tuple[str, ...] | None, update: Update | None) -> Any:
    statement = postgresql.insert(table).from_select(list(names), _unnest(table, names))
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
        connection.execute(_pg_insert(table, names, conflict, update), _arrays(table, names, rows))
    else:
        connection.execute(_sqlite_insert(table, conflict, update), list(rows))


@functools.lru_cache(maxsize=32)
def _pg_update(table: sa.Table, match: tuple[str, ...], values: tuple[str, ...], null: tuple[str, ...]) -> Any:
    # The source columns are named s_<column>, so that a column can be both matched and set.
    arrays = [sa.func.unnest(_array_param(table, name)).label(f"s_{name}") for name in match + values]
    source = sa.select(*arrays).subquery("u")
    condition = [table.c[name] == source.c[f"s_{name}"] for name in match]
    condition += [table.c[name].is_(None) for name in null]
    return table.update().where(*condition).values({name: source.c[f"s_{name}"] for name in values})


@functools.lru_cache(maxsize=32)
def _sqlite_update(table: sa.Table, match: tuple[str, ...], values: tuple[str, ...], null: tuple[str, ...]) -> Any:
    condition = [table.c[name] == sa.bindparam(f"m_{name}") for name in match]
    condition += [table.c[name].is_(None) for name in null]
    return table.update().where(*condition).values({name: sa.bindparam(f"v_{name}") for name in values})


def update_rows(
    connection: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    match: Sequence[str],
    values: Sequence[str],
    null: Sequence[str] = (),
) -> None:
    """For each row: UPDATE table SET <values from the row> WHERE <match columns equal the row's> AND
    <null columns> IS NULL. JSON columns cannot be matched or set this way."""
    if not rows:
        return
    match_names, value_names, null_names = tuple(match), tuple(values), tuple(null)
    if connection.dialect.name == "postgresql":
        arrays = {f"u_{name}": [row[name] for row in rows] for name in match_names + value_names}
        connection.execute(_pg_update(table, match_names, value_names, null_names), arrays)
    else:
        connection.execute(
            _sqlite_update(table, match_names, value_names, null_names),
            [
                {**{f"m_{name}": row[name] for name in match_names}, **{f"v_{name}": row[name] for name in value_names}}
                for row in rows
            ],
        )
