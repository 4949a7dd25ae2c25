"""The audited database's owner is hostile: what they plant must not change a verdict or write.

A non-superuser role owns a second Zep database on each server and plants the objects of
``tests.support.hostile``: overloads that out-match built-ins for the driver's parameter
types, a function that switches the session's read-only default off, a schema searched before
``pg_catalog`` (``ALTER DATABASE ... SET search_path``) with fake ``pg_stat_ssl``,
``pg_settings``, ``current_setting`` and ``now``, and a ``DateStyle`` the driver cannot parse.
The verdicts after planting must equal those before, and the collection must write nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from engram_audit.collectors.postgres import session as pg_session
from engram_audit.collectors.postgres.collector import (
    PostgresCollection,
    PostgresRequest,
    collect_postgres,
)
from engram_audit.collectors.run import assemble
from engram_audit.engine import evaluate
from engram_audit.model import Policy, Rule, Severity, Source, Status
from engram_audit.model.plan import CollectionPlan, ExpiredFactsPlan, SessionRetentionPlan
from tests.support.hostile import (
    HOSTILE_DATABASE,
    owned_database,
    plant,
    pwned_rows,
    settled_counters,
)
from tests.support.pg_servers import AUDITOR, SeededServer, catalog_fingerprint

# Rules whose clean verdict a planted object could turn (each is FAIL on a clean database,
# with these params, on every server kind), and a few that read what the plants touch.
RULES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("pg.retention.sessions", {"max_age_days": 90}),
    ("pg.retention.expired_facts", {"max_rows": 0}),
    ("pg.tls.connection", {"min_protocol": "TLSv1.2"}),
    ("pg.server.version", {"allowed_majors": [15]}),
    ("pg.connections.utilization", {"max_percent": 0.5}),
    ("pg.index.valid", {}),
    ("pg.vector.index", {}),
    ("pg.extension.vector", {}),
    ("pg.queries.slow", {}),
)
MUST_FAIL_WHEN_CLEAN = (
    "pg.retention.sessions",
    "pg.retention.expired_facts",
    "pg.tls.connection",
    "pg.server.version",
    "pg.connections.utilization",
)
POLICY = Policy(
    environment="prod",
    rules=tuple(
        Rule(id=f"R{n}", check=check, severity=Severity.HIGH, title=check, params=params)
        for n, (check, params) in enumerate(RULES)
    ),
)
PLAN = CollectionPlan(
    environment="prod",
    database=HOSTILE_DATABASE,
    retention=(SessionRetentionPlan(),),
    expired_facts=ExpiredFactsPlan(),
)


@pytest.fixture(scope="module")
def owner_dsn(pg: SeededServer) -> Iterator[str]:
    with owned_database(pg) as dsn:
        yield dsn


def collect(pg: SeededServer, plan: CollectionPlan = PLAN) -> PostgresCollection:
    # Plaintext on purpose (also on the TLS server): a fake pg_stat_ssl must not make it TLS.
    return collect_postgres(PostgresRequest(dsn=pg.auditor_dsn()), plan)


def verdicts(collection: PostgresCollection) -> list[tuple[str, str, Status]]:
    snapshot = assemble("prod", postgres=collection.section, issues=collection.issues)
    report = evaluate(POLICY, snapshot, frozenset({Source.POSTGRES}))
    return sorted((f.check, f.resource, f.status) for f in report.findings)


def test_planted_objects_change_no_verdict_and_write_nothing(
    pg: SeededServer, owner_dsn: str
) -> None:
    clean = collect(pg)
    assert clean.issues == ()
    clean_verdicts = verdicts(clean)
    failing = {check for check, _, status in clean_verdicts if status is Status.FAIL}
    assert set(MUST_FAIL_WHEN_CLEAN) <= failing  # so a hijack would show as a change

    plant(owner_dsn)
    catalog_before = catalog_fingerprint(pg.server.dsn_for(HOSTILE_DATABASE))
    counters_before = settled_counters(pg, HOSTILE_DATABASE)
    with psycopg.connect(pg.auditor_dsn().replace("dbname=zep", f"dbname={HOSTILE_DATABASE}")):
        pass  # a login alone commits the backend's start-up transaction: the baseline
    counters_login = settled_counters(pg, HOSTILE_DATABASE)
    hostile = collect(pg)
    counters_after = settled_counters(pg, HOSTILE_DATABASE)
    catalog_after = catalog_fingerprint(pg.server.dsn_for(HOSTILE_DATABASE))

    assert hostile.issues == ()
    assert verdicts(hostile) == clean_verdicts
    assert pwned_rows(owner_dsn) == []
    # (xact_commit, tup_inserted, tup_updated, tup_deleted): the collection commits nothing
    # beyond its login (it ends in ROLLBACK) and inserts, updates, deletes no row.
    login = tuple(b - a for a, b in zip(counters_before, counters_login, strict=True))
    assert login == (1, 0, 0, 0)
    assert tuple(b - a for a, b in zip(counters_login, counters_after, strict=True)) == login
    assert catalog_after == catalog_before
    [database] = hostile.section.databases
    assert database.settings is not None
    assert database.settings["search_path"].setting == "pg_catalog"
    assert database.settings["DateStyle"].setting == "ISO, MDY"
    assert database.settings["statement_timeout"].setting == "15000"


def test_a_pooler_that_drops_the_startup_options_is_refused(
    pg: SeededServer, owner_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PgBouncer forwards few startup parameters: the session then has the owner's defaults."""
    plant_if_needed(owner_dsn)
    monkeypatch.setattr(pg_session, "startup_options", lambda _request: "")
    collection = collect(pg)
    assert collection.section.databases == ()
    [issue] = collection.issues
    assert issue.part is None
    assert issue.resource == f"127.0.0.1:{pg.server.port}/{HOSTILE_DATABASE}"
    assert issue.reason.startswith(
        f"refusing to collect from 127.0.0.1:{pg.server.port}/{HOSTILE_DATABASE}: "
        "the audit session's safeguards are not in force: "
        "search_path is 'evil, pg_catalog, public' (expected 'pg_catalog'); "
        "default_transaction_read_only is 'off' (expected 'on'); "
        "row_security is 'on' (expected 'off'); "
        "DateStyle is 'SQL, DMY' (expected 'ISO, MDY'); "
        "statement_timeout is '0' (expected '15000ms')"
    )
    assert "connect to the server's own port" in issue.reason
    assert pwned_rows(owner_dsn) == []


def test_only_one_dropped_option_is_enough_to_refuse(
    pg: SeededServer, owner_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant_if_needed(owner_dsn)
    real = pg_session.startup_options
    monkeypatch.setattr(
        pg_session,
        "startup_options",
        lambda request: real(request).replace("-c search_path=pg_catalog", ""),
    )
    [issue] = collect(pg).issues
    assert "search_path is 'evil, pg_catalog, public' (expected 'pg_catalog')." in issue.reason
    assert "default_transaction_read_only" not in issue.reason


def test_a_row_level_security_policy_is_refused_not_obeyed(
    pg: SeededServer, owner_dsn: str
) -> None:
    """A policy hiding old rows from the auditor would turn the count into a pass."""
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        owner.execute("CREATE TABLE public.rls_sessions AS TABLE public.sessions")
        owner.execute("ALTER TABLE public.rls_sessions ENABLE ROW LEVEL SECURITY")
        owner.execute(
            "CREATE POLICY recent_only ON public.rls_sessions "
            "USING (created_at > pg_catalog.now() - interval '30 days')"
        )
        owner.execute(
            sql.SQL("GRANT SELECT ON public.rls_sessions TO {}").format(sql.Identifier(AUDITOR))
        )
    plan = PLAN.model_copy(update={"retention": (SessionRetentionPlan(table="rls_sessions"),)})
    collection = collect(pg, plan)
    [database] = collection.section.databases
    assert database.retention == ()  # not counted
    [issue] = [issue for issue in collection.issues if issue.part == "retention"]
    assert 'query would be affected by row-level security policy for table "rls_sessions"' in (
        issue.reason
    )
    assert "so it is not taken (row_security=off)" in issue.reason


@pytest.mark.parametrize(
    ("table", "create", "reason"),
    [
        (
            "recent_sessions",
            "CREATE VIEW public.recent_sessions AS SELECT * FROM public.sessions "
            "WHERE created_at > pg_catalog.now() - interval '30 days'",
            "public.recent_sessions is a view, not a table",
        ),
        (
            "stamped_sessions",
            "CREATE DOMAIN public.stamp AS timestamptz; "
            "CREATE TABLE public.stamped_sessions (created_at public.stamp)",
            'column "created_at" of public.stamped_sessions has type public.stamp, defined in the '
            "database: only built-in types are compared",
        ),
        (
            "text_sessions",
            "CREATE TABLE public.text_sessions (created_at text)",
            'column "created_at" of public.text_sessions has type text: an age column must be '
            "timestamp with time zone, timestamp or date",
        ),
    ],
)
def test_what_the_owner_defines_is_not_counted(
    pg: SeededServer, owner_dsn: str, table: str, create: str, reason: str
) -> None:
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        owner.execute(create.encode())
        owner.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.Identifier("public", table), sql.Identifier(AUDITOR)
            )
        )
    plan = PLAN.model_copy(update={"retention": (SessionRetentionPlan(table=table),)})
    collection = collect(pg, plan)
    [issue] = [issue for issue in collection.issues if issue.part == "retention"]
    assert reason in issue.reason
    assert collection.section.databases[0].retention == ()  # not counted


def plant_if_needed(owner_dsn: str) -> None:
    """The module's tests share one database; plant once whatever runs first."""
    with psycopg.connect(owner_dsn, autocommit=True) as owner:
        planted = owner.execute("SELECT to_regnamespace('evil') IS NOT NULL").fetchone()
    if not (planted and planted[0]):
        plant(owner_dsn)
