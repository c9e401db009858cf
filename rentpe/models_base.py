"""Helpers shared by every feature's models."""
from datetime import datetime, timezone


def utcnow():
    """Naive UTC timestamps: the same on SQLite and PostgreSQL `timestamp without time zone`."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
