"""The estate at a glance: rules x environments, one status per cell.

A cell sums up every finding of that rule in that environment by its most urgent status
(fail, then error, waived, skip, pass); ``-`` when the environment's policy has no such rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from engram_audit.model import Report, Status

_URGENCY = (Status.FAIL, Status.ERROR, Status.WAIVED, Status.SKIP, Status.PASS)
ABSENT = "-"


def cells(reports: Sequence[Report]) -> tuple[list[str], list[str], dict[tuple[str, str], str]]:
    """(rules, environments, {(rule, environment): status word})."""
    environments = [report.environment for report in reports]
    table: dict[tuple[str, str], str] = {}
    rules: set[str] = set()
    for report in reports:
        statuses: dict[str, set[Status]] = {}
        for finding in report.findings:
            statuses.setdefault(finding.rule, set()).add(finding.status)
        for rule, seen in statuses.items():
            rules.add(rule)
            table[(rule, report.environment)] = next(s for s in _URGENCY if s in seen).value
    return sorted(rules), environments, table


def rows(reports: Sequence[Report]) -> list[list[str]]:
    """Header row, then one row per rule; cells are status words or ``-``."""
    rules, environments, table = cells(reports)
    grid = [["rule", *environments]]
    grid += [[rule, *(table.get((rule, env), ABSENT) for env in environments)] for rule in rules]
    return grid
