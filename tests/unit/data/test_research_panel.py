"""research_panel: the notebooks' one way to get "real data if we have it, the demo otherwise, and say which"."""

from __future__ import annotations

import pytest

from workbench.config import load_settings
from workbench.data.demo import SP500_FOLDER, SYNTHETIC_LABEL, research_panel
from workbench.data.lake import Lake
from workbench.errors import DataError


def test_real_files_go_through_the_lake_once(shared_data, tmp_path):
    settings = load_settings(tmp_path / "home", research_data_dir=shared_data)
    data = research_panel(settings, ["AAPL", "MSFT", "XOM"])
    assert data.real and data.exchange == "NYSE" and data.timeframe == "1d"
    assert data.symbols == ("AAPL", "MSFT", "XOM") and list(data.panel.symbols) == ["AAPL", "MSFT", "XOM"]
    assert data.label.startswith("REAL data: 3 S&P 500 stocks") and str(shared_data / SP500_FOLDER) in data.label
    assert str(data.panel.index[0].date()) == "2013-02-08" and len(data.panel.index) == 1259
    lake = Lake(settings.lake_dir)
    stored = lake.catalog()
    again = research_panel(settings, ["AAPL", "MSFT", "XOM"])
    assert lake.catalog().equals(stored)  # a second notebook re-asking adds nothing
    assert again.panel.field("close").equals(data.panel.field("close"))


def test_without_a_research_folder_the_demo_says_so(tmp_path):
    settings = load_settings(tmp_path / "home", research_data_dir=None)
    data = research_panel(settings, ["AAPL"])
    assert not data.real and data.exchange == "synthetic"
    assert "research_data_dir is not set" in data.label and SYNTHETIC_LABEL in data.label


def test_a_folder_lacking_a_symbol_falls_back_and_names_it(shared_data, tmp_path):
    settings = load_settings(tmp_path / "home", research_data_dir=shared_data)
    data = research_panel(settings, ["AAPL", "NOPE"])
    assert not data.real and "lacks NOPE" in data.label


def test_a_refused_file_is_an_error_not_a_smaller_universe(tmp_path):
    folder = tmp_path / "research" / SP500_FOLDER
    folder.mkdir(parents=True)
    rows = ["date,open,high,low,close,volume,Name"] + [f"2020-01-{d:02d},10,11,9,10.5,100,OK" for d in range(1, 11)]
    (folder / "OK_data.csv").write_text("\n".join(rows) + "\n")
    bad = [r.replace(",OK", ",BAD") for r in rows]
    bad[5] = "2020-01-05,10,8,9,10.5,100,BAD"  # high below low
    (folder / "BAD_data.csv").write_text("\n".join(bad) + "\n")
    settings = load_settings(tmp_path / "home", research_data_dir=tmp_path / "research")
    with pytest.raises(DataError, match=r"could not be imported: BAD: .*BAD_data.csv.* row 5"):
        research_panel(settings, ["OK", "BAD"])


def test_a_relative_research_folder_in_the_toml_is_beside_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_RESEARCH_DATA_DIR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "workbench.toml").write_text('research_data_dir = "../market"\n')
    assert load_settings(home).research_data_dir == (tmp_path / "market").resolve()
    assert load_settings(home, research_data_dir=None).research_data_dir is None
