"""``azure.param.value``: any server parameter as a rule, written in YAML alone."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from engram_audit.checks.azure.param_value import ParameterValueParams, expectation
from tests.conftest import ROOT
from tests.support.cli import run_in_process as run


@pytest.mark.parametrize(
    "params",
    [
        {"name": "x"},
        {"name": "x", "equals": "on", "one_of": ["on"]},
        {"name": "x", "min": 1, "contains": ["a"]},
        {"name": "x", "contains_text": ["%u"], "not_contains": ["md5"]},
    ],
)
def test_exactly_one_comparison(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="give exactly one comparison"):
        ParameterValueParams.model_validate(params)


def test_min_above_max_and_an_empty_name_are_refused() -> None:
    with pytest.raises(ValidationError, match="min is greater than max"):
        ParameterValueParams.model_validate({"name": "x", "min": 8, "max": 7})
    with pytest.raises(ValidationError):
        ParameterValueParams.model_validate({"name": "", "equals": "on"})


def test_unquoted_yaml_and_json_values_become_azure_strings() -> None:
    params = ParameterValueParams.model_validate({"name": "x", "one_of": [True, 7, 7.5, "on"]})
    assert params.one_of == ["true", "7", "7.5", "on"]
    assert expectation(
        ParameterValueParams.model_validate({"name": "x", "contains": "pgaudit"})
    ) == ("includes pgaudit")


POLICY = """
    apiVersion: engram-audit/v1
    environment: prod
    rules:
      - id: MY-LOG-LOCK-WAITS
        check: azure.param.value
        severity: low
        title: Lock waits are logged
        params: {name: log_lock_waits, equals: on}
      - id: MY-IDLE-TIMEOUT
        check: azure.param.value
        severity: medium
        title: Idle transactions are ended within 10 minutes
        params: {name: idle_in_transaction_session_timeout, min: 1, max: 600000}
      - id: MY-TYPO
        check: azure.param.value
        severity: medium
        title: A parameter the catalogue does not know
        params: {name: log_lock_wait, equals: on}
"""


def test_a_user_adds_a_parameter_rule_in_yaml_alone(tmp_path: Path) -> None:
    policy = tmp_path / "prod.yaml"
    policy.write_text(textwrap.dedent(POLICY).lstrip(), encoding="utf-8")
    assert run("validate", str(policy)).returncode == 0

    result = run(
        "check",
        "--policy",
        str(policy),
        "--env",
        "prod",
        "--snapshot",
        str(ROOT / "fixtures" / "snapshots" / "prod-compliant.json"),
        "--format",
        "json",
    )
    document = json.loads(result.stdout)
    verdicts = {f["rule"]: (f["status"], f["actual"], f["message"]) for f in document["findings"]}
    # Azure's defaults on PostgreSQL 16: log_lock_waits off, idle_in_transaction_session_timeout 0.
    assert verdicts["MY-LOG-LOCK-WAITS"][:2] == ("fail", "off")
    assert verdicts["MY-IDLE-TIMEOUT"][:2] == ("fail", "0")
    assert verdicts["MY-TYPO"][0] == "error"
    assert "has no entry for log_lock_wait" in verdicts["MY-TYPO"][2]
    assert result.returncode == 3  # the unknown parameter could not be evaluated


def test_params_that_do_not_fit_are_reported_at_their_line(tmp_path: Path) -> None:
    policy = tmp_path / "prod.yaml"
    policy.write_text(
        "apiVersion: engram-audit/v1\nenvironment: prod\nrules:\n"
        "  - id: BAD\n    check: azure.param.value\n    severity: low\n    title: Bad\n"
        "    params: {name: log_connections, equals: 'on', min: 1}\n",
        encoding="utf-8",
    )
    result = run("validate", str(policy))
    assert result.returncode == 2
    assert "prod.yaml:8" in result.stderr
    assert "give exactly one comparison" in result.stderr
