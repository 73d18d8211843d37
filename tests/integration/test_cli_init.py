"""`workbench init --demo` (the first half of `make run`) offline: synthetic demo data, labelled as
such, and a champion model; running it again neither re-pulls nor re-trains."""

from __future__ import annotations

import os
import subprocess
import sys


def _cli(home, *args):
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DEMO__SOURCE": "auto", "WORKBENCH_DEMO__NETWORK_TIMEOUT_S": "1"}
    return subprocess.run([sys.executable, "-m", "workbench", *args], env=env, capture_output=True, text=True, timeout=600)


def test_init_demo_offline_makes_a_labelled_synthetic_market_and_a_champion(tmp_path):
    first = _cli(tmp_path, "init", "--demo")
    assert first.returncode == 0, first.stderr
    assert "SYNTHETIC" in first.stdout
    assert "registered workbench v1 as champion" in first.stdout
    assert (tmp_path / "data" / "workbench.db").exists() and (tmp_path / "mlruns" / "mlflow.db").exists()
    second = _cli(tmp_path, "init", "--demo")
    assert second.returncode == 0, second.stderr
    assert "registered" not in second.stdout and "champion model:" in second.stdout
    listed = _cli(tmp_path, "models", "list")
    assert listed.returncode == 0 and "champion" in listed.stdout
