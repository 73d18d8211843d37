"""A team's MLflow: a real `workbench mlflow serve` process on a real PostgreSQL backend; two homes
("machines") register, promote and load through it, as with the embedded store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.unit.features.research_kit import random_walk_panel
from workbench.config import load_settings
from workbench.models.registry import Registry
from workbench.models.training import train

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_url(pg_server, tmp_path_factory):
    backend = pg_server.create_database("mlflow")
    port = _free_port()
    home = tmp_path_factory.mktemp("server-home")
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "mlflow", "serve", "--backend-store-uri", backend,
         "--artifacts-destination", str(home / "artifacts"), "--port", str(port), "--home", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own process group: the teardown stops MLflow's workers too
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited: {proc.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        _stop_group(proc)
        pytest.fail("mlflow server did not answer /health within 120 s")
    yield url
    # MLflow's job runner is off (its 7 huey consumers made a SIGTERM take ~25 s): only server + uvicorn run.
    running = _group_commands(proc.pid)
    extra = [c for c in running if "huey" in c or "_job_runner" in c]
    # As a service manager stops it: SIGTERM to the one process. Everything it started must go with it.
    proc.terminate()
    try:
        proc.wait(timeout=30)
        gone = _group_gone(proc.pid, timeout=30)
    except subprocess.TimeoutExpired:
        gone = False
    _stop_group(proc)
    assert any("mlflow server" in c for c in running), running  # the group was read
    assert not extra, f"workbench mlflow serve started MLflow's job runner: {extra}"
    assert gone, "after SIGTERM the MLflow server left processes running (or did not exit within 30 s)"


def _group_commands(pgid: int) -> list[str]:
    """Command lines of the processes in group ``pgid`` (from /proc: field 5 of stat is the group)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                out.append((d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group (uvicorn, the job runner and its consumers were left
    running after every test session when only the server was stopped), then SIGKILL to what remains."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def test_two_machines_share_one_registry(mlflow_url, tmp_path):
    panel = random_walk_panel(n_bars=300, symbols=("SYN-A", "SYN-B", "SYN-C"))
    alice = Registry(load_settings(tmp_path / "alice", mlflow_uri=mlflow_url))
    bob = Registry(load_settings(tmp_path / "bob", mlflow_uri=mlflow_url))
    first = alice.register(train(panel, params={"n_estimators": 20}))
    assert first.alias == "champion" and first.version == 1
    second = bob.register(train(panel, params={"n_estimators": 30}))
    assert second.alias == "challenger" and second.version == 2
    assert alice.load("challenger").ref.version == 2  # what Bob registered, Alice sees
    alice.promote(2)
    loaded = bob.load("champion")
    assert loaded.ref.version == 2 and loaded.kind == "lgbm"
    assert not (tmp_path / "alice" / "mlruns" / "artifacts").exists()  # artifacts went to the server
    assert len(bob.list()) == 2


def test_cli_lists_the_servers_models(mlflow_url, tmp_path):
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "carol"), "WORKBENCH_MLFLOW_URI": mlflow_url}
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "models", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "champion" in out.stdout
