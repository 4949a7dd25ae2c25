"""Policy loading: merge semantics and errors that point at file, line, column and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engram_audit.errors import InputError
from engram_audit.model import Severity
from engram_audit.policy.loader import load_policy, validate_paths

POLICIES = Path(__file__).parents[1] / "policies"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


BASE = """
    apiVersion: engram-audit/v1
    rules:
      - id: RETENTION
        check: azure.backup.retention_days
        severity: medium
        title: Retention
        params: {min_days: 7}
      - id: GEO
        check: azure.backup.geo_redundant
        severity: low
        title: Geo
        params: {enabled: false}
"""


def errors_of(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_policy(path)
    return [str(problem) for problem in caught.value.problems]


def test_bundled_policies_are_valid() -> None:
    checked, problems = validate_paths([POLICIES])
    assert problems == []
    assert {Path(p).name for p in checked} == {
        "base.yaml",
        "staging.yaml",
        "dev.yaml",
        "uat.yaml",
        "prod.yaml",
    }


@pytest.mark.parametrize(
    ("environment", "retention", "geo", "ha"),
    [
        ("staging", 7, False, "Disabled"),
        ("dev", 7, False, "Disabled"),
        ("uat", 14, True, "ZoneRedundant"),
        ("prod", 35, True, "ZoneRedundant"),
    ],
)
def test_environment_values_follow_the_storage_design(
    environment: str, retention: int, geo: bool, ha: str
) -> None:
    policy = load_policy(POLICIES / f"{environment}.yaml")
    rules = {rule.id: rule for rule in policy.rules}
    assert rules["ZEP-AZ-BACKUP-RETENTION"].params["min_days"] == retention
    assert rules["ZEP-AZ-GEO-BACKUP"].params["enabled"] is geo
    assert rules["ZEP-AZ-HA"].params["mode"] == ha
    assert rules["ZEP-AZ-VERSION"].params["allowed"] == ["16"]
    assert policy.scope.database == "zep"


def test_prod_extends_uat_and_overrides_by_rule_id() -> None:
    prod = {rule.id: rule for rule in load_policy(POLICIES / "prod.yaml").rules}
    assert prod["ZEP-AZ-HA"].severity is Severity.CRITICAL
    assert prod["ZEP-AZ-HA"].params == {
        "mode": "ZoneRedundant",
        "require_healthy": True,
    }  # inherited from uat
    assert prod["ZEP-AZ-SKU-SIZE"].params == {"allowed": [], "min_vcores": 2}
    assert prod["ZEP-AZ-HA"].location is not None and prod["ZEP-AZ-HA"].location.path.endswith(
        "prod.yaml"
    )


def test_environment_can_change_params_severity_and_disable(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    env = write(
        tmp_path,
        "prod.yaml",
        """
        environment: prod
        extends: base.yaml
        rules:
          - id: RETENTION
            severity: critical
            params: {min_days: 35}
          - id: GEO
            enabled: false
          - id: NEW
            check: azure.server.version
            severity: high
            title: Version
            params: {allowed: ["16"]}
        """,
    )
    policy = load_policy(env)
    rules = {rule.id: rule for rule in policy.rules}
    assert rules["RETENTION"].severity is Severity.CRITICAL
    assert rules["RETENTION"].params == {"min_days": 35}
    assert rules["RETENTION"].title == "Retention"
    assert not rules["GEO"].enabled
    assert [r.id for r in policy.enabled_rules()] == ["NEW", "RETENTION"]
    assert rules["RETENTION"].location is not None
    assert (
        rules["RETENTION"].location.path.endswith("prod.yaml"),
        rules["RETENTION"].location.line,
    ) == (True, 4)


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "prod.yaml",
        """
        environment: prod
        rules:
          - id: RETENTION
            check: azure.backup.retention_days
            severity: high
            title: Retention
            sevrity: high
            params: {min_days: 35}
        """,
    )
    [error] = errors_of(path)
    assert ":7:5:" in error
    assert "rules[0].sevrity" in error
    assert "unknown key 'sevrity'" in error


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "prod.yaml",
        """
        environment: prod
        rules:
          - id: ONE
            check: azure.backup.retention_dayz
            severity: high
            title: typo in check id
          - id: TWO
            check: azure.backup.retention_days
            severity: urgent
            title: bad severity
          - id: THREE
            check: azure.backup.retention_days
            severity: high
            title: wrong param type
            params: {min_days: "lots"}
          - id: FOUR
            check: azure.backup.retention_days
            severity: high
            title: param the check does not have
            params: {min_days: 7, max_age: 3}
        """,
    )
    errors = errors_of(path)
    joined = "\n".join(errors)
    assert (
        ":4:12: [rules[0].check] unknown value 'azure.backup.retention_dayz'; did you mean 'azure.backup.retention_days'"
        in joined
    )
    assert ":9:15: [rules[1].severity]" in joined
    assert ":7:5: [rules[1].params]" in joined and "min_days: Field required" in joined
    assert "[rules[2].params.min_days]" in joined and ":15:" in joined
    assert "[rules[3].params.max_age]" in joined and "unknown key 'max_age'" in joined
    assert len(errors) == 5  # one per problem: schema and params model never repeat each other


def test_params_that_do_not_fit_the_check_point_at_the_param(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "prod.yaml",
        """
        environment: prod
        rules:
          - id: SIZE
            check: azure.storage.size_gb
            severity: high
            title: Storage
            params:
              min_gb: 128
              max_gb: 64
        """,
    )
    [error] = errors_of(path)
    assert "min_gb is greater than max_gb" in error
    assert error.startswith(f"{path.resolve().as_posix()}:7:") or ":7:" in error


def test_an_unknown_high_availability_mode_is_a_located_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "prod.yaml",
        """
        environment: prod
        rules:
          - id: HA
            check: azure.ha.mode
            severity: high
            title: HA
            params:
              mode: CrossRegion
        """,
    )
    [error] = errors_of(path)
    assert "unknown high-availability mode 'CrossRegion'" in error
    assert "Disabled, ZoneRedundant, SameZone" in error
    assert ":8:" in error  # the line of `mode:`


def test_bad_yaml_reports_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "prod.yaml", "environment: prod\nrules:\n  - id: A\n    check: [unclosed\n"
    )
    [error] = errors_of(path)
    assert ("invalid YAML" in error and ":5:" in error) or ":4:" in error


def test_extends_cycle_and_missing_base(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "environment: a\nextends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    [cycle] = errors_of(tmp_path / "a.yaml")
    assert "extends cycle" in cycle and "b.yaml:1:10:" in cycle
    missing = write(tmp_path, "c.yaml", "environment: c\nextends: nowhere.yaml\n")
    [error] = errors_of(missing)
    assert "base file not found: nowhere.yaml" in error and "c.yaml:2:10" in error


def test_new_rule_without_check_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    path = write(
        tmp_path,
        "prod.yaml",
        "environment: prod\nextends: base.yaml\nrules:\n  - id: BRAND-NEW\n    severity: high\n",
    )
    [error] = errors_of(path)
    assert "prod.yaml:4:5" in error and "BRAND-NEW" in error and "check" in error


def test_duplicate_rule_id_in_one_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "prod.yaml",
        "environment: prod\nrules:\n  - {id: A, check: azure.server.version, severity: high, title: x, params: {allowed: ['16']}}\n"
        "  - {id: A, check: azure.server.version, severity: low, title: y, params: {allowed: ['16']}}\n",
    )
    [error] = errors_of(path)
    assert "duplicate rule id 'A' (first at line 3)" in error
