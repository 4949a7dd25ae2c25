"""Live PostgreSQL collector: one read-only session, one transaction, a fixed set of queries.

The audited database's owner is not trusted (see ``session``): the session's settings come
in the startup packet (``search_path=pg_catalog``, read-only, ``row_security=off``, timeouts)
and are read back before anything else; if any is not in force (a pooler that dropped the
startup options) nothing is collected and one issue says why. Everything is then read inside
one ``BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`` transaction (one consistent view; a
write is impossible even for a function that tried), which is rolled back at the end.

Each query fills one or a few ``PostgresDatabase`` fields inside its own savepoint: when one
fails (a missing privilege, a timeout, a value that does not convert) those fields stay
``None`` with a ``CollectionIssue`` naming the part and the cause, and the rest is still
collected. Rows the role is not allowed to see (other roles' sessions, statements, vacuums
without ``pg_read_all_stats``) are counted and reported, never dropped or read as zero. A
server that cannot be reached, refuses the login or fails the session check is one issue
with ``part=None``.

The database audited is the policy's (``plan.database``), whatever the DSN names: Azure's
connection strings point at ``postgres`` and the policy, not the caller, decides scope.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, TypeVar

import psycopg
from azure.core.credentials import TokenCredential
from psycopg import errors, sql
from psycopg.rows import dict_row

from engram_audit.collectors.dsn import DsnError, dsn_secrets, loose_target, parse_dsn, scrub
from engram_audit.collectors.postgres import queries as pg_queries
from engram_audit.collectors.postgres import session as pg_session
from engram_audit.collectors.postgres.request import PostgresRequest
from engram_audit.collectors.progress import StatusLine, seconds_left
from engram_audit.model.base import Source
from engram_audit.model.plan import (
    CollectionPlan,
    ExpiredFactsPlan,
    SessionRetentionPlan,
    SoftDeletedPlan,
)
from engram_audit.model.snapshot import (
    CollectionIssue,
    CollectionNote,
    ConnectionState,
    ExpiredFactsCount,
    Extension,
    IndexRef,
    PgSetting,
    PostgresDatabase,
    PostgresSection,
    RetentionCounts,
    RunningVacuum,
    SessionTls,
    SoftDeletedCount,
    StatementStat,
    TableStats,
    TenantCount,
    VectorColumn,
    VectorIndex,
)
from engram_audit.model.values import as_bool, pg_bool
from engram_audit.redaction import SECRETS

__all__ = ["ENTRA_SCOPE", "PostgresCollection", "PostgresRequest", "collect_postgres"]

APPLICATION_NAME = "engram-audit"
ENTRA_SCOPE = pg_session.ENTRA_SCOPES["AzureCloud"]
MONITOR_PRIVILEGE = "pg_monitor (pg_read_all_stats, pg_read_all_settings)"
STATS_PRIVILEGE = "pg_read_all_stats (granted by pg_monitor)"
# Parts read only within the policy's schemas: unknown (not empty) when a schema is missing.
SCHEMA_PARTS = ("vector_columns", "vector_indexes", "invalid_indexes", "tables")
# pg_class.relkind values that are not plain or partitioned tables, for the retention check.
_RELKINDS = {
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
    "c": "composite type",
    "i": "index",
    "I": "partitioned index",
    "t": "TOAST table",
}
# What a row conversion may raise on a value it cannot take (NULL where a value is required,
# a type the model rejects; pydantic's ValidationError is a ValueError); psycopg raises
# NotImplementedError for a timestamp in a DateStyle it cannot parse.
_UNCONVERTIBLE = (ValueError, TypeError, KeyError, ArithmeticError, NotImplementedError)

Row = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class PostgresCollection:
    section: PostgresSection
    issues: tuple[CollectionIssue, ...]
    # Catalog and data queries sent, for the benchmark's "fixed cost" claim; transaction
    # control (BEGIN, SAVEPOINT, RELEASE, ROLLBACK) is not counted.
    queries: int = 0
    notes: tuple[CollectionNote, ...] = ()


def collect_postgres(
    request: PostgresRequest,
    plan: CollectionPlan,
    *,
    credential: TokenCredential | None = None,
    environ: Mapping[str, str] | None = None,
    show_progress: bool = False,
) -> PostgresCollection:
    """Collect the plan's database; never raises for an unreachable or unwilling server.
    ``show_progress``: a status line on stderr when it is a terminal (steps, elapsed, estimate).
    """
    environment = os.environ if environ is None else environ
    try:
        parameters = parse_dsn(request.dsn) if request.dsn.strip() else {}
    except DsnError as error:
        target = f"{_target_host(loose_target(request.dsn), environment)}/{plan.database}"
        return _unreachable(target, f"cannot connect to {target}: {error}")
    target = f"{_target_host(parameters, environment)}/{plan.database}"
    named = parameters.get("dbname") or environment.get("PGDATABASE") or None
    collection = _collect(
        request, plan, parameters, environment, target, named, credential, show_progress
    )
    if named is None or named == plan.database:
        return collection
    note = CollectionNote(
        source=Source.POSTGRES,
        resource=target,
        note=database_note(plan.database, named),
    )
    return dataclasses.replace(collection, notes=(note, *collection.notes))


def database_note(audited: str, named: str) -> str:
    """Which database is audited when the DSN names another, and why."""
    return (
        f"audited database {audited!r}, the policy's scope.database, not {named!r}, which the "
        f"connection string names: the policy decides what is audited (Azure's connection "
        f"strings name 'postgres'); to audit {named!r}, set scope.database: {named} in the policy"
    )


def _collect(
    request: PostgresRequest,
    plan: CollectionPlan,
    parameters: dict[str, str],
    environment: Mapping[str, str],
    target: str,
    named: str | None,
    credential: TokenCredential | None,
    show_progress: bool = False,
) -> PostgresCollection:
    try:
        tls = pg_session.tls_choice(parameters, environment, entra_auth=request.entra_auth)
        scope = pg_session.entra_scope(request.cloud) if request.entra_auth else ""
    except DsnError as error:  # before any token is fetched or any byte is sent
        return _unreachable(target, f"refusing to connect to {target}: {error}")
    secrets = dsn_secrets(request.dsn)
    if request.entra_auth:
        try:
            token = _entra_token(credential, scope, request.cloud)
        except Exception as error:  # any credential failure is a clear line, never a traceback
            return _unreachable(
                target,
                f"cannot get an Entra ID access token to log in to {target}: {_first_line(error)}",
            )
        parameters["password"] = token
        secrets += (token,)
        SECRETS.register(token)  # so no later output (logs, reports) can echo it either
    try:
        connection = psycopg.connect(
            **_session_parameters(parameters, request, plan, tls.parameters),
            autocommit=True,
            row_factory=dict_row,
        )
    except psycopg.Error as error:
        reason = _connect_failure(target, request, error, plan.database, named)
        return _unreachable(target, scrub(reason, secrets))
    except UnicodeError:  # the resolver's IDNA encoding refused a host name (a label > 63)
        return _unreachable(target, f"cannot connect to {target}: invalid host name")
    with connection:
        return _Collector(connection, plan, request, secrets, show_progress).collect()


def _session_parameters(
    parameters: Mapping[str, str],
    request: PostgresRequest,
    plan: CollectionPlan,
    tls: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The DSN's parameters with the auditor's: ours come last, so they win (libpq and the
    server both apply the last ``-c`` of a setting)."""
    guards = pg_session.startup_options(request)
    options = f"{parameters['options']} {guards}" if parameters.get("options") else guards
    return {
        **parameters,
        **(tls or {}),
        "dbname": plan.database,
        "application_name": APPLICATION_NAME,
        "connect_timeout": max(2, int(request.connect_timeout_seconds)),
        "options": options,
    }


def _entra_token(credential: TokenCredential | None, scope: str, cloud: str) -> str:
    if credential is None:
        # Imported here: azure-identity is only needed by those who ask for Entra logins.
        from azure.identity import AzureAuthorityHosts, DefaultAzureCredential

        authority = {
            "AzureChinaCloud": AzureAuthorityHosts.AZURE_CHINA,
            "AzureUSGovernment": AzureAuthorityHosts.AZURE_GOVERNMENT,
        }.get(cloud, AzureAuthorityHosts.AZURE_PUBLIC_CLOUD)
        return DefaultAzureCredential(authority=authority).get_token(scope).token
    return credential.get_token(scope).token


def _target_host(parameters: Mapping[str, str], environ: Mapping[str, str]) -> str:
    host = (
        parameters.get("host")
        or parameters.get("hostaddr")
        or environ.get("PGHOST")
        or environ.get("PGHOSTADDR")
    )
    service = parameters.get("service") or environ.get("PGSERVICE")
    if not host and service:
        host = f"service={service}"
    port = parameters.get("port") or environ.get("PGPORT") or "5432"
    return f"{host or 'localhost'}:{port}"


def _connect_failure(
    target: str,
    request: PostgresRequest,
    error: psycopg.Error,
    database: str,
    named: str | None,
) -> str:
    if isinstance(error, psycopg.errors.ConnectionTimeout):
        why = f"no answer within the {request.connect_timeout_seconds} s connect timeout"
    else:
        why = _first_meaningful(error)
        if f'database "{database}" does not exist' in why:
            dsn = f"the connection string names {named!r}" if named else "the DSN names none"
            why += (
                f". The database audited is the policy's scope.database ({database!r}); {dsn}. "
                "Set scope.database in the policy to the database Zep uses (Zep's own default "
                "is 'postgres': github.com/getzep/zep config.yaml@v0.27.2 and zep.yaml@v1.0.2), "
                "or connect to the server that holds it"
            )
    return f"cannot connect to {target}: {why}"


def _unreachable(target: str, reason: str) -> PostgresCollection:
    issue = CollectionIssue(source=Source.POSTGRES, resource=target, part=None, reason=reason)
    return PostgresCollection(section=PostgresSection(databases=()), issues=(issue,))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


def _first_meaningful(error: BaseException) -> str:
    """libpq errors span lines ("connection failed: ... \\n\\tIs the server running..."): join."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    text = re.sub(r"\s+", " ", text.removeprefix("connection failed: "))
    return text or type(error).__name__


def _conninfo(connection: psycopg.Connection[Row]) -> dict[str, str]:
    """The options libpq used for this connection (PQconninfo): defaults and files included."""
    return {
        option.keyword.decode(): option.val.decode()
        for option in connection.pgconn.info
        if option.val is not None
    }


class _Refused(Exception):
    """The session's safeguards are not in force: nothing may be read."""


# --- the collection --------------------------------------------------------------------------


_FIXED_STEPS = 7  # server, settings, sessions, vacuums, extensions, schemas, statements
_SCHEMA_STEPS = ("vector columns", "vector indexes", "invalid indexes", "tables")
"""Steps that run only when the policy's schemas exist."""


class _Collector:
    """Runs the fixed query set in one transaction and turns rows into snapshot models."""

    def __init__(
        self,
        connection: psycopg.Connection[Row],
        plan: CollectionPlan,
        request: PostgresRequest,
        secrets: tuple[str, ...],
        show_progress: bool = False,
    ) -> None:
        self.connection = connection
        self.plan = plan
        self.request = request
        self.secrets = secrets
        info = connection.info
        self.host = info.host
        self.port = info.port
        self.target = f"{info.host}:{info.port}/{info.dbname}"
        self.sslmode = _conninfo(connection).get("sslmode")
        self.issues: list[CollectionIssue] = []
        self.notes: list[CollectionNote] = []
        self.queries = 0
        self.status = StatusLine(enabled=show_progress)
        counts = len(plan.retention) + len(plan.soft_deleted) + (plan.expired_facts is not None)
        self.steps_total = _FIXED_STEPS + len(_SCHEMA_STEPS) + (counts + 1 if counts else 0)
        self.steps_done = -1  # _step counts the step before it as done
        self.scope = {
            "schemas": list(plan.schemas),
            "vector_types": list(pg_queries.VECTOR_TYPES),
            "vector_methods": list(pg_queries.VECTOR_METHODS),
        }

    def collect(self) -> PostgresCollection:
        self.connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.connection.read_only = True
        try:
            # BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY ... ROLLBACK: nothing to commit.
            with self.connection.transaction(force_rollback=True):
                self._verify_session()
                fields = self._collect_parts()
        except _Refused as refusal:
            return _unreachable(self.target, scrub(str(refusal), self.secrets))
        except psycopg.Error as error:  # BEGIN itself failed, or the connection was lost
            return _unreachable(
                self.target,
                scrub(f"cannot collect from {self.target}: {_first_line(error)}", self.secrets),
            )
        database = PostgresDatabase(
            target=self.target,
            host=self.host,
            port=self.port,
            database=self.plan.database,
            **fields,
        )
        return PostgresCollection(
            section=PostgresSection(databases=(database,)),
            issues=tuple(self.issues),
            queries=self.queries,
            notes=tuple(self.notes),
        )

    def _verify_session(self) -> None:
        """Read the startup settings back inside the transaction; raise ``_Refused`` if any
        is not in force (a pooler that drops startup options, an ``options`` the server
        ignored)."""
        expected = pg_session.expected_settings(self.request)
        self.queries += 1
        with self.connection.cursor() as cursor:
            cursor.execute(pg_queries.settings_in_force(list(expected)))
            observed = cursor.fetchone() or {}
        problems = pg_session.session_problems(observed, self.request)
        if problems:
            raise _Refused(
                f"refusing to collect from {self.target}: the audit session's safeguards are "
                f"not in force: {'; '.join(problems)}. A connection pooler (PgBouncer, port "
                "6432) may have dropped the startup options: connect to the server's own port"
            )

    def _collect_parts(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        try:
            self._step("server")
            fields.update(self._server())
            self._step("settings")
            fields["settings"] = self._settings()
            self._step("sessions")
            fields.update(self._sessions())
            self._step("vacuums")
            fields["vacuums"] = self._vacuums()
            self._step("extensions")
            fields["extensions"] = self._extensions()
            self._step("schemas")
            if self._schemas_exist():
                self._step(_SCHEMA_STEPS[0])
                fields["vector_columns"] = self._vector_columns()
                self._step(_SCHEMA_STEPS[1])
                fields["vector_indexes"] = self._vector_indexes()
                self._step(_SCHEMA_STEPS[2])
                fields["invalid_indexes"] = self._invalid_indexes()
                self._step(_SCHEMA_STEPS[3])
                fields["tables"] = self._tables()
            else:
                self.steps_total -= len(_SCHEMA_STEPS)
            self._step("statements")
            fields["statements"] = self._statements(fields["extensions"])
            fields.update(self._counts())
        finally:
            self.status.done()
        return fields

    def _step(self, doing: str) -> None:
        """The previous step is done; show the one starting (a terminal only)."""
        self.steps_done += 1
        if not self.status.enabled:
            return
        elapsed = self.status.elapsed
        left = seconds_left(self.steps_done, self.steps_total, elapsed)
        estimate = f", ~{left:.0f} s left" if left is not None else ""
        self.status.show(
            f"PostgreSQL {self.target}: {self.steps_done}/{self.steps_total} steps, {doing}, "
            f"{elapsed:.1f} s{estimate}"
        )

    # --- running queries ------------------------------------------------------------------

    def _read(
        self,
        query: str | sql.Composed,
        params: Mapping[str, Any] | None,
        parts: Sequence[str],
        privilege: str,
        convert: Callable[[list[Row]], T],
        *,
        resource: str | None = None,
    ) -> T | None:
        """``convert(rows)``, or None after recording why on each part the query was to fill.

        The query and the conversion run in a savepoint: a failure rolls back to it, so the
        transaction (and the rest of the collection) goes on. ``resource`` names what the
        issue is about when it is narrower than the database (one counted table).
        """
        if self.connection.broken:
            self._note(
                parts, "not collected: the connection to the server was lost", resource=resource
            )
            return None
        self.queries += 1
        try:
            with self.connection.transaction():
                with self.connection.cursor() as cursor:
                    cursor.execute(query, params)
                    rows = cursor.fetchall()
                return convert(rows)
        except psycopg.Error as error:
            self._note(parts, self._query_failure(error, privilege), resource=resource)
        except _UNCONVERTIBLE as error:
            self._note(
                parts, f"unexpected value from the server: {_first_line(error)}", resource=resource
            )
        return None

    def _query_failure(self, error: psycopg.Error, privilege: str) -> str:
        message = _first_line(error)
        if isinstance(error, errors.InsufficientPrivilege):
            if "row-level security" in message:
                return (
                    f"{message}: the count would only include the rows a policy lets this "
                    "role see, so it is not taken (row_security=off)"
                )
            return f"{message}: the audit role needs {privilege}"
        if isinstance(error, errors.QueryCanceled):
            return f"{message} (statement_timeout bounds each query; raise --statement-timeout)"
        if isinstance(error, errors.LockNotAvailable):
            return f"{message} (lock_timeout)"
        return message

    def _note(self, parts: Sequence[str], reason: str, *, resource: str | None = None) -> None:
        for part in parts:
            self.issues.append(
                CollectionIssue(
                    source=Source.POSTGRES,
                    resource=resource or self.target,
                    part=part,
                    reason=scrub(reason, self.secrets),
                )
            )

    def _in_scope(self, schema: str, table: str) -> bool:
        names = (table, f"{schema}.{table}")
        return not any(
            fnmatchcase(name, pattern) for pattern in self.plan.exclude_tables for name in names
        )

    # --- server-wide ------------------------------------------------------------------------

    def _server(self) -> dict[str, Any]:
        parts = ("server_version_num", "server_version", "database_size_bytes")

        def convert(rows: list[Row]) -> dict[str, Any]:
            [row] = rows
            return {part: row[part] for part in parts}

        return self._read(pg_queries.SERVER, None, parts, "CONNECT on the database", convert) or {}

    def _settings(self) -> dict[str, PgSetting] | None:
        def convert(rows: list[Row]) -> dict[str, PgSetting]:
            return {
                row["name"]: PgSetting(
                    setting=row["setting"], unit=row["unit"], source=row["source"]
                )
                for row in rows
            }

        return self._read(pg_queries.SETTINGS, None, ("settings",), MONITOR_PRIVILEGE, convert)

    def _sessions(self) -> dict[str, Any]:
        parts = ("connections", "own_session", "client_sessions")
        return (
            self._read(pg_queries.SESSIONS, None, parts, MONITOR_PRIVILEGE, self._session_fields)
            or {}
        )

    def _session_fields(self, rows: list[Row]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        own = next((row for row in rows if row["own"]), None)
        if own is None or own["ssl"] is None:
            self._note(("own_session",), "the session's own row is missing from pg_stat_ssl")
        else:
            fields["own_session"] = _session_tls(own, sslmode=self.sslmode)
        hidden = sum(1 for row in rows if row["hidden"])
        if hidden:
            # Unknown must not read as "no plaintext session": leave both parts uncollected.
            self._note(
                ("connections", "client_sessions"),
                f"{hidden} server process(es) are hidden from this role (no state, no TLS "
                f"details): it needs {MONITOR_PRIVILEGE}",
            )
            return fields
        states = Counter(str(row["state"]) for row in rows)
        fields["connections"] = tuple(
            ConnectionState(state=state, count=count) for state, count in sorted(states.items())
        )
        fields["client_sessions"] = tuple(_session_tls(row) for row in rows if not row["own"])
        return fields

    def _vacuums(self) -> tuple[RunningVacuum, ...] | None:
        def convert(rows: list[Row]) -> tuple[RunningVacuum, ...] | None:
            hidden = sum(1 for row in rows if row["hidden"])
            if hidden:
                # A vacuum we cannot see could be the long one: unknown, not "none running".
                self._note(
                    ("vacuums",),
                    f"{hidden} running vacuum(s) are hidden from this role (no relation, phase "
                    f"or start time; autovacuum workers included): it needs {STATS_PRIVILEGE}",
                )
                return None
            return tuple(_running_vacuum(row) for row in rows)

        return self._read(pg_queries.VACUUMS, None, ("vacuums",), MONITOR_PRIVILEGE, convert)

    # --- the database -------------------------------------------------------------------------

    def _extensions(self) -> tuple[Extension, ...] | None:
        def convert(rows: list[Row]) -> tuple[Extension, ...]:
            return tuple(
                Extension(
                    name=row["name"],
                    version=row["version"],
                    schema_name=row["schema_name"],
                    default_version=row["default_version"],
                )
                for row in rows
            )

        return self._read(pg_queries.EXTENSIONS, None, ("extensions",), MONITOR_PRIVILEGE, convert)

    def _schemas_exist(self) -> bool:
        """Whether every schema of the policy's scope exists; if not, the parts read within
        the scope are not collected (an issue each), rather than read as empty.

        With ``allow_empty`` (``--allow-empty``) a missing schema counts as an empty one: the
        parts are read in the schemas that exist, and when none does they stay uncollected
        with a note each instead of an issue, so their rules are SKIP with the note's reason.
        """
        if not self.plan.schemas:
            reason = "the policy's scope.schemas is empty: nothing to read"
            if self.request.allow_empty:
                self._accept_empty(SCHEMA_PARTS, f"{reason} (accepted by --allow-empty)")
            else:
                self._note(SCHEMA_PARTS, reason)
            return False
        rows = self._read(
            pg_queries.SCHEMAS_IN_SCOPE,
            {"schemas": list(self.plan.schemas)},
            SCHEMA_PARTS,
            "CONNECT on the database",
            lambda rows: rows,
        )
        if rows is None:
            return False
        missing = [row["schema_name"] for row in rows if not row["found"]]
        if missing:
            names = ", ".join(f'"{name}"' for name in missing)
            reason = (
                f"the policy's scope.schemas names schema(s) that do not exist in database "
                f"{self.plan.database}: {names}"
            )
            if not self.request.allow_empty:
                self._note(SCHEMA_PARTS, reason)
                return False
            if len(missing) == len(rows):
                self._accept_empty(SCHEMA_PARTS, f"{reason}; --allow-empty accepts an empty scope")
                return False
            self.notes.append(
                CollectionNote(
                    source=Source.POSTGRES,
                    resource=self.target,
                    note=f"{reason}; --allow-empty counts them as empty",
                )
            )
        return True

    def _accept_empty(self, parts: Sequence[str], reason: str) -> None:
        self.notes.extend(
            CollectionNote(source=Source.POSTGRES, resource=self.target, part=part, note=reason)
            for part in parts
        )

    def _vector_columns(self) -> tuple[VectorColumn, ...] | None:
        def convert(rows: list[Row]) -> tuple[VectorColumn, ...]:
            return tuple(
                VectorColumn(
                    schema_name=row["schema_name"],
                    table=row["table_name"],
                    column=row["column_name"],
                    type=row["type_name"],
                    dimensions=row["dimensions"],
                )
                for row in rows
                if self._in_scope(row["schema_name"], row["table_name"])
            )

        return self._read(
            pg_queries.VECTOR_COLUMNS, self.scope, ("vector_columns",), MONITOR_PRIVILEGE, convert
        )

    def _vector_indexes(self) -> tuple[VectorIndex, ...] | None:
        def convert(rows: list[Row]) -> tuple[VectorIndex, ...]:
            return tuple(
                VectorIndex(
                    schema_name=row["schema_name"],
                    table=row["table_name"],
                    name=row["index_name"],
                    columns=tuple(row["columns"]),
                    table_columns=tuple(row["table_columns"]),
                    method=row["method"],
                    opclasses=tuple(row["opclasses"]),
                    options=_reloptions(row["reloptions"]),
                    valid=row["valid"],
                )
                for row in rows
                if self._in_scope(row["schema_name"], row["table_name"])
            )

        return self._read(
            pg_queries.VECTOR_INDEXES, self.scope, ("vector_indexes",), MONITOR_PRIVILEGE, convert
        )

    def _invalid_indexes(self) -> tuple[IndexRef, ...] | None:
        def convert(rows: list[Row]) -> tuple[IndexRef, ...]:
            return tuple(
                IndexRef(
                    schema_name=row["schema_name"],
                    table=row["table_name"],
                    name=row["index_name"],
                    definition=row["definition"],
                )
                for row in rows
                if self._in_scope(row["schema_name"], row["table_name"])
            )

        return self._read(
            pg_queries.INVALID_INDEXES, self.scope, ("invalid_indexes",), MONITOR_PRIVILEGE, convert
        )

    def _tables(self) -> tuple[TableStats, ...] | None:
        def convert(rows: list[Row]) -> tuple[TableStats, ...]:
            return tuple(
                TableStats(
                    schema_name=row["schema_name"],
                    table=row["table_name"],
                    n_live_tup=row["n_live_tup"],
                    n_dead_tup=row["n_dead_tup"],
                    last_vacuum=row["last_vacuum"],
                    last_autovacuum=row["last_autovacuum"],
                    last_analyze=row["last_analyze"],
                    last_autoanalyze=row["last_autoanalyze"],
                    autovacuum_enabled=as_bool(
                        _reloptions(row["reloptions"]).get("autovacuum_enabled")
                    ),
                    # ``toast.autovacuum_enabled`` is stored on the TOAST table itself, as its
                    # own ``autovacuum_enabled`` (reloptions.c, RELOPT_KIND_TOAST).
                    toast_autovacuum_enabled=_toast_autovacuum(row["toast_reloptions"]),
                )
                for row in rows
                if self._in_scope(row["schema_name"], row["table_name"])
            )

        return self._read(pg_queries.TABLES, self.scope, ("tables",), MONITOR_PRIVILEGE, convert)

    def _statements(
        self, extensions: tuple[Extension, ...] | None
    ) -> tuple[StatementStat, ...] | None:
        if extensions is None:
            self._note(
                ("statements",),
                "unknown whether pg_stat_statements is installed: "
                "the extension list could not be read",
            )
            return None
        installed = next((ext for ext in extensions if ext.name == "pg_stat_statements"), None)
        if installed is None or installed.schema_name is None:
            # Not a collection failure: the extension list already says it is absent, so
            # pg.queries.slow skips with that reason and the run stays complete.
            return None
        mean_column = (
            "mean_exec_time" if _version_at_least(installed.version, (1, 8)) else "mean_time"
        )

        def convert(rows: list[Row]) -> tuple[StatementStat, ...] | None:
            hidden = rows[0]["hidden"] if rows else 0
            if hidden:
                # Their timings may be the slow ones: a partial view must not pass.
                self._note(
                    ("statements",),
                    f"{hidden} statement(s) of other roles are hidden from this role (no "
                    f"queryid, no text): it needs {STATS_PRIVILEGE}",
                )
                return None
            return tuple(
                StatementStat(
                    queryid=row["queryid"],
                    calls=row["calls"],
                    mean_exec_time_ms=row["mean_ms"],
                    # Text is shown, never judged: a missing text is not an unknown verdict.
                    query=_mask_secret_literals(row["query"] or ""),
                )
                for row in rows
            )

        return self._read(
            pg_queries.statements(installed.schema_name, mean_column),
            None,
            ("statements",),
            f"{MONITOR_PRIVILEGE} and EXECUTE on the pg_stat_statements functions",
            convert,
        )

    # --- retention, soft deletes, expired facts (counts only) -----------------------------------

    def _relation(self, table: str) -> tuple[str, str]:
        """``schema.table`` as given, else the table in the first schema in scope."""
        schema, dot, name = table.partition(".")
        return (
            (schema, name)
            if dot
            else (self.plan.schemas[0] if self.plan.schemas else "public", table)
        )

    def _counts(self) -> dict[str, Any]:
        """Every count the plan asks for. The columns of all of them are checked in one
        catalog query first; then one count per table, each in its own savepoint."""
        retention = [
            (plan, _retention_count(plan, self._relation(plan.table)))
            for plan in self.plan.retention
        ]
        soft_deleted = [
            (plan, _soft_deleted_count(plan, self._relation(plan.table)))
            for plan in self.plan.soft_deleted
        ]
        facts = self.plan.expired_facts
        facts_count = (
            None
            if facts is None
            else _Count(
                part="expired_facts",
                table=facts.table,
                relation=self._relation(facts.table),
                age=facts.valid_to_column,
                whole_part=True,
            )
        )
        requests = [r for _, r in retention] + [r for _, r in soft_deleted]
        requests += [facts_count] if facts_count is not None else []
        if not requests:
            return {}
        self._step("columns of the counted tables")
        columns = self._count_columns(requests)
        fields: dict[str, Any] = {}
        if retention:
            counted = []
            for retention_plan, request in retention:
                self._counting(request)
                counted.append(self._retention(retention_plan, request, columns))
            fields["retention"] = tuple(c for c in counted if c is not None)
        if soft_deleted:
            found = []
            for soft_plan, request in soft_deleted:
                self._counting(request)
                found.append(self._soft_deleted(soft_plan, request, columns))
            fields["soft_deleted"] = tuple(c for c in found if c is not None)
        if facts is not None and facts_count is not None:
            self._counting(facts_count)
            fields["expired_facts"] = self._expired_facts(facts, facts_count, columns)
        return fields

    def _counting(self, request: _Count) -> None:
        self._step(f"counting rows of {request.table}")

    def _issue_resource(self, request: _Count) -> str | None:
        """Issues about one counted table name it, as the policy does, after the database."""
        return None if request.whole_part else f"{self.target}/{request.table}"

    def _count_columns(self, requests: list[_Count]) -> dict[tuple[str, str, str], Row] | str:
        """The catalog row of every (schema, table, column) the counts use, or why the query
        failed (then noted on each count's own part by ``_countable``)."""
        wanted = sorted({(*r.relation, column) for r in requests for column in r.columns})
        noted = len(self.issues)
        rows = self._read(
            pg_queries.RELATION_COLUMNS,
            {
                "schemas": [schema for schema, _, _ in wanted],
                "tables": [table for _, table, _ in wanted],
                "columns": [column for _, _, column in wanted],
            },
            ("columns",),
            "CONNECT on the database",
            lambda rows: rows,
        )
        if rows is None:
            failure = self.issues[noted:]
            del self.issues[noted:]
            return failure[0].reason if failure else "the catalog could not be read"
        return {wanted[row["position"] - 1]: row for row in rows}

    def _countable(
        self, request: _Count, columns: dict[tuple[str, str, str], Row] | str
    ) -> str | None:
        """Whether the count may be taken: the relation is a table and its columns have
        built-in types (else an issue on the request's part and no count: a view or an
        owner-defined type decides what a count shows). Returns the soft-delete column to
        leave set rows out by (``""``: none, or the table has no such optional column), or None
        when the count must not be taken."""
        resource = self._issue_resource(request)
        if isinstance(columns, str):
            self._note((request.part,), columns, resource=resource)
            return None
        schema, table = request.relation
        rows = [columns[(schema, table, column)] for column in request.columns]
        deleted = request.deleted or ""
        if request.optional is not None:
            found = columns[(schema, table, request.optional)]
            if not found["column_found"] and found["relation_found"]:
                rows = [row for row in rows if row is not found]
                deleted = ""
        problem = _count_problem(schema, table, request.age, rows)
        if problem:
            self._note((request.part,), problem, resource=resource)
            return None
        return deleted

    def _retention(
        self,
        plan: SessionRetentionPlan,
        request: _Count,
        columns: dict[tuple[str, str, str], Row] | str,
    ) -> RetentionCounts | None:
        deleted = self._countable(request, columns)
        if deleted is None:
            return None
        schema, table = request.relation
        tenants = sorted(plan.tenant_max_age_days)
        params = {
            "default_days": plan.default_max_age_days,
            "tenants": tenants,
            "tenant_days": [plan.tenant_max_age_days[tenant] for tenant in tenants],
            "min_days": min([plan.default_max_age_days, *plan.tenant_max_age_days.values()]),
        }

        def convert(rows: list[Row]) -> RetentionCounts:
            counts = tuple(
                TenantCount(
                    tenant=row["tenant"],
                    max_age_days=plan.tenant_max_age_days.get(
                        row["tenant"], plan.default_max_age_days
                    ),
                    count=row["rows"],
                )
                for row in rows
            )
            return RetentionCounts(
                table=plan.table,
                schema_name=schema,
                age_column=plan.age_column,
                tenant_column=plan.tenant_column,
                default_max_age_days=plan.default_max_age_days,
                tenant_max_age_days=dict(plan.tenant_max_age_days),
                deleted_column=deleted or None,
                counts=counts,
            )

        return self._read(
            pg_queries.rows_past_age(
                schema, table, plan.age_column, plan.tenant_column, deleted or None
            ),
            params,
            (request.part,),
            f"SELECT on {schema}.{table}",
            convert,
            resource=self._issue_resource(request),
        )

    def _soft_deleted(
        self,
        plan: SoftDeletedPlan,
        request: _Count,
        columns: dict[tuple[str, str, str], Row] | str,
    ) -> SoftDeletedCount | None:
        if self._countable(request, columns) is None:
            return None
        schema, table = request.relation

        def convert(rows: list[Row]) -> SoftDeletedCount:
            [row] = rows
            return SoftDeletedCount(
                table=plan.table,
                schema_name=schema,
                deleted_column=plan.deleted_column,
                max_age_hours=plan.max_age_hours,
                soft_deleted=row["soft_deleted"],
                stale=row["stale"],
            )

        return self._read(
            pg_queries.soft_deleted_rows(schema, table, plan.deleted_column),
            {"seconds": float(plan.max_age_hours) * 3600},
            (request.part,),
            f"SELECT on {schema}.{table}",
            convert,
            resource=self._issue_resource(request),
        )

    def _expired_facts(
        self,
        plan: ExpiredFactsPlan,
        request: _Count,
        columns: dict[tuple[str, str, str], Row] | str,
    ) -> ExpiredFactsCount | None:
        if self._countable(request, columns) is None:
            return None
        schema, table = request.relation

        def convert(rows: list[Row]) -> ExpiredFactsCount:
            [row] = rows
            return ExpiredFactsCount(
                table=plan.table,
                schema_name=schema,
                valid_to_column=plan.valid_to_column,
                count=row["rows"],
            )

        return self._read(
            pg_queries.expired_rows(schema, table, plan.valid_to_column),
            None,
            (request.part,),
            f"SELECT on {schema}.{table}",
            convert,
        )


@dataclass(frozen=True)
class _Count:
    """One count the plan asks for: which part it fills, the table, and the columns it uses."""

    part: str
    table: str  # as the policy names it
    relation: tuple[str, str]  # (schema, table) where it is looked up
    age: str  # the column compared with now(): a built-in date/time type
    others: tuple[str, ...] = ()  # further columns that must exist (a tenant column)
    optional: str | None = None  # a column left out when the table has none
    deleted: str | None = None  # the soft-delete column whose set rows are not counted
    whole_part: bool = False  # issues about it name the database, not the table

    @property
    def columns(self) -> tuple[str, ...]:
        optional = (self.optional,) if self.optional else ()
        return (self.age, *self.others, *optional)


def _retention_count(plan: SessionRetentionPlan, relation: tuple[str, str]) -> _Count:
    deleted = plan.deleted_column or None
    required = deleted if deleted and plan.deleted_column_required else None
    return _Count(
        part="retention",
        table=plan.table,
        relation=relation,
        age=plan.age_column,
        others=tuple(c for c in (plan.tenant_column, required) if c),
        optional=None if required else deleted,
        deleted=deleted,
    )


def _soft_deleted_count(plan: SoftDeletedPlan, relation: tuple[str, str]) -> _Count:
    return _Count(part="soft_deleted", table=plan.table, relation=relation, age=plan.deleted_column)


# --- row helpers ------------------------------------------------------------------------------


def _session_tls(row: Row, *, sslmode: str | None = None) -> SessionTls:
    if not isinstance(row["ssl"], bool):
        raise ValueError(f"no TLS state in pg_stat_ssl for backend {row['pid']}")
    return SessionTls(
        pid=row["pid"],
        ssl=row["ssl"],
        version=row["tls_version"],
        cipher=row["cipher"],
        usename=row["usename"],
        application_name=row["application_name"],
        client_addr=row["client_addr"],
        backend_type=row["backend_type"],
        sslmode=sslmode,
    )


def _running_vacuum(row: Row) -> RunningVacuum:
    if row["age_seconds"] is None:
        raise ValueError(f"the vacuum of backend {row['pid']} has no start time")
    if row["schema_name"] is not None and row["table_name"] is not None:
        relation = f"{row['schema_name']}.{row['table_name']}"
    else:  # created after this transaction's snapshot, or already dropped
        relation = f"relation oid {row['relid']}"
    return RunningVacuum(
        pid=row["pid"],
        relation=relation,
        phase=row["phase"],
        age_seconds=max(0.0, float(row["age_seconds"])),
    )


def _count_problem(schema: str, table: str, age: str, rows: list[Row]) -> str | None:
    """Why the count over ``schema.table`` must not be taken; None: it may."""
    name = f"{schema}.{table}"
    if not rows or not rows[0]["relation_found"]:
        return f'relation "{name}" does not exist'
    relkind = rows[0]["relkind"]
    if relkind not in ("r", "p"):
        kind = _RELKINDS.get(relkind, f"relkind {relkind!r}")
        return (
            f"{name} is a {kind}, not a table: a count over it would show what its owner's "
            "definition lets through, so it is not taken"
        )
    for row in rows:
        column = row["column_name"]
        if not row["column_found"]:
            return f'column "{column}" does not exist in {name}'
        if row["type_schema"] != "pg_catalog":
            return (
                f'column "{column}" of {name} has type {row["type_shown"]}, defined in the '
                "database: only built-in types are compared (an owner's type brings its own "
                "casts and operators)"
            )
        if column == age and row["type_name"] not in pg_queries.AGE_TYPES:
            return (
                f'column "{column}" of {name} has type {row["type_shown"]}: an age column must '
                "be timestamp with time zone, timestamp or date"
            )
    return None


def _toast_autovacuum(options: Sequence[str] | None) -> bool | None:
    value = _reloptions(options).get("autovacuum_enabled")
    return None if value is None else pg_bool(value)


def _reloptions(options: Sequence[str] | None) -> dict[str, str]:
    pairs = (option.partition("=") for option in options or ())
    return {name: value for name, _, value in pairs}


def _version_at_least(version: str | None, minimum: tuple[int, ...]) -> bool:
    numbers = tuple(int(part) for part in re.findall(r"\d+", version or ""))
    return numbers >= minimum


_SECRET_LITERAL = re.compile(
    r"(?P<key>password|secret|token)(?P<gap>\s*=?\s*)'(?:[^']|'')*'", re.IGNORECASE
)


def _mask_secret_literals(query: str) -> str:
    """Utility statements keep their literals (``ALTER ROLE ... PASSWORD 'x'``): mask them."""
    return _SECRET_LITERAL.sub(lambda m: f"{m['key']}{m['gap']}'****'", query)
