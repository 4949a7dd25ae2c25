"""Framework controls: the catalogue's data, rules citing them, coverage from the CLI, and the
promise of the issue: every Azure Policy built-in and Prowler check for PostgreSQL flexible
server has a rule in the shipped policies or a documented reason why not."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest

from engram_audit.checks.azure.controls import control_catalogue
from engram_audit.engine import evaluate
from engram_audit.errors import InputError
from engram_audit.model import ALL_SOURCES, Policy, Snapshot
from engram_audit.policy.coverage import coverage
from engram_audit.policy.loader import environment_policies, load_policy
from engram_audit.reporters import json_report
from engram_audit.schemas import POLICY_SCHEMA, REPORT_SCHEMA, shipped
from tests.conftest import ROOT, snapshot_data
from tests.support.cli import run_in_process as run

POLICIES = ROOT / "policies"


@pytest.fixture(scope="module")
def shipped_policies() -> list[Policy]:
    return environment_policies(POLICIES)


def _cited(policies: list[Policy]) -> dict[str, set[str]]:
    """control key -> the rules citing it (enabled), over every environment."""
    cited: dict[str, set[str]] = {}
    for policy in policies:
        for rule in policy.enabled_rules():
            for control in rule.controls:
                cited.setdefault(control.key, set()).add(rule.id)
    return cited


# --- the shipped policies against the catalogue ----------------------------------------------


def test_every_control_is_enforced_or_says_why_not(shipped_policies: list[Policy]) -> None:
    """Done when: every Azure Policy built-in and Prowler check (and every CIS and MCSB control
    the sources connect to flexible server) has a rule or a documented reason."""
    cited = _cited(shipped_policies)
    for control in control_catalogue().controls.values():
        if control.not_covered:
            assert control.key not in cited, (
                f"{control.key} is cited by {cited[control.key]} but documented as not covered"
            )
        else:
            assert control.key in cited, f"{control.key}: no rule and no reason"


def test_rules_cite_what_microsoft_and_prowler_map_their_controls_to(
    shipped_policies: list[Policy],
) -> None:
    """A rule citing an Azure Policy definition cites the MCSB and CIS controls Microsoft's own
    initiatives map it to; one citing a Prowler check cites Prowler's CIS items for it."""
    catalogue = control_catalogue()
    for policy in shipped_policies:
        for rule in policy.enabled_rules():
            keys = {c.key for c in rule.controls}
            for key in keys:
                control = catalogue.get(key)
                assert control is not None
                if control.framework in ("azure-policy", "prowler"):
                    missing = set(control.related) - keys
                    assert not missing, f"{policy.environment} {rule.id} cites {key}, not {missing}"


def test_an_environment_that_requires_the_opposite_does_not_enforce_the_control(
    shipped_policies: list[Policy],
) -> None:
    geo = "azure-policy:cee2f9fd-3968-44be-a863-bd62c9884423"
    report = coverage(shipped_policies, ["azure-policy"])[0]
    (item,) = [c for c in report.controls if c.control.key == geo]
    assert item.environments == ("uat", "prod")  # staging and dev require it Disabled


def test_findings_carry_the_rule_controls_with_names(shipped_policies: list[Policy]) -> None:
    prod = next(p for p in shipped_policies if p.environment == "prod")
    report = evaluate(prod, Snapshot.model_validate(snapshot_data("prod-drifted")), ALL_SOURCES)
    (finding,) = [f for f in report.findings if f.rule == "ZEP-AZ-LOG-CHECKPOINTS"]
    assert [c.key for c in finding.controls][:2] == [
        "azure-policy:70be9e12-c935-49ac-9bd8-fd64b85c1f87",
        "azure-policy:a8f89ff4-3d6e-4d7b-8c5a-2e9b1f4c8d3a",
    ]
    assert (
        finding.controls[0].name
        == "Log checkpoints should be enabled for PostgreSQL flexible servers"
    )
    document = json.loads(json_report.render(report))
    jsonschema.Draft202012Validator(shipped(REPORT_SCHEMA)).validate(document)
    (rendered,) = [f for f in document["findings"] if f["rule"] == "ZEP-AZ-LOG-CHECKPOINTS"]
    assert rendered["controls"][2] == {
        "framework": "cis-azure-3.0.0",
        "id": "5.2.2",
        "name": (
            "Ensure server parameter 'log_checkpoints' is set to 'ON' for PostgreSQL flexible server"
        ),
    }


# --- controls: in policy files ----------------------------------------------------------------


def _policy(tmp_path: Path, controls: str, extra: str = "") -> Path:
    text = f"""
        apiVersion: engram-audit/v1
        environment: prod
        rules:
          - id: LOG-CONN
            check: azure.param.value
            severity: medium
            title: log_connections on
            params: {{name: log_connections, equals: "on"}}
            controls: {controls}
        {extra}
    """
    path = tmp_path / "prod.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_a_rule_cites_controls_as_framework_id_and_gets_their_names(tmp_path: Path) -> None:
    path = _policy(tmp_path, "[mcsb:LT-3, 'prowler:postgresql_flexible_server_log_connections_on']")
    (rule,) = load_policy(path).rules
    assert [(c.framework, c.id, c.name) for c in rule.controls] == [
        ("mcsb", "LT-3", "Enable logging for security investigation"),
        (
            "prowler",
            "postgresql_flexible_server_log_connections_on",
            "PostgreSQL flexible server has log_connections enabled",
        ),
    ]


def test_an_unknown_control_is_a_located_error(tmp_path: Path) -> None:
    path = _policy(tmp_path, "[mcsb:LT-99]")
    with pytest.raises(InputError) as caught:
        load_policy(path)
    (problem,) = caught.value.problems
    assert problem.line == 9
    assert "mcsb:LT-99" in problem.message
    result = run("validate", str(path))
    assert result.returncode == 2
    assert "prod.yaml:9" in result.stderr


def test_the_schema_offers_every_known_control() -> None:
    rule = shipped(POLICY_SCHEMA)["$defs"]["rule"]
    assert set(rule["properties"]["controls"]["items"]["enum"]) == set(control_catalogue().controls)


def test_an_environment_override_replaces_the_list(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(
        textwrap.dedent(
            """
            apiVersion: engram-audit/v1
            rules:
              - id: GEO
                check: azure.backup.geo_redundant
                severity: high
                title: Geo
                params: {enabled: true}
                controls: ['azure-policy:cee2f9fd-3968-44be-a863-bd62c9884423']
            """
        ).lstrip(),
        encoding="utf-8",
    )
    env = tmp_path / "staging.yaml"
    env.write_text(
        "apiVersion: engram-audit/v1\nenvironment: staging\nextends: base.yaml\n"
        "rules:\n  - id: GEO\n    params: {enabled: false}\n    controls: []\n",
        encoding="utf-8",
    )
    assert load_policy(base.parent / "staging.yaml").rules[0].controls == ()


# --- engram-audit controls ----------------------------------------------------------------------


def test_controls_lists_each_control_its_rules_and_environments() -> None:
    result = run("controls", "azure-policy")
    assert result.returncode == 0, result.stderr
    assert "70be9e12-c935-49ac-9bd8-fd64b85c1f87 Log checkpoints should be enabled" in result.stdout
    assert (
        "ZEP-AZ-LOG-CHECKPOINTS: dev (low), staging (low), uat (low), prod (low)" in result.stdout
    )
    assert "ZEP-AZ-GEO-BACKUP: uat (high), prod (critical)" in result.stdout
    assert "not covered: cannot be checked from the server" in result.stdout
    assert "23 of 30 controls enforced, 7 not covered with the reason given" in result.stdout
    assert "mcsb" not in result.stdout.split("\n", 1)[0]


def test_controls_as_json_for_every_framework() -> None:
    result = run("controls", "--format", "json")
    assert result.returncode == 0, result.stderr
    frameworks = {f["id"]: f for f in json.loads(result.stdout)["frameworks"]}
    assert list(frameworks) == ["azure-policy", "mcsb", "cis-azure-3.0.0", "prowler"]
    assert all(f["not_covered_unexplained"] == 0 for f in frameworks.values())
    (throttle,) = [c for c in frameworks["cis-azure-3.0.0"]["controls"] if c["id"] == "5.2.3"]
    assert throttle["enforced_by"][0]["rule"] == "ZEP-AZ-CONNECTION-THROTTLING"
    assert {e["environment"] for e in throttle["enforced_by"][0]["environments"]} == {
        "staging",
        "dev",
        "uat",
        "prod",
    }


def test_controls_reads_another_policy_directory(tmp_path: Path) -> None:
    _policy(tmp_path, "[mcsb:LT-3]")
    result = run("controls", "mcsb", "--policy-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "LOG-CONN: prod (medium)" in result.stdout
    assert "NOT COVERED WITHOUT A REASON" in result.stdout  # NS-2 and others: no rule here


def test_an_unknown_framework_is_a_usage_error() -> None:
    result = run("controls", "iso27001")
    assert result.returncode == 2
    assert "unknown framework 'iso27001'; known frameworks: azure-policy, mcsb" in result.stderr


def test_the_readme_coverage_table_is_the_commands_output() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- coverage:start -->\n(.*?)<!-- coverage:end -->", readme, re.S)
    assert block is not None, "README lost its coverage markers"
    result = run("controls", "--format", "markdown")
    assert block.group(1) == result.stdout, "run: engram-audit controls --format markdown"
