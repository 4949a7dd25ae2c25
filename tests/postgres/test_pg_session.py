"""The audit session's safeguards and the auditor's TLS, decided without a server."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from engram_audit.collectors.dsn import DsnError, parse_dsn
from engram_audit.collectors.postgres import queries as pg_queries
from engram_audit.collectors.postgres import session as pg_session
from engram_audit.collectors.postgres.collector import (
    _count_problem,
    _running_vacuum,
    _session_parameters,
    _session_tls,
)
from engram_audit.collectors.postgres.request import PostgresRequest
from engram_audit.collectors.postgres.session import (
    WeakTlsError,
    session_problems,
    system_ca_bundle,
    tls_choice,
)
from engram_audit.model.plan import CollectionPlan

REQUEST = PostgresRequest(statement_timeout_ms=15000)
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def choose(dsn: str, environ: dict[str, str] | None = None, *, entra: bool = False) -> Any:
    return tls_choice(
        parse_dsn(dsn), environ or {}, entra_auth=entra, bundle=lambda _environ: BUNDLE
    )


# --- startup options ----------------------------------------------------------------------------


def test_startup_options_pin_the_path_read_only_rls_datestyle_and_timeouts() -> None:
    assert pg_session.startup_options(PostgresRequest(statement_timeout_ms=900)) == (
        "-c search_path=pg_catalog -c default_transaction_read_only=on -c row_security=off "
        "-c DateStyle=ISO,MDY -c statement_timeout=900ms -c lock_timeout=900ms "
        "-c idle_in_transaction_session_timeout=900ms"
    )


def test_the_auditors_options_come_after_the_dsns_so_they_win() -> None:
    parameters = _session_parameters(
        {"host": "db", "options": "-c search_path=evil"},
        REQUEST,
        CollectionPlan(environment="prod"),
        {"sslmode": "verify-full"},
    )
    assert parameters["options"].startswith("-c search_path=evil -c search_path=pg_catalog ")
    assert (parameters["dbname"], parameters["sslmode"]) == ("zep", "verify-full")


def in_force(**overrides: str) -> dict[str, str]:
    observed = {
        "search_path": "pg_catalog",
        "default_transaction_read_only": "on",
        "row_security": "off",
        "DateStyle": "ISO, MDY",
        "statement_timeout": "15s",  # current_setting shows the largest exact unit
        "lock_timeout": "15000ms",
        "idle_in_transaction_session_timeout": "15s",
        "transaction_read_only": "on",
        "transaction_isolation": "repeatable read",
    }
    observed.update(overrides)
    return observed


def test_a_session_with_every_safeguard_has_no_problem() -> None:
    assert session_problems(in_force(), REQUEST) == []
    assert session_problems(in_force(statement_timeout="15000"), REQUEST) == []


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"search_path": '"$user", public'}, "search_path is '\"$user\", public'"),
        ({"transaction_read_only": "off"}, "transaction_read_only is 'off' (expected 'on')"),
        (
            {"transaction_isolation": "read committed"},
            "transaction_isolation is 'read committed' (expected 'repeatable read')",
        ),
        ({"row_security": "on"}, "row_security is 'on' (expected 'off')"),
        ({"statement_timeout": "0"}, "statement_timeout is '0' (expected '15000ms')"),
        ({"lock_timeout": "1min"}, "lock_timeout is '1min' (expected '15000ms')"),
        ({"DateStyle": "SQL, DMY"}, "DateStyle is 'SQL, DMY' (expected 'ISO, MDY')"),
    ],
)
def test_each_setting_not_in_force_is_named(override: dict[str, str], problem: str) -> None:
    [found] = session_problems(in_force(**override), REQUEST)
    assert found.startswith(problem)


def test_a_setting_not_reported_is_a_problem_too() -> None:
    observed: dict[str, str | None] = {**in_force(), "row_security": None}
    assert session_problems(observed, REQUEST) == ["row_security is not reported (expected 'off')"]


def test_the_check_query_reads_every_expected_setting() -> None:
    text = pg_queries.settings_in_force(list(pg_session.expected_settings(REQUEST))).as_string()
    for name in pg_session.expected_settings(REQUEST):
        assert f"pg_catalog.current_setting('{name}') AS \"{name}\"" in text


# --- TLS of the auditor's connection ------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        "host=zep.postgres.database.azure.com user=auditor",
        "postgresql://auditor@zep.postgres.database.azure.com/postgres",
        "host=10.0.0.4",
        "host=localhost,zep.postgres.database.azure.com",  # one remote host is enough
        "host=localhost hostaddr=10.0.0.4",  # the address libpq really dials
    ],
)
def test_remote_hosts_default_to_verify_full_with_the_system_roots(dsn: str) -> None:
    choice = choose(dsn)
    assert choice.parameters == {"sslmode": "verify-full", "sslrootcert": BUNDLE}
    assert choice.explicit is None


def test_the_built_conninfo_verifies_a_remote_server_by_default() -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    dsn = "postgresql://auditor@zep.postgres.database.azure.com/postgres"
    parameters = parse_dsn(dsn)
    built = _session_parameters(
        parameters, REQUEST, CollectionPlan(environment="prod"), choose(dsn).parameters
    )
    conninfo = conninfo_to_dict(make_conninfo("", **built))
    assert conninfo["sslmode"] == "verify-full"
    assert conninfo["sslrootcert"] == BUNDLE
    assert conninfo["dbname"] == "zep"
    assert "-c search_path=pg_catalog" in str(conninfo["options"])
    given = "host=zep.postgres.database.azure.com sslmode=require"
    kept = _session_parameters(
        parse_dsn(given), REQUEST, CollectionPlan(environment="prod"), choose(given).parameters
    )
    assert kept["sslmode"] == "require"
    assert "sslrootcert" not in kept


@pytest.mark.parametrize(
    ("dsn", "environ"),
    [
        ("host=127.0.0.1", {}),
        ("host=::1", {}),
        ("host=localhost port=5433", {}),
        ("host=/var/run/postgresql", {}),
        ("", {}),  # libpq's default Unix socket
        ("", {"PGHOST": "/tmp"}),
    ],
)
def test_local_servers_keep_libpqs_default(dsn: str, environ: dict[str, str]) -> None:
    assert choose(dsn, environ).parameters == {}


@pytest.mark.parametrize(
    ("dsn", "environ", "mode"),
    [
        ("host=db.example.com sslmode=require", {}, "require"),
        ("postgresql://db.example.com/zep?sslmode=disable", {}, "disable"),
        ("host=db.example.com", {"PGSSLMODE": "prefer"}, "prefer"),
        ("host=db.example.com sslmode=verify-ca sslrootcert=/ca.pem", {}, "verify-ca"),
    ],
)
def test_a_mode_the_caller_chose_is_honoured(dsn: str, environ: dict[str, str], mode: str) -> None:
    choice = choose(dsn, environ)
    assert (choice.parameters, choice.explicit) == ({}, mode)


@pytest.mark.parametrize(
    ("dsn", "environ"),
    [
        ("host=db.example.com sslrootcert=system", {}),  # verify-full in libpq 16+
        ("host=db.example.com sslmode=verify-full sslrootcert=system", {}),
        ("host=db.example.com", {"PGSSLROOTCERT": "system"}),
    ],
)
def test_sslrootcert_system_gets_the_system_bundle_as_a_file(
    dsn: str, environ: dict[str, str]
) -> None:
    """psycopg-binary's OpenSSL looks for its default roots in /usr/lib/psycopg-openssl."""
    choice = choose(dsn, environ)
    assert choice.parameters == {"sslmode": "verify-full", "sslrootcert": BUNDLE}
    assert choice.explicit == "verify-full"


def test_sslrootcert_system_with_a_weaker_mode_is_left_to_libpq_to_reject() -> None:
    choice = choose("host=db.example.com sslmode=require sslrootcert=system")
    assert (choice.parameters, choice.explicit) == ({}, "require")


def test_the_callers_root_certificate_or_service_file_is_kept() -> None:
    assert choose("host=db.example.com sslrootcert=/etc/zep/ca.pem").parameters == {
        "sslmode": "verify-full"
    }
    assert choose("host=db.example.com", {"PGSSLROOTCERT": "/ca.pem"}).parameters == {
        "sslmode": "verify-full"
    }
    # A service file may hold the host and its CA file: only the mode is imposed.
    assert choose("service=zep-prod").parameters == {"sslmode": "verify-full"}


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require"])
def test_entra_refuses_every_mode_that_does_not_verify_the_server(mode: str) -> None:
    with pytest.raises(WeakTlsError, match=f"sslmode={mode} does not verify"):
        choose(f"host=zep.postgres.database.azure.com sslmode={mode}", entra=True)
    with pytest.raises(WeakTlsError):
        choose("host=zep.postgres.database.azure.com", {"PGSSLMODE": mode}, entra=True)


def test_entra_accepts_verifying_modes_and_defaults_to_verify_full_even_locally() -> None:
    assert choose("host=db sslmode=verify-ca", entra=True).explicit == "verify-ca"
    assert choose("host=127.0.0.1", entra=True).parameters == {
        "sslmode": "verify-full",
        "sslrootcert": BUNDLE,
    }


def test_an_invalid_sslmode_is_refused_with_its_source() -> None:
    with pytest.raises(DsnError, match="invalid sslmode 'requre' in the PGSSLMODE"):
        choose("host=db", {"PGSSLMODE": "requre"})


def test_the_system_bundle_follows_ssl_cert_file_then_the_usual_paths(tmp_path: Path) -> None:
    bundle = tmp_path / "roots.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    assert system_ca_bundle({"SSL_CERT_FILE": str(bundle)}) == str(bundle)
    found = system_ca_bundle({}, exists=lambda path: path == "/etc/pki/tls/certs/ca-bundle.crt")
    assert found in (
        "/etc/pki/tls/certs/ca-bundle.crt",
        # Python's own OpenSSL default comes first where it exists
        ssl.get_default_verify_paths().cafile,
    )
    assert system_ca_bundle({}, exists=lambda _path: False) is None


def test_entra_scopes_cover_every_cloud_the_cli_accepts() -> None:
    from engram_audit.collectors.azure.request import CLOUD_NAMES

    assert set(pg_session.ENTRA_SCOPES) == set(CLOUD_NAMES)
    with pytest.raises(DsnError, match="unknown Azure cloud 'AzureGermanCloud'"):
        pg_session.entra_scope("AzureGermanCloud")


# --- rows that do not convert -------------------------------------------------------------------


def test_a_vacuum_without_a_start_time_is_not_read_as_zero_seconds() -> None:
    row = {
        "pid": 42,
        "hidden": False,
        "relid": 16384,
        "schema_name": "public",
        "table_name": "messages",
        "phase": "scanning heap",
        "age_seconds": None,
    }
    with pytest.raises(ValueError, match="the vacuum of backend 42 has no start time"):
        _running_vacuum(row)
    vacuum = _running_vacuum({**row, "schema_name": None, "table_name": None, "age_seconds": 5})
    assert (vacuum.relation, vacuum.age_seconds) == ("relation oid 16384", 5.0)


def test_a_session_without_tls_state_is_not_read_as_plaintext() -> None:
    row = {
        "pid": 7,
        "ssl": None,
        "tls_version": None,
        "cipher": None,
        "usename": "zep",
        "application_name": "zep",
        "client_addr": "10.0.0.9",
        "backend_type": "client backend",
    }
    with pytest.raises(ValueError, match="no TLS state in pg_stat_ssl for backend 7"):
        _session_tls(row)


def column(name: str, type_schema: str, type_name: str, relkind: str = "r") -> dict[str, Any]:
    return {
        "column_name": name,
        "relation_found": True,
        "relkind": relkind,
        "column_found": True,
        "type_schema": type_schema,
        "type_name": type_name,
        "type_shown": type_name,
    }


def test_counts_are_taken_only_over_tables_with_built_in_types() -> None:
    age = column("created_at", "pg_catalog", "timestamptz")
    assert _count_problem("public", "sessions", "created_at", [age]) is None
    tenant = column("tenant_id", "pg_catalog", "text")
    assert _count_problem("public", "sessions", "created_at", [age, tenant]) is None
    assert "is a materialized view, not a table" in str(
        _count_problem(
            "public", "s", "created_at", [column("created_at", "pg_catalog", "date", "m")]
        )
    )
    enum_tenant = column("tenant_id", "public", "tenant")
    assert "defined in the database" in str(
        _count_problem("public", "sessions", "created_at", [age, enum_tenant])
    )
    missing = {**age, "relation_found": False, "relkind": None}
    assert _count_problem("app", "sessions", "created_at", [missing]) == (
        'relation "app.sessions" does not exist'
    )
