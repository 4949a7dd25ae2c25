"""Unreachable, unwilling or slow servers: one clear issue, no exception, no secret."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from psycopg import sql

from engram_audit.collectors.postgres.collector import (
    ENTRA_SCOPE,
    PostgresCollection,
    PostgresRequest,
    collect_postgres,
)
from engram_audit.demo.server import free_loopback_port
from engram_audit.model.plan import CollectionPlan
from engram_audit.model.snapshot import CollectionIssue
from tests.support.pg_servers import AUDITOR_PASSWORD, SeededServer

PLAN = CollectionPlan(environment="prod")


def only_issue(collection: PostgresCollection) -> CollectionIssue:
    assert collection.section.databases == ()
    [issue] = collection.issues
    assert issue.part is None
    assert issue.source.value == "postgres"
    assert "\n" not in issue.reason
    return issue


@pytest.fixture(scope="module")
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word, like a blackholed proxy."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_connection_refused_names_host_port_database_and_cause() -> None:
    port = free_loopback_port()  # nothing listens there
    dsn = f"postgresql://auditor:{AUDITOR_PASSWORD}@127.0.0.1:{port}/postgres"
    issue = only_issue(collect_postgres(PostgresRequest(dsn=dsn), PLAN))
    assert issue.resource == f"127.0.0.1:{port}/zep"
    assert issue.reason.startswith(f"cannot connect to 127.0.0.1:{port}/zep: ")
    assert "Connection refused" in issue.reason
    assert AUDITOR_PASSWORD not in issue.model_dump_json()


def test_no_answer_within_the_connect_timeout(silent_listener: int) -> None:
    request = PostgresRequest(
        dsn=f"host=127.0.0.1 port={silent_listener}", connect_timeout_seconds=2
    )
    issue = only_issue(collect_postgres(request, PLAN))
    assert issue.reason == (
        f"cannot connect to 127.0.0.1:{silent_listener}/zep: "
        "no answer within the 2 s connect timeout"
    )


def test_wrong_password_is_a_refused_login_without_the_password(pg: SeededServer) -> None:
    wrong = "Wr0ng-but-Secret-pw"
    issue = only_issue(
        collect_postgres(PostgresRequest(dsn=pg.auditor_dsn(tls=pg.kind.tls, password=wrong)), PLAN)
    )
    assert issue.resource == f"127.0.0.1:{pg.server.port}/zep"
    assert 'password authentication failed for user "auditor"' in issue.reason
    assert wrong not in issue.reason


def test_missing_database_is_named(pg: SeededServer) -> None:
    plan = CollectionPlan(environment="prod", database="zep_prod")
    issue = only_issue(collect_postgres(PostgresRequest(dsn=pg.auditor_dsn(tls=pg.kind.tls)), plan))
    assert issue.resource == f"127.0.0.1:{pg.server.port}/zep_prod"
    assert 'database "zep_prod" does not exist' in issue.reason


def test_the_policy_database_wins_over_the_dsn(pg: SeededServer) -> None:
    """Azure's connection strings name ``postgres``: the policy, not the DSN, picks the database."""
    dsn = pg.server.dsn_for("postgres", tcp=True)
    collection = collect_postgres(PostgresRequest(dsn=dsn), PLAN)
    assert [database.target for database in collection.section.databases] == [
        f"127.0.0.1:{pg.server.port}/zep"
    ]


def test_malformed_dsn_is_an_issue_that_hides_the_secret() -> None:
    dsn = "host=db.example.com password=Hunter2-secret sslmode=require bogus"
    issue = only_issue(collect_postgres(PostgresRequest(dsn=dsn), PLAN))
    assert issue.resource == "db.example.com:5432/zep"
    assert "not a valid libpq connection string" in issue.reason
    assert "Hunter2" not in issue.reason


def test_libpq_environment_is_used_when_no_dsn(
    pg: SeededServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(pg.server.port))
    monkeypatch.setenv("PGUSER", "auditor")
    monkeypatch.setenv("PGPASSWORD", AUDITOR_PASSWORD)
    monkeypatch.setenv("PGSSLMODE", "require" if pg.kind.tls else "disable")
    collection = collect_postgres(PostgresRequest(), PLAN)
    [database] = collection.section.databases
    assert database.own_session is not None
    assert database.own_session.usename == "auditor"
    assert database.own_session.ssl is pg.kind.tls


class StaticCredential:
    """An azure-identity credential stand-in whose token is a role's real password."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, 4_000_000_000)


class FailingCredential:
    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        raise ClientAuthenticationError(
            "DefaultAzureCredential failed to retrieve a token\nmore lines"
        )


def test_entra_token_is_the_password_and_never_shown(pg: SeededServer) -> None:
    token = "eyJ0eXAiOiJKV1QiLCJhbGciOi.entra-token-payload.signature"
    with psycopg.connect(pg.admin_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier("aad_auditor@contoso.com"), sql.Literal(token)
            )
        )
        admin.execute('GRANT pg_monitor TO "aad_auditor@contoso.com"')
    try:
        credential = StaticCredential(token)
        # The token is a password: it goes only over verified TLS (verify-full by default,
        # against the system roots; here SSL_CERT_FILE names the test CA), or a Unix socket
        # where the server has no TLS (libpq ignores sslmode there; nothing leaves the host).
        if pg.kind.tls:
            dsn = pg.server.dsn_for("zep", user="aad_auditor@contoso.com", tcp=True)
        else:
            dsn = pg.server.dsn_for("zep", user="aad_auditor@contoso.com")
        environ = {"SSL_CERT_FILE": str(pg.ca_pem)} if pg.kind.tls else {}
        collection = collect_postgres(
            PostgresRequest(dsn=dsn, entra_auth=True), PLAN, credential=credential, environ=environ
        )
        assert credential.scopes == [(ENTRA_SCOPE,)]
        [database] = collection.section.databases
        assert database.own_session is not None
        assert database.own_session.usename == "aad_auditor@contoso.com"
        assert database.own_session.sslmode == "verify-full"
        assert database.own_session.ssl is pg.kind.tls
        assert token not in collection.section.model_dump_json()
        # A wrong token: the refusal names the login, never the token.
        wrong = StaticCredential("eyJ-wrong-token")
        refused = collect_postgres(
            PostgresRequest(dsn=dsn, entra_auth=True), PLAN, credential=wrong, environ=environ
        )
        issue = only_issue(refused)
        assert "password authentication failed" in issue.reason
        assert "eyJ-wrong-token" not in issue.reason
    finally:
        with psycopg.connect(pg.admin_dsn, autocommit=True) as admin:
            admin.execute('DROP ROLE "aad_auditor@contoso.com"')


@pytest.mark.parametrize("sslmode", ["disable", "allow", "prefer", "require"])
def test_entra_token_is_never_sent_without_a_verified_server(sslmode: str) -> None:
    """Refused before a token is even asked for: the token is the password."""
    credential = StaticCredential("eyJ-never-fetched")
    request = PostgresRequest(
        dsn=f"host=zep-prod.postgres.database.azure.com sslmode={sslmode}", entra_auth=True
    )
    issue = only_issue(collect_postgres(request, PLAN, credential=credential, environ={}))
    assert credential.scopes == []
    assert issue.reason.startswith(
        "refusing to connect to zep-prod.postgres.database.azure.com:5432/zep: --entra-auth"
    )
    assert f"sslmode={sslmode} does not verify the server's certificate" in issue.reason


@pytest.mark.parametrize(
    ("cloud", "scope"),
    [
        ("AzureCloud", "https://ossrdbms-aad.database.windows.net/.default"),
        ("AzureChinaCloud", "https://ossrdbms-aad.database.chinacloudapi.cn/.default"),
        ("AzureUSGovernment", "https://ossrdbms-aad.database.usgovcloudapi.net/.default"),
    ],
)
def test_entra_token_scope_follows_the_cloud(cloud: str, scope: str) -> None:
    credential = StaticCredential("eyJ-scope-probe")
    port = free_loopback_port()  # nothing listens: the token is asked for, then refused
    request = PostgresRequest(
        dsn=f"host=127.0.0.1 port={port} sslmode=verify-full", entra_auth=True, cloud=cloud
    )
    only_issue(collect_postgres(request, PLAN, credential=credential, environ={}))
    assert credential.scopes == [(scope,)]


def test_entra_token_failure_is_one_clear_line() -> None:
    request = PostgresRequest(dsn="host=zep-prod.postgres.database.azure.com", entra_auth=True)
    issue = only_issue(collect_postgres(request, PLAN, credential=FailingCredential()))
    assert issue.reason == (
        "cannot get an Entra ID access token to log in to "
        "zep-prod.postgres.database.azure.com:5432/zep: "
        "DefaultAzureCredential failed to retrieve a token"
    )
