"""Waivers: accepted, owned, expiring exceptions to policy rules.

A waiver names a rule id and a resource (exact, or a glob), says why and who accepted the
risk, points at a ticket or URL, and expires (the date is the last day it applies). Applied
to a report:

- a ``fail`` finding matched by an unexpired waiver becomes ``waived``: shown everywhere,
  not counted as a failure;
- a waiver past its date no longer applies: the finding stays ``fail`` and its ``waiver``
  field says whose waiver expired and when;
- ``error`` findings are never waived: "could not check" is not an accepted risk;
- a waiver that matches no failing or erroring finding is stale (fixed, renamed, or a typo);
- ``warn_days`` lists unexpired waivers whose last day falls within that many days.

"Today" is always passed in (the CLI defaults it to today's UTC date) so results are
reproducible and tests choose their own dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from fnmatch import fnmatchcase
from pathlib import Path

from engram_audit.errors import InputError, Problem
from engram_audit.inputs.yaml_source import SourceDocument, load_document, schema_problems
from engram_audit.model import Finding, Report, SourceLocation, Status, Summary
from engram_audit.schemas import WAIVERS_SCHEMA, shipped

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Waiver:
    rule: str
    resource: str
    reason: str
    owner: str
    expires: date
    location: SourceLocation
    ticket: str | None = None
    url: str | None = None

    def matches(self, finding: Finding) -> bool:
        if finding.rule != self.rule:
            return False
        _, resource = finding.identity
        pattern = self.resource
        if pattern.startswith("/"):
            # ARM ids change case between APIs; identity already folds the finding's side.
            pattern = pattern.rstrip("/").casefold()
        return resource == pattern or fnmatchcase(resource, pattern)

    def expired(self, today: date) -> bool:
        return today > self.expires

    @property
    def reference(self) -> str:
        return ", ".join(part for part in (self.ticket, self.url) if part)

    @property
    def where(self) -> str:
        return f"{self.location.path}:{self.location.line}"

    def describe(self) -> str:
        return (
            f"{self.reason} (owner: {self.owner}, {self.reference}, "
            f"expires {self.expires.isoformat()}, {self.where})"
        )


@dataclass(frozen=True)
class WaiverOutcome:
    report: Report
    applied: tuple[Waiver, ...]
    expired: tuple[Waiver, ...]
    stale: tuple[Waiver, ...]
    expiring: tuple[Waiver, ...]

    def notes(self, today: date) -> list[str]:
        """One line per thing a reader should act on, for stderr."""
        lines = [
            f"waiver expired on {w.expires.isoformat()} ({w.where}): {w.rule} on {w.resource}; "
            f"owner {w.owner}, {w.reference}; its findings count as failures again"
            for w in self.expired
        ]
        lines += [
            f"stale waiver ({w.where}): {w.rule} on {w.resource} matches no failing finding; "
            "remove it if the problem is fixed"
            for w in self.stale
        ]
        lines += [
            f"waiver expiring in {(w.expires - today).days} day(s) on {w.expires.isoformat()} "
            f"({w.where}): {w.rule} on {w.resource}; owner {w.owner}, {w.reference}"
            for w in self.expiring
        ]
        return lines


def load_waivers(path: Path, display: str | None = None) -> tuple[Waiver, ...]:
    """Read and validate a waivers file; every problem is reported at once with file:line."""
    document = load_document(path, display)
    problems = schema_problems(document, shipped(WAIVERS_SCHEMA))
    entries = document.data.get("waivers") if isinstance(document.data, dict) else None
    expiries: dict[int, date] = {}
    for index, raw in enumerate(entries if isinstance(entries, list) else []):
        text = raw.get("expires") if isinstance(raw, dict) else None
        if isinstance(text, str):
            expires = _parse_date(document, ("waivers", index, "expires"), text, problems)
            if expires is not None:
                expiries[index] = expires
    if problems:
        raise InputError(problems)
    waivers: list[Waiver] = []
    for index, raw in enumerate(document.data["waivers"]):
        line, column = document.position(("waivers", index))
        waivers.append(
            Waiver(
                rule=raw["rule"],
                resource=raw["resource"],
                reason=raw["reason"],
                owner=raw["owner"],
                expires=expiries[index],
                location=SourceLocation(path=document.path, line=line, column=column),
                ticket=raw.get("ticket"),
                url=raw.get("url"),
            )
        )
    return tuple(waivers)


def _parse_date(
    document: SourceDocument, key_path: tuple[str | int, ...], text: str, problems: list[Problem]
) -> date | None:
    # Only the strict YYYY-MM-DD form: fromisoformat would also take 20310331, week dates
    # (2026-W53-7, also ten characters) and non-ASCII digits.
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError("expected YYYY-MM-DD")
        return date.fromisoformat(text)
    except ValueError as error:
        # A waiver with an unreadable expiry must never apply: fail closed, exit 2.
        problems.append(
            document.problem(
                key_path, f"invalid date {text!r} ({error}); write the last valid day as YYYY-MM-DD"
            )
        )
        return None


def apply_waivers(
    report: Report, waivers: tuple[Waiver, ...], today: date, warn_days: int | None = None
) -> WaiverOutcome:
    used: set[int] = set()
    matched_any: set[int] = set()
    findings: list[Finding] = []
    for finding in report.findings:
        matching = [i for i, waiver in enumerate(waivers) if waiver.matches(finding)]
        if finding.status in (Status.FAIL, Status.ERROR):
            matched_any.update(matching)
        if finding.status is not Status.FAIL or not matching:
            findings.append(finding)
            continue
        active = [i for i in matching if not waivers[i].expired(today)]
        if active:
            chosen = waivers[active[0]]
            used.add(active[0])
            findings.append(
                finding.model_copy(update={"status": Status.WAIVED, "waiver": chosen.describe()})
            )
            continue
        lapsed = max((waivers[i] for i in matching), key=lambda waiver: waiver.expires)
        note = (
            f"waiver expired on {lapsed.expires.isoformat()} "
            f"(owner: {lapsed.owner}, {lapsed.reference}, {lapsed.where}): {lapsed.reason}"
        )
        findings.append(finding.model_copy(update={"waiver": note}))

    updated = tuple(findings)
    horizon: date | None = None
    if warn_days is not None:  # no later than the last representable day, whatever was asked
        horizon = today + timedelta(days=min(max(warn_days, 0), (date.max - today).days))
    return WaiverOutcome(
        report=report.model_copy(update={"findings": updated, "summary": Summary.of(updated)}),
        applied=tuple(w for i, w in enumerate(waivers) if i in used),
        expired=tuple(w for w in waivers if w.expired(today)),
        stale=tuple(
            w for i, w in enumerate(waivers) if i not in matched_any and not w.expired(today)
        ),
        expiring=tuple(
            w
            for w in waivers
            if horizon is not None and not w.expired(today) and w.expires <= horizon
        ),
    )
