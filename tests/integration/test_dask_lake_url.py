"""The lake at an object-store URL: a real S3 protocol server (moto, on loopback), s3fs, and a real
2-process LocalCluster whose workers read the lake from ``s3://…`` themselves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.kit.s3 import s3_server
from tests.unit.features.research_kit import random_walk_panel
from workbench.data.lake import Lake
from workbench.data.lake_url import UrlLake, open_lake, publish
from workbench.errors import ConfigError, UnknownSymbolError
from workbench.models import distributed as dist

pytestmark = pytest.mark.slow

SYMS = ("SYN-A", "SYN-B", "SYN/C", "SYN D")  # quoted partition values too
OPTS = dict(n_folds=3, test_fraction=0.3, horizon=1, label="sign")
PARAMS = {"lgbm": {"n_estimators": 30}, "rf": {"n_estimators": 20}}
URL = "s3://lake/team/prices"


@pytest.fixture(scope="module")
def s3_lake(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp, s3_server(mp):
        root = tmp_path_factory.mktemp("lake")
        panel = random_walk_panel(n_bars=400, symbols=SYMS)
        local = Lake(root)
        long = panel.to_long()
        cut = long["ts"] < long["ts"].max() - pd.Timedelta(days=30)
        local.write(long[cut], "SYNTH", "1d", "test")
        local.write(long[~cut], "SYNTH", "1d", "test")  # a base and a delta
        assert publish(root, URL) >= 1
        yield root


def test_url_lake_reads_what_the_local_lake_holds(s3_lake):
    local, remote = Lake(s3_lake), open_lake(URL)
    assert isinstance(remote, UrlLake) and remote.datasets() == local.datasets() == [("SYNTH", "1d")]
    assert remote.symbols("SYNTH", "1d") == local.symbols("SYNTH", "1d")
    a = remote.load_panel("SYNTH", "1d", ["SYN/C", "SYN-A"], "2020-03-01", None)
    b = local.load_panel("SYNTH", "1d", ["SYN/C", "SYN-A"], "2020-03-01", None)
    for f in ("open", "high", "low", "close", "volume"):
        pd.testing.assert_frame_equal(a.field(f), b.field(f))
    pd.testing.assert_frame_equal(remote.catalog(), local.catalog())
    assert remote.last_ts("SYNTH", "1d", "SYN D") == local.last_ts("SYNTH", "1d", "SYN D")
    with pytest.raises(UnknownSymbolError, match="NOPE"):
        remote.load_panel("SYNTH", "1d", ["NOPE"])


def test_url_lake_refuses_writes_and_file_urls_are_local(s3_lake):
    with pytest.raises(ConfigError, match=r"read-only.*publish"):
        open_lake(URL).write(random_walk_panel(n_bars=5, symbols=("X",)).to_long(), "SYNTH", "1d", "t")
    assert type(open_lake(f"file://{s3_lake}")) is Lake and open_lake(f"file://{s3_lake}").root == s3_lake
    assert type(open_lake(s3_lake)) is Lake


def test_sweep_on_workers_reading_s3_equals_the_local_lake(s3_lake):
    """The same walk-forward (lgbm + rf, 3 folds) with the workers reading s3://… and a local path."""
    with dist.client_for(None, workers=2) as client:
        client.wait_for_workers(2)
        (on_s3,) = dist.map_folds(client, dist.LakeSource(URL, "SYNTH", "1d", SYMS), ("lgbm", "rf"),
                                  params=PARAMS, **OPTS)  # fmt: skip
        (on_disk,) = dist.map_folds(client, dist.LakeSource(str(s3_lake), "SYNTH", "1d", SYMS), ("lgbm", "rf"),
                                    params=PARAMS, **OPTS)  # fmt: skip
        workers = {w.split("@")[-1] for r in on_s3.values() for w in r.lineage["dask_tasks"].split("; ")}
    assert len(workers) == 2  # both worker processes read the bucket
    for kind in ("lgbm", "rf"):
        a, b = on_s3[kind], on_disk[kind]
        pd.testing.assert_frame_equal(a.folds.drop(columns="fit_seconds"), b.folds.drop(columns="fit_seconds"))
        pd.testing.assert_frame_equal(a.oos, b.oos)
        assert a.data_hash == b.data_hash
        for k, v in a.metrics.items():
            if k != "fit_seconds":
                assert np.isclose(v, b.metrics[k], equal_nan=True, rtol=0, atol=0), k
    assert on_s3["lgbm"].lineage["call"].startswith(f"Lake('{URL}')")
    assert URL in on_s3["lgbm"].lineage["query"]


def test_republish_after_compaction_drops_absorbed_deltas(s3_lake, tmp_path):
    import s3fs

    from workbench.data import lakefiles as lf

    d = Lake(s3_lake)._dataset_dir("SYNTH", "1d")
    with lf.locked(d, exclusive=True):
        lf.compact(d)
    publish(s3_lake, URL)
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    names = [p.rsplit("/", 1)[-1] for p in fs.glob(f"{URL}/ohlcv/*/*/*.parquet")]
    assert names == ["data.parquet"]
    a, b = open_lake(URL).load_panel("SYNTH", "1d"), Lake(s3_lake).load_panel("SYNTH", "1d")
    pd.testing.assert_frame_equal(a.close, b.close)
