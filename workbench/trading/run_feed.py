"""The market data a live run trades on: live bars for the model's universe (or a chosen universe on
the model's exchange), or the lake's last bars when a replay is asked for.

Why apart from the run: the choice depends only on the settings and the model's universe (and, for
``live.feed = auto``, on whether a live venue answers), never on the run's state; the feed carries the
run's calendars (``Calendars.from_settings``) to the open check and the time features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError
from workbench.trading.universes import Universe

if TYPE_CHECKING:
    from workbench.config import Settings

__all__ = ["choose_feed", "default_feed"]


def default_feed(
    settings: Settings,
    engine: Any,
    start_cursor: int,
    replay: bool = False,
    broker: str | None = None,
    vault: Any = None,
    universe: Universe | None = None,
) -> Any:
    """Live market data for the model's universe, or the chosen ``universe`` on the model's exchange
    (every broker, paper included); the lake's old bars only when a replay is asked for (``--replay``)."""
    from workbench.data.calendars import Calendars
    from workbench.data.lake import Lake
    from workbench.trading.feeds import ReplayFeed

    uni = getattr(engine, "universe", None) or {}
    if not uni.get("exchange") or not uni.get("timeframe"):
        raise ConfigError(
            "the model records no universe (exchange, timeframe, symbols): retrain and register it, or pass a feed"
        )
    if universe is not None:
        if universe.exchange and universe.exchange != uni["exchange"]:
            raise ConfigError(
                f"the universe {universe.name!r} is on {universe.exchange}, the model was trained on {uni['exchange']} "
                f"{uni['timeframe']} bars: choose a universe of {uni['exchange']} or a model of {universe.exchange}"
            )
        uni = {**uni, "symbols": list(universe.symbols)}
    if not replay:
        from workbench.live.sources import feed_for

        return feed_for(settings, uni, broker, vault)
    return ReplayFeed(
        Lake(settings.lake_dir),
        uni["exchange"],
        uni["timeframe"],
        list(uni.get("symbols") or []) or None,
        warmup_bars=settings.live.warmup_bars,
        replay_bars=settings.live.replay_bars,
        start_cursor=start_cursor,
        calendars=Calendars.from_settings(settings),
    )


def choose_feed(settings: Settings, engine: Any) -> tuple[bool, str]:
    """(replay?, why) when neither --live nor --replay was given: ``live.feed`` decides; ``auto`` probes."""
    mode = settings.live.feed
    if mode != "auto":
        return mode == "replay", ""
    from workbench.live.probe import live_possible

    ok, why = live_possible(settings, getattr(engine, "universe", None) or {})
    return not ok, f"live.feed = auto: {why}"
