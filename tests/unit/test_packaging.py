"""The two install paths (pip from pyproject.toml, conda from environment.yml) must not drift."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_norm(r) for r in pip_section if not r.startswith("-e")}
    assert listed == wanted, (
        f"only in pyproject: {sorted(wanted - listed)}; only in environment.yml: {sorted(listed - wanted)}"
    )
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"])


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_make_test_runs_the_gates_before_pytest():
    """CI calls `make test`: lint, format and type errors must fail it before a single test runs."""
    make = (ROOT / "Makefile").read_text()
    test_rule = re.search(r"^test:(.*)$", make, re.M)
    assert test_rule is not None and "lint" in test_rule.group(1).split(), "make test must depend on lint"
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", make, re.M)
    assert lint is not None, "no lint rule in the Makefile"
    recipe = lint.group(1)
    for gate in ("ruff check", "ruff format --check", "mypy workbench"):
        assert gate in recipe, f"make lint does not run `{gate}`"
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert any(r.startswith("ruff") for r in dev) and any(r.startswith("mypy") for r in dev)
