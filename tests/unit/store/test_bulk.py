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


def _log_table(engine: sa.engine.Engine) -> sa.Table:
    meta = sa.MetaData()
    t = sa.Table(
        "log", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True), sa.Column("note", sa.String(40)),
        sa.Column("x", sa.Float), sa.Column("n", sa.Integer), sa.Column("kind", sa.String(8), default="plain"),
    )  # fmt: skip
    meta.create_all(engine)
    return t


# Text a COPY must escape (tab, newline, backslash, quotes, \N, non-ASCII) and numbers of mixed kinds.
_NOTES = ["plain", "tab\there", "new\nline", "back\\slash", "'quoted' \"both\"", "\\N", "€ ünï", "", None, "x" * 40]


def test_a_batch_writes_what_row_by_row_writes(url: str) -> None:
    """Batches past PostgreSQL's per-row threshold (a COPY, an UPDATE over arrays) write exactly what
    one statement per row writes, on both backends: escapes, NULLs, ints among floats, scalar defaults,
    ids in the rows' order; an update naming one key twice (the later row wins) and an update whose
    WHERE does not pin the primary key (every matching row changes) keep the per-row meaning."""
    engine, t = _table(url)
    log = _log_table(engine)
    n = 40
    with engine.begin() as c:
        bulk(c, insert(log), [{"note": _NOTES[i % len(_NOTES)], "x": [1, 2.5, None][i % 3], "n": i} for i in range(n)])
        bulk(c, insert(t), [{"account": "a", "cid": f"o{i:02d}", "x": float(i)} for i in range(n)])
        by_key = update(t).where(and_(t.c.account == "a", t.c.cid == bindparam("k_cid")))
        bulk(c, by_key.values(x=bindparam("k_x"), status=bindparam("k_st")),
             [{"k_cid": f"o{i:02d}", "k_x": [7, 7.5, None][i % 3], "k_st": "DONE"} for i in range(0, n, 2)])  # fmt: skip
        twice = [{"k_cid": f"o{i % 10:02d}", "k_x": 100.0 + i} for i in range(1, 21, 2)]  # o01..o09 twice each
        if c.dialect.name == "postgresql":  # a plan PostgreSQL may pick: its hash join happens to let the
            c.exec_driver_sql("SET LOCAL enable_hashjoin = off")  # later row win, a nested loop the first
            c.exec_driver_sql("SET LOCAL enable_mergejoin = off")
        bulk(c, by_key.values(x=bindparam("k_x")), twice)
        by_status = update(t).where(t.c.status == bindparam("k_old")).values(status=bindparam("k_new"))
        steps = [{"k_old": "NEW", "k_new": "OPEN"}, {"k_old": "OPEN", "k_new": "SHUT"}]  # row by row: NEW ends SHUT
        bulk(c, by_status, steps + [{"k_old": f"none{i}", "k_new": "X"} for i in range(9)])
        logged = c.execute(select(log.c.id, log.c.note, log.c.x, log.c.n, log.c.kind).order_by(log.c.id)).all()
        rows = {r.cid: (r.x, r.status) for r in c.execute(select(t))}
    # ordered by id, the rows come back in the order they were given: ids were assigned in that order
    assert [tuple(r[1:]) for r in logged] == [
        (_NOTES[i % len(_NOTES)], [1.0, 2.5, None][i % 3], i, "plain") for i in range(n)
    ]
    want: dict[str, tuple[float | None, str]] = {}
    for i in range(n):
        x: float | None = [7.0, 7.5, None][i % 3] if i % 2 == 0 else float(i)
        want[f"o{i:02d}"] = (x, "DONE" if i % 2 == 0 else "SHUT")
    for i in range(1, 21, 2):  # the second of each pair of rows for one key is the one that stays
        want[f"o{i % 10:02d}"] = (100.0 + i, want[f"o{i % 10:02d}"][1])
    assert rows == want


def test_a_batch_joins_the_callers_transaction(url: str) -> None:
    """A batch is part of the transaction it is written in: a failure after it leaves nothing behind
    (a COPY on its own connection or autocommitted would keep the rows)."""
    engine, t = _table(url)
    with pytest.raises(RuntimeError, match="after the batch"), engine.begin() as c:
        bulk(c, insert(t), [{"account": "a", "cid": f"o{i}", "x": 1.0} for i in range(20)])
        raise RuntimeError("after the batch")
    with engine.connect() as c:
        assert c.execute(select(sa.func.count()).select_from(t)).scalar() == 0
    with engine.connect() as c:  # no transaction begun yet: the batch begins one, as an execute would
        bulk(c, insert(t), [{"account": "b", "cid": f"o{i}", "x": 1.0} for i in range(20)])
        c.commit()
    with engine.connect() as c:
        assert c.execute(select(sa.func.count()).select_from(t)).scalar() == 20


def test_a_failed_batch_raises_what_sqlalchemy_raises(url: str) -> None:
    """A batch that breaks a constraint raises SQLAlchemy's IntegrityError, as a statement would: the
    live loop tells a store error (a clean stop) from a bug by ``SQLAlchemyError``; a driver's own
    exception would escape it. The transaction is rolled back and the connection is usable again."""
    engine, t = _table(url)
    rows = [{"account": "a", "cid": f"o{i % 15}", "x": 1.0} for i in range(20)]  # o0..o4 twice
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
        bulk(c, insert(t), rows)
    with engine.begin() as c:
        bulk(c, insert(t), rows[:15])
        assert c.execute(select(sa.func.count()).select_from(t)).scalar() == 15


def test_on_postgresql_a_batch_is_one_command_not_one_per_row(request: pytest.FixtureRequest) -> None:
    """Why the batch path exists: psycopg's executemany is a statement per row (pipelined, but ~15 µs
    of Python and a server-side execution each); 200 rows must go as a COPY and one UPDATE."""
    pytest.importorskip("psycopg", reason="the psycopg driver (dev extra) is not installed")
    engine, t = _table(str(request.getfixturevalue("pg_server").create_database("bulk_one_command")))
    sent: list[tuple[str, bool]] = []
    sa.event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, p, ctx, many: sent.append((stmt, many)))
    with engine.begin() as c:
        bulk(c, insert(t), [{"account": "a", "cid": f"o{i}", "x": 1.0} for i in range(200)])
        assert sent == []  # the COPY went through the driver's own copy protocol
        stmt = update(t).where(and_(t.c.account == "a", t.c.cid == bindparam("k_cid"))).values(x=bindparam("k_x"))
        bulk(c, stmt, [{"k_cid": f"o{i}", "k_x": 2.0} for i in range(200)])
        assert len(sent) == 1 and sent[0][1] is False and "unnest" in sent[0][0]
        assert c.execute(select(sa.func.sum(t.c.x))).scalar() == 400.0
