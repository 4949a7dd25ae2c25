"""Drift: what changed between two snapshots (per resource, per property) or two reports.

Snapshot drift compares configuration, not activity: runtime statistics that change on every
collection (connection counts, row counts, vacuum times, backups taken, statement timings,
retention counts) are left out unless ``include_volatile`` is set, so a nightly job reports
drift only when someone changed something. A part that one side did not collect (``None``)
cannot be compared; it is listed under ``not_compared``, never reported as unchanged.

Lists are matched by their natural key (firewall rules by name, tables by schema and table,
indexes by name ...) so a reordering is not drift and a change names the item that changed.

A snapshot of planned state (a Terraform plan, an ARM template) against the live estate says
what the release changes: only what the plan or template declares is compared (its body
values, declared parameters, firewall rules, administrators and alerts); Azure defaults it
assumes for what is not declared, parts it does not describe and items it does not manage are
not changes the release makes. A value left open (unknown until apply) is listed under
``not_compared``. A template's server, whose id has no subscription yet, is matched by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from engram_audit.model import Finding, Report, Snapshot, Status
from engram_audit.model.snapshot import AzureServer, PlannedValue

ABSENT = "<absent>"

# Paths (``*`` matches anything) whose values change on every collection.
VOLATILE_PATHS: tuple[str, ...] = (
    "backups",
    "backups[*",
    "resource.systemData*",
    "connections*",
    "own_session*",
    "client_sessions*",
    "vacuums*",
    "statements*",
    "database_size_bytes",
    "tables[*].n_live_tup",
    "tables[*].n_dead_tup",
    "tables[*].last_*",
    "session_retention.counts*",
    "retention[*].counts*",
    "soft_deleted[*].soft_deleted",
    "soft_deleted[*].stale",
    "expired_facts.count",
)

# Natural keys tried in order for a list of objects; the first that every item has, uniquely.
_NATURAL_KEYS: tuple[tuple[str, ...], ...] = (
    ("schema_name", "table", "name"),
    ("schema_name", "table", "column"),
    ("schema_name", "table"),
    ("name",),
    ("id",),
    ("metric_name",),
    ("queryid",),
    ("state",),
    ("tenant",),
    ("object_id",),
    ("pid",),
    ("variable",),
)
_PROBLEMS = (Status.FAIL, Status.ERROR)


@dataclass(frozen=True)
class PropertyChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ResourceDrift:
    resource: str
    kind: str  # added | removed | changed
    changes: tuple[PropertyChange, ...] = ()


@dataclass(frozen=True)
class SnapshotDiff:
    old: Snapshot
    new: Snapshot
    resources: tuple[ResourceDrift, ...]
    not_compared: tuple[str, ...]

    @property
    def has_drift(self) -> bool:
        return bool(self.resources)


@dataclass(frozen=True)
class FindingChange:
    rule: str
    resource: str
    severity: str
    title: str
    old_status: str | None
    new_status: str | None


@dataclass(frozen=True)
class ReportDiff:
    old: Report
    new: Report
    new_findings: tuple[FindingChange, ...]
    fixed: tuple[FindingChange, ...]
    unchanged: tuple[FindingChange, ...]

    @property
    def has_drift(self) -> bool:
        return bool(self.new_findings or self.fixed)


# --- snapshots ------------------------------------------------------------------------------


def diff_snapshots(old: Snapshot, new: Snapshot, *, include_volatile: bool = False) -> SnapshotDiff:
    if old.origin is not None or new.origin is not None:
        return _diff_planned(old, new, include_volatile)
    before, after = _resources(old), _resources(new)
    drifts: list[ResourceDrift] = []
    not_compared: list[str] = [
        f"{label} snapshot: {issue.source.value} {issue.resource}"
        + (f" ({issue.part})" if issue.part else "")
        + f": {issue.reason}"
        for label, snapshot in (("old", old), ("new", new))
        for issue in snapshot.issues
    ]
    for source, label in (("azure", "Azure"), ("postgres", "PostgreSQL"), ("dsn", "DSN")):
        if (getattr(old, source) is None) != (getattr(new, source) is None):
            side = "old" if getattr(old, source) is None else "new"
            not_compared.append(f"{label} state was not collected in the {side} snapshot")

    for key in sorted(before.keys() | after.keys()):
        if key not in after:
            if getattr(new, before[key][0]) is not None:
                drifts.append(ResourceDrift(before[key][1], "removed"))
            continue
        if key not in before:
            if getattr(old, after[key][0]) is not None:
                drifts.append(ResourceDrift(after[key][1], "added"))
            continue
        name = after[key][1]
        changes, skipped = _compare(before[key][2], after[key][2], include_volatile)
        not_compared += [
            f"{name}: {part} not collected in the {side} snapshot" for part, side in skipped
        ]
        if changes:
            drifts.append(ResourceDrift(name, "changed", tuple(changes)))
    return SnapshotDiff(old, new, tuple(drifts), tuple(not_compared))


def _diff_planned(old: Snapshot, new: Snapshot, include_volatile: bool) -> SnapshotDiff:
    """What a release changes: planned state against live state (or another plan)."""
    planned = new if new.origin is not None else old
    other = old if planned is new else new
    other_servers = other.azure.servers if other.azure else ()
    drifts: list[ResourceDrift] = []
    not_compared: list[str] = []
    open_values = planned.origin.planned if planned.origin else ()
    for server in planned.azure.servers if planned.azure else ():
        twin = _twin(server, other_servers)
        projected = _declared(server, open_values)
        not_compared += [
            f"{server.id}: {value.attribute} {value.reason}"
            for value in open_values
            if value.state == "unknown" and value.server.casefold() == server.id.casefold()
        ]
        if twin is None:
            if other.azure is not None:
                drifts.append(ResourceDrift(server.id, "added" if planned is new else "removed"))
            continue
        counterpart = _projected(_dump(twin, {"id"}), projected)
        before, after = (counterpart, projected) if planned is new else (projected, counterpart)
        changes, _ = _compare(before, after, include_volatile)
        if changes:
            drifts.append(ResourceDrift(twin.id, "changed", tuple(changes)))
    if other.azure is None:
        not_compared.append("Azure state was not collected in the other snapshot")
    return SnapshotDiff(old, new, tuple(drifts), tuple(not_compared))


def _twin(server: AzureServer, servers: Iterable[AzureServer]) -> AzureServer | None:
    """The same server on the other side: by id, else (a template's server has no id yet) by
    name."""
    candidates = list(servers)
    folded = server.id.rstrip("/").casefold()
    for candidate in candidates:
        if candidate.id.rstrip("/").casefold() == folded:
            return candidate
    named = [c for c in candidates if c.name.casefold() == server.name.casefold()]
    return named[0] if len(named) == 1 else None


def _declared(server: AzureServer, open_values: Iterable[PlannedValue]) -> dict[str, Any]:
    """The parts of a planned server its plan or template declares."""
    body: dict[str, Any] = _dump(server, {"id"}).get("resource") or {}
    for value in open_values:
        if value.server.casefold() != server.id.casefold() or value.state != "default":
            continue
        if value.path[0] == "resource":
            _drop(body, value.path[1:])
    declared: dict[str, Any] = {"resource": body}
    if server.parameters is not None:
        declared["parameters"] = {
            name: {"value": parameter.value}
            for name, parameter in server.parameters.items()
            if parameter.source == "user-override"
        }
    for part in ("firewall_rules", "administrators", "metric_alerts"):
        items = getattr(server, part)
        if items:
            declared[part] = [item.model_dump(mode="json") for item in items]
    return declared


def _drop(document: dict[str, Any], path: tuple[str, ...]) -> None:
    current: Any = document
    for key in path[:-1]:
        current = current.get(key) if isinstance(current, dict) else None
    if isinstance(current, dict):
        current.pop(path[-1], None)


def _projected(live: Any, planned: Any) -> Any:
    """The live value limited to what the planned one declares (keys, list items by key)."""
    if isinstance(planned, dict) and isinstance(live, dict):
        return {key: _projected(live.get(key, ABSENT), value) for key, value in planned.items()}
    if _objects(planned) and _objects(live):
        keys = _natural_key([*planned, *live], planned, live)
        if keys:
            wanted = {_label(item, keys): item for item in planned}
            return [
                _projected(item, wanted[_label(item, keys)])
                for item in live
                if _label(item, keys) in wanted
            ]
    return live


def _resources(snapshot: Snapshot) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """identity -> (section, display name, properties)."""
    found: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for server in snapshot.azure.servers if snapshot.azure else ():
        found[server.id.rstrip("/").casefold()] = ("azure", server.id, _dump(server, {"id"}))
    for database in snapshot.postgres.databases if snapshot.postgres else ():
        name = f"postgresql://{database.target}"
        found[name] = ("postgres", name, _dump(database, {"target"}))
    for entry in snapshot.dsn.entries if snapshot.dsn else ():
        name = f"env:{entry.variable}"
        found[name] = ("dsn", name, _dump(entry, {"variable"}))
    return found


def _dump(model: BaseModel, exclude: set[str]) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude=exclude)
    return dumped


def _compare(
    old: dict[str, Any], new: dict[str, Any], include_volatile: bool
) -> tuple[list[PropertyChange], list[tuple[str, str]]]:
    changes: list[PropertyChange] = []
    skipped: list[tuple[str, str]] = []
    for part in sorted(old.keys() | new.keys()):
        if _volatile(part, include_volatile):
            continue
        left, right = old.get(part), new.get(part)
        if (left is None) != (right is None):
            # None is "not collected": unknown, so neither drift nor "same".
            skipped.append((part, "old" if left is None else "new"))
            continue
        changes += _changes(left, right, part, include_volatile)
    return changes, skipped


def _changes(old: Any, new: Any, path: str, include_volatile: bool) -> Iterator[PropertyChange]:
    """Changes between two values; an item or key present on one side only is one change."""
    if _volatile(path, include_volatile):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            yield from _pair(old, new, key, f"{path}.{key}", include_volatile)
        return
    if _objects(old) and _objects(new):
        keys = _natural_key([*old, *new], old, new)
        if keys:
            before = {_label(item, keys): item for item in old}
            after = {_label(item, keys): item for item in new}
            for label in sorted(before.keys() | after.keys()):
                yield from _pair(before, after, label, f"{path}[{label}]", include_volatile)
            return
    if old != new and not _same_wire_value(old, new):
        yield PropertyChange(path, old, new)


def _same_wire_value(old: Any, new: Any) -> bool:
    """ARM sends one value in several spellings ("Enabled"/"enabled", 35/"35"): the checks read
    them as equal, so a nightly drift job must not page anyone over the spelling."""
    scalars = (str, int, float)
    if isinstance(old, bool) or isinstance(new, bool):
        return False
    if not (isinstance(old, scalars) and isinstance(new, scalars)):
        return False
    return str(old).strip().casefold() == str(new).strip().casefold()


def _pair(
    old: dict[str, Any], new: dict[str, Any], key: str, path: str, include_volatile: bool
) -> Iterator[PropertyChange]:
    if key not in old or key not in new:
        if not _volatile(path, include_volatile):
            yield PropertyChange(path, old.get(key, ABSENT), new.get(key, ABSENT))
        return
    yield from _changes(old[key], new[key], path, include_volatile)


def _objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _label(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    return "/".join(str(item[k]) for k in keys)


def _natural_key(items: list[dict[str, Any]], *sides: list[dict[str, Any]]) -> tuple[str, ...]:
    for keys in _NATURAL_KEYS:
        if all(all(k in item for k in keys) for item in items) and all(
            len({_label(item, keys) for item in side}) == len(side) for side in sides
        ):
            return keys
    return ()


_VOLATILE = [
    re.compile("^" + ".*".join(map(re.escape, pattern.split("*"))) + "$")
    for pattern in VOLATILE_PATHS
]


def _volatile(path: str, include_volatile: bool) -> bool:
    return not include_volatile and any(pattern.match(path) for pattern in _VOLATILE)


# --- reports --------------------------------------------------------------------------------


def diff_reports(old: Report, new: Report) -> ReportDiff:
    """Findings needing attention (fail, error) that appeared, went away, or stayed."""
    before = {finding.identity: finding for finding in old.findings}
    after = {finding.identity: finding for finding in new.findings}
    new_findings: list[FindingChange] = []
    fixed: list[FindingChange] = []
    unchanged: list[FindingChange] = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        was_problem = was is not None and was.status in _PROBLEMS
        is_problem = now is not None and now.status in _PROBLEMS
        shown = now if now is not None else was
        if shown is None:  # the key came from one side, so one side exists
            continue
        change = _change(shown, was, now)
        if is_problem and not was_problem:
            new_findings.append(change)
        elif was_problem and not is_problem:
            fixed.append(change)
        elif was_problem and is_problem:
            unchanged.append(change)
    return ReportDiff(old, new, tuple(new_findings), tuple(fixed), tuple(unchanged))


def _change(shown: Finding, was: Finding | None, now: Finding | None) -> FindingChange:
    return FindingChange(
        rule=shown.rule,
        resource=shown.resource,
        severity=shown.severity.value,
        title=shown.title,
        old_status=was.status.value if was else None,
        new_status=now.status.value if now else None,
    )


def changes_as_dict(changes: Iterable[PropertyChange]) -> list[dict[str, Any]]:
    return [{"property": c.path, "old": c.old, "new": c.new} for c in changes]
