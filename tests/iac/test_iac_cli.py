"""check and collect with a plan or a template: flags, outputs where the change is, secrets,
the snapshot's origin, diff against the live estate, and the CI recipe."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from engram_audit.schemas import SNAPSHOT_SCHEMA, shipped
from tests.conftest import ROOT
from tests.gate.test_ci_recipes import invocations, scripts
from tests.reporters.test_sarif_output import schema_errors
from tests.support.cli import run_in_process as run

IAC = "fixtures/iac"
MODULES = f"{IAC}/handwritten/modules"
MODULES_PLAN = f"{MODULES}/plan.json"
BICEP = f"{IAC}/handwritten/bicep"
SECRETS = ("P@ssword1234!", "N0t-A-Real-Secret-42!")
RECIPE = ROOT / "docs" / "ci" / "terraform-plan.yml"


def results(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert schema_errors(document) == []
    found: list[dict[str, Any]] = document["runs"][0]["results"]
    return found


def line_of(path: str, pattern: str) -> int:
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if re.search(pattern, line))


# --- flags ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--subscription", "00000000-0000-0000-0000-000000000000", "--server", "x"],
            "excludes the live-ARM flags (--subscription, --server)",
        ),
        (["--arm-template", f"{BICEP}/main.json"], "either --terraform-plan or --arm-template"),
        (
            ["--snapshot", "fixtures/snapshots/prod-compliant.json"],
            "either --snapshot FILE or --terraform-plan",
        ),
        (["--env", "staging"], "one environment's planned state"),
    ],
)
def test_a_plan_is_the_azure_source_and_excludes_live_arm(extra: list[str], message: str) -> None:
    result = run("check", "--env", "prod", "--terraform-plan", MODULES_PLAN, *extra)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_parameters_need_a_template_and_iac_root_needs_planned_state() -> None:
    result = run("check", "--env", "prod", "--arm-parameters", f"{BICEP}/main.parameters.json")
    assert result.returncode == 2 and "--arm-parameters needs --arm-template" in result.stderr
    result = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        "fixtures/snapshots/prod-compliant.json",
        "--iac-root",
        MODULES,
    )
    assert result.returncode == 2 and "--iac-root locates" in result.stderr


def test_a_plan_of_another_format_exits_2_with_the_reason(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"format_version": "2.0", "planned_values": {}}), encoding="utf-8")
    result = run("check", "--env", "prod", "--terraform-plan", str(plan))
    assert result.returncode == 2
    assert "format_version '2.0' cannot be read" in result.stderr


# --- exit codes and the console -----------------------------------------------------------------


def test_exit_codes_follow_the_verdicts() -> None:
    compliant = run(
        "check", "--env", "prod", "--terraform-plan", f"{IAC}/handwritten/prod-compliant.plan.json"
    )
    assert compliant.returncode == 0, compliant.stdout
    assert "needs live state" in compliant.stdout
    failing = run("check", "--env", "prod", "--terraform-plan", MODULES_PLAN)
    assert failing.returncode == 1
    unknown = run(
        "check", "--env", "prod", "--terraform-plan", f"{IAC}/handwritten/unknowns.plan.json"
    )
    assert unknown.returncode == 3
    assert "unknown until apply" in unknown.stdout
    assert "judging the planned state of" in unknown.stderr


def test_a_template_without_a_flexible_server_is_incomplete_unless_allowed() -> None:
    template = f"{IAC}/quickstarts/managed-postgresql-with-vnet/azuredeploy.json"
    result = run("check", "--env", "prod", "--arm-template", template)
    assert result.returncode == 3
    assert "retired Single Server" in result.stdout
    allowed = run("check", "--env", "prod", "--arm-template", template, "--allow-empty")
    assert allowed.returncode == 0


def test_the_plan_notes_servers_it_replaces_or_deletes() -> None:
    result = run(
        "check", "--env", "prod", "--terraform-plan", f"{IAC}/handwritten/replace.plan.json"
    )
    assert (
        "the plan replaces azurerm_postgresql_flexible_server.main because of geo_redundant_backup_enabled"
        in result.stderr
    )
    assert "the plan deletes azurerm_postgresql_flexible_server.legacy" in result.stderr
    assert "engram-audit.plan.server-replaced" in result.stdout


# --- outputs where the change is -----------------------------------------------------------------


def test_sarif_points_at_the_terraform_resource_block(tmp_path: Path) -> None:
    sarif = tmp_path / "plan.sarif"
    run(
        "check",
        "--env",
        "prod",
        "--terraform-plan",
        MODULES_PLAN,
        "--iac-root",
        MODULES,
        "-o",
        f"sarif:{sarif}",
    )
    by_rule = {}
    for result in results(sarif):
        address = result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        by_rule[(result["ruleId"], address)] = result
    server = by_rule[
        ("ZEP-AZ-SKU-TIER", 'module.db["green"].azurerm_postgresql_flexible_server.this')
    ]
    location = server["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {
        "uri": f"{MODULES}/modules/db/main.tf",
        "uriBaseId": "%SRCROOT%",
    }
    assert location["region"]["startLine"] == line_of(
        f"{MODULES}/modules/db/main.tf", r'^resource "azurerm_postgresql_flexible_server" "this"'
    )
    assert (
        server["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == "policies/prod.yaml"
    )
    assert (
        server["properties"]["address"]
        == 'module.db["green"].azurerm_postgresql_flexible_server.this'
    )
    tls = by_rule[
        (
            "ZEP-AZ-TLS-MIN-VERSION",
            'module.db["green"].azurerm_postgresql_flexible_server_configuration.tls',
        )
    ]
    assert tls["locations"][0]["physicalLocation"]["region"]["startLine"] == line_of(
        f"{MODULES}/modules/db/main.tf",
        r'^resource "azurerm_postgresql_flexible_server_configuration" "tls"',
    )


def test_without_iac_root_sarif_stays_on_the_policy_line_and_names_the_address(
    tmp_path: Path,
) -> None:
    sarif = tmp_path / "plan.sarif"
    run("check", "--env", "prod", "--terraform-plan", MODULES_PLAN, "-o", f"sarif:{sarif}")
    for result in results(sarif):
        location = result["locations"][0]
        assert location["physicalLocation"]["artifactLocation"]["uri"].startswith("policies/")
        if result["ruleId"] != "engram-audit.evaluation-error":
            assert location["logicalLocations"][0]["fullyQualifiedName"].startswith("module.db[")


def test_sarif_points_at_the_bicep_declaration(tmp_path: Path) -> None:
    sarif = tmp_path / "template.sarif"
    run(
        "check",
        "--env",
        "staging",
        "--arm-template",
        f"{BICEP}/main.json",
        "--arm-parameters",
        f"{BICEP}/main.parameters.json",
        "--iac-root",
        BICEP,
        "-o",
        f"sarif:{sarif}",
    )
    found = {r["ruleId"]: r for r in results(sarif)}
    tls = found["ZEP-AZ-TLS-REQUIRED"]["locations"][0]["physicalLocation"]
    assert tls["artifactLocation"]["uri"] == f"{BICEP}/main.bicep"
    assert tls["region"]["startLine"] == line_of(f"{BICEP}/main.bicep", r"^module tls ")


def test_sarif_points_at_the_resource_in_a_plain_template(tmp_path: Path) -> None:
    template = f"{IAC}/quickstarts/flexible-postgresql-with-aad/azuredeploy.json"
    sarif = tmp_path / "template.sarif"
    run(
        "check",
        "--env",
        "prod",
        "--arm-template",
        template,
        "--arm-parameters",
        f"{IAC}/quickstarts/flexible-postgresql-with-aad/azuredeploy.parameters.json",
        "--iac-root",
        f"{IAC}/quickstarts/flexible-postgresql-with-aad",
        "-o",
        f"sarif:{sarif}",
    )
    geo = next(r for r in results(sarif) if r["ruleId"] == "ZEP-AZ-GEO-BACKUP")
    location = geo["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == template
    assert (
        location["region"]["startLine"]
        == line_of(template, r'"type": "Microsoft.DBforPostgreSQL/flexibleServers",') - 1
    )


def test_a_registry_module_is_found_through_terraform_init(tmp_path: Path) -> None:
    """module "test" in the AVM example comes from a registry: terraform init records its
    directory in .terraform/modules/modules.json."""
    root = tmp_path / "infra"
    installed = root / ".terraform" / "modules" / "test"
    installed.mkdir(parents=True)
    (root / "main.tf").write_text(
        'module "test" {\n  source  = "Azure/avm-res-dbforpostgresql-flexibleserver/azurerm"\n}\n',
        encoding="utf-8",
    )
    (installed / "main.tf").write_text(
        '# module\n\nresource "azurerm_postgresql_flexible_server" "this" {\n}\n', encoding="utf-8"
    )
    (root / ".terraform" / "modules" / "modules.json").write_text(
        json.dumps(
            {
                "Modules": [
                    {"Key": "", "Source": "", "Dir": "."},
                    {"Key": "test", "Source": "registry", "Dir": ".terraform/modules/test"},
                ]
            }
        ),
        encoding="utf-8",
    )
    sarif = tmp_path / "plan.sarif"
    run(
        "check",
        "--env",
        "prod",
        "--terraform-plan",
        str(ROOT / IAC / "avm-terraform" / "default.plan.json"),
        "--iac-root",
        str(root),
        "-o",
        f"sarif:{sarif}",
    )
    location = results(sarif)[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith(".terraform/modules/test/main.tf")
    assert location["region"]["startLine"] == 3
    shutil.rmtree(installed)  # not installed: the module call is where the change is
    run(
        "check",
        "--env",
        "prod",
        "--terraform-plan",
        str(ROOT / IAC / "avm-terraform" / "default.plan.json"),
        "--iac-root",
        str(root),
        "-o",
        f"sarif:{sarif}",
    )
    location = results(sarif)[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("infra/main.tf")
    assert location["region"]["startLine"] == 1


def test_junit_and_markdown_name_the_resource_address(tmp_path: Path) -> None:
    junit, markdown = tmp_path / "r.xml", tmp_path / "r.md"
    run(
        "check",
        "--env",
        "prod",
        "--terraform-plan",
        MODULES_PLAN,
        "--iac-root",
        MODULES,
        "-o",
        f"junit:{junit}",
        "-o",
        f"markdown:{markdown}",
    )
    xml = junit.read_text(encoding="utf-8")
    assert (
        "on module.db[&quot;green&quot;].azurerm_postgresql_flexible_server.this: expected" in xml
    )
    assert "Declared at: fixtures/iac/handwritten/modules/modules/db/main.tf:21" in xml
    md = markdown.read_text(encoding="utf-8")
    assert 'module.db\\["green"\\].azurerm\\_postgresql\\_flexible\\_server.this' in md


def test_no_secret_reaches_any_output(tmp_path: Path) -> None:
    outputs = [
        f"{fmt}:{tmp_path / ('out.' + fmt)}" for fmt in ("json", "sarif", "junit", "markdown")
    ]
    texts = []
    for args in (
        ["--terraform-plan", f"{IAC}/zodiacae/aks-demo.plan.json"],
        ["--terraform-plan", f"{IAC}/handwritten/unknowns.plan.json"],
        [
            "--arm-template",
            f"{IAC}/avm-bicep/main.json",
            "--arm-parameters",
            f"{IAC}/avm-bicep/parameters/max.parameters.json",
        ],
        [
            "--arm-template",
            f"{BICEP}/main.json",
            "--arm-parameters",
            f"{BICEP}/main.parameters.json",
        ],
    ):
        result = run("-v", "check", "--env", "prod", *args, *(f"-o{o}" for o in outputs))
        texts += [result.stdout, result.stderr]
        texts += [path.read_text(encoding="utf-8") for path in tmp_path.glob("out.*")]
        snapshot = tmp_path / "snapshot.json"
        run("collect", "--env", "prod", *args, "--output", str(snapshot))
        texts.append(snapshot.read_text(encoding="utf-8"))
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


# --- collect, the snapshot's origin, diff ----------------------------------------------------------


def test_collect_writes_planned_state_with_its_origin(tmp_path: Path) -> None:
    snapshot = tmp_path / "plan-snapshot.json"
    result = run(
        "collect", "--env", "prod", "--terraform-plan", MODULES_PLAN, "--output", str(snapshot)
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(snapshot.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(shipped(SNAPSHOT_SCHEMA)).validate(document)
    origin = document["origin"]
    assert origin["kind"] == "plan"
    assert origin["files"] == [
        {
            "role": "plan",
            "path": MODULES_PLAN,
            "sha256": hashlib.sha256((ROOT / MODULES_PLAN).read_bytes()).hexdigest(),
        }
    ]
    assert (origin["format_version"], origin["tool"]) == ("1.2", "terraform_version 1.9.8")
    # The saved planned state is judged like the plan itself, later or elsewhere.
    again = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        str(snapshot),
        "--iac-root",
        MODULES,
        "--format",
        "json",
    )
    assert again.returncode == 1
    findings = json.loads(again.stdout)["findings"]
    assert any(f.get("iac", {}).get("path") == f"{MODULES}/modules/db/main.tf" for f in findings)


def test_a_live_snapshot_is_written_as_before() -> None:
    from engram_audit.model.snapshot_io import dump_snapshot, load_snapshot

    live = load_snapshot(ROOT / "fixtures" / "snapshots" / "prod-compliant.json")
    assert "origin" not in json.loads(dump_snapshot(live))


def test_diff_says_what_the_release_changes_against_the_live_estate(tmp_path: Path) -> None:
    parameters = tmp_path / "params.json"
    given = json.loads((ROOT / BICEP / "main.parameters.json").read_text(encoding="utf-8"))
    given["parameters"]["serverName"]["value"] = "zep-prod-db"  # the live fixture's server
    parameters.write_text(json.dumps(given), encoding="utf-8")
    planned = tmp_path / "planned.json"
    run(
        "collect",
        "--env",
        "prod",
        "--arm-template",
        f"{BICEP}/main.json",
        "--arm-parameters",
        str(parameters),
        "--output",
        str(planned),
    )
    result = run("diff", "fixtures/snapshots/prod-compliant.json", str(planned))
    assert result.returncode == 1, result.stdout
    text = result.stdout
    assert re.search(r"prod \S+ -> prod template fixtures/iac/handwritten/bicep/main.json", text)
    assert (
        "~ /subscriptions/6f2a1c3e-8b4d-4e2f-9a7c-1d2e3f4a5b6c/resourceGroups/engram-rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/zep-prod-db"
        in text
    )
    assert 'resource.sku.tier: "GeneralPurpose" -> "Burstable"' in text
    assert 'parameters.require_secure_transport.value: "on" -> "off"' in text
    assert "firewall_rules[office]: (absent) -> " in text  # a rule the release adds
    # Not declared in the template: Azure defaults are not changes the release makes, and
    # what the live server has beyond the template (its other parts) is not compared.
    assert "backupRetentionDays" not in text
    assert "pg_stat_statements.track" not in text
    assert "location resourceGroup().location is known only at deployment" in text
    as_json = json.loads(
        run(
            "diff", "fixtures/snapshots/prod-compliant.json", str(planned), "--format", "json"
        ).stdout
    )
    assert as_json["old"]["state"] == "live" and as_json["new"]["state"] == "template"


# --- the recipe -------------------------------------------------------------------------------------


def test_recipe_plans_shows_json_judges_and_uploads_sarif_on_pull_requests(tmp_path: Path) -> None:
    workflow = YAML(typ="safe").load(RECIPE.read_text(encoding="utf-8"))
    triggers = workflow[True] if True in workflow else workflow["on"]
    assert "pull_request" in triggers
    job = workflow["jobs"]["plan-gate"]
    assert job["permissions"]["security-events"] == "write"
    setup = next(
        s for s in job["steps"] if str(s.get("uses", "")).startswith("hashicorp/setup-terraform")
    )
    assert setup["with"]["terraform_wrapper"] is False
    shell = "\n".join(scripts(workflow))
    show = re.search(r"terraform -chdir=(\S+) show -json tfplan > (\S+)", shell)
    assert show is not None and "plan -input=false -lock=false -out=tfplan" in shell
    (args,) = [a for s in scripts(workflow) for a in invocations(s)]
    assert args[args.index("--terraform-plan") + 1] == show.group(2)
    assert args[args.index("--iac-root") + 1] == show.group(1)
    sarif = next(
        a.split(":", 1)[1] for a in args if a.startswith("-o") is False and a.startswith("sarif:")
    )
    upload = next(
        s
        for s in job["steps"]
        if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif")
    )
    assert upload["with"]["sarif_file"] == sarif

    # The recipe's own command, on a real plan and its sources, in a scratch checkout.
    shutil.copytree(ROOT / MODULES, tmp_path / show.group(1))
    shutil.copy(ROOT / MODULES_PLAN, tmp_path / show.group(2))
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # high findings in the plan
    located = results(tmp_path / sarif)
    assert located and all(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith(
            show.group(1) + "/"
        )
        for r in located
    )
    assert (tmp_path / "engram-audit-plan.md").is_file()


def test_inventory_targets_are_set_aside_for_a_plan(tmp_path: Path) -> None:
    """The inventory names prod's live server and DSN: a plan is judged alone, without them."""
    (tmp_path / "engram-audit.yaml").write_text(
        "apiVersion: engram-audit/v1\nenvironments:\n"
        "  prod:\n    azure: {subscriptions: ['00000000-0000-0000-0000-0000000000aa'], "
        "resource_group: engram-rg, servers: [zep-prod-db]}\n"
        "    postgres: {dsn_env: AUDIT_DSN}\n",
        encoding="utf-8",
    )
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    plan = ROOT / IAC / "handwritten" / "prod-compliant.plan.json"
    result = run("check", "--env", "prod", "--terraform-plan", str(plan), cwd=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "sources azure, dsn, postgres" in result.stdout


def test_a_plan_with_planned_values_only_is_read(tmp_path: Path) -> None:
    """Without resource_changes the planned values are read; what they omit is unknown."""
    document = json.loads(
        (ROOT / IAC / "zodiacae" / "aks-demo.plan.json").read_text(encoding="utf-8")
    )
    del document["resource_changes"]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(document), encoding="utf-8")
    report = tmp_path / "r.json"
    run("check", "--env", "prod", "--terraform-plan", str(plan), "-o", f"json:{report}")
    findings = {f["rule"]: f for f in json.loads(report.read_text(encoding="utf-8"))["findings"]}
    assert findings["ZEP-AZ-VERSION"]["actual"] == "13"
    assert findings["ZEP-AZ-FIREWALL-OPEN"]["status"] == "pass"
