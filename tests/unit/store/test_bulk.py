"""``bulk`` reuses SQLAlchemy's compiled-statement cache: a statement of the same shape with other
literal values (another account) must write with *its* values, never the cached compile's."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import and_, bindparam, insert, select, update

from workbench.store.bulk import bulk


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    """SQLite (positional ``?``) and PostgreSQL through psycopg (named ``%(name)s``): the two paramstyles."""
    if request.param == "sqlite":
        return "sqlite://"
    pytest.importorskip("psycopg", reason="the psycopg driver (dev extra) is not installed")
    return str(request.getfixturevalue("pg_server").create_database(f"bulk_{request.node.name[:20].lower()}"))


def _table(url: str) -> tuple[sa.engine.Engine, sa.Table]:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    t = sa.Table(
        "t", meta,
        sa.Column("account", sa.String(16), primary_key=True), sa.Column("cid", sa.String(16), primary_key=True),
        sa.Column("x", sa.Float), sa.Column("status", sa.String(8), default="NEW"),
    )  # fmt: skip
    meta.create_all(engine)
    return engine, t


def test_same_shape_other_literals_write_their_own_rows(url: str) -> None:
    engine, t = _table(url)
    with engine.begin() as c:
        for acct in ("a", "b"):  # the same insert twice: the second is a cache hit; defaults still applied
            bulk(c, insert(t), [{"account": acct, "cid": f"o{i}", "x": 0.0} for i in range(3)])
        for acct, x in (("a", 1.0), ("b", 2.0), ("a", 3.0)):  # same update shape, the account a literal
            stmt = update(t).where(and_(t.c.account == acct, t.c.cid == bindparam("k_cid"))).values(x=bindparam("k_x"))
            bulk(c, stmt, [{"k_cid": "o0", "k_x": x}, {"k_cid": "o2", "k_x": x}])
        rows = {(r.account, r.cid): (r.x, r.status) for r in c.execute(select(t))}
    assert rows == {
        ("a", "o0"): (3.0, "NEW"), ("a", "o1"): (0.0, "NEW"), ("a", "o2"): (3.0, "NEW"),
        ("b", "o0"): (2.0, "NEW"), ("b", "o1"): (0.0, "NEW"), ("b", "o2"): (2.0, "NEW"),
    }  # fmt: skip


def test_without_the_statement_cache_it_compiles_each_time(url: str) -> None:
    engine, t = _table(url)
    with engine.connect().execution_options(compiled_cache=None) as c, c.begin():
        bulk(c, insert(t), [{"account": "a", "cid": "o0", "x": 1.0}])
        bulk(c, update(t).where(t.c.account == "a").values(x=bindparam("k_x")), [{"k_x": 5.0}])
        assert c.execute(select(t.c.x, t.c.status)).all() == [(5.0, "NEW")]
