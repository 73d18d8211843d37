"""The live charts' widgets: under `workbench dashboard` they load plotly's bundle from the one served
URL (not 5 MB each), and their synced state always holds the figure as it is (a page that loads or
initialises a figure after an edit draws that state, so the edit is not lost)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.dashboard import live_charts as charts


def _curve(n: int) -> pd.DataFrame:
    ts = pd.date_range("2030-01-01", periods=n, freq="h", tz="UTC").map(lambda t: t.isoformat())
    return pd.DataFrame({"ts": ts, "bar_ts": ts, "equity": 100.0 + np.arange(n)})


def test_figures_share_the_served_bundle_only_under_the_dashboard(monkeypatch):
    monkeypatch.delenv(charts.BUNDLE_ENV, raising=False)
    plain = charts.equity_figure()
    assert (
        isinstance(plain, go.FigureWidget)
        and not isinstance(plain, charts.SharedBundleFigure)
        and len(str(plain._esm)) > 1_000_000
    )  # plotly's own: the bundle inline
    monkeypatch.setenv(charts.BUNDLE_ENV, charts.bundle_name())
    for make in (charts.equity_figure, charts.price_figure, charts.gauge_figure, charts.timing_figure):
        fig = make()
        assert isinstance(fig, charts.SharedBundleFigure) and len(fig._esm) < 1_000
        assert f"voila/static/{charts.bundle_name()}" in fig._esm and "export default" in fig._esm


def test_updates_keep_the_synced_state_current():
    fig = charts.equity_figure()
    charts.update_equity(fig, _curve(3))
    charts.update_equity(fig, _curve(5))
    assert fig._widget_data[0]["y"] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert len(fig._widget_data[1]["y"]) == 5 and fig._widget_data[0]["uid"] == fig.data[0].uid
    gauges = charts.gauge_figure()
    charts.update_gauges(gauges, (0.3, 0.1, 0.0), (1.0, 0.2, 0.05))
    assert [t["value"] for t in gauges._widget_data] == [0.3, 0.1, 0.0]
    timing = charts.timing_figure()
    charts.update_timings(timing, pd.DataFrame({"cycle": [1, 2], "total_s": [1.0, 2.0], "data_s": [0.25, np.nan]}))
    by_name = {t["name"]: t["y"] for t in timing._widget_data}
    assert by_name["data"] == [0.25, None] and by_name["other"] == [0.75, 2.0] and by_name["risk"] == [None, None]
