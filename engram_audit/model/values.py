"""Normalise values the way Azure and PostgreSQL really send them.

ARM sends enums in any casing, numbers as strings, booleans as ``true``/``false`` or
``on``/``off``, and comma-separated sets in any case; resource ids vary in case. PostgreSQL
stores a storage parameter (``WITH (autovacuum_enabled = of)``) exactly as it was written, in
any spelling its boolean parser accepts. Every comparison in the checks goes through these
functions so one rule holds everywhere.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

# ARM's enum spellings of a switch (``Enabled``/``Disabled``); PostgreSQL does not accept them.
_ARM_TRUE = frozenset({"enabled", "enable"})
_ARM_FALSE = frozenset({"disabled", "disable"})


def fold(value: object) -> str:
    """Case- and separator-insensitive form of an enum-like value (``Zone-Redundant`` ~ ``zoneredundant``)."""
    return re.sub(r"[\s_\-]", "", text(value)).casefold()


def text(value: object) -> str:
    """Readable string of a wire value; enum members report their ``.value``."""
    if value is None:
        return "missing"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def pg_bool(value: str) -> bool | None:
    """A boolean exactly as PostgreSQL's ``parse_bool`` reads it; None when PostgreSQL rejects it.

    ``true``, ``false``, ``yes``, ``no``, ``on``, ``off``, ``1``, ``0`` in any case, or a unique
    prefix of one of them: ``t``, ``fa``, ``y``, ``n``, ``of`` ... but not ``o`` (``on`` or
    ``off``?), and ``1``/``0`` only alone. No surrounding blanks are skipped: this is what a
    storage parameter such as ``autovacuum_enabled`` accepts (reloptions.c validates booleans
    with ``parse_bool`` and stores the text as written). Sources: PostgreSQL
    ``src/backend/utils/adt/bool.c`` (``parse_bool_with_len``) and the documentation's boolean
    parameter syntax, https://www.postgresql.org/docs/current/config-setting.html ("any
    unambiguous prefix of one of these").
    """
    if not value or not value.isascii():
        return None  # bool.c folds ASCII letters only
    folded = value.lower()
    if folded in ("1", "0"):
        return folded == "1"
    if folded[0] == "o":
        # bool.c compares at least two characters here: "o" alone is ambiguous.
        if len(folded) < 2:
            return None
        if "on".startswith(folded):
            return True
        return False if "off".startswith(folded) else None
    for word, meaning in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if folded[0] == word[0]:
            return meaning if word.startswith(folded) else None
    return None


def as_bool(value: object) -> bool | None:
    """Every spelling PostgreSQL accepts (``pg_bool``), ARM's ``Enabled``/``Disabled``; else None.

    Surrounding blanks are ignored, as the ``boolean`` type's input function does; a value
    that is neither (``"maybe"``, ``"o"``, ``""``) is None, so a check reports it as unreadable
    rather than guessing.
    """
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    stripped = text(value).strip()
    folded = stripped.casefold()
    if folded in _ARM_TRUE:
        return True
    if folded in _ARM_FALSE:
        return False
    return pg_bool(stripped)


def as_int(value: object) -> int | None:
    """An integer sent as a number or a numeric string; None for anything else (``"seven"``)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    try:
        return int(str(value).strip())
    except ValueError:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() else None


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def as_set(value: object) -> frozenset[str]:
    """A comma-separated set in any case: ``"VECTOR, pg_stat_statements"`` -> {vector, pg_stat_statements}."""
    if value is None:
        return frozenset()
    items = value if isinstance(value, list | tuple | set | frozenset) else text(value).split(",")
    return frozenset(str(item).strip().casefold() for item in items if str(item).strip())


def same_resource_id(left: str, right: str) -> bool:
    """ARM ids differ in case between APIs (``resourceGroups`` vs ``resourcegroups``)."""
    return left.rstrip("/").casefold() == right.rstrip("/").casefold()


def resource_id_covers(scope: str, resource_id: str) -> bool:
    """True when ``scope`` is the resource itself or one of its parents (subscription, group)."""
    scope_folded = scope.rstrip("/").casefold()
    resource_folded = resource_id.rstrip("/").casefold()
    return resource_folded == scope_folded or resource_folded.startswith(scope_folded + "/")


def dig(document: Any, *path: str) -> Any:
    """Read a nested key whatever its casing (``properties.highAvailability.mode``); None if absent."""
    current = document
    for key in path:
        if not isinstance(current, dict):
            return None
        if key in current:
            current = current[key]
            continue
        wanted = key.casefold()
        match = next((k for k in current if isinstance(k, str) and k.casefold() == wanted), None)
        if match is None:
            return None
        current = current[match]
    return current
