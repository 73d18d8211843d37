"""Schema tools for developers, without an alembic.ini:

    python -m workbench.store revision "add orders.tag"   # write the next migration from schema.py's diff
    python -m workbench.store upgrade sqlite:///path/to/workbench.db
    python -m workbench.store current sqlite:///path/to/workbench.db

``revision`` compares ``workbench.store.schema`` with a scratch database migrated to the newest
revision and writes ``migrations/versions/<NNNN>_<slug>.py`` with Alembic's autogenerate; read and
edit it before committing (autogenerate misses renames and data moves).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from workbench.store.engine import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    engine_for,
    head_revision,
    upgrade,
)

__all__ = ["main", "new_revision"]


def new_revision(message: str) -> Path:
    """Write the next numbered migration for the difference between the schema and head; its path."""
    rev_id = f"{int(head_revision()) + 1:04d}"
    with tempfile.TemporaryDirectory() as tmp:
        engine = engine_for(f"sqlite:///{Path(tmp) / 'head.db'}")
        try:
            with engine.connect() as conn:
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
        finally:
            engine.dispose()
    made = sorted((MIGRATIONS_DIR / "versions").glob(f"{rev_id}_*.py"))
    if not made:
        raise RuntimeError(f"alembic wrote no revision {rev_id} in {MIGRATIONS_DIR / 'versions'}")
    return made[-1]


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "revision":
        print(new_revision(argv[1]))
        return 0
    if len(argv) == 2 and argv[0] in ("upgrade", "current"):
        engine = engine_for(argv[1], migrate=False)
        try:
            if argv[0] == "upgrade":
                print(upgrade(engine))
            else:
                with engine.connect() as conn:
                    print(current_revision(conn) or "(not stamped)")
        finally:
            engine.dispose()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
