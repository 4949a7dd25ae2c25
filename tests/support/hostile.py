"""A second Zep database whose owner is hostile: a NON-superuser role that owns the database,
its schemas and tables, and plants objects meant to fool or hijack the auditor's session.

Only what such an owner can really do is used: create functions, views and schemas in their
own database, and ``ALTER DATABASE ... SET`` session defaults for it. Extensions that are not
trusted (pgvector, pg_stat_statements) are created by the superuser beforehand, as a cloud
provider's admin would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
from psycopg import sql

from engram_audit.demo.database import fixture_sql
from tests.support.pg_servers import AUDITOR, SeededServer

HOSTILE_DATABASE = "zep_hostile"
OWNER = "zep_owner"
OWNER_PASSWORD = "Owner-pw-throwaway-1"

# Each object below turned a verdict or wrote a row before the session was pinned.
PLANTED = """
-- Where a hijacked auditor leaves its mark; writable by anyone, as a trap.
CREATE TABLE public.pwned (who text, via text);
GRANT INSERT, SELECT ON public.pwned TO PUBLIC;

-- psycopg sends a small Python int as smallint: this is a better match than the built-in
-- make_interval(integer, ...) for make_interval(days => $1). It writes if it can, and makes
-- every retention limit 100,000 days so nothing is ever "too old".
CREATE FUNCTION public.make_interval(days smallint) RETURNS interval
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        INSERT INTO public.pwned VALUES (current_user, 'make_interval');
    EXCEPTION WHEN read_only_sql_transaction THEN NULL;
    END;
    RETURN pg_catalog.make_interval(days => 100000);
END $$;

-- pg_index.indnkeyatts is smallint: generate_series(1, indnkeyatts) picks this one. It turns
-- the session's read-only default off, so the next statement may write.
CREATE FUNCTION public.generate_series(integer, smallint) RETURNS SETOF integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('default_transaction_read_only', 'off', false);
    RETURN QUERY SELECT pg_catalog.generate_series($1, $2::integer);
END $$;

-- A schema searched before pg_catalog: shadows unqualified catalog names outright.
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE VIEW evil.pg_stat_ssl AS
    SELECT pid, true AS ssl, 'TLSv1.3'::text AS version,
           'TLS_AES_256_GCM_SHA384'::text AS cipher
    FROM pg_catalog.pg_stat_ssl;
CREATE VIEW evil.pg_settings AS
    SELECT name,
           CASE name WHEN 'max_connections' THEN '100000' ELSE setting END AS setting,
           unit, source
    FROM pg_catalog.pg_settings;
CREATE FUNCTION evil.current_setting(text) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE $1 WHEN 'server_version_num' THEN '150012'
                   WHEN 'server_version' THEN '15.12'
                   ELSE pg_catalog.current_setting($1) END
$$;
CREATE FUNCTION evil.now() RETURNS timestamptz
LANGUAGE sql AS $$ SELECT '2000-01-01 00:00:00+00'::timestamptz $$;
GRANT SELECT ON ALL TABLES IN SCHEMA evil TO PUBLIC;
"""


def plant(owner_dsn: str, database: str = HOSTILE_DATABASE) -> None:
    """Plant the hostile objects and session defaults, as the (non-superuser) owner."""
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        owner.execute(PLANTED.encode())
        schemas = sql.SQL(", ").join(map(sql.Identifier, ("evil", "pg_catalog", "public")))
        for setting, value in (
            ("search_path", schemas),
            ("DateStyle", sql.Literal("SQL, DMY")),  # psycopg cannot parse timestamps in it
            ("statement_timeout", sql.Literal(0)),
            ("row_security", sql.Literal("on")),
        ):
            owner.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(database), sql.Identifier(setting), value
                )
            )


def pwned_rows(owner_dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        return [(str(who), str(via)) for who, via in owner.execute("TABLE public.pwned")]


@contextmanager
def owned_database(pg: SeededServer, database: str = HOSTILE_DATABASE) -> Iterator[str]:
    """A Zep database owned by ``OWNER`` (no superuser, no CREATEDB); yields the owner's DSN."""
    with psycopg.connect(pg.server.dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                sql.Identifier(OWNER), sql.Literal(OWNER_PASSWORD)
            )
        )
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(OWNER)
            )
        )
    try:
        with psycopg.connect(pg.server.dsn_for(database), autocommit=True) as admin:
            if pg.features.vectors:
                admin.execute("CREATE EXTENSION vector WITH SCHEMA public")
            if pg.features.statements:
                admin.execute("CREATE EXTENSION pg_stat_statements WITH SCHEMA public")
        owner_dsn = pg.server.dsn_for(database, user=OWNER, password=OWNER_PASSWORD)
        with psycopg.connect(owner_dsn, autocommit=True) as owner:
            owner.execute(fixture_sql("schema.sql").encode())
            owner.execute(fixture_sql("data.sql").encode())
            if pg.features.vectors:
                owner.execute(fixture_sql("vectors.sql").encode())
            with suppress(psycopg.errors.UniqueViolation):  # leaves the INVALID index
                owner.execute(fixture_sql("invalid_index.sql").encode())
            owner.execute(
                sql.SQL("GRANT SELECT ON public.sessions, public.facts TO {}").format(
                    sql.Identifier(AUDITOR)
                )
            )
            owner.execute("ANALYZE")  # so autovacuum finds nothing to do while we measure
        yield owner_dsn
    finally:
        with psycopg.connect(pg.server.dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(OWNER)))


def settled_counters(pg: SeededServer, database: str) -> tuple[int, ...]:
    """``pg_stat_database`` write counters of ``database`` once nobody is connected to it and
    they stop moving (backends flush their statistics when they exit)."""
    previous: tuple[int, ...] | None = None
    with psycopg.connect(pg.server.dsn, autocommit=True) as admin:  # database "postgres"
        deadline = time.monotonic() + 15
        while True:
            [busy] = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database]
            ).fetchone() or (0,)
            row = admin.execute(
                "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted "
                "FROM pg_stat_database WHERE datname = %s",
                [database],
            ).fetchone()
            counters = tuple(int(value) for value in row or ())
            if (busy == 0 and counters == previous) or time.monotonic() > deadline:
                return counters
            previous = counters
            time.sleep(0.25)
