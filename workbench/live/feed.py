"""The live market feed: every venue of a universe streaming into one quote cache and one bar builder.

    venue streams (one per data venue) ──► TickBuffer ──► QuoteCache (fresh prices, stale counted)
                └─ REST snapshot when a stream is down      └──► BarBuilder ──closed──► wide history ──► lake
    lake (warm-up) + venue OHLCV (backfill after a restart, a reconnect or an incomplete bar) ──┘

``next()`` answers the loop's ``MarketFeed`` question with the same ``FeedTick`` a replay gives: the
panel is the last ``warmup_bars - 1`` closed bars plus the forming bar as its last row, so the
engine cannot tell live from research. What the replay never has to say is in the tick too:
instruments to ``hold`` (their venue is down, their quote is stale, their bars await a backfill) and
to take ``no_entry`` on (their market is closed: exits may still be managed), each with its reason.

Why bars reach the lake only when whole: the lake keeps the first version of a bar it stores, so a
bar that overlapped an outage (or the first ticker of an instrument, whose traded size is unknown)
waits for the venue's version; when the venue has none, the live bar is written as it was seen.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from workbench.data.calendars import Calendars
from workbench.data.candles import timeframe_delta
from workbench.data.panel import FIELDS, Panel
from workbench.errors import DataError, WorkbenchError
from workbench.live.backfill import merge_backfill
from workbench.live.bars import BAR_COLUMNS, BarBuilder, lake_frames
from workbench.live.quotes import QuoteCache, SlotMap
from workbench.live.sessions import open_mask
from workbench.live.ticks import StreamStatus, TickBuffer, Ticks
from workbench.market import Quote
from workbench.trading.feeds import FeedTick

__all__ = ["VenueData", "LiveFeed", "FeedHealth"]

_SKEW_NS = 5 * 10**9
_NEVER = np.iinfo("int64").max
History = Callable[[Sequence[str], pd.Timestamp, pd.Timestamp], pd.DataFrame]


class VenueData(Protocol):
    """One venue's market data for its share of the universe (``workbench.live.sources`` builds them)."""

    venue: str
    keys: tuple[str, ...]

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def status(self) -> StreamStatus: ...

    def poll(self) -> int:
        """A REST snapshot of every key into the shared buffer (the fallback when the stream is down)."""
        ...

    def history(self, keys: Sequence[str], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """The venue's bars (ts, key, open, high, low, close, volume) of the feed's timeframe."""
        ...


@dataclass
class FeedHealth:
    """Per venue, what the last cycle saw (the run's events and the dashboard show it)."""

    venue: str
    mode: str = "stream"  # stream | rest | down
    reason: str = ""
    backfilled: int = 0
    reconnects: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class LiveFeed:
    """A ``MarketFeed`` over live venues. ``sources(buffer, slots)`` builds one ``VenueData`` per venue.

    ``columns``: the panel's name for each key (bare symbols for a one-exchange universe, so signals
    and orders keep the symbols the broker knows; the keys themselves otherwise). ``clock`` gives the
    feed's time (wall time live; tests freeze it to the fakes' tape). ``lake``: warm-up history is read
    from it and closed bars are appended to it (lake exchange = the key's exchange).
    """

    kind = "LIVE"
    cursor = None  # a live feed has no replay position

    def __init__(
        self,
        keys: Sequence[str],
        sources: Callable[[TickBuffer, SlotMap], list[VenueData]],
        *,
        timeframe: str,
        warmup_bars: int,
        stale_after_s: float,
        columns: Sequence[str] | None = None,
        exchange: str = "mixed",
        lake: Any = None,
        clock: Callable[[], pd.Timestamp] | None = None,
        lateness_s: float = 2.0,
        start_timeout_s: float = 10.0,
        calendar: Callable[[np.ndarray, pd.Timestamp], np.ndarray] | None = None,
        calendars: Calendars | None = None,
    ) -> None:
        self.slots = SlotMap(keys)
        self.keys = self.slots.keys
        n = len(self.keys)
        self.columns = list(columns) if columns is not None else list(self.keys)
        if len(self.columns) != n:
            raise ValueError("columns must name every key once")
        self.timeframe, self.exchange = timeframe, exchange
        self.tf_ns = int(timeframe_delta(timeframe).value)
        self.warmup_bars = int(warmup_bars)
        self.buffer = TickBuffer()
        self.cache = QuoteCache(self.slots, stale_after_s=stale_after_s)
        self.bars = BarBuilder(self.slots, timeframe, lateness_s=lateness_s)
        self.sources = sources(self.buffer, self.slots)
        self.lake = lake
        self._clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        # The run's calendars (its settings' extra holidays; None: the recorded sessions) answer "open?"
        # and go with every panel to the time features.
        self.calendars = calendars
        self._calendar = calendar or functools.partial(open_mask, calendars=calendars)
        self.start_timeout_s = start_timeout_s
        self._exch = np.array([k.partition(":")[0] for k in self.keys], dtype=object)
        self._src_of = np.full(n, -1, dtype="int64")
        for i, src in enumerate(self.sources):
            self._src_of[self.slots.slots(list(src.keys))] = i
        missing = np.flatnonzero(self._src_of < 0)
        if len(missing):
            raise DataError(f"no market-data venue serves {', '.join(self.keys[i] for i in missing[:5])}")
        # closed bars, wide: times (ns, ascending) × slots, per field; NaN where a slot had no bar
        self._times = np.empty(0, dtype="int64")
        self._wide = {f: np.empty((0, n)) for f in FIELDS}
        self._pending = pd.DataFrame(columns=list(BAR_COLUMNS))  # incomplete closed bars awaiting the venue's
        self._needs_backfill = np.zeros(n, dtype=bool)
        self._backfill_from = np.full(n, _NEVER, dtype="int64")
        # a bar still forming when an outage ended may hold ticks the stream never saw, or none at all (then
        # the builder has no bar to flag): it is fetched again once closed, without holding the instrument
        self._gap_end = np.full(n, -1, dtype="int64")
        self._refetch_from = np.full(n, _NEVER, dtype="int64")
        self._started = False
        self._reconnects = [0] * len(self.sources)
        self._last_up = [0] * len(self.sources)  # the clock at the last cycle each stream was seen up
        self.health = [FeedHealth(s.venue) for s in self.sources]
        self.written = 0  # bars appended to the lake
        self.stale_refused = 0
        self.future_dropped = 0  # ticks stamped ahead of the clock

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the streams (a REST snapshot for a venue whose stream does not connect), warm up from the lake;
        the next cycle backfills from the venues since the last bar stored.

        The snapshot is not mixed into a connected stream: a ticker's size is the change of a running
        volume, and the REST total need not be the stream's (one more reason its first bar is partial)."""
        if self._started:
            return
        self._started = True
        self._seed()
        for src in self.sources:
            src.start()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline and not all(s.status().connected or s.status().errors for s in self.sources):
            time.sleep(0.05)
        for i, src in enumerate(self.sources):
            if not src.status().connected:  # no stream (yet): a REST snapshot gives its quotes now
                self._poll(i, src)
        now = self._now_ns()
        self._last_up = [now] * len(self.sources)
        # ticks before now were not seen: the bar forming at the start is partial, the venue's version wins
        self.bars.mark_gap(0, now)
        self._gap_end[:] = now
        start = now - now % self.tf_ns - (self.warmup_bars - 1) * self.tf_ns
        last = self._warm_up(start)
        # after a restart the lake ends where the last run stopped; the venue has the bars since then
        self._backfill_from = np.where(last >= 0, last + self.tf_ns, start).astype("int64")
        self._needs_backfill[:] = True

    def _seed(self) -> None:
        """Quotes from the venues' REST snapshots (those that offer one: ``seed``) before the streams open.

        Why: an all-market ticker stream (Binance ``!miniTicker@arr``) sends only instruments that changed,
        so a quiet one would stay without a quote, and HOLD as stale, until its first trade after the start.
        The snapshot goes to the quote cache only: the bar forming at the start is partial anyway (its
        venue's version replaces it), and a ticker's total volume is no traded size."""
        seeded = False
        for i, src in enumerate(self.sources):
            seed = getattr(src, "seed", None)
            if seed is None:
                continue
            try:
                seeded = bool(seed()) or seeded
            except Exception as e:  # no seed: the stream's first ticks give the quotes, as before
                self.health[i].extra["seed_error"] = f"{type(e).__name__}: {e}"
        if seeded:
            self.cache.apply(self._not_future(self.buffer.drain(), self._now_ns()))

    def close(self) -> None:
        for src in self.sources:
            try:
                src.stop()
            except Exception as e:  # a stream that fails to stop must not hide the run's result
                self.health[self.sources.index(src)].reason = f"stop failed: {type(e).__name__}: {e}"
        self._started = False

    def __enter__(self) -> LiveFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- one cycle -----------------------------------------------------------------------------
    def next(self) -> FeedTick:
        self.start()
        now = self._now_ns()
        down = self._check_venues()
        ticks = self._not_future(self.buffer.drain(), now)
        for i, src in enumerate(self.sources):  # a stream that is not up now: bars closing meanwhile are partial
            st = src.status()
            if st.connected:
                self._last_up[i] = now
            else:
                mine = np.flatnonzero(self._src_of == i)
                lo = min(x for x in (st.last_tick_ns, st.down_since_ns, self._last_up[i], now) if x > 0)
                self.bars.mark_gap(min(int(lo), now), now, mine)
                self._gap_end[mine] = now
        self.cache.apply(ticks)
        closed = pd.concat([self.bars.ingest(ticks), self.bars.flush(now)], ignore_index=True)
        for lo, hi, slots in ticks.gaps:  # an outage: the bars it hid come from the venue
            sel = np.arange(len(self.keys)) if slots is None else np.asarray(slots, dtype="int64")
            lo_bar = int(lo) - int(lo) % self.tf_ns
            self._backfill_from[sel] = np.minimum(self._backfill_from[sel], lo_bar)
            self._gap_end[sel] = np.maximum(self._gap_end[sel], int(hi))
            self._needs_backfill[sel] = True
        self._take_closed(closed)
        self._backfill(now, down)
        return self._tick(now, down)

    def _not_future(self, ticks: Ticks, now: int) -> Ticks:
        """Ticks stamped later than the feed's clock (+5 s of skew) are dropped and counted: a venue clock
        running ahead must not close bars early or make a quote look fresh for longer than it is."""
        ok = ticks.ts <= now + _SKEW_NS
        if ok.all():
            return ticks
        self.future_dropped += int((~ok).sum())
        return Ticks(
            ticks.slot[ok], ticks.price[ok], ticks.size[ok], ticks.bid[ok], ticks.ask[ok], ticks.ts[ok], ticks.gaps
        )

    def _now_ns(self) -> int:
        return int(pd.Timestamp(self._clock()).value)

    def _poll(self, i: int, src: VenueData) -> bool:
        try:
            src.poll()
            return True
        except Exception as e:  # a venue's REST failure makes it down, never the run
            self.health[i].reason = f"REST snapshot failed: {type(e).__name__}: {e}"
            return False

    def _check_venues(self) -> np.ndarray:
        """Venues whose stream is down fall back to a REST snapshot; a venue with neither is down."""
        down = np.zeros(len(self.sources), dtype=bool)
        for i, src in enumerate(self.sources):
            st, h = src.status(), self.health[i]
            if st.reconnects > self._reconnects[i]:
                self._reconnects[i] = h.reconnects = st.reconnects
            if st.connected:
                h.mode, h.reason = "stream", ""
                continue
            if self._poll(i, src):
                h.mode = "rest"
                h.reason = f"stream down ({st.last_error or 'not connected'}): REST snapshots"
            else:
                h.mode, down[i] = "down", True
                h.reason = f"{src.venue} market data is down: {st.last_error or 'not connected'}; {h.reason}"
        return down

    def _take_closed(self, closed: pd.DataFrame) -> None:
        """Complete bars go to the history and the lake now; incomplete ones wait for the venue's version."""
        if closed.empty:
            return
        ok = closed["complete"].to_numpy(dtype=bool)
        self._store(closed[ok])
        bad = closed[~ok]
        if len(bad):
            self._pending = pd.concat([self._pending, bad], ignore_index=True) if len(self._pending) else bad
            sl = self.slots.slots(bad["key"].tolist())
            t = bad["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
            np.minimum.at(self._backfill_from, sl, t)
            self._needs_backfill[sl] = True

    def _backfill(self, now: int, down: np.ndarray) -> None:
        """Per venue that is up: fetch its bars since the earliest hole and merge them (venue wins over
        incomplete live bars, complete live bars stay); on failure the slots keep waiting (and hold)."""
        due = self._refetch_from <= now - self.tf_ns - self.bars.tol_ns  # (never: int64 max, no overflow)
        for i, src in enumerate(self.sources):
            if down[i]:
                continue
            mine = np.flatnonzero((self._needs_backfill | due) & (self._src_of == i))
            if not len(mine):
                continue
            start = int(np.minimum(self._backfill_from[mine], self._refetch_from[mine]).min())
            start -= start % self.tf_ns
            keys = [self.keys[j] for j in mine]
            pend = self._pending[self._pending["key"].isin(keys)] if len(self._pending) else self._pending
            try:
                hist = src.history(keys, pd.Timestamp(start, tz="UTC"), pd.Timestamp(now, tz="UTC"))
            except Exception as e:  # keep holding; try again next cycle
                self.health[i].reason = f"backfill from {src.venue} failed: {type(e).__name__}: {e}"
                continue
            merged, rep = merge_backfill(
                pend if len(pend) else pd.DataFrame(columns=list(BAR_COLUMNS)),
                hist,
                timeframe=self.timeframe,
                now_ns=now,
            )
            # the bar still forming at the backfill is the builder's; earlier bars are settled now
            self._store(merged)
            if len(self._pending):
                self._pending = self._pending[~self._pending["key"].isin(keys)]
            self._needs_backfill[mine] = False
            self._backfill_from[mine] = _NEVER
            self._refetch_from[mine] = _NEVER
            bar = now - now % self.tf_ns
            again = mine[self._gap_end[mine] >= bar]
            self._refetch_from[again] = bar
            self.health[i].backfilled += rep.filled + rep.replaced

    def _store(self, bars: pd.DataFrame) -> None:
        """Place closed bars in the wide history (a later version of a bar overwrites) and append to the lake."""
        if bars.empty:
            return
        sl = self.slots.slots(bars["key"].astype(str).tolist())
        keep = sl >= 0
        bars, sl = bars[keep], sl[keep]
        t = bars["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
        times = np.union1d(self._times, t)
        if len(times) != len(self._times):
            pos = np.searchsorted(times, self._times)
            for f in FIELDS:
                w = np.full((len(times), len(self.keys)), np.nan)
                w[pos] = self._wide[f]
                self._wide[f] = w
            self._times = times
        row = np.searchsorted(self._times, t)
        for f in FIELDS:
            self._wide[f][row, sl] = bars[f].to_numpy(dtype="float64")
        if len(self._times) > self.warmup_bars:
            cut = len(self._times) - self.warmup_bars
            self._times = self._times[cut:]
            for f in FIELDS:
                self._wide[f] = self._wide[f][cut:]
        if self.lake is not None:
            for ex, candles in lake_frames(bars.assign(key=bars["key"].astype(str))).items():
                try:
                    self.written += int(self.lake.write(candles, ex, self.timeframe, "live"))
                except WorkbenchError as e:  # a bar the lake refuses (validation) is reported, not fatal
                    self.health[0].extra["lake_error"] = str(e)

    def _warm_up(self, start_ns: int) -> np.ndarray:
        """History from the lake since ``start_ns``; returns the last stored bar time per slot (-1: none)."""
        last = np.full(len(self.keys), -1, dtype="int64")
        if self.lake is None:
            return last
        frames = []
        for ex in dict.fromkeys(self._exch.tolist()):
            wanted = [k.partition(":")[2] for k in self.keys if k.partition(":")[0] == ex]
            stored = set(self.lake.symbols(ex, self.timeframe))
            syms = [s for s in wanted if s in stored]
            if not syms:
                continue
            c = self.lake.load_candles(ex, self.timeframe, syms, start=pd.Timestamp(start_ns, tz="UTC"))
            if len(c):
                frames.append(c.assign(key=ex + ":" + c["symbol"].astype(str)))
        if not frames:
            return last
        hist = pd.concat(frames, ignore_index=True)
        lake, self.lake = self.lake, None  # already stored: place without writing back
        try:
            self._store(hist.assign(complete=True)[list(BAR_COLUMNS)])
        finally:
            self.lake = lake
        t = hist.groupby("key")["ts"].max()
        last[self.slots.slots(t.index.tolist())] = t.astype("datetime64[ns, UTC]").astype("int64").to_numpy()
        return last

    def _quotes(self, fresh: np.ndarray, price: np.ndarray) -> dict[str, Quote]:
        """The fresh instruments' quotes, built from whole arrays (a Python loop of per-item conversions
        cost 30 µs an instrument: 150 ms a cycle at 5,000)."""

        def maybe(a: np.ndarray) -> list[float | None]:
            out = a.astype(object)
            out[np.isnan(a)] = None
            return list(out.tolist())

        cols = np.asarray(self.columns, dtype=object)[fresh].tolist()
        # a timestamp object per distinct time (ticks of one frame share theirs): boxing tz-aware times
        # one by one is what cost most
        when, inverse = np.unique(self.cache.ts[fresh], return_inverse=True)
        stamps = [pd.Timestamp(int(x), tz="UTC") for x in when]
        ts = [stamps[i] for i in inverse.tolist()]
        return {
            c: Quote(c, last, t, b, a)
            for c, last, t, b, a in zip(
                cols,
                price[fresh].tolist(),
                ts,
                maybe(self.cache.bid[fresh]),
                maybe(self.cache.ask[fresh]),
                strict=True,
            )
        }

    def _tick(self, now: int, down: np.ndarray) -> FeedTick:
        price, stale = self.cache.fresh_prices(now)
        n_stale = int(stale.sum())
        self.stale_refused += n_stale
        bar = now - now % self.tf_ns
        # the forming bar: the builder's when it has ticks in this bar, else flat at the fresh last price
        o, h, lo, c, v = (np.where(stale, np.nan, price) for _ in range(5))
        v = np.where(stale, np.nan, 0.0)
        sl, vals = self.bars.at_arrays(bar)
        if len(sl):
            sel = ~stale[sl]
            s = sl[sel]
            o[s], h[s], lo[s], c[s], v[s] = (vals[sel, j] for j in range(len(FIELDS)))
        held = self._needs_backfill | stale | down[self._src_of]
        for arr in (o, h, lo, c, v):
            arr[held] = np.nan
        # closed bars before the forming one (the history's times are ascending: a prefix, no copy yet);
        # the bar before the forming one may have ended but still be open to late ticks: shown as it stands
        k = int(np.searchsorted(self._times, bar))
        sl, prev = self.bars.at_arrays(bar - self.tf_ns)
        add_prev = len(sl) > 0 and (k == 0 or self._times[k - 1] != bar - self.tf_ns)
        n_body = min(self.warmup_bars - 1, k + add_prev)
        n_hist = n_body - add_prev  # rows taken from the history
        times = np.r_[self._times[k - n_hist : k], [bar - self.tf_ns] if add_prev else [], bar].astype("int64")
        idx = pd.DatetimeIndex(times.astype("datetime64[ns]"), name="ts").tz_localize("UTC")
        frames = {}
        for fi, (name, last_row) in enumerate(zip(FIELDS, (o, h, lo, c, v), strict=True)):
            rows = np.empty((n_body + 1, len(self.keys)))  # the panel's own memory: the history moves on
            rows[:n_hist] = self._wide[name][k - n_hist : k]
            if add_prev:
                rows[n_hist] = np.nan
            if len(sl):
                rows[n_body - 1, sl] = prev[:, fi]
            rows[-1] = last_row
            frames[name] = pd.DataFrame(rows, index=idx, columns=self.columns, copy=False)
        panel = Panel(**frames, exchange=self.exchange, timeframe=self.timeframe, calendars=self.calendars)
        ts_now = pd.Timestamp(now, tz="UTC")
        fresh = np.flatnonzero(~held)
        quotes = self._quotes(fresh, price)
        hold: dict[str, str] = {}
        for i in range(len(self.sources)):
            if down[i]:
                for j in np.flatnonzero(self._src_of == i):
                    hold[self.columns[j]] = self.health[i].reason
        for j in np.flatnonzero(stale & ~down[self._src_of]):
            hold[self.columns[j]] = (
                f"stale quote: nothing from {self.sources[self._src_of[j]].venue} for over {self.cache.stale_after_s:g}s"
            )
        for j in np.flatnonzero(self._needs_backfill & ~stale & ~down[self._src_of]):
            hold[self.columns[j]] = (
                f"bars missing since the last (re)connect: backfill from {self.sources[self._src_of[j]].venue} pending"
            )
        is_open = self._calendar(self._exch, ts_now)
        no_entry = {
            self.columns[j]: f"{self._exch[j]} is closed at {ts_now:%Y-%m-%d %H:%M} UTC"
            for j in np.flatnonzero(~is_open)
        }
        note = (
            f"LIVE: {len(fresh)}/{len(self.keys)} instruments fresh, {n_stale} stale (refused), "
            f"{int((~is_open).sum())} in closed markets; "
            + "; ".join(
                f"{h.venue} {h.mode}" + (f" ({h.reason})" if h.reason and h.mode != "stream" else "")
                for h in self.health
            )
        )
        return FeedTick(
            now=ts_now,
            panel=panel,
            quotes=quotes,
            exhausted=False,
            hold=hold,
            no_entry=no_entry,
            stale=n_stale,
            note=note,
        )
