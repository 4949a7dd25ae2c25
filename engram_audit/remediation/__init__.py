"""Fixes that name the real resource: a rule's remediation template rendered per finding.

``render(template, facts, params)`` fills a policy's ``remediation`` text with the facts of one
finding (``checks.facts``), quoted for the text's target:

- ``az ...`` / ``psql ...``: shell words (``shlex.quote``); a fact only a person can supply (an
  action group id) comes from the rule's remediation_params when set, else it is a required
  shell variable (``"${ACTION_GROUP_ID:?set ...}"``), so the command still parses;
- SQL (the text starts with a statement keyword): names as ``quote_ident`` would quote them,
  ``{table}`` and ``{index}`` qualified by the finding's ``{schema}``, values as literals;
- anything else is prose: values as they are.

A tuple-valued fact (several firewall rules) renders the template once per value, one per line.
A static parameter (``restart: required``) gets the restart that applies it appended. Scripts
built from a report's failures are in ``remediation.scripts``.
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
    """``shell``, ``sql`` or ``text``: how the template's values are quoted."""
    first = template.lstrip().split(None, 1)[0] if template.strip() else ""
    if first in {"az", "psql"}:
        return "shell"
    if first.upper() in SQL_KEYWORDS:
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
        if kind is FactKind.QUALIFIED:
            schema = facts.get("schema", "")
            return f"{quote_ident(schema)}.{quote_ident(value)}" if schema else quote_ident(value)
        if kind is FactKind.IDENTIFIER:
            return quote_ident(value)
        return quote_literal(value)
    return " ".join(value.split())  # prose: one line


class MissingFact(LookupError):
    """The finding lacks a fact its rule's template names."""


def _render_one(
    template: str, facts: Mapping[str, str], params: Mapping[str, Any], target: str
) -> str:
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
    return template.format(**values)


def render(template: str, facts: Facts, params: Mapping[str, Any] | None = None) -> str:
    """The fix for one finding; the template as it is when it names no fact.

    Raises ``MissingFact`` when the finding lacks a fact the template names.
    """
    if not template:
        return ""
    params = params or {}
    target = target_of(template)
    used = set(placeholders(template))
    spread = {k: v for k, v in facts.items() if isinstance(v, tuple) and k in used}
    scalar = {k: v for k, v in facts.items() if isinstance(v, str)}
    if any(not values for values in spread.values()):
        raise MissingFact(next(k for k, v in spread.items() if not v))
    variants: list[dict[str, str]] = [scalar]
    for key, values in spread.items():
        variants = [{**variant, key: value} for variant in variants for value in values]
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


def fact_value(value: FactValue) -> str:
    return value if isinstance(value, str) else ", ".join(value)


__all__ = [
    "NON_TRANSACTIONAL",
    "MissingFact",
    "placeholders",
    "quote_ident",
    "quote_literal",
    "render",
    "render_or_explain",
    "target_of",
]
