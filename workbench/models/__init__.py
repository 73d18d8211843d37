"""Models: the ``Model`` protocol, model kinds, training with a time split, the MLflow registry, inference.

Heavy modules (lightgbm, mlflow) load on first use, so importing this package stays cheap.
"""

from workbench.models.base import MODEL_KINDS, Model, make_model

__all__ = ["Model", "MODEL_KINDS", "make_model"]
