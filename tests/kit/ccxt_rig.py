"""The ccxt live-run rig shared by the Binance run tests: three USDT pairs on a replayed synthetic panel,
listed at the local ``FakeBinance`` with a funded account, and a feed that arms the fake's faults at
chosen cycles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.kit.fake_binance import FakeBinance
from tests.kit.models import synthetic_panel
from tests.kit.venue import VenueFollowsTheFeed
from workbench.data.panel import Panel

__all__ = [
    "SYMBOLS",
    "FaultsAtCycle",
    "assert_each_entry_once_and_book_equals_venue",
    "binance_with_pairs",
    "usdt_panel",
]

SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT")


def usdt_panel(bars: int, seed: int = 11) -> Panel:
    """A synthetic daily panel whose columns are the USDT pairs of ``SYMBOLS``."""
    p = synthetic_panel(len(SYMBOLS), bars, seed=seed, exchange="binance")
    ren = dict(zip(p.symbols, SYMBOLS, strict=True))
    f = {k: getattr(p, k).rename(columns=ren) for k in ("open", "high", "low", "close", "volume")}
    return Panel(**f, exchange="binance", timeframe="1d")


@contextmanager
def binance_with_pairs(panel: Panel, price_bar: int, balances: dict[str, float]) -> Iterator[FakeBinance]:
    """``FakeBinance`` listing ``SYMBOLS`` at the panel's close of bar ``price_bar``, the account holding ``balances``."""
    with FakeBinance(symbols=("BTC/USDT",)) as fake:
        for sym in SYMBOLS:
            fake.add_market(
                sym, step="0.001", tick="0.01", min_notional="10", price=float(panel.close[sym].iloc[price_bar])
            )
        for asset, amount in balances.items():
            fake.set_balance(asset, amount)
        yield fake


class FaultsAtCycle(VenueFollowsTheFeed):
    """Arms the fake venue's faults at the start of the given cycles (after the bar moved the book)."""

    def __init__(self, feed, fake: FakeBinance, at: dict[int, list[Callable[[], object]]]):
        super().__init__(feed, fake)
        self.at, self.n = at, 0

    def next(self):
        tick = super().next()
        self.n += 1
        for arm in self.at.get(self.n, []):
            arm()
        return tick


def assert_each_entry_once_and_book_equals_venue(store, rid: int, fake: FakeBinance, sent: list[str]) -> None:
    """Nothing sent twice, nothing lost: the venue holds each of the run's ``sent`` entries exactly once,
    no client order id is live twice, the run's book equals the venue's balances, and nothing needed
    reconciling."""
    import pytest

    venue_orders = [o for sym in SYMBOLS for o in fake.orders(sym)]
    entries = [o["clientOrderId"] for o in venue_orders if o["side"] == "BUY"]
    assert sorted(entries) == sorted(sent)
    live_ids = [o["clientOrderId"] for o in venue_orders if o["status"] not in ("CANCELED", "EXPIRED")]
    assert len(live_ids) == len(set(live_ids))
    book = store.positions(store.run(rid)["account"]).set_index("symbol")["quantity"]
    for sym in SYMBOLS:
        assert float(book.get(sym, 0.0)) == pytest.approx(sum(fake.balance(sym.split("/")[0])), abs=1e-9), sym
    assert store.events(rid, kind="reconcile").empty
