# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %%
from workbench.config import load_settings
from workbench.dashboard import Dashboard

app = Dashboard(load_settings())
app.start_autorefresh()
app.widget
