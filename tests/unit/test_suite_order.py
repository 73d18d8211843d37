"""`make test`'s schedule (tests/conftest.py): the longest files first, each file whole and in its own order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import conftest


@dataclass
class _Item:
    """What the ordering reads of a collected test: its file and its markers."""

    path: Path
    name: str
    marks: tuple[str, ...] = field(default=())

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.marks else None


def test_listed_files_first_in_their_order_then_slow_files_then_the_rest_each_file_whole():
    tests = Path(conftest.__file__).resolve().parent
    first, second = conftest.LONGEST_FIRST[0], conftest.LONGEST_FIRST[1]
    items = [
        _Item(tests / "unit/a/test_quick.py", "q1"),
        _Item(tests / "unit/a/test_quick.py", "q2"),
        _Item(tests / "unit/b/test_has_slow.py", "s1"),
        _Item(tests / "unit/b/test_has_slow.py", "s2", ("slow",)),
        _Item(tests / second, "second1"),
        _Item(tests / first, "first1"),
        _Item(tests / first, "first2"),
        _Item(tests.parent / "workbench/notebooks/01_data_pull.ipynb", "nb"),
    ]
    conftest.pytest_collection_modifyitems(pytest.Config.__new__(pytest.Config), items)  # type: ignore[arg-type]
    assert [it.name for it in items] == ["first1", "first2", "second1", "s1", "s2", "q1", "q2", "nb"]


def test_the_listed_files_exist():
    """A renamed or deleted file would silently lose its place: the list names real files, once each."""
    tests = Path(conftest.__file__).resolve().parent
    assert len(set(conftest.LONGEST_FIRST)) == len(conftest.LONGEST_FIRST)
    assert [f for f in conftest.LONGEST_FIRST if not (tests / f).is_file()] == []
