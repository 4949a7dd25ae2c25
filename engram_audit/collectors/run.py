"""Live collection: run the selected collectors for a plan, assemble and merge snapshots.

This is the only module that knows every collector; collectors know nothing of each other or
of the policy's verdicts (they receive a ``CollectionPlan``, see ``policy.planning``). The
Azure SDK and psycopg are imported only when their collector runs, so commands that never
collect (``validate``, ``check --snapshot``) do not pay for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from engram_audit import TOOL_NAME, __version__
from engram_audit.collectors.azure.request import AzureRequest
from engram_audit.collectors.iac.request import IacRequest
from engram_audit.collectors.postgres.request import PostgresRequest
from engram_audit.errors import EngramAuditError, UsageError
from engram_audit.model import Snapshot, Source
from engram_audit.model.plan import CollectionPlan
from engram_audit.model.snapshot import (
    AzureSection,
    CollectionIssue,
    CollectionNote,
    DsnSection,
    PostgresSection,
    ToolInfo,
)


def assemble(
    environment: str,
    *,
    azure: AzureSection | None = None,
    postgres: PostgresSection | None = None,
    dsn: DsnSection | None = None,
    issues: tuple[CollectionIssue, ...] = (),
    notes: tuple[CollectionNote, ...] = (),
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
        notes=notes,
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
            "notes": tuple(n for n in base.notes if n.source not in sources) + live.notes,
        }
    )


@dataclass(frozen=True)
class LiveTargets:
    """What to collect live; ``None`` means that source has no target in this run.

    ``iac``: a Terraform plan or an ARM template is the run's Azure source instead of the live
    estate (``collect_planned``); it never comes with live targets.
    """

    azure: AzureRequest | None = None
    postgres: PostgresRequest | None = None
    iac: IacRequest | None = None


class CollectionFailed(EngramAuditError):
    """A collector could not even start (no credential, unusable endpoint): exit 3."""

    exit_code = 3


def collect_live(
    plan: CollectionPlan,
    sources: frozenset[Source],
    targets: LiveTargets,
    environ: Mapping[str, str],
    *,
    show_progress: bool,
) -> Snapshot:
    """Run the collectors for the selected sources that have a target; the rest stay absent."""
    azure = postgres = dsn = None
    issues: list[CollectionIssue] = []
    notes: list[CollectionNote] = []
    if Source.AZURE in sources and targets.azure is not None:
        from engram_audit.collectors.azure.collector import collect_azure
        from engram_audit.collectors.azure.errors import AzureCollectionError, AzureTargetError

        try:
            collected = collect_azure(targets.azure, show_progress=show_progress, parts=plan.parts)
        except AzureTargetError as error:  # the settings are wrong: input, not the cloud
            raise UsageError(f"Azure: {error}") from None
        except AzureCollectionError as error:
            raise CollectionFailed(f"Azure: {error}") from None
        azure = collected.section
        issues.extend(collected.issues)
    if Source.POSTGRES in sources and targets.postgres is not None:
        from engram_audit.collectors.postgres.collector import collect_postgres

        pg = collect_postgres(targets.postgres, plan, show_progress=show_progress)
        postgres = pg.section
        issues.extend(pg.issues)
        notes.extend(pg.notes)
    if Source.DSN in sources:
        from engram_audit.collectors.dsn import collect_dsns

        dsn = collect_dsns(plan, environ)
    return assemble(
        plan.environment,
        azure=azure,
        postgres=postgres,
        dsn=dsn,
        issues=tuple(issues),
        notes=tuple(notes),
    )


def collect_planned(environment: str, request: IacRequest) -> Snapshot:
    """The planned state of a Terraform plan or ARM template, as a snapshot whose ``origin``
    says so. Nothing live is collected: checks of running servers are SKIP "needs live state"."""
    from engram_audit.collectors.iac.collect import read_planned_state

    planned = read_planned_state(request)
    snapshot = assemble(environment, azure=planned.section, issues=planned.issues)
    return snapshot.model_copy(update={"origin": planned.origin})
