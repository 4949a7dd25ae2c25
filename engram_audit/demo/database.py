"""The demo's database: a throwaway server seeded with the Zep-shaped schema, collected live.

The seed (``engram_audit/demo/data/zep/*.sql``) plants one instance of each problem the
PostgreSQL checks look for, so a first run shows real findings from a real server:
an IVFFlat index where HNSW is wanted, an HNSW index with weak parameters, a vector
column without an index, an invalid index left by a failed ``CREATE INDEX CONCURRENTLY``,
sessions past retention for two tenants, expired facts, a table with autovacuum off, and
an application session without TLS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files

import psycopg
from psycopg import sql

from engram_audit.collectors.postgres.collector import (
    PostgresCollection,
    PostgresRequest,
    collect_postgres,
)
from engram_audit.demo.server import EmbeddedPostgres
from engram_audit.model.plan import CollectionPlan

APPLICATION_ROLE = "zep_app"
# Throwaway credential of a throwaway server, used only for the planted plaintext session.
_APPLICATION_PASSWORD = "zep-demo-only"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SeededFeatures:
    vectors: bool
    statements: bool


def fixture_sql(name: str) -> str:
    return (files("engram_audit.demo") / "data" / "zep" / name).read_text(encoding="utf-8")


def seed_zep(admin_dsn: str, database: str = "zep") -> SeededFeatures:
    """Create ``database`` as the superuser of ``admin_dsn`` and plant the fixture.

    The pgvector part is seeded when the server has pgvector, pg_stat_statements when the
    server preloads it; the return value says which.
    """
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(APPLICATION_ROLE), sql.Literal(_APPLICATION_PASSWORD)
            )
        )
    database_dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=database)
    with psycopg.connect(database_dsn, autocommit=True) as connection:
        available = {
            str(row[0])
            for row in connection.execute(
                "SELECT name FROM pg_available_extensions "
                "WHERE name IN ('vector', 'pg_stat_statements')"
            )
        }
        preloaded = str(connection.execute("SHOW shared_preload_libraries").fetchone() or "")
        connection.execute(fixture_sql("schema.sql").encode())
        connection.execute(fixture_sql("data.sql").encode())
        vectors = "vector" in available
        if vectors:
            connection.execute(fixture_sql("vectors.sql").encode())
        statements = "pg_stat_statements" in available and "pg_stat_statements" in preloaded
        if statements:
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        try:
            connection.execute(fixture_sql("invalid_index.sql").encode())
        except psycopg.errors.UniqueViolation:
            pass  # the point: the failed build leaves an INVALID index behind
        else:
            raise RuntimeError("the invalid-index step of the fixture unexpectedly succeeded")
        connection.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(APPLICATION_ROLE)
            )
        )
        connection.execute("ANALYZE")
    return SeededFeatures(vectors=vectors, statements=statements)


def collect_demo(plan: CollectionPlan, progress: Progress | None = None) -> PostgresCollection:
    """Start PostgreSQL 18 + pgvector, seed it, collect it as ``plan`` says, stop it."""
    say = progress or (lambda _message: None)
    say("starting a throwaway PostgreSQL 18 + pgvector server")
    with EmbeddedPostgres(tcp=True, preload_libraries=("pg_stat_statements",)) as server:
        say(f"seeding the Zep-shaped database {plan.database!r}")
        seed_zep(server.dsn, plan.database)
        application_dsn = server.dsn_for(
            plan.database,
            user=APPLICATION_ROLE,
            password=_APPLICATION_PASSWORD,
            tcp=True,
            sslmode="disable",
        )
        # An application session over plain TCP, open while we collect: the planted non-TLS client.
        with psycopg.connect(application_dsn, application_name="zep") as _application:
            say("collecting the database live (read-only)")
            collection = collect_postgres(PostgresRequest(dsn=server.dsn), plan)
        say("stopping the throwaway server")
    return collection
