"""Gate flags of ``check``: --waivers, --warn-expiring, --today, --baseline, --fail-on-new.

Use::

    @gate_options
    def check_command(..., gate: GateOptions) -> int:
        prepared = prepare_gate(gate)    # reads both files: bad input exits 2 before any I/O
        ...
        result = prepared.apply(report)  # waivers first, then the baseline
        for line in result.notes: note(line)
        emit_report(result.report, ...)
        return exit_code(result.report, fail_on, only_new=gate.fail_on_new)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from engram_audit.errors import UsageError
from engram_audit.gate.baseline import load_report, mark_baseline
from engram_audit.gate.waivers import Waiver, apply_waivers, load_waivers
from engram_audit.model import Report

F = TypeVar("F", bound=Callable[..., Any])
MAX_WARN_DAYS = 36_525  # a century: beyond it the date arithmetic overflows, and no waiver lives


@dataclass(frozen=True)
class GateOptions:
    waivers: Path | None = None
    warn_expiring: int | None = None
    baseline: Path | None = None
    fail_on_new: bool = False
    today: date | None = None


@dataclass(frozen=True)
class GateResult:
    report: Report
    notes: tuple[str, ...]


@dataclass(frozen=True)
class PreparedGate:
    options: GateOptions
    waivers: tuple[Waiver, ...] | None
    baseline: Report | None
    today: date

    def apply(self, report: Report) -> GateResult:
        notes: list[str] = []
        if self.waivers is not None:
            waived = apply_waivers(report, self.waivers, self.today, self.options.warn_expiring)
            report = waived.report
            notes += waived.notes(self.today)
        if self.baseline is not None:
            marked = mark_baseline(report, self.baseline)
            report = marked.report
            notes += marked.notes()
        return GateResult(report, tuple(notes))


def prepare_gate(options: GateOptions, today: date | None = None) -> PreparedGate:
    """Check the flags fit together and load the waivers and baseline files."""
    if options.fail_on_new and options.baseline is None:
        raise UsageError("--fail-on-new needs --baseline REPORT.json to know what is new")
    if options.warn_expiring is not None and options.waivers is None:
        raise UsageError("--warn-expiring needs --waivers FILE")
    return PreparedGate(
        options=options,
        waivers=load_waivers(options.waivers) if options.waivers else None,
        baseline=load_report(options.baseline) if options.baseline else None,
        today=today or options.today or datetime.now(UTC).date(),
    )


def gate_options(command: F) -> F:
    """Add the gate flags to a click command; it receives them as one ``gate: GateOptions``."""

    @functools.wraps(command)
    def packed(
        *args: Any,
        waivers: Path | None,
        warn_expiring: int | None,
        baseline: Path | None,
        fail_on_new: bool,
        today: datetime | None,
        **kwargs: Any,
    ) -> Any:
        gate = GateOptions(
            waivers=waivers,
            warn_expiring=warn_expiring,
            baseline=baseline,
            fail_on_new=fail_on_new,
            today=today.date() if today else None,
        )
        return command(*args, gate=gate, **kwargs)

    decorated: Callable[..., Any] = packed
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated  # type: ignore[return-value]


_OPTIONS = (
    click.option(
        "--waivers",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="ENGRAM_AUDIT_WAIVERS",
        help="Waivers file (YAML): matching, unexpired waivers make failures 'waived'.",
    ),
    click.option(
        "--warn-expiring",
        type=click.IntRange(min=0, max=MAX_WARN_DAYS),
        metavar="DAYS",
        help="List waivers whose last day is within DAYS days (stderr).",
    ),
    click.option(
        "--today",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        metavar="YYYY-MM-DD",
        help="Judge waiver expiry as of this date (default: today, UTC).",
    ),
    click.option(
        "--baseline",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="REPORT.json",
        help="Earlier JSON report: mark each finding new or unchanged (SARIF baselineState).",
    ),
    click.option(
        "--fail-on-new",
        is_flag=True,
        help="With --baseline: exit 1 only for failures that are new since the baseline.",
    ),
)
