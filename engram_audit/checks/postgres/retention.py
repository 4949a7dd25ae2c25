"""Checks on data retention: old sessions archived out of Postgres, expired facts reported."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import Field

from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    errored,
    pg_not_collected,
    pg_resource,
    verdict,
)
from engram_audit.checks.postgres.common import each_database
from engram_audit.model.base import Source
from engram_audit.model.plan import CollectionRequest, ExpiredFactsPlan, SessionRetentionPlan


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
    table: str = "sessions"
    age_column: str = "created_at"
    max_age_days: int = Field(default=90, ge=1)
    tenant_column: str | None = Field(
        default=None, description="Column naming the tenant, e.g. project_uuid"
    )
    tenant_max_age_days: dict[str, int] = Field(
        default_factory=dict, description="Per-tenant retention"
    )
    max_rows: int = Field(default=0, ge=0, description="Old rows tolerated before failing")


def _session_retention_request(params: SessionRetentionParams) -> Iterable[CollectionRequest]:
    yield SessionRetentionPlan(
        table=params.table,
        age_column=params.age_column,
        tenant_column=params.tenant_column,
        default_max_age_days=params.max_age_days,
        tenant_max_age_days=params.tenant_max_age_days,
    )


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

    Remediation: run the archival job for the tenant (export to Blob, then delete in batches).
    """
    expected = f"<= {params.max_rows} session(s) older than {params.max_age_days} days"
    if params.tenant_max_age_days:
        expected += (
            " (per-tenant: "
            + ", ".join(f"{t}={d}d" for t, d in sorted(params.tenant_max_age_days.items()))
            + ")"
        )
    for database in each_database(context):
        counts = database.session_retention
        if counts is None:
            yield pg_not_collected(context, database, "session_retention", expected)
            continue
        table_object = _relation(params.table, counts.schema_name)
        criteria = (
            counts.table,
            counts.age_column,
            counts.tenant_column,
            counts.default_max_age_days,
            counts.tenant_max_age_days,
        )
        wanted = (
            params.table,
            params.age_column,
            params.tenant_column,
            params.max_age_days,
            params.tenant_max_age_days,
        )
        if criteria != wanted:
            yield errored(
                pg_resource(database, table_object),
                "snapshot counted sessions with other criteria than this policy; collect again",
                expected,
            )
            continue
        offenders = [c for c in counts.counts if c.count > params.max_rows]
        if not offenders:
            total = sum(c.count for c in counts.counts)
            yield verdict(
                True, pg_resource(database, table_object), expected, f"{total} old session(s)"
            )
            continue
        for entry in sorted(offenders, key=lambda c: c.tenant or ""):
            suffix = f"[{params.tenant_column}={entry.tenant}]" if entry.tenant is not None else ""
            yield verdict(
                False,
                pg_resource(database, table_object + suffix),
                expected,
                f"{entry.count} session(s) older than {entry.max_age_days} days",
            )


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
