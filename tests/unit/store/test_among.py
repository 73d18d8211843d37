"""``among(col, name)``: a list given at execution, as an expanding IN on SQLite and one array on
PostgreSQL; the same rows either way, one query text on PostgreSQL whatever the list's length, and
an index still used on SQLite."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from workbench.store.among import among


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> sa.engine.Engine:
    if request.param == "sqlite":
        return sa.create_engine("sqlite://")
    pytest.importorskip("psycopg", reason="the psycopg driver (dev extra) is not installed")
    return sa.create_engine(request.getfixturevalue("pg_server").create_database(f"among_{request.node.callspec.id}"))


def test_the_rows_of_the_listed_keys_with_literals_beside(engine: sa.engine.Engine) -> None:
    meta = sa.MetaData()
    t = sa.Table("t", meta, sa.Column("id", sa.String(10), primary_key=True), sa.Column("acct", sa.String(5)))
    meta.create_all(engine)
    sent: list[tuple[str, Any]] = []
    sa.event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, p, ctx, many: sent.append((stmt, p)))
    with engine.begin() as c:
        c.execute(sa.insert(t), [{"id": f"i{i:03d}", "acct": "ab"[i % 2]} for i in range(600)])
        by_acct = sa.select(t.c.id).where(sa.and_(t.c.acct == sa.bindparam("acct"), among(t.c.id, "ids")))
        ids = [f"i{i:03d}" for i in range(0, 600, 3)] + ["nope", "i001"]
        for acct in "ab":
            want = sorted(i for i in set(ids) if i != "nope" and "ab"[int(i[1:]) % 2] == acct)
            assert sorted(c.execute(by_acct, {"acct": acct, "ids": ids}).scalars()) == want
        assert c.execute(by_acct, {"acct": "a", "ids": []}).scalars().all() == []
        sent.clear()
        for acct, n in (("a", 1), ("b", 7), ("a", 500)):  # a literal beside: each statement keeps its own
            stmt = sa.select(sa.func.count()).where(sa.and_(t.c.acct == acct, among(t.c.id, "ids")))
            got = c.execute(stmt, {"ids": [f"i{i:03d}" for i in range(n)]}).scalar()
            assert got == sum(1 for i in range(n) if "ab"[i % 2] == acct)
        if engine.dialect.name == "postgresql":  # one text for 1, 7 and 500 ids: parsed once by psycopg
            assert len({stmt for stmt, _ in sent}) == 1 and "ANY" in sent[0][0]
        else:  # what was sent uses the primary key's index, not ``id IN (...) = 1`` (a full scan)
            plan = c.exec_driver_sql("EXPLAIN QUERY PLAN " + sent[-1][0], sent[-1][1]).all()
            assert any("INDEX" in str(r[-1]) for r in plan), plan
