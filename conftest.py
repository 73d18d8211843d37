"""Root pytest set-up: no test (or notebook kernel) may write into the checkout's own data/ or mlruns/.

WORKBENCH_HOME points at a fresh temp dir for the whole session unless the caller set one; nbval's
kernels inherit it, so the numbered notebooks share one demo workbench and run in order. The real
market data the tests use (WORKBENCH_TEST_DATA, else ../shared/data) is also the notebooks' research
data (WORKBENCH_RESEARCH_DATA_DIR), so they run on the real S&P 500 files when those are present.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["WORKBENCH_HOME"] = os.environ.get("WORKBENCH_TEST_HOME") or tempfile.mkdtemp(prefix="workbench-test-home-")
# Notebooks under test use the offline synthetic market: deterministic, no network.
os.environ.setdefault("WORKBENCH_DEMO__SOURCE", "synthetic")
os.environ.setdefault("WORKBENCH_DEMO__BARS", "400")
_real = Path(os.environ.get("WORKBENCH_TEST_DATA") or Path(__file__).resolve().parent.parent / "shared" / "data")
if (_real / "PROVENANCE.md").exists():
    os.environ.setdefault("WORKBENCH_RESEARCH_DATA_DIR", str(_real.resolve()))
