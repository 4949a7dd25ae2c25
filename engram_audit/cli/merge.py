"""``merge``: join JSON reports (the shards of a CI matrix) into one report, in any format.

Reports are grouped by environment; each environment's reports must come from the same policy
(the same ``policy_files`` and rules). A finding on a resource (rule, resource id in any case)
may appear in one input only: a duplicate means two shards audited the same server (or the
same database), and the merge is refused (exit 2) rather than counting it twice. Rule-wide
placeholders (resource ``*``: "no resources examined", "source not selected") are not
duplicates: a rule that examined something in any report drops its ``*`` SKIP; otherwise one
``*`` finding is kept (ERROR over SKIP). The exit code is recomputed from the merged reports,
as ``check`` computes it.

Shards (reports of ``check --shard I/N``, 1.4: ``context.shard``) must come as a complete and
consistent set, per environment: the same N, each index 1..N exactly once, and all the same
discovered estate (``servers_found`` and ``estate``, the digest of the ids found before the
split). Otherwise the merge is refused (exit 2) naming the missing or repeated shards, or the
estates the shards saw: a shard job that wrote no report, or Resource Graph answering the shards
differently, would otherwise leave servers unaudited behind a passing gate. A shard whose
discovery failed records no estate; its collection issue makes the merge exit 3. Beside the
shards, only reports without the Azure source (the PostgreSQL and DSN job's) may be merged: an
unsharded Azure report would overlap the shards or be of another run. Reports without shards
merge as before.
"""

from __future__ import annotations

from pathlib import Path

import click

from engram_audit.cli.check import worst
from engram_audit.cli.common import check_report_targets, emit_reports, parse_show, report_options
from engram_audit.cli.terminal import verbose_option
from engram_audit.errors import InputError, UsageError
from engram_audit.gate.baseline import report_from_document
from engram_audit.gate.exit_codes import ExitCode, exit_code
from engram_audit.inputs.json_source import load_json_document
from engram_audit.model import Finding, Report, Severity, Source, Status, Summary
from engram_audit.model.report import RuleInfo, RunContext
from engram_audit.model.snapshot import AzureShard, CollectionIssue

ALL_RESOURCES = "*"
# Which rule-wide placeholder survives when several inputs have one: the worst.
_PLACEHOLDER_RANK = {Status.ERROR: 0, Status.FAIL: 1, Status.WAIVED: 2, Status.PASS: 3}
# Missing shards named in an error before "and K more".
_NAMED = 10


def read_reports(path: Path) -> list[Report]:
    """The reports in one JSON file: one report, or ``{"environments": [report, ...]}``
    (read with the same bounded, strict JSON reader as baselines and diffs)."""
    document = load_json_document(path)
    data = document.data
    if isinstance(data, dict) and isinstance(data.get("environments"), list):
        reports = []
        for index, entry in enumerate(data["environments"]):
            try:
                reports.append(Report.model_validate(entry))
            except ValueError as error:
                raise InputError(
                    [document.problem(("environments", index), f"not a report: {error}")]
                ) from None
        return reports
    return [report_from_document(document)]


def merge_reports(named: list[tuple[str, Report]]) -> list[Report]:
    """One report per environment, in the order environments first appear."""
    by_environment: dict[str, list[tuple[str, Report]]] = {}
    for source, report in named:
        by_environment.setdefault(report.environment, []).append((source, report))
    return [_merge_one(environment, group) for environment, group in by_environment.items()]


def _merge_one(environment: str, group: list[tuple[str, Report]]) -> Report:
    first_source, first = group[0]
    for source, report in group[1:]:
        if report.policy_files != first.policy_files:
            raise UsageError(
                f"{source} and {first_source} are reports of {environment!r} from different "
                f"policies ({', '.join(report.policy_files) or 'none'} vs "
                f"{', '.join(first.policy_files) or 'none'}): merge the shards of one run"
            )
    _check_shards(environment, group)
    owners: dict[tuple[str, str], str] = {}
    findings: list[Finding] = []
    placeholders: dict[str, Finding] = {}
    examined: set[str] = set()
    for source, report in group:
        for finding in report.findings:
            if finding.resource == ALL_RESOURCES:
                kept = placeholders.get(finding.rule)
                if kept is None or _rank(finding) < _rank(kept):
                    placeholders[finding.rule] = finding
                continue
            key = finding.identity
            if key in owners:
                raise UsageError(
                    f"finding {finding.rule} on {finding.resource} is in both {owners[key]} and "
                    f"{source}: the shards overlap (give each the same --shard N and its own I)"
                )
            owners[key] = source
            examined.add(finding.rule)
            findings.append(finding)
    for rule_id, finding in placeholders.items():
        if rule_id in examined and finding.status is Status.SKIP:
            continue
        findings.append(finding)
    ordered = tuple(sorted(findings, key=lambda f: f.sort_key))
    rules: dict[str, RuleInfo] = {}
    issues: dict[tuple[str, str, str | None, str], CollectionIssue] = {}
    for _, report in group:
        for info in report.rules:
            rules.setdefault(info.id, info)
        for issue in report.collection_issues:
            issues.setdefault((issue.source.value, issue.resource, issue.part, issue.reason), issue)
    return first.model_copy(
        update={
            "generated_at": max(report.generated_at for _, report in group),
            "sources": tuple(
                sorted({s for _, r in group for s in r.sources}, key=lambda s: s.value)
            ),
            "summary": Summary.of(ordered),
            "findings": ordered,
            "rules": tuple(rules[key] for key in sorted(rules)),
            "collection_issues": tuple(
                sorted(issues.values(), key=lambda i: (i.source.value, i.resource, i.part or ""))
            ),
            # The strictest gate any shard ran with.
            "fail_on": min(report.fail_on for _, report in group),
            "context": _whole_run(first.context),
        }
    )


def _shard_of(report: Report) -> AzureShard | None:
    return report.context.shard if report.context is not None else None


def _check_shards(environment: str, group: list[tuple[str, Report]]) -> None:
    """Shards of ``environment`` must be all N of one run, each once, all of the same estate."""
    shards = [(source, shard) for source, report in group if (shard := _shard_of(report))]
    if not shards:
        return
    first_source, first = shards[0]
    for source, report in group:
        if _shard_of(report) is None and Source.AZURE in report.sources:
            raise UsageError(
                f"{source} is an unsharded Azure report of {environment!r} and {first_source} "
                f"is shard {first}: merge the shards of one run (reports without the Azure "
                "source, such as the PostgreSQL job's, may join them)"
            )
    for source, shard in shards[1:]:
        if shard.count != first.count:
            raise UsageError(
                f"{source} is shard {shard} of {environment!r} and {first_source} is shard "
                f"{first}: the shards of one run share their N (--shard I/N)"
            )
    by_index: dict[int, list[str]] = {}
    for source, shard in shards:
        by_index.setdefault(shard.index, []).append(source)
    problems = [
        f"shard {index}/{first.count} is given more than once ({', '.join(sources)})"
        for index, sources in sorted(by_index.items())
        if len(sources) > 1
    ]
    missing = [index for index in range(1, first.count + 1) if index not in by_index]
    if missing:
        named = ", ".join(f"{index}/{first.count}" for index in missing[:_NAMED])
        if len(missing) > _NAMED:
            named += f" and {len(missing) - _NAMED} more"
        problems.append(
            f"shard{'s' if len(missing) > 1 else ''} {named} "
            f"{'are' if len(missing) > 1 else 'is'} missing (a shard job that wrote no report: "
            "rerun it)"
        )
    if problems:
        raise UsageError(
            f"the shards of {environment!r} are not the complete set of {first.count}: "
            + "; ".join(problems)
        )
    _check_estates(environment, group)


def _check_estates(environment: str, group: list[tuple[str, Report]]) -> None:
    """Every shard split the same servers; one whose discovery failed has none to compare (its
    collection issue makes the merge incomplete, exit 3)."""
    estates: dict[tuple[int | None, str], list[str]] = {}
    for source, report in group:
        shard = _shard_of(report)
        if shard is None:
            continue
        if shard.estate is None:
            if not report.collection_issues:
                raise UsageError(
                    f"{source}: shard {shard} of {environment!r} records no estate and no "
                    "collection issue: not a report engram-audit wrote"
                )
            continue
        estates.setdefault((shard.servers_found, shard.estate), []).append(f"{shard} ({source})")
    if len(estates) > 1:
        seen = "; ".join(
            f"shard{'s' if len(names) > 1 else ''} {', '.join(names)}: {found} servers "
            f"(estate {estate[:12]})"
            for (found, estate), names in estates.items()
        )
        raise UsageError(
            f"the shards of {environment!r} split different estates ({seen}): the servers "
            "found changed between the shards (Resource Graph can lag behind changes); rerun "
            "all the shards"
        )


def _whole_run(context: RunContext | None) -> RunContext | None:
    """The merged report covers every shard: it records no shard, and no context when the
    shards had nothing else to say (as a local unsharded run)."""
    if context is None or context.shard is None:
        return context
    whole = context.model_copy(update={"shard": None})
    return None if whole == RunContext() else whole


def _rank(finding: Finding) -> int:
    return _PLACEHOLDER_RANK.get(finding.status, 4)


@click.command("merge")
@verbose_option
@click.argument("reports", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--fail-on-new",
    is_flag=True,
    help="Exit 1 only for failures the reports marked new against a baseline.",
)
@report_options
def merge_command(
    reports: tuple[Path, ...],
    fail_on_new: bool,
    fail_on: str | None,
    fmt: str,
    show: str | None,
    quiet: bool,
    output: Path | None,
    extra_outputs: tuple[str, ...],
) -> int:
    """Combine JSON reports (e.g. the shards of a CI matrix) into one report.

    Reports of the same environment become one (a finding present in two reports is refused,
    exit 2); several environments stay apart, as with `check --all`. Shards of `--shard I/N`
    runs merge only as a complete set: all N, each once, all of the same discovered servers
    (else exit 2, naming what is missing or different). Write any format; the exit code is
    recomputed from the merged findings.
    """
    named = [(str(path), report) for path in reports for report in read_reports(path)]
    merged = merge_reports(named)
    if fail_on is not None:
        merged = [report.model_copy(update={"fail_on": Severity(fail_on)}) for report in merged]
    check_report_targets(output, fmt, extra_outputs)
    emit_reports(merged, fmt, output, extra_outputs, show=parse_show(show), quiet=quiet)
    codes: list[ExitCode] = [exit_code(report, only_new=fail_on_new) for report in merged]
    return worst(codes)
