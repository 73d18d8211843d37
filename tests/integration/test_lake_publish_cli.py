"""`workbench lake publish URL`: a local lake copied to a real S3 protocol server (moto on loopback)
with a progress bar, and the errors a user can cause, each a message and its own exit code."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.kit.s3 import s3_server
from tests.unit.features.research_kit import random_walk_panel
from workbench.cli import app
from workbench.cli_exits import ExitCode
from workbench.config import load_settings
from workbench.data.lake import Lake
from workbench.data.lake_url import open_lake

pytestmark = pytest.mark.slow

SYMS = ("SYN-A", "SYN-B")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        aws = tmp_path_factory.mktemp("aws")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask a cloud metadata endpoint
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws / "no-credentials"))
        mp.setenv("AWS_CONFIG_FILE", str(aws / "no-config"))
        with s3_server(mp, bucket="team") as endpoint:
            yield endpoint


@pytest.fixture(autouse=True)
def _fresh_s3_clients():
    """s3fs caches its clients by arguments, not by the environment a test changed."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def home(tmp_path):
    settings = load_settings(tmp_path / "home")
    settings.ensure_dirs()
    long = random_walk_panel(n_bars=120, symbols=SYMS).to_long()
    lake = Lake(settings.lake_dir)
    lake.write(long[long["ts"] < long["ts"].max() - pd.Timedelta(days=10)], "SYNTH", "1d", "test")
    lake.write(long, "SYNTH", "1d", "test")  # a base and a delta: two files
    return settings


def _run(*args: str):
    return CliRunner().invoke(app, ["lake", "publish", *args])


def test_publish_copies_the_homes_lake_with_a_progress_bar(s3, home):
    out = _run("s3://team/prices", "--home", str(home.home))
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())
    assert "published 2 files" in said and 'lake_url = "s3://team/prices"' in said
    assert "publish to s3://team/prices" in said and "2/2" in said  # the bar (stderr), at its end
    a = open_lake("s3://team/prices").load_panel("SYNTH", "1d", list(SYMS))
    b = Lake(home.lake_dir).load_panel("SYNTH", "1d", list(SYMS))
    pd.testing.assert_frame_equal(a.field("close"), b.field("close"))


def test_publish_of_another_lake_path(s3, home, tmp_path):
    out = _run("s3://team/other", "--lake", str(home.lake_dir), "--home", str(tmp_path / "elsewhere"))
    assert out.exit_code == 0, out.output
    assert open_lake("s3://team/other").datasets() == [("SYNTH", "1d")]


@pytest.mark.parametrize(
    ("url", "says"),
    [("team/prices", "not an object-store URL"), ("s3://", "names no bucket"), ("nope://x/y", "cannot open")],
)
def test_a_bad_url_is_a_usage_error(s3, home, url, says):
    out = _run(url, "--home", str(home.home))
    assert out.exit_code in (ExitCode.USAGE, ExitCode.CONFIG), out.output
    assert says in " ".join(out.output.split()) and "Traceback" not in out.output
    if says != "cannot open":  # recognisable from the text alone: before anything is read
        assert out.exit_code == ExitCode.USAGE


def test_missing_credentials_say_which_variables(s3, home, monkeypatch):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k)
    out = _run("s3://team/prices", "--home", str(home.home))
    said = " ".join(out.output.split())
    assert out.exit_code == ExitCode.CONFIG, out.output
    assert "no credentials for s3://team/prices" in said and "AWS_ACCESS_KEY_ID" in said and "Traceback" not in said


def test_missing_bucket_and_empty_lake(s3, home, tmp_path):
    out = _run("s3://no-such-bucket/prices", "--home", str(home.home))
    assert out.exit_code == ExitCode.CONFIG and "no such bucket" in " ".join(out.output.split()), out.output
    empty = tmp_path / "empty"
    empty.mkdir()
    out = _run("s3://team/prices", "--lake", str(empty), "--home", str(home.home))
    assert out.exit_code == ExitCode.DATA and "holds no bars" in " ".join(out.output.split()), out.output
    out = _run("s3://team/prices", "--lake", str(tmp_path / "missing"), "--home", str(home.home))
    assert out.exit_code == ExitCode.DATA and "no lake at" in " ".join(out.output.split()), out.output
