"""A live run on the kit's momentum engine and a synthetic replay, for the SIGKILL crash test:
``python -m tests.kit.crash_run HOME CYCLES [POINT[@N]:MARKER[:GO]]``.

With the third argument the run pauses at the N-th (default first) passage through ``POINT`` of
``OrderManager.submit_many`` ("after_new": a batch recorded NEW, the venue not called; "after_place":
the venue answered (the whole batch, or one order when it takes them one by one), the store not yet
updated; "after_apply": the batch's answers, fills and positions booked): it writes ``MARKER`` and
sleeps until the test SIGKILLs it, or, with ``GO``, until the file ``GO`` exists and then goes on (the
store-fault tests break the disk meanwhile). The pause is injected as the order manager's ``on_point``
callback; production code has no hook. With ``WB_CRASH_ONE_BY_ONE=1`` in the environment the paper
venue is presented without its batch endpoint, so orders go out one by one (the path of venues that
have none). What escapes the run is reported as the ``workbench`` command reports it (its message on
stderr, its exit code), never as a traceback."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.kit.models import MomentumEngine, synthetic_panel
from workbench.cli_exits import explain
from workbench.config import load_settings
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runner import run_live

__all__ = ["main", "pause_at"]


def pause_at(spec: str) -> Callable[[str], None]:
    """The ``on_point`` callback for ``POINT[@N]:MARKER``: at the N-th passage, write the marker and
    wait (for SIGKILL)."""
    want, _, rest = spec.partition(":")
    marker, _, go = rest.partition(":")
    point, _, nth = want.partition("@")
    passes = 0

    def on_point(name: str) -> None:
        nonlocal passes
        if name != point:
            return
        passes += 1
        if passes != int(nth or 1):
            return
        with open(marker, "w") as f:
            f.write(f"{name} {os.getpid()}\n")
        give_up = time.monotonic() + 300  # a test that died meanwhile leaves no process behind
        while not (go and os.path.exists(go)):  # wait for SIGKILL, or for the go-ahead
            if time.monotonic() > give_up:
                os._exit(3)
            time.sleep(0.02 if go else 60)

    return on_point


class OneByOne:
    """The paper venue without ``place_many``: the order manager sends one order per call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "place_many":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def place(self, order: Any) -> Any:
        return self.inner.place(order)


def main(argv: list[str]) -> int:
    home, cycles = argv[0], int(argv[1])
    on_point = pause_at(argv[2]) if len(argv) > 2 else None
    settings = load_settings(home)
    broker: Any = None
    if os.environ.get("WB_CRASH_ONE_BY_ONE") == "1":
        from workbench.security.access import accounts_for, require_session
        from workbench.trading.runner import owned_account
        from workbench.trading.store import Store
        from workbench.venues.paper.broker import make_broker

        settings.ensure_dirs()
        user = require_session(accounts_for(settings), settings).user  # the book is the owner's paper account
        account = owned_account("paper", None, user.username)
        broker = OneByOne(make_broker(settings, store=Store(settings.store_url), account=account))
    feed = ReplayFeed.from_panel(synthetic_panel(8, 80, seed=11), warmup_bars=40, replay_bars=10)
    try:
        run_id = run_live(
            settings,
            broker=broker,
            engine=MomentumEngine(lookback=10, gain=3.0),
            feed=feed,
            interval_s=0.0,
            min_interval_s=0,
            cycles=cycles,
            on_point=on_point,
        )
    except Exception as e:  # as `workbench live run` says it
        code, message = explain(e, settings.store_url)
        print(f"error: {message}", file=sys.stderr, flush=True)
        return int(code)
    print(run_id, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
