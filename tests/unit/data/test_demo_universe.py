"""The online demo's universe: the exchange's most traded pairs of one quote currency, chosen once."""

from __future__ import annotations

from workbench.data.demo import top_pairs


def _market(base: str, quote: str = "USDT", *, spot: bool = True, active: bool = True) -> dict:
    return {"base": base, "quote": quote, "spot": spot, "active": active}


def test_top_pairs_ranks_by_quote_volume_and_leaves_out_pinned_and_leveraged_tokens():
    markets = {
        "BTC/USDT": _market("BTC"),
        "ETH/USDT": _market("ETH"),
        "SOL/USDT": _market("SOL"),
        "DOGE/USDT": _market("DOGE"),
        "OLD/USDT": _market("OLD", active=False),
        "ETH/BTC": _market("ETH", "BTC"),
        "USDC/USDT": _market("USDC"),
        "FDUSD/USDT": _market("FDUSD"),
        "BTCUP/USDT": _market("BTCUP"),
        "BTC/USDT:USDT": _market("BTC", spot=False),
        "UP/USDT": _market("UP"),  # a coin called UP is not a leveraged token
    }
    tickers = {
        "BTC/USDT": {"quoteVolume": 9e9},
        "ETH/USDT": {"quoteVolume": 5e9},
        "SOL/USDT": {"quoteVolume": None, "baseVolume": 1e7, "last": 100.0},  # 1e9 from base × last
        "DOGE/USDT": {},
        "OLD/USDT": {"quoteVolume": 1e12},
        "ETH/BTC": {"quoteVolume": 1e12},
        "USDC/USDT": {"quoteVolume": 1e12},
        "FDUSD/USDT": {"quoteVolume": 1e12},
        "BTCUP/USDT": {"quoteVolume": 1e12},
        "BTC/USDT:USDT": {"quoteVolume": 1e12},
        "UP/USDT": {"quoteVolume": 2e9},
    }
    assert top_pairs(markets, tickers, "USDT", 3) == ("BTC/USDT", "ETH/USDT", "UP/USDT")
    assert top_pairs(markets, tickers, "USDT", 10) == ("BTC/USDT", "ETH/USDT", "UP/USDT", "SOL/USDT", "DOGE/USDT")
    assert top_pairs(markets, tickers, "BTC", 10) == ("ETH/BTC",)
    assert top_pairs(markets, {}, "USDT", 2) == ("BTC/USDT", "DOGE/USDT")  # no volumes: by name, reproducibly


def test_the_default_ranking_keeps_hundreds_of_pairs_most_traded_first():
    """`make run` online trades a few hundred pairs (the default ``ccxt_top_n``): from an exchange listing
    300 USDT pairs plus stablecoins and leveraged tokens that out-trade them all, the 250 most traded."""
    from workbench.config import DemoSettings

    n = DemoSettings().ccxt_top_n
    assert n >= 200
    pairs = [f"C{i:03d}/USDT" for i in range(300)]
    markets = {p: _market(p.split("/")[0]) for p in pairs}
    tickers = {p: {"quoteVolume": 1e9 / (i + 1)} for i, p in enumerate(pairs)}
    for base in ("USDC", "FDUSD", "BTCUP", "ETHDOWN"):
        markets[f"{base}/USDT"] = _market(base)
        tickers[f"{base}/USDT"] = {"quoteVolume": 1e12}
    assert top_pairs(markets, tickers, "USDT", n) == tuple(pairs[:n])
