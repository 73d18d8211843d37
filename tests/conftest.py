"""Shared fixtures: the real-data fixture (one place), a fresh workbench home per test, and one
throw-away PostgreSQL server per session for the unit and integration tests that need one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.postgres import PostgresServer, find_pg_bin, start_postgres
from workbench.config import Settings, load_settings

_REPO = Path(__file__).resolve().parents[1]

# The suite's runs trade replays of their fixtures' lakes unless a test asks for live data: the network is
# closed, and a live run needs fake venues (tests/unit/live/test_live_feed_run.py sets them up and asks
# for `live` explicitly). Users get live market data by default (`live.feed`).
os.environ.setdefault("WORKBENCH_LIVE__FEED", "replay")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real market data from ../shared/data (or $WORKBENCH_TEST_DATA); skips the test when absent."""
    root = Path(os.environ.get("WORKBENCH_TEST_DATA", _REPO.parent / "shared" / "data")).resolve()
    if not (root / "PROVENANCE.md").exists():
        pytest.skip(f"real market data not found at {root}: set WORKBENCH_TEST_DATA to the shared/data folder")
    return root


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh, empty workbench home in a temp dir."""
    s = load_settings(tmp_path / "home")
    s.ensure_dirs()
    return s


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's `postgresql` package), started once per session on a loopback
    port; each user takes its own database (``pg_server.create_database(name)``). Skips, saying why,
    where the binaries are missing or, as root, where there is no ``runuser`` to start it as ``postgres``."""
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries not found: install Debian's `postgresql` package (make test does, as root)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start a PostgreSQL server as another user")
    server = start_postgres()
    yield server
    server.stop()
