"""Can this run trade live data? A short probe of a public endpoint and a check that every exchange of
the universe has a data venue — what ``live.feed = auto`` (``make run``'s demo) decides with.

Why a probe and not just trying: the demo must come up in seconds on a laptop without network, and
say plainly that it is replaying old bars because the venue did not answer.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from workbench.errors import ConfigError

__all__ = ["answers", "live_possible"]


def answers(url: str, timeout_s: float) -> tuple[bool, str]:
    """(True, "") when ``url`` answers HTTP within ``timeout_s`` (any status: the host is there), else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return True, ""
    except urllib.error.HTTPError:
        return True, ""
    except (urllib.error.URLError, OSError, ValueError) as e:
        return False, f"{url} did not answer within {timeout_s:g}s ({getattr(e, 'reason', e)})"


def live_possible(settings: Any, universe: dict) -> tuple[bool, str]:
    """(live?, the reason in words) for a model's universe under ``settings.live``."""
    from workbench.live.router import route
    from workbench.live.sources import universe_keys

    try:
        keys, _, _ = universe_keys(universe)
        routes = route(keys, settings.live.data_venues)
    except ConfigError as e:
        return False, f"replaying: the universe has no live data venue ({e})"
    ok, why = answers(settings.live.probe_url, settings.live.probe_timeout_s)
    if not ok:
        return False, f"replaying (REPLAY, old bars): {why}"
    return True, f"live data from {', '.join(r.venue for r in routes)} ({settings.live.probe_url} answered)"
