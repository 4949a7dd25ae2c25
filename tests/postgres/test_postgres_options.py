"""The PostgreSQL CLI options and the request they build (no server needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from engram_audit.cli.postgres_options import postgres_options, postgres_request_from_options
from engram_audit.collectors.postgres.request import PostgresRequest
from engram_audit.redaction import SECRETS

SECRET = "Opt-S3cret-pw"


@click.command()
@postgres_options
def probe(**options: Any) -> None:
    request = postgres_request_from_options(options, environ=click.get_current_context().obj or {})
    click.echo(repr(request))


def run(args: list[str], environ: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(probe, args, obj=environ or {}, env={"ENGRAM_AUDIT_DSN": None})
    return result.exit_code, result.output


def build(
    options: dict[str, object], environ: dict[str, str] | None = None
) -> PostgresRequest | None:
    return postgres_request_from_options(options, environ=environ or {})


def test_defaults_and_flags_build_the_request() -> None:
    code, output = run(
        ["--dsn", "host=db", "--entra-auth", "--connect-timeout", "3", "--statement-timeout", "900"]
    )
    assert code == 0, output
    assert output.strip() == repr(
        PostgresRequest(
            dsn="host=db", entra_auth=True, connect_timeout_seconds=3, statement_timeout_ms=900
        )
    )
    assert build({"dsn": "host=db"}) == PostgresRequest(dsn="host=db")


def test_no_target_is_none_unless_libpq_variables_name_one() -> None:
    assert build({}) is None
    assert build({}, {"PGHOST": "db.example.com"}) == PostgresRequest()
    assert build({}, {"PGSERVICE": "zep-prod"}) == PostgresRequest()


def test_dsn_env_reads_the_variable() -> None:
    dsn = f"postgresql://zep:{SECRET}@db/zep"
    assert build({"dsn_env": "ZEP_AUDIT_DSN"}, {"ZEP_AUDIT_DSN": dsn}) == PostgresRequest(dsn=dsn)


@pytest.mark.parametrize(
    ("args", "environ", "message"),
    [
        (
            ["--dsn", "host=db", "--dsn-env", "X"],
            {"X": "host=db"},
            "give either --dsn or --dsn-env, not both",
        ),
        (
            ["--dsn-env", "UNSET_VAR"],
            {},
            "--dsn-env UNSET_VAR: the variable is not set or is empty",
        ),
        (["--dsn-env", "postgresql://x"], {}, "give the NAME of an environment variable"),
        (["--entra-auth"], {}, "--entra-auth needs a server"),
        (["--dsn", f"host=db {SECRET}"], {}, "--dsn: not a valid libpq connection string"),
        (["--connect-timeout", "0", "--dsn", "host=db"], {}, "0 is not in the range 2<=x<=3600"),
        (
            ["--entra-auth", "--dsn", f"host=db.example.com password={SECRET} sslmode=require"],
            {},
            "--entra-auth sends the Entra access token as the password: sslmode=require does "
            "not verify the server's certificate",
        ),
        (
            ["--entra-auth", "--dsn", "host=db.example.com"],
            {"PGSSLMODE": "prefer"},
            "sslmode=prefer does not verify the server's certificate",
        ),
        (
            ["--dsn", f"host=db password={SECRET} sslmode=requre"],
            {},
            'invalid sslmode value: "requre"',
        ),
    ],
)
def test_bad_input_is_a_usage_error_without_the_secret(
    args: list[str], environ: dict[str, str], message: str
) -> None:
    code, output = run(args, environ)
    assert code == 2
    assert message in output
    assert SECRET not in output


def test_passwords_are_registered_with_the_output_scrubber() -> None:
    build({"dsn": f"host=db password={SECRET}"}, {"PGPASSWORD": "Env-pw-123"})
    assert SECRETS.scrub(f"echo {SECRET} and Env-pw-123") == "echo ******** and ********"


def test_entra_auth_with_a_verifying_mode_and_the_cloud_of_the_run() -> None:
    request = build(
        {"dsn": "host=db sslmode=verify-ca", "entra_auth": True, "cloud": "AzureChinaCloud"}
    )
    assert request == PostgresRequest(
        dsn="host=db sslmode=verify-ca", entra_auth=True, cloud="AzureChinaCloud"
    )
    assert build({"dsn": "host=db", "entra_auth": True}) == PostgresRequest(
        dsn="host=db", entra_auth=True, cloud="AzureCloud"
    )


def test_entra_auth_over_an_unverified_mode_exits_2_from_the_real_cli() -> None:
    """Refused before any token is asked for or any connection is tried."""
    result = subprocess.run(
        [sys.executable, "-m", "engram_audit", "check", "--env", "prod", "--sources", "postgres",
         "--entra-auth", "--dsn", f"host=zep.postgres.database.azure.com password={SECRET} "
         "sslmode=require"],
        capture_output=True, text=True, timeout=120, check=False,
        cwd=Path(__file__).parents[2], env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "--entra-auth sends the Entra access token as the password" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert SECRET not in result.stderr + result.stdout
