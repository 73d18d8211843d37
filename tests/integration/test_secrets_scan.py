"""A secrets scan: after runs that used a user's exchange keys (one in this process that trades at the
local FakeBinance, one as `workbench live run` in a subprocess, as the dashboard starts it) and a
research notebook that reads them (executed by nbclient in a real kernel: shows the secrets, connects
a broker with them, logs an MLflow run with params, tags and artifacts about it), the plaintext key and
secret appear nowhere: not in the database (dumped, WAL included), the event rows, the logs, the
notebook's outputs, the MLflow runs (params, tags, metrics, every artifact, read back through MLflow)
or any other file under the home, nor in the live process's argv or environment (its session token
travels in the environment; the keys never do)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.test_live_ccxt import (
    usdt_panel,  # noqa: F401  (the venue fixture's panel)
    venue,  # noqa: F401  (pytest fixture)
)
from tests.kit.models import MomentumEngine
from tests.kit.users import trader
from tests.kit.venue import VenueFollowsTheFeed
from workbench.config import Settings, load_settings
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runner import run_live
from workbench.trading.store import Store

REPO = Path(__file__).resolve().parents[2]


def _files_containing(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            hits += [f"{p}: {n[:4]!r}..." for n in needles if n in data]
    return hits


# A quant's notebook that uses the key path: the vault's secrets shown every way a notebook shows
# things, a broker connected with them and checked, and an MLflow run recording what it saw.
_NOTEBOOK_CELLS = [
    """
from workbench.config import load_settings
from workbench.security.access import accounts_for, require_session
from workbench.security.vault import Vault
settings = load_settings()
user = require_session(accounts_for(settings), settings).user
vault = Vault.for_user(settings, user.id)
secret, key = vault.get("ccxt:binance/secret"), vault.get("ccxt:binance/api_key")
print(secret, repr(key), f"{secret} {key!s:>20}", vault.names())
secret
""",
    """
from workbench.trading.runner import make_broker
from workbench.trading.store import Store
broker = make_broker(settings, Store(settings.store_url), "ccxt:binance", vault)
status = broker.check()
print(broker, status)
display(broker, key)
broker.balances()
""",
    """
import mlflow
mlflow.set_tracking_uri(settings.tracking_uri)
mlflow.set_experiment("uses-keys")
with mlflow.start_run(run_name="broker check"):
    mlflow.log_params({"broker": repr(broker), "secret": str(secret), "key": repr(key), "status": str(status)})
    mlflow.set_tag("vault", f"{vault.names()} {secret}")
    mlflow.log_metric("balances", len(broker.balances()))
    mlflow.log_text(f"{broker!r}\\n{status}\\n{secret}\\n{key}", "check/broker.txt")
    mlflow.log_dict({"secret": str(secret), "key": repr(key)}, "check/keys.json")
print("logged")
""",
]


def _run_notebook(path: Path) -> list[bytes]:
    """Execute the notebook above in a real kernel (it inherits this process's environment: the home,
    the session token, the fake venue's URLs); save it with its outputs; return every output's text."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in _NOTEBOOK_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    nbformat.write(nb, path)
    outs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert any("logged" in o.get("text", "") for o in outs), outs  # it ran to the end
    return [json.dumps(o).encode() for o in outs]


def _mlflow_blobs(s: Settings, dest: Path) -> list[bytes]:
    """Every MLflow run of every experiment, read back through MLflow: params, tags, metric names and
    the bytes of every artifact (downloaded)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=s.tracking_uri)
    blobs: list[bytes] = []
    exps = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in exps], max_results=1000)
    assert any(r.info.run_name == "broker check" for r in runs)  # the notebook's run is among them
    for r in runs:
        blobs.append(json.dumps([r.data.params, r.data.tags, sorted(r.data.metrics)]).encode())
        local = Path(client.download_artifacts(r.info.run_id, "", str(dest / r.info.run_id)))
        blobs += [p.read_bytes() for p in local.rglob("*") if p.is_file()]
    assert len(blobs) > len(runs)  # artifacts were read, not only params
    return blobs


def test_plaintext_keys_appear_nowhere_after_runs_that_used_them(tmp_path, venue, monkeypatch):  # noqa: F811
    fake, panel = venue
    for var in [k for k in os.environ if k.startswith("WORKBENCH_KEY_")]:
        monkeypatch.delenv(var)
    venues = {"ccxt": {"urls": {"binance": fake.ccxt_config()["urls"]}}}
    monkeypatch.setenv("WORKBENCH_VENUES", json.dumps(venues))  # the subprocess reads the same settings
    home = tmp_path / "home"
    s = load_settings(home, broker={"default": "ccxt:binance", "timeout_s": 5.0})
    s.ensure_dirs()
    owner = trader(s, monkeypatch=monkeypatch)
    owner.vault.put("ccxt:binance/api_key", fake.api_key)
    owner.vault.put("ccxt:binance/secret", fake.secret)
    needles = [fake.api_key.encode(), fake.secret.encode()]

    feed = VenueFollowsTheFeed(ReplayFeed.from_panel(panel, warmup_bars=40, replay_bars=5), fake)
    rid = run_live(
        s, engine=MomentumEngine(lookback=10, gain=3.0), feed=feed, interval_s=0.0, min_interval_s=0, cycles=2
    )
    store = Store(s.store_url)
    assert store.run(rid)["status"] == "STOPPED", store.run(rid)["message"]
    assert len(store.orders(rid)) > 0  # the keys signed real requests

    # `workbench live run` as the dashboard launches it: the token in the environment, keys from the vault.
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_BROKER__DEFAULT": "ccxt:binance"}
    cmd = [sys.executable, "-m", "workbench", "live", "run", "--cycles", "1", "--interval", "1"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: list[bytes] = []
    while proc.poll() is None:  # argv and environment, read while it runs (keys decrypted in its memory)
        try:
            seen.append(Path(f"/proc/{proc.pid}/cmdline").read_bytes() + Path(f"/proc/{proc.pid}/environ").read_bytes())
        except OSError:
            break
        time.sleep(0.05)
    out = proc.communicate(timeout=120)[0]
    sub = store.latest_run()
    checks = store.checks(sub["id"]).set_index("name")
    assert sub["id"] != rid and bool(checks.loc["api_keys", "ok"]), out.decode()  # the subprocess used the keys
    assert seen and all(n not in blob for blob in seen for n in needles)
    assert all(n not in out for n in needles)

    # a research notebook that uses the keys, executed; its outputs and its MLflow run scanned
    (home / "notebooks").mkdir(exist_ok=True)
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    outputs = _run_notebook(home / "notebooks" / "uses_keys.ipynb")
    assert all(n not in blob for blob in outputs for n in needles)
    mlflow_blobs = _mlflow_blobs(s, tmp_path / "mlflow-download")
    assert all(n not in blob for blob in mlflow_blobs for n in needles)

    con = sqlite3.connect(home / "data" / "workbench.db")
    dump = "\n".join(con.iterdump()).encode()
    events = "\n".join(m or "" for (m,) in con.execute("SELECT message FROM events")).encode()
    con.close()
    assert all(n not in dump for n in needles) and all(n not in events for n in needles)
    assert b"user_secrets" in dump and b"events" in dump  # the dump did cover the tables that matter
    assert any(p.is_file() for p in (home / "mlruns").rglob("*"))  # MLflow files exist and are scanned below
    assert _files_containing(home, needles) == []  # db + WAL, logs, mlruns, keys/: nothing in plain text
