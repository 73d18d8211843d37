"""The shipped notebooks: each .ipynb and its py:percent script hold the same cells, nothing is committed
with outputs, no notebook hard-codes where data lives, and a home's copies are the user's to keep."""

from __future__ import annotations

import copy
import json

import jupytext
import nbformat
import pytest
from nbstripout import strip_output

from workbench.notebook import CONFIG_FILE, NOTEBOOKS, bundled, bundled_dir, install_notebooks


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """What a person edits: each cell's kind, text and tags (ids and outputs are not content)."""
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_and_its_script_hold_the_same_cells(stem):
    ipynb = nbformat.read(bundled(f"{stem}.ipynb"), as_version=4)
    script = jupytext.read(bundled_dir() / f"{stem}.py")
    assert _cells(ipynb) == _cells(script), (
        f"{stem}.ipynb and {stem}.py differ: open the notebook in JupyterLab (jupytext saves both) "
        f"or run `jupytext --sync workbench/notebooks/{stem}.ipynb`"
    )
    assert len(ipynb.cells) > 0


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_committed_notebook_has_no_outputs(stem):
    path = bundled(f"{stem}.ipynb")
    nb = nbformat.read(path, as_version=4)
    stripped = strip_output(copy.deepcopy(nb), keep_output=False, keep_count=False, keep_id=True)
    assert nb == stripped, f"{path} carries outputs or execution counts: run `nbstripout {path}` (see README)"


def test_jupytext_pairs_every_notebook_with_a_percent_script():
    config = (bundled_dir() / CONFIG_FILE).read_text()
    assert 'formats = "ipynb,py:percent"' in config
    shipped = {p.stem for p in bundled_dir().glob("*.ipynb")}
    assert shipped == set(NOTEBOOKS) == {p.stem for p in bundled_dir().glob("*.py")}


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_no_notebook_hard_codes_where_data_lives(stem):
    text = bundled(f"{stem}.ipynb").read_text() + (bundled_dir() / f"{stem}.py").read_text()
    for banned in ("shared/data", "WORKBENCH_TEST_DATA", "os.environ"):
        assert banned not in text, f"{stem} names {banned!r}: use settings.research_data_dir / research_panel"


def test_retrain_notebook_has_a_papermill_parameters_cell():
    nb = json.loads(bundled("05_retrain.ipynb").read_text())
    assert sum("parameters" in c["metadata"].get("tags", []) for c in nb["cells"]) == 1


def test_home_gets_copies_and_an_edited_copy_is_never_replaced(tmp_path):
    written = install_notebooks(tmp_path)
    dest = tmp_path / "notebooks"
    assert {p.name for p in written} == {f"{s}.{e}" for s in NOTEBOOKS for e in ("ipynb", "py")} | {CONFIG_FILE}
    for p in written:
        assert p.read_bytes() == (bundled_dir() / p.name).read_bytes()
    # jupytext refuses a notebook newer than its script: the pair is written notebook first
    for stem in NOTEBOOKS:
        assert (dest / f"{stem}.ipynb").stat().st_mtime_ns <= (dest / f"{stem}.py").stat().st_mtime_ns

    edited = dest / "03_train_models.py"
    edited.write_text(edited.read_text() + "\n# %%\nprint('my own cell')\n")
    (dest / "04_backtest.ipynb").unlink()  # half a pair left: the user's script stays, nothing is re-paired
    assert install_notebooks(tmp_path) == []
    assert edited.read_text().endswith("print('my own cell')\n")
    assert not (dest / "04_backtest.ipynb").exists()


def test_a_checkout_whose_home_is_the_repo_copies_nothing(tmp_path):
    (tmp_path / "notebooks").symlink_to(bundled_dir(), target_is_directory=True)
    assert install_notebooks(tmp_path) == []
