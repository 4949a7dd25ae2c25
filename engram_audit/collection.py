"""Live collection: derive a plan from the policy, run the selected collectors, build a snapshot.

This is the only module that knows every collector; collectors know nothing of each other or
of the policy's verdicts (they receive a ``CollectionPlan``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from engram_audit import TOOL_NAME, __version__
from engram_audit.checks.dsn import SslModeParams
from engram_audit.checks.pg_retention import ExpiredFactsParams, SessionRetentionParams
from engram_audit.model import Policy, Snapshot, Source
from engram_audit.model.plan import CollectionPlan, ExpiredFactsPlan, SessionRetentionPlan
from engram_audit.model.snapshot import (
    AzureSection,
    CollectionIssue,
    DsnSection,
    PostgresSection,
    ToolInfo,
)


def plan_for(policy: Policy) -> CollectionPlan:
    """What the enabled rules need collected (retention criteria, DSN variables, scope)."""
    session_retention = expired_facts = None
    variables: set[str] = set()
    for rule in policy.enabled_rules():
        if rule.check == "pg.retention.sessions":
            p = SessionRetentionParams.model_validate(rule.params)
            session_retention = SessionRetentionPlan(
                table=p.table,
                age_column=p.age_column,
                tenant_column=p.tenant_column,
                default_max_age_days=p.max_age_days,
                tenant_max_age_days=p.tenant_max_age_days,
            )
        elif rule.check == "pg.retention.expired_facts":
            f = ExpiredFactsParams.model_validate(rule.params)
            expired_facts = ExpiredFactsPlan(table=f.table, valid_to_column=f.valid_to_column)
        elif rule.check == "dsn.sslmode":
            variables.update(SslModeParams.model_validate(rule.params).variables)
    return CollectionPlan(
        environment=policy.environment,
        database=policy.scope.database,
        schemas=policy.scope.schemas,
        exclude_tables=policy.scope.exclude_tables,
        session_retention=session_retention,
        expired_facts=expired_facts,
        dsn_variables=tuple(sorted(variables)),
    )


def assemble(
    environment: str,
    *,
    azure: AzureSection | None = None,
    postgres: PostgresSection | None = None,
    dsn: DsnSection | None = None,
    issues: tuple[CollectionIssue, ...] = (),
    collected_at: datetime | None = None,
) -> Snapshot:
    return Snapshot(
        environment=environment,
        collected_at=collected_at or datetime.now(UTC),
        tool=ToolInfo(name=TOOL_NAME, version=__version__),
        azure=azure,
        postgres=postgres,
        dsn=dsn,
        issues=issues,
    )


def merge(base: Snapshot, live: Snapshot, sources: frozenset[Source]) -> Snapshot:
    """Live sections replace the base's for the sources that were collected (used by the demo)."""
    return base.model_copy(
        update={
            "collected_at": live.collected_at,
            "azure": live.azure if Source.AZURE in sources else base.azure,
            "postgres": live.postgres if Source.POSTGRES in sources else base.postgres,
            "dsn": live.dsn if Source.DSN in sources else base.dsn,
            "issues": tuple(i for i in base.issues if i.source not in sources) + live.issues,
        }
    )


def environ_view(environ: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {name: environ[name] for name in names if name in environ}
