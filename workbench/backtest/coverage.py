"""How much of the universe a backtest actually predicted on and traded.

Why: a backtest titled "7 symbols" whose 21 trades are all MSFT is a backtest of MSFT. The
out-of-sample predictions cover only the symbols the walk-forward test folds held, and the strategy
may trade fewer still; the report must say which, and warn when one symbol carries the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from workbench.models.coverage import THIN_SHARE, TOP_SHARE

__all__ = ["TradeCoverage", "trade_coverage"]


@dataclass(frozen=True)
class TradeCoverage:
    """Symbols of the traded universe with out-of-sample predictions, with trades, and trades per symbol."""

    universe: tuple[str, ...]
    predicted: tuple[str, ...]  # symbols with at least one out-of-sample prediction on the traded bars
    traded: tuple[str, ...]  # symbols with at least one trade, most trades first
    trades_per_symbol: pd.Series  # symbol → number of trades (round trips, open ones included), descending
    warnings: tuple[str, ...]

    @property
    def n_trades(self) -> int:
        return int(self.trades_per_symbol.sum())

    @property
    def top_share(self) -> float:
        """The most-traded symbol's share of the trades (NaN without trades)."""
        return float(self.trades_per_symbol.iloc[0] / self.n_trades) if self.n_trades else float("nan")

    def trades_text(self) -> str:
        """e.g. "trades: 21, all in MSFT (1 of 7 symbols)" or "trades: 40 in 5 of 7 symbols (AAPL 55%, …)"."""
        n, k, t = len(self.universe), len(self.traded), self.n_trades
        if t == 0:
            return f"trades: 0 (0 of {n} symbols)"
        if k == 1:
            return f"trades: {t}, all in {self.traded[0]} (1 of {n} symbols)"
        text = f"trades: {t} in {k} of {n} symbols"
        if self.top_share > TOP_SHARE:
            shares = [f"{s} {c / t:.0%}" for s, c in self.trades_per_symbol.head(3).items()]
            text += " (" + ", ".join(shares) + (", …" if k > 3 else "") + ")"
        return text

    def sentence(self) -> str:
        """One line for the report: predictions, trades, and the warnings."""
        n, p = len(self.universe), len(self.predicted)
        missing = [s for s in self.universe if s not in self.predicted]
        text = f"Universe: {n} symbols; out-of-sample predictions for {p} of {n}"
        if missing:
            text += f" (none for {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''})"
        text += f"; {self.trades_text()}."
        if self.warnings:
            text += " WARNING: " + " ".join(self.warnings)
        return text

    def table(self) -> pd.DataFrame:
        """One row per universe symbol, most trades first: predicted out of sample?, trades, share of trades."""
        trades = self.trades_per_symbol.reindex(list(self.universe), fill_value=0).astype(int)
        out = pd.DataFrame(
            {
                "symbol": list(self.universe),
                "out-of-sample predictions": ["yes" if s in self.predicted else "none" for s in self.universe],
                "trades": trades.to_numpy(),
                "share of trades": trades.to_numpy() / max(self.n_trades, 1),
            }
        )
        return out.sort_values("trades", ascending=False, kind="stable", ignore_index=True)

    def metrics(self) -> dict[str, float]:
        """Numbers for MLflow (prefixed ``backtest_`` by the caller)."""
        return {
            "symbols_universe": float(len(self.universe)),
            "symbols_predicted": float(len(self.predicted)),
            "symbols_traded": float(len(self.traded)),
            "top_symbol_trade_share": self.top_share,
        }


def trade_coverage(universe: Sequence[str], proba: pd.DataFrame, trades: pd.DataFrame) -> TradeCoverage:
    """Coverage of ``universe`` by the out-of-sample ``proba`` (time × symbol, the traded bars) and ``trades``."""
    universe = tuple(str(s) for s in universe)
    has = proba.reindex(columns=list(universe)).notna().any(axis=0)
    predicted = tuple(s for s in universe if bool(has.get(s, False)))
    counts = trades["symbol"].astype(str).value_counts() if len(trades) else pd.Series(dtype=int)
    counts = counts.sort_index().sort_values(ascending=False, kind="stable").astype(int)
    n, warnings = len(universe), []
    if n >= 2:
        if len(predicted) < THIN_SHARE * n:
            warnings.append(
                f"Only {len(predicted)} of {n} symbols have out-of-sample predictions: this backtest "
                f"judges the model on {', '.join(predicted) or 'no symbol'}, not on the universe."
            )
        if counts.sum() and len(counts) == 1:
            warnings.append(f"Every trade is in {counts.index[0]}: the result is one symbol's.")
        elif counts.sum() and counts.iloc[0] / counts.sum() > TOP_SHARE:
            warnings.append(f"{counts.index[0]} holds {counts.iloc[0] / counts.sum():.0%} of the trades.")
    return TradeCoverage(universe, predicted, tuple(counts.index), counts, tuple(warnings))
