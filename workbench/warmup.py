"""Compile the numba kernels ahead of first use and keep them on disk under the workbench home.

Why: the features' streaming kernels and the backtest's cycle are numba functions with
``cache=True``; compiled once, every later process loads them from the cache in well under a second.
Compiling them costs tens of seconds, which a user would otherwise pay on their first
``workbench backtest`` or first feature build. ``workbench init`` calls ``compile_kernels`` so that
cost is paid at set-up, once per install (numba re-validates the cache against the source files).

The cache lives in ``$WORKBENCH_HOME/.cache/numba`` (``Settings.numba_cache_dir``), not beside the
installed sources (a site-packages directory may be read-only, and a notebook, the dashboard and the
CLI should share one cache). ``use_numba_cache`` sets ``NUMBA_CACHE_DIR`` for that (a subdirectory
named by ``source_stamp``) unless the user set it; numba reads it when a kernel module is first imported, so it is called before those imports
(``workbench.config.load_settings`` does).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.data.panel import Panel

__all__ = ["KERNEL_MODULES", "compile_kernels", "source_stamp", "use_numba_cache", "warm_backtest"]

# Modules whose import decorates cached kernels: NUMBA_CACHE_DIR must be set before they load.
KERNEL_MODULES = (
    "workbench.features.kernels",
    "workbench.features.fused_steps",
    "workbench.features.fused",
    "workbench.features.fused_simd",
    "workbench.features.v2_row",
    "workbench.backtest.kernel",
    "workbench.trading.engine",
    "workbench.live.bars",
    "workbench.live.quotes",
)


def source_stamp(modules: tuple[str, ...] = KERNEL_MODULES, root: Path | None = None) -> str:
    """A digest of the kernel modules' source files, read without importing them.

    Why: numba checks a cached kernel only against the file that defines it. ``fused.series_k`` calls
    into ``fused_steps`` and ``fused_simd``; after an upgrade that changes only those, numba would load
    the old machine code for ``series_k`` and compute the old features. Keying the cache directory on
    all the kernel files together makes any change among them start a fresh cache."""
    root = root or Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in modules:
        f = root.joinpath(*name.split(".")[1:]).with_suffix(".py")
        h.update(name.encode())
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()[:16]


def use_numba_cache(cache_dir: Path | str) -> str:
    """Point numba's on-disk cache at ``cache_dir``/<source stamp> (an explicit ``NUMBA_CACHE_DIR``
    wins) and return the directory in effect. Kernels already imported keep the directory they were
    built with. Caches of other stamps (earlier versions of the kernels) are removed: nothing loads them."""
    current = os.environ.get("NUMBA_CACHE_DIR")
    if current:
        return current
    if any(m in sys.modules for m in KERNEL_MODULES):
        return ""  # too late for this process; the next one picks it up
    base = Path(cache_dir)
    here = base / f"src-{source_stamp()}"
    here.mkdir(parents=True, exist_ok=True)
    for old in base.glob("src-*"):
        if old != here:
            shutil.rmtree(old, ignore_errors=True)  # a process still using it keeps its loaded kernels
    os.environ["NUMBA_CACHE_DIR"] = str(here)
    return str(here)


def _tiny_panel(n_symbols: int = 3, n_bars: int = 80) -> Panel:
    import numpy as np
    import pandas as pd

    from workbench.data.panel import Panel

    rng = np.random.default_rng(0)
    idx = pd.date_range("2024-01-01", periods=n_bars, freq="1D", tz="UTC", name="ts")
    cols = pd.Index([f"W{i}" for i in range(n_symbols)], name="symbol")
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_bars, n_symbols)), axis=0))
    o = c * np.exp(rng.normal(0, 0.002, c.shape))
    h, lo = np.maximum(o, c) * 1.01, np.minimum(o, c) * 0.99

    def mk(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(a, index=idx, columns=cols)

    vol = mk(np.full(c.shape, 1e6))
    return Panel(open=mk(o), high=mk(h), low=mk(lo), close=mk(c), volume=vol, exchange="warmup", timeframe="1d")


def compile_kernels() -> float:
    """Run every numba kernel once on a tiny panel (compiling it into the cache); returns seconds."""
    import numpy as np
    import pandas as pd

    from workbench.features import IncrementalFeatures, build_features
    from workbench.features.fused_simd import compile_group
    from workbench.features.v2_row import compile_passes
    from workbench.trading.engine import _changed_columns  # the live engine's backfill check

    t0 = time.perf_counter()
    panel = _tiny_panel()
    for name in ("v1", "v2"):
        build_features(panel, name)
    for name in ("v1", "v2"):  # the live engine's streaming kernels (v1's are not the fused v2 ones)
        inc = IncrementalFeatures.from_history(panel.iloc(slice(0, len(panel.index) - 1)), name)
        last = panel.iloc(slice(len(panel.index) - 1, None))
        for _ in range(2):  # the live loop's peeks: the second brings the scratch back in step (v2_row)
            inc.peek(last)
        inc.update(last)
    compile_passes()  # the one-bar passes a tiny panel does not reach (the 2-thread one, the peek's synced ones)
    compile_group()  # the vector lanes, which a panel of fewer than fused_simd.LANES instruments does not reach
    # The backfill check as the engine calls it: a panel field's array against a row slice of the last
    # panel's. Both layouts a panel comes in: the live feed's frames wrap C-ordered rows, a frame pandas
    # built (replays, pulls) is Fortran-ordered; each is its own compiled version.
    frame = panel.close
    for closes in (frame.to_numpy(dtype=float), pd.DataFrame(np.ascontiguousarray(frame), copy=False).to_numpy()):
        rows = np.arange(len(closes) - 1, dtype=np.int64)
        cols = np.arange(closes.shape[1], dtype=np.int64)
        _changed_columns(closes, rows, closes[:-1], rows, cols, np.zeros(closes.shape[1], dtype=np.bool_))
    warm_backtest(panel)
    return time.perf_counter() - t0


def warm_backtest(panel: Panel | None = None) -> float:
    """One backtest and its summary on a tiny panel (the backtest's kernel and vectorbt's trade,
    position and portfolio kernels); returns seconds."""
    import numpy as np
    import pandas as pd

    from workbench.backtest.engine import run_backtest
    from workbench.backtest.report import summarize
    from workbench.config import CostModel, RiskLimits

    t0 = time.perf_counter()
    panel = panel if panel is not None else _tiny_panel()
    c = panel.close
    cell = np.arange(c.size).reshape(c.shape)
    side = pd.DataFrame(
        np.where(cell % 7 == 0, 1.0, np.where(cell % 11 == 0, -1.0, 0.0)), index=c.index, columns=c.columns
    )
    frames = {"side": side, "strength": side.abs(), "confidence": side.abs().where(side != 0),
              "stop": c * 0.97, "take_profit": c * 1.05}  # fmt: skip
    result = run_backtest(frames, panel, RiskLimits(), CostModel(), 100_000.0)
    summarize(result, panel)
    # The trades compiled vectorbt's trade and position kernels; the Portfolio (built on first use)
    # compiles the ones its plots and stats use.
    result.portfolio.value(), result.portfolio.positions.values
    return time.perf_counter() - t0
