"""Phase 1 checks and Phase 2 cycles: a replay over a real parquet lake, the real paper broker and
SQLite, and the tiny momentum engine from the test kit. What the loop leaves in SQLite must obey
every risk limit, including a simulated crash that takes the day past the 5% loss limit."""

from __future__ import annotations

import pytest

from tests.kit.models import MomentumEngine, synthetic_panel
from tests.kit.users import current_user
from workbench.data.lake import Lake
from workbench.errors import NoModelError
from workbench.signals import Signal
from workbench.trading.feeds import ReplayFeed
from workbench.trading.loop import CHECKS, LiveContext, phase1, run_cycle
from workbench.trading.orders import OrderManager
from workbench.trading.store import Store
from workbench.venues.base import BrokerStatus, TemporaryBrokerError
from workbench.venues.paper.broker import PaperBroker

N_SYMBOLS, N_BARS, CRASH_BAR = 12, 60, 57  # replaying bars 55..59: the crash is the 3rd cycle


@pytest.fixture
def store(settings) -> Store:
    return Store(settings.store_url).create()


def paper(store, settings) -> PaperBroker:
    return PaperBroker(
        store,
        starting_cash=settings.paper.starting_cash,
        fee_rate=settings.costs.fee_rate,
        slippage_bps=settings.costs.slippage_bps,
    )


def make_ctx(settings, store, broker, feed, engine) -> LiveContext:
    run_id = store.start_run("paper", "paper", "paper", "kit", 0.0, 1)
    return LiveContext(
        store=store,
        broker=broker,
        feed=feed,
        engine=engine,
        orders=OrderManager(store, broker, "paper", run_id=run_id),
        run_id=run_id,
        account="paper",
        limits=settings.risk,
        costs=settings.costs,
    )


# ---- Phase 1 ----------------------------------------------------------------------------------------
def test_phase1_passes_in_spec_order_and_records_each_check(settings, store):
    run_id = store.start_run("paper", "paper")
    seen = []
    results = phase1(
        settings,
        paper(store, settings),
        lambda: MomentumEngine(),
        store=store,
        run_id=run_id,
        on_result=seen.append,
        user=current_user(settings),
    )
    assert [r.name for r in results] == list(CHECKS) == ["authentication", "api_keys", "exchange", "models", "risk"]
    assert all(r.ok for r in results) and seen == results
    msgs = dict(zip(CHECKS, (r.message for r in results)))
    assert (
        "user trader (id 1), permission 'trade_paper'" in msgs["authentication"] and "no API keys" in msgs["api_keys"]
    )
    assert "100,000.00 USD" in msgs["exchange"] and "kit momentum" in msgs["models"]
    assert "10% of equity" in msgs["risk"] and "5% daily loss" in msgs["risk"] and "0.70" in msgs["risk"]
    assert list(store.checks(run_id)["name"]) == list(CHECKS)


def test_phase1_without_a_model_fails_at_models_with_its_message(settings, store):
    run_id = store.start_run("paper", "paper")

    def no_model():
        raise NoModelError("no model registered as 'champion': run `workbench train` first")

    results = phase1(
        settings, paper(store, settings), no_model, store=store, run_id=run_id, user=current_user(settings)
    )
    assert [(r.name, r.ok) for r in results] == [
        ("authentication", True),
        ("api_keys", True),
        ("exchange", True),
        ("models", False),
    ]
    assert "workbench train" in results[-1].message
    assert list(store.checks(run_id)["ok"]) == [True, True, True, False]


class Venue:
    """The paper broker presented as another venue (environment / health), to test the gates."""

    def __init__(self, inner: PaperBroker, environment="paper", ok=True, check_failures=0):
        self.inner, self._env, self.ok, self.check_failures, self.name = inner, environment, ok, check_failures, "venue"

    def __getattr__(self, name):
        return getattr(self.inner, name)

    @property
    def environment(self):
        return self._env

    def check(self) -> BrokerStatus:
        if self.check_failures > 0:
            self.check_failures -= 1
            raise TemporaryBrokerError("timeout")
        return BrokerStatus(self.ok, self._env, "up" if self.ok else "venue in maintenance")


def test_phase1_refuses_a_live_broker_without_the_trade_live_permission(settings, store):
    results = phase1(
        settings,
        Venue(paper(store, settings), environment="live"),
        lambda: MomentumEngine(),
        user=current_user(settings),
    )
    assert len(results) == 1 and not results[0].ok
    assert "'trade_live' permission" in results[0].message and "--broker paper" in results[0].message


def test_phase1_stops_when_the_exchange_is_down(settings, store):
    results = phase1(
        settings, Venue(paper(store, settings), ok=False), lambda: MomentumEngine(), user=current_user(settings)
    )
    assert [r.name for r in results][-1] == "exchange" and not results[-1].ok and "maintenance" in results[-1].message


# ---- Phase 2 ----------------------------------------------------------------------------------------
def test_five_cycles_on_a_lake_replay_obey_every_limit(settings, store):
    lake = Lake(settings.lake_dir)
    lake.write(
        synthetic_panel(N_SYMBOLS, N_BARS, crash_at=CRASH_BAR, crash_gap=True).to_long(), "TEST", "1d", "synthetic"
    )
    feed = ReplayFeed(lake, "TEST", "1d", None, warmup_bars=40, replay_bars=5)
    broker = paper(store, settings)
    ctx = make_ctx(settings, store, broker, feed, MomentumEngine(lookback=20, gain=3.0))
    results = [run_cycle(ctx) for _ in range(5)]
    assert [r.cycle for r in results] == [1, 2, 3, 4, 5] and results[-1].exhausted
    run_id, limits = ctx.run_id, settings.risk

    cycles = store.cycles(run_id)
    signals = store.signals(run_id, last_cycles=None)
    orders = store.orders(run_id, limit=10_000)
    equity = store.equity_curve(run_id)
    events = store.events(run_id, limit=10_000)
    assert len(cycles) == 5 and len(signals) == 5 * N_SYMBOLS and len(equity) == 5
    assert (equity["cash"] >= -1e-6).all()
    assert store.run(run_id)["cycle"] == 5 and store.run(run_id)["cursor"] == 5

    buys = orders[orders["side"] == "buy"]
    assert len(buys) >= 10 and (buys["status"] == "FILLED").all()
    for cyc, group in buys.groupby("cycle"):
        eq_after = float(equity["equity"].iloc[cyc - 1])
        sig = signals[signals["cycle"] == cyc].set_index("symbol")
        px = sig.loc[group["symbol"], "price"].to_numpy()
        costs = (group["fee"] + (group["average_price"] - px).abs() * group["filled_quantity"]).sum()
        # market sells sent during the signals cost fees and slippage too (resting exits filled before
        # the risk snapshot was taken, so they are in it already)
        sells = orders[
            (orders["cycle"] == cyc)
            & (orders["side"] == "sell")
            & (orders["type"] == "market")
            & (orders["filled_quantity"] > 0)
        ]
        sells = sells[~sells["reason"].str.startswith(("stop_loss", "take_profit"))]
        if len(sells):
            sp = signals[signals["cycle"] == cyc].set_index("symbol").loc[sells["symbol"], "price"].to_numpy()
            costs += (sells["fee"] + (sp - sells["average_price"]).abs() * sells["filled_quantity"]).sum()
        eq_before = eq_after + costs
        notional = group["quantity"].to_numpy() * px
        assert (notional <= limits.max_position_pct * eq_before * (1 + 1e-9)).all(), (cyc, notional.max(), eq_before)
        assert (sig.loc[group["symbol"], "signal"] == "BUY").all() and (
            sig.loc[group["symbol"], "strength"] > limits.min_strength
        ).all()

    # The crash bar (cycle 3): stops fire, the day is down more than 5%, and no entry is made...
    crash = equity.iloc[2]
    assert crash["equity"] / crash["day_start_equity"] - 1 < -limits.max_daily_loss_pct
    # the resting stop-loss orders filled at the gap (the open), their take-profit twins were cancelled
    fills = store.fills("paper").merge(orders[["client_order_id", "type", "oco_group"]], on="client_order_id")
    stopped = orders[(orders["type"] == "stop_loss") & (orders["status"] == "FILLED")]
    assert len(stopped) >= 5
    gap_open = synthetic_panel(N_SYMBOLS, N_BARS, crash_at=CRASH_BAR, crash_gap=True).open.iloc[CRASH_BAR]
    for _, o in stopped.iterrows():
        assert o["average_price"] == pytest.approx(gap_open[o["symbol"]] * (1 - settings.costs.slippage_bps / 1e4))
        twin = orders[(orders["oco_group"] == o["oco_group"]) & (orders["type"] == "take_profit")]
        assert (twin["status"] == "CANCELLED").all() and len(twin) == 1
    assert fills.groupby("oco_group")["type"].nunique().max() == 1  # never both legs of a pair
    strong_buys = signals[
        (signals["cycle"] == 3) & (signals["signal"] == "BUY") & (signals["strength"] > limits.min_strength)
    ]
    assert len(strong_buys) >= 5  # the model still wanted in
    assert buys[buys["cycle"] == 3].empty
    daily = events[events["message"].str.contains("cycle 3: BUY .* rejected by daily_loss", regex=True)]
    assert len(daily) == len(strong_buys)
    # ...and the next day entries resume.
    assert len(buys[buys["cycle"] == 4]) >= 5

    # Store positions agree with the broker (the source of truth); none above the cap at entry.
    held = broker.positions()
    book = store.positions("paper").set_index("symbol")["quantity"].to_dict()
    assert held.keys() == book.keys() and all(held[s] == pytest.approx(book[s]) for s in held)
    assert all(v >= 0 for v in held.values())


def test_the_loop_does_not_retry_what_the_venue_adapter_gave_up_on(settings, store):
    """The venue adapters are the one retry layer: a temporary error that escapes one is not tried
    again by the loop (that made 3 × 3 tries of one call)."""
    feed = ReplayFeed.from_panel(synthetic_panel(4, 50), warmup_bars=30, replay_bars=3)
    broker = Venue(paper(store, settings), check_failures=5)
    ctx = make_ctx(settings, store, broker, feed, MomentumEngine(lookback=20, gain=3.0))
    result = run_cycle(ctx)  # nor does the failure end the cycle (or the run): no entries, and it says so
    assert broker.check_failures == 4  # asked once
    assert result.note is not None and "exchange status" in result.note and "timeout" in result.note
    assert ctx.entries_paused and not (store.orders(ctx.run_id)["side"] == "buy").any()
    assert "every venue is down" in store.events(ctx.run_id, kind="entries_paused")["message"].iloc[0]
    assert "ENTRIES PAUSED" in store.cycles(ctx.run_id)["message"].iloc[-1]


class PickyVenue(Venue):
    """Fails one symbol's orders with an unexpected error (a bug somewhere), others go through."""

    def place(self, order):
        if order.symbol == "S001":
            raise RuntimeError("adapter bug")
        return self.inner.place(order)


class FixedEngine:
    def __init__(self, sigs):
        self.sigs = sigs

    def signals(self, panel):
        return self.sigs


def test_one_bad_signal_is_logged_and_the_cycle_goes_on(settings, store):
    panel = synthetic_panel(4, 50)
    feed = ReplayFeed.from_panel(panel, warmup_bars=30, replay_bars=3)
    ts, close = panel.index[-3], panel.close.iloc[-3]
    mk = lambda s, side="BUY": Signal(
        s, side, 0.95, 0.9, close[s] * 1.01, close[s] * 0.95, close[s] * 1.1, ts=ts, price=close[s]
    )
    sigs = [mk("S000"), mk("S001"), mk("S002"), mk("S002", "SELL"), mk("S003")]
    sigs.append(Signal("GHOST", "BUY", 0.95, 0.9, 10.0, 9.0, 12.0, ts=ts, price=10.0))
    broker = PickyVenue(paper(store, settings))
    ctx = make_ctx(settings, store, broker, feed, FixedEngine(sigs))
    r = run_cycle(ctx)
    orders = store.orders(ctx.run_id)
    orders = orders[~orders["type"].isin(["stop_loss", "take_profit"])]
    assert sorted(orders["symbol"]) == ["S000", "S001", "S003"]
    assert orders.set_index("symbol").loc["S001", "status"] == "NEW"  # written before the failed send
    ev = store.events(ctx.run_id)
    assert ev["message"].str.contains("S001 failed: RuntimeError: adapter bug").any()
    assert ev["message"].str.contains("S002 rejected by contradictory_signals").sum() == 2
    assert ev["message"].str.contains("GHOST rejected by no_quote").any()
    assert r.n_orders == 2 and r.n_rejections == 3
    # Next cycle, within the grace period: sent again under the same id (the venue fails it again).
    ctx.engine = FixedEngine([])
    run_cycle(ctx)
    assert store.get_order(orders.set_index("symbol").loc["S001", "client_order_id"])["status"] == "NEW"
    assert store.events(ctx.run_id, kind="resend")["message"].str.contains("S001").any()
    # Past the grace period: the order the venue never took is closed, not sent again.
    ctx.orders.unknown_grace_s = 0.0
    run_cycle(ctx)
    row = store.get_order(orders.set_index("symbol").loc["S001", "client_order_id"])
    assert row["status"] == "REJECTED" and "not re-sent" in row["reason"]


def test_phase1_warns_when_the_nse_calendar_runs_out_and_names_the_extra_holidays(settings, store):
    """exchange_calendars 4.13.2 records NSE/BSE holidays to 2026-12-31: within 30 days of it (or past
    it) a passing 'calendar' row warns before 'risk'; the dashboard shows it as WARN."""
    import datetime as dt

    import pandas as pd

    from workbench.config import CalendarSettings
    from workbench.dashboard.start import phase1_table
    from workbench.data.calendars import Calendars, is_open

    nse = {"exchange": "NSE", "timeframe": "1d", "symbols": ["TCS", "INFY"]}
    custom = settings.model_copy(update={"calendars": CalendarSettings(extra_holidays={"NSE": [dt.date(2027, 1, 26)]})})
    run_id = store.start_run("paper", "paper")
    results = phase1(
        custom,
        paper(store, settings),
        lambda: MomentumEngine(universe=nse),
        store=store,
        run_id=run_id,
        user=current_user(settings),
        today="2026-12-15",
    )
    assert [r.name for r in results] == ["authentication", "api_keys", "exchange", "models", "calendar", "risk"]
    warning = results[4]
    assert warning.ok and warning.message.startswith(
        "WARNING: NSE holidays are recorded only to 2026-12-31: on an unrecorded holiday the venue will refuse orders"
    )
    assert "upgrade exchange_calendars" in warning.message and "NSE: 1 extra holiday(s) set" in warning.message
    assert is_open("NSE", pd.Timestamp("2027-01-26 11:00", tz="Asia/Kolkata"))  # Phase 1 installs nothing
    table = phase1_table(store.checks(run_id))
    assert table["result"].tolist() == ["PASS", "PASS", "PASS", "PASS", "WARN", "PASS"]

    def names(universe: dict, today: str) -> list[str]:
        engine = MomentumEngine(universe=universe)
        results = phase1(settings, paper(store, settings), lambda: engine, user=current_user(settings), today=today)
        return [r.name for r in results]

    assert names(nse, "2026-11-15") == list(CHECKS)  # a month and a half ahead: no row
    assert not is_open("NSE", pd.Timestamp("2027-01-26 11:00", tz="Asia/Kolkata"), Calendars.from_settings(custom))
    assert names({"exchange": "binance", "timeframe": "1h", "symbols": ["BTC/USDT"]}, "2027-02-01") == list(CHECKS)


def test_later_entries_of_a_cycle_see_the_cash_earlier_ones_spent(settings, store):
    """The cycle's entries go to the venue as one batch after every risk decision: each decision must
    see the orders accepted before it as filled (their cash spent), or a second entry is sized on cash
    the first already took and the venue refuses it."""
    from workbench.config import RiskLimits

    panel = synthetic_panel(3, 50)
    feed = ReplayFeed.from_panel(panel, warmup_bars=30, replay_bars=2)
    ts, close = panel.index[-2], panel.close.iloc[-2]
    sigs = [Signal(s, "BUY", 0.95, 0.9, close[s] * 1.01, close[s] * 0.5, close[s] * 1.5, ts=ts, price=close[s])
            for s in ("S000", "S001", "S002")]  # fmt: skip
    broker = PaperBroker(store, starting_cash=10_000.0, fee_rate=0.001, slippage_bps=0.0)
    ctx = make_ctx(settings, store, broker, feed, FixedEngine(sigs))
    ctx.limits = RiskLimits(max_position_pct=0.6, risk_per_trade_pct=1.0, min_strength=0.5)
    r = run_cycle(ctx)
    entries = store.orders(ctx.run_id)
    entries = entries[~entries["type"].isin(["stop_loss", "take_profit"])]
    assert r.n_orders >= 2 and set(entries["status"]) == {"FILLED"}  # the venue refused none
    spent = float((entries["filled_quantity"] * entries["average_price"] + entries["fee"]).sum())
    assert spent <= 10_000.0 + 1e-6 and broker.balances()["USD"].total >= -1e-6
    assert len(entries) == 2  # 60% + the 40% left; the third found no cash
