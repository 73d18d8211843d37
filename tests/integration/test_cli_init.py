"""`workbench init --demo` (the first half of `make run`) offline: synthetic demo data, labelled as
such, and a champion model; running it again neither re-pulls nor re-trains."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _cli(home, *args):
    env = {
        **os.environ,
        "WORKBENCH_HOME": str(home),
        "WORKBENCH_DEMO__SOURCE": "auto",
        "WORKBENCH_DEMO__NETWORK_TIMEOUT_S": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], env=env, capture_output=True, text=True, timeout=900
    )


# The offline demo's paper replay must show trading within this many cycles (the 6-symbol pure-GBM demo
# of earlier releases placed none in 116: its model never left its base rate, so it only said SELL).
REPLAY_CYCLES = 3


def test_init_demo_offline_makes_a_labelled_synthetic_market_and_a_champion(tmp_path, monkeypatch):
    first = _cli(tmp_path, "init", "--demo")
    assert first.returncode == 0, first.stderr
    assert "SYNTHETIC" in first.stdout
    assert "registered workbench v1 as champion" in first.stdout
    assert (tmp_path / "data" / "workbench.db").exists() and (tmp_path / "mlruns" / "mlflow.db").exists()
    second = _cli(tmp_path, "init", "--demo")
    assert second.returncode == 0, second.stderr
    assert "registered" not in second.stdout and "champion model:" in second.stdout
    listed = _cli(tmp_path, "models", "list")
    assert listed.returncode == 0 and "champion" in listed.stdout
    assert "(150 in all)" in first.stdout

    # the offline demo trades visibly: a paper REPLAY of the labelled synthetic market places orders
    from tests.kit.users import trader
    from workbench.config import load_settings
    from workbench.trading.runner import run_live
    from workbench.trading.store import Store

    monkeypatch.setenv("WORKBENCH_DEMO__SOURCE", "auto")
    settings = load_settings(tmp_path)
    trader(settings, monkeypatch=monkeypatch)
    rid = run_live(settings, broker="paper", cycles=REPLAY_CYCLES, interval_s=0, min_interval_s=0, replay=True)
    store = Store(settings.store_url)
    run = store.run(rid)
    assert run["status"] == "STOPPED" and run["feed"] == "REPLAY", run
    assert "workbench/1 (champion)" in run["model_ref"]
    cycles = store.cycles(rid)
    assert len(cycles) == REPLAY_CYCLES and (cycles["n_signals"] == 150).all()
    assert cycles["n_orders"].sum() > 0, cycles[["cycle", "n_orders", "message"]].to_string()


@pytest.mark.slow
def test_init_compiles_the_numba_kernels_into_the_home(tmp_path):
    """`workbench init` leaves the features' and the backtest's compiled kernels under
    $WORKBENCH_HOME/.cache/numba, so a later fresh process loads them instead of compiling."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["WORKBENCH_HOME"] = str(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "workbench", "init"], env=env, capture_output=True, text=True, timeout=900
    )
    assert res.returncode == 0, res.stderr
    cache = tmp_path / ".cache" / "numba"
    assert f"cache: {cache}" in res.stdout
    index = {p.name.split("-")[0] for p in cache.rglob("*.nbi")}
    for kernel in ("kernels.rolling_k", "kernels.ema_k", "kernel._simulate_nb", "kernel._cycle_nb"):
        assert kernel in index, sorted(index)[:20]
    # A fresh process loads the backtest's kernel from that cache: a hit, no compilation (the time it
    # takes is measured by `python -m bench backtest`, not asserted here).
    fresh = subprocess.run(
        [sys.executable, "-c", _FIRST_BACKTEST], env=env, capture_output=True, text=True, timeout=600
    )
    assert fresh.returncode == 0, fresh.stderr
    hits, misses = fresh.stdout.split()[-2:]
    assert int(misses) == 0 and int(hits) >= 1, fresh.stdout


# The first backtest in a process whose settings point numba at the home's cache (as the CLI's do).
_FIRST_BACKTEST = """
from workbench.config import load_settings
from workbench.warmup import use_numba_cache
use_numba_cache(load_settings().numba_cache_dir)
from workbench.backtest import kernel
from workbench.warmup import compile_kernels
compile_kernels()
stats = kernel._simulate_nb.stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""
