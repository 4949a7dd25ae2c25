"""Every pg.* check reaches a real PASS and a real FAIL from data this collector gathered live.

Each case evaluates one rule through the real engine against a snapshot collected from a
seeded server a moment earlier; PASS and FAIL differ by the server's state (TLS or not, an
extension present or not, an application session open) or by the rule's threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from engram_audit.collectors.postgres.collector import PostgresRequest, collect_postgres
from engram_audit.collectors.run import assemble
from engram_audit.engine import evaluate
from engram_audit.model import Policy, Rule, Severity, Source, Status
from engram_audit.model.policy import PostgresScope
from engram_audit.model.report import Finding
from engram_audit.model.snapshot import AzureSection
from engram_audit.model.snapshot_io import load_snapshot
from engram_audit.policy.planning import plan_for
from tests.support.pg_servers import SeededServer

PROD_AZURE = Path(__file__).parents[2] / "fixtures" / "snapshots" / "prod-compliant.json"


def run(
    pg: SeededServer,
    check: str,
    params: dict[str, Any] | None = None,
    *,
    dsn: str | None = None,
    scope: PostgresScope | None = None,
    azure: AzureSection | None = None,
) -> list[Finding]:
    rule = Rule(id="R", check=check, severity=Severity.HIGH, title=check, params=params or {})
    policy = Policy(environment="prod", scope=scope or PostgresScope(), rules=(rule,))
    collected = collect_postgres(PostgresRequest(dsn=dsn or pg.auditor_dsn()), plan_for(policy))
    snapshot = assemble("prod", postgres=collected.section, azure=azure, issues=collected.issues)
    sources = {Source.POSTGRES} | ({Source.AZURE} if azure else set())
    return list(evaluate(policy, snapshot, sources).findings)


def statuses(findings: list[Finding]) -> dict[str, Status]:
    """Status by object (``public.sessions``); ``""`` for the database itself."""
    objects: dict[str, Status] = {}
    for finding in findings:
        _, _, database_and_object = finding.resource.removeprefix("postgresql://").partition("/")
        objects[database_and_object.removeprefix("zep").lstrip("/")] = finding.status
    return objects


def only(findings: list[Finding]) -> Finding:
    [finding] = findings
    return finding


def test_server_version(pg: SeededServer) -> None:
    assert (
        only(run(pg, "pg.server.version", {"allowed_majors": [pg.kind.major]})).status
        is Status.PASS
    )
    failed = only(run(pg, "pg.server.version", {"allowed_majors": [15]}))
    assert failed.status is Status.FAIL
    assert failed.actual.startswith(str(pg.kind.major))


def test_vector_extension(pg: SeededServer) -> None:
    if pg.kind.vector_version is None:
        missing = only(run(pg, "pg.extension.vector"))
        assert missing.status is Status.FAIL  # PG17 build: no pgvector at all
        return
    assert only(run(pg, "pg.extension.vector", {"min_version": "0.5.0"})).status is Status.PASS
    assert only(run(pg, "pg.extension.vector", {"min_version": "0.9.0"})).status is Status.FAIL


def test_pg_stat_statements_extension(pg: SeededServer) -> None:
    finding = only(run(pg, "pg.extension.pg_stat_statements", {"required": True}))
    assert finding.status is (Status.PASS if pg.kind.statements else Status.FAIL)


def test_slow_queries(pg: SeededServer) -> None:
    if not pg.kind.statements:
        skipped = only(run(pg, "pg.queries.slow"))
        assert skipped.status is Status.SKIP
        assert "pg_stat_statements is not installed" in skipped.message
        return
    assert only(run(pg, "pg.queries.slow", {"max_mean_ms": 60_000})).status is Status.PASS
    slow = run(pg, "pg.queries.slow", {"max_mean_ms": 0.001})
    assert {finding.status for finding in slow} == {Status.FAIL}


def test_vector_index(pg: SeededServer) -> None:
    if pg.kind.vector_version is None:
        pytest.skip("no pgvector in this PostgreSQL 17 build: no vector columns to index")
    params = {
        "allowed_methods": ["hnsw"],
        "opclasses": ["vector_cosine_ops"],
        "hnsw": {"m": 16, "ef_construction": 64},
    }
    results = statuses(run(pg, "pg.vector.index", params))
    assert results == {
        "public.message_embeddings.embedding": Status.PASS,
        "public.fact_embeddings.embedding": Status.FAIL,  # IVFFlat
        "public.entity_embeddings.embedding": Status.FAIL,  # m=4, l2
        "public.summary_embeddings.embedding": Status.FAIL,  # no index
    }


def test_invalid_index(pg: SeededServer) -> None:
    assert statuses(run(pg, "pg.index.valid")) == {
        "public.sessions_user_id_unique_idx": Status.FAIL
    }
    clean = run(pg, "pg.index.valid", scope=PostgresScope(exclude_tables=("sessions",)))
    assert {finding.status for finding in clean} == {Status.PASS}


def test_autovacuum_enabled(pg: SeededServer) -> None:
    failing = statuses(run(pg, "pg.autovacuum.enabled", {"allow_table_overrides": False}))
    assert failing["public.messages"] is Status.FAIL
    assert [name for name, status in failing.items() if status is Status.FAIL] == [
        "public.messages"
    ]
    allowed = run(pg, "pg.autovacuum.enabled", {"allow_table_overrides": True})
    assert {finding.status for finding in allowed} == {Status.PASS}


def test_autovacuum_recency(pg: SeededServer) -> None:
    assert only(run(pg, "pg.autovacuum.recency", {"min_dead_tuples": 1000})).status is Status.PASS
    stale = statuses(run(pg, "pg.autovacuum.recency", {"min_dead_tuples": 1, "max_age_hours": 1}))
    assert stale["public.messages"] is Status.FAIL  # dead tuples, autovacuum off, never vacuumed


def test_own_session_tls(pg: SeededServer) -> None:
    plain = only(run(pg, "pg.tls.connection", {"min_protocol": "TLSv1.2"}))
    assert plain.status is Status.FAIL
    assert plain.message.startswith("the auditor connected with sslmode=disable: the server's")
    if not pg.kind.tls:
        return
    encrypted = only(
        run(pg, "pg.tls.connection", {"min_protocol": "TLSv1.2"}, dsn=pg.auditor_dsn(tls=True))
    )
    assert encrypted.status is Status.PASS
    assert encrypted.message == ""  # verify-full: nothing to add
    # TLS without verifying the server: honoured, and the finding says so.
    unverified = pg.auditor_dsn(tls=True).replace("sslmode=verify-full", "sslmode=require")
    weak = only(run(pg, "pg.tls.connection", {"min_protocol": "TLSv1.2"}, dsn=unverified))
    assert weak.status is Status.PASS
    assert weak.message == (
        "the auditor connected with sslmode=require: the server's certificate was not "
        "verified, so what was collected may not come from the server it names "
        "(use sslmode=verify-full)"
    )


def test_client_sessions_tls(pg: SeededServer) -> None:
    params = {"ignore_local_socket": True}
    if pg.kind.tls:
        with psycopg.connect(pg.app_dsn(tls=True)):
            tls_only = only(run(pg, "pg.tls.clients", params, dsn=pg.auditor_dsn(tls=True)))
        assert tls_only.status is Status.PASS
    else:
        with psycopg.connect(pg.admin_dsn):  # a Unix-socket session never leaves the host
            local_only = only(run(pg, "pg.tls.clients", params, dsn=pg.admin_dsn))
        assert local_only.status is Status.PASS
    with psycopg.connect(pg.app_dsn(tls=False), application_name="zep-plain"):
        plaintext = only(run(pg, "pg.tls.clients", params, dsn=pg.admin_dsn))
    assert plaintext.status is Status.FAIL
    assert "zep_app@127.0.0.1" in plaintext.actual


def test_connections_utilization(pg: SeededServer) -> None:
    assert only(run(pg, "pg.connections.utilization", {"max_percent": 80})).status is Status.PASS
    with psycopg.connect(pg.app_dsn(tls=False)), psycopg.connect(pg.app_dsn(tls=False)):
        busy = only(run(pg, "pg.connections.utilization", {"max_percent": 2}))
    assert busy.status is Status.FAIL  # 3 of max_connections=100
    # Live pg_settings report the reserved slots (PostgreSQL's defaults: 3 + 0), so nothing is
    # assumed: 100 - 3 superuser_reserved_connections - 0 reserved_connections = 97.
    assert "of 97 " in busy.actual, busy.actual
    assert "100 max_connections - 3 superuser_reserved_connections" in busy.actual
    assert busy.message == ""


def test_session_retention(pg: SeededServer) -> None:
    # Findings name the schema the collector counted in (schema_name): public.
    old = statuses(run(pg, "pg.retention.sessions", {"max_age_days": 90}))
    assert old == {"public.sessions": Status.FAIL}
    per_tenant = statuses(
        run(pg, "pg.retention.sessions", {"max_age_days": 90, "tenant_column": "tenant_id"})
    )
    assert per_tenant == {
        "public.sessions[tenant_id=acme]": Status.FAIL,
        "public.sessions[tenant_id=globex]": Status.FAIL,
    }
    qualified = statuses(run(pg, "pg.retention.sessions", {"table": "public.sessions"}))
    assert qualified == {"public.sessions": Status.FAIL}
    young = run(pg, "pg.retention.sessions", {"max_age_days": 1000})
    assert {finding.status for finding in young} == {Status.PASS}


def test_expired_facts(pg: SeededServer) -> None:
    expired = only(run(pg, "pg.retention.expired_facts", {"max_rows": 0}))
    assert expired.status is Status.FAIL
    assert expired.resource.endswith("/zep/public.facts")
    assert only(run(pg, "pg.retention.expired_facts", {"max_rows": 5})).status is Status.PASS


def test_storage_utilization_joins_live_size_with_azure(pg: SeededServer) -> None:
    azure = load_snapshot(PROD_AZURE).azure
    assert azure is not None
    assert len(azure.servers) == 1
    # The local server's host is no Azure FQDN: a lone server is never paired by elimination.
    unpaired = only(run(pg, "pg.storage.utilization", {"max_percent": 90}, azure=azure))
    assert unpaired.status is Status.ERROR
    assert "name the server in the policy" in unpaired.message
    named = {"server": "zep-prod-db"}
    roomy = only(run(pg, "pg.storage.utilization", {"max_percent": 90, **named}, azure=azure))
    assert roomy.status is Status.PASS
    tight = only(run(pg, "pg.storage.utilization", {"max_percent": 0.001, **named}, azure=azure))
    assert tight.status is Status.FAIL
    alone = only(run(pg, "pg.storage.utilization"))
    assert alone.status is Status.SKIP
    assert "source not selected" in alone.message
