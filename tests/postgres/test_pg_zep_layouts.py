"""Zep's real layouts on the real servers: a user policy of a few lines extending a shipped
preset gives the right verdict on each planted problem, and nothing is left unknown.

The databases ``zep_legacy`` (Zep v0.27.2) and ``zep_ce`` (Zep CE v1.0.2, schema ``zep``) are
seeded from ``engram_audit/demo/data/zep-legacy`` and ``zep-ce-v1`` on every server with
pgvector (both layouts need it: Zep CE installs it at every start).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engram_audit.collectors.postgres.collector import PostgresRequest, collect_postgres
from engram_audit.model.plan import CollectionPlan, SessionRetentionPlan, SoftDeletedPlan
from tests.support.cli import run_in_process as run
from tests.support.pg_servers import CE_DATABASE, LEGACY_DATABASE, SeededServer

LEGACY_POLICY = """\
apiVersion: engram-audit/v1
environment: prod
extends: [prod.yaml, presets/zep-legacy.yaml]
scope: {database: zep_legacy}
"""
CE_POLICY = """\
apiVersion: engram-audit/v1
environment: prod
extends: [prod.yaml, presets/zep-ce-v1.yaml]
scope: {database: zep_ce, schemas: [zep]}   # Zep's postgres.schema_name
"""


def check_with_user_policy(
    pg: SeededServer, tmp_path: Path, text: str, database: str
) -> tuple[int, dict[str, Any], str]:
    """`engram-audit init`, then the user's own policy beside the shipped ones, then `check`."""
    assert len(text.splitlines()) <= 10
    assert run("init", str(tmp_path)).returncode == 0
    (tmp_path / "policies" / "zep-prod.yaml").write_text(text, encoding="utf-8")
    result = run(
        "check", "--env", "prod", "--policy", "policies/zep-prod.yaml", "--sources", "postgres",
        "--dsn", pg.auditor_dsn(tls=pg.kind.tls, database=database), "--format", "json",
        cwd=tmp_path,
    )  # fmt: skip
    return result.returncode, json.loads(result.stdout), result.stderr


def verdicts(report: dict[str, Any], database: str) -> dict[tuple[str, str], str]:
    """(rule, object) -> status for the PostgreSQL rules; object "" is the database itself."""
    found = {}
    for finding in report["findings"]:
        if not finding["rule"].startswith("ZEP-PG-"):
            continue
        _, _, rest = finding["resource"].removeprefix("postgresql://").partition(f"/{database}")
        found[(finding["rule"], rest.lstrip("/"))] = finding["status"]
    return found


def actual(report: dict[str, Any], rule: str) -> list[str]:
    return [f["actual"] for f in report["findings"] if f["rule"] == rule]


def test_legacy_zep_with_a_four_line_policy_on_the_legacy_preset(
    zep_layouts: SeededServer, tmp_path: Path
) -> None:
    code, report, stderr = check_with_user_policy(
        zep_layouts, tmp_path, LEGACY_POLICY, LEGACY_DATABASE
    )
    assert code == 1, stderr
    assert report["collection_issues"] == []
    assert report["collection_notes"] == []  # the DSN names zep_legacy, the policy's database
    got = verdicts(report, LEGACY_DATABASE)
    assert not [key for key, status in got.items() if status == "error"], got
    assert {
        ("ZEP-PG-SESSION-RETENTION", "public.session"): "fail",
        ("ZEP-PG-MESSAGE-RETENTION", "public.message"): "fail",
        ("ZEP-PG-PURGE-SESSION", "public.session"): "fail",
        ("ZEP-PG-PURGE-MESSAGE", "public.message"): "fail",
        ("ZEP-PG-PURGE-MESSAGE-EMBEDDING", "public.message_embedding"): "fail",
        ("ZEP-PG-PURGE-SUMMARY", "public.summary"): "fail",
        ("ZEP-PG-PURGE-SUMMARY-EMBEDDING", "public.summary_embedding"): "fail",
        # Zep's own HNSW indexes pass; the collection on its IVFFlat fallback does not.
        ("ZEP-PG-VECTOR-INDEX", "public.message_embedding.embedding"): "pass",
        ("ZEP-PG-VECTOR-INDEX", "public.summary_embedding.embedding"): "pass",
        ("ZEP-PG-VECTOR-INDEX", "public.docstore_supportkb_1536.embedding"): "pass",
        ("ZEP-PG-VECTOR-INDEX", "public.docstore_handbook_1536.embedding"): "fail",
        ("ZEP-PG-INDEX-VALID", "public.users_email_unique_idx"): "fail",
        ("ZEP-PG-AUTOVACUUM", "public.message"): "fail",
        ("ZEP-PG-VECTOR-EXTENSION", ""): "pass",
    }.items() <= got.items()
    # Live rows only: the 120-day-old session deleted 3 days ago is not an active session.
    assert actual(report, "ZEP-PG-SESSION-RETENTION") == ["6 row(s) older than 90 days"]
    assert actual(report, "ZEP-PG-MESSAGE-RETENTION") == ["36 row(s) older than 90 days"]
    # The session deleted 30 minutes ago is within one purge interval.
    assert actual(report, "ZEP-PG-PURGE-SESSION") == [
        "3 row(s) soft-deleted more than 24 h ago (4 soft-deleted in all)"
    ]
    assert actual(report, "ZEP-PG-PURGE-MESSAGE") == [
        "19 row(s) soft-deleted more than 24 h ago (25 soft-deleted in all)"
    ]
    assert actual(report, "ZEP-PG-AUTOVACUUM")[1:] == ["toast.autovacuum_enabled=false"]
    # Zep legacy has no facts table: the preset switches that rule off.
    assert not [f for f in report["findings"] if f["rule"] == "ZEP-PG-EXPIRED-FACTS"]
    assert "builtin-policies" not in json.dumps(report["policy_files"])
    assert report["policy_files"][-2:] == [
        "policies/presets/zep-legacy.yaml",
        "policies/zep-prod.yaml",
    ]


def test_zep_ce_v1_with_a_four_line_policy_on_the_ce_preset(
    zep_layouts: SeededServer, tmp_path: Path
) -> None:
    code, report, stderr = check_with_user_policy(zep_layouts, tmp_path, CE_POLICY, CE_DATABASE)
    assert code == 1, stderr
    assert report["collection_issues"] == []
    got = verdicts(report, CE_DATABASE)
    assert not [key for key, status in got.items() if status == "error"], got
    assert {
        ("ZEP-PG-SESSION-RETENTION", "zep.sessions"): "fail",
        ("ZEP-PG-MESSAGE-RETENTION", "zep.messages"): "fail",
        ("ZEP-PG-PURGE-SESSIONS", "zep.sessions"): "fail",
        ("ZEP-PG-PURGE-MESSAGES", "zep.messages"): "fail",
        ("ZEP-PG-INDEX-VALID", "zep.users_email_unique_idx"): "fail",
        ("ZEP-PG-AUTOVACUUM", "zep.messages"): "fail",
        # CE keeps no vector in Postgres, but installs pgvector.
        ("ZEP-PG-VECTOR-INDEX", ""): "skip",
        ("ZEP-PG-VECTOR-EXTENSION", ""): "pass",
    }.items() <= got.items()
    assert actual(report, "ZEP-PG-SESSION-RETENTION") == ["5 row(s) older than 90 days"]
    assert actual(report, "ZEP-PG-MESSAGE-RETENTION") == ["30 row(s) older than 90 days"]
    assert actual(report, "ZEP-PG-PURGE-SESSIONS") == [
        "2 row(s) soft-deleted more than 24 h ago (3 soft-deleted in all)"
    ]
    assert actual(report, "ZEP-PG-PURGE-MESSAGES") == [
        "12 row(s) soft-deleted more than 24 h ago (18 soft-deleted in all)"
    ]
    assert not [f for f in report["findings"] if f["rule"] == "ZEP-PG-EXPIRED-FACTS"]


def test_the_legacy_preset_on_a_ce_database_says_which_tables_are_missing(
    zep_layouts: SeededServer, tmp_path: Path
) -> None:
    """The wrong preset is never a pass: every table it names is an ERROR naming the relation."""
    wrong = LEGACY_POLICY.replace("zep_legacy", "zep_ce")
    code, report, _ = check_with_user_policy(zep_layouts, tmp_path, wrong, CE_DATABASE)
    assert code == 3
    messages = {f["rule"]: f["message"] for f in report["findings"] if f["status"] == "error"}
    assert 'relation "public.session" does not exist' in messages["ZEP-PG-SESSION-RETENTION"]
    assert 'relation "public.summary" does not exist' in messages["ZEP-PG-PURGE-SUMMARY"]


def test_the_collector_reads_the_legacy_layout(zep_layouts: SeededServer) -> None:
    plan = CollectionPlan(
        environment="prod",
        database=LEGACY_DATABASE,
        retention=(
            SessionRetentionPlan(table="session"),
            # users.deleted_at exists but is never set (Zep hard-deletes users).
            SessionRetentionPlan(table="users"),
            # document_collection has no deleted_at: the default counts every row.
            SessionRetentionPlan(table="document_collection", default_max_age_days=1),
            SessionRetentionPlan(
                table="document_collection",
                deleted_column="deleted_at",
                deleted_column_required=True,
            ),
        ),
        soft_deleted=(SoftDeletedPlan(table="docstore_supportkb_1536"),),
    )
    collection = collect_postgres(
        PostgresRequest(dsn=zep_layouts.server.dsn_for(LEGACY_DATABASE)), plan
    )
    [database] = collection.section.databases
    counted = {(r.table, r.default_max_age_days): r for r in database.retention or ()}
    assert counted[("session", 90)].deleted_column == "deleted_at"
    assert counted[("session", 90)].counts[0].count == 6
    assert counted[("users", 90)].deleted_column == "deleted_at"
    assert counted[("document_collection", 1)].deleted_column is None
    # Named explicitly, a soft-delete column the table lacks is an issue on that table.
    assert ("document_collection", 90) not in counted
    [issue] = [i for i in collection.issues if i.part == "retention"]
    assert issue.resource == f"{database.target}/document_collection"
    assert issue.reason == 'column "deleted_at" does not exist in public.document_collection'
    # Zep never purges docstore tables: the document deleted 40 days ago is still there.
    [documents] = database.soft_deleted or ()
    assert (documents.soft_deleted, documents.stale, documents.schema_name) == (1, 1, "public")
    # toast.autovacuum_enabled is read from the TOAST table's own reloptions.
    tables = {t.table: t for t in database.tables or ()}
    assert tables["message"].toast_autovacuum_enabled is False
    assert tables["message"].autovacuum_enabled is None
    assert tables["session"].toast_autovacuum_enabled is None
    # Zep's own indexes are matched to their column by attribute number.
    indexes = {i.name: i for i in database.vector_indexes or ()}
    assert indexes["message_embedding_embedding_hnsw_idx"].table_columns == ("embedding",)
    assert indexes["docstore_handbook_1536_embedding_idx"].method == "ivfflat"
