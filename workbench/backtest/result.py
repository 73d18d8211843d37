"""The one value the engine hands the report: plain pandas, so the report, the plots, the parity
test and a quant in a notebook read the same numbers without knowing vectorbt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

__all__ = ["BacktestResult", "ORDER_COLUMNS", "TRADE_COLUMNS", "window_label"]

# One row per fill, in time order. reason: "entry" | "sell_signal" | "stop_loss" | "take_profit" | "end"
# window: the walk-forward fold (OOS window) whose prediction caused the order ("" if not known).
ORDER_COLUMNS = ("ts", "symbol", "side", "quantity", "price", "fee", "reason", "window")
# One row per round trip (entry fill → the exit fill that closed it); open trades have exit_ts NaT.
TRADE_COLUMNS = (
    "symbol", "entry_ts", "exit_ts", "quantity", "entry_price", "exit_price", "pnl", "return_pct",
    "fees", "exit_reason", "window", "bars_held",
)  # fmt: skip


@dataclass(frozen=True)
class BacktestResult:
    """What happened, bar by bar, in the account's base currency."""

    equity: pd.Series  # portfolio value at each bar's close (cash + positions at close)
    cash: pd.Series
    positions_value: pd.DataFrame  # (time × symbol) market value of each holding at the close
    orders: pd.DataFrame  # ORDER_COLUMNS
    trades: pd.DataFrame  # TRADE_COLUMNS
    halted: pd.Series  # bool per bar: new entries blocked by the daily-loss limit
    init_cash: float
    freq: str  # pandas frequency of the bars, e.g. "1D"
    # Builds the vectorbt Portfolio over the orders, for vectorbt's own plots and stats (or None).
    portfolio_builder: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    meta: dict[str, Any] = field(default_factory=dict)  # model ref, universe, costs, windows, …

    @cached_property
    def portfolio(self) -> Any:
        """The vectorbt Portfolio (one group, shared cash), built on first use: the figures above do
        not need it, and building it costs as much as the backtest's own cycle."""
        return self.portfolio_builder() if self.portfolio_builder is not None else None


def window_label(fold: int) -> str:
    """The label orders and trades carry for walk-forward fold ``fold``."""
    return f"fold {int(fold)}"
