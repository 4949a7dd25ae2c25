"""Live collection: derive a plan from the policy, run the selected collectors, build a snapshot.

This is the only module that knows every collector; collectors know nothing of each other or
of the policy's verdicts (they receive a ``CollectionPlan``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from engram_audit import TOOL_NAME, __version__
from engram_audit.checks.dsn import SslModeParams
from engram_audit.checks.pg_retention import ExpiredFactsParams, SessionRetentionParams
from engram_audit.collectors.azure import AzureCollectionError, AzureRequest, collect_azure
from engram_audit.collectors.azure_errors import AzureTargetError
from engram_audit.collectors.dsn import collect_dsns
from engram_audit.collectors.postgres import PostgresRequest, collect_postgres
from engram_audit.errors import EngramAuditError, UsageError
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


@dataclass(frozen=True)
class LiveTargets:
    """What to collect live; ``None`` means that source has no target in this run."""

    azure: AzureRequest | None = None
    postgres: PostgresRequest | None = None


class CollectionFailed(EngramAuditError):
    """A collector could not even start (no credential, unusable endpoint): exit 3."""

    exit_code = 3


def collect_live(
    policy: Policy,
    sources: frozenset[Source],
    targets: LiveTargets,
    environ: Mapping[str, str],
    *,
    show_progress: bool,
) -> Snapshot:
    """Run the collectors for the selected sources that have a target; the rest stay absent."""
    plan = plan_for(policy)
    azure = postgres = dsn = None
    issues: list[CollectionIssue] = []
    if Source.AZURE in sources and targets.azure is not None:
        try:
            collected = collect_azure(targets.azure, show_progress=show_progress)
        except AzureTargetError as error:  # the settings are wrong: input, not the cloud
            raise UsageError(f"Azure: {error}") from None
        except AzureCollectionError as error:
            raise CollectionFailed(f"Azure: {error}") from None
        azure = collected.section
        issues.extend(collected.issues)
    if Source.POSTGRES in sources and targets.postgres is not None:
        pg = collect_postgres(targets.postgres, plan)
        postgres = pg.section
        issues.extend(pg.issues)
    if Source.DSN in sources:
        dsn = collect_dsns(plan, environ)
    return assemble(
        policy.environment, azure=azure, postgres=postgres, dsn=dsn, issues=tuple(issues)
    )
