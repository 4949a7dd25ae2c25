"""Findings and the report: the one input every output format renders."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from engram_audit.model.base import (
    SEVERITIES_ASCENDING,
    STATUS_ORDER,
    FrozenModel,
    Severity,
    Source,
    Status,
    UtcDatetime,
    read_schema_version,
)
from engram_audit.model.policy import ControlRef, SourceLocation
from engram_audit.model.snapshot import AzureShard, CollectionIssue, CollectionNote, ToolInfo


class IacResource(FrozenModel):
    """The resource of a Terraform plan or ARM template a finding is about."""

    address: str = Field(
        description="Terraform resource address, or the template resource (symbolic name or "
        "index path)"
    )
    path: str | None = Field(
        default=None, description="File declaring it (.tf, .bicep or the template), with --iac-root"
    )
    line: int | None = Field(default=None, ge=1, description="Line of the resource block")


class Finding(FrozenModel):
    rule: str
    check: str
    title: str
    severity: Severity
    status: Status
    resource: str
    expected: str = ""
    actual: str = ""
    message: str = ""
    remediation: str = Field(
        default="", description="The fix rendered for this finding (failures only)"
    )
    facts: dict[str, str | tuple[str, ...]] = Field(
        default_factory=dict,
        description="What the check found out about the resource: names and values a fix uses",
    )
    location: SourceLocation | None = Field(
        default=None, description="Policy file and line that declared the rule"
    )
    waiver: str | None = Field(
        default=None, description="Why the finding is waived, or whose waiver expired"
    )
    baseline_state: str | None = Field(default=None, description="new | unchanged, with --baseline")
    controls: tuple[ControlRef, ...] = Field(
        default=(),
        description="Framework controls the rule implements (Azure Policy, MCSB, CIS, ...)",
    )
    iac: IacResource | None = Field(
        default=None,
        description="Planned state only: the plan's or template's resource the finding is about",
    )

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (self.rule, self.resource, self.check)

    @property
    def identity(self) -> tuple[str, str]:
        """(rule, resource) that baselines, diffs and SARIF fingerprints track across runs.

        ARM ids change case between APIs, so they are folded; database objects are not.
        """
        resource = self.resource
        if resource.startswith("/"):
            resource = resource.rstrip("/").casefold()
        return (self.rule, resource)


class RuleInfo(FrozenModel):
    """Rule metadata that formats such as SARIF describe once per rule."""

    id: str
    check: str
    title: str
    severity: Severity
    rationale: str = ""
    remediation: str = ""
    check_summary: str = ""
    location: SourceLocation | None = None
    controls: tuple[ControlRef, ...] = ()
    reads: tuple[str, ...] = Field(
        default=(), description="Snapshot parts the rule's check reads: its evidence"
    )


class RunContext(FrozenModel):
    """Who ran the audit and where, when a CI system says so, and which shard of the run it
    was (reports show it; the engine never reads it)."""

    ci: str | None = Field(default=None, description="github-actions, azure-pipelines, gitlab-ci")
    repository: str | None = None
    commit: str | None = None
    ref: str | None = None
    run_url: str | None = None
    actor: str | None = None
    server_url: str | None = Field(default=None, description="e.g. https://github.com")
    repository_url: str | None = Field(
        default=None,
        description="The repository's web address, without credentials; reports link policy "
        "lines to files under it (GitHub, Azure Repos)",
    )
    shard: AzureShard | None = Field(
        default=None,
        description="--shard I/N: the report covers only this slice of the servers discovered; "
        "merge needs every shard of the run, all with the same estate",
    )


class Summary(FrozenModel):
    total: int
    by_status: dict[Status, int]
    by_severity: dict[Severity, dict[Status, int]]

    @classmethod
    def of(cls, findings: tuple[Finding, ...]) -> Summary:
        by_status = dict.fromkeys(STATUS_ORDER, 0)
        by_severity = {
            severity: dict.fromkeys(STATUS_ORDER, 0) for severity in reversed(SEVERITIES_ASCENDING)
        }
        for finding in findings:
            by_status[finding.status] += 1
            by_severity[finding.severity][finding.status] += 1
        return cls(total=len(findings), by_status=by_status, by_severity=by_severity)


# 1.1: schema_version and the derived "gate" object. Reports without a version are 1.0.
# 1.2: findings[].controls and rules[].controls; collection_notes (which database was
# audited, an empty scope accepted); findings' "iac" (the plan's or template's resource),
# written only when known.
# Also 1.2: findings carry "facts"; "remediation" is the fix rendered for the finding.
# 1.3: context.repository_url (the repository's web address, for links to policy lines).
# 1.4: context.shard (a sharded run's slice: index, count, servers_found, estate), for merge.
REPORT_SCHEMA_VERSION = "1.4"


class Report(FrozenModel):
    schema_version: str = REPORT_SCHEMA_VERSION
    tool: ToolInfo
    environment: str
    generated_at: UtcDatetime = Field(
        description="The snapshot's collection time: same input, same report"
    )
    sources: tuple[Source, ...]
    policy_files: tuple[str, ...] = ()
    summary: Summary
    findings: tuple[Finding, ...]
    rules: tuple[RuleInfo, ...] = ()
    collection_issues: tuple[CollectionIssue, ...] = ()
    collection_notes: tuple[CollectionNote, ...] = Field(
        default=(),
        description="What the collectors want readers to know that is not a failure: the "
        "database audited when the DSN named another, a scope accepted as empty",
    )
    context: RunContext | None = Field(
        default=None, description="The CI run that produced the report, when known"
    )
    fail_on: Severity = Field(
        default=Severity.LOW,
        description="Lowest severity of a failure that fails the gate (--fail-on) in this run",
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        # The JSON report states its gate split ("gate") for readers; it is derived from the
        # findings and fail_on, so a report read back recomputes it rather than trusting it.
        if not isinstance(data, dict):
            return data
        data = {key: value for key, value in data.items() if key != "gate"}
        if "schema_version" in data:  # absent: a 1.0 report, read as the current format
            data["schema_version"] = read_schema_version(
                "report", data["schema_version"], REPORT_SCHEMA_VERSION
            )
        return data

    def gating(self, finding: Finding) -> bool:
        """A failure serious enough to fail this run's gate; lesser failures are reported only."""
        return finding.status is Status.FAIL and finding.severity >= self.fail_on
