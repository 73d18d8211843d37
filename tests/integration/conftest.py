from __future__ import annotations

import pytest

from tests.kit.postgres import find_pg_bin, start_postgres


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server (Debian's `postgresql` package; `make test` installs it where it can)."""
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries not found: install Debian's `postgresql` package (make test does, as root)")
    server = start_postgres()
    yield server
    server.stop()
