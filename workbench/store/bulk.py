"""Many rows through one statement at driver speed.

Why: SQLAlchemy's executemany processes every parameter set in Python (compiled-parameter
construction dominates once a cycle writes thousands of rows: ~40 µs a row). The statement is
compiled once here and the driver's own ``executemany`` gets plain tuples (or dicts, for drivers
with named parameters), which is what a batch of 5,000 orders needs to stay well under a second.
Only for columns whose values need no bind processing (strings, floats, ints, None) — the trading
and paper tables are written so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy
from sqlalchemy.engine import Connection, Result
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, UpdateBase

__all__ = ["bulk", "dicts"]

# The cached path below uses SQLAlchemy internals (the statement cache ``Connection.execute`` uses);
# only on the releases it was tested with. Another release compiles each call, slower but correct.
_CACHE_OK = sqlalchemy.__version__.startswith(("2.0.", "2.1."))


def bulk(conn: Connection, stmt: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute ``stmt`` once per row (every row has the same keys: the statement's bind names or,
    for a plain ``insert(table)``, its column names)."""
    if not rows:
        return
    keys = list(rows[0])
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
