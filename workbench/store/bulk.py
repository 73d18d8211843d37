"""Many rows through one statement at driver speed.

Why: SQLAlchemy's executemany processes every parameter set in Python (compiled-parameter
construction dominates once a cycle writes thousands of rows: ~40 µs a row). The statement is
compiled once here and the driver's own ``executemany`` gets plain tuples (or dicts, for drivers
with named parameters), which is what a batch of 5,000 orders needs to stay well under a second.
Only for columns whose values need no bind processing (strings, floats, ints, None) — the trading
and paper tables are written so.

On PostgreSQL even the driver's ``executemany`` is one statement per row: psycopg pipelines them (no
round trip each) but spends ~15 µs of Python per row and the server plans and runs each one, so a
cycle's 30,000 rows cost ~0.6 s there against ~0.05 s on SQLite. There a batch becomes one command:
a plain insert is a ``COPY`` (psycopg formats each row in C), an update ONE statement over arrays,
``UPDATE ... FROM unnest(...)``. An update goes so only when its WHERE pins the table's primary key and
no two rows name the same key, so each target row changes once, as the per-row statements would;
anything else keeps the per-row path. Both join the connection's transaction: what commits together
still commits together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy
from sqlalchemy import Column, Table, bindparam, column, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, Update, UpdateBase
from sqlalchemy.sql.elements import BinaryExpression, BindParameter
from sqlalchemy.sql.sqltypes import Float, NullType, Numeric
from sqlalchemy.sql.visitors import iterate, replacement_traverse

__all__ = ["bulk", "dicts", "upsert_insert"]

# The cached path below uses SQLAlchemy internals (the statement cache ``Connection.execute`` uses);
# only on the releases it was tested with. Another release compiles each call, slower but correct.
_CACHE_OK = sqlalchemy.__version__.startswith(("2.0.", "2.1."))


def bulk(conn: Connection, stmt: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute ``stmt`` once per row (every row has the same keys: the statement's bind names or,
    for a plain ``insert(table)``, its column names)."""
    if not rows:
        return
    keys = list(rows[0])
    if len(rows) >= _PG_MIN and conn.dialect.name == "postgresql" and _pg_batch(conn, stmt, rows, keys):
        return
    compiled, own = _compiled(conn, stmt, keys)
    fixed = {k: v for k, v in own.items() if k not in keys}  # the statement's own values
    if isinstance(stmt, Insert):  # columns left out take their scalar defaults, as SQLAlchemy would
        for k in list(fixed):
            col = stmt.table.c.get(k)
            default = getattr(col, "default", None)
            if default is not None and getattr(default, "is_scalar", False):
                fixed[k] = default.arg
    # Named drivers (psycopg): the names the SQL renders, which are ``own``'s keys. Not ``compiled.binds``:
    # its keys for a literal (``account == "a"``) are anonymous labels that appear nowhere in the SQL.
    names = compiled.positiontup if compiled.positional else list(own)
    missing = [k for k in names or [] if k not in keys and k not in fixed]
    if missing:
        raise KeyError(f"rows lack {missing} for {str(compiled)[:80]}")
    names = list(names or [])
    params: list[Any]
    if compiled.positional and all(k in keys for k in names):
        if len(names) == 1:
            params = [(r[names[0]],) for r in rows]
        else:  # itemgetter builds each tuple in C: no generator per row
            get = itemgetter(*names)
            params = [get(r) for r in rows]
    elif compiled.positional and len(names) > 1:  # the statement's own values under each row, read in C
        get = itemgetter(*names)
        params = [get({**fixed, **r}) for r in rows]
    elif compiled.positional:
        params = [tuple(r[k] if k in r else fixed[k] for k in names) for r in rows]
    else:
        params = [{k: r[k] if k in r else fixed[k] for k in names} for r in rows]
    conn.exec_driver_sql(str(compiled), params)


_PG_MIN = 8  # below this the per-row statements cost less than building the batch statement
_ALIAS = "wb_rows"
_NONE = type(None)
_NUMBERS = frozenset({int, float, bool})


def _pg_batch(conn: Connection, stmt: UpdateBase, rows: Sequence[Mapping[str, Any]], keys: list[str]) -> bool:
    """``stmt`` over all ``rows`` in one PostgreSQL command; False (nothing sent) where that could
    differ from one statement per row, for the caller's per-row path."""
    table = stmt.table
    if not isinstance(table, Table):
        return False
    if type(stmt) is Insert:
        return _copy(conn, stmt, table, rows, keys)
    if type(stmt) is not Update:
        return False
    plan = _update_plan(stmt, table, keys, rows)
    if plan is None:
        return False
    arrays: dict[str, list[Any]] = {}
    for k in keys:
        vals = _column_values(rows, k, plan[1][k])
        if vals is None:
            return False
        arrays[k] = vals
    compiled, own = _compiled(conn, plan[0], [])
    conn.exec_driver_sql(str(compiled), {**own, **arrays})
    return True


def _copy(conn: Connection, stmt: Insert, table: Table, rows: Sequence[Mapping[str, Any]], keys: list[str]) -> bool:
    """A plain ``insert(table)`` (no values, ON CONFLICT, RETURNING or select of its own) as ``COPY
    table (columns) FROM STDIN`` on the connection's own transaction: the fastest way into PostgreSQL
    (psycopg formats each row in C). Columns left out take their scalar defaults as SQLAlchemy would
    give them; serial ids are assigned in the rows' order, as the per-row inserts would assign them."""
    if stmt._values or stmt._multi_values or stmt.select is not None or stmt._returning:
        return False
    if stmt._post_values_clause is not None or any(k not in table.c for k in keys):
        return False
    defaults: list[tuple[str, Any]] = []
    for col in table.c:
        if col.key in keys or col.default is None:
            continue
        if not getattr(col.default, "is_scalar", False):  # a callable or SQL default: SQLAlchemy's to run
            return False
        defaults.append((col.name, col.default.arg))  # type: ignore[attr-defined]
    quote = conn.dialect.identifier_preparer
    names = [table.c[k].name for k in keys] + [name for name, _ in defaults]
    sql = f"COPY {quote.format_table(table)} ({', '.join(quote.quote(n) for n in names)}) FROM STDIN"
    get = itemgetter(*keys)
    tail = tuple(v for _, v in defaults)
    if not conn.in_transaction():  # begin as an execute would: the caller's commit() then commits the rows
        conn.begin()
    dbapi: Any = conn.connection.dbapi_connection  # psycopg's, in the transaction ``conn`` has begun
    try:
        with dbapi.cursor() as cur, cur.copy(sql) as cp:
            write = cp.write_row
            if len(keys) == 1:
                for r in rows:
                    write((r[keys[0]], *tail))
            elif tail:
                for r in rows:
                    write(get(r) + tail)
            else:
                for r in rows:
                    write(get(r))
    except conn.dialect.loaded_dbapi.Error as e:
        # As SQLAlchemy raises it for a statement (IntegrityError, OperationalError, ...): callers tell a
        # store error from a bug by SQLAlchemyError, and a lost connection must leave the pool.
        gone = conn.dialect.is_disconnect(e, dbapi, None)
        if gone:
            conn.invalidate(e)
        base = conn.dialect.loaded_dbapi.Error
        raise DBAPIError.instance(sql, None, e, base, connection_invalidated=gone, dialect=conn.dialect) from e
    return True


def _rows_alias(keys: list[str], types: Mapping[str, Any]) -> Any:
    """``unnest(:k1::T1[], ...) AS wb_rows(k1, ...)``: the batch as a table, a column per key."""
    fn = func.unnest(*[bindparam(k, type_=ARRAY(types[k])) for k in keys])
    return fn.table_valued(*[column(k, types[k]) for k in keys]).render_derived(name=_ALIAS)


def _update_plan(
    stmt: Update, table: Table, keys: list[str], rows: Sequence[Mapping[str, Any]]
) -> tuple[UpdateBase, dict[str, Any]] | None:
    """``UPDATE t SET c = wb_rows.k ... FROM unnest(...) WHERE t.pk = wb_rows.k ...``, only where the
    WHERE pins every primary-key column (to a row's value or a literal) and the rows' pinned values
    are distinct: then each target row is changed once, by its own row, as per-row statements would."""
    if stmt._returning or not stmt._where_criteria or not stmt._values:
        return None
    types: dict[str, Any] = {}
    for target, expr in stmt._values.items():
        if isinstance(expr, BindParameter) and expr.key in keys:
            col = table.c.get(target) if isinstance(target, str) else target
            if not isinstance(col, Column):
                return None
            types[expr.key] = col.type
    pinned: set[str] = set()
    where_keys: list[str] = []
    for crit in stmt._where_criteria:
        for e in iterate(crit):
            if isinstance(e, BindParameter) and e.key in keys:
                if isinstance(e.type, NullType):
                    return None
                types[e.key] = e.type
            if (
                isinstance(e, BinaryExpression)
                and e.operator is operators.eq
                and isinstance(e.left, Column)
                and e.left.table is table
                and isinstance(e.right, BindParameter)
            ):
                pinned.add(e.left.key)
                if e.right.key in keys:
                    where_keys.append(e.right.key)
    if set(keys) - set(types) or not where_keys or not {c.key for c in table.primary_key} <= pinned:
        return None
    get = itemgetter(*where_keys)
    if len({get(r) for r in rows}) != len(rows):  # one key twice: the later row must win, row by row
        return None
    v = _rows_alias(keys, types)

    def swap(e: Any) -> Any:
        return v.c[e.key] if isinstance(e, BindParameter) and e.key in keys else None

    swapped: Any = replacement_traverse(stmt, {}, swap)  # type: ignore[call-overload]  # a DML statement traverses too
    assert isinstance(swapped, Update)
    return swapped, types


def _column_values(rows: Sequence[Mapping[str, Any]], key: str, type_: Any) -> list[Any] | None:
    """One column of the batch as a list psycopg can send as one array (it refuses mixed element
    types): ints among floats of a numeric column become floats; other mixtures, None (per-row path)."""
    vals = [r[key] for r in rows]
    kinds = set(map(type, vals)) - {_NONE}
    if len(kinds) <= 1:
        return vals
    numeric = isinstance(type_, Float | Numeric) and all(k in _NUMBERS or issubclass(k, int | float) for k in kinds)
    return [None if x is None else float(x) for x in vals] if numeric else None


def _compiled(conn: Connection, stmt: UpdateBase, keys: list[str]) -> tuple[Any, dict[str, Any]]:
    """The statement compiled for ``conn``'s dialect and these keys, and its own bound values. Why
    SQLAlchemy's statement cache (the engine's, as ``Connection.execute`` uses it, keyed by dialect,
    statement shape and keys): compiling anew cost ~0.4 ms a call, a few dozen calls a cycle. The
    literal values of *this* statement (``account == ...``) come from its own cache key, never from
    the cached compile."""
    cache = conn._execution_options.get("compiled_cache", conn.engine._compiled_cache) if _CACHE_OK else None
    if cache is None:  # the cache is off for this connection, or SQLAlchemy is untested: compile as before
        plain = stmt.compile(dialect=conn.dialect, column_keys=keys)
        return plain, dict(plain.params)
    compiled, extracted, _, _ = stmt._compile_w_cache(conn.dialect, compiled_cache=cache, column_keys=keys)
    assert isinstance(compiled, SQLCompiler)  # what every DML statement compiles to
    return compiled, dict(compiled.construct_params(extracted_parameters=extracted, _check=False))


def dicts(result: Result[Any]) -> list[dict[str, Any]]:
    """Every row of ``result`` as a plain dict. Why not ``dict(row)`` over ``.mappings()``: that builds a
    key view per row (~20 µs), which dominated reading the thousands of resting orders a cycle sees."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def upsert_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """``insert(table)`` in the dialect of ``conn``, so that ``on_conflict_do_nothing/_update`` make one
    atomic statement (no read-then-write window). The store runs on SQLite or PostgreSQL only
    (``store.engine.engine_for`` refuses any other), and both spell ON CONFLICT the same way."""
    return (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(table)
