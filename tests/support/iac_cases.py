"""The real and hand-written IaC inputs under fixtures/iac, and their verdicts as kept in
fixtures/iac/results (cfn-lint style): a change in any verdict on real material shows in review.

Regenerate with ``scripts/update-iac-results`` and read the diff.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engram_audit.collectors.iac.request import IacRequest
from engram_audit.collectors.run import collect_planned
from engram_audit.engine import evaluate
from engram_audit.model import Report, Snapshot, Source
from engram_audit.policy.loader import load_policy

ROOT = Path(__file__).parents[2]
IAC = ROOT / "fixtures" / "iac"
RESULTS = IAC / "results"
PROD = ROOT / "policies" / "prod.yaml"
# Findings are compared without the collection time: the same input, the same verdicts.
FIXED_TIME = datetime(2031, 1, 15, 3, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # plan | template
    path: str  # under fixtures/iac
    parameters: str | None = None

    def request(self) -> IacRequest:
        return IacRequest(
            self.kind,  # type: ignore[arg-type]
            Path("fixtures/iac") / self.path,
            Path("fixtures/iac") / self.parameters if self.parameters else None,
        )


CASES = (
    Case("zodiacae-aks-demo", "plan", "zodiacae/aks-demo.plan.json"),
    Case("zodiacae-bugtracker-modules", "plan", "zodiacae/bugtracker-modules.plan.json"),
    Case("avm-terraform-default", "plan", "avm-terraform/default.plan.json"),
    Case(
        "avm-bicep-defaults",
        "template",
        "avm-bicep/main.json",
        "avm-bicep/parameters/defaults.parameters.json",
    ),
    Case(
        "avm-bicep-waf-aligned",
        "template",
        "avm-bicep/main.json",
        "avm-bicep/parameters/waf-aligned.parameters.json",
    ),
    Case(
        "avm-bicep-max",
        "template",
        "avm-bicep/main.json",
        "avm-bicep/parameters/max.parameters.json",
    ),
    Case(
        "avm-bicep-public",
        "template",
        "avm-bicep/main.json",
        "avm-bicep/parameters/public.parameters.json",
    ),
    Case("avm-bicep-without-parameters", "template", "avm-bicep/main.json"),
    Case(
        "quickstart-flexible-postgresql-with-aad",
        "template",
        "quickstarts/flexible-postgresql-with-aad/azuredeploy.json",
        "quickstarts/flexible-postgresql-with-aad/azuredeploy.parameters.json",
    ),
    Case(
        "quickstart-flexible-postgresql-with-aad-without-parameters",
        "template",
        "quickstarts/flexible-postgresql-with-aad/azuredeploy.json",
    ),
    Case(
        "quickstart-managed-postgresql-with-vnet",
        "template",
        "quickstarts/managed-postgresql-with-vnet/azuredeploy.json",
    ),
    Case("handwritten-prod-compliant", "plan", "handwritten/prod-compliant.plan.json"),
    Case("handwritten-unknowns", "plan", "handwritten/unknowns.plan.json"),
    Case("handwritten-replace", "plan", "handwritten/replace.plan.json"),
    Case("handwritten-modules", "plan", "handwritten/modules/plan.json"),
    Case(
        "handwritten-bicep",
        "template",
        "handwritten/bicep/main.json",
        "handwritten/bicep/main.parameters.json",
    ),
)
CASES_BY_NAME = {case.name: case for case in CASES}


def planned_snapshot(case: Case) -> Snapshot:
    snapshot = collect_planned("prod", case.request())
    return snapshot.model_copy(update={"collected_at": FIXED_TIME})


def prod_report(case: Case) -> Report:
    from engram_audit.collectors.iac.locate import locate_findings

    snapshot = planned_snapshot(case)
    report = evaluate(load_policy(PROD), snapshot, {Source.AZURE, Source.POSTGRES, Source.DSN})
    return locate_findings(report, snapshot, None)


def verdicts(case: Case) -> dict[str, Any]:
    """What the prod policy says about the case: one line per finding, by address."""
    report = prod_report(case)
    findings = [
        {
            "rule": f.rule,
            "address": f.iac.address if f.iac else f.resource,
            "resource": f.resource,
            "status": f.status.value,
            "actual": f.actual,
            "message": f.message,
        }
        for f in report.findings
        if not (f.status.value == "skip" and f.resource == "*")
    ]
    return {
        "input": case.path,
        "parameters": case.parameters,
        "summary": {s.value: n for s, n in report.summary.by_status.items()},
        "collection_issues": [
            f"{i.resource} [{i.part}]: {i.reason}" for i in report.collection_issues
        ],
        "findings": findings,
    }


def result_path(case: Case) -> Path:
    return RESULTS / f"{case.name}.json"


def render(case: Case) -> str:
    return json.dumps(verdicts(case), indent=2, ensure_ascii=False) + "\n"
