"""Shared fixtures: the real-data fixture (one place), a fresh workbench home per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench.config import Settings, load_settings

_REPO = Path(__file__).resolve().parents[1]


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
