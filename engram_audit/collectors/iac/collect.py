"""One entry point: the planned state a request names (a plan, or a template and parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from engram_audit.collectors.iac.request import IacRequest
from engram_audit.model.base import Source
from engram_audit.model.snapshot import AzureSection, CollectionIssue, SnapshotOrigin


@dataclass(frozen=True)
class PlannedState:
    section: AzureSection
    origin: SnapshotOrigin
    issues: tuple[CollectionIssue, ...]


def read_planned_state(request: IacRequest) -> PlannedState:
    """The plan's or template's servers. One without any flexible server is an issue (the run
    is incomplete: nothing was judged) unless ``allow_empty`` accepts it, as for live scopes."""
    if request.kind == "plan":
        from engram_audit.collectors.iac.terraform import read_plan

        plan = read_plan(request.path, str(request.path))
        section, origin, issues, empty = plan.section, plan.origin, plan.issues, plan.empty_reason
    else:
        from engram_audit.collectors.iac.arm import read_template

        template = read_template(request.path, str(request.path), request.parameters)
        section, origin, issues = template.section, template.origin, template.issues
        empty = template.empty_reason
    if not section.servers and not request.allow_empty:
        issues = (
            *issues,
            CollectionIssue(
                source=Source.AZURE,
                resource=str(request.path),
                reason=f"{empty}: nothing to judge (--allow-empty accepts that)",
            ),
        )
    return PlannedState(section, origin, issues)
