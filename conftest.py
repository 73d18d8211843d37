"""Root pytest set-up: no test (or notebook kernel) may write into the checkout's own data/ or mlruns/.

WORKBENCH_HOME points at a fresh temp dir for the whole session unless the caller set one; nbval's
kernels inherit it, so the numbered notebooks share one demo workbench and run in order.
"""

import os
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["WORKBENCH_HOME"] = os.environ.get("WORKBENCH_TEST_HOME") or tempfile.mkdtemp(prefix="workbench-test-home-")
# Notebooks under test use the offline synthetic market: deterministic, no network.
os.environ.setdefault("WORKBENCH_DEMO__SOURCE", "synthetic")
os.environ.setdefault("WORKBENCH_DEMO__BARS", "400")
