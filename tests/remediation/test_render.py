"""Fixes rendered per finding: quoting per target, list values extended, person-only values as
required shell variables, several firewall rules, static parameters restarted, and placeholders
the loader rejects with file:line."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from engram_audit.checks.facts import FactValue, arm_facts
from engram_audit.errors import InputError
from engram_audit.policy.loader import load_policy
from engram_audit.remediation import MissingFact, quote_ident, render, target_of
from tests.support.cli import run_in_process

SERVER = (
    "/subscriptions/0000/resourceGroups/other-rg/providers/Microsoft.DBforPostgreSQL"
    "/flexibleServers/zep-prod-db"
)
ROOT = Path(__file__).parents[2]


def test_arm_facts_name_the_real_server_and_its_children() -> None:
    facts = arm_facts(SERVER + "/configurations/azure.extensions")
    assert facts == {
        "server_id": SERVER,
        "subscription": "0000",
        "resource_group": "other-rg",
        "server": "zep-prod-db",
        "parameter": "azure.extensions",
    }
    assert arm_facts("postgresql://h:5432/zep") == {}


def test_shell_values_are_quoted_words() -> None:
    text = render(
        "az x --ids {server_id} --value {value}", {"server_id": SERVER, "value": "a b;rm"}
    )
    assert shlex.split(text)[-1] == "a b;rm"
    assert shlex.split(text)[3] == SERVER


def test_sql_names_are_quoted_like_quote_ident_and_qualified() -> None:
    facts = {"schema": "Tenant A", "table": 'we"ird', "column": "embedding"}
    text = render("VACUUM (ANALYZE) {table}; -- {column}", facts)
    assert text == 'VACUUM (ANALYZE) "Tenant A"."we""ird"; -- embedding'
    assert quote_ident("user") == '"user"'
    assert quote_ident("messages") == "messages"
    assert target_of("CREATE INDEX x") == "sql"
    assert target_of("Run the job") == "text"


def test_person_values_come_from_params_else_a_required_variable() -> None:
    template = "az monitor metrics alert create --action {action_group_id}"
    asked = render(template, {})
    assert '"${ACTION_GROUP_ID:?set ' in asked and "<" not in asked
    assert shlex.split(asked)  # still parses as shell words
    given = render(template, {}, {"action_group_id": "/subscriptions/1/ag"})
    assert given.endswith("--action /subscriptions/1/ag")


def test_one_fix_per_firewall_rule() -> None:
    text = render("az fw delete --name {firewall_rule}", {"firewall_rule": ("a", "b c")})
    assert text.splitlines() == ["az fw delete --name a", "az fw delete --name 'b c'"]


def test_static_parameter_is_followed_by_its_restart() -> None:
    facts = {"server_id": SERVER, "parameter": "shared_preload_libraries", "restart": "required"}
    text = render("az p set --name {parameter}", facts)
    assert f"&& az postgres flexible-server restart --ids {SERVER}" in text
    assert "static" in text


def test_missing_fact_is_not_half_rendered() -> None:
    with pytest.raises(MissingFact):
        render("ALTER TABLE {table} RESET (x);", {"schema": "public"})


def test_loader_rejects_an_unknown_placeholder_at_its_line(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "apiVersion: engram-audit/v1\nenvironment: t\nrules:\n"
        "  - id: R1\n    check: azure.param.autovacuum\n    severity: high\n    title: t\n"
        "    remediation: az postgres flexible-server update --ids {servr_id}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as raised:
        load_policy(policy)
    problem = raised.value.problems[0]
    assert problem.line == 8 and "{servr_id}" in problem.message, problem


@pytest.mark.parametrize("environment", ["dev", "staging", "uat", "prod"])
def test_drifted_failures_name_the_real_server(environment: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    snapshot = ROOT / "fixtures" / "snapshots" / f"{environment}-drifted.json"
    assert run_in_process("check", "--snapshot", str(snapshot), "-o", f"json:{out}").code == 1
    report = json.loads(out.read_text(encoding="utf-8"))
    for finding in report["findings"]:
        fix = finding["remediation"]
        if finding["status"] != "fail":
            assert fix == "", finding
            continue
        assert "<" not in fix.replace("< now()", ""), finding
        assert f"--name {environment}-db " not in fix + " "
        if fix.startswith("az "):
            assert f"zep-{environment}-db" in fix, finding


def test_parallel_facts_render_one_fix_per_item_in_step() -> None:
    facts: dict[str, FactValue] = {
        "server": "db",
        "alert": ("connections", "storage"),
        "condition": ("avg active_connections > 40", "avg storage_percent > 90"),
    }
    text = render("az m --name {server}-{alert} --condition {condition}", facts)
    assert text.splitlines() == [
        "az m --name db-connections --condition 'avg active_connections > 40'",
        "az m --name db-storage --condition 'avg storage_percent > 90'",
    ]
    with pytest.raises(ValueError, match="different lengths"):
        render("az m {alert} {condition}", {"alert": ("a", "b"), "condition": ("c",)})


def test_an_unscripted_outcome_gets_its_reason_not_the_template() -> None:
    facts = {"server_id": SERVER, "unscripted": "The standby is  ReplicatingData:\n wait."}
    text = render(
        "az postgres flexible-server update --ids {server_id} --zonal-resiliency Enabled", facts
    )
    assert text == "The standby is ReplicatingData: wait."
    assert target_of(text) == "text"  # listed for a person, never run by azure.sh


def test_restart_follows_microsofts_table_for_the_servers_version() -> None:
    from engram_audit.checks.azure.catalogue import parameter_catalogue

    catalogue = parameter_catalogue()
    preload = catalogue.get("shared_preload_libraries")
    assert preload is not None
    static, source = preload.static_on("16") or (False, "")
    assert static and source.startswith("MicrosoftDocs/azure-databases-docs:")
    for dynamic in ("azure.extensions", "pgaudit.log", "log_connections", "pgbouncer.enabled"):
        facts = catalogue.get(dynamic)
        assert facts is not None and facts.static_on("16") == (False, facts.on("16").source)  # type: ignore[union-attr]
