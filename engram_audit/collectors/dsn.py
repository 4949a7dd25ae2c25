"""Connection strings: parsed with libpq's own rules, shown only redacted.

libpq accepts ``key=value`` strings and ``postgresql://`` URIs; ``psycopg.conninfo`` hands
both to libpq's parser (``PQconninfoParse``), so what we read is what an application's driver
reads. psycopg is imported inside functions only: commands that read no DSN never load it.

Redaction follows libpq's reading, not a guess at it: libpq's ``fe-connect.c``
(``conninfo_parse``, ``conninfo_uri_parse_options``, ``conninfo_uri_decode``) and "Connection
Strings" in the libpq documentation
(https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING):

- key=value: a value is a run of non-blank characters or a single-quoted string; a backslash
  escapes the next character in both; blanks around ``=`` are optional. The values of the
  options libpq marks as password fields (``password``, ``sslpassword`` ...) and of the SCRAM
  keys are masked; a keyword libpq does not know (a misspelt ``pasword``) is masked with its
  value.
- URI: the user information ends at the first ``@`` met before any ``/``, so a ``?`` or ``#``
  in a password does not end it (``postgresql://u:p?ss@h/db`` has the password ``p?ss``).
  The query starts at the first ``?`` after it; its keys and values are percent-decoded
  before libpq looks them up, so ``?pass%77ord=...`` is a password too ("percent-encoding
  may be used to include symbols with special meaning in any of the URI parts"). A password
  written with a raw ``/`` or ``@`` is masked up to the last ``@`` before the query.
- What libpq cannot read is masked: in a string it rejects, from a keyword without ``=`` or
  an unterminated quote to the end, a query parameter without ``=``, an unknown query key
  with its value, and in a URI everything between the first ``:`` and the last ``@``. A URI
  libpq accepts but reads with a port that is not a number (``postgresql://u:p/x@h``: host
  ``u``, port ``p``) is masked the same way.
- A ``dbname`` that is itself a connection string (libpq expands one where an application
  asks it to: ``expand_dbname``) is masked whole when it holds anything to mask.

The masked text is then checked against libpq's own parse: if a password libpq reads still
shows (plain or percent-encoded), the DSN is shown rebuilt from libpq's reading instead.
Every password found is returned by ``dsn_secrets`` for the output scrubber.
"""

from __future__ import annotations

import ipaddress
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote

from engram_audit.model.plan import CollectionPlan
from engram_audit.model.snapshot import DsnEntry, DsnSection
from engram_audit.redaction import MIN_SECRET_LENGTH, SECRETS

MASK = "****"
SECRET_KEYWORDS = (
    "password",
    "sslpassword",
    "oauth_client_secret",
    "scram_client_key",
    "scram_server_key",
)
LIBPQ_DEFAULT_SSLMODE = "prefer"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# ``postgresql+psycopg://`` and friends are SQLAlchemy URLs; the driver hands libpq the rest.
_DRIVER_SUFFIX = re.compile(r"^(postgres(?:ql)?)\+[\w.-]+(?=://)", re.IGNORECASE)
# libpq compares the prefix case-sensitively; any spelling that looks like a URI is masked as one.
_URI = re.compile(r"^postgres(?:ql)?(?:\+[\w.-]+)?://", re.IGNORECASE)
_QUOTED = re.compile(r'"([^"]*)"')
_PORTS = re.compile(r"[0-9]*(?:,[0-9]*)*")
# isspace() in the C locale: what libpq's conninfo_parse skips between keywords and values.
_BLANKS = frozenset(" \t\n\v\f\r")
# RFC 1035 §2.3.4: labels are 63 octets or less, names 255 octets or less on the wire
# (253 characters written out). Python's resolver refuses longer labels with a UnicodeError.
_MAX_LABEL = 63
_MAX_HOSTNAME = 253


class DsnError(ValueError):
    """A connection string libpq would reject; the message never quotes the string."""


@cache
def _keywords() -> tuple[frozenset[str], frozenset[str]]:
    """(non-secret keywords, secret keywords) of the libpq in use.

    libpq marks its password fields with the display character ``*`` (``PQconndefaults``);
    the SCRAM keys are secrets it marks only as debug options, hence the explicit list too.
    """
    from psycopg import pq  # libpq is loaded only when a DSN is actually parsed

    options = pq.Conninfo.get_defaults()
    secret = set(SECRET_KEYWORDS) | {o.keyword.decode() for o in options if o.dispchar == b"*"}
    every = {option.keyword.decode() for option in options}
    return frozenset(every - secret), frozenset(secret)


# Quoted fragments libpq may echo safely: its own keywords (and "=" in "missing "=" after").
def _safe_quoted() -> frozenset[str]:
    return frozenset({"=", *_keywords()[0]})


# --- where the secrets are written -------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    """Characters ``start:end`` of the DSN to mask, and the secrets among them (a password
    by any reading: as written, and as libpq unescapes or decodes it) for the scrubber."""

    start: int
    end: int
    secrets: tuple[str, ...] = ()


def _keyword_spans(text: str, rejected: bool, *, expand_dbname: bool = True) -> list[_Span]:
    """libpq's ``conninfo_parse``, recording where each value is written (the masking is the
    same whether libpq accepted the string or not)."""
    safe, secret = _keywords()
    spans: list[_Span] = []
    i, end = 0, len(text)
    while i < end:
        if text[i] in _BLANKS:
            i += 1
            continue
        key_start = i
        while i < end and text[i] != "=" and text[i] not in _BLANKS:
            i += 1
        key = text[key_start:i]
        while i < end and text[i] in _BLANKS:
            i += 1
        if i == end or text[i] != "=":  # libpq: missing "=" after the key; the rest is unknown
            spans.append(_Span(key_start, end))
            break
        i += 1
        while i < end and text[i] in _BLANKS:
            i += 1
        value_start, value, closed = i, [], True
        quoted = i < end and text[i] == "'"
        if quoted:
            i, closed = i + 1, False
        while i < end:
            character = text[i]
            if character == "\\":
                value.append(text[i + 1 : i + 2])
                i += 2
                continue
            if quoted and character == "'":
                i, closed = i + 1, True
                break
            if not quoted and character in _BLANKS:
                break
            value.append(character)
            i += 1
        if not closed:  # libpq: unterminated quoted string; the rest is unknown
            written = (text[value_start + 1 :], "".join(value)) if key in secret else ()
            spans.append(_Span(value_start, end, written))
            break
        written = (text[value_start:i], "".join(value))
        if key in secret:
            spans.append(_Span(value_start, i, written))
        elif key not in safe:  # a misspelt keyword could be anything: mask it with its value
            spans.append(_Span(key_start, i, written if unquote(key) in secret else ()))
        elif expand_dbname and key == "dbname":
            spans += _dbname_span(value_start, i, "".join(value))
    return spans


def _uri_spans(text: str, rejected: bool, *, expand_dbname: bool = True) -> list[_Span]:
    """libpq's ``conninfo_uri_parse_options``, recording where the secrets are written."""
    safe, secret = _keywords()
    start = text.index("://") + 3
    end = len(text)
    designator = next((i for i in range(start, end) if text[i] in "@/"), end)
    libpq_at = designator if designator < end and text[designator] == "@" else -1
    netloc = libpq_at + 1 if libpq_at >= 0 else start
    query = text.find("?", netloc)
    query = end if query < 0 else query
    spans: list[_Span] = []
    # The last '@' before the query (anywhere, if libpq rejected the string) ends what the
    # author meant as user information, even when libpq reads it otherwise.
    at = text.rfind("@", start) if rejected else text.rfind("@", start, query)
    if rejected and at >= 0:
        netloc, query = at + 1, text.find("?", at + 1)
        query = end if query < 0 else query
    colon = text.find(":", start, at) if at >= 0 else -1
    if colon >= 0:
        password = text[colon + 1 : at]
        spans.append(_Span(colon + 1, at, (password, unquote(password))))
    slash = text.find("/", netloc, query)
    if expand_dbname and slash >= 0:
        spans += _dbname_span(slash + 1, query, unquote(text[slash + 1 : query]))
    position = query + 1
    for parameter in text[query + 1 :].split("&") if query < end else []:
        parameter_start, position = position, position + len(parameter) + 1
        raw_key, separator, raw_value = parameter.partition("=")
        key = unquote(raw_key)
        if not separator:
            spans.append(_Span(parameter_start, parameter_start + len(parameter)))
            continue
        value_start = parameter_start + len(raw_key) + 1
        value_end = parameter_start + len(parameter)
        if key in secret:
            spans.append(_Span(value_start, value_end, (raw_value, unquote(raw_value))))
        elif key not in safe and key != "ssl":  # ssl=true: libpq's JDBC spelling
            spans.append(_Span(parameter_start, value_end))
        elif expand_dbname and key == "dbname":
            spans += _dbname_span(value_start, value_end, unquote(raw_value))
    return spans


def _dbname_span(start: int, end: int, dbname: str) -> list[_Span]:
    """A ``dbname`` that is itself a connection string (libpq expands one where an application
    asks it to: ``expand_dbname``) is masked whole when it holds anything to mask."""
    if not (_URI.match(dbname) or "=" in dbname):
        return []
    nested = (_uri_spans if _URI.match(dbname) else _keyword_spans)(
        dbname, rejected=True, expand_dbname=False
    )
    if not nested:
        return []
    return [_Span(start, end, tuple(secret for span in nested for secret in span.secrets))]


def _spans(dsn: str, rejected: bool) -> list[_Span]:
    return (_uri_spans if _URI.match(dsn) else _keyword_spans)(dsn, rejected)


def _masked(dsn: str, spans: list[_Span]) -> str:
    text, cursor = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < cursor:
            cursor = max(cursor, span.end)
            continue
        text += [dsn[cursor : span.start], MASK]
        cursor = span.end
    return "".join([*text, dsn[cursor:]])


def _shows(secret: str, text: str) -> bool:
    # Shorter values would match ordinary words; the output scrubber has the same floor.
    return len(secret) >= MIN_SECRET_LENGTH and (secret in text or secret in unquote(text))


def _parsed_or_none(dsn: str) -> dict[str, str] | None:
    try:
        return parse_dsn(dsn)
    except DsnError:
        return None


def _redact(dsn: str) -> tuple[str, tuple[str, ...]]:
    parsed = _parsed_or_none(dsn)
    # A port that is not a number means libpq read part of the URI as something it is not
    # (``postgresql://u:p/x?host=z@h``: the password p/x?host=z as port "p"): mask as if
    # libpq had rejected it.
    misread = parsed is not None and not _PORTS.fullmatch(parsed.get("port", ""))
    spans = _spans(dsn, rejected=parsed is None or misread)
    masked = _masked(dsn, spans)
    _, secret = _keywords()
    found = [value for key, value in (parsed or {}).items() if key in secret and value]
    for span in spans:
        found += span.secrets
    if any(_shows(value, masked) for value in found):
        masked = _rebuilt(parsed) if parsed is not None else MASK
        if any(_shows(value, masked) for value in found):
            masked = MASK
    return masked, tuple(dict.fromkeys(value for value in found if value))


def _rebuilt(parsed: Mapping[str, str]) -> str:
    from psycopg.conninfo import make_conninfo

    _, secret = _keywords()
    return make_conninfo(**{key: MASK if key in secret else value for key, value in parsed.items()})


def redact_dsn(dsn: str) -> str:
    """The DSN with every secret masked: URI password, ``password=``, ``sslpassword=``..."""
    return _redact(dsn)[0]


def dsn_secrets(dsn: str) -> tuple[str, ...]:
    """Every secret in ``dsn``: as libpq decodes it, and as written (percent-encoded, say)."""
    return _redact(dsn)[1]


def register_dsn_secrets(dsn: str) -> None:
    """Hand every secret of ``dsn`` to the output scrubber, before anything can echo it."""
    for secret in dsn_secrets(dsn):
        SECRETS.register(secret)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secret values (a password, a token) from a message we did not write.

    Longest first, and not shorter than the output scrubber's floor: a one-letter password
    read from a malformed URI would otherwise turn every "p" of libpq's message into a mask.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    return text


# --- libpq's reading ----------------------------------------------------------------------------


def parse_dsn(dsn: str) -> dict[str, str]:
    """libpq's reading of ``dsn`` (keyword -> value); ``DsnError`` (safe message) if invalid."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    if "\x00" in dsn:  # libpq reads a C string: it would silently stop at the NUL
        raise DsnError("not a valid libpq connection string: it contains a NUL character")
    try:
        parsed = conninfo_to_dict(_DRIVER_SUFFIX.sub(r"\1", dsn.strip()))
    except ProgrammingError as error:
        raise DsnError(f"not a valid libpq connection string: {_safe_reason(error)}") from None
    except UnicodeEncodeError:  # a lone surrogate: an environment variable that is not UTF-8
        raise DsnError("not a valid libpq connection string: it is not valid UTF-8") from None
    return {key: str(value) for key, value in parsed.items() if value is not None}


def _safe_reason(error: Exception) -> str:
    """libpq quotes fragments of the input in its errors; keep only keyword-like quotes."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"

    def keep_or_hide(match: re.Match[str]) -> str:
        quoted = match[1]
        return f'"{quoted}"' if quoted in _safe_quoted() else '"…"'

    return _QUOTED.sub(keep_or_hide, first_line)


def check_connection_settings(parameters: Mapping[str, str], environ: Mapping[str, str]) -> None:
    """``DsnError`` for settings that fail before any connection is tried: host names the
    resolver refuses, ``hostaddr`` values that are no address, and any value libpq itself
    refuses (``sslmode=bogus``, port lists that do not match the hosts ...).

    libpq is asked directly: ``PQconnectStart`` checks every option (``PG*`` variables of
    this process included, as when it connects; ``environ`` supplies ``PGHOST`` and
    ``PGHOSTADDR`` for the name checks) before it connects. The probe points every host at a fresh, empty directory, so
    the only connection it can try is to a Unix socket that does not exist: nothing leaves
    the machine, and an error that does not name that directory is a refused setting.
    """
    hosts = parameters.get("host") or environ.get("PGHOST") or ""
    for index, host in enumerate(hosts.split(",") if hosts else [], start=1):
        problem = _host_problem(host)
        if problem:
            which = f"host {index}" if "," in hosts else "host"
            raise DsnError(f"{which}: {problem}")
    addresses = parameters.get("hostaddr") or environ.get("PGHOSTADDR") or ""
    for index, address in enumerate(addresses.split(",") if addresses else [], start=1):
        if address and not _is_ip_address(address):
            which = f"hostaddr {index}" if "," in addresses else "hostaddr"
            raise DsnError(f"{which}: not a numeric IPv4 or IPv6 address")
    refusal = _libpq_refusal(parameters, hosts)
    if refusal:
        raise DsnError(f"libpq refuses the connection settings: {SECRETS.scrub(refusal)}")


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _host_problem(host: str) -> str | None:
    # A directory (Unix socket), an abstract socket, or a Windows path: nothing to resolve.
    if not host or host.startswith(("/", "@")) or host[1:2] == ":" or _is_ip_address(host):
        return None
    name = host[:-1] if host.endswith(".") else host
    if len(name) > _MAX_HOSTNAME:
        return f"a host name is at most {_MAX_HOSTNAME} characters (RFC 1035)"
    labels = name.split(".")
    if any(not label for label in labels):
        return "an empty label in the host name ('..' or a leading '.')"
    if any(len(label) > _MAX_LABEL for label in labels):
        return f"a label of the host name is longer than {_MAX_LABEL} characters (RFC 1035)"
    try:
        name.encode("idna")
    except UnicodeError:
        return "not a valid host name (IDNA)"
    return None


def _libpq_refusal(parameters: Mapping[str, str], hosts: str) -> str | None:
    from psycopg import pq
    from psycopg.conninfo import make_conninfo

    count = max(len(hosts.split(",")), len(parameters.get("hostaddr", "").split(",")))
    try:
        with tempfile.TemporaryDirectory(prefix="engram-audit-probe-") as nowhere:
            probe = {**parameters, "host": ",".join([nowhere] * count), "hostaddr": ""}
            connection = pq.PGconn.connect_start(make_conninfo(**probe).encode())
            try:
                message = connection.error_message.decode("utf-8", "replace").strip()
                refused = connection.status == pq.ConnStatus.BAD and nowhere not in message
            finally:
                connection.finish()
    except OSError:  # no writable temporary directory: the connection attempt will tell
        return None
    return message.splitlines()[0] if refused and message else None


_LOOSE_KEYWORD = re.compile(r"(?<![\w])(host|hostaddr|port)\s*=\s*([^\s']+)")
_LOOSE_URI_HOST = re.compile(
    r"^postgres(?:ql)?(?:\+[\w.-]+)?://(?:[^/?#]*@)?([^/?#:]+)(?::(\d+))?", re.I
)


def loose_target(dsn: str) -> dict[str, str]:
    """Host and port read leniently from a DSN libpq rejected, so the error can say where
    (from the redacted text: a password mistaken for a host is never shown)."""
    redacted = redact_dsn(dsn)
    uri = _LOOSE_URI_HOST.match(redacted.strip())
    if uri:
        return {"host": uri[1], **({"port": uri[2]} if uri[2] else {})}
    return dict(_LOOSE_KEYWORD.findall(redacted))


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
    redacted, secrets = _redact(value)
    for secret in secrets:  # an application DSN's password: never in any output either
        SECRETS.register(secret)
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
