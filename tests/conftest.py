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
_TESTS = Path(__file__).resolve().parent

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


# The files that take longest on `make test`'s two workers, longest first (from `pytest -n 2 tests
# --durations=80`, 2026-11-30, a machine at load ~12: seconds per file in brackets; the ones without a
# figure were not reached in that run and are known to take minutes). Why an order: `make test` hands out
# whole files (--dist loadfile, so a file's module fixtures are set up once) in collection order, each
# worker taking the next file when it is free. Started last, one of these would leave the other worker
# idle for minutes at the end; started first, the short files fill in around them. Only the order
# changes: a stale list costs time, never a test.
LONGEST_FIRST = (
    "unit/models/test_leak_catching.py",  # [473]
    "integration/test_cli_init.py",  # [398]
    "browser/test_dashboard_browser.py",  # [346]
    "integration/test_demo_online.py",  # [580 alone, at 220 pairs]
    "integration/test_cli_failures.py",  # [270]
    "integration/test_crash_recovery.py",
    "integration/test_live_store_faults.py",
    "unit/features/test_feature_fused.py",  # [150]
    "unit/models/test_model_kinds.py",  # [115]
    "browser/test_first_run_browser.py",  # [102]
    "integration/test_mlflow_server.py",
    "integration/test_dask_research.py",
    "integration/test_dask_lgbm_cli.py",
    "integration/test_dask_lgbm.py",
    "integration/test_dask_lake_url.py",
    "browser/test_reload_login.py",  # [76]
    "integration/test_installed_copy.py",
    "integration/test_end_to_end.py",
    "integration/test_retrain.py",
    "unit/models/test_coverage.py",  # [53]
    "unit/backtest/test_coverage_report.py",  # [50]
    "unit/dashboard/test_dashboard_login.py",  # [41]
    "integration/test_secrets_scan.py",  # [39]
    "unit/models/test_cli_research.py",  # [37]
    "unit/dashboard/test_dashboard_start.py",  # [34]
)


def _file_rank(item: pytest.Item) -> tuple[int, int]:
    """(0, position) for the listed files, (1, 0) for other files holding a test marked slow, (2, 0) else."""
    rel = Path(str(item.path)).resolve().relative_to(_TESTS).as_posix()
    if rel in LONGEST_FIRST:
        return 0, LONGEST_FIRST.index(rel)
    return (1, 0) if item.get_closest_marker("slow") else (2, 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files in LONGEST_FIRST order, then the other files with slow tests, then the rest (each group in
    collection order; a file's tests stay together and in their own order). Items outside tests/ (the
    notebooks) keep their place at the end."""
    ours = [it for it in items if _TESTS in Path(str(it.path)).resolve().parents]
    if not ours:
        return
    rank: dict[Path, tuple[int, int]] = {}
    for it in ours:
        r = _file_rank(it)
        rank[it.path] = min(rank.get(it.path, r), r)
    first_seen = {p: i for i, p in reversed(list(enumerate(it.path for it in ours)))}
    ordered = sorted(ours, key=lambda it: (rank[it.path], first_seen[it.path]))
    rest = [it for it in items if _TESTS not in Path(str(it.path)).resolve().parents]
    items[:] = ordered + rest
