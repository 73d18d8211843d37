"""Models: the ``Model`` protocol, model kinds, training with a time split, the MLflow registry, inference.

Heavy modules (lightgbm, mlflow) load on first use, and the protocol (numpy, pandas) on first access,
so importing this package (the command line does, for its ``--model`` choices) stays cheap.
"""

from __future__ import annotations

from typing import Any

from workbench.models.kinds import MODEL_KINDS

__all__ = ["Model", "MODEL_KINDS", "make_model"]


def __getattr__(name: str) -> Any:
    if name in ("Model", "make_model"):
        from workbench.models import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
