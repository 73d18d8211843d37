from __future__ import annotations

import pytest

from tests.unit.features.research_kit import random_walk_panel, read_sp500
from workbench.config import load_settings
from workbench.models.training import train


@pytest.fixture(scope="session")
def sp500_panel(shared_data):
    return read_sp500(shared_data)


@pytest.fixture(scope="session")
def rw_panel():
    return random_walk_panel(n_bars=500, symbols=("SYN-A", "SYN-B", "SYN-C", "SYN-D"), late_start={"SYN-D": 80})


@pytest.fixture(scope="session")
def rw_result(rw_panel):
    return train(rw_panel, params={"n_estimators": 40})


@pytest.fixture(scope="module")
def registry_settings(tmp_path_factory):
    """One MLflow store per test module: creating the sqlite schema takes a few seconds."""
    s = load_settings(tmp_path_factory.mktemp("home"))
    s.ensure_dirs()
    return s
