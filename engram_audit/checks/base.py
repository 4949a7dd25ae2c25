"""What a check is: an id, the sources it reads, a params model, and a pure evaluation.

A check's docstring is its documentation: the first line is the summary, then what it
checks and why, then a paragraph starting ``Remediation:``. ``engram-audit explain ID``
and the README catalogue are generated from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from engram_audit.model.base import Source, Status
from engram_audit.model.snapshot import (
    AzureServer,
    CollectionIssue,
    DsnEntry,
    PostgresDatabase,
    Snapshot,
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


def passed(resource: str, expected: str, actual: str, message: str = "") -> Outcome:
    return Outcome(resource, Status.PASS, expected, actual, message)


def failed(resource: str, expected: str, actual: str, message: str = "") -> Outcome:
    return Outcome(resource, Status.FAIL, expected, actual, message)


def verdict(ok: bool, resource: str, expected: str, actual: str, message: str = "") -> Outcome:
    return Outcome(resource, Status.PASS if ok else Status.FAIL, expected, actual, message)


def skipped(resource: str, reason: str, expected: str = "", actual: str = "") -> Outcome:
    return Outcome(resource, Status.SKIP, expected, actual, reason)


def errored(resource: str, reason: str, expected: str = "") -> Outcome:
    return Outcome(resource, Status.ERROR, expected, "unknown", reason)


class CheckContext:
    """Read-only view of a snapshot for checks; ``now`` is the collection time, so runs are pure."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.now: datetime = snapshot.collected_at

    @property
    def azure_servers(self) -> tuple[AzureServer, ...]:
        return self.snapshot.azure.servers if self.snapshot.azure else ()

    @property
    def databases(self) -> tuple[PostgresDatabase, ...]:
        return self.snapshot.postgres.databases if self.snapshot.postgres else ()

    @property
    def dsn_entries(self) -> tuple[DsnEntry, ...]:
        return self.snapshot.dsn.entries if self.snapshot.dsn else ()

    def issue_for(self, resource: str, part: str | None) -> CollectionIssue | None:
        folded = resource.casefold()
        for issue in self.snapshot.issues:
            if issue.resource.casefold() == folded and issue.part in (part, None):
                return issue
        return None

    def not_collected(
        self, resource: str, part: str, expected: str = "", *, issue_resource: str | None = None
    ) -> Outcome:
        """ERROR for data the snapshot lacks, with the collector's reason when it recorded one."""
        issue = self.issue_for(issue_resource or resource, part)
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


@dataclass(frozen=True)
class Check(Generic[P]):
    id: str
    sources: frozenset[Source]
    params_model: type[P]
    run: Evaluator[P]

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

    def evaluate(self, params: P, context: CheckContext) -> Iterator[Outcome]:
        yield from self.run(params, context)


def check(
    check_id: str, *, sources: Iterable[Source], params: type[P]
) -> Callable[[Evaluator[P]], Check[P]]:
    """Declare a check; it is registered only by being listed in ``checks.CATALOGUE``."""

    def declare(run: Evaluator[P]) -> Check[P]:
        if not (run.__doc__ or "").strip():
            raise TypeError(f"check {check_id} needs a docstring: it is the documentation")
        return Check(id=check_id, sources=frozenset(sources), params_model=params, run=run)

    return declare


def pg_resource(database: PostgresDatabase, obj: str | None = None) -> str:
    """``postgresql://host:port/db`` for the database, ``.../schema.table[.column]`` for an object."""
    base = f"postgresql://{database.target}"
    return f"{base}/{obj}" if obj else base


def pg_not_collected(
    context: CheckContext, database: PostgresDatabase, part: str, expected: str = ""
) -> Outcome:
    """ERROR on the database for a part its collector could not read (issues name the target)."""
    return context.not_collected(
        pg_resource(database), part, expected, issue_resource=database.target
    )
