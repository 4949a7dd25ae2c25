"""What the collector gathers from a real, seeded server: the same suite on PG 16, 17 and 18."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from engram_audit.collectors.postgres.collector import (
    PostgresCollection,
    PostgresRequest,
    collect_postgres,
)
from engram_audit.model.plan import (
    CollectionPlan,
    ExpiredFactsPlan,
    SessionRetentionPlan,
    SoftDeletedPlan,
)
from engram_audit.model.snapshot import PostgresDatabase
from tests.support.pg_servers import AUDITOR_PASSWORD, SeededServer

PLAN = CollectionPlan(
    environment="prod",
    retention=(SessionRetentionPlan(),),
    expired_facts=ExpiredFactsPlan(),
)
EMBEDDING_TABLES = (
    "entity_embeddings",
    "fact_embeddings",
    "message_embeddings",
    "summary_embeddings",
)


@pytest.fixture(scope="module")
def app_sessions(pg: SeededServer) -> Iterator[dict[str, int]]:
    """Application sessions open while collecting: plaintext, and TLS where the server has it."""
    pids: dict[str, int] = {}
    connections = [psycopg.connect(pg.app_dsn(tls=False), application_name="zep-plain")]
    if pg.kind.tls:
        connections.append(psycopg.connect(pg.app_dsn(tls=True), application_name="zep-tls"))
    for connection in connections:
        pids[connection.info.parameter_status("application_name") or ""] = (
            connection.info.backend_pid
        )
    yield pids
    for connection in connections:
        connection.close()


@pytest.fixture(scope="module")
def collected(pg: SeededServer, app_sessions: dict[str, int]) -> PostgresCollection:
    """One collection as the least-privilege auditor, over verified TLS where the server has it."""
    return collect_postgres(PostgresRequest(dsn=pg.auditor_dsn(tls=pg.kind.tls)), PLAN)


@pytest.fixture(scope="module")
def database(collected: PostgresCollection) -> PostgresDatabase:
    assert len(collected.section.databases) == 1
    return collected.section.databases[0]


def test_least_privilege_role_collects_everything_the_server_has(
    pg: SeededServer, collected: PostgresCollection
) -> None:
    parts = {issue.part for issue in collected.issues}
    assert parts == set(), collected.issues


def test_target_names_host_port_and_database_without_credentials(
    pg: SeededServer, database: PostgresDatabase
) -> None:
    assert database.target == f"127.0.0.1:{pg.server.port}/zep"
    assert database.host == "127.0.0.1"
    assert database.port == pg.server.port
    assert "auditor" not in database.target


def test_server_version_and_size(pg: SeededServer, database: PostgresDatabase) -> None:
    assert database.server_version_num is not None
    assert database.server_version_num // 10000 == pg.kind.major
    assert database.server_version is not None
    assert database.server_version.startswith(str(pg.kind.major))
    assert database.database_size_bytes is not None
    assert database.database_size_bytes > 1_000_000


def test_settings_hold_all_of_pg_settings_with_units_and_sources(
    database: PostgresDatabase,
) -> None:
    settings = database.settings
    assert settings is not None
    assert len(settings) > 250
    assert settings["max_connections"].setting == "100"
    assert settings["shared_buffers"].unit == "8kB"
    assert settings["port"].source == "configuration file"
    assert settings["work_mem"].source == "default"


def test_the_session_itself_is_read_only_bounded_and_named(database: PostgresDatabase) -> None:
    settings = database.settings
    assert settings is not None
    assert settings["default_transaction_read_only"].setting == "on"
    assert settings["statement_timeout"].setting == "15000"
    assert settings["lock_timeout"].setting == "15000"
    assert settings["application_name"].setting == "engram-audit"


def test_connections_by_state_count_every_client_backend(
    database: PostgresDatabase, app_sessions: dict[str, int]
) -> None:
    assert database.connections is not None
    states = {state.state: state.count for state in database.connections}
    assert states.get("active", 0) >= 1  # our own session, running the query
    assert sum(states.values()) >= 1 + len(app_sessions)


def test_own_session_tls_matches_how_we_connected(
    pg: SeededServer, database: PostgresDatabase
) -> None:
    own = database.own_session
    assert own is not None
    assert own.application_name == "engram-audit"
    assert own.usename == "auditor"
    assert own.ssl is pg.kind.tls
    assert own.sslmode == ("verify-full" if pg.kind.tls else "disable")  # as libpq used it
    if pg.kind.tls:
        assert own.version in ("TLSv1.2", "TLSv1.3")
        assert own.cipher


def test_own_session_plaintext_on_the_tls_server_too(pg: SeededServer) -> None:
    if not pg.kind.tls:
        pytest.skip("only the PG17 build has OpenSSL: plaintext is covered by the other servers")
    collection = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn(tls=False)), PLAN)
    own = collection.section.databases[0].own_session
    assert own is not None
    assert own.ssl is False
    assert own.version is None


def test_sslrootcert_system_verifies_against_the_system_roots_file(pg: SeededServer) -> None:
    """psycopg-binary's OpenSSL has no usable default store: "system" becomes the bundle
    file (SSL_CERT_FILE here, naming the test CA; the process environment is left alone)."""
    if not pg.kind.tls:
        pytest.skip("only the PG17 build has OpenSSL")
    dsn = pg.auditor_dsn().replace("sslmode=disable", "sslrootcert=system")
    collection = collect_postgres(
        PostgresRequest(dsn=dsn), PLAN, environ={"SSL_CERT_FILE": str(pg.ca_pem)}
    )
    assert collection.issues == ()
    own = collection.section.databases[0].own_session
    assert own is not None
    assert (own.ssl, own.sslmode) == (True, "verify-full")


def test_client_sessions_report_tls_per_backend(
    pg: SeededServer, database: PostgresDatabase, app_sessions: dict[str, int]
) -> None:
    assert database.client_sessions is not None
    by_pid = {session.pid: session for session in database.client_sessions}
    plain = by_pid[app_sessions["zep-plain"]]
    assert plain.ssl is False
    assert plain.client_addr == "127.0.0.1"
    assert plain.usename == "zep_app"
    assert plain.backend_type == "client backend"
    if pg.kind.tls:
        encrypted = by_pid[app_sessions["zep-tls"]]
        assert encrypted.ssl is True
        assert encrypted.version in ("TLSv1.2", "TLSv1.3")
    own = database.own_session
    assert own is not None
    assert own.pid not in by_pid


def test_extensions_with_installed_and_newest_versions(
    pg: SeededServer, database: PostgresDatabase
) -> None:
    assert database.extensions is not None
    extensions = {extension.name: extension for extension in database.extensions}
    assert extensions["plpgsql"].schema_name == "pg_catalog"
    if pg.kind.vector_version is None:
        assert "vector" not in extensions
    else:
        vector = extensions["vector"]
        assert vector.version == pg.kind.vector_version
        assert vector.default_version == pg.kind.vector_version
        assert vector.schema_name == "public"
    assert ("pg_stat_statements" in extensions) is pg.kind.statements


def test_vector_columns_with_dimensions(pg: SeededServer, database: PostgresDatabase) -> None:
    if pg.kind.vector_version is None:
        assert database.vector_columns == ()  # collected: none exist without pgvector
        pytest.skip("no pgvector in this PostgreSQL 17 build: vector columns cannot exist")
    assert database.vector_columns is not None
    columns = {(c.table, c.column): c for c in database.vector_columns}
    assert sorted(table for table, _ in columns) == sorted(EMBEDDING_TABLES)
    assert {c.type for c in columns.values()} == {"vector"}
    assert {c.dimensions for c in columns.values()} == {1536}


def test_vector_indexes_with_method_opclass_options_validity(
    pg: SeededServer, database: PostgresDatabase
) -> None:
    if pg.kind.vector_version is None:
        assert database.vector_indexes == ()
        pytest.skip("no pgvector in this PostgreSQL 17 build: vector indexes cannot exist")
    assert database.vector_indexes is not None
    indexes = {index.table: index for index in database.vector_indexes}
    assert set(indexes) == {"entity_embeddings", "fact_embeddings", "message_embeddings"}
    good = indexes["message_embeddings"]
    assert (good.method, good.opclasses, good.columns, good.table_columns) == (
        "hnsw",
        ("vector_cosine_ops",),
        ("embedding",),
        ("embedding",),
    )
    assert good.options == {"m": "16", "ef_construction": "64"}
    assert good.valid
    ivfflat = indexes["fact_embeddings"]
    assert (ivfflat.method, ivfflat.options) == ("ivfflat", {"lists": "100"})
    weak = indexes["entity_embeddings"]
    assert (weak.opclasses, weak.options) == (
        ("vector_l2_ops",),
        {"m": "4", "ef_construction": "16"},
    )


def test_invalid_index_from_failed_concurrent_build(database: PostgresDatabase) -> None:
    assert database.invalid_indexes is not None
    assert [(i.schema_name, i.table, i.name) for i in database.invalid_indexes] == [
        ("public", "sessions", "sessions_user_id_unique_idx")
    ]


def test_table_stats_and_autovacuum_overrides(pg: SeededServer, database: PostgresDatabase) -> None:
    assert database.tables is not None
    tables = {table.table: table for table in database.tables}
    expected = {"users", "sessions", "messages", "facts"}
    if pg.kind.vector_version is not None:
        expected |= set(EMBEDDING_TABLES)
    assert set(tables) == expected
    assert tables["messages"].autovacuum_enabled is False
    assert all(t.autovacuum_enabled is None for name, t in tables.items() if name != "messages")
    # No toast.autovacuum_enabled anywhere (the legacy layout's test sets one).
    assert all(t.toast_autovacuum_enabled is None for t in tables.values())
    assert tables["sessions"].last_analyze is not None  # the seed ran ANALYZE
    assert tables["messages"].n_dead_tup is not None


def test_statements_when_installed_else_absent_without_an_issue(
    pg: SeededServer, collected: PostgresCollection, database: PostgresDatabase
) -> None:
    if not pg.kind.statements:
        # Absent is a fact the extension list records, not a failure to collect.
        assert database.statements is None
        assert database.extensions is not None
        assert "pg_stat_statements" not in {e.name for e in database.extensions if e.version}
        assert not [issue for issue in collected.issues if issue.part == "statements"]
        return
    assert database.statements is not None
    assert database.statements, "the seed's statements are recorded"
    means = [statement.mean_exec_time_ms for statement in database.statements]
    assert means == sorted(means, reverse=True)
    assert all(statement.calls >= 1 and statement.queryid for statement in database.statements)


def test_retention_counts_old_sessions_and_expired_facts(database: PostgresDatabase) -> None:
    assert database.retention is not None
    [retention] = database.retention
    assert (retention.table, retention.schema_name, retention.age_column) == (
        "sessions",
        "public",
        "created_at",
    )
    assert retention.tenant_column is None
    # The seed's sessions table has deleted_at: soft-deleted rows are not active sessions.
    assert retention.deleted_column == "deleted_at"
    assert retention.default_max_age_days == 90
    assert [(c.tenant, c.max_age_days, c.count) for c in retention.counts] == [(None, 90, 5)]
    assert database.expired_facts is not None
    assert database.expired_facts.count == 5
    assert (
        database.expired_facts.table,
        database.expired_facts.schema_name,
        database.expired_facts.valid_to_column,
    ) == ("facts", "public", "valid_to")


def test_retention_per_tenant_with_an_override(pg: SeededServer) -> None:
    plan = CollectionPlan(
        environment="prod",
        retention=(
            SessionRetentionPlan(
                tenant_column="tenant_id", tenant_max_age_days={"initech": 30, "globex": 365}
            ),
        ),
    )
    collection = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn()), plan)
    [retention] = collection.section.databases[0].retention or ()
    assert retention.tenant_max_age_days == {"initech": 30, "globex": 365}
    # globex's two old sessions (95 and 200 days) are within its 365 days.
    assert [(c.tenant, c.max_age_days, c.count) for c in retention.counts] == [
        ("acme", 90, 3),
        ("initech", 30, 1),
    ]


def test_missing_retention_table_or_column_is_an_issue_not_a_crash(pg: SeededServer) -> None:
    plan = CollectionPlan(
        environment="prod",
        retention=(SessionRetentionPlan(table="episodes"), SessionRetentionPlan()),
        expired_facts=ExpiredFactsPlan(valid_to_column="invalid_at"),
    )
    collection = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn()), plan)
    database = collection.section.databases[0]
    # The missing table is not counted; the other retention table still is.
    assert [r.table for r in database.retention or ()] == ["sessions"]
    assert database.expired_facts is None
    reasons = {(issue.resource, issue.part): issue.reason for issue in collection.issues}
    target = database.target
    assert (
        'relation "public.episodes" does not exist' in reasons[(f"{target}/episodes", "retention")]
    )
    assert 'column "invalid_at" does not exist' in reasons[(target, "expired_facts")]
    assert database.tables is not None  # the rest is still collected


def test_excluded_tables_and_other_schemas_are_out_of_scope(pg: SeededServer) -> None:
    plan = CollectionPlan(environment="prod", exclude_tables=("messages", "public.*_embeddings"))
    database = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn()), plan).section.databases[0]
    assert database.tables is not None
    assert {t.table for t in database.tables} == {"users", "sessions", "facts"}
    assert database.vector_columns == ()


def test_a_schema_that_does_not_exist_is_an_issue_not_an_empty_scope(pg: SeededServer) -> None:
    """A scope naming no real schema must not read as "no tables, nothing wrong"."""
    plan = CollectionPlan(environment="prod", schemas=("public", "zep_archive"))
    collection = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn()), plan)
    [database] = collection.section.databases
    parts = ("tables", "invalid_indexes", "vector_columns", "vector_indexes")
    assert [getattr(database, part) for part in parts] == [None] * len(parts)
    reasons = {issue.part: issue.reason for issue in collection.issues}
    assert set(reasons) == set(parts)
    assert all('do not exist in database zep: "zep_archive"' in reasons[part] for part in parts)
    assert database.settings is not None  # what does not depend on the scope is collected


def test_a_fixed_number_of_queries(pg: SeededServer, collected: PostgresCollection) -> None:
    """The session check, ten catalog queries, pg_stat_statements when installed, one look at
    the columns of every counted table together, and one count per counted table."""
    statements = 1 if pg.kind.statements else 0
    assert collected.queries == 11 + statements + 1 + 2
    bare = collect_postgres(
        PostgresRequest(dsn=pg.auditor_dsn()), CollectionPlan(environment="prod")
    )
    assert bare.queries == 11 + statements
    several = PLAN.model_copy(
        update={
            "retention": (SessionRetentionPlan(), SessionRetentionPlan(table="messages")),
            "soft_deleted": (SoftDeletedPlan(table="sessions"),),
        }
    )
    more = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn()), several)
    assert more.queries == 11 + statements + 1 + 4


def test_the_password_appears_nowhere_in_the_collection(collected: PostgresCollection) -> None:
    assert AUDITOR_PASSWORD not in collected.section.model_dump_json()
    assert AUDITOR_PASSWORD not in repr(collected.issues)


def test_secrets_in_recorded_statements_are_masked(pg: SeededServer) -> None:
    """pg_stat_statements keeps utility statements' text; a password literal must not leak."""
    if not pg.kind.statements:
        pytest.skip("no pg_stat_statements in the PostgreSQL 16 build")
    literal = "Leak-Me-If-You-Can-77"
    with psycopg.connect(pg.admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE statement_probe LOGIN PASSWORD '{literal}'")
        admin.execute("DROP ROLE statement_probe")
    collection = collect_postgres(PostgresRequest(dsn=pg.admin_dsn), PLAN)
    statements = collection.section.databases[0].statements
    assert statements is not None
    recorded = [s.query for s in statements if "statement_probe" in s.query]
    assert recorded, "the CREATE ROLE statement is recorded"
    assert literal not in collection.section.model_dump_json()


VECTOR_SHAPES = """
CREATE EXTENSION vector;
CREATE TABLE "Docs" (id integer, "Embedding" vector(3), other vector(3));
CREATE INDEX "Docs_hnsw" ON "Docs" USING hnsw ("Embedding" vector_cosine_ops);
CREATE TABLE chunks (id integer, embedding vector(4), note text);
CREATE INDEX chunks_id_idx ON chunks (id) WHERE note IS NOT NULL;
"""
# pgvector 0.7.0 brought halfvec: "Index vectors at half precision" (README, Half-Precision
# Indexing) with an expression index over a cast.
HALFVEC_INDEX = (
    "CREATE INDEX chunks_half_idx ON chunks USING hnsw ((embedding::halfvec(4)) halfvec_cosine_ops)"
)


def test_indexes_match_their_columns_by_attribute_and_expression(pg: SeededServer) -> None:
    """A quoted column name, and an expression index over a halfvec cast (pgvector 0.7+)."""
    if pg.kind.vector_version is None:
        pytest.skip("no pgvector in this PostgreSQL 17 build")
    halfvec = tuple(int(p) for p in pg.kind.vector_version.split(".")) >= (0, 7)
    with psycopg.connect(pg.server.dsn, autocommit=True) as admin:
        if not admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = 'vector_shapes'"
        ).fetchone():
            admin.execute("CREATE DATABASE vector_shapes")
            with psycopg.connect(pg.server.dsn_for("vector_shapes"), autocommit=True) as shapes:
                shapes.execute(VECTOR_SHAPES)
                if halfvec:
                    shapes.execute(HALFVEC_INDEX)
    plan = CollectionPlan(environment="prod", database="vector_shapes")
    collection = collect_postgres(PostgresRequest(dsn=pg.server.dsn), plan)
    [database] = collection.section.databases
    indexes = {index.name: index for index in database.vector_indexes or ()}
    quoted = indexes["Docs_hnsw"]
    assert (quoted.columns, quoted.table_columns) == (('"Embedding"',), ("Embedding",))
    assert "chunks_id_idx" not in indexes  # a plain btree on another column
    if halfvec:
        half = indexes["chunks_half_idx"]
        # Shown as PostgreSQL shows it under the session's search_path=pg_catalog.
        assert half.columns == ("(embedding::public.halfvec(4))",)
        assert half.table_columns == ("embedding",)  # the column its expression uses
        assert half.opclasses == ("halfvec_cosine_ops",)

    from engram_audit.collectors.run import assemble
    from engram_audit.engine import evaluate
    from engram_audit.model import Policy, Rule, Severity, Source

    rule = Rule(
        id="R",
        check="pg.vector.index",
        severity=Severity.HIGH,
        title="t",
        params={"allowed_methods": ["hnsw"]},
    )
    report = evaluate(
        Policy(environment="prod", rules=(rule,)),
        assemble("prod", postgres=collection.section, issues=collection.issues),
        {Source.POSTGRES},
    )
    by_column = {f.resource.rsplit("/", 1)[1]: f.status.value for f in report.findings}
    assert by_column["public.Docs.Embedding"] == "pass"
    assert by_column["public.Docs.other"] == "fail"
    assert by_column["public.chunks.embedding"] == ("pass" if halfvec else "fail")
