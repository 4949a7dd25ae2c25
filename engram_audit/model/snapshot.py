"""The snapshot: everything the collectors gathered, typed, versioned and replayable offline.

Conventions every collector and check relies on:
- A field that is ``None`` was *not collected*; an empty tuple means "collected, none exist".
  Checks turn ``None`` into an ERROR finding, never into a pass.
- When a part could not be collected, the collector records a ``CollectionIssue`` whose
  ``part`` is the name of the snapshot field it could not fill (``"parameters"``,
  ``"firewall_rules"``, ``"statements"`` ...) and whose ``resource`` is the resource id or
  database target. ``part=None`` means the whole resource is missing.
- Azure values are kept as ARM sent them (strings for numbers, any enum casing); checks
  normalise with ``engram_audit.model.values``. Secrets never enter a snapshot: DSNs are
  redacted before they are stored.
- A snapshot of *planned* state (a Terraform plan, an ARM template) says so in ``origin``. A
  value the input does not give outright (unknown until apply, an unresolved template
  expression, a fact only a running server has, or Azure's default for something not
  declared) is listed in ``origin.planned`` with where it sits in the server and the values it
  can take; an unknown value is absent from the server itself, never guessed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from engram_audit.model.base import FrozenModel, Source, UtcDatetime, read_schema_version

# 1.1: parts, schema version as MAJOR.MINOR. Snapshots written as version 1 read as 1.0.
# 1.2: retention counts per table (``retention``), soft-deleted counts, collection notes, the
# columns a vector index covers. A 1.1 snapshot's ``session_retention`` is still read.
# Also 1.2: origin (planned state from a Terraform plan or an ARM template).
# Also 1.2: an invalid index's definition (pg_get_indexdef), for the fix that drops it.
# 1.3: azure.shard (``--shard I/N``: which slice of how large an estate), written only when
# the run was sharded.
SNAPSHOT_SCHEMA_VERSION = "1.3"


class ToolInfo(FrozenModel):
    name: str
    version: str


class CollectionIssue(FrozenModel):
    source: Source
    resource: str
    part: str | None = Field(
        default=None,
        description="Snapshot field that could not be filled; null: the whole resource",
    )
    reason: str


class CollectionNote(FrozenModel):
    """Something a reader of the results must know that is not a failure: which database was
    audited when the DSN named another, a scope accepted as empty (``--allow-empty``)."""

    source: Source
    resource: str
    part: str | None = Field(
        default=None,
        description="Snapshot field the note accounts for (left null on purpose: its rules are "
        "SKIP with this note as the reason); null: about the resource as a whole",
    )
    note: str


# --- Azure Resource Manager -------------------------------------------------------------


class ServerParameter(FrozenModel):
    """One server parameter (``configurations``); ARM sends every value as a string."""

    value: str | None = None
    default_value: str | None = None
    data_type: str | None = None
    allowed_values: str | None = None
    source: str | None = None


class FirewallRule(FrozenModel):
    name: str
    start_ip_address: str
    end_ip_address: str


class Backup(FrozenModel):
    name: str
    backup_type: str | None = None
    completed_time: UtcDatetime | None = None
    source: str | None = None


class EntraAdministrator(FrozenModel):
    object_id: str | None = None
    principal_name: str | None = None
    principal_type: str | None = None
    tenant_id: str | None = None


class AlertCriterion(FrozenModel):
    metric_name: str
    operator: str | None = None
    threshold: float | None = None
    time_aggregation: str | None = None
    metric_namespace: str | None = None


class MetricAlert(FrozenModel):
    id: str
    name: str
    enabled: bool = True
    severity: int | None = None
    scopes: tuple[str, ...] = ()
    criteria: tuple[AlertCriterion, ...] = ()
    action_groups: tuple[str, ...] = ()


class AzureServer(FrozenModel):
    id: str = Field(description="ARM resource id, as ARM sent it")
    name: str
    resource_group: str
    subscription_id: str
    resource: dict[str, Any] = Field(
        description="The flexibleServers resource body as ARM sent it (sku, properties, tags, ...)"
    )
    parameters: dict[str, ServerParameter] | None = None
    firewall_rules: tuple[FirewallRule, ...] | None = None
    backups: tuple[Backup, ...] | None = None
    databases: tuple[str, ...] | None = None
    administrators: tuple[EntraAdministrator, ...] | None = None
    private_endpoint_connections: tuple[dict[str, Any], ...] | None = None
    replicas: tuple[str, ...] | None = None
    threat_protection_state: str | None = None
    diagnostic_settings: tuple[dict[str, Any], ...] | None = None
    metric_alerts: tuple[MetricAlert, ...] | None = None


ESTATE_DIGEST = r"^[0-9a-f]{64}$"


class AzureShard(FrozenModel):
    """``--shard I/N``: the slice of the discovered servers a sharded run kept, and what it
    split, so that ``merge`` can tell a complete and consistent set of shards from one that is
    not (a shard that never reported, shards that saw different estates)."""

    index: int = Field(ge=1, description="I of --shard I/N (1-based)")
    count: int = Field(ge=1, description="N of --shard I/N")
    servers_found: int | None = Field(
        ge=0,
        description="Servers discovered before the split; null: the discovery failed (see "
        "the collection issues)",
    )
    estate: str | None = Field(
        pattern=ESTATE_DIGEST,
        description="sha256 (hex) of the discovered servers' resource ids before the split, "
        "casefolded, sorted and joined with newlines; null: the discovery failed",
    )

    @model_validator(mode="after")
    def _index_within_count(self) -> AzureShard:
        if self.index > self.count:
            raise ValueError(f"shard index {self.index} is above the count {self.count}")
        return self

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class AzureSection(FrozenModel):
    servers: tuple[AzureServer, ...] = ()
    shard: AzureShard | None = Field(
        default=None,
        description="Set when the run kept one slice of the servers found (--shard I/N): "
        "servers holds that slice only",
    )


# --- PostgreSQL -----------------------------------------------------------------------------


class PgSetting(FrozenModel):
    setting: str | None = None
    unit: str | None = None
    source: str | None = None


class ConnectionState(FrozenModel):
    state: str
    count: int


# libpq sslmodes that do not check the server's certificate against a trusted CA.
UNVERIFIED_SSLMODES = ("disable", "allow", "prefer", "require")


class SessionTls(FrozenModel):
    """TLS state of one backend (``pg_stat_ssl`` joined with ``pg_stat_activity``)."""

    pid: int | None = None
    ssl: bool
    version: str | None = None
    cipher: str | None = None
    usename: str | None = None
    application_name: str | None = None
    client_addr: str | None = None
    backend_type: str | None = None
    sslmode: str | None = Field(
        default=None,
        description="Own session only: the sslmode libpq used for the auditor's connection "
        "(verify-full unless the DSN or PGSSLMODE chose another)",
    )


class RunningVacuum(FrozenModel):
    pid: int
    relation: str
    phase: str | None = None
    age_seconds: float


class Extension(FrozenModel):
    name: str
    version: str | None = Field(default=None, description="Installed version; null: available only")
    schema_name: str | None = None
    default_version: str | None = Field(default=None, description="Newest version available")


class VectorColumn(FrozenModel):
    schema_name: str
    table: str
    column: str
    type: str
    dimensions: int | None = None


class VectorIndex(FrozenModel):
    schema_name: str
    table: str
    name: str
    columns: tuple[str, ...] = Field(
        description="Each key as pg_get_indexdef shows it: a column (quoted when it needs "
        "quotes) or an expression such as (embedding::halfvec(1536))"
    )
    table_columns: tuple[str, ...] | None = Field(
        default=None,
        description="The table's columns the index covers: its key columns (pg_index.indkey) "
        "and the columns its expressions use (pg_depend), by name as stored; null: not recorded "
        "(snapshots before 1.2)",
    )
    method: str
    opclasses: tuple[str, ...] = ()
    options: dict[str, str] = Field(default_factory=dict)
    valid: bool = True


class IndexRef(FrozenModel):
    schema_name: str
    table: str
    name: str
    definition: str | None = Field(
        default=None,
        description="The index's definition as pg_get_indexdef shows it (CREATE [UNIQUE] INDEX "
        "name ON schema.table USING method (...)); written by the audited database, so only "
        "ever shown in a comment; null: not recorded (snapshots before 1.2)",
    )


class TableStats(FrozenModel):
    schema_name: str
    table: str
    n_live_tup: int | None = None
    n_dead_tup: int | None = None
    last_vacuum: UtcDatetime | None = None
    last_autovacuum: UtcDatetime | None = None
    last_analyze: UtcDatetime | None = None
    last_autoanalyze: UtcDatetime | None = None
    autovacuum_enabled: bool | None = Field(
        default=None, description="Per-table reloption override; null: inherits the server setting"
    )
    toast_autovacuum_enabled: bool | None = Field(
        default=None,
        description=(
            "Reloption autovacuum_enabled of the table's TOAST table (written "
            "toast.autovacuum_enabled); null: not set there, no TOAST table, or not collected"
        ),
    )


class StatementStat(FrozenModel):
    queryid: str
    calls: int
    mean_exec_time_ms: float
    query: str = Field(default="", description="Normalised statement text, truncated")


class TenantCount(FrozenModel):
    tenant: str | None = Field(description="Tenant value; null: all rows (no tenant column)")
    max_age_days: int
    count: int


class RetentionCounts(FrozenModel):
    """Rows past their retention age, counted (never read) with the criteria used."""

    table: str = Field(description="The table as the policy names it")
    schema_name: str | None = Field(
        default=None,
        description="Schema the table was found in (the first scope schema for an unqualified "
        "name); null: not recorded",
    )
    age_column: str
    tenant_column: str | None = None
    default_max_age_days: int
    tenant_max_age_days: dict[str, int] = Field(default_factory=dict)
    deleted_column: str | None = Field(
        default=None,
        description="Soft-delete column: rows where it is set are not counted (not active); "
        "null: every row counted (no such column, or a snapshot before 1.2)",
    )
    counts: tuple[TenantCount, ...] = ()


class SoftDeletedCount(FrozenModel):
    """Soft-deleted rows of a table, counted (never read): all of them, and those deleted
    longer ago than the purge should allow."""

    table: str = Field(description="The table as the policy names it")
    schema_name: str | None = Field(default=None, description="Schema the table was found in")
    deleted_column: str
    max_age_hours: float
    soft_deleted: int = Field(description="Rows whose deleted_column is set")
    stale: int = Field(description="Of those, rows deleted more than max_age_hours ago")


class ExpiredFactsCount(FrozenModel):
    table: str
    schema_name: str | None = Field(
        default=None,
        description="Schema the table was found in (the first scope schema for an unqualified "
        "name); null: not recorded",
    )
    valid_to_column: str
    count: int


class PostgresDatabase(FrozenModel):
    target: str = Field(description="host:port/database, never with credentials")
    host: str | None = None
    port: int | None = None
    database: str
    server_version_num: int | None = None
    server_version: str | None = None
    settings: dict[str, PgSetting] | None = None
    connections: tuple[ConnectionState, ...] | None = None
    own_session: SessionTls | None = None
    client_sessions: tuple[SessionTls, ...] | None = None
    vacuums: tuple[RunningVacuum, ...] | None = None
    extensions: tuple[Extension, ...] | None = None
    vector_columns: tuple[VectorColumn, ...] | None = None
    vector_indexes: tuple[VectorIndex, ...] | None = None
    invalid_indexes: tuple[IndexRef, ...] | None = None
    tables: tuple[TableStats, ...] | None = None
    database_size_bytes: int | None = None
    statements: tuple[StatementStat, ...] | None = None
    session_retention: RetentionCounts | None = Field(
        default=None,
        description="Snapshots before 1.2: the one retention count; since 1.2 see retention",
    )
    retention: tuple[RetentionCounts, ...] | None = Field(
        default=None,
        description="One entry per table and criteria the retention rules asked for; a table "
        "missing here was not counted (its issue names the table); null: none asked for",
    )
    soft_deleted: tuple[SoftDeletedCount, ...] | None = Field(
        default=None,
        description="One entry per table the soft-delete rules asked for; null: none asked for",
    )
    expired_facts: ExpiredFactsCount | None = None


class PostgresSection(FrozenModel):
    databases: tuple[PostgresDatabase, ...] = ()


# --- Application DSNs ------------------------------------------------------------------------


class DsnEntry(FrozenModel):
    variable: str = Field(description="Environment variable that held the DSN")
    present: bool
    redacted: str | None = Field(default=None, description="The DSN with any password masked")
    sslmode: str | None = Field(default=None, description="Effective sslmode under libpq's rules")
    parse_error: str | None = None


class DsnSection(FrozenModel):
    entries: tuple[DsnEntry, ...] = ()


# --- Where the state came from: live, or planned (Terraform plan, ARM template) --------------

PlannedState = Literal["default", "unknown", "live"]


class PlannedValue(FrozenModel):
    """A value of planned state that the plan or template does not give outright.

    ``state``: ``default`` -- not declared, Azure's documented default is in the server (the
    finding says so where its verdict depends on it); ``unknown`` -- known only after apply, or
    an expression or template parameter that cannot be resolved; ``live`` -- a fact only a
    running server has (HA health). Unknown and live values are absent from the server.
    """

    server: str = Field(description="Id of the server (snapshot.azure.servers[].id) it belongs to")
    path: tuple[str, ...] = Field(
        description="Where it sits in that server: a field, then keys; list items by name or id "
        "(['resource', 'properties', 'backup', 'backupRetentionDays'], "
        "['parameters', 'azure.extensions', 'value'], ['firewall_rules', 'office', "
        "'start_ip_address'])"
    )
    attribute: str = Field(description="What the plan or template calls it")
    state: PlannedState
    reason: str = Field(description="Why it is not given: a sentence fit for a finding")
    candidates: tuple[Any, ...] = Field(
        default=(),
        description="Values it can take (null: absent); empty: too many to list",
    )
    complete: bool = Field(
        default=True,
        description="The candidates are every value it can take; false: probes only (SKU names, "
        "addresses, thresholds), so a pass that depends on it is not given",
    )


class PlannedChange(FrozenModel):
    """A server the plan deletes or replaces (Terraform ``delete`` action)."""

    address: str
    resource: str = Field(description="Server id as the snapshot names it")
    actions: tuple[str, ...] = Field(description="Terraform's actions, e.g. ['delete', 'create']")
    replace_paths: tuple[str, ...] = Field(
        default=(), description="Attributes that force the replacement"
    )


class PlannedResource(FrozenModel):
    """A resource of the plan or template, under the id findings name it by."""

    id: str = Field(description="Resource id as findings name it (server, configuration ...)")
    address: str = Field(
        description="Terraform resource address, or the template resource (symbolic name or "
        "index path)"
    )
    file: str | None = Field(default=None, description="File that declares it, when known")
    line: int | None = Field(default=None, ge=1, description="Line of its declaration")


class InputFile(FrozenModel):
    role: Literal["plan", "template", "parameters"]
    path: str
    sha256: str


class SnapshotOrigin(FrozenModel):
    """Planned state: what was read, with which tool's output, and what it leaves open."""

    kind: Literal["plan", "template"]
    files: tuple[InputFile, ...]
    format_version: str | None = Field(
        default=None,
        description="The plan's format_version, or the template's languageVersion",
    )
    tool: str | None = Field(
        default=None,
        description="Terraform (or OpenTofu) version, or the generator of a compiled template "
        "(bicep 0.45.6...)",
    )
    resources: tuple[PlannedResource, ...] = ()
    planned: tuple[PlannedValue, ...] = ()
    changes: tuple[PlannedChange, ...] = ()


# --- The document ----------------------------------------------------------------------------


class Snapshot(FrozenModel):
    schema_version: str = Field(
        default=SNAPSHOT_SCHEMA_VERSION,
        description="MAJOR.MINOR; the first snapshots wrote the integer 1 (read as 1.0)",
        json_schema_extra={"type": ["string", "integer"]},
    )
    environment: str
    collected_at: UtcDatetime
    tool: ToolInfo
    azure: AzureSection | None = None
    postgres: PostgresSection | None = None
    dsn: DsnSection | None = None
    issues: tuple[CollectionIssue, ...] = ()
    notes: tuple[CollectionNote, ...] = ()
    origin: SnapshotOrigin | None = Field(
        default=None,
        description="Planned state (Terraform plan, ARM template); null: collected live",
    )

    @property
    def planned(self) -> bool:
        """State a plan or template describes, not a running server's."""
        return self.origin is not None

    @field_validator("schema_version", mode="before")
    @classmethod
    def _known_version(cls, value: Any) -> str:
        return read_schema_version("snapshot", value, SNAPSHOT_SCHEMA_VERSION)

    def section(self, source: Source) -> AzureSection | PostgresSection | DsnSection | None:
        return {Source.AZURE: self.azure, Source.POSTGRES: self.postgres, Source.DSN: self.dsn}[
            source
        ]


# --- Parts: what a check may declare it reads, and what a collector can be asked for ---------

# Each part names the snapshot fields it covers. Identity fields (ids, names, targets) are
# always present and are not parts. A check sees only the parts it declares (see
# ``checks.base.CheckContext``), and the collection plan is the union of enabled rules' parts.
AZURE_PARTS: dict[str, tuple[str, ...]] = {
    "azure.server": ("resource",),
    "azure.parameters": ("parameters",),
    "azure.firewall_rules": ("firewall_rules",),
    "azure.backups": ("backups",),
    "azure.databases": ("databases",),
    "azure.administrators": ("administrators",),
    "azure.private_endpoint_connections": ("private_endpoint_connections",),
    "azure.replicas": ("replicas",),
    "azure.threat_protection": ("threat_protection_state",),
    "azure.diagnostic_settings": ("diagnostic_settings",),
    "azure.metric_alerts": ("metric_alerts",),
}
POSTGRES_PARTS: dict[str, tuple[str, ...]] = {
    "postgres.server_version": ("server_version_num", "server_version"),
    "postgres.settings": ("settings",),
    "postgres.connections": ("connections",),
    "postgres.own_session": ("own_session",),
    "postgres.client_sessions": ("client_sessions",),
    "postgres.vacuums": ("vacuums",),
    "postgres.extensions": ("extensions",),
    "postgres.vector_columns": ("vector_columns",),
    "postgres.vector_indexes": ("vector_indexes",),
    "postgres.invalid_indexes": ("invalid_indexes",),
    "postgres.tables": ("tables",),
    "postgres.database_size": ("database_size_bytes",),
    "postgres.statements": ("statements",),
    "postgres.session_retention": ("session_retention", "retention"),
    "postgres.soft_deleted": ("soft_deleted",),
    "postgres.expired_facts": ("expired_facts",),
}
DSN_PARTS: dict[str, tuple[str, ...]] = {"dsn.entries": ("entries",)}

# Where each part comes from, for the evidence a report shows next to a finding (the ARM
# permission the collector needs, or the catalog the PostgreSQL query reads).
_FLEX = "Microsoft.DBforPostgreSQL/flexibleServers"
PART_EVIDENCE: dict[str, str] = {
    "azure.server": f"ARM: the server resource ({_FLEX}/read)",
    "azure.parameters": f"ARM: server parameters ({_FLEX}/configurations/read)",
    "azure.firewall_rules": f"ARM: firewall rules ({_FLEX}/firewallRules/read)",
    "azure.backups": f"ARM: backups ({_FLEX}/backups/read)",
    "azure.databases": f"ARM: databases ({_FLEX}/databases/read)",
    "azure.administrators": f"ARM: Entra administrators ({_FLEX}/administrators/read)",
    "azure.private_endpoint_connections": (
        f"ARM: private endpoint connections ({_FLEX}/privateEndpointConnections/read)"
    ),
    "azure.replicas": f"ARM: replicas ({_FLEX}/replicas/read)",
    "azure.threat_protection": (
        f"ARM: advanced threat protection ({_FLEX}/advancedThreatProtectionSettings/read)"
    ),
    "azure.diagnostic_settings": "ARM: diagnostic settings (Microsoft.Insights/diagnosticSettings/read)",
    "azure.metric_alerts": "ARM: metric alerts (Microsoft.Insights/metricAlerts/read)",
    "postgres.server_version": "PostgreSQL: server_version_num, server_version",
    "postgres.settings": "PostgreSQL: pg_catalog.pg_settings",
    "postgres.connections": "PostgreSQL: pg_catalog.pg_stat_activity",
    "postgres.own_session": "PostgreSQL: pg_catalog.pg_stat_ssl of the audit session",
    "postgres.client_sessions": "PostgreSQL: pg_catalog.pg_stat_ssl joined with pg_stat_activity",
    "postgres.vacuums": "PostgreSQL: pg_catalog.pg_stat_progress_vacuum",
    "postgres.extensions": "PostgreSQL: pg_catalog.pg_extension, pg_available_extensions",
    "postgres.vector_columns": "PostgreSQL: pg_catalog.pg_attribute and pg_type (vector types)",
    "postgres.vector_indexes": "PostgreSQL: pg_catalog.pg_index, pg_class, pg_am, pg_opclass",
    "postgres.invalid_indexes": "PostgreSQL: pg_catalog.pg_index (indisvalid)",
    "postgres.tables": "PostgreSQL: pg_catalog.pg_stat_all_tables and reloptions",
    "postgres.database_size": "PostgreSQL: pg_catalog.pg_database_size()",
    "postgres.statements": "PostgreSQL: pg_stat_statements",
    "postgres.session_retention": "PostgreSQL: a count of rows past the retention age",
    "postgres.expired_facts": "PostgreSQL: a count of rows whose validity has ended",
    "dsn.entries": "Environment: application connection strings, parsed as libpq reads them",
}
PARTS: dict[str, tuple[str, ...]] = {**AZURE_PARTS, **POSTGRES_PARTS, **DSN_PARTS}


def part_source(part: str) -> Source:
    return Source(part.split(".", 1)[0])


def _hidden_fields(parts: dict[str, tuple[str, ...]], reads: frozenset[str]) -> list[str]:
    return [field for part, fields in parts.items() if part not in reads for field in fields]


def restrict_server(server: AzureServer, reads: frozenset[str]) -> AzureServer:
    """The server as a check that declared ``reads`` may see it: other parts look uncollected."""
    update: dict[str, Any] = dict.fromkeys(_hidden_fields(AZURE_PARTS, reads))
    if "resource" in update:
        update["resource"] = {}
    return server.model_copy(update=update) if update else server


def restrict_database(database: PostgresDatabase, reads: frozenset[str]) -> PostgresDatabase:
    update = dict.fromkeys(_hidden_fields(POSTGRES_PARTS, reads))
    return database.model_copy(update=update) if update else database
