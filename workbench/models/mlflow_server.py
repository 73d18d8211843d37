"""MLflow as a team service: one tracking server (and model registry) that every workbench points at.

Why a server and not a shared folder: several people and machines register, promote and load models
at once; MLflow's server puts runs and the registry in a real database (PostgreSQL for a team) and
proxies artifacts (``--serve-artifacts``), so clients need only its URL, never the artifact store's
credentials or a shared mount. A workbench uses it with ``mlflow_uri = "http://host:5000"`` in
workbench.toml (or ``WORKBENCH_MLFLOW_URI``); aliases and promotion behave exactly as with the
embedded store.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench.config import Settings

__all__ = ["ServerPlan", "server_plan"]


@dataclass(frozen=True)
class ServerPlan:
    """The `mlflow server` command line and what the user should be told about it."""

    argv: list[str]
    backend: str
    artifacts: str
    url: str


def _redact_url(url: str) -> str:
    """A backend URL for display: the password (if any) replaced."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def server_plan(
    settings: Settings,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
) -> ServerPlan:
    """The server for a team: backend = a database URL (default: this home's MLflow SQLite file, handy for
    a single machine), artifacts = a directory or object-store URL (default: this home's ``mlruns/``)."""
    backend = backend_store_uri or f"sqlite:///{settings.mlruns_dir / 'mlflow.db'}"
    if backend.startswith("sqlite:///"):
        Path(backend.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    artifacts = artifacts_destination or str(settings.mlruns_dir / "artifacts")
    if "://" not in artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend,
        "--serve-artifacts", "--artifacts-destination", artifacts,
        "--host", host, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    if host not in ("127.0.0.1", "localhost", "::1"):
        # MLflow 3 refuses requests whose Host header it does not know (DNS-rebinding protection).
        argv += ["--allowed-hosts", os.environ.get("MLFLOW_SERVER_ALLOWED_HOSTS", "*")]
    return ServerPlan(argv, _redact_url(backend), artifacts, f"http://{host if host != '0.0.0.0' else 'HOST'}:{port}")
