"""Run every ``bench/bench_*.py`` module's ``main()`` in name order (``python -m bench [name ...]``)."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

# Benches that belong to a group whose name is not in theirs: ``python -m bench live`` runs the full cycle too.
GROUPS = {"live": ("bench_cycle",)}


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    wanted = [a for a in argv if not a.startswith("-")]  # flags (--quick) are the benches' own
    if wanted:
        names = [n for n in names if any(a in n or n in GROUPS.get(a, ()) for a in wanted)]
    failed = 0
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as e:  # one broken bench must not hide the others' figures
            failed += 1
            print(f"   FAILED: {type(e).__name__}: {e}")
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
