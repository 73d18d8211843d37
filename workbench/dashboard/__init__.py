"""The Voilà dashboard: an ipywidgets app that notebooks/dashboard.ipynb shows."""

from workbench.dashboard.app import Dashboard

__all__ = ["Dashboard"]
