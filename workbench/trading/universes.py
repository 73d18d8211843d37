"""Which instruments a live run trades: a named universe, resolved by one pure function.

Why one function: the command line (``workbench live run|train|backtest|sweep --universe``), the
dashboard's Start page and the run itself must agree on what a name means, and a typo must be refused before a run starts, naming
the unknown symbols, not discovered as a silent gap in the signals. The spec forms:

- ``demo``: the demo universe stored in the lake (``workbench.data.demo.demo_universe_in_lake``);
- ``exchange:EX`` or ``exchange:EX:ASSET_CLASS``: the instrument master's tradable instruments of an
  exchange (optionally one asset class: ``exchange:NSE:equity``);
- ``file:PATH``: one symbol per line (blank lines and ``#`` comments skipped);
- anything else: a comma list, ``BTC/USDT,ETH/USDT`` or keys ``NSE:RELIANCE,NSE:TCS``.

Symbols of a list or file must be known — stored in the lake or listed in the instrument master — on
one exchange. I/O (the lake, the master, the file) is gathered by ``universe_for`` into a
``UniverseSources``; ``resolve_universe`` itself only reads its arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError

__all__ = [
    "Universe",
    "UniverseSources",
    "is_named",
    "resolve_universe",
    "universe_for",
    "universe_sources",
    "named_universes",
]

DEMO = "demo"
_SHOWN = 8  # unknown symbols named in an error before "and N more"


@dataclass(frozen=True)
class Universe:
    """A resolved universe: ``name`` as the user gave it (short), its exchange when it has one, its symbols."""

    name: str
    exchange: str | None
    symbols: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.symbols)


@dataclass(frozen=True)
class UniverseSources:
    """What resolution reads. ``known``: exchange → symbols stored or listed there; ``classes``:
    exchange → asset class → tradable symbols (the instrument master); ``demo``: the demo universe's
    (exchange, symbols), None when the lake holds none."""

    known: Mapping[str, frozenset[str]] = field(default_factory=dict)
    classes: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    demo: tuple[str, tuple[str, ...]] | None = None


def _is_key(s: str) -> bool:
    """``NSE:RELIANCE`` is a key; ``BTC/USDT:USDT`` (a ccxt contract) is a bare symbol."""
    head, sep, _ = s.partition(":")
    return bool(sep) and "/" not in head


def _parse_list(text: str, sep: str) -> tuple[str, ...]:
    items = []
    for raw in text.split(sep):
        s = raw.split("#", 1)[0].strip() if sep == "\n" else raw.strip()
        if s and s not in items:
            items.append(s)
    return tuple(items)


def _names(symbols: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(symbols[:_SHOWN])
    return shown + (f" and {len(symbols) - _SHOWN} more" if len(symbols) > _SHOWN else "")


def is_named(spec: str | None) -> bool:
    """``demo``, ``exchange:…`` or ``file:…``: a universe by name; anything else is a comma list. Why
    callers ask: a backtest's comma list keeps meaning a subset of its model's symbols (checked by the
    backtest against the model, not against the lake), while a name is resolved here."""
    low = (spec or "").strip().lower()
    return low == DEMO or low.startswith(("exchange:", "file:"))


def resolve_universe(spec: str, sources: UniverseSources, file_text: str | None = None) -> Universe:
    """The universe ``spec`` names (see the module docstring); ``ConfigError`` saying what is wrong and
    what to do. ``file_text``: the file's contents for a ``file:`` spec (read by the caller)."""
    spec = (spec or "").strip()
    if not spec or spec.lower() == DEMO:
        if sources.demo is None:
            raise ConfigError("no demo universe in the lake yet: run `workbench init --demo` (or name symbols)")
        ex, syms = sources.demo
        return Universe(DEMO, ex, tuple(syms))
    low = spec.lower()
    if low.startswith("exchange:"):
        return _exchange_universe(spec, sources)
    if low.startswith("file:"):
        path = spec[5:].strip()
        if file_text is None:
            raise ConfigError(f"universe file {path} could not be read: give a readable file, one symbol per line")
        symbols = _parse_list(file_text, "\n")
        if not symbols:
            raise ConfigError(f"universe file {path} lists no symbols: one symbol per line (# starts a comment)")
        return _checked(f"file:{path}", symbols, sources)
    symbols = _parse_list(spec, ",")
    if not symbols:
        raise ConfigError("the universe names no symbols: give demo, exchange:EX, file:PATH or a comma list")
    name = spec if len(spec) <= 60 else f"{len(symbols)} symbols: {spec[:40]}…"
    return _checked(name, symbols, sources)


def _exchange_universe(spec: str, sources: UniverseSources) -> Universe:
    _, ex, cls = [*spec.split(":", 2), ""][:3]
    match = {e.lower(): e for e in sources.classes}
    exchange = match.get(ex.strip().lower())
    if exchange is None:
        have = ", ".join(sorted(sources.classes)) or "none (run `workbench instruments refresh`)"
        raise ConfigError(
            f"no instruments of exchange {ex.strip()!r} in the instrument master; exchanges listed: {have}"
        )
    by_class = sources.classes[exchange]
    if cls.strip():
        cmatch = {c.lower(): c for c in by_class}
        c = cmatch.get(cls.strip().lower())
        if c is None:
            raise ConfigError(
                f"{exchange} lists no {cls.strip()!r} instruments; its asset classes: {', '.join(sorted(by_class))}"
            )
        symbols = tuple(by_class[c])
        name = f"exchange:{exchange}:{c}"
    else:
        symbols = tuple(s for c in sorted(by_class) for s in by_class[c])
        name = f"exchange:{exchange}"
    if not symbols:
        raise ConfigError(f"{name} has no tradable instruments in the instrument master")
    return Universe(name, exchange, symbols)


def _checked(name: str, symbols: tuple[str, ...], sources: UniverseSources) -> Universe:
    """A list's symbols, all known on one exchange (keys name theirs; bare symbols: the exchange that
    knows them all, the demo's first)."""
    keyed = [s for s in symbols if _is_key(s)]
    if keyed:
        exchanges = {s.partition(":")[0] for s in keyed}
        if len(keyed) != len(symbols) or len(exchanges) > 1:
            raise ConfigError(
                "a universe is on one exchange: write every symbol as EXCHANGE:SYMBOL of the same exchange, or all bare"
            )
        ex = exchanges.pop()
        bare = tuple(s.partition(":")[2] for s in symbols)
        known = sources.known.get(ex, frozenset())
        unknown = [s for s, b in zip(symbols, bare, strict=True) if b not in known]
        if unknown:
            raise ConfigError(_unknown_message(unknown, len(symbols), ex))
        return Universe(name, ex, bare)
    order = list(sources.known)
    if sources.demo is not None and sources.demo[0] in sources.known:
        order.remove(sources.demo[0])
        order.insert(0, sources.demo[0])
    best, best_missing = None, list(symbols)
    for ex in order:
        missing = [s for s in symbols if s not in sources.known[ex]]
        if not missing:
            return Universe(name, ex, symbols)
        if len(missing) < len(best_missing):
            best, best_missing = ex, missing
    raise ConfigError(_unknown_message(best_missing, len(symbols), best))


def _unknown_message(unknown: list[str], n: int, exchange: str | None) -> str:
    where = f"on {exchange}" if exchange else "in the lake or the instrument master"
    return (
        f"unknown symbol{'s' if len(unknown) > 1 else ''} {where}: {_names(unknown)} ({len(unknown)} of {n}); "
        "`workbench instruments search TEXT` finds instruments, `workbench data list` shows what is stored"
    )


# ---- the I/O around it -----------------------------------------------------------------------------
def universe_sources(settings: Any) -> UniverseSources:
    """The lake's symbols per exchange, the instrument master's tradable ones and the demo universe."""
    from workbench.data.demo import demo_universe_in_lake
    from workbench.data.lake import Lake
    from workbench.instruments import InstrumentMaster

    known: dict[str, set[str]] = {}
    lake = Lake(settings.lake_dir)
    for ex, tf in lake.datasets():
        known.setdefault(ex, set()).update(lake.symbols(ex, tf))
    classes: dict[str, dict[str, tuple[str, ...]]] = {}
    master = InstrumentMaster.of(settings)
    if master.exists():
        t = master.table(tradable_only=True)
        for (mex, mcls), g in t.groupby(["exchange", "asset_class"], sort=True, dropna=False):
            syms = tuple(str(s) for s in g["symbol"])
            classes.setdefault(str(mex), {})[str(mcls)] = syms
            known.setdefault(str(mex), set()).update(syms)
    demo = demo_universe_in_lake(settings)
    return UniverseSources(
        known={k: frozenset(v) for k, v in known.items()},
        classes=classes,
        demo=(demo.exchange, tuple(demo.symbols)) if demo is not None else None,
    )


def universe_for(settings: Any, spec: str, sources: UniverseSources | None = None) -> Universe:
    """``resolve_universe`` over this home (reading a ``file:`` spec's file)."""
    text = None
    if spec.strip().lower().startswith("file:"):
        path = Path(spec.strip()[5:].strip()).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"universe file {path} could not be read ({e}): give a readable text file") from None
    return resolve_universe(spec, sources or universe_sources(settings), text)


def named_universes(sources: UniverseSources) -> list[tuple[str, str, int]]:
    """(label, spec, size) of every named universe, the demo first: what the Start page offers."""
    out = []
    if sources.demo is not None:
        ex, syms = sources.demo
        out.append((f"demo — {ex}, {len(syms)} symbols", DEMO, len(syms)))
    for ex in sorted(sources.classes):
        total = sum(len(v) for v in sources.classes[ex].values())
        out.append((f"{ex} — all tradable, {total} instruments", f"exchange:{ex}", total))
        for cls in sorted(sources.classes[ex]):
            n = len(sources.classes[ex][cls])
            if len(sources.classes[ex]) > 1 and n:
                out.append((f"{ex} {cls} — {n} instruments", f"exchange:{ex}:{cls}", n))
    return out
