"""A live run's universe is a real choice: one pure function resolves a name (demo, an exchange's
instruments, a file, a comma list) and refuses unknown symbols by name; a run trades only its
universe and records it; the command line refuses a bad symbol before any run, with the config exit."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.kit.models import MomentumEngine, synthetic_panel
from workbench.cli import app
from workbench.cli_exits import ExitCode
from workbench.data.lake import Lake
from workbench.errors import ConfigError
from workbench.trading.runner import run_live
from workbench.trading.store import Store
from workbench.trading.universes import (
    UniverseSources,
    named_universes,
    resolve_universe,
    universe_for,
    universe_sources,
)

SOURCES = UniverseSources(
    known={
        "binance": frozenset({"BTC/USDT", "ETH/USDT", "SOL/USDT", "1000SHIB/USDT:USDT"}),
        "NSE": frozenset({"RELIANCE", "TCS", "BAJAJHLDNG-EQ", "NIFTYBEES"}),
    },
    classes={"NSE": {"equity": ("RELIANCE", "TCS", "BAJAJHLDNG-EQ"), "etf": ("NIFTYBEES",)}},
    demo=("binance", ("BTC/USDT", "ETH/USDT")),
)


def test_each_form_of_name_resolves():
    demo = resolve_universe("demo", SOURCES)
    assert (demo.name, demo.exchange, demo.symbols) == ("demo", "binance", ("BTC/USDT", "ETH/USDT"))
    assert resolve_universe("", SOURCES) == demo
    nse = resolve_universe("exchange:nse", SOURCES)
    assert nse.exchange == "NSE" and nse.size == 4 and nse.name == "exchange:NSE"
    etf = resolve_universe("exchange:NSE:ETF", SOURCES)
    assert etf.symbols == ("NIFTYBEES",) and etf.name == "exchange:NSE:etf"
    listed = resolve_universe(" SOL/USDT, 1000SHIB/USDT:USDT ,SOL/USDT", SOURCES)
    assert listed.exchange == "binance" and listed.symbols == ("SOL/USDT", "1000SHIB/USDT:USDT")
    keys = resolve_universe("NSE:TCS,NSE:BAJAJHLDNG-EQ", SOURCES)
    assert keys.exchange == "NSE" and keys.symbols == ("TCS", "BAJAJHLDNG-EQ")
    text = "# my picks\nRELIANCE\n\nTCS  # IT\n"
    f = resolve_universe("file:/x/picks.txt", SOURCES, text)
    assert f.exchange == "NSE" and f.symbols == ("RELIANCE", "TCS") and f.name == "file:/x/picks.txt"


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("BTC/USDT,DOGE/USDT", "unknown symbol on binance: DOGE/USDT (1 of 2)"),
        ("NSE:TCS,NSE:INFY", "unknown symbol on NSE: NSE:INFY (1 of 2)"),
        ("NSE:TCS,BTC/USDT", "a universe is on one exchange"),
        ("exchange:LSE", "no instruments of exchange 'LSE' in the instrument master; exchanges listed: NSE"),
        ("exchange:NSE:futures", "NSE lists no 'futures' instruments; its asset classes: equity, etf"),
        (" , ,", "names no symbols"),
    ],
)
def test_bad_names_are_refused_saying_what_is_wrong(spec, needle):
    with pytest.raises(ConfigError) as e:
        resolve_universe(spec, SOURCES)
    assert needle in str(e.value)


def test_many_unknown_symbols_are_listed_briefly_and_a_missing_demo_says_what_to_run():
    with pytest.raises(ConfigError, match=r"Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7 and 4 more \(12 of 13\)"):
        resolve_universe(",".join(["BTC/USDT"] + [f"Z{i}" for i in range(12)]), SOURCES)
    with pytest.raises(ConfigError, match="workbench init --demo"):
        resolve_universe("demo", UniverseSources())
    with pytest.raises(ConfigError, match="lists no symbols"):
        resolve_universe("file:empty.txt", SOURCES, "# nothing\n\n")


def test_the_start_page_choices_list_the_demo_first_with_sizes():
    labels = named_universes(SOURCES)
    assert labels[0] == ("demo — binance, 2 symbols", "demo", 2)
    assert ("NSE — all tradable, 4 instruments", "exchange:NSE", 4) in labels
    assert ("NSE etf — 1 instruments", "exchange:NSE:etf", 1) in labels


def _lake(settings, n=6):
    panel = synthetic_panel(n, 200)
    Lake(settings.lake_dir).write(panel.to_long(), "TEST", "1d", "synthetic")
    return panel


def test_a_run_with_a_three_symbol_universe_trades_only_those_and_records_it(settings, tmp_path):
    _lake(settings)
    engine = MomentumEngine(
        gain=3.0, universe={"exchange": "TEST", "timeframe": "1d", "symbols": [f"S{i:03d}" for i in range(6)]}
    )
    picks = tmp_path / "picks.txt"
    picks.write_text("S001\nS003\nS005\n")
    chosen = universe_for(settings, f"file:{picks}")
    assert chosen.exchange == "TEST" and chosen.size == 3
    store = Store(settings.store_url).create()
    rid = run_live(settings, engine=engine, interval_s=0.0, min_interval_s=0, cycles=3, replay=True, universe=chosen)
    run = store.run(rid)
    assert run["status"] == "STOPPED", run["message"]
    assert set(store.signals(rid, last_cycles=None)["symbol"]) == {"S001", "S003", "S005"}
    orders = store.orders(run_id=rid, limit=1000)
    assert len(orders) and set(orders["symbol"]) <= {"S001", "S003", "S005"}
    assert (run["universe"], run["universe_size"], run["universe_symbols"]) == (
        f"file:{picks}",
        3,
        "S001,S003,S005",
    )


def test_a_universe_on_another_exchange_than_the_model_fails_the_run_saying_so(settings):
    _lake(settings)
    engine = MomentumEngine(universe={"exchange": "OTHER", "timeframe": "1d", "symbols": ["S000"]})
    chosen = universe_for(settings, "S000,S001")
    store = Store(settings.store_url).create()
    rid = run_live(settings, engine=engine, interval_s=0.0, min_interval_s=0, cycles=1, replay=True, universe=chosen)
    run = store.run(rid)
    assert run["status"] == "FAILED" and "is on TEST, the model was trained on OTHER" in run["message"]


def test_the_command_line_refuses_an_unknown_symbol_before_any_run(settings):
    _lake(settings, 3)
    out = CliRunner().invoke(
        app, ["live", "run", "--universe", "S000,S001,NOPE", "--cycles", "1", "--home", str(settings.home)]
    )
    assert out.exit_code == int(ExitCode.CONFIG), out.output
    assert "unknown symbol on TEST: NOPE (1 of 3)" in out.output and "workbench instruments search" in out.output
    assert Store(settings.store_url).create().latest_run() is None  # nothing started
    assert universe_sources(settings).known["TEST"] == frozenset({"S000", "S001", "S002"})
