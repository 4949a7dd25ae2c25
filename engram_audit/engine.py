"""Evaluation: a pure function of policy and snapshot. No I/O, no clock, sorted output."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from engram_audit import TOOL_NAME, __version__
from engram_audit.checks import Check, CheckContext, Outcome, get_check
from engram_audit.checks.base import Params
from engram_audit.errors import InputError, Problem
from engram_audit.model import (
    Finding,
    Policy,
    Report,
    Rule,
    RuleInfo,
    Snapshot,
    Source,
    Status,
    Summary,
)
from engram_audit.model.snapshot import ToolInfo
from engram_audit.remediation import render_or_explain

ALL_RESOURCES = "*"


@dataclass(frozen=True)
class ResolvedRule:
    rule: Rule
    check: Check[Any]
    params: Params


def _problem(rule: Rule, message: str) -> Problem:
    location = rule.location
    return Problem(
        path=location.path if location else "<policy>",
        line=location.line if location else 1,
        column=location.column if location else 1,
        key_path=f"rules[{rule.id}]",
        message=message,
    )


def resolve(policy: Policy) -> tuple[ResolvedRule, ...]:
    """Bind every enabled rule to its check and validated params, before anything is collected."""
    resolved: list[ResolvedRule] = []
    problems: list[Problem] = []
    for rule in sorted(policy.enabled_rules(), key=lambda r: r.id):
        check = get_check(rule.check)
        if check is None:
            problems.append(_problem(rule, f"unknown check id {rule.check!r}"))
            continue
        try:
            params = check.parse_params(rule.params)
        except ValidationError as error:
            detail = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in error.errors()
            )
            problems.append(_problem(rule, f"params do not fit {check.id}: {detail}"))
            continue
        resolved.append(ResolvedRule(rule, check, params))
    if problems:
        raise InputError(problems)
    return tuple(resolved)


def _finding(item: ResolvedRule, status: Status, resource: str, **fields: str) -> Finding:
    rule = item.rule
    return Finding(
        rule=rule.id,
        check=item.check.id,
        title=rule.title,
        severity=rule.severity,
        status=status,
        resource=resource,
        location=rule.location,
        controls=rule.controls,
        **fields,
    )


def _from_outcome(item: ResolvedRule, outcome: Outcome, origin: str) -> Finding:
    facts = dict(outcome.facts)
    fix = ""
    if origin != "deployed":
        # A plan's or template's finding: its fix names the attribute to set in the source,
        # written where the source is known (collectors.iac), with the values the policy gave.
        person = item.rule.remediation_params if outcome.status is Status.FAIL else {}
        facts = {**person, **facts, "origin": origin}
    elif outcome.status is Status.FAIL:  # errors, skips and passes carry no fix
        template = item.rule.remediation or item.check.remediation
        fix = render_or_explain(template, {"origin": origin, **facts}, item.rule.remediation_params)
    return _finding(
        item,
        outcome.status,
        outcome.resource,
        expected=outcome.expected,
        actual=outcome.actual,
        message=outcome.message,
    ).model_copy(update={"remediation": fix, "facts": facts})


def _evaluate_rule(
    item: ResolvedRule, snapshot: Snapshot, sources: frozenset[Source]
) -> list[Finding]:
    needed = item.check.sources
    unselected = sorted(s.value for s in needed - sources)
    if unselected:
        reason = f"source not selected: {', '.join(unselected)}"
        return [_finding(item, Status.SKIP, ALL_RESOURCES, message=reason)]
    live_only = item.check.needs_live_state(snapshot)
    if live_only is not None:  # planned state (a plan, a template) and a check of running servers
        return [_finding(item, Status.SKIP, ALL_RESOURCES, message=live_only)]
    absent = sorted(s.value for s in needed if snapshot.section(s) is None)
    if absent:
        reason = f"the snapshot has no {', '.join(absent)} section: it was not collected"
        return [_finding(item, Status.ERROR, ALL_RESOURCES, actual="unknown", message=reason)]

    findings = [
        _finding(
            item,
            Status.ERROR,
            issue.resource,
            actual="unknown",
            message=f"could not be collected: {issue.reason}",
        )
        for issue in snapshot.issues
        if issue.part is None and issue.source in needed
    ]
    context = CheckContext(snapshot, item.check.reads)
    try:
        # Outcomes are kept as they come: a check that fails on server A and then raises on
        # server B must still report A's FAIL, or its SARIF alert would close as "fixed".
        origin = snapshot.origin.kind if snapshot.origin is not None else "deployed"
        for outcome in item.check.evaluate(item.params, context):
            findings.append(_from_outcome(item, outcome, origin))
    except Exception as error:  # a check bug must surface as ERROR, never as a pass or a crash
        message = f"check {item.check.id} failed: {type(error).__name__}: {error}"
        findings.append(
            _finding(item, Status.ERROR, ALL_RESOURCES, actual="unknown", message=message)
        )
        return findings
    if not findings:
        findings.append(_finding(item, Status.SKIP, ALL_RESOURCES, message="no resources examined"))
    return findings


def _rule_info(item: ResolvedRule) -> RuleInfo:
    rule = item.rule
    return RuleInfo(
        id=rule.id,
        check=item.check.id,
        title=rule.title,
        severity=rule.severity,
        rationale=rule.rationale or item.check.description,
        remediation=rule.remediation or item.check.remediation,
        check_summary=item.check.summary,
        location=rule.location,
        reads=tuple(sorted(item.check.reads)),
        controls=rule.controls,
    )


def evaluate(policy: Policy, snapshot: Snapshot, sources: Iterable[Source]) -> Report:
    """Compare a snapshot with a policy; the same inputs always give the same report."""
    selected = frozenset(sources)
    resolved = resolve(policy)
    findings: list[Finding] = []
    for item in resolved:
        findings.extend(_evaluate_rule(item, snapshot, selected))
    ordered = tuple(sorted(findings, key=lambda f: f.sort_key))
    return Report(
        tool=ToolInfo(name=TOOL_NAME, version=__version__),
        environment=policy.environment,
        generated_at=snapshot.collected_at,
        sources=tuple(sorted(selected, key=lambda s: s.value)),
        policy_files=policy.files,
        summary=Summary.of(ordered),
        findings=ordered,
        rules=tuple(_rule_info(item) for item in resolved),
        collection_issues=tuple(
            sorted(
                (i for i in snapshot.issues if i.source in selected),
                key=lambda i: (i.source.value, i.resource, i.part or ""),
            )
        ),
        collection_notes=tuple(
            sorted(
                (n for n in snapshot.notes if n.source in selected),
                key=lambda n: (n.source.value, n.resource, n.part or "", n.note),
            )
        ),
    )
