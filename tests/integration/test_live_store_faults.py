"""Store faults in a real live process: the store's disk fills up in the middle of a cycle (right
after an order was recorded NEW, before the venue heard of it), or another process locks it. The run
stops trading and ends FAILED with the reason once the store can be written again, never with a traceback;
if it never can, the process says why (exit code 7, as `workbench` does) and the next start resumes
the run and reconciles it. Either way the restart leaves no duplicate order, and positions = fills =
the venue's holdings.

The disk is a small tmpfs mounted for the test (needs root with CAP_SYS_ADMIN; skipped otherwise),
filled to the last byte with a file for "disk full"; "locked" is another connection holding the
database's write lock."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_crash_recovery import REPO, _assert_consistent, _launch, _tables

STORE_EXIT = 7  # ExitCode.STORE


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A real ext4 file system on a loop device, mounted ``errors=remount-ro``: ext4's own
    ``trigger_fs_error`` switch turns it read-only under the open store (what a failing disk does; a
    plain ``mount -o remount,ro`` is refused while files are open for writing). Yields the mount
    point and the image."""
    if os.geteuid() != 0:
        pytest.skip("a loop-mounted ext4 needs root")
    image, mnt = tmp_path / "ext4.img", tmp_path / "ext4"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(256 * 2**20)
    mk = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True)
    if mk.returncode != 0:
        pytest.skip(f"no mkfs.ext4 here: {mk.stderr.strip()}")
    if not _mount_ext4(image, mnt):
        pytest.skip("cannot loop-mount an ext4 image here")
    try:
        yield mnt, image
    finally:
        _unmount(mnt)


def _mount_ext4(image: Path, mnt: Path) -> bool:
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True)
    if loop.returncode != 0:
        return False
    dev = loop.stdout.strip()
    subprocess.run(["blockdev", "--setrw", dev], capture_output=True)
    ok = subprocess.run(["mount", "-o", "errors=remount-ro", dev, str(mnt)], capture_output=True).returncode == 0
    if not ok:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
    return ok


def _unmount(mnt: Path) -> bool:
    """Unmount (lazily when something still holds it, so nothing is left behind); True when clean."""
    dev = next((line.split()[0] for line in Path("/proc/mounts").read_text().splitlines() if f" {mnt} " in line), None)
    clean = subprocess.run(["umount", str(mnt)], capture_output=True).returncode == 0
    if not clean:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    if dev is not None and dev.startswith("/dev/loop"):
        subprocess.run(["losetup", "-d", dev], capture_output=True)
    return clean


def home_on(disk: Path, retry_s: float) -> tuple[Path, str]:
    from tests.kit.users import trader
    from workbench.config import load_settings

    home = disk / "home"
    home.mkdir()
    (home / "workbench.toml").write_text(f"[live]\nstore_retry_s = {retry_s}\n")
    return home, trader(load_settings(home)).token


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_process_left() -> Iterator[None]:
    """Every live process a test launched is gone when it ends, whatever happened."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def launch(home: Path, cycles: int, hook: str | None = None, token: str | None = None) -> subprocess.Popen:
    """The crash tests' live process (``test_crash_recovery._launch``), remembered for ``_no_process_left``."""
    proc = _launch(home, cycles, hook=hook, token=token)
    _started.append(proc)
    return proc


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.stdout.read()}\n{proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"the run never reached {path.name}")
        time.sleep(0.05)


def fill_up(disk: Path) -> Path:
    """Write zeros until the disk refuses: the next block anyone asks for gets ENOSPC."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 65536)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 512)
    finally:
        os.close(fd)
    return filler


def restart_and_check(home: Path, resumed: bool, token: str | None = None) -> None:
    """A resumed run needs no session (unattended restart); a new one is its user's."""
    proc = launch(home, 3, token=token)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"restart failed:\n{out}\n{err}"
    t = _tables(home)
    if not resumed:  # the FAILED run stays FAILED; a new run reconciled its orders and traded on
        assert list(t["runs"]["status"]) == ["FAILED", "STOPPED"], t["runs"]["message"].tolist()
        t["runs"] = t["runs"].iloc[[1]]
        t["cycles"] = t["cycles"][t["cycles"]["run_id"] == t["runs"]["id"].iloc[0]]
        t["signals"] = t["signals"][t["signals"]["run_id"] == t["runs"]["id"].iloc[0]]
    _assert_consistent(t, cycles=3)


def test_disk_full_mid_cycle_ends_the_run_failed_once_space_returns_then_restart_is_consistent(disk, tmp_path):
    home, token = home_on(disk, retry_s=30)
    marker, go = tmp_path / "marker", tmp_path / "go"
    proc = launch(home, 5, hook=f"after_new@3:{marker}:{go}", token=token)
    wait_for(marker, proc)
    filler = fill_up(disk)
    go.touch()  # the order goes to the venue now: the venue's and the store's writes meet a full disk
    time.sleep(1.5)
    assert proc.poll() is None  # still trying to record FAILED, not crashed
    filler.unlink()  # space returns
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "the store could not be written" in err and "full" in err
    t = _tables(home)
    (run,) = t["runs"].to_dict("records")
    assert run["status"] == "FAILED" and "the store could not be written" in run["message"]
    assert "full" in run["message"] and "Free space" in run["message"]
    restart_and_check(home, resumed=False, token=token)


def test_a_store_locked_for_good_exits_clean_and_the_next_start_resumes(tmp_path):
    """Another process holds the database's write lock past the busy timeout and the retry window. (A
    read-only remount cannot be forced mid-run: the kernel refuses it while the store's files are open
    for writing; the read-only message itself is ``cli_exits``' and tested there.)"""
    import sqlite3

    home, token = home_on(tmp_path, retry_s=1)
    marker, go = tmp_path / "marker", tmp_path / "go"
    proc = launch(home, 5, hook=f"after_new@1:{marker}:{go}", token=token)  # cycle 1's batch of entries
    wait_for(marker, proc)
    holder = sqlite3.connect(home / "data" / "workbench.db", timeout=30, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        go.touch()
        _, err = proc.communicate(timeout=120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == STORE_EXIT and "Traceback" not in err, err
    assert "locked" in err and "the store could not be written" in err
    cut = _tables(home)
    assert cut["runs"]["status"].iloc[0] == "RUNNING"  # it could not say FAILED; its process is gone (DEAD)
    restart_and_check(home, resumed=True)
    events = _tables(home)["events"]["message"]
    assert events.str.contains("resumed under its owner").any()


def test_the_store_s_disk_turning_read_only_mid_cycle_exits_clean_naming_the_store(ext4, tmp_path):
    """The file system under the store turns read-only (ext4's error path, as on a failing disk) after
    a batch is recorded NEW and before the venue hears of it: the run stops trading at once with the
    store's message (exit 7, no traceback) instead of sending orders it cannot record. (What a restart
    finds is not asserted: ext4 drops the page cache it could not write back, and with WAL +
    ``synchronous=NORMAL`` the last commits were not yet fsynced — a disk failure, like a power cut,
    loses them; a SIGKILL does not, see test_crash_recovery.)"""
    mnt, _ = ext4
    home = mnt / "home"
    home.mkdir()
    (home / "workbench.toml").write_text("[live]\nstore_retry_s = 1\n")
    made = subprocess.run(  # in a process of its own: this one must hold no file open on the disk
        [sys.executable, "-c", "import sys\nfrom tests.kit.users import trader\nfrom workbench.config import "
         "load_settings\nprint(trader(load_settings(sys.argv[1])).token)", str(home)],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    token = made.stdout.strip().splitlines()[-1]
    marker, go = tmp_path / "marker", tmp_path / "go"
    proc = launch(home, 5, hook=f"after_new@3:{marker}:{go}", token=token)
    wait_for(marker, proc)
    dev = next(line.split()[0] for line in Path("/proc/mounts").read_text().splitlines() if f" {mnt} " in line)
    Path(f"/sys/fs/ext4/{Path(dev).name}/trigger_fs_error").write_text("workbench test: the disk fails\n")
    mounts = [line for line in Path("/proc/mounts").read_text().splitlines() if f" {mnt} " in line]
    assert any("emergency_ro" in line or " ro," in line for line in mounts), mounts
    go.touch()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == STORE_EXIT and "Traceback" not in err, err
    # ext4's emergency read-only shows as "rw,…,emergency_ro" (statvfs does not flag it) and SQLite says
    # "disk I/O error": the mount options in /proc/mounts still name it read-only
    assert "the store could not be written" in err and "disk I/O error" in err, err
    assert "read-only" in err and "remount the disk read-write" in err, err
