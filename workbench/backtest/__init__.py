"""Backtests: the live strategy run over history in vectorbt, judged out of sample.

engine.py  signals + panel → ``BacktestResult`` (the live risk rules, bar by bar; vectorbt's records)
kernel.py  the live cycle as one numba per-bar kernel over record arrays (rules, book, account, fills)
result.py  ``BacktestResult``: the boundary between the engine and the report
report.py  metrics beside buy & hold and the baseline, plots, HTML/PNG files, MLflow logging
"""

from workbench.backtest.engine import *  # noqa: F403
from workbench.backtest.engine import __all__ as _engine_all
from workbench.backtest.result import BacktestResult

__all__ = [*_engine_all, "BacktestResult"]
from workbench.backtest.evaluate import BacktestReport, backtest_model
from workbench.backtest.report import *  # noqa: F403
from workbench.backtest.report import __all__ as _report_all

__all__ += [*_report_all, "BacktestReport", "backtest_model"]
