"""The audit session's safeguards, decided before connecting and verified before reading.

The audited database's owner is not trusted. Whatever they set with ``ALTER DATABASE ... SET``
(a ``search_path`` that puts their schema before ``pg_catalog``, ``DateStyle``, timeouts),
the session's settings come in the startup packet (libpq's ``options=-c name=value``,
https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-OPTIONS). A value
from the connection request (``pg_settings.source`` = ``client``) outranks the ``database``,
``user`` and ``database user`` defaults of ``ALTER DATABASE``/``ALTER ROLE ... SET``;
tests/postgres/test_pg_hostile.py shows an owner's ``ALTER DATABASE ... SET search_path`` losing
to it on PostgreSQL 16, 17 and 18.

A connection pooler may drop startup options (PgBouncer forwards only a few parameters), so
the collector reads them back (``session_problems``) and refuses to collect when any is not
in force. The settings:

- ``search_path=pg_catalog``: no object of the owner's can shadow a built-in, whatever the
  argument types (a better-matching ``public.make_interval(smallint)`` is never a candidate).
  The queries also qualify every catalog name, so this is the second line, not the only one;
  operators are left unqualified in catalog queries and resolve in ``pg_catalog`` only (the
  session's temporary schema is searched for relations and types, never for functions or
  operators, and this session creates none:
  https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-SEARCH-PATH).
- ``default_transaction_read_only=on``; the collection itself runs in one
  ``BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`` transaction
  (https://www.postgresql.org/docs/current/sql-set-transaction.html), which a function cannot
  turn read-write: the server answers "transaction read-write mode must be set before any
  query", and in a savepoint "cannot set transaction read-write mode inside a read-only
  transaction" (both seen on PostgreSQL 18).
- ``row_security=off``: a row-level security policy that would filter a retention count makes
  the count fail instead of silently hiding rows
  (https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-ROW-SECURITY).
- ``DateStyle=ISO,MDY``: psycopg parses timestamps only in ISO style; another style set on the
  database would make every timestamp unreadable.
- ``statement_timeout``, ``lock_timeout``, ``idle_in_transaction_session_timeout``.

TLS for the auditor's own connection: ``sslmode=verify-full`` with the system's CA roots unless
the DSN (or ``PGSSLMODE``) says otherwise or the server is on this host; with ``--entra-auth``
anything weaker than ``verify-ca`` is refused, because the access token is sent as the password.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from engram_audit.collectors.dsn import SSLMODES, DsnError
from engram_audit.collectors.postgres.request import PostgresRequest
from engram_audit.model.snapshot import UNVERIFIED_SSLMODES

# --- startup options and their verification ---------------------------------------------------

SEARCH_PATH = "pg_catalog"
DATESTYLE = "ISO, MDY"
_TIMEOUTS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
# Read back in the collection transaction, before anything else; see session_problems.
TRANSACTION = {"transaction_read_only": "on", "transaction_isolation": "repeatable read"}


def startup_settings(request: PostgresRequest) -> dict[str, str]:
    """Every setting the session gets in its startup packet, as SHOW reports it back."""
    timeout = f"{int(request.statement_timeout_ms)}ms"
    return {
        "search_path": SEARCH_PATH,
        "default_transaction_read_only": "on",
        "row_security": "off",
        "DateStyle": DATESTYLE,
        **dict.fromkeys(_TIMEOUTS, timeout),
    }


def startup_options(request: PostgresRequest) -> str:
    """libpq's ``options`` value: ``-c name=value`` for each of ``startup_settings``."""
    settings = startup_settings(request)
    settings["DateStyle"] = DATESTYLE.replace(" ", "")  # options are split on spaces
    return " ".join(f"-c {name}={value}" for name, value in settings.items())


def expected_settings(request: PostgresRequest) -> dict[str, str]:
    """What ``session_problems`` compares: the startup settings and the transaction's mode."""
    return {**startup_settings(request), **TRANSACTION}


_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|min|h|d)?\s*$")
_MS_PER_UNIT = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def _milliseconds(value: str) -> int | None:
    """``current_setting`` shows durations in the largest exact unit (``15s``, ``1500ms``)."""
    match = _DURATION.match(value)
    if match is None:
        return None
    return int(match[1]) * _MS_PER_UNIT[match[2] or "ms"]


def session_problems(observed: Mapping[str, str | None], request: PostgresRequest) -> list[str]:
    """Each expected setting that is not in force, as ``name is 'x' (expected 'y')``."""
    problems = []
    for name, wanted in expected_settings(request).items():
        actual = observed.get(name)
        if name in _TIMEOUTS:
            same = actual is not None and _milliseconds(actual) == _milliseconds(wanted)
        else:
            same = actual == wanted
        if not same:
            shown = "not reported" if actual is None else f"{actual!r}"
            problems.append(f"{name} is {shown} (expected {wanted!r})")
    return problems


# --- TLS of the auditor's own connection ---------------------------------------------------------

DEFAULT_SSLMODE = "verify-full"
# Where Linux distributions keep the system CA bundle (the list Go's crypto/x509 reads).
_SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # CentOS, RHEL 7+
    "/etc/ssl/cert.pem",  # Alpine, macOS
)


class WeakTlsError(DsnError):
    """A DSN whose sslmode would send an Entra access token to an unverified server."""


@dataclass(frozen=True)
class TlsChoice:
    """What the auditor adds to the connection parameters, and why."""

    parameters: dict[str, str]
    explicit: str | None  # the sslmode the DSN or PGSSLMODE gave; None: ours (or libpq's)


def explicit_sslmode(parameters: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """The sslmode the caller chose (DSN, then ``PGSSLMODE``), or None; invalid: ``DsnError``.

    ``sslrootcert=system`` alone means ``verify-full`` in libpq 16 and later.
    """
    for source, value in (
        ("DSN", parameters.get("sslmode")),
        ("PGSSLMODE", environ.get("PGSSLMODE")),
    ):
        given = (value or "").strip()
        if given:
            if given not in SSLMODES:
                raise DsnError(
                    f"invalid sslmode {given!r} in the {source}; libpq accepts {', '.join(SSLMODES)}"
                )
            return given
    rootcert = parameters.get("sslrootcert") or environ.get("PGSSLROOTCERT") or ""
    return DEFAULT_SSLMODE if rootcert.strip() == "system" else None


def is_local(parameters: Mapping[str, str], environ: Mapping[str, str]) -> bool:
    """Every host is a Unix socket or a loopback address, so nothing crosses a network."""
    hosts = [
        host.strip()
        for value in (
            parameters.get("host") or environ.get("PGHOST") or "",
            parameters.get("hostaddr") or environ.get("PGHOSTADDR") or "",
        )
        for host in value.split(",")
        if host.strip()
    ]
    if not hosts:
        # No host: libpq's default Unix socket, unless a service file names one.
        return not (parameters.get("service") or environ.get("PGSERVICE"))
    return all(_is_local_host(host) for host in hosts)


def _is_local_host(host: str) -> bool:
    if host.startswith(("/", "@")) or host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def system_ca_bundle(
    environ: Mapping[str, str], exists: Callable[[str], bool] = os.path.isfile
) -> str | None:
    """The system's CA bundle, as a file libpq can read; None if none is found.

    ``sslrootcert=system`` (libpq 16+) asks libpq's OpenSSL for its default roots, but the
    psycopg-binary wheel bundles an OpenSSL whose default directory
    (``/usr/lib/psycopg-openssl``) does not exist on most systems, so the file is named instead:
    ``SSL_CERT_FILE`` when set (OpenSSL's own override), else Python's OpenSSL default, else the
    usual distribution paths.
    """
    candidates = [environ.get("SSL_CERT_FILE") or "", ssl.get_default_verify_paths().cafile or ""]
    for candidate in (*candidates, *_SYSTEM_BUNDLES):
        if candidate and exists(candidate):
            return str(Path(candidate))
    return None


def tls_choice(
    parameters: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    entra_auth: bool,
    bundle: Callable[[Mapping[str, str]], str | None] = system_ca_bundle,
) -> TlsChoice:
    """``sslmode=verify-full`` (+ the system CA bundle) unless the caller chose a mode.

    A mode the caller gave is honoured (and reported by ``pg.tls.connection``), except that
    with ``entra_auth`` a mode that does not verify the server raises ``WeakTlsError``. A server
    on this host (Unix socket, loopback) keeps libpq's default unless ``entra_auth``.
    A ``service=`` file's own ``sslmode`` is overridden by the default (the DSN's wins over
    the service file in libpq); its ``sslrootcert`` is kept. ``sslrootcert=system`` with
    ``verify-full`` is given the system bundle's file (see ``system_ca_bundle``), which is what
    it means where libpq's own OpenSSL has no usable default store.
    """
    explicit = explicit_sslmode(parameters, environ)
    if explicit is not None:
        if entra_auth and explicit in UNVERIFIED_SSLMODES:
            raise WeakTlsError(
                f"--entra-auth sends the Entra access token as the password: sslmode={explicit} "
                "does not verify the server's certificate; use sslmode=verify-full "
                "(or verify-ca) with sslrootcert=system or the server's CA file"
            )
        rootcert = (parameters.get("sslrootcert") or environ.get("PGSSLROOTCERT") or "").strip()
        found = bundle(environ) if rootcert == "system" and explicit == DEFAULT_SSLMODE else None
        # Any other combination with "system" is left to libpq, which rejects weaker modes.
        # With a file instead of "system", libpq no longer implies verify-full: say it.
        added = {"sslmode": DEFAULT_SSLMODE, "sslrootcert": found} if found else {}
        return TlsChoice(parameters=added, explicit=explicit)
    if not entra_auth and is_local(parameters, environ):
        return TlsChoice(parameters={}, explicit=None)
    added = {"sslmode": DEFAULT_SSLMODE}
    rootcert_given = parameters.get("sslrootcert") or environ.get("PGSSLROOTCERT")
    service = parameters.get("service") or environ.get("PGSERVICE")
    if not rootcert_given and not service:
        found = bundle(environ)
        if found is not None:
            added["sslrootcert"] = found
    return TlsChoice(parameters=added, explicit=None)


# --- Microsoft Entra ID ------------------------------------------------------------------------

# The access-token scope of Azure Database for PostgreSQL per cloud (--cloud names). Public
# cloud: https://learn.microsoft.com/azure/service-connector/how-to-integrate-postgres
# (``https://ossrdbms-aad.database.windows.net/.default``); the sovereign clouds' resource ids
# are Microsoft's own Azure CLI table, ``ossrdbms_resource_id`` in
# https://github.com/Azure/azure-cli/blob/dev/src/azure-cli-core/azure/cli/core/cloud.py
ENTRA_SCOPES: dict[str, str] = {
    "AzureCloud": "https://ossrdbms-aad.database.windows.net/.default",
    "AzureChinaCloud": "https://ossrdbms-aad.database.chinacloudapi.cn/.default",
    "AzureUSGovernment": "https://ossrdbms-aad.database.usgovcloudapi.net/.default",
}


def entra_scope(cloud: str) -> str:
    try:
        return ENTRA_SCOPES[cloud]
    except KeyError:
        raise DsnError(
            f"unknown Azure cloud {cloud!r} for --entra-auth: use one of "
            f"{', '.join(sorted(ENTRA_SCOPES))}"
        ) from None
