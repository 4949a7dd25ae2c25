"""Click options that select the PostgreSQL target and how to log in, and the request they build.

A password should not be typed on a command line (process lists, shell history): prefer
``--dsn-env VAR``, ``ENGRAM_AUDIT_DSN``, ``PGPASSWORD`` or ``~/.pgpass``. Whatever the route,
the password is registered with the CLI's secret scrubber before anything is collected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from engram_audit.collectors.dsn import (
    DsnError,
    check_connection_settings,
    parse_dsn,
    register_dsn_secrets,
)
from engram_audit.collectors.postgres.request import PostgresRequest
from engram_audit.collectors.postgres.session import tls_choice
from engram_audit.redaction import SECRETS

F = TypeVar("F", bound=Callable[..., Any])

# The keyword arguments these options add to a command, for callers that pop them.
POSTGRES_OPTION_NAMES: tuple[str, ...] = (
    "dsn",
    "dsn_env",
    "entra_auth",
    "connect_timeout",
    "statement_timeout",
)
# libpq variables that name a server on their own: with one of them set, no --dsn is needed.
LIBPQ_TARGET_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGSERVICE")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_env_name(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise click.BadParameter(
            "give the NAME of an environment variable holding the DSN (e.g. ZEP_AUDIT_DSN), "
            "not the DSN itself"
        )
    return value


def postgres_options(command: F) -> F:
    """Add --dsn --dsn-env --entra-auth --connect-timeout --statement-timeout."""
    options = (
        click.option(
            "--dsn",
            envvar="ENGRAM_AUDIT_DSN",
            metavar="DSN",
            help="PostgreSQL connection string (key=value or postgresql:// URI). The database "
            "audited is the policy's (scope.database) whatever the DSN names. Without it: "
            "libpq's PGHOST/PGSERVICE/... variables.",
        ),
        click.option(
            "--dsn-env",
            envvar="ENGRAM_AUDIT_DSN_ENV",
            metavar="VAR",
            callback=_check_env_name,
            help="Read the DSN from environment variable VAR (keeps a password off the "
            "command line).",
        ),
        click.option(
            "--entra-auth",
            is_flag=True,
            envvar="ENGRAM_AUDIT_ENTRA_AUTH",
            help="Log in with a Microsoft Entra ID access token from azure-identity "
            "(DefaultAzureCredential, for --cloud) as the password; the DSN's user is the Entra "
            "principal. Needs sslmode verify-full (the default) or verify-ca.",
        ),
        click.option(
            "--connect-timeout",
            envvar="ENGRAM_AUDIT_CONNECT_TIMEOUT",
            type=click.IntRange(2, 3600),
            default=10,
            show_default=True,
            metavar="SECONDS",
            help="Give up on a server that does not answer within this time.",
        ),
        click.option(
            "--statement-timeout",
            envvar="ENGRAM_AUDIT_STATEMENT_TIMEOUT",
            type=click.IntRange(100, 3_600_000),
            default=15000,
            show_default=True,
            metavar="MS",
            help="statement_timeout and lock_timeout of the audit session, in milliseconds.",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def postgres_request_from_options(
    options: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> PostgresRequest | None:
    """The PostgreSQL request the options describe; None when no PostgreSQL target was given."""
    environment = os.environ if environ is None else environ
    dsn = _text(options.get("dsn"))
    dsn_env = _text(options.get("dsn_env"))
    if dsn and dsn_env:
        raise click.UsageError("give either --dsn or --dsn-env, not both")
    if dsn_env:
        dsn = _text(environment.get(dsn_env))
        if dsn is None:
            raise click.UsageError(f"--dsn-env {dsn_env}: the variable is not set or is empty")
    if dsn is None and not any(environment.get(name) for name in LIBPQ_TARGET_VARIABLES):
        if options.get("entra_auth"):
            raise click.UsageError("--entra-auth needs a server: give --dsn, --dsn-env or PGHOST")
        return None
    SECRETS.register(environment.get("PGPASSWORD"))
    entra_auth = bool(options.get("entra_auth"))
    source = f"--dsn-env {dsn_env}" if dsn_env else "--dsn"
    parameters: dict[str, str] = {}
    if dsn is not None:
        register_dsn_secrets(dsn)  # before anything can echo the DSN, valid or not
        try:
            parameters = parse_dsn(dsn)
        except DsnError as error:
            raise click.UsageError(f"{source}: {error}") from None
    try:
        check_connection_settings(parameters, environment)
    except DsnError as error:
        where = source if dsn is not None else "libpq environment variables (PG*)"
        raise click.UsageError(f"{where}: {error}") from None
    try:
        # The same decision the collector makes: an Entra token never goes to an unverified
        # server, and an sslmode libpq would reject is an input error, not a collection issue.
        tls_choice(parameters, environment, entra_auth=entra_auth)
    except DsnError as error:
        raise click.UsageError(str(error)) from None
    connect_timeout = options.get("connect_timeout")
    statement_timeout = options.get("statement_timeout")
    return PostgresRequest(
        dsn=dsn or "",
        entra_auth=entra_auth,
        connect_timeout_seconds=connect_timeout if isinstance(connect_timeout, int) else 10,
        statement_timeout_ms=statement_timeout if isinstance(statement_timeout, int) else 15000,
        cloud=_text(options.get("cloud")) or "AzureCloud",
        allow_empty=options.get("allow_empty") is True,
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None
