"""Judge a registered model by trading its out-of-sample predictions, beside buy & hold and a baseline.

Why only the walk-forward predictions: a model backtested on bars it was trained on looks brilliant
and means nothing. The training run stores, with the model, the probabilities each walk-forward
fold's model gave on its own unseen test window (``Registry.load_oos``); those — and only those —
are turned into signals (``signals.signal_frame`` with the live parameters and the model's own
out-of-sample strength reference, exactly as ``models.inference`` does live) and traded by the
engine. Every order carries the fold it came from.

The baseline model is the momentum rule the training run scored on the very same folds, traded
through the same engine with the same rules and costs; buy & hold is an equal-weight position in
every symbol of the universe over the same bars. The report is logged to the model's MLflow run.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from workbench.backtest.coverage import TradeCoverage, trade_coverage
from workbench.backtest.report import (
    BASELINE,
    BUY_AND_HOLD,
    STRATEGY,
    buy_and_hold,
    comparison_table,
    drawdown_figure,
    equity_figure,
    format_table,
    summarize,
    trade_pnl_figure,
    trades_on_price_figure,
    verdict,
    volume_breaches,
    window_table,
    write_report,
)  # fmt: skip
from workbench.backtest.result import BacktestResult, window_label
from workbench.data.panel import Panel
from workbench.errors import Cancelled, NoDataError, UnknownSymbolError

if TYPE_CHECKING:
    from workbench.config import Settings

__all__ = ["BacktestReport", "backtest_model", "oos_signal_frames", "window_label"]


@dataclass(frozen=True)
class BacktestReport:
    """A model's out-of-sample backtest, its yardsticks, and where the report files went."""

    model: str  # "NAME/VERSION"
    run_id: str
    metrics: dict  # the strategy's numbers (``report.summarize``)
    table: pd.DataFrame  # metric × (strategy | buy & hold | baseline model), floats
    result: BacktestResult
    buy_and_hold: BacktestResult
    baseline: BacktestResult | None
    windows: pd.DataFrame  # the folds traded: fold, start, end, bars, each column's return there, trades, win rate, P&L
    verdict: str  # one sentence: beat buy & hold / the baseline after costs, or not
    beats: dict[str, bool] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    coverage: TradeCoverage | None = None  # symbols predicted out of sample and traded, of the universe

    def formatted(self) -> pd.DataFrame:
        """The comparison table as readable text (percentages, money)."""
        return format_table(self.table)


def _utc(ts) -> pd.Timestamp | None:
    if ts is None or ts == "":
        return None
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _symbols(universe, model_symbols: list[str]) -> list[str]:
    if universe is None or universe == "" or universe == []:
        return list(model_symbols)
    wanted = [s.strip() for s in (universe.split(",") if isinstance(universe, str) else universe) if str(s).strip()]
    unknown = [s for s in wanted if s not in model_symbols]
    if unknown:
        raise UnknownSymbolError(
            f"{unknown} not in the model's universe {model_symbols}: the model has no out-of-sample predictions "
            f"for them; pick a subset of its symbols or train a model on them (`workbench train --universe ...`)"
        )
    return wanted


def _windows_text(windows: pd.DataFrame) -> str:
    rows = zip(windows["fold"], windows["start"], windows["end"], strict=True)
    return "; ".join(f"{window_label(fold)} {start.date()} .. {end.date()}" for fold, start, end in rows)


def oos_signal_frames(proba: pd.DataFrame, panel: Panel, params, strength_reference) -> dict[str, pd.DataFrame]:
    """``signal_frame`` on out-of-sample probabilities, with ATR from the panel's full history
    (so the first traded bar's stops use a converged ATR, as live would)."""
    from workbench.features.pipeline import feature_atr
    from workbench.signals import signal_frame

    atr = feature_atr(panel, params.atr_window)
    return signal_frame(proba, panel.close, atr, params, strength_reference)


def backtest_model(
    settings: Settings,
    ref: str = "champion",
    panel: Panel | None = None,
    start=None,
    end=None,
    universe=None,
    out_dir: str | Path | None = None,
    log: bool = True,
    cancel: threading.Event | None = None,
) -> BacktestReport:
    """Trade ``ref``'s walk-forward out-of-sample predictions; report beside buy & hold and the baseline.

    ``universe`` (comma string or list) is a subset of the model's symbols; ``start``/``end`` narrow
    the traded bars inside the out-of-sample windows. Files go to ``out_dir`` (default
    ``$WORKBENCH_HOME/reports/backtest-<model>-<timestamp>/``); with ``log`` the metrics (prefix
    ``backtest_``) and the files are attached to the model's MLflow run.

    ``cancel``: once set, the backtest raises ``Cancelled`` at its next step (each step is one load, one
    simulation or one report), before any file is written or anything is logged to the run: a user who
    cancels gets nothing half-saved, and the computation does not run on for minutes behind the page.
    """

    def checkpoint(step: str) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"backtest of {ref!r} cancelled {step}: no report was written and nothing was logged")

    from workbench.backtest.engine import run_backtest
    from workbench.models.registry import Registry

    registry = Registry(settings)
    model = registry.load(ref)
    oos = registry.load_oos(model)
    checkpoint("after loading the model")
    uni = model.universe
    symbols = _symbols(universe, [str(s) for s in uni["symbols"]])
    if panel is None:
        from workbench.data.calendars import Calendars
        from workbench.data.lake import Lake

        panel = Lake(settings.lake_dir).load_panel(uni["exchange"], uni["timeframe"], symbols)
        panel = panel.with_calendars(Calendars.from_settings(settings))
    missing = [s for s in symbols if s not in panel.symbols]
    if missing:
        raise UnknownSymbolError(
            f"{missing} have no candles in the panel ({uni['exchange']} {uni['timeframe']}): "
            f"pull them with `workbench data pull`"
        )
    panel = panel.select(symbols)
    checkpoint("after loading the candles")

    all_windows = oos.windows()
    t0, t1 = _utc(start), _utc(end)
    first, last = oos.fold.index.min(), oos.fold.index.max()
    lo = max(first, t0) if t0 is not None else first
    hi = min(last, t1) if t1 is not None else last
    idx = panel.index
    traded_index = idx[(idx >= lo) & (idx <= hi) & idx.isin(oos.fold.index)]
    if lo > hi or len(traded_index) == 0:
        asked = f"{t0.date() if t0 is not None else '…'} .. {t1.date() if t1 is not None else '…'}"
        raise NoDataError(
            f"no out-of-sample predictions of model {model.ref} in {asked} with candles in the lake: its walk-forward "
            f"windows are {_windows_text(all_windows)}; pick --start/--end inside them"
        )
    notes = []
    if t0 is not None and t0 < first:
        notes.append(f"start {t0.date()} is before the first out-of-sample prediction: trading starts {first.date()}")
    if t1 is not None and t1 > last:
        notes.append(f"end {t1.date()} is after the last out-of-sample prediction: trading ends {last.date()}")
    if idx[-1] > last:
        notes.append(
            f"{int((idx > last).sum())} newer bars after {last.date()} are not traded: the model made no "
            f"walk-forward prediction on them (retrain to include them)"
        )

    # ATR and stops need the history before the first traded bar; trading happens on traded_index only.
    history = panel.upto(hi)
    fold = oos.fold.reindex(traded_index)
    windows = pd.Series([window_label(f) for f in fold.to_numpy()], index=traded_index, name="window")
    traded = Panel(
        **{f: panel.field(f).reindex(traded_index) for f in ("open", "high", "low", "close", "volume")},
        exchange=panel.exchange,
        timeframe=panel.timeframe,
        calendars=panel.calendars,
    )
    cash = float(settings.paper.starting_cash)
    # As live: the risk module sizes with the account's costs, the venue fills with the exchange's.
    exchange_costs = dict(settings.paper.exchange_costs)
    fee, slip = exchange_costs.get(panel.exchange, (settings.costs.fee_rate, settings.costs.slippage_bps))

    def trade(proba: pd.DataFrame, reference: np.ndarray) -> BacktestResult:
        frames = oos_signal_frames(
            proba.reindex(index=history.index, columns=symbols), history, settings.signals, reference
        )
        frames = {k: v.reindex(traded_index) for k, v in frames.items()}
        return run_backtest(
            frames, traded, settings.risk, settings.costs, cash, windows=windows, exchange_costs=exchange_costs
        )

    result = trade(oos.proba.reindex(traded_index), model.strength_reference)
    checkpoint("after the strategy's simulation")
    coverage = trade_coverage(symbols, oos.proba.reindex(index=traded_index, columns=symbols), result.trades)
    notes.insert(0, coverage.sentence())
    share = settings.paper.max_volume_share
    breaches = volume_breaches(result.orders, traded, share)
    if len(breaches):
        notes.append(
            f"{len(breaches)} times the strategy traded more than {share:.0%} of a bar's volume in one symbol (up to "
            f"{breaches['share'].max():.0%}): the paper broker fills at most {share:.0%} and rests the rest, so "
            f"live would have traded less there and these figures are optimistic (paper.max_volume_share)"
        )
    baseline = None
    if oos.baseline is not None:
        ref_b = np.abs(oos.baseline.to_numpy(dtype=float).ravel() - 0.5)
        baseline = trade(oos.baseline.reindex(traded_index), ref_b[np.isfinite(ref_b)])
    bh = buy_and_hold(traded, cash, fee, slip)
    checkpoint("after the baselines' simulations")

    columns = {STRATEGY: result, BUY_AND_HOLD: bh, **({BASELINE: baseline} if baseline is not None else {})}
    ppy = summarize(result, panel)["periods_per_year"]  # one annualisation for all three columns
    table = comparison_table(columns, periods_per_year=ppy)
    sentence, beats = verdict(table)
    metrics = summarize(result, periods_per_year=ppy)
    used = all_windows[all_windows["fold"].isin(fold.dropna().astype(int).unique())].copy()
    used["bars"] = used["fold"].map(fold.value_counts()).astype(int)
    used["start"] = used["fold"].map(traded_index.to_series().groupby(fold.to_numpy()).min())
    used["end"] = used["fold"].map(traded_index.to_series().groupby(fold.to_numpy()).max())
    used = window_table(columns, used)

    checkpoint("before writing the report")
    name = f"{model.ref.name}/{model.ref.version}"
    out = (
        Path(out_dir)
        if out_dir is not None
        else (
            Path(settings.home)
            / "reports"
            / f"backtest-{model.ref.name}-v{model.ref.version}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S%f}"
        )
    )
    title = (
        f"Backtest of {model.kind} model {name}: {panel.exchange} {panel.timeframe}, {len(symbols)} symbols "
        f"({len(coverage.predicted)} predicted out of sample, {len(coverage.traded)} traded), "
        f"{traded_index[0].date()} .. {traded_index[-1].date()} (out of sample)"
    )
    figures = {
        "equity": equity_figure(columns, used, title="equity (walk-forward windows shaded)"),
        "drawdown": drawdown_figure(columns),
        "trade_pnl": trade_pnl_figure(result, title="strategy: P&L per closed trade, by walk-forward window"),
        "fills": trades_on_price_figure(result, history, title="strategy: fills on price (most-traded symbols)"),
    }
    cost_note = (
        f"Costs: fee {fee:.4%} of notional, slippage {slip:g} bp per fill; open positions are valued "
        f"at the last close; "
        f"risk: {settings.risk.max_position_pct:.0%} per position, strength > {settings.risk.min_strength}."
    )
    paths = write_report(
        out,
        table,
        figures,
        title=title,
        notes=[sentence, cost_note, *notes],
        trades=result.trades,
        windows=used,
        symbols=coverage.table(),
    )
    _close(figures)
    if cancel is not None and cancel.is_set():  # cancelled while writing: nothing is logged, our own files go
        if out_dir is None:
            shutil.rmtree(out, ignore_errors=True)
        checkpoint("while writing the report")

    if log:
        logged = {f"backtest_{k}": v for k, v in metrics.items()}
        for prefix, r in (("buy_hold", bh), ("baseline", baseline)):
            if r is not None:
                col = table[BUY_AND_HOLD if prefix == "buy_hold" else BASELINE]
                logged.update({f"backtest_{prefix}_{k}": float(v) for k, v in col.items()})
        logged.update(
            {f"backtest_beats_{'buy_hold' if k == BUY_AND_HOLD else 'baseline'}": float(v) for k, v in beats.items()}
        )
        logged["backtest_volume_breaches"] = float(len(breaches))
        logged.update({f"backtest_{k}": v for k, v in coverage.metrics().items()})
        logged["backtest_coverage"] = coverage.sentence()
        logged["backtest_verdict"] = sentence
        logged["backtest_report"] = str(out)
        registry.log_report(model.ref.run_id, logged, {out.name: out})
    return BacktestReport(
        model=name,
        run_id=model.ref.run_id,
        metrics=metrics,
        table=table,
        result=result,
        buy_and_hold=bh,
        baseline=baseline,
        windows=used.reset_index(drop=True),
        verdict=sentence,
        beats=beats,
        paths=paths,
        notes=tuple(notes),
        coverage=coverage,
    )


def _close(figures: dict) -> None:
    """Figures made with ``matplotlib.figure.Figure`` hold no pyplot state; drop their canvases' memory."""
    for fig in figures.values():
        fig.clear()
