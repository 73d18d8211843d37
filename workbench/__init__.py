"""workbench: research in JupyterLab, trade from a Voilà dashboard.

The research side (``data``, ``features``, ``models``, ``signals``, ``backtest``) is pure and knows
nothing of venues or users; the live side (``trading``, ``venues``, ``dashboard``) composes it.
"""

__version__ = "0.1.0"
