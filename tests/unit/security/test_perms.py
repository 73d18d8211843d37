"""A home's stores are private to their owner whatever the umask: directories 0700 (data, lake, logs,
mlruns, keys), files 0600 (the SQLite store and its -wal/-shm, MLflow's database, the session file,
the master key, the live process's log); an older home's loose modes are tightened on start, with a
warning naming them."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from tests.kit.users import trader
from workbench.config import load_settings
from workbench.security.access import TOKEN_ENV, save_token
from workbench.trading.runner import start_background
from workbench.trading.store import Store


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def shared_umask():
    """The umask of a typical shell (files 0644, directories 0755): what the code must not rely on."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_home_is_private_whatever_the_umask(tmp_path, monkeypatch, shared_umask):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    s = load_settings(tmp_path / "home")
    assert s.ensure_dirs() == []  # nothing to tighten in a new home
    who = trader(s, "alice")  # creates the master key and the store's users
    save_token(s, who.token)
    store = Store(s.store_url)
    with store.engine.connect():  # a connection open: WAL's -wal and -shm exist
        store.log_event("test", "hello")
        db = s.data_dir / "workbench.db"
        sidecars = [db.with_name(db.name + x) for x in ("-wal", "-shm")]
        assert all(p.exists() for p in sidecars)
        for f in [db, *sidecars]:
            assert _mode(f) == 0o600, f"{f} is {_mode(f):o}"
    for d in (s.data_dir, s.lake_dir, s.data_dir / "logs", s.mlruns_dir, s.home / "keys"):
        assert _mode(d) == 0o700, f"{d} is {_mode(d):o}"
    for f in (s.mlruns_dir / "mlflow.db", s.home / ".session", s.home / "keys" / "master.key"):
        assert _mode(f) == 0o600, f"{f} is {_mode(f):o}"
    # the live process's log (a start without a session fails fast, but its log exists)
    proc = start_background(s, broker="paper", session="not-a-token", cycles=1)
    proc.wait(timeout=120)
    logs = list((s.data_dir / "logs").glob("live-*.log"))
    assert logs and all(_mode(p) == 0o600 for p in logs)


def test_an_older_homes_loose_modes_are_tightened_on_start_with_a_warning(tmp_path, monkeypatch, caplog, shared_umask):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    s = load_settings(tmp_path / "home")
    s.ensure_dirs()
    save_token(s, "t" * 43)
    Store(s.store_url).log_event("test", "hello")
    loose = [s.data_dir, s.lake_dir, s.mlruns_dir, s.data_dir / "workbench.db", s.home / ".session"]
    for p in loose:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)  # as a release before this one left them
    with caplog.at_level(logging.WARNING, logger="workbench.security"):
        changed = load_settings(s.home).ensure_dirs()
    assert {c.split(" ")[0] for c in changed} == {str(p) for p in loose}
    assert "readable by other users" in caplog.text and str(s.data_dir / "workbench.db") in caplog.text
    assert all(_mode(p) == (0o700 if p.is_dir() else 0o600) for p in loose)
    assert load_settings(s.home).ensure_dirs() == []  # once private, nothing more to say
