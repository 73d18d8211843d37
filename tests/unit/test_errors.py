"""The exception tree drawn in ``workbench/errors.py``'s docstring is the tree the module defines:
every class is drawn under each of its parents, and nothing else is drawn."""

from __future__ import annotations

import inspect
import re

import workbench.errors as errors


def _drawn_edges(doc: str) -> tuple[str, set[tuple[str, str]]]:
    """(root, {(parent, child)}) from the box-drawing picture: depth = position of the class name."""
    stack: list[tuple[int, str]] = []
    edges: set[tuple[str, str]] = set()
    root = ""
    for line in doc.splitlines():
        m = re.match(r"^\s+(?:[│ ]*[├└]── )?([A-Z]\w*)\s", line + " ")
        if not m or not line.startswith("    "):
            continue
        depth = m.start(1)
        name = m.group(1)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            edges.add((stack[-1][1], name))
        elif not root:
            root = name
        else:
            raise AssertionError(f"a second root in the picture: {name}")
        stack.append((depth, name))
    return root, edges


def _defined() -> dict[str, type]:
    return {
        n: c
        for n, c in vars(errors).items()
        if inspect.isclass(c) and issubclass(c, BaseException) and c.__module__ == errors.__name__
    }


def test_the_docstring_tree_is_the_class_tree():
    classes = _defined()
    root, drawn = _drawn_edges(errors.__doc__)
    actual = {(b.__name__, n) for n, c in classes.items() for b in c.__bases__ if b.__name__ in classes}
    assert root == "WorkbenchError"
    assert drawn == actual, (
        f"drawn but not defined: {sorted(drawn - actual)}; defined but not drawn: {sorted(actual - drawn)}"
    )
    assert {c for _, c in drawn} | {root} == set(classes)
    assert sorted(errors.__all__) == sorted(classes)


def test_no_module_but_errors_defines_an_exception_class():
    """By reading the source (importing every module would pull in TensorFlow): a class whose base is
    a built-in exception or one of the tree's is an exception class."""
    import ast
    import builtins
    from pathlib import Path

    bases_that_make_exceptions = set(_defined()) | {
        n for n, c in vars(builtins).items() if inspect.isclass(c) and issubclass(c, BaseException)
    }
    package = Path(errors.__file__).parent
    stray = []
    for path in sorted(package.rglob("*.py")):
        if path == Path(errors.__file__):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                names = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if names & bases_that_make_exceptions:
                    stray.append(f"{path.relative_to(package.parent)}:{node.lineno} {node.name}")
    assert stray == [], f"exception classes outside workbench/errors.py: {stray}"
    assert all(issubclass(c, errors.WorkbenchError) for c in _defined().values())


def test_temporary_errors_are_one_branch():
    assert issubclass(errors.TemporaryBrokerError, errors.TemporaryError)
    assert issubclass(errors.SourceUnavailableError, errors.TemporaryError)
    assert issubclass(errors.SourceUnavailableError, errors.DataError)
    assert not issubclass(errors.SourceUnavailableError, errors.BrokerError)
