"""A lake at an object-store URL (``s3://bucket/prefix``, ``gs://…``, any fsspec protocol), read-only.

Why: a team's Dask workers on several machines share no disk; they share a bucket. Each worker opens
the lake from its URL and reads its own rows, so data never travels through the scheduler.

``open_lake(root)`` is what callers use: a plain path or ``file://`` URL gives the local ``Lake``
(unchanged, exactly as fast), anything else a ``UrlLake`` over that protocol's fsspec filesystem.
The layout is the local lake's (``ohlcv/exchange=<ex>/timeframe=<tf>/data.parquet`` + deltas), so
``publish`` copies a local lake's files up as they are. Reads go through pyarrow's scan on the fsspec
filesystem (DuckDB would need its httpfs extension, which it downloads on first use: this machine's
network is closed, and a team's workers may be too). An object store has no file locks, so a
``UrlLake`` is read-only: pull into a local lake, then ``publish`` it (a snapshot; re-publish to update).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pandas as pd
import pyarrow as pa

from workbench.data import lakefiles as lf
from workbench.data.lake import QUARANTINE_TABLE_COLUMNS, Lake, WriteResult, _q, catalog_frame
from workbench.errors import ConfigError, NoDataError, TemporaryError, WorkbenchError

__all__ = ["UrlLake", "check_publish_url", "is_url", "open_lake", "publish"]


def is_url(root: Path | str) -> bool:
    """Is ``root`` a URL with a protocol (``s3://…``, ``file://…``) rather than a plain path?"""
    return "://" in str(root)


def _local_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def open_lake(root: Path | str) -> Lake:
    """The lake at ``root``: a local ``Lake`` for a path or ``file://`` URL, else a read-only ``UrlLake``."""
    text = str(root)
    if not is_url(text):
        return Lake(root)
    if text.startswith("file://"):
        return Lake(_local_path(text))
    return UrlLake(text)


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as e:
        raise ConfigError(
            f"cannot open the lake at {url}: {e}. For s3:// install s3fs (a workbench dependency); other "
            f"object stores need their fsspec package (gcsfs, adlfs)"
        ) from None
    return fs, str(path).rstrip("/")


class UrlLake(Lake):
    """The lake's read side over an fsspec filesystem. ``root`` is the URL (``s3://bucket/prefix``).

    Credentials and the endpoint come from the protocol's usual sources (for S3: ``AWS_*`` variables,
    ``~/.aws``, or ``AWS_ENDPOINT_URL`` for MinIO and other S3-compatible stores)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.fs, self._base = _filesystem(self.url)
        self.root = Path(self._base)  # a key prefix in the store, never opened on the local disk

    def __repr__(self) -> str:
        return f"UrlLake({self.url!r})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (UrlLake, (self.url,))  # a worker reopens the URL with its own credentials

    # ---- where --------------------------------------------------------------------------------
    def _key(self, exchange: str, timeframe: str) -> str:
        return f"{self._base}/ohlcv/exchange={_q(exchange)}/timeframe={_q(timeframe)}"

    def _glob(self, exchange: str, timeframe: str) -> str:
        return f"{self.url}/ohlcv/exchange={_q(exchange)}/timeframe={_q(timeframe)}/*.parquet"

    def _remote_files(self, exchange: str, timeframe: str) -> list[str]:
        """Base then deltas in write order, as ``lakefiles.files`` lists them locally."""
        key = self._key(exchange, timeframe)
        self.fs.invalidate_cache(key)  # a long-lived worker sees a later publish
        found = sorted(str(p) for p in self.fs.glob(f"{key}/*.parquet"))
        base = [p for p in found if p.rsplit("/", 1)[-1] == lf.BASE]
        return base + [p for p in found if p.rsplit("/", 1)[-1].startswith("delta-")]

    # ---- writing: refused ----------------------------------------------------------------------
    def _read_only(self) -> ConfigError:
        return ConfigError(
            f"the lake at {self.url} is read-only here (an object store has no file locks): pull into a "
            f"local lake, then copy it up with workbench.data.lake_url.publish(local_lake_dir, {self.url!r})"
        )

    def write(self, candles: pd.DataFrame, exchange: str, timeframe: str, source: str) -> int:
        raise self._read_only()

    def write_screened(self, candles: pd.DataFrame, exchange: str, timeframe: str, source: str) -> WriteResult:
        raise self._read_only()

    def quarantine(self, bad: pd.DataFrame, exchange: str, timeframe: str, source: str) -> Path:
        raise self._read_only()

    # ---- reading -------------------------------------------------------------------------------
    def _parts(self, exchange: str, timeframe: str) -> list[Path]:
        return [Path(p) for p in self._remote_files(exchange, timeframe)]

    def _scan(self, exchange: str, timeframe: str, columns, symbols=None, start=None, end=None) -> pa.Table:
        return lf.scan(self._remote_files(exchange, timeframe), columns, symbols, start, end, filesystem=self.fs)

    def datasets(self) -> list[tuple[str, str]]:
        out = set()
        self.fs.invalidate_cache(f"{self._base}/ohlcv")
        for p in self.fs.glob(f"{self._base}/ohlcv/exchange=*/timeframe=*/*.parquet"):
            ex_dir, tf_dir = str(p).split("/")[-3:-1]
            out.add((unquote(ex_dir.split("=", 1)[1]), unquote(tf_dir.split("=", 1)[1])))
        return sorted(out)

    def catalog(self) -> pd.DataFrame:
        parts = []
        for exchange, timeframe in self.datasets():
            df = self._scan(exchange, timeframe, ("ts", "symbol", "source")).to_pandas()
            if df.empty:
                continue
            df["symbol"] = df["symbol"].astype(str)
            df["source"] = df["source"].astype(str)
            g = df.groupby("symbol", sort=True)
            out = pd.DataFrame(
                {
                    "source": g["source"].agg(lambda s: ",".join(sorted(set(s)))),
                    "rows": g.size().astype("int64"),
                    "first": g["ts"].min(),
                    "last": g["ts"].max(),
                }
            ).reset_index()
            out.insert(0, "timeframe", timeframe)
            out.insert(0, "exchange", exchange)
            parts.append(out)
        return catalog_frame(parts)

    def quarantined(self, exchange: str | None = None, timeframe: str | None = None) -> pd.DataFrame:
        ex = _q(exchange) if exchange else "*"
        tf = _q(timeframe) if timeframe else "*"
        files = sorted(self.fs.glob(f"{self._base}/quarantine/exchange={ex}/timeframe={tf}/part-*.parquet"))
        if not files:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in QUARANTINE_TABLE_COLUMNS})
        import pyarrow.parquet as pq

        df = pq.read_table(files, filesystem=self.fs).to_pandas()[list(QUARANTINE_TABLE_COLUMNS)]
        key = ["exchange", "timeframe", "symbol", "ts", "reason", "open", "high", "low", "close", "volume"]
        df = df.sort_values("quarantined_at", kind="stable").drop_duplicates(key, keep="first")
        for c in ("ts", "quarantined_at"):
            df[c] = df[c].astype("datetime64[ns, UTC]")
        return df.sort_values(["exchange", "timeframe", "symbol", "ts"], na_position="first").reset_index(drop=True)


def check_publish_url(url: str) -> str:
    """``url`` if it names an object-store location to publish to, else a ``ConfigError`` saying why."""
    parts = urlsplit(str(url))
    if not is_url(url) or not parts.scheme:
        raise ConfigError(f"{url!r} is not an object-store URL: give one such as s3://bucket/prefix")
    if parts.scheme != "file" and not parts.netloc:
        raise ConfigError(f"{url!r} names no bucket: give one such as {parts.scheme}://bucket/prefix")
    return str(url)


def _publish_plan(local: Lake, local_root: Path | str) -> tuple[list[tuple[str, str]], list[Path]]:
    datasets = local.datasets()
    quarantine = sorted(Path(local_root).glob("quarantine/exchange=*/timeframe=*/part-*.parquet"))
    return datasets, quarantine


@contextmanager
def _store_errors(url: str) -> Iterator[None]:
    """The object store's own errors, as workbench errors that say what to do (no traceback)."""
    try:
        yield
    except WorkbenchError:
        raise
    except Exception as e:  # botocore/s3fs/gcsfs raise their own classes: matched by name, not imported
        name = type(e).__name__
        if name in ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError", "DefaultCredentialsError"):
            raise ConfigError(
                f"no credentials for {url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL "
                f"for MinIO or another S3-compatible store), or configure ~/.aws/credentials ({name})"
            ) from None
        if isinstance(e, PermissionError) or name in ("ClientError", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise ConfigError(
                f"the object store refused the credentials or the access for {url}: {e}. Check the key, the "
                f"secret and the bucket's policy"
            ) from None
        if isinstance(e, FileNotFoundError):
            raise ConfigError(f"{url}: no such bucket or location ({e}); create the bucket first") from None
        if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError") or isinstance(
            e, (ConnectionError, TimeoutError)
        ):
            raise TemporaryError(
                f"cannot reach the object store for {url} ({e}): check AWS_ENDPOINT_URL and the network, then "
                f"publish again (files already copied are copied again)"
            ) from None
        raise


def publish(local_root: Path | str, url: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Copy a local lake's files (bars and quarantine) to ``url``, replacing what is there; returns the
    number of files copied. Run it after pulls, not while a sweep reads the URL: between the copy of a
    newly compacted base and the removal of the deltas it absorbed, a reader could see a bar twice.

    ``progress(done, total)`` is called after each file. An empty lake is a ``NoDataError``; a bad URL,
    missing or refused credentials and a missing bucket are ``ConfigError``s; an unreachable store is a
    ``TemporaryError``."""
    check_publish_url(url)
    if not Path(local_root).is_dir():
        raise NoDataError(f"no lake at {local_root}: pull data first (`workbench data pull`) or pass --lake PATH")
    local = Lake(local_root)
    datasets, quarantine = _publish_plan(local, local_root)
    if not datasets:
        raise NoDataError(f"the lake at {local_root} holds no bars to publish: pull data first (`workbench data pull`)")
    total = sum(len(local._parts(ex, tf)) for ex, tf in datasets) + len(quarantine)
    n = 0

    def copied() -> None:
        nonlocal n
        n += 1
        if progress is not None:
            progress(n, max(total, n))

    with _store_errors(url):
        fs, base = _filesystem(url)
        for exchange, timeframe in datasets:
            src = local._parts(exchange, timeframe)  # migrates an old per-symbol layout first
            key = f"{base}/ohlcv/exchange={_q(exchange)}/timeframe={_q(timeframe)}"
            with lf.locked(src[0].parent, exclusive=False):
                src = lf.files(src[0].parent)
                stale = [p for p in fs.glob(f"{key}/*.parquet") if p.rsplit("/", 1)[-1] not in {s.name for s in src}]
                for p in src:
                    fs.put_file(str(p), f"{key}/{p.name}")
                    copied()
            for p in stale:  # deltas compacted away locally since the last publish
                fs.rm_file(p)
        for p in quarantine:
            fs.put_file(str(p), f"{base}/{p.relative_to(local_root).as_posix()}")
            copied()
    return n
