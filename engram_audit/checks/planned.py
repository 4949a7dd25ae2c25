"""Judging planned state: the same checks, over what a plan or template leaves open.

A Terraform plan or an ARM template gives most of a server's values outright. Some it does not
(``snapshot.origin.planned``): a value known only after apply or a template parameter with no
value (``unknown``), a fact only a running server has, such as HA health (``live``), and
Azure's default for something not declared (``default``). Checks are not changed for this.
Each open value comes with the values it can take (``candidates``), and the check runs on
variants of the snapshot in which the open values take them:

- every variant gives a resource the same status: known values decided it, and the verdict
  stands (no Entra administrator declared fails whatever the authentication block becomes);
- the variants differ: ERROR naming the open values ("unknown until apply"), or SKIP "needs
  live state" when only live facts made the difference. Never a pass on an unknown: where the
  candidates are probes rather than every value (SKU names, addresses, thresholds), a pass
  that depends on them is ERROR too.

Which open values matter is found one value at a time (a value matters when changing it alone
changes a status), then every combination of those is judged. A verdict that one of Azure's
defaults decided says so: its actual carries "(Azure default)" and its message names the
attribute that was not declared; a server parameter taken from Azure's table is marked the same
way (its ``source`` is ``system-default``).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from engram_audit.checks.base import CheckContext, Outcome
from engram_audit.model.base import Status
from engram_audit.model.snapshot import (
    AZURE_PARTS,
    AzureSection,
    AzureServer,
    PlannedValue,
    Snapshot,
)

if TYPE_CHECKING:
    from engram_audit.checks.base import Check

# Combinations judged for one server before giving up with ERROR (each is one run of a check).
MAX_VARIANTS = 256
SYSTEM_DEFAULT = "system-default"
AZURE_DEFAULT = "Azure default"

Assignment = Mapping[int, Any]  # index into the open values -> the value it takes
Runner = Callable[[Assignment, Sequence[PlannedValue]], list[Outcome]]
_ABSENT = object()


@dataclass(frozen=True)
class _Key:
    """An outcome's identity across variants: its resource, and which of its outcomes it is."""

    resource: str
    occurrence: int


def evaluate_planned(check: Check[Any], params: Any, snapshot: Snapshot) -> Iterator[Outcome]:
    """The check's outcomes on planned state (see the module docstring)."""
    origin = snapshot.origin
    assert origin is not None  # only called for planned snapshots
    fields = {field for part in check.reads for field in AZURE_PARTS.get(part, ())}
    servers = {server.id.casefold(): server for server in _servers(snapshot)}
    values = [v for v in origin.planned if v.path and v.path[0] in fields]
    open_values = [v for v in values if v.state != "default"]
    defaults = [v for v in values if v.state == "default" and len(v.candidates) > 1]

    def run(assignment: Assignment, pool: Sequence[PlannedValue]) -> list[Outcome]:
        variant = _substituted(snapshot, pool, assignment)
        return list(check.run(params, CheckContext(variant, check.reads)))

    base_assignment = {i: _choices(v)[0] for i, v in enumerate(open_values)}
    base = run(base_assignment, open_values)
    plain = _keyed(run({}, open_values))  # open values absent: text without any candidate in it
    results: list[Outcome] = []
    judged: set[str] = set()
    for server_id in servers:
        mine = [i for i, v in enumerate(open_values) if v.server.casefold() == server_id]
        if not mine:
            continue
        judged.add(server_id)
        results += _judge_server(server_id, mine, open_values, base_assignment, run, plain)
    for outcome in base:
        owner = _owner(outcome.resource, servers)
        if owner is None or owner not in judged:
            results.append(outcome)
    labelled = _label_defaults(results, defaults, open_values, base_assignment, run, servers)
    yield from (_label_parameter(outcome, servers) for outcome in labelled)


def _servers(snapshot: Snapshot) -> tuple[AzureServer, ...]:
    return snapshot.azure.servers if snapshot.azure is not None else ()


def _choices(value: PlannedValue) -> tuple[Any, ...]:
    """The values an open value can take; one with none listed (no check reads it) is judged
    as absent."""
    return tuple(value.candidates) if value.candidates else (None,)


def _owner(resource: str, servers: Mapping[str, AzureServer]) -> str | None:
    """The server (folded id) a finding's resource belongs to: itself or one of its children."""
    folded = resource.rstrip("/").casefold()
    for server_id in servers:
        if folded == server_id or folded.startswith(server_id + "/"):
            return server_id
    return None


def _keyed(outcomes: Iterable[Outcome], server_id: str | None = None) -> dict[_Key, Outcome]:
    keyed: dict[_Key, Outcome] = {}
    counts: dict[str, int] = {}
    for outcome in outcomes:
        folded = outcome.resource.rstrip("/").casefold()
        if server_id is not None and not (
            folded == server_id or folded.startswith(server_id + "/")
        ):
            continue
        counts[folded] = counts.get(folded, 0) + 1
        keyed[_Key(folded, counts[folded])] = outcome
    return keyed


def _statuses(outcomes: Mapping[_Key, Outcome]) -> dict[_Key, Status]:
    return {key: outcome.status for key, outcome in outcomes.items()}


def _judge_server(
    server_id: str,
    mine: list[int],
    open_values: Sequence[PlannedValue],
    base_assignment: Assignment,
    run: Runner,
    plain: Mapping[_Key, Outcome],
) -> list[Outcome]:
    """One server's outcomes over its open values."""
    base = _keyed(run(base_assignment, open_values), server_id)
    variants = [base]
    relevant: list[int] = []
    moved: list[int] = []  # changed a text, not a status
    for index in mine:
        for choice in _choices(open_values[index])[1:]:
            outcomes = _keyed(run({**base_assignment, index: choice}, open_values), server_id)
            if _statuses(outcomes) != _statuses(base):
                relevant.append(index)
                break
            variants.append(outcomes)
            if _texts(outcomes) != _texts(base) and index not in moved:
                moved.append(index)
    if not relevant:
        return _combine(variants, [open_values[i] for i in moved], plain)
    combinations = 1
    for index in relevant:
        combinations *= len(_choices(open_values[index]))
    involved = [open_values[i] for i in relevant]
    if combinations > MAX_VARIANTS:
        return [_undecided(outcome, involved) for outcome in base.values()]
    variants = []
    for combination in itertools.product(*(_choices(open_values[i]) for i in relevant)):
        assignment = {**base_assignment, **dict(zip(relevant, combination, strict=True))}
        variants.append(_keyed(run(assignment, open_values), server_id))
    return _combine(variants, involved, plain)


def _texts(outcomes: Mapping[_Key, Outcome]) -> dict[_Key, tuple[str, str]]:
    return {key: (outcome.actual, outcome.message) for key, outcome in outcomes.items()}


def _combine(
    variants: Sequence[Mapping[_Key, Outcome]],
    involved: Sequence[PlannedValue],
    plain: Mapping[_Key, Outcome],
) -> list[Outcome]:
    keys: list[_Key] = []
    for variant in variants:
        keys += [key for key in variant if key not in keys]
    combined = []
    for key in keys:
        outcomes = [variant.get(key) for variant in variants]
        first = next(outcome for outcome in outcomes if outcome is not None)
        present = [outcome for outcome in outcomes if outcome is not None]
        if len(present) == len(outcomes) and len({o.status for o in present}) == 1:
            combined.append(_decided(present, involved, plain.get(key)))
        else:
            combined.append(_undecided(first, involved, [o.actual for o in present]))
    return combined


def _undecided(
    outcome: Outcome, involved: Sequence[PlannedValue], actuals: Sequence[str] = ()
) -> Outcome:
    """ERROR naming what is open, or SKIP when only facts of a running server are open (with
    what the declared values already say)."""
    reasons = "; ".join(f"{value.attribute}: {value.reason}" for value in involved)
    if all(value.state == "live" for value in involved):
        open_text = ", ".join(f"{value.attribute} {_short(value)}" for value in involved)
        actual = ", ".join([*_common(actuals), open_text]) if actuals else open_text
        return Outcome(outcome.resource, Status.SKIP, outcome.expected, actual, reasons)
    return Outcome(outcome.resource, Status.ERROR, outcome.expected, "unknown", reasons)


def _decided(
    outcomes: Sequence[Outcome], involved: Sequence[PlannedValue], plain: Outcome | None
) -> Outcome:
    """One status whatever the open values become: the verdict stands, and its text names no
    value a candidate put there (the server as it stands when only live facts moved the text,
    else what every variant says and what is open)."""
    first = outcomes[0]
    probed = [value for value in involved if not value.complete or not value.candidates]
    if first.status is Status.PASS and probed:
        # Every probe passed, but probes are not every value: never a pass on an unknown.
        return _undecided(first, probed)
    if all(o.actual == first.actual and o.message == first.message for o in outcomes):
        return first
    if (
        plain is not None
        and plain.status is first.status
        and all(value.state == "live" for value in involved)
    ):
        return plain
    open_text = ", ".join(f"{value.attribute} {_short(value)}" for value in involved)
    actual = ", ".join([*_common(o.actual for o in outcomes), open_text])
    common = _common((o.message for o in outcomes), separator="; ")
    message = "; ".join([*common, "decided by the declared values"])
    return replace(first, actual=actual, message=message)


def _short(value: PlannedValue) -> str:
    return "needs live state" if value.state == "live" else "unknown until apply"


def _common(texts: Iterable[str], separator: str = ", ") -> list[str]:
    """The parts (split at ``separator``) that every text has, in the first text's order."""
    split = [[part for part in text.split(separator) if part] for text in texts]
    if not split:
        return []
    return [part for part in split[0] if all(part in parts for parts in split[1:])]


def _label_defaults(
    outcomes: list[Outcome],
    defaults: Sequence[PlannedValue],
    open_values: Sequence[PlannedValue],
    base_assignment: Assignment,
    run: Runner,
    servers: Mapping[str, AzureServer],
) -> list[Outcome]:
    """Say so on a verdict that one of Azure's defaults decided (changing it changes the status)."""
    if not defaults:
        return outcomes
    notes: dict[_Key, list[PlannedValue]] = {}
    keyed_outcomes = _keyed(outcomes)
    for default in defaults:
        current = _current(default, servers)
        for choice in default.candidates:
            if choice == current:
                continue
            pool = [*open_values, default]
            assignment = {**base_assignment, len(open_values): choice}
            flipped = _statuses(_keyed(run(assignment, pool)))
            changed = [
                key
                for key, outcome in keyed_outcomes.items()
                if outcome.status in (Status.PASS, Status.FAIL)
                and key in flipped
                and flipped[key] != outcome.status
                and _owner(key.resource, servers) == default.server.casefold()
            ]
            for key in changed:
                if default not in notes.setdefault(key, []):
                    notes[key].append(default)
            if changed:
                break
    labelled = []
    for key, outcome in keyed_outcomes.items():
        found = notes.get(key)
        if not found:
            labelled.append(outcome)
            continue
        message = "; ".join(
            [outcome.message, *(f"{d.attribute} {d.reason}" for d in found)]
            if outcome.message
            else [f"{d.attribute} {d.reason}" for d in found]
        )
        labelled.append(replace(outcome, actual=_with_default(outcome.actual), message=message))
    return labelled


def _with_default(actual: str) -> str:
    return actual if "default" in actual.casefold() else f"{actual} ({AZURE_DEFAULT})"


def _label_parameter(outcome: Outcome, servers: Mapping[str, AzureServer]) -> Outcome:
    """A parameter finding on Azure's default value (not declared) says so."""
    if outcome.status not in (Status.PASS, Status.FAIL):
        return outcome
    owner = _owner(outcome.resource, servers)
    if owner is None:
        return outcome
    server = servers[owner]
    prefix = f"{server.id}/configurations/".casefold()
    if not outcome.resource.casefold().startswith(prefix) or server.parameters is None:
        return outcome
    name = outcome.resource[len(prefix) :]
    parameter = next(
        (p for key, p in server.parameters.items() if key.casefold() == name.casefold()), None
    )
    if parameter is None or parameter.source != SYSTEM_DEFAULT:
        return outcome
    value = parameter.value or "empty"
    note = f"{name} not declared: {AZURE_DEFAULT} ({value}) from Microsoft's parameter table"
    message = f"{outcome.message}; {note}" if outcome.message else note
    return replace(outcome, actual=_with_default(outcome.actual), message=message)


def _current(value: PlannedValue, servers: Mapping[str, AzureServer]) -> Any:
    server = servers.get(value.server.casefold())
    if server is None:
        return None
    field = value.path[0]
    found = _read({field: _dump(server, field)}, value.path)
    return None if found is _ABSENT else found


# --- substitution --------------------------------------------------------------------------


def _substituted(
    snapshot: Snapshot, values: Sequence[PlannedValue], assignment: Assignment
) -> Snapshot:
    """The snapshot with each assigned open value in place (None: absent)."""
    by_server: dict[str, list[tuple[PlannedValue, Any]]] = {}
    for index, choice in assignment.items():
        value = values[index]
        by_server.setdefault(value.server.casefold(), []).append((value, choice))
    if not by_server or snapshot.azure is None:
        return snapshot
    servers = tuple(
        _server_with(server, by_server[server.id.casefold()])
        if server.id.casefold() in by_server
        else server
        for server in snapshot.azure.servers
    )
    return snapshot.model_copy(update={"azure": AzureSection(servers=servers)})


def _server_with(server: AzureServer, changes: Sequence[tuple[PlannedValue, Any]]) -> AzureServer:
    """The server with the changes written: only the fields they touch are rebuilt."""
    fields = {value.path[0] for value, _ in changes}
    document = {field: _dump(server, field) for field in fields}
    for value, choice in changes:
        _write(document, value.path, choice)
    update = {field: _adapter(field).validate_python(document[field]) for field in fields}
    return server.model_copy(update=update)


def _dump(server: AzureServer, field: str) -> Any:
    return server.model_dump(mode="json", include={field}).get(field)


@cache
def _adapter(field: str) -> TypeAdapter[Any]:
    annotation = AzureServer.model_fields[field].annotation
    assert annotation is not None
    return TypeAdapter(annotation)


def _step(container: Any, key: str) -> tuple[Any, Any] | None:
    """(container, key) for one path step: dict keys, list items by name, id or index."""
    if isinstance(container, dict):
        return container, key
    if isinstance(container, list):
        for index, item in enumerate(container):
            if isinstance(item, dict) and key in (item.get("name"), item.get("id")):
                return container, index
        if key.isdigit() and int(key) < len(container):
            return container, int(key)
    return None


def _read(document: Any, path: Sequence[str]) -> Any:
    current = document
    for key in path:
        step = _step(current, key)
        if step is None:
            return _ABSENT
        container, slot = step
        if isinstance(container, dict) and slot not in container:
            return _ABSENT
        current = container[slot]
    return current


def _write(document: Any, path: Sequence[str], choice: Any) -> None:
    current = document
    for key in path[:-1]:
        step = _step(current, key)
        if step is None:
            return
        container, slot = step
        if isinstance(container, dict) and container.get(slot) is None:
            container[slot] = {}
        current = container[slot]
    step = _step(current, path[-1])
    if step is None:
        return
    container, slot = step
    if choice is None and isinstance(container, dict):
        container.pop(slot, None)
    else:
        container[slot] = copy.deepcopy(choice)
