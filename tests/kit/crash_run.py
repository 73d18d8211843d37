"""A live run on the kit's momentum engine and a synthetic replay, for the SIGKILL crash test:
``python -m tests.kit.crash_run HOME CYCLES`` (with ``WORKBENCH_CRASH_HOOK`` set to pause it)."""

from __future__ import annotations

import sys

from tests.kit.models import MomentumEngine, synthetic_panel
from workbench.config import load_settings
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runner import run_live

__all__ = ["main"]


def main(argv: list[str]) -> int:
    home, cycles = argv[0], int(argv[1])
    settings = load_settings(home)
    feed = ReplayFeed.from_panel(synthetic_panel(8, 80, seed=11), warmup_bars=40, replay_bars=10)
    run_id = run_live(settings, engine=MomentumEngine(lookback=10, gain=3.0), feed=feed, interval_s=0.0, cycles=cycles)
    print(run_id, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
