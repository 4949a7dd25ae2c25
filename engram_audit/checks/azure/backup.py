"""Checks on backups: retention, geo-redundancy and whether backups are actually happening."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from engram_audit.checks.azure.common import each_server, prop, setting, switch_outcomes
from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    errored,
    verdict,
    with_facts,
)
from engram_audit.model.base import Source
from engram_audit.model.values import as_int, fold, text


class RetentionParams(Params):
    min_days: int = Field(ge=1, le=35)
    max_days: int | None = Field(default=None, ge=1, le=35)


@check(
    "azure.backup.retention_days",
    sources=[Source.AZURE],
    params=RetentionParams,
    reads=("azure.server",),
    planned=True,
    facts=("setting",),
)
def backup_retention(params: RetentionParams, context: CheckContext) -> Iterator[Outcome]:
    """Automated backups are kept at least as long as the environment's recovery window.

    Retention bounds how far back point-in-time restore can go: 7 days for staging and dev,
    14 for UAT, 35 for production, per the storage design.

    Remediation: `az postgres flexible-server update --backup-retention <days>`.
    """
    expected = f">= {params.min_days} days" + (
        f" and <= {params.max_days} days" if params.max_days is not None else ""
    )
    for server in each_server(context):
        raw = prop(server, "backup", "backupRetentionDays")
        days = as_int(raw)
        if days is None:
            yield errored(server.id, f"backupRetentionDays is not a number: {text(raw)}", expected)
            continue
        ok = days >= params.min_days and (params.max_days is None or days <= params.max_days)
        wanted = params.min_days if days < params.min_days else params.max_days
        fix = {} if ok else {"setting": setting("properties.backup.backupRetentionDays", wanted)}
        yield verdict(ok, server.id, expected, f"{days} days", facts=fix)


class GeoRedundantParams(Params):
    enabled: bool


@check(
    "azure.backup.geo_redundant",
    sources=[Source.AZURE],
    params=GeoRedundantParams,
    reads=("azure.server",),
    planned=True,
    facts=("setting", "value"),
)
def backup_geo_redundant(params: GeoRedundantParams, context: CheckContext) -> Iterator[Outcome]:
    """Geo-redundant backup storage is enabled where the design requires region-failure recovery.

    UAT and production recover from a region failure by geo-restore (RTO 1-4 hours); that needs
    geo-redundant backups, which can only be chosen when the server is created.

    Remediation: Geo-redundant backup is fixed when a server is created: restore {server} into a
    new server with `az postgres flexible-server restore --resource-group {resource_group} --name "$NEW_SERVER" --source-server {server_id} --geo-redundant-backup {value}`,
    then move the application to it.
    """
    wanted = "Enabled" if params.enabled else "Disabled"
    for outcome in switch_outcomes(context, ("backup", "geoRedundantBackup"), params.enabled):
        yield with_facts(outcome, {"value": wanted})


class RecentBackupParams(Params):
    max_age_hours: float = Field(default=26, gt=0)
    backup_types: list[str] = Field(
        default_factory=lambda: ["Full"], description="Backup types that count (automatic: Full)"
    )


@check(
    "azure.backup.recent",
    sources=[Source.AZURE],
    params=RecentBackupParams,
    reads=("azure.backups",),
)
def backup_recent(params: RecentBackupParams, context: CheckContext) -> Iterator[Outcome]:
    """The newest automatic backup is recent: backups are actually being taken.

    Full backups run daily; a newest backup older than 26 hours means backups are failing, which
    silently breaks every RPO in the design. Measured against the snapshot's collection time.

    Remediation: open the Backup and restore blade and the activity log of {server} to find why
    the daily backup failed; open a support case if Azure-managed backups stopped.
    """
    types = {fold(t) for t in params.backup_types}
    expected = f"a {'/'.join(params.backup_types)} backup <= {params.max_age_hours:g} h old"
    for server in each_server(context):
        if server.backups is None:
            yield context.not_collected(server.id, "backups", expected)
            continue
        completed = [
            b.completed_time
            for b in server.backups
            if b.completed_time is not None and fold(b.backup_type) in types
        ]
        if not completed:
            yield verdict(False, server.id, expected, "no completed automatic backup")
            continue
        newest = max(completed)
        age_hours = (context.now - newest).total_seconds() / 3600
        actual = f"newest {newest.isoformat()} ({age_hours:.1f} h old)"
        yield verdict(age_hours <= params.max_age_hours, server.id, expected, actual)
