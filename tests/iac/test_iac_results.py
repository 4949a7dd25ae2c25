"""Every IaC input under fixtures/iac through the reader and the production policy; the verdicts
are kept in fixtures/iac/results (cfn-lint style): a changed verdict on real material shows in
review. Regenerate with ``scripts/update-iac-results``."""

from __future__ import annotations

import json

import pytest

from tests.support.iac_cases import CASES, IAC, RESULTS, Case, render, result_path

SECRETS = ("P@ssword1234!", "N0t-A-Real-Secret-42!")


def test_every_case_has_results_and_every_result_a_case() -> None:
    assert {p.stem for p in RESULTS.glob("*.json")} == {c.name for c in CASES}, (
        "run scripts/update-iac-results"
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_verdicts_match_the_reviewed_results(case: Case) -> None:
    assert render(case) == result_path(case).read_text(encoding="utf-8"), (
        "verdicts changed: run scripts/update-iac-results and review the diff"
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_no_secret_of_an_input_reaches_the_verdicts(case: Case) -> None:
    text = render(case)
    for secret in SECRETS:
        assert secret not in text


def test_the_real_inputs_hold_the_secrets_the_tests_look_for() -> None:
    """The secret tests are not vacuous: the plan really has the password in plain text."""
    plan = (IAC / "zodiacae" / "aks-demo.plan.json").read_text(encoding="utf-8")
    assert "P@ssword1234!" in plan
    document = json.loads(plan)
    server = next(
        c for c in document["resource_changes"] if c["type"] == "azurerm_postgresql_flexible_server"
    )
    assert server["change"]["after_sensitive"]["administrator_password"] is True
