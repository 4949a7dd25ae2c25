"""Live PostgreSQL collector: one read-only session, a fixed set of catalog queries.

The session is read-only from its first statement (``default_transaction_read_only`` in
the startup packet), bounded (``statement_timeout``, ``lock_timeout``, ``connect_timeout``)
and named ``engram-audit``. Each catalog query fills one or a few ``PostgresDatabase``
fields; when one fails (a missing privilege, a timeout) those fields stay ``None`` with a
``CollectionIssue`` naming the part and the cause, and the rest is still collected. A
server that cannot be reached or refuses the login is one issue with ``part=None``.

The database audited is the policy's (``plan.database``), whatever the DSN names: Azure's
connection strings point at ``postgres`` and the policy, not the caller, decides scope.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import psycopg
from azure.core.credentials import TokenCredential
from psycopg import errors, sql
from psycopg.rows import dict_row

from engram_audit.collectors.dsn import DsnError, dsn_secrets, loose_target, parse_dsn, scrub
from engram_audit.collectors.postgres import queries as pg_queries
from engram_audit.collectors.postgres.request import PostgresRequest
from engram_audit.model.base import Source
from engram_audit.model.plan import CollectionPlan
from engram_audit.model.snapshot import (
    CollectionIssue,
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
    StatementStat,
    TableStats,
    TenantCount,
    VectorColumn,
    VectorIndex,
)
from engram_audit.model.values import as_bool
from engram_audit.redaction import SECRETS

__all__ = ["PostgresCollection", "PostgresRequest", "collect_postgres"]

APPLICATION_NAME = "engram-audit"
ENTRA_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"
MONITOR_PRIVILEGE = "pg_monitor (pg_read_all_stats, pg_read_all_settings)"

Row = dict[str, Any]


@dataclass(frozen=True)
class PostgresCollection:
    section: PostgresSection
    issues: tuple[CollectionIssue, ...]
    queries: int = 0  # statements sent to the server, for the benchmark's "fixed cost" claim


def collect_postgres(
    request: PostgresRequest,
    plan: CollectionPlan,
    *,
    credential: TokenCredential | None = None,
    environ: Mapping[str, str] | None = None,
) -> PostgresCollection:
    """Collect the plan's database; never raises for an unreachable or unwilling server."""
    environment = os.environ if environ is None else environ
    try:
        parameters = parse_dsn(request.dsn) if request.dsn.strip() else {}
    except DsnError as error:
        target = f"{_target_host(loose_target(request.dsn), environment)}/{plan.database}"
        return _unreachable(target, f"cannot connect to {target}: {error}")
    target = f"{_target_host(parameters, environment)}/{plan.database}"
    secrets = dsn_secrets(request.dsn)
    if request.entra_auth:
        try:
            token = _entra_token(credential)
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
            **_session_parameters(parameters, request, plan), autocommit=True, row_factory=dict_row
        )
    except psycopg.Error as error:
        return _unreachable(target, scrub(_connect_failure(target, request, error), secrets))
    except UnicodeError:  # the resolver's IDNA encoding refused a host name (a label > 63)
        return _unreachable(target, f"cannot connect to {target}: invalid host name")
    with connection:
        return _Collector(connection, plan, secrets).collect()


def _session_parameters(
    parameters: Mapping[str, str], request: PostgresRequest, plan: CollectionPlan
) -> dict[str, Any]:
    guards = (
        "-c default_transaction_read_only=on"
        f" -c statement_timeout={int(request.statement_timeout_ms)}"
        f" -c lock_timeout={int(request.statement_timeout_ms)}"
        f" -c idle_in_transaction_session_timeout={int(request.statement_timeout_ms)}"
    )
    options = f"{parameters['options']} {guards}" if parameters.get("options") else guards
    return {
        **parameters,
        "dbname": plan.database,
        "application_name": APPLICATION_NAME,
        "connect_timeout": max(2, int(request.connect_timeout_seconds)),
        "options": options,
    }


def _entra_token(credential: TokenCredential | None) -> str:
    if credential is None:
        # Imported here: azure-identity is only needed by those who ask for Entra logins.
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential().get_token(ENTRA_SCOPE).token
    return credential.get_token(ENTRA_SCOPE).token


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


def _connect_failure(target: str, request: PostgresRequest, error: psycopg.Error) -> str:
    if isinstance(error, psycopg.errors.ConnectionTimeout):
        why = f"no answer within the {request.connect_timeout_seconds} s connect timeout"
    else:
        why = _first_meaningful(error)
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


# --- the collection --------------------------------------------------------------------------


class _Collector:
    """Runs the fixed query set on one connection and turns rows into snapshot models."""

    def __init__(
        self, connection: psycopg.Connection[Row], plan: CollectionPlan, secrets: tuple[str, ...]
    ) -> None:
        self.connection = connection
        self.plan = plan
        self.secrets = secrets
        info = connection.info
        self.host = info.host
        self.port = info.port
        self.target = f"{info.host}:{info.port}/{info.dbname}"
        self.issues: list[CollectionIssue] = []
        self.queries = 0
        self.scope = {
            "schemas": list(plan.schemas),
            "vector_types": list(pg_queries.VECTOR_TYPES),
            "vector_methods": list(pg_queries.VECTOR_METHODS),
        }

    def collect(self) -> PostgresCollection:
        fields: dict[str, Any] = {}
        fields.update(self._server())
        fields["settings"] = self._settings()
        fields.update(self._sessions())
        fields["vacuums"] = self._vacuums()
        fields["extensions"] = self._extensions()
        fields["vector_columns"] = self._vector_columns()
        fields["vector_indexes"] = self._vector_indexes()
        fields["invalid_indexes"] = self._invalid_indexes()
        fields["tables"] = self._tables()
        fields["statements"] = self._statements(fields["extensions"])
        fields["session_retention"] = self._session_retention()
        fields["expired_facts"] = self._expired_facts()
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
        )

    # --- running queries ------------------------------------------------------------------

    def _fetch(
        self,
        query: str | sql.Composed,
        params: Mapping[str, Any] | None,
        parts: Sequence[str],
        privilege: str,
    ) -> list[Row] | None:
        """Rows, or None after recording why on each part the query was to fill."""
        if self.connection.broken:
            self._note(parts, "not collected: the connection to the server was lost")
            return None
        self.queries += 1
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall()
        except psycopg.Error as error:
            self._note(parts, self._query_failure(error, privilege))
            return None

    def _query_failure(self, error: psycopg.Error, privilege: str) -> str:
        message = _first_line(error)
        if isinstance(error, errors.InsufficientPrivilege):
            return f"{message}: the audit role needs {privilege}"
        if isinstance(error, errors.QueryCanceled):
            return f"{message} (statement_timeout bounds each query; raise --statement-timeout)"
        if isinstance(error, errors.LockNotAvailable):
            return f"{message} (lock_timeout)"
        return message

    def _note(self, parts: Sequence[str], reason: str) -> None:
        for part in parts:
            self.issues.append(
                CollectionIssue(
                    source=Source.POSTGRES,
                    resource=self.target,
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
        rows = self._fetch(pg_queries.SERVER, None, parts, "CONNECT on the database")
        if not rows:
            return {}
        return {part: rows[0][part] for part in parts}

    def _settings(self) -> dict[str, PgSetting] | None:
        rows = self._fetch(pg_queries.SETTINGS, None, ("settings",), MONITOR_PRIVILEGE)
        if rows is None:
            return None
        return {
            row["name"]: PgSetting(setting=row["setting"], unit=row["unit"], source=row["source"])
            for row in rows
        }

    def _sessions(self) -> dict[str, Any]:
        parts = ("connections", "own_session", "client_sessions")
        rows = self._fetch(pg_queries.SESSIONS, None, parts, MONITOR_PRIVILEGE)
        if rows is None:
            return {}
        fields: dict[str, Any] = {}
        own = next((row for row in rows if row["own"]), None)
        if own is None or own["ssl"] is None:
            self._note(("own_session",), "the session's own row is missing from pg_stat_ssl")
        else:
            fields["own_session"] = _session_tls(own)
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
        rows = self._fetch(pg_queries.VACUUMS, None, ("vacuums",), MONITOR_PRIVILEGE)
        if rows is None:
            return None
        return tuple(
            RunningVacuum(
                pid=row["pid"],
                relation=row["relation"],
                phase=row["phase"],
                age_seconds=max(0.0, float(row["age_seconds"] or 0.0)),
            )
            for row in rows
        )

    # --- the database -------------------------------------------------------------------------

    def _extensions(self) -> tuple[Extension, ...] | None:
        rows = self._fetch(pg_queries.EXTENSIONS, None, ("extensions",), MONITOR_PRIVILEGE)
        if rows is None:
            return None
        return tuple(
            Extension(
                name=row["name"],
                version=row["version"],
                schema_name=row["schema_name"],
                default_version=row["default_version"],
            )
            for row in rows
        )

    def _vector_columns(self) -> tuple[VectorColumn, ...] | None:
        rows = self._fetch(
            pg_queries.VECTOR_COLUMNS, self.scope, ("vector_columns",), MONITOR_PRIVILEGE
        )
        if rows is None:
            return None
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

    def _vector_indexes(self) -> tuple[VectorIndex, ...] | None:
        rows = self._fetch(
            pg_queries.VECTOR_INDEXES, self.scope, ("vector_indexes",), MONITOR_PRIVILEGE
        )
        if rows is None:
            return None
        return tuple(
            VectorIndex(
                schema_name=row["schema_name"],
                table=row["table_name"],
                name=row["index_name"],
                columns=tuple(row["columns"]),
                method=row["method"],
                opclasses=tuple(row["opclasses"]),
                options=_reloptions(row["reloptions"]),
                valid=row["valid"],
            )
            for row in rows
            if self._in_scope(row["schema_name"], row["table_name"])
        )

    def _invalid_indexes(self) -> tuple[IndexRef, ...] | None:
        rows = self._fetch(
            pg_queries.INVALID_INDEXES, self.scope, ("invalid_indexes",), MONITOR_PRIVILEGE
        )
        if rows is None:
            return None
        return tuple(
            IndexRef(
                schema_name=row["schema_name"], table=row["table_name"], name=row["index_name"]
            )
            for row in rows
            if self._in_scope(row["schema_name"], row["table_name"])
        )

    def _tables(self) -> tuple[TableStats, ...] | None:
        rows = self._fetch(pg_queries.TABLES, self.scope, ("tables",), MONITOR_PRIVILEGE)
        if rows is None:
            return None
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
            )
            for row in rows
            if self._in_scope(row["schema_name"], row["table_name"])
        )

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
        rows = self._fetch(
            pg_queries.statements(installed.schema_name, mean_column),
            None,
            ("statements",),
            f"{MONITOR_PRIVILEGE} and EXECUTE on the pg_stat_statements functions",
        )
        if rows is None:
            return None
        return tuple(
            StatementStat(
                queryid=row["queryid"],
                calls=row["calls"],
                mean_exec_time_ms=float(row["mean_ms"] or 0.0),
                query=_mask_secret_literals(row["query"] or ""),
            )
            for row in rows
        )

    # --- retention (counts only) ----------------------------------------------------------------

    def _relation(self, table: str) -> tuple[str, str]:
        """``schema.table`` as given, else the table in the first schema in scope."""
        schema, dot, name = table.partition(".")
        return (
            (schema, name)
            if dot
            else (self.plan.schemas[0] if self.plan.schemas else "public", table)
        )

    def _session_retention(self) -> RetentionCounts | None:
        plan = self.plan.session_retention
        if plan is None:
            return None
        schema, table = self._relation(plan.table)
        tenants = sorted(plan.tenant_max_age_days)
        params = {
            "default_days": plan.default_max_age_days,
            "tenants": tenants,
            "tenant_days": [plan.tenant_max_age_days[tenant] for tenant in tenants],
            "min_days": min([plan.default_max_age_days, *plan.tenant_max_age_days.values()]),
        }
        rows = self._fetch(
            pg_queries.rows_past_age(schema, table, plan.age_column, plan.tenant_column),
            params,
            ("session_retention",),
            f"SELECT on {schema}.{table}",
        )
        if rows is None:
            return None
        counts = tuple(
            TenantCount(
                tenant=row["tenant"],
                max_age_days=plan.tenant_max_age_days.get(row["tenant"], plan.default_max_age_days),
                count=row["rows"],
            )
            for row in rows
        )
        return RetentionCounts(
            table=plan.table,
            age_column=plan.age_column,
            tenant_column=plan.tenant_column,
            default_max_age_days=plan.default_max_age_days,
            tenant_max_age_days=dict(plan.tenant_max_age_days),
            counts=counts,
        )

    def _expired_facts(self) -> ExpiredFactsCount | None:
        plan = self.plan.expired_facts
        if plan is None:
            return None
        schema, table = self._relation(plan.table)
        rows = self._fetch(
            pg_queries.expired_rows(schema, table, plan.valid_to_column),
            None,
            ("expired_facts",),
            f"SELECT on {schema}.{table}",
        )
        if rows is None:
            return None
        return ExpiredFactsCount(
            table=plan.table, valid_to_column=plan.valid_to_column, count=rows[0]["rows"]
        )


# --- row helpers ------------------------------------------------------------------------------


def _session_tls(row: Row) -> SessionTls:
    return SessionTls(
        pid=row["pid"],
        ssl=bool(row["ssl"]),
        version=row["tls_version"],
        cipher=row["cipher"],
        usename=row["usename"],
        application_name=row["application_name"],
        client_addr=row["client_addr"],
        backend_type=row["backend_type"],
    )


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
