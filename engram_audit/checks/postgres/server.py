"""Checks on the PostgreSQL server: version, TLS, connections, statements, vacuum progress."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    pg_not_collected,
    pg_resource,
    skipped,
    verdict,
)
from engram_audit.checks.facts import FactValue, no_downgrade
from engram_audit.checks.postgres.common import each_database
from engram_audit.checks.tls import TlsVersion, tls_rank
from engram_audit.model.base import Source
from engram_audit.model.snapshot import UNVERIFIED_SSLMODES, SessionTls


class PgVersionParams(Params):
    allowed_majors: list[int] = Field(min_length=1)


@check(
    "pg.server.version",
    sources=[Source.POSTGRES],
    params=PgVersionParams,
    reads=("postgres.server_version",),
    facts=("unscripted",),
)
def pg_server_version(params: PgVersionParams, context: CheckContext) -> Iterator[Outcome]:
    """The server reports an allowed PostgreSQL major version (`server_version_num`).

    Confirms from inside the database what ARM claims: the design pins PostgreSQL 16.

    Remediation: major-version upgrade (`az postgres flexible-server upgrade --version 16`).
    A server newer than every allowed version cannot be upgraded back (Azure's in-place major
    version upgrade only moves to a newer version): its finding says so instead.
    """
    expected = " or ".join(str(m) for m in sorted(params.allowed_majors))
    newest = max(params.allowed_majors)
    for database in each_database(context):
        resource = pg_resource(database)
        if database.server_version_num is None:
            yield pg_not_collected(context, database, "server_version_num", expected)
            continue
        major = database.server_version_num // 10000
        facts: dict[str, FactValue] = {}
        if major > newest:
            facts["unscripted"] = no_downgrade("the server", major, expected, newest)
        yield verdict(
            major in params.allowed_majors,
            resource,
            expected,
            database.server_version or str(major),
            facts=facts,
        )


class OwnTlsParams(Params):
    min_protocol: TlsVersion = "TLSv1.2"


@check(
    "pg.tls.connection",
    sources=[Source.POSTGRES],
    params=OwnTlsParams,
    reads=("postgres.own_session",),
)
def pg_tls_connection(params: OwnTlsParams, context: CheckContext) -> Iterator[Outcome]:
    """The checker's own session is encrypted with TLS 1.2 or newer.

    If engram-audit itself connected in plaintext, so can the application: the server does not
    enforce TLS for this login path. When the auditor connected over the network with an
    `sslmode` that does not verify the server's certificate (given in the DSN or `PGSSLMODE`;
    the default is `verify-full`), the finding says so: the evidence came from a server whose
    identity was not checked.

    Remediation: set `require_secure_transport=on` and connect with `sslmode=verify-full`.
    """
    minimum = tls_rank(params.min_protocol) or 0
    expected = f"TLS >= {params.min_protocol}"
    for database in each_database(context):
        resource = pg_resource(database)
        session = database.own_session
        if session is None:
            yield pg_not_collected(context, database, "own_session", expected)
            continue
        note = _unverified_note(session)
        if not session.ssl:
            yield verdict(False, resource, expected, "no TLS (plaintext session)", note)
            continue
        rank = tls_rank(session.version or "")
        actual = f"{session.version} {session.cipher or ''}".strip()
        yield verdict(rank is not None and rank >= minimum, resource, expected, actual, note)


def _unverified_note(session: SessionTls) -> str:
    """Why this run's own evidence is weaker, when the auditor chose not to verify."""
    if session.sslmode not in UNVERIFIED_SSLMODES or session.client_addr is None:
        return ""  # verified, not recorded (older snapshot), or a Unix socket: no network
    return (
        f"the auditor connected with sslmode={session.sslmode}: the server's certificate was "
        "not verified, so what was collected may not come from the server it names "
        "(use sslmode=verify-full)"
    )


class ClientTlsParams(Params):
    ignore_local_socket: bool = Field(
        default=True, description="Unix-socket sessions cannot use TLS; they never leave the host"
    )


@check(
    "pg.tls.clients",
    sources=[Source.POSTGRES],
    params=ClientTlsParams,
    reads=("postgres.client_sessions",),
)
def pg_tls_clients(params: ClientTlsParams, context: CheckContext) -> Iterator[Outcome]:
    """No client session is connected without TLS.

    `pg_stat_ssl` joined with `pg_stat_activity` shows every client backend's encryption; one
    plaintext Zep worker leaks memories and credentials over the network.

    Remediation: add `sslmode=require` (or `verify-full`) to every application DSN and set
    `require_secure_transport=on`.
    """
    expected = "every client session uses TLS"
    for database in each_database(context):
        resource = pg_resource(database)
        if database.client_sessions is None:
            yield pg_not_collected(context, database, "client_sessions", expected)
            continue
        clients = [
            s
            for s in database.client_sessions
            if (s.backend_type in (None, "client backend"))
            and not (params.ignore_local_socket and s.client_addr is None)
        ]
        plaintext = [s for s in clients if not s.ssl]
        if not plaintext:
            yield verdict(
                True, resource, expected, f"{len(clients)} TCP client session(s), all TLS"
            )
            continue
        who = sorted(
            {
                f"{s.usename or '?'}@{s.client_addr or 'local socket'}"
                f" ({s.application_name or 'no app name'})"
                for s in plaintext
            }
        )
        yield verdict(
            False,
            resource,
            expected,
            f"{len(plaintext)} of {len(clients)} without TLS: {', '.join(who)}",
        )


class SlowQueriesParams(Params):
    max_mean_ms: float = Field(default=5000, gt=0)
    min_calls: int = Field(default=1, ge=1)


@check(
    "pg.queries.slow",
    sources=[Source.POSTGRES],
    params=SlowQueriesParams,
    reads=("postgres.extensions", "postgres.statements"),
)
def pg_slow_queries(params: SlowQueriesParams, context: CheckContext) -> Iterator[Outcome]:
    """No statement's mean execution time exceeds 5 seconds (`pg_stat_statements`).

    Memory retrieval sits on the agent's response path; the design alerts on queries over 5 s.
    Without pg_stat_statements installed there is nothing to read, and the check says so (SKIP).

    Remediation: `EXPLAIN (ANALYZE, BUFFERS)` the statement; usually a missing vector or btree
    index, or an HNSW `ef_search` set too high.
    """
    expected = f"mean <= {params.max_mean_ms:g} ms"
    for database in each_database(context):
        resource = pg_resource(database)
        if database.statements is None:
            installed = {e.name for e in database.extensions or () if e.version}
            if database.extensions is not None and "pg_stat_statements" not in installed:
                yield skipped(
                    resource, "pg_stat_statements is not installed in this database", expected
                )
            else:
                yield pg_not_collected(context, database, "statements", expected)
            continue
        slow = sorted(
            (
                s
                for s in database.statements
                if s.calls >= params.min_calls and s.mean_exec_time_ms > params.max_mean_ms
            ),
            key=lambda s: (-s.mean_exec_time_ms, s.queryid),
        )
        if not slow:
            yield verdict(
                True, resource, expected, f"{len(database.statements)} statement(s), none slower"
            )
            continue
        worst = ", ".join(
            f"queryid {s.queryid} mean {s.mean_exec_time_ms:.0f} ms" for s in slow[:5]
        )
        yield verdict(False, resource, expected, f"{len(slow)} slow: {worst}")


class LongVacuumParams(Params):
    max_seconds: float = Field(default=3600, gt=0)


@check(
    "pg.vacuum.long_running",
    sources=[Source.POSTGRES],
    params=LongVacuumParams,
    reads=("postgres.vacuums",),
)
def pg_long_vacuum(params: LongVacuumParams, context: CheckContext) -> Iterator[Outcome]:
    """No vacuum has been running longer than the limit (`pg_stat_progress_vacuum`).

    A vacuum that runs for hours is usually blocked or fighting bloat on a large embedding table,
    and holds back cleanup everywhere else.

    Remediation: look at `pg_stat_progress_vacuum` and `pg_locks` for what blocks it; raise
    `maintenance_work_mem` for large HNSW indexes.
    """
    expected = f"no vacuum running > {params.max_seconds:g} s"
    for database in each_database(context):
        resource = pg_resource(database)
        if database.vacuums is None:
            yield pg_not_collected(context, database, "vacuums", expected)
            continue
        long_running = [v for v in database.vacuums if v.age_seconds > params.max_seconds]
        if not long_running:
            yield verdict(
                True, resource, expected, f"{len(database.vacuums)} running, none too long"
            )
            continue
        for vacuum in sorted(long_running, key=lambda v: v.relation):
            yield verdict(
                False,
                pg_resource(database, vacuum.relation),
                expected,
                f"running {vacuum.age_seconds:.0f} s (pid {vacuum.pid}, phase {vacuum.phase})",
            )
