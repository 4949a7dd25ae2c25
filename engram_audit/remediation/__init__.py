"""Fixes that name the real resource: a rule's remediation template rendered per finding.

``render(template, facts, params)`` fills a policy's ``remediation`` text with the facts of one
finding (``checks.facts``), quoted for the text's target:

- ``az ...`` / ``psql ...``: shell words (``shlex.quote``); a fact only a person can supply (an
  action group id) comes from the rule's remediation_params when set, else it is a required
  shell variable (``"${ACTION_GROUP_ID:?set ...}"``), so the command still parses;
- SQL (the text starts with a statement keyword in capitals): names as ``quote_ident`` would quote them,
  ``{table}`` and ``{index}`` qualified by the finding's ``{schema}``, values as literals.
  Inside a ``--`` comment every value is also put on one line, so no name from the audited
  database can end the comment early. A comment that names a fact the finding lacks is left
  out (a statement that does is not rendered). SQL the audited database wrote
  (``{index_definition}``) is only ever shown inside a comment: the loader rejects a template
  that places it where it would run;
- anything else is prose: values as they are.

A tuple-valued fact (several firewall rules) renders the template once per value, one per line;
several tuple-valued facts are parallel (alert names and their conditions). A static parameter
(``restart: required``) gets the restart that applies it appended. A finding whose check says no
command fixes it (the ``unscripted`` fact: a standby still building, a private endpoint awaiting
approval) gets that text instead of the template. Scripts built from a report's failures are in
``remediation.scripts``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from engram_audit.checks.facts import FACTS, FactKind, Facts, FactValue, placeholders

SQL_KEYWORDS = frozenset(
    [
        "ALTER",
        "ANALYZE",
        "CLUSTER",
        "COMMENT",
        "CREATE",
        "DELETE",
        "DROP",
        "GRANT",
        "REINDEX",
        "RESET",
        "REVOKE",
        "SET",
        "VACUUM",
    ]
)
NON_TRANSACTIONAL = re.compile(
    r"^\s*(?:(?:CREATE|DROP)\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY|REINDEX\b.*\bCONCURRENTLY|VACUUM\b)",
    re.IGNORECASE,
)
"""Statements PostgreSQL refuses inside a transaction block (CREATE/DROP INDEX CONCURRENTLY,
REINDEX ... CONCURRENTLY, VACUUM)."""


def target_of(template: str) -> str:
    """``shell``, ``sql`` or ``text``: how the template's values are quoted.

    SQL starts with a statement keyword in capitals, as every shipped SQL fix does: prose that
    happens to start with such a word ("set `require_secure_transport=on` ...", "Create a
    ...") stays prose, never a statement in a script.
    """
    first = template.lstrip().split(None, 1)[0] if template.strip() else ""
    if first in {"az", "psql"}:
        return "shell"
    if first in SQL_KEYWORDS:
        return "sql"
    return "text"


def quote_ident(name: str) -> str:
    """PostgreSQL's quote_ident: bare when it is a plain lower-case name, else double-quoted."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) and name.upper() not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    body = value.replace("'", "''")
    return ("E'" + body.replace("\\", "\\\\") + "'") if "\\" in value else f"'{body}'"


# Reserved words that must be quoted as identifiers (PostgreSQL's reserved key words).
_RESERVED = frozenset(
    [
        "ALL",
        "ANALYSE",
        "ANALYZE",
        "AND",
        "ANY",
        "ARRAY",
        "AS",
        "ASC",
        "ASYMMETRIC",
        "BOTH",
        "CASE",
        "CAST",
        "CHECK",
        "COLLATE",
        "COLUMN",
        "CONSTRAINT",
        "CREATE",
        "CURRENT_CATALOG",
        "CURRENT_DATE",
        "CURRENT_ROLE",
        "CURRENT_TIME",
        "CURRENT_TIMESTAMP",
        "CURRENT_USER",
        "DEFAULT",
        "DEFERRABLE",
        "DESC",
        "DISTINCT",
        "DO",
        "ELSE",
        "END",
        "EXCEPT",
        "FALSE",
        "FETCH",
        "FOR",
        "FOREIGN",
        "FROM",
        "GRANT",
        "GROUP",
        "HAVING",
        "IN",
        "INITIALLY",
        "INTERSECT",
        "INTO",
        "LATERAL",
        "LEADING",
        "LIMIT",
        "LOCALTIME",
        "LOCALTIMESTAMP",
        "NOT",
        "NULL",
        "OFFSET",
        "ON",
        "ONLY",
        "OR",
        "ORDER",
        "PLACING",
        "PRIMARY",
        "REFERENCES",
        "RETURNING",
        "SELECT",
        "SESSION_USER",
        "SOME",
        "SYMMETRIC",
        "SYSTEM_USER",
        "TABLE",
        "THEN",
        "TO",
        "TRAILING",
        "TRUE",
        "UNION",
        "UNIQUE",
        "USER",
        "USING",
        "VARIADIC",
        "WHEN",
        "WHERE",
        "WINDOW",
        "WITH",
    ]
)


def _person(name: str, params: Mapping[str, Any], target: str) -> str:
    fact = FACTS[name]
    given = params.get(name)
    if isinstance(given, str) and given:
        return shlex.quote(given) if target == "shell" else given
    reason = re.sub(r"[^A-Za-z0-9 .,/-]", "", fact.description)  # plain words inside ${...}
    return f'"${{{fact.variable}:?set {reason}}}"'


def _quoted(name: str, value: str, facts: Mapping[str, str], target: str) -> str:
    kind = FACTS[name].kind if name in FACTS else FactKind.TEXT
    if target == "shell":
        return shlex.quote(value)
    if target == "sql":
        if kind is FactKind.STATEMENT:
            return _one_line(value)  # shown in a comment (misplaced_statements), never run
        if kind is FactKind.QUALIFIED:
            schema = facts.get("schema", "")
            return f"{quote_ident(schema)}.{quote_ident(value)}" if schema else quote_ident(value)
        if kind is FactKind.IDENTIFIER:
            return quote_ident(value)
        return quote_literal(value)
    return " ".join(value.split())  # prose: one line


class MissingFact(LookupError):
    """The finding lacks a fact its rule's template names."""


class MisplacedStatement(ValueError):
    """The template puts SQL the audited database wrote where it would run."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def sql_comments(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each ``--`` comment in SQL text: from the dashes to the end of the
    line (PostgreSQL and psql end one only at a line feed or carriage return), quotes
    respected."""
    spans: list[tuple[int, int]] = []
    i, quote = 0, ""
    while i < len(text):
        char = text[i]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif text.startswith("--", i):
            ends = [e for e in (text.find("\n", i), text.find("\r", i)) if e >= 0]
            end = min(ends) if ends else len(text)
            spans.append((i, end))
            i = end
            continue
        i += 1
    return spans


def _segments(text: str) -> list[tuple[str, bool]]:
    """SQL text as (segment, is a comment) pairs, in order."""
    segments: list[tuple[str, bool]] = []
    last = 0
    for start, end in sql_comments(text):
        segments += [(text[last:start], False), (text[start:end], True)]
        last = end
    segments.append((text[last:], False))
    return [(segment, comment) for segment, comment in segments if segment]


def _is_statement(name: str) -> bool:
    return name in FACTS and FACTS[name].kind is FactKind.STATEMENT


def misplaced_statements(template: str) -> list[str]:
    """Facts holding SQL the audited database wrote (``{index_definition}``) that ``template``
    places where they would run: in a shell command, or in SQL outside a ``--`` comment.
    Prose may show them. A statement from the audited database can call functions its owner
    wrote; whoever applies a fix runs with more privileges than that owner, so it is only
    ever shown, for a person to read."""
    target = target_of(template)
    if target == "text":
        return []
    if target == "shell":
        return sorted({name for name in placeholders(template) if _is_statement(name)})
    return sorted(
        {
            name
            for segment, comment in _segments(template)
            if not comment
            for name in placeholders(segment)
            if _is_statement(name)
        }
    )


def _lacks(name: str, facts: Facts) -> bool:
    if name in FACTS and FACTS[name].kind is FactKind.PERSON:
        return False
    return facts.get(name) in (None, "", ())


def _without_unfilled_comments(template: str, facts: Facts) -> str:
    """The SQL template without the comments that name a fact the finding lacks."""
    kept: list[str] = []
    for segment, comment in _segments(template):
        if comment and any(_lacks(name, facts) for name in placeholders(segment)):
            if kept:
                kept[-1] = kept[-1].rstrip(" \t")
            continue
        kept.append(segment)
    return "".join(kept)


def _values(
    template: str, facts: Mapping[str, str], params: Mapping[str, Any], target: str
) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in placeholders(template):
        if name in values:
            continue
        if name in FACTS and FACTS[name].kind is FactKind.PERSON:
            values[name] = _person(name, params, target)
        elif name in facts and facts[name] != "":
            values[name] = _quoted(name, facts[name], facts, target)
        else:
            raise MissingFact(name)
    return values


def _render_one(
    template: str, facts: Mapping[str, str], params: Mapping[str, Any], target: str
) -> str:
    if target != "sql":
        return template.format(**_values(template, facts, params, target))
    rendered = []
    for segment, comment in _segments(template):
        text = segment.format(**_values(segment, facts, params, target))
        rendered.append(_one_line(text) if comment else text)
    return "".join(rendered)


def render(template: str, facts: Facts, params: Mapping[str, Any] | None = None) -> str:
    """The fix for one finding; the template as it is when it names no fact.

    Raises ``MissingFact`` when the finding lacks a fact the template names (outside a SQL
    comment), ``MisplacedStatement`` when it would run SQL the audited database wrote.
    """
    unscripted = facts.get("unscripted")
    if isinstance(unscripted, str) and unscripted.strip():
        return " ".join(unscripted.split())
    if not template:
        return ""
    params = params or {}
    target = target_of(template)
    misplaced = misplaced_statements(template)
    if misplaced:
        raise MisplacedStatement(misplaced[0])
    if target == "sql":
        template = _without_unfilled_comments(template, facts)
    used = set(placeholders(template))
    spread = {k: v for k, v in facts.items() if isinstance(v, tuple) and k in used}
    scalar = {k: v for k, v in facts.items() if isinstance(v, str)}
    if any(not values for values in spread.values()):
        raise MissingFact(next(k for k, v in spread.items() if not v))
    if len({len(values) for values in spread.values()}) > 1:
        raise ValueError(f"parallel facts of different lengths: {sorted(spread)}")
    count = len(next(iter(spread.values()))) if spread else 1
    variants = [{**scalar, **{k: v[i] for k, v in spread.items()}} for i in range(count)]
    text = "\n".join(_render_one(template, variant, params, target) for variant in variants)
    if target == "shell" and facts.get("restart") == "required" and "server_id" in facts:
        parameter = facts.get("parameter", "this parameter")
        text += (
            f" && az postgres flexible-server restart --ids {shlex.quote(str(facts['server_id']))}"
            f"  # {parameter} is static: Azure applies it only after a restart"
        )
    return text


def render_or_explain(template: str, facts: Facts, params: Mapping[str, Any] | None = None) -> str:
    """``render``, or the template with a note when a fact is missing (never a half-filled
    command)."""
    try:
        return render(template, facts, params)
    except MissingFact as missing:
        return f"(not rendered: this finding has no {missing.args[0]}) {template}"
    except MisplacedStatement as misplaced:
        return f"(not rendered: {{{misplaced.args[0]}}} may only appear in a SQL comment)"


def fact_value(value: FactValue) -> str:
    return value if isinstance(value, str) else ", ".join(value)


__all__ = [
    "NON_TRANSACTIONAL",
    "MisplacedStatement",
    "MissingFact",
    "misplaced_statements",
    "placeholders",
    "quote_ident",
    "quote_literal",
    "render",
    "render_or_explain",
    "sql_comments",
    "target_of",
]
