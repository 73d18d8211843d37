"""Per-venue settings live in ``[venues.<name>]``, checked by the venue's config class when the
settings load; each secret has one vault name and one environment variable."""

from __future__ import annotations

import pytest

from tests.kit.users import trader
from workbench.config import load_settings
from workbench.errors import ConfigError
from workbench.security.vault import secret_env_name, secret_value
from workbench.trading.runner import broker_environment, broker_name, required_keys
from workbench.venues import venue_config


def test_a_venue_table_in_the_toml_reaches_the_venue(tmp_path):
    (tmp_path / "workbench.toml").write_text(
        '[venues.kite]\nproduct = "MIS"\n\n[venues.ccxt]\noptions = {binance = {recvWindow = 5000}}\n'
    )
    s = load_settings(tmp_path)
    assert venue_config(s, "kite").product == "MIS" and venue_config(s, "kite").exchange == "NSE"
    assert venue_config(s, "ccxt").options == {"binance": {"recvWindow": 5000}}
    assert venue_config(s, "alpaca").url is None  # no table: the venue's defaults


@pytest.mark.parametrize(
    "toml, named",
    [
        ('[venues.kite]\nproduct = "XYZ"\n', "venues.kite.product"),
        ('[venues.kite]\nprodcut = "MIS"\n', "venues.kite.prodcut"),
        ("[venues.ccxt]\nstop_limit_buffer = 0.9\n", "venues.ccxt.stop_limit_buffer"),
        ('[venues.kyte]\nproduct = "MIS"\n', "venues.kyte: no such venue"),
    ],
)
def test_a_bad_venue_setting_is_named(tmp_path, toml, named):
    (tmp_path / "workbench.toml").write_text(toml)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(tmp_path)


def test_old_broker_fields_are_gone(tmp_path):
    with pytest.raises(ConfigError, match="kite_product"):
        load_settings(tmp_path, broker={"kite_product": "MIS"})


def test_venue_setting_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_VENUES__KITE__PRODUCT", "MIS")
    assert venue_config(load_settings(tmp_path), "kite").product == "MIS"


def test_one_env_var_per_secret(tmp_path, monkeypatch):
    assert secret_env_name("kite/api_key") == "WORKBENCH_KEY_KITE_API_KEY"
    assert secret_env_name("ccxt:binance/secret") == "WORKBENCH_KEY_CCXT_BINANCE_SECRET"
    assert secret_env_name("alpaca/api_key") == "WORKBENCH_KEY_ALPACA_API_KEY"
    s = load_settings(tmp_path)
    vault = trader(s).vault
    for old in (
        "WORKBENCH_KITE_API_KEY",
        "KITE_API_KEY",
        "WORKBENCH_CCXT_BINANCE_SECRET",
        "ALPACA_API_KEY_ID",
        "APCA_API_KEY_ID",
    ):
        monkeypatch.setenv(old, "old-spelling")
    assert secret_value(vault, "kite/api_key") is None and secret_value(vault, "ccxt:binance/secret") is None
    assert secret_value(vault, "alpaca/api_key") is None
    monkeypatch.setenv("WORKBENCH_KEY_KITE_API_KEY", "from-env")
    assert secret_value(vault, "kite/api_key") == "from-env"
    vault.put("kite/api_key", "from-vault")
    assert secret_value(vault, "kite/api_key") == "from-vault"  # the vault first


def test_names_and_environments_come_from_the_registry(tmp_path):
    s = load_settings(tmp_path)
    assert broker_name(s, "CCXT:Binance") == "ccxt:binance" and broker_name(s, None) == "paper"
    assert [broker_environment(s, n) for n in ("paper", "ccxt:binance", "kite", "alpaca")] == [
        "paper",
        "testnet",
        "live",
        "testnet",
    ]
    assert required_keys("kite") == ("kite/api_key", "kite/access_token")
    for bad, msg in (
        ("ibkr", "unknown broker 'ibkr'"),
        ("kite:NSE", "takes no"),
        ("ccxt", "needs an instance"),
        ("ccxt:nope", "no exchange"),
    ):
        with pytest.raises(ConfigError, match=msg):
            broker_name(s, bad)
