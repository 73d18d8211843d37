"""The data hash is computed in blocks, so a cluster fit whose workers each read part of the lake
registers the very hash the in-process ``panel_hash`` gives the whole panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import random_walk_panel
from workbench.data.lake import Lake
from workbench.models import data_hash as dh
from workbench.models.dask_lgbm import block_hashes, lake_timestamps
from workbench.models.distributed import LakeSource
from workbench.models.training import panel_hash

SYMS = ("A", "B", "C", "D")


class _Inline:
    """The two calls ``lake_data_hash`` makes of a Dask client, run here in order (no cluster)."""

    def submit(self, fn, *args, pure=False):
        return fn(*args)

    def gather(self, futures):
        return list(futures)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    panel = random_walk_panel(n_bars=700, symbols=SYMS, late_start={"C": 300})
    Lake(root).write(panel.to_long(), panel.exchange, panel.timeframe, "test")
    src = LakeSource(str(root), panel.exchange, panel.timeframe, SYMS)
    return src, src.load()


def test_blocks_read_from_the_lake_give_the_whole_panels_hash(lake):
    from workbench.models.dask_lgbm import lake_data_hash

    src, panel = lake
    stamps = lake_timestamps(src)
    assert len(stamps) == len(panel.index) == 700 and len(dh.block_ranges(700)) == 3
    for parts in (1, 2, 3, 5):  # how the blocks are split between workers does not matter
        assert lake_data_hash(_Inline(), src, stamps, SYMS, parts) == panel_hash(panel)
    # a worker's window of whole blocks gives exactly those blocks' digests
    whole = dh.block_digests(panel)
    assert block_hashes(src, stamps[256], stamps[511], SYMS) == whole[1:2]
    assert block_hashes(src, stamps[256], stamps[-1], SYMS) == whole[1:]


def test_any_change_changes_the_hash(lake):
    _, panel = lake
    base = panel_hash(panel)
    assert len(base) == 16 and panel_hash(panel) == base
    wide = panel.to_long()
    bumped = wide.copy()
    i = int(np.flatnonzero(bumped["symbol"].to_numpy() == "D")[650])
    bumped.loc[bumped.index[i], "volume"] += 1.0  # one bar, one field, in the last block
    assert panel_hash(type(panel).from_long(bumped, panel.exchange, panel.timeframe)) != base
    assert panel_hash(panel.select(["A", "B", "C"])) != base  # a symbol fewer
    assert panel_hash(panel.select(["B", "A", "C", "D"])) != base  # another column order
    assert panel_hash(panel.iloc(slice(1, None))) != base  # a bar fewer
    shifted = wide.assign(ts=pd.to_datetime(wide["ts"]) + pd.Timedelta(hours=1))
    assert panel_hash(type(panel).from_long(shifted, panel.exchange, panel.timeframe)) != base
