"""``--universe``: one meaning for ``live run``, ``train``, ``backtest`` and ``sweep``.

Every command takes the spec of ``workbench.trading.universes`` — ``demo``, ``exchange:EX[:ASSET_CLASS]``,
``file:PATH`` or a comma list — resolved by its one resolver (``universe_for``), so a name means the same
symbols wherever it is typed. One narrowing keeps the command lines of earlier releases working: for
``backtest`` and ``sweep`` a comma list is, as before, a subset of the model's symbols, checked by the
backtest against the model (which may come from another home's lake), not against this lake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.cli.common import _usage
from workbench.config import Settings
from workbench.errors import ConfigError, NoDataError

if TYPE_CHECKING:
    from workbench.trading.universes import Universe

UNIVERSE_FORMS = (
    "demo (the lake's demo universe), exchange:EX[:ASSET_CLASS] (the instrument master's tradable "
    "instruments), file:PATH (one symbol per line) or a comma list"
)


def _resolved(settings: Settings, spec: str) -> Universe:
    """``spec`` through the resolver; one it cannot resolve (unknown symbols, exchange or file) is a bad
    argument: one line naming what is wrong, exit 2, before any work."""
    from workbench.trading.universes import universe_for

    try:
        return universe_for(settings, spec)
    except ConfigError as e:
        _usage(f"--universe {spec.strip()!r}: {e}")


def _model_subset(settings: Settings, spec: str) -> tuple[str, ...]:
    """The symbols a backtest of a model trades: a named universe's, or a comma list's as written (the
    backtest refuses symbols its model has no predictions for)."""
    from workbench.trading.universes import is_named

    if is_named(spec):
        return _resolved(settings, spec).symbols
    symbols = tuple(s.strip() for s in spec.split(",") if s.strip())
    if spec.strip() and not symbols:
        _usage(f"--universe {spec.strip()!r} names no symbols: give {UNIVERSE_FORMS}")
    return symbols


def _train_universe(
    settings: Settings, spec: str, exchange: str | None, timeframe: str | None
) -> tuple[str, str, list[str]]:
    """(exchange, timeframe, symbols) of ``train --universe``: every form resolved, a comma list too (its
    symbols must be known, as for a live run). ``--exchange`` may only repeat the universe's; the
    timeframe defaults to the demo data set's on its exchange, else the one the lake holds, else 1d."""
    from workbench.data.demo import demo_universe_in_lake
    from workbench.data.lake import Lake

    u = _resolved(settings, spec)
    if u.exchange is None:
        _usage(f"--universe {spec.strip()!r} names no exchange: write its symbols as EXCHANGE:SYMBOL")
    if exchange is not None and exchange != u.exchange:
        _usage(f"--exchange {exchange} and --universe {spec.strip()!r} (on {u.exchange}) disagree: give one")
    if timeframe is None:
        demo = demo_universe_in_lake(settings)
        held = [tf for ex, tf in Lake(settings.lake_dir).datasets() if ex == u.exchange]
        if demo is not None and demo.exchange == u.exchange:
            timeframe = demo.timeframe
        elif len(held) == 1:
            timeframe = held[0]
    return u.exchange, timeframe or "1d", list(u.symbols)


def _universe(
    settings: Settings, exchange: str | None, timeframe: str | None, symbols: list[str] | None
) -> tuple[str, str, list[str]]:
    """The universe a command works on: what the user named, else the demo data set in the lake."""
    from workbench.data.demo import demo_universe_in_lake
    from workbench.data.lake import Lake

    if exchange is None:
        demo = demo_universe_in_lake(settings)
        if demo is None:
            raise NoDataError("no data in the lake yet: run `workbench data pull` or `workbench init --demo` first")
        exchange, timeframe = demo.exchange, timeframe or demo.timeframe
        symbols = symbols or list(demo.symbols)
    timeframe = timeframe or "1d"
    symbols = symbols or Lake(settings.lake_dir).symbols(exchange, timeframe)
    return exchange, timeframe, symbols
