"""Values only a person can supply to a fix (an action group id, an Entra group), set by the
policy under a rule's ``remediation_params:``: rendered shell-quoted when set, a required shell
variable when not, and any other key or a value that is not text refused at its line (exit 2)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engram_audit.checks.facts import PERSON_FACTS
from engram_audit.errors import InputError
from engram_audit.policy.loader import load_policy
from engram_audit.schemas import POLICY_SCHEMA, shipped
from tests.support.cli import run_in_process

ROOT = Path(__file__).parents[2]
DRIFTED = ROOT / "fixtures" / "snapshots" / "prod-drifted.json"
# A resource id with a space and a quote: only shell quoting keeps it one word.
ACTION_GROUP = (
    "/subscriptions/6f2a1c3e-8b4d-4e2f-9a7c-1d2e3f4a5b6c/resourceGroups/ops rg/providers"
    "/microsoft.insights/actionGroups/on-call's"
)
TEMPLATE = (
    "az monitor metrics alert create --ids {server_id} --name storage --scopes {server_id} "
    "--condition 'avg storage_percent > 90' --action {action_group_id}"
)


def _policy(tmp_path: Path, extra: str = "") -> Path:
    policy = tmp_path / "prod.yaml"
    policy.write_text(
        "apiVersion: engram-audit/v1\n"
        "environment: prod\n"
        "rules:\n"
        "  - id: ALERTS\n"
        "    check: azure.monitor.alerts\n"
        "    severity: high\n"
        "    title: storage alert\n"
        f'    remediation: "{TEMPLATE}"\n'
        "    params:\n"
        "      required: [{name: storage, metrics: [storage_percent], max_threshold: 90}]\n"
        f"{extra}",
        encoding="utf-8",
    )
    return policy


def _fix(tmp_path: Path, policy: Path) -> str:
    out = tmp_path / "r.json"
    result = run_in_process(
        "check", "--snapshot", str(DRIFTED), "--policy", str(policy), "-o", f"json:{out}"
    )
    assert result.code == 1, result.stderr
    findings = json.loads(out.read_text(encoding="utf-8"))["findings"]
    (finding,) = [f for f in findings if f["rule"] == "ALERTS"]
    assert finding["status"] == "fail"
    fix: str = finding["remediation"]
    return fix


def test_a_value_the_policy_sets_is_rendered_shell_quoted(tmp_path: Path) -> None:
    quoted = json.dumps(ACTION_GROUP)
    fix = _fix(
        tmp_path, _policy(tmp_path, f"    remediation_params:\n      action_group_id: {quoted}\n")
    )
    words = shlex.split(fix)
    assert words[-2:] == ["--action", ACTION_GROUP]
    assert fix.endswith(shlex.quote(ACTION_GROUP))
    assert "ACTION_GROUP_ID" not in fix


def test_a_value_the_policy_does_not_set_is_a_required_shell_variable(tmp_path: Path) -> None:
    fix = _fix(tmp_path, _policy(tmp_path))
    assert fix.endswith(
        '--action "${ACTION_GROUP_ID:?set the resource id of the Azure Monitor action group}"'
    )
    assert shlex.split(fix)[-1].startswith("${ACTION_GROUP_ID:?")  # one word: the command parses


def test_an_environment_overrides_one_value_of_its_base(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(
        "apiVersion: engram-audit/v1\nrules:\n"
        "  - id: ENTRA\n    check: azure.auth.entra\n    severity: high\n    title: entra\n"
        "    remediation_params: {entra_admin_object_id: base-id, entra_admin_name: DBA}\n",
        encoding="utf-8",
    )
    env = tmp_path / "prod.yaml"
    env.write_text(
        "apiVersion: engram-audit/v1\nenvironment: prod\nextends: base.yaml\nrules:\n"
        "  - id: ENTRA\n    remediation_params: {entra_admin_object_id: prod-id}\n",
        encoding="utf-8",
    )
    (rule,) = load_policy(env).rules
    assert rule.remediation_params == {
        "entra_admin_object_id": "prod-id",
        "entra_admin_name": "DBA",
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("      action_group: /subscriptions/x\n", "unknown key 'action_group'"),
        ("      action_group_id: 42\n", "action_group_id"),
        ("      action_group_id: ''\n", "action_group_id"),
    ],
)
def test_a_bad_entry_is_exit_2_at_its_line(tmp_path: Path, entry: str, message: str) -> None:
    policy = _policy(tmp_path, "    remediation_params:\n" + entry)
    line = len(policy.read_text(encoding="utf-8").splitlines())  # the entry is the last line
    result = run_in_process("check", "--snapshot", str(DRIFTED), "--policy", str(policy))
    assert result.code == 2, result.stderr
    assert f"prod.yaml:{line}:" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    validated = run_in_process("validate", str(policy))
    assert validated.code == 2 and f"prod.yaml:{line}:" in validated.stderr


def test_an_unknown_key_is_reported_once_naming_what_a_policy_can_set(tmp_path: Path) -> None:
    """The schema and the loader both refuse it; the user reads it once."""
    policy = _policy(tmp_path, "    remediation_params: {vnet_name: v}\n")
    with pytest.raises(InputError) as raised:
        load_policy(policy)
    (problem,) = raised.value.problems
    assert problem.line == 11 and "vnet_name" in problem.message
    assert all(name in problem.message for name in PERSON_FACTS)


def test_the_policy_schema_lists_exactly_the_person_facts() -> None:
    schema: dict[str, Any] = shipped(POLICY_SCHEMA)
    rule = schema["$defs"]["rule"]["properties"]["remediation_params"]
    assert set(rule["properties"]) == set(PERSON_FACTS)
    assert rule["additionalProperties"] is False
    validator = jsonschema.Draft202012Validator(schema)
    good = {"rules": [{"id": "R", "remediation_params": {"action_group_id": "/x"}}]}
    assert list(validator.iter_errors(good)) == []
    bad = {"rules": [{"id": "R", "remediation_params": {"nope": "x"}}]}
    assert list(validator.iter_errors(bad))
