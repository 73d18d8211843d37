"""A real S3 protocol server on loopback (moto's ``ThreadedMotoServer``) for object-store lake tests.

Why a server, not moto's in-process mock: the lake is read by Dask worker *processes*, which only see
the endpoint through the environment (``AWS_ENDPOINT_URL``), exactly as a team's workers see MinIO/S3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def s3_server(monkeypatch: pytest.MonkeyPatch, bucket: str = "lake") -> Iterator[str]:
    """Start the server, point every process started from here at it, create ``bucket``; yields its URL."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for k, v in {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(k, v)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()  # no client built for an earlier endpoint
        s3fs.S3FileSystem().mkdir(bucket)
        yield endpoint
    finally:
        server.stop()
