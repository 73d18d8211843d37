"""Adding a venue is one package plus one registry line: a toy venue written to a temporary
package (config, broker, data, instruments) and registered with ``register_venue`` passes the
broker conformance suite, runs paper-style live cycles through the runner, and is offered by the
CLI and the settings, with no other file of the workbench touched.

The toy venue's broker is a sandbox exchange: it needs API keys (read the way every venue reads
them: vault ``toy/api_key``, ``toy/secret`` or ``WORKBENCH_KEY_TOY_*``) and matches orders with the
paper simulation in its own database (the venue's side, apart from the workbench's store)."""

from __future__ import annotations

import sys
import textwrap

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.kit.models import MomentumEngine, synthetic_panel
from tests.kit.users import trader
from tests.unit.venues.conformance import *
from tests.unit.venues.conformance import Harness
from workbench.cli import app
from workbench.config import load_settings
from workbench.errors import AuthenticationError, ConfigError
from workbench.market import Quote
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runner import key_fields, make_broker, run_live
from workbench.trading.store import Store
from workbench.venues import VENUES, register_venue, resolve, venue_config, venue_instruments, venue_names

PACKAGE = {
    "__init__.py": """
        from workbench.venues.base import Venue, lazy
        from toyvenue.config import ToyConfig

        VENUE = Venue(
            name="toy", config=ToyConfig, broker=lazy("toyvenue.broker:make_broker"),
            data=lazy("toyvenue.data:make_source"), instruments=lazy("toyvenue.instruments:load_instruments"),
            key_fields=("api_key", "secret"),
        )
    """,
    "config.py": '''
        """[venues.toy]: the toy sandbox's rules. Secrets: toy/api_key, toy/secret (WORKBENCH_KEY_TOY_API_KEY, ...)."""
        from pydantic import Field

        from workbench.venues.base import VenueConfig


        class ToyConfig(VenueConfig):
            fee_rate: float = Field(0.001, ge=0, lt=0.1)
            lot_size: float = Field(0.001, gt=0)
            tick_size: float = Field(0.01, gt=0)
            min_notional: float = Field(10.0, ge=0)
            symbols: tuple[str, ...] = ("XYZ/USD",)
    ''',
    "broker.py": """
        from workbench.market import Market
        from workbench.security.vault import secret_value, vault_of
        from workbench.trading.store import Store
        from workbench.venues.base import AuthenticationError, BrokerStatus
        from workbench.venues.paper.broker import PaperBroker

        ACCEPTED = ("toy-key-0123456789", "toy-secret-0123456789")


        class ToyBroker(PaperBroker):
            name = "toy"

            @property
            def environment(self):
                return "testnet"

            def check(self):
                st = super().check()
                return BrokerStatus(st.ok, "testnet", "toy sandbox: " + st.message)


        def make_broker(settings, config, *, instance=None, vault=None, store=None):
            vault = vault_of(settings, vault)
            keys = (secret_value(vault, "toy/api_key"), secret_value(vault, "toy/secret"))
            if keys != ACCEPTED:
                raise AuthenticationError("the toy sandbox refused the keys: run `workbench keys set toy`")
            book = Store(f"sqlite:///{settings.data_dir / 'toy-venue.db'}").create()
            markets = {s: Market(s, s.split("/")[0], "USD", config.lot_size, config.tick_size, config.min_notional)
                       for s in config.symbols}
            return ToyBroker(book, account="toy@testnet", starting_cash=10_000.0, fee_rate=config.fee_rate,
                             slippage_bps=0.0, markets=markets)
    """,
    "data.py": """
        from workbench.data.sources.synthetic import SyntheticSource


        def make_source(settings, config, *, instance=None, vault=None, store=None):
            return SyntheticSource(config.symbols, seed=7, timeframe="1d", bars=250)
    """,
    "instruments.py": """
        import pandas as pd


        def load_instruments(path=None, *, instance=None, **kw):
            return pd.DataFrame({"symbol": ["XYZ/USD"], "exchange": ["toy"], "lot_size": [0.001], "tick_size": [0.01]})
    """,
}
T0 = pd.Timestamp("2024-05-01", tz="UTC")


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy package on sys.path and ONE registry line; both undone afterwards."""
    pkg = tmp_path / "pkgs" / "toyvenue"
    pkg.mkdir(parents=True)
    for name, text in PACKAGE.items():
        (pkg / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    register_venue("toy", "toyvenue")  # the one registry line
    yield "toy"
    VENUES.pop("toy", None)
    for mod in [m for m in sys.modules if m == "toyvenue" or m.startswith("toyvenue.")]:
        del sys.modules[mod]


def keyed_settings(tmp_path, monkeypatch, **kw):
    """Settings and a logged-in trader (``$WORKBENCH_TOKEN``) whose vault holds the toy keys."""
    s = load_settings(tmp_path / "home", **kw)
    s.ensure_dirs()
    vault = trader(s, monkeypatch=monkeypatch).vault
    vault.put("toy/api_key", "toy-key-0123456789")
    vault.put("toy/secret", "toy-secret-0123456789")
    return s


@pytest.fixture
def venue(toy, tmp_path, monkeypatch) -> Harness:
    """The conformance suite's venue: the toy broker made through the registry, as the runner makes it."""
    s = keyed_settings(tmp_path, monkeypatch, venues={"toy": {"fee_rate": 0.002}})
    broker = make_broker(s, Store(s.store_url).create(), "toy")
    assert broker.name == "toy" and broker.fee_rate == 0.002  # [venues.toy] reached the broker

    def move(symbol: str, **bar) -> None:
        broker.on_bar({symbol: Quote(symbol, bar.pop("last"), T0, **bar)})

    move("XYZ/USD", last=100.0)
    return Harness(broker=broker, symbol="XYZ/USD", unknown="NOPE/USD", currency="USD", move=move)


def test_toy_venue_is_found_by_name_everywhere(toy, tmp_path):
    v, inst = resolve("toy")
    assert v.name == "toy" and inst is None and "toy" in venue_names()
    assert key_fields("toy") == ("api_key", "secret") and v.required_keys() == ("toy/api_key", "toy/secret")
    s = load_settings(tmp_path / "home", venues={"toy": {"lot_size": 1.0}})
    assert venue_config(s, "toy").lot_size == 1.0
    with pytest.raises(ConfigError, match=r"venues\.toy\.fee_rate"):
        load_settings(tmp_path / "bad", venues={"toy": {"fee_rate": -1}})
    assert list(venue_instruments("toy")["symbol"]) == ["XYZ/USD"]
    from workbench.data.ingest import source_from_spec

    assert source_from_spec("toy", s).symbols() == ["XYZ/USD"]


def test_toy_venue_refuses_wrong_keys(toy, tmp_path, monkeypatch):
    s = load_settings(tmp_path / "home")
    trader(s, monkeypatch=monkeypatch).vault.put("toy/api_key", "wrong-key-0123456789")
    with pytest.raises(AuthenticationError, match="keys set toy"):
        make_broker(s, Store(s.store_url).create(), "toy")


def test_toy_venue_runs_paper_style_live_cycles_through_the_runner(toy, tmp_path, monkeypatch):
    s = keyed_settings(
        tmp_path, monkeypatch, venues={"toy": {"symbols": ["S000", "S001", "S002"], "min_notional": 0.0}}
    )
    panel = synthetic_panel(3, 80, seed=5)
    feed = ReplayFeed.from_panel(panel, warmup_bars=40, replay_bars=6)
    rid = run_live(
        s,
        broker="toy",
        engine=MomentumEngine(lookback=10, gain=3.0),
        feed=feed,
        interval_s=0.0,
        min_interval_s=0,
        cycles=4,
    )
    store = Store(s.store_url)
    run = store.run(rid)
    assert run["status"] == "STOPPED", run["message"]
    assert run["broker"] == "toy" and run["environment"] == "testnet" and run["account"] == "toy@testnet:trader"
    checks = store.checks(rid)
    assert list(checks["name"]) == ["authentication", "api_keys", "exchange", "models", "risk"] and checks["ok"].all()
    assert "toy sandbox" in checks.set_index("name").loc["exchange", "message"]
    assert run["cycle"] == 4 and len(store.equity_curve(rid)) == 4
    assert store.order_counts(rid).get("FILLED", 0) > 0  # orders went to the toy venue and filled


def test_toy_venue_without_keys_fails_phase1_naming_the_command(toy, tmp_path, monkeypatch):
    s = load_settings(tmp_path / "home")
    trader(s, monkeypatch=monkeypatch)
    rid = run_live(
        s, broker="toy", engine=MomentumEngine(), feed=ReplayFeed.from_panel(synthetic_panel(3, 60), 40, 2), cycles=1
    )
    run = Store(s.store_url).run(rid)
    assert run["status"] == "FAILED" and "api_keys" in run["message"] and "workbench keys set toy" in run["message"]


def test_cli_offers_the_toy_venue_and_names_the_registered_ones_for_a_typo(toy, tmp_path, monkeypatch):
    home = tmp_path / "home"
    trader(load_settings(home), monkeypatch=monkeypatch)  # keys are some user's: `keys set` needs a session
    r = CliRunner().invoke(app, ["live", "run", "--broker", "toi", "--cycles", "1", "--home", str(home)])
    assert r.exit_code == 2 and "unknown broker 'toi'" in r.output and "toy" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(
        app, ["keys", "set", "toy", "--home", str(home)], input="toy-key-0123456789\ntoy-secret-0123456789\n"
    )
    assert r.exit_code == 0 and "stored toy/api_key, toy/secret" in r.output, r.output
