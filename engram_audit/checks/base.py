"""What a check is: an id, the snapshot parts it reads, a params model, and a pure evaluation.

A check declares the parts it reads (``model.snapshot.PARTS``) and, where collection needs
its params (a table to count, variables to read), the requests it makes of a collector. The
collection plan is derived from those declarations; while evaluating, a check sees only the
parts it declared, so an undeclared read shows up as "not collected" in its cases, never as a
silent dependency on data the plan does not ask for.

A check also declares whether it can judge *planned* state (``planned=True``): a Terraform
plan or ARM template describes a server before it exists, so a check that needs a running
server (backup recency, every ``pg.*``) is SKIP "needs live state" on such a snapshot. The
declaration is the only place this is decided (``Check.needs_live_state``).

A check's docstring is its documentation: the first line is the summary, then what it
checks and why, then a paragraph starting ``Remediation:``. ``engram-audit explain ID``
and the README catalogue are generated from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from engram_audit.checks.facts import FACTS, SOURCE_FACTS, Facts, FactValue, arm_facts
from engram_audit.model.base import Source, Status
from engram_audit.model.plan import CollectionRequest
from engram_audit.model.snapshot import (
    PARTS,
    AzureServer,
    CollectionIssue,
    CollectionNote,
    DsnEntry,
    PostgresDatabase,
    Snapshot,
    part_source,
    restrict_database,
    restrict_server,
)


class Params(BaseModel):
    """Base of every params model: unknown keys are policy errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


@dataclass(frozen=True)
class Outcome:
    resource: str
    status: Status
    expected: str = ""
    actual: str = ""
    message: str = ""
    facts: Facts = field(default_factory=dict)
    """What a fix needs to name the real resource (``checks.facts``); server facts of an ARM
    resource are added by ``Check.evaluate``."""


def passed(
    resource: str, expected: str, actual: str, message: str = "", *, facts: Facts | None = None
) -> Outcome:
    return Outcome(resource, Status.PASS, expected, actual, message, dict(facts or {}))


def failed(
    resource: str, expected: str, actual: str, message: str = "", *, facts: Facts | None = None
) -> Outcome:
    return Outcome(resource, Status.FAIL, expected, actual, message, dict(facts or {}))


def verdict(
    ok: bool,
    resource: str,
    expected: str,
    actual: str,
    message: str = "",
    *,
    facts: Facts | None = None,
) -> Outcome:
    status = Status.PASS if ok else Status.FAIL
    return Outcome(resource, status, expected, actual, message, dict(facts or {}))


def with_facts(outcome: Outcome, facts: Mapping[str, FactValue]) -> Outcome:
    """The outcome with ``facts`` added (the outcome's own facts win)."""
    return replace(outcome, facts={**facts, **outcome.facts}) if facts else outcome


def skipped(resource: str, reason: str, expected: str = "", actual: str = "") -> Outcome:
    return Outcome(resource, Status.SKIP, expected, actual, reason)


def errored(resource: str, reason: str, expected: str = "") -> Outcome:
    return Outcome(resource, Status.ERROR, expected, "unknown", reason)


class CheckContext:
    """Read-only view of a snapshot for checks; ``now`` is the collection time, so runs are pure.

    With ``reads`` (the check's declaration) the parts it did not declare look uncollected.
    """

    def __init__(self, snapshot: Snapshot, reads: frozenset[str] | None = None) -> None:
        self.snapshot = snapshot
        self.now: datetime = snapshot.collected_at
        self._reads = reads

    @property
    def azure_servers(self) -> tuple[AzureServer, ...]:
        servers = self.snapshot.azure.servers if self.snapshot.azure else ()
        if self._reads is None:
            return servers
        return tuple(restrict_server(server, self._reads) for server in servers)

    @property
    def databases(self) -> tuple[PostgresDatabase, ...]:
        databases = self.snapshot.postgres.databases if self.snapshot.postgres else ()
        if self._reads is None:
            return databases
        return tuple(restrict_database(database, self._reads) for database in databases)

    @property
    def dsn_entries(self) -> tuple[DsnEntry, ...]:
        if self._reads is not None and "dsn.entries" not in self._reads:
            return ()
        return self.snapshot.dsn.entries if self.snapshot.dsn else ()

    def issue_for(self, resource: str, part: str | None) -> CollectionIssue | None:
        folded = resource.casefold()
        for issue in self.snapshot.issues:
            if issue.resource.casefold() == folded and issue.part in (part, None):
                return issue
        return None

    def note_for(self, resource: str, part: str) -> CollectionNote | None:
        """The collector's note that accounts for an uncollected part (an empty scope that
        ``--allow-empty`` accepted), if any."""
        folded = resource.casefold()
        for note in self.snapshot.notes:
            if note.resource.casefold() == folded and note.part == part:
                return note
        return None

    def not_collected(
        self,
        resource: str,
        part: str,
        expected: str = "",
        *,
        issue_resource: str | None = None,
        fallback_resource: str | None = None,
    ) -> Outcome:
        """ERROR for data the snapshot lacks, with the collector's reason when it recorded one;
        SKIP when the collector noted why it was left out on purpose (an accepted empty scope).

        ``fallback_resource``: where to look for the reason when nothing is recorded on
        ``issue_resource`` (a table's issue, else its database's)."""
        where = issue_resource or resource
        note = self.note_for(where, part)
        if note is not None:
            return skipped(resource, note.note, expected)
        issue = self.issue_for(where, part)
        if issue is None and fallback_resource is not None:
            issue = self.issue_for(fallback_resource, part)
        reason = f"{part.replace('_', ' ')} not collected"
        if issue is not None:
            reason += f": {issue.reason}"
        return errored(resource, reason, expected)


def _unwrap(text: str) -> str:
    """Docstring paragraphs as single lines, paragraphs separated by one blank line."""
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


P = TypeVar("P", bound=Params)
Evaluator = Callable[[P, CheckContext], Iterable[Outcome]]
Requests = Callable[[P], Iterable[CollectionRequest]]


def _no_requests(params: Params) -> Iterable[CollectionRequest]:
    return ()


@dataclass(frozen=True)
class Check(Generic[P]):
    id: str
    sources: frozenset[Source]
    params_model: type[P]
    run: Evaluator[P]
    reads: frozenset[str] = frozenset()
    requests: Requests[P] = _no_requests
    planned: bool = False
    provides: frozenset[str] = frozenset()

    @property
    def facts(self) -> frozenset[str]:
        """The facts its outcomes may carry: those of its sources and those it declares."""
        common = frozenset().union(*(SOURCE_FACTS[s] for s in self.sources))
        return common | self.provides

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.run.__doc__ or "")

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else self.id

    @property
    def description(self) -> str:
        body = self.doc.split("\n", 1)[1] if "\n" in self.doc else ""
        return _unwrap(body.split("Remediation:", 1)[0])

    @property
    def remediation(self) -> str:
        return _unwrap(self.doc.split("Remediation:", 1)[1]) if "Remediation:" in self.doc else ""

    def parse_params(self, raw: dict[str, Any]) -> P:
        return self.params_model.model_validate(raw)

    def needs_live_state(self, snapshot: Snapshot) -> str | None:
        """Why this check cannot judge the snapshot's planned state; None when it can."""
        origin = snapshot.origin
        if origin is None or self.planned:
            return None
        what = "plan" if origin.kind == "plan" else "template"
        files = ", ".join(f.path for f in origin.files if f.role != "parameters")
        return (
            f"needs live state: {self.id} judges a running server, and this snapshot is the "
            f"planned state of a {what} ({files})"
        )

    def evaluate(self, params: P, context: CheckContext) -> Iterator[Outcome]:
        if context.snapshot.origin is not None and self.planned:
            # Planned state: the same check, run over what the plan leaves open.
            from engram_audit.checks.planned import evaluate_planned

            outcomes: Iterable[Outcome] = evaluate_planned(self, params, context.snapshot)
        else:
            outcomes = self.run(params, context)
        for outcome in outcomes:
            yield (
                with_facts(outcome, arm_facts(outcome.resource))
                if Source.AZURE in self.sources
                else outcome
            )

    def evaluate_snapshot(self, params: P, snapshot: Snapshot) -> Iterator[Outcome]:
        """Evaluate with only the declared parts visible, as the engine does."""
        yield from self.evaluate(params, CheckContext(snapshot, self.reads))


def check(
    check_id: str,
    *,
    sources: Iterable[Source],
    params: type[P],
    reads: Iterable[str],
    requests: Requests[P] | None = None,
    planned: bool = False,
    facts: Iterable[str] = (),
) -> Callable[[Evaluator[P]], Check[P]]:
    """Declare a check; it is registered only by being listed in ``checks.CATALOGUE``.

    ``planned=True``: the check can judge planned state (a Terraform plan, an ARM template);
    otherwise it is SKIP "needs live state" on such a snapshot. ``facts`` names what its
    outcomes attach beyond its sources' facts (``checks.facts``).
    """
    provides = frozenset(facts)
    if strange := sorted(provides - FACTS.keys()):
        raise TypeError(f"check {check_id} provides unknown facts {strange}: see checks.facts")
    declared = frozenset(reads)
    source_set = frozenset(sources)
    unknown = sorted(declared - PARTS.keys())
    if unknown:
        raise TypeError(f"check {check_id} reads unknown parts {unknown}: see model.snapshot.PARTS")
    foreign = sorted(p for p in declared if part_source(p) not in source_set)
    if foreign:
        raise TypeError(f"check {check_id} reads {foreign} outside its sources")

    def declare(run: Evaluator[P]) -> Check[P]:
        if not (run.__doc__ or "").strip():
            raise TypeError(f"check {check_id} needs a docstring: it is the documentation")
        return Check(
            id=check_id,
            sources=source_set,
            params_model=params,
            run=run,
            reads=declared,
            requests=requests or _no_requests,
            planned=planned,
            provides=provides,
        )

    return declare


def pg_resource(database: PostgresDatabase, obj: str | None = None) -> str:
    """``postgresql://host:port/db`` for the database, ``.../schema.table[.column]`` for an object."""
    base = f"postgresql://{database.target}"
    return f"{base}/{obj}" if obj else base


def pg_facts(database: PostgresDatabase, schema: str = "", **names: str) -> dict[str, FactValue]:
    """Facts naming a database object: ``pg_facts(db, "public", table="sessions")``."""
    facts: dict[str, FactValue] = {"database": database.database, **names}
    if schema:
        facts["schema"] = schema
    return facts


def pg_not_collected(
    context: CheckContext, database: PostgresDatabase, part: str, expected: str = ""
) -> Outcome:
    """ERROR on the database for a part its collector could not read (issues name the target)."""
    return context.not_collected(
        pg_resource(database), part, expected, issue_resource=database.target
    )
