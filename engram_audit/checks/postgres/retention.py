"""Checks on data retention: old sessions archived, deleted rows purged, expired facts reported."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import Field

from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    errored,
    pg_facts,
    pg_not_collected,
    pg_resource,
    verdict,
)
from engram_audit.checks.postgres.common import each_database
from engram_audit.model.base import Source
from engram_audit.model.plan import (
    ZEP_DELETED_COLUMN,
    CollectionRequest,
    ExpiredFactsPlan,
    SessionRetentionPlan,
    SoftDeletedPlan,
)
from engram_audit.model.snapshot import PostgresDatabase, RetentionCounts


def _relation(table: str, schema_name: str | None) -> str:
    """The table as findings name it: ``schema.table`` wherever the schema is known.

    As the policy wrote it when qualified, else in the schema the collector recorded. An
    unqualified name the snapshot did not place stays unqualified: no schema is assumed, since
    the collector looks in the first scope schema, which need not be ``public``.
    """
    if "." in table or not schema_name:
        return table
    return f"{schema_name}.{table}"


class SessionRetentionParams(Params):
    table: str = Field(
        default="sessions",
        description="Table to count, as schema.table or a name looked up in the first scope "
        "schema: session (Zep legacy), sessions (Zep CE v1), or message/messages",
    )
    age_column: str = "created_at"
    max_age_days: int = Field(default=90, ge=1)
    tenant_column: str | None = Field(
        default=None, description="Column naming the tenant, e.g. project_uuid"
    )
    tenant_max_age_days: dict[str, int] = Field(
        default_factory=dict, description="Per-tenant retention"
    )
    max_rows: int = Field(default=0, ge=0, description="Old rows tolerated before failing")
    deleted_column: str | None = Field(
        default=None,
        description="Soft-delete column: rows where it is set are deleted, not active, and are "
        "not counted. Default: deleted_at when the table has it (Zep's column); a name given "
        "here must exist; an empty string counts every row",
    )


def _session_retention_request(params: SessionRetentionParams) -> Iterable[CollectionRequest]:
    named = params.deleted_column
    yield SessionRetentionPlan(
        table=params.table,
        age_column=params.age_column,
        tenant_column=params.tenant_column,
        default_max_age_days=params.max_age_days,
        tenant_max_age_days=params.tenant_max_age_days,
        deleted_column=ZEP_DELETED_COLUMN if named is None else (named or None),
        deleted_column_required=bool(named),
    )


def _deleted_column_fits(params: SessionRetentionParams, counted: str | None) -> bool:
    """Whether the snapshot left out the soft-deleted rows the params say to leave out."""
    if params.deleted_column is None:  # deleted_at when the table has it
        return counted in (None, ZEP_DELETED_COLUMN)
    return counted == (params.deleted_column or None)


def _table_counts(database: PostgresDatabase, table: str) -> tuple[list[RetentionCounts], str]:
    """The retention counts of ``table`` and the part they come from: ``retention`` since
    snapshot 1.2, ``session_retention`` (one count) before."""
    if database.retention is not None:
        return [c for c in database.retention if c.table == table], "retention"
    legacy = database.session_retention
    return ([legacy] if legacy is not None and legacy.table == table else []), "session_retention"


@check(
    "pg.retention.sessions",
    sources=[Source.POSTGRES],
    params=SessionRetentionParams,
    reads=("postgres.session_retention",),
    requests=_session_retention_request,
)
def pg_retention_sessions(
    params: SessionRetentionParams, context: CheckContext
) -> Iterator[Outcome]:
    """Sessions older than the retention age (90 days, per tenant) have been archived out of Postgres.

    Episodic memory is kept 90 days (configurable per tenant) and then moved to Blob cold storage;
    old rows left behind grow the database and keep personal data longer than promised. Only
    counts are read, never row contents. Findings name the table in its schema (an unqualified
    `table` is looked up in the first scope schema, e.g. Zep CE's `postgres.schema_name`).
    Several rules may each count their own table (Zep's sessions and their messages): each is
    counted and judged on its own.

    Only active rows count: a row whose soft-delete column is set has been deleted and is not
    an active session (`deleted_column`, by default `deleted_at` when the table has it). Zep
    deletes by setting `deleted_at` (bun's `soft_delete` tag: getzep/zep
    `pkg/store/postgres/schema.go@v0.27.2` L42 on `session`, L66 on `message`;
    `src/store/schema_common.go@v1.0.2` L50 on `sessions`, L75 on `messages`) and removes those
    rows later: `pg.retention.soft_deleted` checks that this purge runs.

    Zep's own tables: `session` and `message`, age column `created_at` (legacy v0.27.2,
    `schema.go` L40, L64); `sessions` and `messages` in the schema `postgres.schema_name` names
    (CE v1.0.2, `src/store/migrations/000000000001_database_setup.up.sql`). Zep has no retention
    feature of its own in either release: archiving is the operator's job.

    Remediation: run the archival job for the tenant (export to Blob, then delete in batches).
    """
    expected = f"<= {params.max_rows} row(s) older than {params.max_age_days} days"
    if params.tenant_max_age_days:
        expected += (
            " (per-tenant: "
            + ", ".join(f"{t}={d}d" for t, d in sorted(params.tenant_max_age_days.items()))
            + ")"
        )
    wanted = (
        params.age_column,
        params.tenant_column,
        params.max_age_days,
        params.tenant_max_age_days,
    )
    for database in each_database(context):
        found, part = _table_counts(database, params.table)
        if not found:
            table_target = f"{database.target}/{params.table}"
            if part == "session_retention" and (
                context.issue_for(table_target, "retention")
                or context.issue_for(database.target, "retention")
            ):
                part = "retention"  # a 1.2 collector whose counts all failed
            yield context.not_collected(
                pg_resource(database, params.table),
                part,
                expected,
                issue_resource=table_target,
                fallback_resource=database.target,
            )
            continue
        counts = next(
            (
                c
                for c in found
                if (c.age_column, c.tenant_column, c.default_max_age_days, c.tenant_max_age_days)
                == wanted
                and _deleted_column_fits(params, c.deleted_column)
            ),
            None,
        )
        table_object = _relation(params.table, found[0].schema_name)
        if counts is None:
            yield errored(
                pg_resource(database, table_object),
                "snapshot counted this table with other criteria than this policy; collect again",
                expected,
            )
            continue
        note = (
            f"rows with {counts.deleted_column} set are soft-deleted and not counted"
            if counts.deleted_column
            else ""
        )
        offenders = [c for c in counts.counts if c.count > params.max_rows]
        if not offenders:
            total = sum(c.count for c in counts.counts)
            yield verdict(
                True, pg_resource(database, table_object), expected, f"{total} old row(s)", note
            )
            continue
        for entry in sorted(offenders, key=lambda c: c.tenant or ""):
            suffix = f"[{params.tenant_column}={entry.tenant}]" if entry.tenant is not None else ""
            yield verdict(
                False,
                pg_resource(database, table_object + suffix),
                expected,
                f"{entry.count} row(s) older than {entry.max_age_days} days",
                note,
            )


class SoftDeletedParams(Params):
    table: str = Field(
        description="Table whose soft-deleted rows the purge removes, as schema.table or a name "
        "looked up in the first scope schema (Zep legacy: session, message, message_embedding, "
        "summary, summary_embedding; CE v1: sessions, messages)"
    )
    deleted_column: str = Field(
        default=ZEP_DELETED_COLUMN, description="Soft-delete column: set when a row is deleted"
    )
    max_age_hours: float = Field(
        default=24, gt=0, description="Longest a soft-deleted row may wait for the purge"
    )
    max_rows: int = Field(default=0, ge=0, description="Overdue rows tolerated before failing")


def _soft_deleted_request(params: SoftDeletedParams) -> Iterable[CollectionRequest]:
    yield SoftDeletedPlan(
        table=params.table,
        deleted_column=params.deleted_column,
        max_age_hours=params.max_age_hours,
    )


@check(
    "pg.retention.soft_deleted",
    sources=[Source.POSTGRES],
    params=SoftDeletedParams,
    reads=("postgres.soft_deleted",),
    requests=_soft_deleted_request,
    facts=("schema", "table", "column"),
)
def pg_retention_soft_deleted(
    params: SoftDeletedParams, context: CheckContext
) -> Iterator[Outcome]:
    """No row stays soft-deleted longer than the purge allows (24 hours): the purge job runs.

    Zep deletes by setting `deleted_at` and hard-deletes those rows later, so a "deleted"
    session, its messages and their embeddings stay in Postgres until the purge runs. The
    design promises GDPR deletion "on request (purge from Postgres + Blob)": rows soft-deleted
    longer ago than `max_age_hours` mean the purge is not running. Only counts are read: how
    many rows are soft-deleted, and how many of them longer ago than the limit.

    Zep legacy (getzep/zep v0.27.2) purges every `purge_every` minutes
    (`cmd/zep/run.go` L210-237, `setupPurgeProcessor`): `purgeDeleted` (`pkg/store/postgres/purge.go`
    L11-37) runs `DELETE ... WHERE deleted_at IS NOT NULL` on `message_embedding`,
    `summary_embedding`, `summary`, `message` and `session` (`messageTableList`, `schema.go`
    L346-352). The shipped `config.yaml` sets `purge_every: 60`, and says "If set to 0 or
    undefined, hard deletes will not be performed": a configuration without the key never purges.
    It never purges `users` (hard-deleted) nor `docstore_*` tables. Zep CE v1.0.2 has no periodic
    job: it purges `messages` and `sessions` right after each session delete
    (`src/store/db_utils_ce.go` L14-40 `purgeDeletedResources`, called from
    `_cleanupDeletedSession`, `src/store/sessionstore_common.go` L258 and
    `sessionstore_ce.go` L12-13), so rows left behind mean that purge
    failed.

    Remediation: set `data.purge_every` (minutes, e.g. 60) in Zep's config.yaml, or the
    environment variable `ZEP_DATA_PURGE_EVERY` (viper's `ZEP` prefix, `config/config.go@v0.27.2`
    L37-39), and restart Zep; or run the purge by hand:
    `DELETE FROM <table> WHERE deleted_at IS NOT NULL;` then `VACUUM ANALYZE <table>;`.
    """
    expected = (
        f"<= {params.max_rows} row(s) soft-deleted ({params.deleted_column} set) more than "
        f"{params.max_age_hours:g} h ago"
    )
    for database in each_database(context):
        found = [c for c in database.soft_deleted or () if c.table == params.table]
        if not found:
            yield context.not_collected(
                pg_resource(database, params.table),
                "soft_deleted",
                expected,
                issue_resource=f"{database.target}/{params.table}",
                fallback_resource=database.target,
            )
            continue
        counted = next(
            (
                c
                for c in found
                if (c.deleted_column, c.max_age_hours)
                == (params.deleted_column, params.max_age_hours)
            ),
            None,
        )
        resource = pg_resource(database, _relation(params.table, found[0].schema_name))
        if counted is None:
            yield errored(
                resource,
                "snapshot counted this table's soft-deleted rows with other criteria than this "
                "policy; collect again",
                expected,
            )
            continue
        actual = (
            f"{counted.stale} row(s) soft-deleted more than {counted.max_age_hours:g} h ago "
            f"({counted.soft_deleted} soft-deleted in all)"
        )
        overdue = counted.stale > params.max_rows
        message = (
            "the purge of soft-deleted rows is not running: deleted personal data stays in Postgres"
            if overdue
            else ""
        )
        # Split as the collector does: "schema.table" as written, else the schema it counted in.
        schema, dot, table = counted.table.partition(".")
        if not dot:
            schema, table = counted.schema_name or "", counted.table
        facts = pg_facts(database, schema, table=table, column=counted.deleted_column)
        yield verdict(not overdue, resource, expected, actual, message, facts=facts)


class ExpiredFactsParams(Params):
    table: str = "facts"
    valid_to_column: str = "valid_to"
    max_rows: int = Field(default=0, ge=0)


def _expired_facts_request(params: ExpiredFactsParams) -> Iterable[CollectionRequest]:
    yield ExpiredFactsPlan(table=params.table, valid_to_column=params.valid_to_column)


@check(
    "pg.retention.expired_facts",
    sources=[Source.POSTGRES],
    params=ExpiredFactsParams,
    reads=("postgres.expired_facts",),
    requests=_expired_facts_request,
)
def pg_retention_expired_facts(
    params: ExpiredFactsParams, context: CheckContext
) -> Iterator[Outcome]:
    """Facts whose `valid_to` has passed are reported, for the optional cleanup job.

    Semantic memory is kept indefinitely unless invalidated; invalidated facts (`valid_to < now()`)
    can be removed by a periodic job. This is informational by default.

    Remediation: run the fact cleanup job, or delete in batches:
    `DELETE FROM facts WHERE valid_to < now() - interval '30 days'`.
    """
    expected = f"<= {params.max_rows} expired fact(s)"
    for database in each_database(context):
        expired = database.expired_facts
        if expired is None:
            yield pg_not_collected(context, database, "expired_facts", expected)
            continue
        resource = pg_resource(database, _relation(params.table, expired.schema_name))
        if (expired.table, expired.valid_to_column) != (params.table, params.valid_to_column):
            yield errored(
                resource, "snapshot counted facts in another table/column; collect again", expected
            )
            continue
        yield verdict(
            expired.count <= params.max_rows, resource, expected, f"{expired.count} expired fact(s)"
        )
