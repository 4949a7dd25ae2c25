"""How to reach a PostgreSQL server, as the CLI states it: no driver import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PostgresRequest:
    """How to reach the server; the database and scope come from the plan."""

    dsn: str = ""  # conninfo or URI; "" = libpq env vars / service file (PGHOST, PGSERVICE...)
    entra_auth: bool = False  # password = an azure-identity access token for the cloud's scope
    connect_timeout_seconds: int = 10
    statement_timeout_ms: int = 15000
    cloud: str = "AzureCloud"  # --cloud: which Entra ID authority and token scope to use
    # ``--allow-empty``: a scope whose schemas do not exist is accepted (its rules are SKIP,
    # with a note) instead of being recorded as a collection issue (exit 3).
    allow_empty: bool = False
