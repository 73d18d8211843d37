"""The shared market rules: the grid check is exact (an off-grid price is refused, never rounded),
tolerant only of float representation noise; ``workbench.market`` imports no venue or trading code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import workbench.market as market
from workbench.market import Bar, OrderRequest, floor_to_lot, grid_error, on_grid


@pytest.mark.parametrize(
    "value, step, ok",
    [
        (24000.004, 0.01, False),  # the stop: 0.4 of a tick off, must not pass as 24000.00
        (24000.01, 0.01, True),
        (24000.0, 0.01, True),
        (99.995, 0.01, False),
        (0.1 + 0.2, 0.1, True),  # 0.30000000000000004: float noise, on the grid
        (65000.12345678, 1e-8, True),  # a crypto price on a 1e-8 tick: 6.5e12 ticks, noise of the division
        (65000.123456785, 1e-8, False),  # half a 1e-8 tick off
        (1.0005, 0.001, False),
        (1.998, 0.001, True),
        (123.45, 0.05, True),
        (123.46, 0.05, False),
        (7.3, None, True),  # no grid: anything goes
    ],
)
def test_on_grid_is_exact_up_to_float_noise(value, step, ok):
    assert on_grid(value, step) is ok


def test_grid_error_refuses_an_off_grid_stop_naming_the_price():
    stop = OrderRequest("s1", "NSE:NIFTYBEES", "sell", 1.0, "stop_loss", stop_price=24000.004)
    reason, msg = grid_error(stop, 1.0, 0.01)
    assert reason == "tick_size" and "24000.004" in msg and "0.01" in msg
    assert grid_error(OrderRequest("s2", "X", "sell", 1.0, "stop_loss", stop_price=24000.01), 1.0, 0.01) is None
    assert grid_error(OrderRequest("q", "X", "buy", 1.0005), 0.001, 0.01)[0] == "lot_size"


def test_floor_to_lot_output_is_always_on_the_grid():
    for q in (0.1 + 0.2, 1.9999999999999998, 12345.678901, 3 * 0.1):
        for lot in (1e-8, 0.001, 0.1, 1.0):
            assert on_grid(floor_to_lot(q, lot), lot)


def test_bar_is_a_frozen_value():
    import pandas as pd

    b = Bar("X", pd.Timestamp("2024-01-02", tz="UTC"), 1.0, 2.0, 0.5, 1.5, 100.0)
    with pytest.raises(AttributeError):
        b.close = 2.0  # type: ignore[misc]


def test_market_module_imports_no_venue_or_trading_code():
    tree = ast.parse(Path(market.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m.startswith(("workbench.venues", "workbench.trading", "workbench.brokers"))]


@pytest.mark.parametrize("module", ["workbench/backtest/engine.py", "workbench/trading/risk.py", "workbench/features"])
def test_research_and_risk_take_market_types_from_workbench_market(module):
    root = Path(market.__file__).parents[1]
    paths = [root / module] if module.endswith(".py") else sorted((root / module).rglob("*.py"))
    for p in paths:
        tree = ast.parse(p.read_text())
        runtime = [
            n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
        ]  # module level, not TYPE_CHECKING
        mods = [n.module or "" for n in runtime if isinstance(n, ast.ImportFrom)] + [
            a.name for n in runtime if isinstance(n, ast.Import) for a in n.names
        ]
        assert not [m for m in mods if m.startswith(("workbench.venues", "workbench.brokers"))], p


def test_limit_and_stop_levels_are_the_prices_construction_guaranteed():
    """Code typed on a price (the adapters' trigger checks) reads ``limit_level``/``stop_level``: the
    price itself for the order types that must carry it, an error naming the gap for the others."""
    stop = OrderRequest("s", "X", "sell", 1.0, type="stop_loss", stop_price=95.0)
    take = OrderRequest("t", "X", "sell", 1.0, type="take_profit", limit_price=110.0)
    assert stop.stop_level == 95.0 and take.limit_level == 110.0
    with pytest.raises(ValueError, match="stop_loss order has no limit_price"):
        _ = stop.limit_level
    with pytest.raises(ValueError, match="market order has no stop_price"):
        _ = OrderRequest("m", "X", "buy", 1.0).stop_level
