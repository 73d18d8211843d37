"""Every run has an owner: tests here that use the ``settings`` home act as a logged-in trader
(``trade_paper``, the home's first account, so also its admin), through ``$WORKBENCH_TOKEN``."""

from __future__ import annotations

import pytest

from tests.kit.users import trader


@pytest.fixture(autouse=True)
def _logged_in(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    if "settings" in request.fixturenames:
        trader(request.getfixturevalue("settings"), monkeypatch=monkeypatch)
