from __future__ import annotations

import pytest

from tests.unit.features.research_kit import random_walk_panel, read_sp500


@pytest.fixture(scope="session")
def sp500_panel(shared_data):
    return read_sp500(shared_data)


@pytest.fixture
def rw_panel():
    return random_walk_panel(n_bars=400, late_start={"SYN-C": 57})
