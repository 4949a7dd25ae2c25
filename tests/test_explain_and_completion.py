"""``explain`` takes the rule ids findings show as well as check ids; ``environments`` lists what
``check --env`` accepts; shell completion offers environments and rule/check ids from the
policies in use."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from engram_audit.cli import cli
from tests.conftest import ROOT
from tests.support.cli import run_in_process, run_process


def test_explain_a_rule_id_shows_its_environments_check_and_params() -> None:
    result = run_in_process("explain", "ZEP-PG-VECTOR-INDEX")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("ZEP-PG-VECTOR-INDEX\n")
    assert "environment(s) dev, prod, staging, uat" in text
    assert "Check: pg.vector.index — " in text
    assert "dev, staging: high · enabled · declared at policies/base.yaml:" in text
    assert "prod, uat: high · enabled · declared at policies/uat.yaml:" in text
    assert "  allowed_methods: list of string (default: " in text
    assert '    dev, staging: ["hnsw", "ivfflat"]\n    prod, uat: ["hnsw"]\n' in text
    assert '    dev, staging: {} (default)\n    prod, uat: {"ef_construction": 64, "m": 16}' in text


def test_explain_a_check_id_shows_param_types_and_defaults() -> None:
    result = run_in_process("explain", "azure.sku.size")
    assert result.returncode == 0, result.stderr
    assert "  min_vcores: integer or null (default: null)\n" in result.stdout
    assert "  allowed: list of string (default: []) — " in result.stdout


def test_explain_an_unknown_id_suggests_close_ones() -> None:
    result = run_in_process("explain", "ZEP-PG-VECTR-INDEX")
    assert result.returncode == 2
    assert "unknown check id or rule id 'ZEP-PG-VECTR-INDEX'; did you mean ZEP-PG-VECTOR-INDEX" in (
        result.stderr
    )


@pytest.fixture
def own_policies(tmp_path: Path) -> Path:
    """A project's own policy directory: prod switches a rule off, and adds a rule of its own."""
    directory = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", directory)
    prod = directory / "prod.yaml"
    prod.write_text(
        prod.read_text(encoding="utf-8")
        + "\n  - id: ZEP-PG-SLOW-QUERIES\n    enabled: false\n"
        + "\n  - id: ACME-TLS\n    check: pg.tls.connection\n    severity: low\n"
        + "    title: Our own TLS rule\n",
        encoding="utf-8",
    )
    return directory


def test_explain_uses_the_policy_dir_in_use(own_policies: Path) -> None:
    result = run_in_process("explain", "ZEP-PG-SLOW-QUERIES", cwd=own_policies.parent)
    assert result.returncode == 0, result.stderr
    assert "Rule of the policies in policies/, " in result.stdout
    assert "\nprod: medium · disabled · declared at policies/prod.yaml:" in result.stdout
    own = run_in_process("explain", "ACME-TLS", "--policy-dir", str(own_policies))
    assert own.returncode == 0, own.stderr
    assert "environment(s) prod (not in dev, staging, uat)" in own.stdout
    assert f"prod: low · enabled · declared at {own_policies.as_posix()}/prod.yaml:" in own.stdout


def test_explain_of_a_rule_in_invalid_policies_is_an_input_error(own_policies: Path) -> None:
    (own_policies / "uat.yaml").write_text("environment: uat\nrules: 7\n", encoding="utf-8")
    result = run_in_process("explain", "ZEP-AZ-HA", cwd=own_policies.parent)
    assert result.returncode == 2
    assert "policies/uat.yaml:2:" in result.stderr


def test_environments_lists_what_check_env_accepts(own_policies: Path) -> None:
    (own_policies / "shared.yaml").write_text("rules: []\n", encoding="utf-8")  # a layer
    (own_policies / "qa.yaml").write_text("environment: uat\n", encoding="utf-8")  # mismatched
    result = run_in_process("environments", cwd=own_policies.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["dev", "prod", "staging", "uat"]


def complete(words: str, cwd: Path) -> list[str]:
    """Ask click's bash completion, as the shell function does, through click's testing API."""
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(
            cli,
            [],
            prog_name="engram-audit",
            env={
                "_ENGRAM_AUDIT_COMPLETE": "bash_complete",
                "COMP_WORDS": words,
                "COMP_CWORD": str(len(words.split(" ")) - 1),
            },
        )
    assert result.exit_code == 0, result.output
    return [line.split(",", 1)[1] for line in result.output.splitlines()]


def test_completion_offers_environments_from_the_policy_dir(own_policies: Path) -> None:
    assert complete("engram-audit check --env ", ROOT) == ["dev", "prod", "staging", "uat"]
    assert complete("engram-audit check --env p", ROOT) == ["prod"]
    (own_policies / "perf.yaml").write_text(
        "environment: perf\nextends: uat.yaml\n", encoding="utf-8"
    )
    assert complete("engram-audit collect --env p", own_policies.parent) == ["perf", "prod"]
    elsewhere = own_policies.parent / "elsewhere"
    elsewhere.mkdir()
    assert complete(f"engram-audit check --policy-dir {own_policies} --env pe", elsewhere) == [
        "perf"
    ]


def test_completion_offers_rule_and_check_ids(own_policies: Path) -> None:
    assert complete("engram-audit explain ZEP-PG-VEC", ROOT) == [
        "ZEP-PG-VECTOR-EXTENSION",
        "ZEP-PG-VECTOR-INDEX",
    ]
    assert complete("engram-audit explain pg.vector", ROOT) == ["pg.vector.index"]
    assert "ACME-TLS" in complete("engram-audit explain A", own_policies.parent)


def test_completion_stays_silent_on_broken_policies(own_policies: Path) -> None:
    (own_policies / "prod.yaml").write_text("environment: [unclosed\n", encoding="utf-8")
    assert complete("engram-audit check --env ", own_policies.parent) == ["dev", "staging", "uat"]


def test_the_installed_program_prints_its_bash_completion_script() -> None:
    """The console entry point (not only click's API) answers the completion variables."""
    source = run_process(env={"_ENGRAM_AUDIT_COMPLETE": "bash_source"})
    assert source.returncode == 0, source.stderr
    assert "complete -o nosort -F _engram_audit_completion engram-audit" in source.stdout
    answer = run_process(
        env={
            "_ENGRAM_AUDIT_COMPLETE": "bash_complete",
            "COMP_WORDS": "engram-audit check --env u",
            "COMP_CWORD": "3",
        }
    )
    assert answer.stdout.splitlines() == ["plain,uat"]
