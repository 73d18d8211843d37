"""The numba cache directory follows the kernels' sources as a whole (numba itself checks only the
file that defines a kernel, so a change to a helper module it calls would load stale machine code)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workbench.warmup import KERNEL_MODULES, source_stamp


def _tree(root: Path, helper: str) -> None:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "features" / "fused.py").write_text("def series_k(): return helper()\n")
    (root / "features" / "fused_simd.py").write_text(helper)


def test_a_change_in_a_helper_module_changes_the_stamp_of_all_kernels(tmp_path):
    mods = ("workbench.features.fused", "workbench.features.fused_simd")
    _tree(tmp_path, "def helper(): return 1\n")
    before = source_stamp(mods, tmp_path)
    assert source_stamp(mods, tmp_path) == before  # deterministic
    _tree(tmp_path, "def helper(): return 2\n")  # only the helper changed, not the kernel's own file
    assert source_stamp(mods, tmp_path) != before


def test_every_kernel_module_with_cached_kernels_is_stamped():
    """A module with ``cache=True`` kernels missing from the list would escape the stamp."""
    root = Path(__file__).resolve().parents[2] / "workbench"
    cached = {
        "workbench." + ".".join(p.relative_to(root).with_suffix("").parts)
        for p in root.rglob("*.py")
        if "cache=True" in p.read_text() and p.name != "warmup.py"
    }
    assert cached <= set(KERNEL_MODULES), sorted(cached - set(KERNEL_MODULES))


def test_the_cache_lives_under_the_stamp_and_older_stamps_are_removed(tmp_path):
    stale = tmp_path / "src-0000000000000000"
    stale.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    code = "import sys; from workbench.warmup import use_numba_cache; print(use_numba_cache(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / f"src-{source_stamp()}")
    assert not stale.exists() and (tmp_path / f"src-{source_stamp()}").is_dir()
