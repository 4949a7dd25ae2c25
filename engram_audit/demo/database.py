"""The demo's database: a throwaway server seeded with a real Zep layout, collected live.

Two layouts, from Zep's own source (``engram_audit/demo/data/zep-legacy`` and ``zep-ce-v1``;
each file cites the lines it follows):

- ``legacy``: Zep v0.27.2, the Go release, the most common in the wild. Tables ``session``,
  ``message``, ``message_embedding``, ``summary``, ``summary_embedding``, ``users``,
  ``document_collection`` and ``docstore_<name>_<dims>`` in ``public`` of database ``postgres``,
  with Zep's own HNSW indexes;
- ``ce-v1``: Zep Community Edition v1.0.2. Tables ``users``, ``sessions`` and ``messages`` in
  the schema ``postgres.schema_name`` names (``zep`` here), no vector column.

Each seed plants the problems ``Layout.planted`` lists (the demo prints them), so a first run
shows real findings from a real server. ``seed_zep`` plants the older Zep-shaped fixture
(``data/zep``: ``sessions``, ``facts``, ``*_embeddings`` with a tenant column) that the test
suite and the benchmark use.
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


@dataclass(frozen=True)
class Layout:
    """One real Zep layout: its seed files, where it lives, and what the seed plants."""

    name: str
    title: str
    directory: str  # under engram_audit/demo/data/
    preset: str  # policies/presets/<preset>.yaml
    schema: str  # the schema its tables are in (Zep CE: postgres.schema_name)
    needs_vector: bool
    planted: tuple[tuple[str, str], ...]  # (rule id, what was planted)


LEGACY = Layout(
    name="legacy",
    title="Zep legacy (getzep/zep v0.27.2)",
    directory="zep-legacy",
    preset="zep-legacy",
    schema="public",
    needs_vector=True,
    planted=(
        ("ZEP-PG-SESSION-RETENTION", "6 live sessions older than 90 days in public.session"),
        ("ZEP-PG-MESSAGE-RETENTION", "their 36 messages in public.message"),
        ("ZEP-PG-PURGE-SESSION", "3 sessions deleted 3 days ago and never purged"),
        ("ZEP-PG-PURGE-MESSAGE", "19 messages deleted 3 and 5 days ago, never purged"),
        ("ZEP-PG-PURGE-MESSAGE-EMBEDDING", "their 19 embeddings, never purged"),
        ("ZEP-PG-PURGE-SUMMARY", "3 summaries of the deleted sessions, never purged"),
        ("ZEP-PG-PURGE-SUMMARY-EMBEDDING", "their 3 embeddings, never purged"),
        (
            "ZEP-PG-VECTOR-INDEX",
            "document collection docstore_handbook_1536 on Zep's IVFFlat fallback, not HNSW",
        ),
        ("ZEP-PG-INDEX-VALID", "users_email_unique_idx left INVALID by a failed migration"),
        ("ZEP-PG-AUTOVACUUM", "toast.autovacuum_enabled=false on public.message"),
        ("ZEP-PG-TLS-CLIENTS", "an application session without TLS"),
    ),
)
CE_V1 = Layout(
    name="ce-v1",
    title="Zep Community Edition v1 (getzep/zep v1.0.2)",
    directory="zep-ce-v1",
    preset="zep-ce-v1",
    schema="zep",
    needs_vector=True,  # Zep CE installs pgvector at every start, though it stores no vector
    planted=(
        ("ZEP-PG-SESSION-RETENTION", "5 live sessions older than 90 days in zep.sessions"),
        ("ZEP-PG-MESSAGE-RETENTION", "their 30 messages in zep.messages"),
        ("ZEP-PG-PURGE-SESSIONS", "2 sessions deleted 3 days ago and never purged"),
        ("ZEP-PG-PURGE-MESSAGES", "their 12 messages, never purged"),
        ("ZEP-PG-INDEX-VALID", "users_email_unique_idx left INVALID by a failed migration"),
        ("ZEP-PG-AUTOVACUUM", "autovacuum_enabled=false on zep.messages"),
        ("ZEP-PG-TLS-CLIENTS", "an application session without TLS"),
    ),
)
LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (LEGACY, CE_V1)}


def fixture_sql(name: str, directory: str = "zep") -> str:
    return (files("engram_audit.demo") / "data" / directory / name).read_text(encoding="utf-8")


def _create_database(admin_dsn: str, database: str) -> None:
    """Create ``database`` unless it exists (Zep's own default database, ``postgres``, does)."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def _create_application_role(admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (APPLICATION_ROLE,)
        ).fetchone()
        if not exists:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APPLICATION_ROLE), sql.Literal(_APPLICATION_PASSWORD)
                )
            )


def _plant_invalid_index(connection: psycopg.Connection[tuple[object, ...]], text: str) -> None:
    try:
        connection.execute(text.encode())
    except psycopg.errors.UniqueViolation:
        pass  # the point: the failed build leaves an INVALID index behind
    else:
        raise RuntimeError("the invalid-index step of the fixture unexpectedly succeeded")


def seed_zep(admin_dsn: str, database: str = "zep") -> SeededFeatures:
    """Create ``database`` as the superuser of ``admin_dsn`` and plant the Zep-shaped fixture.

    The pgvector part is seeded when the server has pgvector, pg_stat_statements when the
    server preloads it; the return value says which.
    """
    _create_database(admin_dsn, database)
    _create_application_role(admin_dsn)
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
        _plant_invalid_index(connection, fixture_sql("invalid_index.sql"))
        connection.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(APPLICATION_ROLE)
            )
        )
        connection.execute("ANALYZE")
    return SeededFeatures(vectors=vectors, statements=statements)


def seed_layout(admin_dsn: str, layout: Layout, database: str) -> None:
    """Create ``database`` (unless it exists) and seed it with ``layout``: Zep's tables, rows,
    and the problems ``layout.planted`` lists. The application role may read every table."""
    _create_database(admin_dsn, database)
    _create_application_role(admin_dsn)
    database_dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=database)
    with psycopg.connect(database_dsn, autocommit=True) as connection:
        if (
            layout.needs_vector
            and not connection.execute(
                "SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
        ):
            raise RuntimeError(f"the {layout.title} layout needs pgvector on the server")
        with connection.transaction():
            for name in ("schema.sql", "data.sql", "problems.sql"):
                connection.execute(fixture_sql(name, layout.directory).encode())
        _plant_invalid_index(connection, fixture_sql("invalid_index.sql", layout.directory))
        # Not Zep's doing: the storage design's §Monitoring asks for pg_stat_statements, and a
        # server that preloads it gets it here, so the demo's findings are the planted ones.
        preloaded = str(connection.execute("SHOW shared_preload_libraries").fetchone() or "")
        if "pg_stat_statements" in preloaded:
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        connection.execute(
            sql.SQL(
                "GRANT USAGE ON SCHEMA {schema} TO {role}; "
                "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}"
            ).format(schema=sql.Identifier(layout.schema), role=sql.Identifier(APPLICATION_ROLE))
        )
        connection.execute("ANALYZE")


def collect_demo(
    plan: CollectionPlan, layout: Layout = LEGACY, progress: Progress | None = None
) -> PostgresCollection:
    """Start PostgreSQL 18 + pgvector, seed ``layout`` into the plan's database, collect it as
    ``plan`` says, stop it."""
    say = progress or (lambda _message: None)
    say("starting a throwaway PostgreSQL 18 + pgvector server")
    with EmbeddedPostgres(tcp=True, preload_libraries=("pg_stat_statements",)) as server:
        say(f"seeding the {layout.title} layout into database {plan.database!r}")
        seed_layout(server.dsn, layout, plan.database)
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
