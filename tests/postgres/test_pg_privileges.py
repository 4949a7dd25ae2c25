"""Least privilege and read-only, proven on the real servers."""

from __future__ import annotations

import re

import psycopg
import pytest
from psycopg import sql

from engram_audit.collectors.postgres.collector import (
    PostgresCollection,
    PostgresRequest,
    collect_postgres,
)
from engram_audit.collectors.run import assemble
from engram_audit.engine import evaluate
from engram_audit.model import Policy, Rule, Severity, Source, Status
from engram_audit.model.plan import CollectionPlan, ExpiredFactsPlan, SessionRetentionPlan
from engram_audit.model.report import Finding
from tests.support.pg_servers import BARE_ROLE, NO_FACTS_ROLE, SeededServer, catalog_fingerprint

PLAN = CollectionPlan(
    environment="prod", retention=(SessionRetentionPlan(),), expired_facts=ExpiredFactsPlan()
)
BARE_PLAN = CollectionPlan(environment="prod")


def catalog(pg: SeededServer) -> set[tuple[str, str]]:
    return catalog_fingerprint(pg.admin_dsn)


def test_collection_creates_nothing(pg: SeededServer) -> None:
    before = catalog(pg)
    collection = collect_postgres(PostgresRequest(dsn=pg.admin_dsn), PLAN)
    after = catalog(pg)
    assert collection.section.databases, collection.issues
    assert after == before


def test_the_audit_role_has_no_write_rights_and_still_collects(pg: SeededServer) -> None:
    """The role of the README cannot write, so a full collection proves reads suffice."""
    with psycopg.connect(pg.auditor_dsn(tls=pg.kind.tls)) as probe:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            probe.execute("CREATE TABLE public.audit_probe (id int)")
        probe.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            probe.execute("DELETE FROM public.sessions")
    collection = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn(tls=pg.kind.tls)), PLAN)
    database = collection.section.databases[0]
    assert database.tables
    assert database.settings
    assert database.retention
    assert {issue.part for issue in collection.issues} <= {"statements"}


def test_the_session_refuses_writes_even_for_a_superuser(pg: SeededServer) -> None:
    """default_transaction_read_only comes in the startup packet, before any statement."""
    from engram_audit.collectors.postgres.collector import _session_parameters

    parameters = _session_parameters(
        {"host": str(pg.server.socket_dir), "port": str(pg.server.port), "user": "postgres"},
        PostgresRequest(),
        PLAN,
    )
    with psycopg.connect(**parameters, autocommit=True) as session:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            session.execute("CREATE TEMP TABLE scratch (id int)")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            session.execute("CREATE TABLE public.scratch (id int)")


def test_a_missing_select_grant_fails_only_its_part(pg: SeededServer) -> None:
    collection = collect_postgres(
        PostgresRequest(dsn=pg.auditor_dsn(tls=pg.kind.tls, user=NO_FACTS_ROLE)), PLAN
    )
    database = collection.section.databases[0]
    assert database.expired_facts is None
    [issue] = [issue for issue in collection.issues if issue.part == "expired_facts"]
    assert issue.resource == database.target
    assert "permission denied for table facts" in issue.reason
    assert "needs SELECT on public.facts" in issue.reason
    assert database.retention
    assert database.tables is not None
    assert database.invalid_indexes is not None


def test_without_pg_monitor_hidden_sessions_are_an_issue_never_plaintext(pg: SeededServer) -> None:
    with psycopg.connect(pg.app_dsn(tls=False)):  # another role's session, invisible to BARE_ROLE
        collection = collect_postgres(
            PostgresRequest(dsn=pg.auditor_dsn(tls=pg.kind.tls, user=BARE_ROLE)), PLAN
        )
    database = collection.section.databases[0]
    assert database.client_sessions is None
    assert database.connections is None
    hidden = [
        issue for issue in collection.issues if issue.part in ("connections", "client_sessions")
    ]
    assert len(hidden) == 2
    assert all("needs pg_monitor" in issue.reason for issue in hidden)
    assert database.own_session is not None  # its own session it may always see
    assert database.retention


def test_revoked_pg_stat_statements_names_the_privilege(pg: SeededServer) -> None:
    if not pg.kind.statements:
        pytest.skip("no pg_stat_statements in the PostgreSQL 16 build")
    revoke = sql.SQL("REVOKE EXECUTE ON FUNCTION pg_stat_statements(boolean) FROM PUBLIC")
    grant = sql.SQL("GRANT EXECUTE ON FUNCTION pg_stat_statements(boolean) TO PUBLIC")
    with psycopg.connect(pg.admin_dsn, autocommit=True) as admin:
        admin.execute(revoke)
        try:
            collection = collect_postgres(
                PostgresRequest(dsn=pg.auditor_dsn(tls=pg.kind.tls)), PLAN
            )
        finally:
            admin.execute(grant)
    database = collection.section.databases[0]
    assert database.statements is None
    [issue] = [issue for issue in collection.issues if issue.part == "statements"]
    assert "permission denied for function pg_stat_statements" in issue.reason
    assert "EXECUTE on the pg_stat_statements functions" in issue.reason
    assert database.extensions is not None
    assert database.tables is not None


def slow_queries(collection: PostgresCollection, max_mean_ms: float) -> list[Finding]:
    rule = Rule(
        id="R",
        check="pg.queries.slow",
        severity=Severity.HIGH,
        title="slow",
        params={"max_mean_ms": max_mean_ms},
    )
    snapshot = assemble("prod", postgres=collection.section, issues=collection.issues)
    policy = Policy(environment="prod", rules=(rule,))
    return list(evaluate(policy, snapshot, frozenset({Source.POSTGRES})).findings)


def test_other_roles_statements_hidden_are_an_error_never_a_pass(pg: SeededServer) -> None:
    """Without pg_read_all_stats another role's slow statement has no queryid: it must not
    be dropped so that the rest of the view passes."""
    if not pg.kind.statements:
        pytest.skip("no pg_stat_statements in the PostgreSQL 16 build")
    with psycopg.connect(pg.app_dsn(tls=False), autocommit=True) as application:
        application.execute("SELECT pg_sleep(0.3)")  # recorded under zep_app, in zep
    full = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn()), BARE_PLAN)
    [slow] = slow_queries(full, max_mean_ms=250)
    assert slow.status is Status.FAIL  # pg_monitor sees it

    bare = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn(user=BARE_ROLE)), BARE_PLAN)
    database = bare.section.databases[0]
    assert database.statements is None
    [issue] = [issue for issue in bare.issues if issue.part == "statements"]
    assert re.fullmatch(
        r"\d+ statement\(s\) of other roles are hidden from this role \(no queryid, no "
        r"text\): it needs pg_read_all_stats \(granted by pg_monitor\)",
        issue.reason,
    )
    [finding] = slow_queries(bare, max_mean_ms=250)
    assert finding.status is Status.ERROR
    assert "pg_read_all_stats" in finding.message
    assert database.extensions is not None  # the rest is still collected
