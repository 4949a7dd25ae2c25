"""Normalise values the way Azure and PostgreSQL really send them.

ARM sends enums in any casing, numbers as strings, booleans as ``true``/``false`` or
``on``/``off``, and comma-separated sets in any case; resource ids vary in case. Every
comparison in the checks goes through these functions so one rule holds everywhere.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

_TRUE = frozenset({"on", "true", "yes", "1", "enabled", "enable"})
_FALSE = frozenset({"off", "false", "no", "0", "disabled", "disable"})


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


def as_bool(value: object) -> bool | None:
    """``on``/``off``, ``true``/``false``, ``Enabled``/``Disabled`` ... or None when it is neither."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    folded = text(value).strip().casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    return None


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
