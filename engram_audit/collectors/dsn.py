"""Connection strings: parsed with libpq's own rules, shown only redacted.

libpq accepts ``key=value`` strings and ``postgresql://`` URIs; ``psycopg.conninfo``
hands both to libpq's parser, so what we read is what an application's driver reads.
Redaction works on the text itself (not on a parse), so a malformed string that would
not parse is still masked before it reaches a message or a snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

from engram_audit.model.plan import CollectionPlan
from engram_audit.model.snapshot import DsnEntry, DsnSection

MASK = "****"
SECRET_KEYWORDS = (
    "password",
    "sslpassword",
    "oauth_client_secret",
    "scram_client_key",
    "scram_server_key",
)
_SECRET_NAMES = "|".join(SECRET_KEYWORDS)
LIBPQ_DEFAULT_SSLMODE = "prefer"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# ``postgresql+psycopg://`` and friends are SQLAlchemy URLs; the driver hands libpq the rest.
_DRIVER_SUFFIX = re.compile(r"^(postgres(?:ql)?)\+[\w.-]+(?=://)", re.IGNORECASE)
_URI = re.compile(r"^postgres(?:ql)?(?:\+[\w.-]+)?://", re.IGNORECASE)
_KEYWORD_SECRET = re.compile(
    rf"(?<![\w])(?P<key>{_SECRET_NAMES})(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|'.*$|[^\s']\S*|(?=\s|$))",
    re.IGNORECASE,
)
_QUERY_SECRET = re.compile(rf"(?P<key>[?&](?:{_SECRET_NAMES})=)(?P<value>[^&#]*)", re.IGNORECASE)
_QUOTED = re.compile(r'"([^"]*)"')


# Quoted fragments libpq may echo safely: its own keywords (and "=" in "missing "=" after").
@cache
def _safe_quoted() -> frozenset[str]:
    from psycopg import pq  # libpq is loaded only when a DSN is actually parsed

    keywords = {option.keyword.decode() for option in pq.Conninfo.get_defaults()}
    return frozenset({"="} | keywords) - set(SECRET_KEYWORDS)


class DsnError(ValueError):
    """A connection string libpq would reject; the message never quotes the string."""


def redact_dsn(dsn: str) -> str:
    """The DSN with every secret masked: URI password, ``password=``, ``sslpassword=``..."""
    if _URI.match(dsn):
        return _redact_uri(dsn)
    return _KEYWORD_SECRET.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", dsn)


def _redact_uri(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    query_start = rest.find("?")
    authority_and_path = rest if query_start < 0 else rest[:query_start]
    query = "" if query_start < 0 else rest[query_start:]
    # The last '@' before the query: a raw '@' inside a password then stays masked too.
    at = authority_and_path.rfind("@")
    if at >= 0:
        userinfo, hosts = authority_and_path[:at], authority_and_path[at + 1 :]
        user, colon, _password = userinfo.partition(":")
        authority_and_path = f"{user}:{MASK}@{hosts}" if colon else f"{userinfo}@{hosts}"
    query = _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", query)
    return f"{scheme}://{authority_and_path}{query}"


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secret values (a password, a token) from a message we did not write."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def parse_dsn(dsn: str) -> dict[str, str]:
    """libpq's reading of ``dsn`` (keyword -> value); ``DsnError`` (safe message) if invalid."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        parsed = conninfo_to_dict(_DRIVER_SUFFIX.sub(r"\1", dsn.strip()))
    except ProgrammingError as error:
        raise DsnError(f"not a valid libpq connection string: {_safe_reason(error)}") from None
    return {key: str(value) for key, value in parsed.items() if value is not None}


def _safe_reason(error: Exception) -> str:
    """libpq quotes fragments of the input in its errors; keep only keyword-like quotes."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"

    def keep_or_hide(match: re.Match[str]) -> str:
        quoted = match[1]
        return f'"{quoted}"' if quoted in _safe_quoted() else '"…"'

    return _QUOTED.sub(keep_or_hide, first_line)


_LOOSE_KEYWORD = re.compile(r"(?<![\w])(host|hostaddr|port)\s*=\s*([^\s']+)")
_LOOSE_URI_HOST = re.compile(
    r"^postgres(?:ql)?(?:\+[\w.-]+)?://(?:[^/?#]*@)?([^/?#:]+)(?::(\d+))?", re.I
)


def loose_target(dsn: str) -> dict[str, str]:
    """Host and port read leniently from a DSN libpq rejected, so the error can say where."""
    uri = _LOOSE_URI_HOST.match(dsn.strip())
    if uri:
        return {"host": uri[1], **({"port": uri[2]} if uri[2] else {})}
    return dict(_LOOSE_KEYWORD.findall(dsn))


def effective_sslmode(parameters: Mapping[str, str]) -> str:
    """The sslmode libpq uses: as given, else ``verify-full`` for ``sslrootcert=system``
    (libpq >= 16), else the compiled-in default ``prefer`` (which accepts plaintext)."""
    given = parameters.get("sslmode", "").strip()
    if given:
        if given not in SSLMODES:
            raise DsnError(f"invalid sslmode {given!r}; libpq accepts {', '.join(SSLMODES)}")
        return given
    if parameters.get("sslrootcert", "").strip() == "system":
        return "verify-full"
    return LIBPQ_DEFAULT_SSLMODE


def dsn_entry(variable: str, value: str | None) -> DsnEntry:
    if value is None:
        return DsnEntry(variable=variable, present=False)
    redacted = redact_dsn(value)
    if not value.strip():
        return DsnEntry(
            variable=variable, present=True, redacted=redacted, parse_error="set but empty"
        )
    try:
        sslmode = effective_sslmode(parse_dsn(value))
    except DsnError as error:
        return DsnEntry(variable=variable, present=True, redacted=redacted, parse_error=str(error))
    return DsnEntry(variable=variable, present=True, redacted=redacted, sslmode=sslmode)


def collect_dsns(plan: CollectionPlan, environ: Mapping[str, str]) -> DsnSection:
    """One entry per DSN variable the policy names, in the policy's order."""
    return DsnSection(
        entries=tuple(dsn_entry(variable, environ.get(variable)) for variable in plan.dsn_variables)
    )
