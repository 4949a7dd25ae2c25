"""Fixes of findings on a plan or template name the attribute and value to set in the source
(resource address, file and line), never an ``az`` command for a resource not deployed; and
each fix, applied to the real plan or template it came from, turns its failure into a pass."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from engram_audit.collectors.iac.fixes import PlannedFixes, Where
from engram_audit.collectors.iac.locate import locate_findings
from engram_audit.collectors.iac.request import IacRequest
from engram_audit.collectors.iac.terraform import CONFIGURATION, SERVER_ATTRIBUTES
from engram_audit.collectors.run import collect_planned
from engram_audit.engine import evaluate
from engram_audit.model import Finding, Report, Severity, Source, Status
from engram_audit.policy.loader import load_policy
from tests.conftest import ROOT
from tests.support.cli import run_in_process as run
from tests.support.iac_cases import CASES, PROD, prod_report

IAC = "fixtures/iac"
MODULES = f"{IAC}/handwritten/modules"
MODULE_TF = f"{MODULES}/modules/db/main.tf"
BICEP = f"{IAC}/handwritten/bicep"
AVM_PLAN = ROOT / IAC / "avm-terraform" / "default.plan.json"
AVM_SERVER = "module.test.azurerm_postgresql_flexible_server.this"
QUICKSTART = ROOT / IAC / "quickstarts" / "flexible-postgresql-with-aad"
ALL_SOURCES = {Source.AZURE, Source.POSTGRES, Source.DSN}


def line_of(path: str, pattern: str) -> int:
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if re.search(pattern, line))


def _findings(path: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["findings"]
    return found


def _fix(findings: list[dict[str, Any]], rule: str, address: str, resource: str = "") -> str:
    (finding,) = [
        f
        for f in findings
        if f["rule"] == rule and f["iac"]["address"] == address and f["resource"].endswith(resource)
    ]
    assert finding["status"] == "fail", finding
    fix: str = finding["remediation"]
    return fix


# --- where and what: attribute, value, address, file and line ---------------------------------


def test_a_terraform_fix_names_the_attribute_value_address_file_and_line(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = run(
        "check", "--env", "prod", "--terraform-plan", f"{MODULES}/plan.json",
        "--iac-root", MODULES, "-o", f"json:{out}",
    )  # fmt: skip
    assert result.code == 1, result.stderr
    findings = _findings(out)
    server_line = line_of(MODULE_TF, r'^resource "azurerm_postgresql_flexible_server" "this"')
    green = 'module.db["green"].azurerm_postgresql_flexible_server.this'
    where = f"In {MODULE_TF}:{server_line} ({green}): "
    assert (
        _fix(findings, "ZEP-AZ-BACKUP-RETENTION", green) == where + "set backup_retention_days = 35"
    )
    assert (
        _fix(findings, "ZEP-AZ-HA", green)
        == where + 'set high_availability { mode = "ZoneRedundant" }'
    )
    assert (
        _fix(findings, "ZEP-AZ-PUBLIC-ACCESS", green)
        == where + "set public_network_access_enabled = false"
    )
    assert (
        _fix(findings, "ZEP-AZ-STORAGE-AUTOGROW", green) == where + "set auto_grow_enabled = true"
    )
    # 128 GB as the provider writes it (storage_mb, one of its listed values).
    assert _fix(findings, "ZEP-AZ-STORAGE-SIZE", green).startswith(
        where + "set storage_mb = 131072"
    )
    geo = _fix(findings, "ZEP-AZ-GEO-BACKUP", green)
    assert geo.startswith(where + "set geo_redundant_backup_enabled = true")
    assert "forces a new server" in geo

    # A parameter declared by its own resource: that resource's value, at its line.
    tls = 'module.db["green"].azurerm_postgresql_flexible_server_configuration.tls'
    tls_line = line_of(MODULE_TF, r'^resource "azurerm_postgresql_flexible_server_configuration"')
    assert _fix(findings, "ZEP-AZ-TLS-MIN-VERSION", tls) == (
        f'In {MODULE_TF}:{tls_line} ({tls}): set value = "TLSv1.2"'
    )
    # A parameter nobody declares: the resource type to add, with its name and value.
    extensions = _fix(findings, "ZEP-AZ-EXTENSIONS-VECTOR", green)
    assert extensions.startswith(
        f'Add a resource "{CONFIGURATION}" with name = "azure.extensions", value = "vector", '
        'server_id = azurerm_postgresql_flexible_server.this.id (inside module.db["green"])'
    )
    assert extensions.endswith(f"(the server: {MODULE_TF}:{server_line} ({green}))")
    # A firewall rule: remove that resource, at its line.
    rule = 'module.db["green"].azurerm_postgresql_flexible_server_firewall_rule.office[0]'
    rule_line = line_of(MODULE_TF, r'^resource "azurerm_postgresql_flexible_server_firewall_rule"')
    assert _fix(findings, "ZEP-AZ-FIREWALL-OPEN", green) == (
        "Remove the azurerm_postgresql_flexible_server_firewall_rule "
        f"{MODULE_TF}:{rule_line} ({rule}) (firewall rule office-0)"
    )
    for finding in findings:
        fix = finding["remediation"]
        assert (finding["status"] == "fail") == bool(fix), finding
        assert not re.search(r"(^|\n)az ", fix), finding


def test_a_bicep_fix_names_the_property_path_in_bicep_syntax_at_its_line(tmp_path: Path) -> None:
    out = tmp_path / "template.json"
    run(
        "check", "--env", "prod", "--arm-template", f"{BICEP}/main.json",
        "--arm-parameters", f"{BICEP}/main.parameters.json", "--iac-root", BICEP,
        "-o", f"json:{out}",
    )  # fmt: skip
    findings = _findings(out)
    line = line_of(f"{BICEP}/main.bicep", r"^resource pg ")
    where = f"In {BICEP}/main.bicep:{line} (pg): "
    assert _fix(findings, "ZEP-AZ-BACKUP-RETENTION", "pg") == (
        where + "set properties.backup.backupRetentionDays = 35"
    )
    assert (
        _fix(findings, "ZEP-AZ-HA", "pg")
        == where + "set properties.highAvailability.mode = 'ZoneRedundant'"
    )
    assert (
        _fix(findings, "ZEP-AZ-STORAGE-SIZE", "pg")
        == where + "set properties.storage.storageSizeGB = 128"
    )
    # The nested child declared in pg: its own value, where Bicep declares it.
    child = line_of(f"{BICEP}/main.bicep", r"^  resource extensions ")
    assert _fix(findings, "ZEP-AZ-PGAUDIT-ALLOWLIST", "pg::extensions") == (
        f"In {BICEP}/main.bicep:{child} (pg::extensions): set properties.value = 'VECTOR,pgaudit'"
    )


def test_an_arm_fix_without_iac_root_names_the_template_line(tmp_path: Path) -> None:
    out = tmp_path / "template.json"
    template = f"{IAC}/quickstarts/flexible-postgresql-with-aad/azuredeploy.json"
    run(
        "check", "--env", "prod", "--arm-template", template, "--arm-parameters",
        f"{IAC}/quickstarts/flexible-postgresql-with-aad/azuredeploy.parameters.json",
        "-o", f"json:{out}",
    )  # fmt: skip
    findings = _findings(out)
    # The resource object opens on the line before its "type".
    line = line_of(template, r'"type": "Microsoft.DBforPostgreSQL/flexibleServers"') - 1
    where = f"In {template}:{line} (resources[0]): "
    assert (
        _fix(findings, "ZEP-AZ-VERSION", "resources[0]") == where + 'set properties.version = "16"'
    )
    assert _fix(findings, "ZEP-AZ-BACKUP-RETENTION", "resources[0]") == (
        where + "set properties.backup.backupRetentionDays = 35"
    )
    configuration = _fix(
        findings, "ZEP-AZ-PG-STAT-STATEMENTS", "resources[0]", "/pg_stat_statements.track"
    )
    assert configuration == (
        "Add a Microsoft.DBforPostgreSQL/flexibleServers/configurations child resource of "
        f'{template}:{line} (resources[0]) named "pg_stat_statements.track" with '
        'properties.value = "top" and properties.source = "user-override"'
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_failure_on_real_material_gets_a_source_fix(case: Any) -> None:
    report = prod_report(case)
    failures = [f for f in report.findings if f.status is Status.FAIL]
    for finding in report.findings:
        fix = finding.remediation
        if finding.status is not Status.FAIL:
            assert fix == "", finding
            continue
        assert fix, finding
        assert not re.search(r"(^|\n)az ", fix), finding
        if finding.rule != "engram-audit.plan.server-replaced":
            assert finding.facts.get("origin") == case.kind, finding
            address = finding.iac.address if finding.iac else ""
            # The server's address, or the child resource to change or remove.
            assert address and (address in fix or fix.startswith("Remove the ")), finding
    if case.name.startswith(("avm-", "zodiacae-", "handwritten-modules")):
        assert failures


# --- values only a person can supply ----------------------------------------------------------


def test_values_the_policy_supplies_are_written_into_the_source_fix(tmp_path: Path) -> None:
    policy = tmp_path / "prod.yaml"
    policy.write_text(
        "apiVersion: engram-audit/v1\nenvironment: prod\nextends: "
        f"{json.dumps(str(PROD))}\nrules:\n"
        "  - id: ZEP-AZ-ALERTS\n"
        "    remediation_params: {action_group_id: /subscriptions/1/resourceGroups/ops/providers/"
        "microsoft.insights/actionGroups/on-call}\n"
        "  - id: ZEP-AZ-ENTRA\n"
        "    remediation_params: {entra_admin_object_id: 00000000-0000-0000-0000-0000000000aa, "
        "entra_admin_name: zep-dba}\n",
        encoding="utf-8",
    )
    snapshot = collect_planned("prod", IacRequest("plan", AVM_PLAN))
    report = locate_findings(evaluate(load_policy(policy), snapshot, ALL_SOURCES), snapshot, None)
    by_rule = {f.rule: f.remediation for f in report.findings if f.status is Status.FAIL}
    assert (
        'action { action_group_id = "/subscriptions/1/resourceGroups/ops/providers/'
        'microsoft.insights/actionGroups/on-call" }' in by_rule["ZEP-AZ-ALERTS"]
    )
    assert 'object_id = "00000000-0000-0000-0000-0000000000aa"' in by_rule["ZEP-AZ-ENTRA"]
    assert 'principal_name = "zep-dba"' in by_rule["ZEP-AZ-ENTRA"]
    unset = prod_report(next(c for c in CASES if c.name == "avm-terraform-default"))
    (alerts,) = [f for f in unset.findings if f.rule == "ZEP-AZ-ALERTS"]
    assert "remediation_params.action_group_id" in alerts.remediation


# --- applied to the real plan or template, each fix turns its failure into a pass -------------

_SET = re.compile(r"^In (?P<address>.+?): set (?P<name>\w+) (?:= |\{ (?P<inner>\w+) = )")
_ADD = re.compile(
    r'^Add a resource "azurerm_postgresql_flexible_server_configuration" with name = '
    r'(?P<name>"[^"]*"), value = (?P<value>"(?:[^"\\]|\\.)*")'
)
_REMOVE = re.compile(r"^Remove the \w+ (?P<address>.+) \(firewall rule [^)]*\)$")
_ARM_SET = re.compile(r"^In [^\n]*?: set (?P<path>[\w.]+) = ")
_ARM_ADD = re.compile(
    r"^Add a Microsoft\.DBforPostgreSQL/flexibleServers/configurations child resource of .*? "
    r'named (?P<name>"[^"]*") with properties\.value = (?P<value>"(?:[^"\\]|\\.)*")'
)


def _literal(text: str) -> Any:
    """The HCL or JSON literal at the start of ``text`` (true, 35, "ZoneRedundant")."""
    value, _ = json.JSONDecoder().raw_decode(text)
    return value


def _without(module: dict[str, Any], address: str) -> None:
    """Drop a resource from planned_values (a module and its children)."""
    module["resources"] = [r for r in module.get("resources", []) if r["address"] != address]
    for child in module.get("child_modules", []):
        _without(child, address)


def _patched_plan(plan: dict[str, Any], fix: str, server_id: str) -> dict[str, Any] | None:
    """The plan with the fix made, as Terraform would plan the changed source: the attribute
    set in the named resource's planned values, a configuration resource added (its server_id
    the server's, as the reference resolves at apply), a firewall rule resource removed; None
    for a fix of several changes or prose."""
    if "\n" in fix:
        return None  # several changes (an alert per metric, Entra and its administrator)
    patched = copy.deepcopy(plan)
    changes = patched["resource_changes"]
    if match := _SET.match(fix):
        address = match["address"]
        (resource,) = [r for r in changes if r["address"] == address]
        change = resource["change"]
        value = _literal(fix[match.end() :])
        change["after"][match["name"]] = [{match["inner"]: value}] if match["inner"] else value
        change.get("after_unknown", {}).pop(match["name"], None)
        return patched
    if match := _ADD.match(fix):
        changes.append(
            {
                "address": f"{CONFIGURATION}.fix",
                "mode": "managed",
                "type": CONFIGURATION,
                "name": "fix",
                "change": {
                    "actions": ["create"],
                    "after": {
                        "name": _literal(match["name"]),
                        "value": _literal(match["value"]),
                        "server_id": server_id,
                    },
                    "after_unknown": {"id": True},
                },
            }
        )
        return patched
    if match := _REMOVE.match(fix):
        address = match["address"]
        patched["resource_changes"] = [r for r in changes if r["address"] != address]
        if "planned_values" in patched:
            _without(patched["planned_values"].get("root_module", {}), address)
        return patched
    return None


def _fixed(report: Report, rule: str, resource: str) -> bool:
    """PASS; or SKIP when what is left only a running server can tell (HA health)."""
    (finding,) = [f for f in report.findings if f.rule == rule and f.resource == resource]
    if finding.status is Status.SKIP:
        return "needs live state" in finding.actual + finding.message
    return finding.status is Status.PASS


def _judge(request: IacRequest) -> Report:
    snapshot = collect_planned("prod", request)
    return locate_findings(evaluate(load_policy(PROD), snapshot, ALL_SOURCES), snapshot, None)


@pytest.mark.parametrize(
    ("plan_path", "expected"),
    [
        (
            AVM_PLAN,
            {
                "ZEP-AZ-BACKUP-RETENTION",
                "ZEP-AZ-STORAGE-SIZE",
                "ZEP-AZ-STORAGE-AUTOGROW",
                "ZEP-AZ-EXTENSIONS-VECTOR",
                "ZEP-AZ-PG-STAT-STATEMENTS",
                "ZEP-AZ-PGBOUNCER",
                "ZEP-AZ-PGAUDIT-LOG",
            },
        ),
        (
            ROOT / MODULES / "plan.json",
            {
                "ZEP-AZ-BACKUP-RETENTION",
                "ZEP-AZ-HA",
                "ZEP-AZ-PUBLIC-ACCESS",
                "ZEP-AZ-STORAGE-AUTOGROW",
                "ZEP-AZ-STORAGE-SIZE",
                "ZEP-AZ-GEO-BACKUP",
                "ZEP-AZ-TLS-MIN-VERSION",
                "ZEP-AZ-FIREWALL-OPEN",
                "ZEP-AZ-EXTENSIONS-VECTOR",
                "ZEP-AZ-PG-STAT-STATEMENTS",
                "ZEP-AZ-PGAUDIT-LOG",
            },
        ),
    ],
    ids=["avm-terraform", "handwritten-modules"],
)
def test_each_terraform_fix_applied_to_the_real_plan_passes(
    tmp_path: Path, plan_path: Path, expected: set[str]
) -> None:
    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    before = _judge(IacRequest("plan", plan_path))
    applied = []
    for number, finding in enumerate(before.findings):
        if finding.status is not Status.FAIL or finding.rule in applied:
            continue  # one server's fix per rule: the servers of a plan share the mapping
        server_id = str(finding.facts["server_id"])
        patched = _patched_plan(plan, finding.remediation, server_id)
        if patched is None:
            continue
        path = tmp_path / f"{number}.plan.json"
        path.write_text(json.dumps(patched), encoding="utf-8")
        after = _judge(IacRequest("plan", path))
        assert _fixed(after, finding.rule, finding.resource), (finding.rule, finding.remediation)
        applied.append(finding.rule)
    # Every concrete attribute, parameter and firewall fix of this real plan was applied.
    assert set(applied) >= expected, sorted(applied)


def _patched_template(template: dict[str, Any], fix: str) -> dict[str, Any] | None:
    patched = copy.deepcopy(template)
    server = patched["resources"][0]
    if match := _ARM_SET.match(fix):
        *parents, last = match["path"].split(".")
        node = server
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = _literal(fix[match.end() :])
        return patched
    if match := _ARM_ADD.match(fix):
        server.setdefault("resources", []).append(
            {
                "type": "configurations",
                "apiVersion": server["apiVersion"],
                "name": _literal(match["name"]),
                "properties": {"value": _literal(match["value"]), "source": "user-override"},
            }
        )
        return patched
    return None


def test_each_arm_fix_applied_to_the_real_template_passes(tmp_path: Path) -> None:
    source = QUICKSTART / "azuredeploy.json"
    parameters = QUICKSTART / "azuredeploy.parameters.json"
    template = json.loads(source.read_text(encoding="utf-8"))
    before = _judge(IacRequest("template", source, parameters))
    applied = []
    for finding in before.findings:
        if finding.status is not Status.FAIL or finding.rule in applied:
            continue
        patched = _patched_template(template, finding.remediation)
        if patched is None:
            continue
        path = tmp_path / f"{finding.rule}.json"
        path.write_text(json.dumps(patched), encoding="utf-8")
        after = _judge(IacRequest("template", path, parameters))
        assert _fixed(after, finding.rule, finding.resource), (finding.rule, finding.remediation)
        applied.append(finding.rule)
    assert set(applied) >= {
        "ZEP-AZ-VERSION",
        "ZEP-AZ-BACKUP-RETENTION",
        "ZEP-AZ-HA",
        "ZEP-AZ-STORAGE-SIZE",
        "ZEP-AZ-PG-STAT-STATEMENTS",
        "ZEP-AZ-EXTENSIONS-VECTOR",
        "ZEP-AZ-PGAUDIT-LOG",
    }, applied


# --- the mapping is the reader's -------------------------------------------------------------


def test_every_setting_a_check_names_has_an_azurerm_attribute() -> None:
    """The paths checks put in ``setting`` (server properties) are the ones the Terraform reader
    maps: a new one without a mapping fails here, not silently in a fix."""
    mapped = {".".join(a.path) for a in SERVER_ATTRIBUTES}
    source = "\n".join(
        (ROOT / "engram_audit" / "checks" / "azure" / name).read_text(encoding="utf-8")
        for name in ("server.py", "backup.py", "security.py", "common.py")
    )
    named = set(re.findall(r'setting\(\s*"((?:sku|properties)\.[\w.]+)"', source))
    switches = {
        "properties." + ".".join(p)
        for p in re.findall(r"switch_outcomes?\(\s*\w+,\s*\(([^)]*)\)", source)
        for p in [tuple(s.strip().strip('"') for s in p.split(",") if s.strip())]
    }
    assert named, "no setting found: the pattern is stale"
    assert named | switches <= mapped, (named | switches) - mapped


def test_storage_is_rounded_up_to_a_size_azurerm_accepts() -> None:
    finding = Finding(
        rule="R",
        check="azure.storage.size_gb",
        title="t",
        severity=Severity.HIGH,
        status=Status.FAIL,
        resource="/subscriptions/s/resourceGroups/g/providers/Microsoft.DBforPostgreSQL/flexibleServers/x",
        expected=">= 100 GB",
        facts={"setting": "properties.storage.storageSizeGB=100", "origin": "plan"},
    )
    snapshot = collect_planned("prod", IacRequest("plan", AVM_PLAN))
    fixes = PlannedFixes(snapshot, lambda _: Where("azurerm_postgresql_flexible_server.x"))
    assert fixes.fix(finding) == (
        "In azurerm_postgresql_flexible_server.x: set storage_mb = 131072 "
        "(never lower: scaling storage_mb down forces a new server)"
    )
    tier = finding.model_copy(update={"facts": {"setting": "sku.tier=MemoryOptimized"}})
    assert "set sku_name to a MO_ SKU name" in fixes.fix(tier)
    passing = finding.model_copy(update={"status": Status.PASS})
    assert fixes.fix(passing) == ""


# --- remediate: never in azure.sh; iac.md lists each fix where it is -------------------------


def test_remediate_lists_planned_fixes_in_iac_md_not_in_azure_sh(tmp_path: Path) -> None:
    report = tmp_path / "plan.json"
    run(
        "check", "--env", "prod", "--terraform-plan", f"{MODULES}/plan.json",
        "--iac-root", MODULES, "-o", f"json:{report}",
    )  # fmt: skip
    out = tmp_path / "fixes"
    result = run("remediate", str(report), "-o", str(out))
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "iac.md"]
    iac = (out / "iac.md").read_text(encoding="utf-8")
    server_line = line_of(MODULE_TF, r'^resource "azurerm_postgresql_flexible_server" "this"')
    green = 'module.db["green"].azurerm_postgresql_flexible_server.this'
    assert f"Resource `{green}` at `{MODULE_TF}:{server_line}`" in iac
    assert f"In {MODULE_TF}:{server_line} ({green}): set backup_retention_days = 35" in iac
    failures = [f for f in _findings(report) if f["status"] == "fail"]
    assert iac.count("\n## ") == len(failures)
    assert "az " not in iac
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "`iac.md`" in readme and "Terraform or Bicep/ARM source" in readme
    assert "every failure has a fix in the source (`iac.md`)" in readme


def test_strings_are_written_in_the_source_syntax() -> None:
    """HCL: JSON escapes and template sequences doubled; Bicep: single quotes, \\' \\\\ \\${;
    ARM JSON: JSON."""
    from engram_audit.collectors.iac.fixes import _Writer

    text = "it's a \\ ${x} %{y}"
    assert _Writer("plan", None).string(text) == '"it\'s a \\\\ $${x} %%{y}"'
    assert _Writer("template", "main.bicep").string(text) == "'it\\'s a \\\\ \\${x} %{y}'"
    assert _Writer("template", "main.json").string(text) == json.dumps(text)
