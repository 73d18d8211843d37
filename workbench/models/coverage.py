"""Which symbols of the universe each walk-forward fold actually trains and tests on.

Why: symbols start and stop trading (listings, delistings, a vendor file that ends early), so a
"7-symbol model" can have test folds that hold only one of them. Its out-of-sample scores then
say nothing about the other six, yet the universe it is served and backtested on still has seven.
This module says so, per fold and overall, before any model is fitted.

Pure functions over a (ts, symbol) row index and the fold masks of ``splits.walk_forward_splits``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.models.splits import Fold

__all__ = ["THIN_SHARE", "TOP_SHARE", "Coverage", "fold_coverage"]

# A fold is thin when fewer than this share of the universe's symbols have test rows in it…
THIN_SHARE = 0.5
# …or when one symbol holds more than this share of its test rows.
TOP_SHARE = 0.5
_LISTED = 8  # symbols named in one sentence before "… and N more"


def _int(v: object) -> int:
    """A count or fold number from a row of ``itertuples`` (whose fields pandas-stubs type as any scalar)."""
    assert isinstance(v, (int, float, np.integer, np.floating))
    return int(v)


def _names(symbols: Sequence[str]) -> str:
    symbols = list(symbols)
    shown = ", ".join(symbols[:_LISTED])
    return shown + (f" and {len(symbols) - _LISTED} more" if len(symbols) > _LISTED else "")


@dataclass(frozen=True)
class Coverage:
    """Universe coverage of a walk-forward run.

    ``folds``: one row per fold — fold, test_start, test_end, train_symbols, test_symbols (counts),
    test_rows, tested (comma list), top_symbol, top_share. ``symbols``: one row per universe symbol —
    train_rows (any fold), test_rows, test_dates, folds_tested. ``warnings``: plain sentences, empty
    when every fold tests at least half the universe and no symbol holds more than half a fold's rows.
    """

    universe: tuple[str, ...]
    folds: pd.DataFrame
    symbols: pd.DataFrame
    warnings: tuple[str, ...]

    @property
    def tested(self) -> tuple[str, ...]:
        return tuple(self.symbols.index[self.symbols["test_rows"] > 0])

    @property
    def never_tested(self) -> tuple[str, ...]:
        return tuple(self.symbols.index[self.symbols["test_rows"] == 0])

    @property
    def thin(self) -> bool:
        return bool(self.warnings)

    def per_fold_text(self) -> str:
        """``"0: 7/7, 1: 1/7"``: symbols with test rows per fold, out of the universe."""
        n = len(self.universe)
        return ", ".join(f"{_int(r.fold)}: {_int(r.test_symbols)}/{n}" for r in self.folds.itertuples())

    def lines(self) -> list[str]:
        """What ``workbench train`` and ``models show`` print: a summary, one line per fold, the warnings."""
        n = len(self.universe)
        out = [
            f"universe coverage: {n} symbols; {len(self.tested)} with out-of-sample test rows"
            + (f"; never tested: {_names(self.never_tested)}" if self.never_tested else "")
        ]
        for r in self.folds.itertuples():
            top = f", top {r.top_symbol} {r.top_share:.0%} of rows" if r.test_rows else ""
            out.append(
                f"  fold {_int(r.fold)} ({str(r.test_start)[:10]} .. {str(r.test_end)[:10]}): trains on "
                f"{_int(r.train_symbols)}/{n}, tests {_int(r.test_symbols)}/{n} symbols, {_int(r.test_rows)} "
                f"test rows{top}"
            )
        out += [f"WARNING: {w}" for w in self.warnings]
        return out

    def to_dict(self) -> dict:
        """JSON-safe form (stored with a registered model)."""
        folds = self.folds.assign(
            test_start=self.folds["test_start"].astype(str), test_end=self.folds["test_end"].astype(str)
        )
        return {
            "universe": list(self.universe),
            "folds": folds.to_dict("records"),
            "symbols": self.symbols.reset_index().to_dict("records"),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Coverage:
        folds = pd.DataFrame(d.get("folds", []), columns=_FOLD_COLUMNS)
        symbols = pd.DataFrame(d.get("symbols", []), columns=["symbol", *_SYMBOL_COLUMNS]).set_index("symbol")
        return cls(tuple(d.get("universe", [])), folds, symbols, tuple(d.get("warnings", [])))


_FOLD_COLUMNS = [
    "fold",
    "test_start",
    "test_end",
    "train_symbols",
    "test_symbols",
    "test_rows",
    "tested",
    "top_symbol",
    "top_share",
]
_SYMBOL_COLUMNS = ["train_rows", "test_rows", "test_dates", "folds_tested"]


def _fold_warning(fold: int, n: int, tested: pd.Series) -> str | None:
    """One sentence when fold ``fold``'s test rows (per symbol, descending) cover the universe thinly."""
    k, rows = len(tested), int(tested.sum())
    if n < 2:
        return None
    if k == 0:
        return f"fold {fold} has no test rows for any of the {n} symbols"
    share = tested.iloc[0] / rows
    if k == 1:
        return f"fold {fold} tests only {tested.index[0]} (1 of {n} symbols): its scores say nothing about the others"
    if k < THIN_SHARE * n:
        return f"fold {fold} tests only {k} of {n} symbols ({_names([str(s) for s in tested.index])})"
    if share > TOP_SHARE:
        return f"fold {fold}: {tested.index[0]} holds {share:.0%} of the test rows"
    return None


def fold_coverage(
    index: pd.MultiIndex, universe: Sequence[str], folds: Sequence[Fold], labelled: np.ndarray | None = None
) -> Coverage:
    """Coverage of ``universe`` by the rows ``index`` (levels ts, symbol) that ``folds`` train and test on.

    ``labelled`` (bool per row) restricts *training* rows to those with a label (what a model fits
    on); test rows are every row the fold predicts, as a backtest would trade them.
    """
    universe = tuple(str(s) for s in universe)
    n = len(universe)
    sym = np.asarray(index.get_level_values("symbol").astype(str))
    ts = np.asarray(index.get_level_values("ts"))
    fit_ok = np.ones(len(sym), dtype=bool) if labelled is None else np.asarray(labelled, dtype=bool)
    train_any = np.zeros(len(sym), dtype=bool)
    test_any = np.zeros(len(sym), dtype=bool)
    tested_in: dict[str, int] = {}
    rows, warnings = [], []
    for f in folds:
        train_mask = np.asarray(f.train) & fit_ok
        test_mask = np.asarray(f.test)
        train_any |= train_mask
        test_any |= test_mask
        per = pd.Series(sym[test_mask]).value_counts().sort_index().sort_values(ascending=False, kind="stable")
        per = per[per.index.isin(universe)]
        for s in per.index:
            tested_in[s] = tested_in.get(s, 0) + 1
        total = int(per.sum())
        rows.append(
            {
                "fold": int(f.number),
                "test_start": f.test_start,
                "test_end": f.test_end,
                "train_symbols": len(set(sym[train_mask]) & set(universe)),
                "test_symbols": len(per),
                "test_rows": total,
                "tested": ",".join(per.index),
                "top_symbol": str(per.index[0]) if total else "",
                "top_share": float(per.iloc[0] / total) if total else float("nan"),
            }
        )
        w = _fold_warning(int(f.number), n, per)
        if w:
            warnings.append(w)
    test_rows = pd.Series(sym[test_any]).value_counts()
    test_dates = pd.DataFrame({"s": sym[test_any], "t": ts[test_any]}).groupby("s")["t"].nunique()
    symbols = pd.DataFrame(
        {
            "train_rows": pd.Series(sym[train_any]).value_counts().reindex(universe, fill_value=0),
            "test_rows": test_rows.reindex(universe, fill_value=0),
            "test_dates": test_dates.reindex(universe, fill_value=0),
            "folds_tested": pd.Series(tested_in, dtype=int).reindex(universe, fill_value=0),
        },
        index=pd.Index(universe, name="symbol"),
    ).astype(int)
    never = symbols.index[symbols["test_rows"] == 0].tolist()
    if n >= 2 and never:
        warnings.append(
            f"{len(never)} of {n} symbols are never tested out of sample ({_names(never)}): the "
            "out-of-sample scores and the backtest say nothing about them"
        )
    total = int(symbols["test_rows"].sum())
    if n >= 2 and total and symbols["test_rows"].max() / total > TOP_SHARE:
        top = symbols["test_rows"].idxmax()
        warnings.append(f"{top} holds {symbols['test_rows'].max() / total:.0%} of all out-of-sample test rows")
    return Coverage(universe, pd.DataFrame(rows, columns=_FOLD_COLUMNS), symbols, tuple(warnings))
