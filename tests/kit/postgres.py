"""A real PostgreSQL server for tests: the starter the benchmarks use too (bench/pg.py), so the two
never drift. Tests that need it skip, with the reason, where the binaries are missing (tests/conftest.py)."""

from __future__ import annotations

from bench.pg import PostgresServer, find_pg_bin, start_postgres

__all__ = ["PostgresServer", "find_pg_bin", "start_postgres"]
