"""Reading PostgreSQL state from the snapshot."""

from __future__ import annotations

import re
from collections.abc import Iterator

from engram_audit.checks.base import CheckContext
from engram_audit.model.snapshot import PostgresDatabase


def each_database(context: CheckContext) -> Iterator[PostgresDatabase]:
    yield from sorted(context.databases, key=lambda d: d.target)


def setting(database: PostgresDatabase, name: str) -> str | None:
    if database.settings is None or name not in database.settings:
        return None
    return database.settings[name].setting


def version_key(version: str) -> tuple[int, ...]:
    """A comparable key for an extension version: ``0.8.1`` -> (0, 8, 1).

    Each dot-separated part counts by its leading digits (``1.4-1`` -> (1, 4), an odd build
    suffix is ignored), and trailing zero parts are dropped so that ``0.5``, ``0.5.0`` and
    ``0.5.0.0`` are the same version: comparing keys is comparing the versions padded with
    zeros to the same length.
    """
    parts = [
        int(m.group()) if (m := re.match(r"\d+", piece)) else 0 for piece in version.split(".")
    ]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)
