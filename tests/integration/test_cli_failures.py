"""Everything a user can break around the ``workbench`` command ends in one paragraph that names the
file or setting and what to do, with the exit code of its class, and never in a traceback.

The real command runs in a subprocess (``python -m workbench``, as the console script would). The
read-only data folder is a read-only bind mount and the full disk a 96 KiB tmpfs (tests run as root,
where ``chmod`` does not stop writes); both are skipped with the reason where mounting is not allowed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.config import load_settings
from workbench.trading.store import Store

REPO = Path(__file__).resolve().parents[2]

BAD_TOML = {
    # kind: (file content, what the message must name besides the file)
    "wrong type": ('[risk]\nmin_strength = "high"\n', ("risk.min_strength", "'high'", "valid number")),
    "unknown key": ("[risk]\nmin_strenght = 0.8\n", ("unknown setting 'risk.min_strenght'", "min_strength")),
    "syntax error": ("[risk\nmin_strength = 0.8\n", ("is not valid TOML", "line 1")),
}
COMMANDS = (("live", "status"), ("live", "stop"), ("live", "emergency-stop"), ("data", "list"), ("models", "list"))


def workbench(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DEBUG", "WORKBENCH_DB_URL")}
    full_env.update(WORKBENCH_HOME=str(home), **env)
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], env=full_env, cwd=REPO, capture_output=True, text=True, timeout=300
    )


def assert_fails_cleanly(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both, both
    assert proc.returncode == code, f"exit {proc.returncode}, wanted {code}:\n{both}"
    for needle in needles:
        assert needle in proc.stderr, f"{needle!r} not in:\n{proc.stderr}"


def _store(home: Path) -> Store:
    return Store(f"sqlite:///{home / 'data' / 'workbench.db'}").create()


def _login(home: Path, monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """A logged-in admin for the commands below (stops need a session), via ``$WORKBENCH_TOKEN``."""
    from tests.kit.users import trader

    trader(load_settings(home, **settings), monkeypatch=monkeypatch)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("kind", BAD_TOML)
def test_a_broken_settings_file_names_the_file_and_the_setting(tmp_path, kind, command, monkeypatch):
    _login(tmp_path, monkeypatch)
    body, needles = BAD_TOML[kind]
    toml = tmp_path / "workbench.toml"
    toml.write_text(body)
    proc = workbench(tmp_path, *command)
    assert_fails_cleanly(proc, 3, str(toml), *needles)
    if command == ("live", "emergency-stop"):  # still tried: no run in the default store, and it says so
        assert (
            "The emergency stop is sent anyway" in proc.stderr and "no live run is active in the store" in proc.stderr
        )
    else:
        assert "run the command again" in proc.stderr and "emergency-stop` still works" in proc.stderr


@pytest.mark.parametrize("kind", BAD_TOML)
def test_the_emergency_stop_reaches_the_live_run_while_the_settings_file_is_broken(tmp_path, kind, monkeypatch):
    _login(tmp_path, monkeypatch)
    store = _store(tmp_path)
    run_id = store.start_run("paper", "paper", "paper", pid=os.getpid())
    (tmp_path / "workbench.toml").write_text(BAD_TOML[kind][0])
    proc = workbench(tmp_path, "live", "emergency-stop")
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert f"emergency stop requested for run {run_id}" in proc.stdout
    assert str(tmp_path / "workbench.toml") in proc.stderr  # the user is told the file is broken
    assert store.pending_command(run_id, consume=False) == "emergency_stop"


def test_the_emergency_stop_uses_the_db_url_of_a_file_that_parses_but_is_invalid(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere.db"
    _login(tmp_path, monkeypatch, db_url=f"sqlite:///{elsewhere}")  # the users live in that store too
    store = Store(f"sqlite:///{elsewhere}").create()
    run_id = store.start_run("paper", "paper", "paper", pid=os.getpid())
    (tmp_path / "workbench.toml").write_text(f'db_url = "sqlite:///{elsewhere}"\n[risk]\nmin_strength = "high"\n')
    proc = workbench(tmp_path, "live", "emergency-stop")
    assert proc.returncode == 0, proc.stderr
    assert store.pending_command(run_id, consume=False) == "emergency_stop"


@pytest.mark.parametrize(
    "command", [("live", "status"), ("live", "emergency-stop"), ("init",), ("keys", "list")], ids=" ".join
)
def test_a_corrupt_database_names_the_file_and_how_to_recover(tmp_path, command):
    db = tmp_path / "data" / "workbench.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a SQLite database, just garbage bytes \x00\xff" * 200)
    proc = workbench(tmp_path, *command)
    assert_fails_cleanly(proc, 7, str(db), "damaged or is not a SQLite file", f"mv {db} {db}.broken", "workbench init")
    assert db.read_bytes().startswith(b"this is not")  # nothing overwritten


def test_debug_shows_the_traceback(tmp_path):
    db = tmp_path / "data" / "workbench.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"garbage" * 1000)
    for proc in (
        workbench(tmp_path, "--debug", "live", "status"),
        workbench(tmp_path, "live", "status", WORKBENCH_DEBUG="1"),
    ):
        assert proc.returncode == 7 and "Traceback" in proc.stderr and "DatabaseError" in proc.stderr
        assert "damaged or is not a SQLite file" in proc.stderr


def test_an_unknown_model_kind_is_a_usage_error_listing_the_kinds(tmp_path):
    proc = workbench(tmp_path, "train", "--model", "xgboost")
    assert_fails_cleanly(proc, 2, "--model", "xgboost", "lgbm", "ensemble")


def _mount(args: list[str]) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or done.returncode}): needs root with CAP_SYS_ADMIN")


@pytest.fixture
def read_only_data(tmp_path, monkeypatch) -> Iterator[Path]:
    """An initialised home whose data folder (store, lake) is a read-only bind mount, with a live run."""
    load_settings(tmp_path).ensure_dirs()
    _login(tmp_path, monkeypatch)
    store = _store(tmp_path)
    store.start_run("paper", "paper", "paper", pid=os.getpid())
    store.engine.dispose()
    data = tmp_path / "data"
    _mount(["--bind", str(data), str(data)])
    try:
        _mount(["-o", "remount,bind,ro", str(data)])
        yield tmp_path
    finally:
        subprocess.run(["umount", str(data)], check=False)


def test_a_read_only_data_folder_names_the_database_and_says_read_only(read_only_data):
    db = read_only_data / "data" / "workbench.db"
    proc = workbench(read_only_data, "live", "emergency-stop")
    assert_fails_cleanly(proc, 7, str(db), "read-only")


def test_a_read_only_lake_names_the_folder(read_only_data):
    proc = workbench(read_only_data, "data", "pull", "--source", "synthetic", "-s", "SYN-001")
    assert_fails_cleanly(proc, 8, str(read_only_data / "data" / "lake"), "read-only file system", "WORKBENCH_HOME")


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    _mount(["-t", "tmpfs", "-o", "size=96k", "tmpfs", str(home)])
    try:
        yield home
    finally:
        subprocess.run(["umount", str(home)], check=False)


def test_a_full_disk_names_the_database_and_says_full(tiny_disk):
    proc = workbench(tiny_disk, "init")
    assert_fails_cleanly(proc, 7, str(tiny_disk / "data" / "workbench.db"), "is full", "Free space")
