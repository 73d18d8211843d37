"""The operational store's schema (one ``MetaData``), its Alembic migrations and the engine factory.

from workbench.store import engine_for, schema
engine = engine_for(settings.store_url)   # WAL + busy_timeout on SQLite, schema at head
"""

from workbench.store import schema
from workbench.store.engine import engine_for, head_revision, upgrade
from workbench.store.schema import iso, metadata, utcnow

__all__ = ["engine_for", "head_revision", "iso", "metadata", "schema", "upgrade", "utcnow"]
