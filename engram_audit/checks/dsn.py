"""Checks on application connection strings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import Field

from engram_audit.checks.base import CheckContext, Outcome, Params, check, errored, verdict
from engram_audit.model.base import Source
from engram_audit.model.plan import CollectionRequest, DsnVariablesPlan

STRICT_SSLMODES = ("require", "verify-ca", "verify-full")


class SslModeParams(Params):
    variables: list[str] = Field(
        min_length=1, description="Environment variables holding application DSNs"
    )
    allowed: list[str] = Field(default_factory=lambda: list(STRICT_SSLMODES))


def _dsn_variables_request(params: SslModeParams) -> Iterable[CollectionRequest]:
    yield DsnVariablesPlan(variables=tuple(params.variables))


@check(
    "dsn.sslmode",
    sources=[Source.DSN],
    params=SslModeParams,
    reads=("dsn.entries",),
    requests=_dsn_variables_request,
)
def dsn_sslmode(params: SslModeParams, context: CheckContext) -> Iterator[Outcome]:
    """Every application DSN asks for TLS: `sslmode=require` or stricter.

    The design enforces encryption in transit through `sslmode=require` in the DSN. A DSN without
    sslmode gets libpq's default `prefer`, which silently falls back to plaintext.

    Remediation: append `sslmode=verify-full` (with the Azure root CA) or at least `sslmode=require`
    to the DSN, e.g. `postgresql://zep@<server>.postgres.database.azure.com/zep?sslmode=verify-full`.
    """
    expected = "sslmode " + " or ".join(params.allowed)
    entries = {entry.variable: entry for entry in context.dsn_entries}
    for variable in sorted(params.variables):
        resource = f"env:{variable}"
        entry = entries.get(variable)
        if entry is None:
            yield context.not_collected(resource, "entries", expected)
            continue
        if not entry.present:
            yield errored(
                resource,
                f"environment variable {variable} is not set where engram-audit ran",
                expected,
            )
            continue
        if entry.parse_error is not None or entry.sslmode is None:
            yield errored(resource, f"DSN cannot be parsed: {entry.parse_error}", expected)
            continue
        yield verdict(
            entry.sslmode in params.allowed,
            resource,
            expected,
            f"sslmode={entry.sslmode}",
            entry.redacted or "",
        )
