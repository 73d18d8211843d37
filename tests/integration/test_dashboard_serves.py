"""Voilà serves the shipped dashboard.ipynb: the page renders the app's widgets, with no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from workbench.notebook import bundled


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_voila_renders_the_dashboard(tmp_path):
    port = _free_port()
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "voila",
        str(bundled("dashboard.ipynb")),
        f"--port={port}",
        "--no-browser",
        "--show_tracebacks=True",
        "--Voila.ip=127.0.0.1",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body, deadline = None, time.time() + 120
        while time.time() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as r:
                    assert r.status == 200
                    body = r.read().decode()
            except (ConnectionError, urllib.error.URLError):
                time.sleep(0.5)
        assert body is not None, "Voilà did not answer within 120 s"
        assert "application/vnd.jupyter.widget-view+json" in body, body[-2000:]
        assert "Traceback" not in body and "Error" not in body.split("</head>")[-1], body[-3000:]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
