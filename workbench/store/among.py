"""``col`` among a list given at execution, rendered the way each backend takes a list best.

Why: SQLAlchemy's expanding ``IN`` renders one placeholder per value at every execution. On SQLite
that is cheap; on PostgreSQL each of the 500 ids of a chunk is also rendered with its cast
(``%(ids_1)s::VARCHAR, ...``), parsed by psycopg and parsed and planned by the server: a query text of
its own for every list length, none of it reusable. There ``col = ANY(%(ids)s::VARCHAR[])`` sends the
list as ONE array parameter: one query text, one plan shape, whatever the length.

    stmt = select(t).where(among(t.c.client_order_id, "ids"))
    conn.execute(stmt, {"ids": ["a", "b"]})
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ["among"]


class Among(ColumnElement[bool]):
    """The condition; its list is the execution parameter ``name`` (a list of the column's values)."""

    type = Boolean()
    _is_implicitly_boolean = True  # a comparison already: SQLite must not get ``... = 1`` (no index then)
    inherit_cache = True
    # The cache key: the column and the parameter's name. The bind itself is made when compiling, for
    # the dialect at hand (the compiled cache is per dialect), so no value is ever cached with it.
    _traverse_internals = [("col", InternalTraversal.dp_clauseelement), ("name", InternalTraversal.dp_string)]  # noqa: RUF012

    def __init__(self, col: ColumnElement[Any], name: str) -> None:
        self.col = col
        self.name = name


def among(col: ColumnElement[Any], name: str) -> Among:
    """``col IN (:name...)`` on SQLite and others, ``col = ANY(:name)`` on PostgreSQL."""
    return Among(col, name)


@compiles(Among)
def _among(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    col = element.col
    if compiler.dialect.name == "postgresql":
        cond = col == any_(bindparam(element.name, type_=ARRAY(col.type)))
    else:
        cond = col.in_(bindparam(element.name, expanding=True))
    return compiler.process(cond, **kw)
