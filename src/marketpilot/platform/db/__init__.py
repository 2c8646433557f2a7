"""Relational state: schema, engine and migrations."""

from marketpilot.platform.db.engine import Database

__all__ = ["Database"]
