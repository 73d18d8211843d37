"""Each class of error the command line can meet gets its own exit code and a message saying what to
do; a bug (anything else) gets exit 1 and the advice to rerun with --debug, still without a traceback."""

from __future__ import annotations

import errno
import sqlite3

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from workbench import errors
from workbench.cli import app
from workbench.cli_exits import ExitCode, explain


class _Limits(BaseModel):
    max_position_pct: float


def _validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as e:
        _Limits(max_position_pct="lots")
    return e.value


def _sqlite(message: str, name: str) -> OperationalError:
    orig = sqlite3.OperationalError(message)
    orig.sqlite_errorname = name
    return OperationalError("INSERT INTO commands ...", {}, orig)


@pytest.mark.parametrize(
    "exc, code, needle",
    [
        (errors.ConfigError("risk.min_strength is wrong"), ExitCode.CONFIG, "risk.min_strength"),
        (errors.VaultError("the vault key changed"), ExitCode.CONFIG, "vault key"),
        (errors.NotLoggedIn("not logged in: run `workbench login`"), ExitCode.ACCESS, "workbench login"),
        (errors.PermissionDenied("lacks the 'trade_live' permission"), ExitCode.ACCESS, "trade_live"),
        (errors.LoginFailed("wrong username or password"), ExitCode.ACCESS, "wrong username"),
        (errors.NoDataError("no data in the lake yet"), ExitCode.DATA, "lake"),
        (errors.InstrumentListError("nasdaqlisted.txt", "no data rows"), ExitCode.DATA, "nasdaqlisted.txt"),
        (
            errors.SourceUnavailableError("binance did not answer"),
            ExitCode.TEMPORARY,
            "run the same command again later",
        ),
        (errors.TemporaryBrokerError("HTTP 503"), ExitCode.TEMPORARY, "later"),
        (errors.NoModelError("no model 'champion'"), ExitCode.MODEL, "champion"),
        (errors.AuthenticationError("the key is wrong"), ExitCode.BROKER, "key"),
        (errors.OrderRejected("min_notional"), ExitCode.BROKER, "min_notional"),
        (errors.InvalidTransition("FILLED", "CANCELLED"), ExitCode.FAILED, "FILLED to CANCELLED"),
        (errors.WorkbenchError("the retrain failed"), ExitCode.FAILED, "retrain"),
        (_validation_error(), ExitCode.CONFIG, "max_position_pct = 'lots'"),
        (
            _sqlite("database is locked", "SQLITE_BUSY"),
            ExitCode.STORE,
            "/h/data/workbench.db is locked by another process",
        ),
        (
            _sqlite("database or disk is full", "SQLITE_FULL"),
            ExitCode.STORE,
            "the disk holding /h/data/workbench.db is full",
        ),
        (
            _sqlite("attempt to write a readonly database", "SQLITE_READONLY"),
            ExitCode.STORE,
            "/h/data/workbench.db is read-only",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device", "/h/data/lake/x.parquet"),
            ExitCode.OS,
            "no space left on the disk holding /h/data/lake/x.parquet",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/h/workbench.toml"),
            ExitCode.OS,
            "permission denied on /h/workbench.toml",
        ),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "/h/x.csv"),
            ExitCode.OS,
            "/h/x.csv does not exist",
        ),
        (RuntimeError("boom"), ExitCode.UNEXPECTED, "--debug"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else "",
)
def test_each_class_has_its_exit_code_and_a_message(exc, code, needle):
    got_code, message = explain(exc, "sqlite:////h/data/workbench.db")
    assert (got_code, needle in message) == (code, True), message
    assert "\n" not in message  # one paragraph


def test_the_exit_codes_are_distinct():
    assert len({int(c) for c in ExitCode}) == len(ExitCode)


def test_a_bug_exits_1_with_advice_and_no_traceback(tmp_path, monkeypatch):
    import workbench.trading.runner as runner

    def boom(settings, **_):
        raise KeyError("cycle")

    monkeypatch.setattr(runner, "status", boom)
    result = CliRunner().invoke(app, ["live", "status", "--home", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "unexpected KeyError" in result.output and "--debug" in result.output


@pytest.mark.parametrize(
    "options, read_only",
    [
        ("rw,relatime,errors=remount-ro,emergency_ro", True),  # ext4 after an I/O error: statvfs says rw
        ("ro,relatime", True),
        ("rw,relatime,errors=remount-ro", False),
    ],
)
def test_a_mount_read_only_by_its_options_is_named_read_only(tmp_path, options, read_only):
    """ext4's emergency read-only is visible only in /proc/mounts' options; the deepest mount holding
    the folder decides (its parent mounted rw does not hide it, a rw sibling does not leak into it)."""
    from workbench.cli_exits import _mounted_read_only

    store = tmp_path / "my disk" / "data"
    store.mkdir(parents=True)
    point = str(tmp_path / "my disk").replace(" ", "\\040")
    mounts = tmp_path / "mounts"
    mounts.write_text(
        f"/dev/sda1 / ext4 rw,relatime 0 0\n/dev/loop0 {point} ext4 {options} 0 0\n/dev/loop1 {point}2 ext4 ro 0 0\n"
    )
    assert _mounted_read_only(str(store), str(mounts)) is read_only
    assert _mounted_read_only(str(tmp_path), str(mounts)) is False
