"""Reading PostgreSQL state from the snapshot."""

from __future__ import annotations

from collections.abc import Iterator

from engram_audit.checks.base import CheckContext
from engram_audit.model.snapshot import PostgresDatabase


def each_database(context: CheckContext) -> Iterator[PostgresDatabase]:
    yield from sorted(context.databases, key=lambda d: d.target)


def setting(database: PostgresDatabase, name: str) -> str | None:
    if database.settings is None or name not in database.settings:
        return None
    return database.settings[name].setting


def version_tuple(version: str) -> tuple[int, ...]:
    """``0.8.1`` -> (0, 8, 1); non-numeric parts count as 0 so odd builds still compare."""
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
