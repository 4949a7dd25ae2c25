"""Azure Resource Graph for the ARM emulator: the ``resources`` table, the KQL the tool sends,
``$skipToken`` paging and the per-user quota.

What is modelled, and from where:

- ``POST /providers/Microsoft.ResourceGraph/resources`` with a JSON body ``{subscriptions,
  managementGroups, query, options: {$top, $skip, $skipToken, resultFormat}}`` answered with
  ``{totalRecords, count, resultTruncated, facets, data, $skipToken}``: the REST reference
  ("Resources - Resources") and its examples (shared/reference/arm-examples/monitor/
  ``Resources*.json``). ``data`` is an array of objects (``resultFormat: objectArray``).
- At most 1,000 rows a page; more is reached with the ``$skipToken`` the page carries
  (shared/reference/README.md: "Paging: 1,000 rows at most, ``$skipToken``"). A ``$top``
  above 1,000 is answered with 1,000 rows; without ``$top`` the emulator uses 1,000 too.
- The ``resources`` table: flexible servers (``microsoft.dbforpostgresql/flexibleservers``,
  ``properties`` as in the ARM body) and metric alerts (``microsoft.insights/metricalerts``);
  no child resources (configurations, firewall rules, ...), as the reference says. ``type`` is
  lower case, as in the REST examples.
- The quota: 15 queries per 5-second window per user, reported on every answer by
  ``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after`` (``hh:mm:ss``) (Microsoft,
  "Guidance for throttled requests in Azure Resource Graph"). A query beyond it is answered 429
  with those headers and ``Retry-After`` (seconds until the window resets).

The KQL the emulator understands is exactly the shape engram-audit sends (anything else is a
400 ``UnsupportedQuery``, so a change in the tool's queries shows up in the tests)::

    resources
    | where type =~ '<type>'
    [| where <column> =~ '<value>' [or <column> =~ '<value>' ...]]...
    | project <column>, <column>, ...
    | order by id asc

``<column>`` is one of ``id``, ``name``, ``type``, ``resourceGroup``, ``subscriptionId``,
``location``; string literals are single-quoted with ``\\'`` and ``\\\\`` escapes; ``=~`` compares
case-insensitively, as in KQL; the table name matches in any case.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
MAX_ROWS = 1000
QUOTA = 15
WINDOW_SECONDS = 5.0
FILTER_COLUMNS = ("id", "name", "type", "resourceGroup", "subscriptionId", "location")
FLEX_TYPE = "microsoft.dbforpostgresql/flexibleservers"
ALERT_TYPE = "microsoft.insights/metricalerts"

_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/", re.IGNORECASE)
_LITERAL = r"'((?:[^'\\]|\\.)*)'"
_CLAUSE = re.compile(rf"(\w+)\s*=~\s*{_LITERAL}")


class UnsupportedQuery(ValueError):
    """The query is not one of the shapes the emulator understands."""


@dataclass(frozen=True)
class Query:
    filters: tuple[tuple[tuple[str, str], ...], ...]  # AND of ORs of (column, value)
    columns: tuple[str, ...]


def parse(text: str) -> Query:
    stages = _split_pipes(text)
    if not stages or stages[0].strip().casefold() != "resources":
        raise UnsupportedQuery("the query must start with the resources table")
    filters: list[tuple[tuple[str, str], ...]] = []
    columns: tuple[str, ...] | None = None
    ordered = False
    for stage in stages[1:]:
        stage = stage.strip()
        word, _, rest = stage.partition(" ")
        if word == "where" and columns is None:
            filters.append(_disjunction(rest))
        elif word == "project" and columns is None:
            columns = tuple(name.strip() for name in rest.split(","))
            if not all(re.fullmatch(r"[A-Za-z]\w*", name) for name in columns):
                raise UnsupportedQuery(f"unsupported projection: {rest!r}")
        elif stage == "order by id asc" and columns is not None and not ordered:
            ordered = True
        else:
            raise UnsupportedQuery(f"unsupported stage: {stage[:80]!r}")
    if columns is None or "id" not in columns or not ordered:
        raise UnsupportedQuery("the query must project id and end with | order by id asc")
    if not filters or filters[0] != (("type", filters[0][0][1]),):
        raise UnsupportedQuery("the first filter must be: where type =~ '<type>'")
    return Query(tuple(filters), columns)


def _split_pipes(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == "'":
            quoted = not quoted
        elif char == "|" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _disjunction(text: str) -> tuple[tuple[str, str], ...]:
    """``col =~ 'v' or col =~ 'w' ...`` as ((col, v), (col, w), ...)."""
    clauses: list[tuple[str, str]] = []
    position = 0
    for match in _CLAUSE.finditer(text):
        separator = text[position : match.start()].strip()
        if separator != ("or" if clauses else ""):
            raise UnsupportedQuery(f"unsupported condition: {text.strip()[:80]!r}")
        if match[1] not in FILTER_COLUMNS:
            raise UnsupportedQuery(f"unsupported column: {match[1]!r}")
        clauses.append((match[1], re.sub(r"\\(.)", r"\1", match[2])))
        position = match.end()
    if not clauses or text[position:].strip():
        raise UnsupportedQuery(f"unsupported condition: {text.strip()[:80]!r}")
    return tuple(clauses)


# --- the table -------------------------------------------------------------------------------


def server_row(body: dict[str, Any]) -> dict[str, Any]:
    return _row(body, FLEX_TYPE)


def alert_row(body: dict[str, Any]) -> dict[str, Any]:
    return _row(body, ALERT_TYPE)


def _row(body: dict[str, Any], kind: str) -> dict[str, Any]:
    identifier = str(body.get("id", ""))
    match = _ID.match(identifier)
    return {
        "id": identifier,
        "name": body.get("name"),
        "type": kind,
        "tenantId": None,
        "kind": body.get("kind"),
        "location": body.get("location"),
        "resourceGroup": match["rg"].casefold() if match else None,
        "subscriptionId": match["sub"] if match else None,
        "managedBy": None,
        "sku": body.get("sku"),
        "plan": None,
        "properties": body.get("properties"),
        "tags": body.get("tags"),
        "identity": body.get("identity"),
        "zones": body.get("zones"),
        "extendedLocation": None,
    }


@dataclass
class _Window:
    started: float
    used: int = 0


@dataclass
class ResourceGraph:
    """The emulator's Resource Graph: rows, management groups and each user's quota."""

    quota: int = QUOTA
    window_seconds: float = WINDOW_SECONDS
    rows: list[dict[str, Any]] = field(default_factory=list)
    management_groups: dict[str, set[str]] = field(default_factory=dict)
    queries: list[dict[str, Any]] = field(default_factory=list)
    throttled: int = 0
    _windows: dict[str, _Window] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_management_group(self, group: str, subscriptions: list[str]) -> None:
        self.management_groups.setdefault(group.casefold(), set()).update(
            s.casefold() for s in subscriptions
        )

    # --- quota --------------------------------------------------------------------------

    def admit(self, user: str) -> tuple[bool, dict[str, str]]:
        """Count one query for ``user``: whether it is within the quota, and the headers."""
        with self._lock:
            now = time.monotonic()
            window = self._windows.get(user)
            if window is None or now - window.started >= self.window_seconds:
                window = self._windows[user] = _Window(now)
            resets = max(window.started + self.window_seconds - now, 0.0)
            admitted = window.used < self.quota
            if admitted:
                window.used += 1
            else:
                self.throttled += 1
            headers = {
                "x-ms-user-quota-remaining": str(max(self.quota - window.used, 0)),
                "x-ms-user-quota-resets-after": _hms(resets),
            }
            if not admitted:
                headers["Retry-After"] = str(max(math.ceil(resets), 1))
            return admitted, headers

    # --- queries ------------------------------------------------------------------------

    def answer(
        self,
        body: dict[str, Any],
        visible_subscriptions: set[str],
        readable: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """``readable``: whether the caller may read a row; Resource Graph leaves out the rest
        without a word (tests.support.arm_permissions)."""
        with self._lock:
            self.queries.append(body)
        query = parse(str(body.get("query", "")))
        scope = self._scope(body, visible_subscriptions)
        rows = [
            row
            for row in sorted(self.rows, key=lambda r: str(r["id"]).casefold())
            if str(row.get("subscriptionId") or "").casefold() in scope
            and all(_matches(row, alternatives) for alternatives in query.filters)
            and (readable is None or readable(row))
        ]
        options = body.get("options") or {}
        top = options.get("$top")
        size = MAX_ROWS if not isinstance(top, int) or top <= 0 else min(top, MAX_ROWS)
        offset = _offset(options.get("$skipToken"))
        skip = options.get("$skip")
        start = offset if offset is not None else skip if isinstance(skip, int) else 0
        page = rows[start : start + size]
        answer: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(page),
            "resultTruncated": "false",
            "facets": [],
            "data": [{column: row.get(column) for column in query.columns} for row in page],
        }
        if start + size < len(rows):
            answer["$skipToken"] = _token(start + size)
        return answer

    def _scope(self, body: dict[str, Any], visible: set[str]) -> set[str]:
        subscriptions = body.get("subscriptions")
        groups = body.get("managementGroups")
        if subscriptions:
            return {str(s).casefold() for s in subscriptions} & visible
        if groups:
            found: set[str] = set()
            for group in groups:
                found |= self.management_groups.get(str(group).casefold(), set())
            return found & visible
        return visible


def _matches(row: dict[str, Any], alternatives: tuple[tuple[str, str], ...]) -> bool:
    return any(
        str(row.get(column) or "").casefold() == value.casefold() for column, value in alternatives
    )


def _token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: Any) -> int | None:
    if not isinstance(token, str) or not token:
        return None
    try:
        offset = json.loads(base64.b64decode(token))["offset"]
    except (ValueError, KeyError, TypeError):
        raise UnsupportedQuery(f"unknown $skipToken {token[:40]!r}") from None
    if not isinstance(offset, int) or offset < 0:
        raise UnsupportedQuery("unknown $skipToken")
    return offset


def _hms(seconds: float) -> str:
    whole = math.ceil(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"
