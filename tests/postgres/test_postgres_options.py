"""The PostgreSQL CLI options and the request they build (no server needed)."""

from __future__ import annotations

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
