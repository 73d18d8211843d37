"""The Voilà dashboard: an ipywidgets app that notebooks/dashboard.ipynb shows (``app.Dashboard``, a
shell of pages: login, start, models, keys, risk, and the runs and live views)."""

from workbench.dashboard.app import Dashboard

__all__ = ["Dashboard"]
