"""A plan and a template each get the verdicts a careful reviewer gives for every prod rule:
pass, fail on the planned value, fail on Azure's default, unknown until apply, needs live state.
"""

from __future__ import annotations

import pytest

from engram_audit.model import Finding, Report, Status
from tests.support.iac_cases import CASES_BY_NAME, prod_report


def findings(case: str) -> dict[str, list[Finding]]:
    report: Report = prod_report(CASES_BY_NAME[case])
    by_rule: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    return by_rule


def one(by_rule: dict[str, list[Finding]], rule: str, resource_suffix: str = "") -> Finding:
    matching = [f for f in by_rule[rule] if f.resource.endswith(resource_suffix)]
    assert len(matching) == 1, (rule, [f.resource for f in by_rule[rule]])
    return matching[0]


@pytest.fixture(scope="module")
def avm_plan() -> dict[str, list[Finding]]:
    return findings("avm-terraform-default")


@pytest.fixture(scope="module")
def unknowns_plan() -> dict[str, list[Finding]]:
    return findings("handwritten-unknowns")


@pytest.fixture(scope="module")
def public_template() -> dict[str, list[Finding]]:
    return findings("avm-bicep-public")


def test_plan_passes_what_it_declares(avm_plan: dict[str, list[Finding]]) -> None:
    for rule, actual in (
        ("ZEP-AZ-VERSION", "16"),
        ("ZEP-AZ-GEO-BACKUP", "Enabled"),
        ("ZEP-AZ-PUBLIC-ACCESS", "Disabled"),
        ("ZEP-AZ-SKU-TIER", "GeneralPurpose"),
    ):
        finding = one(avm_plan, rule)
        assert (finding.status, finding.actual) == (Status.PASS, actual), rule
        assert finding.iac is not None
        assert finding.iac.address == "module.test.azurerm_postgresql_flexible_server.this"


def test_plan_fails_on_azure_defaults_and_says_so(avm_plan: dict[str, list[Finding]]) -> None:
    retention = one(avm_plan, "ZEP-AZ-BACKUP-RETENTION")
    assert retention.status is Status.FAIL
    assert retention.actual == "7 days (Azure default)"
    assert "backup_retention_days not declared" in retention.message
    storage = one(avm_plan, "ZEP-AZ-STORAGE-SIZE")
    assert (storage.status, storage.actual) == (Status.FAIL, "32 GB (Azure default)")
    autogrow = one(avm_plan, "ZEP-AZ-STORAGE-AUTOGROW")
    assert autogrow.status is Status.FAIL and "Azure default" in autogrow.actual
    bouncer = one(avm_plan, "ZEP-AZ-PGBOUNCER", "pgbouncer.enabled")
    assert bouncer.status is Status.FAIL
    assert "pgbouncer.enabled not declared: Azure default (false)" in bouncer.message
    tls = one(avm_plan, "ZEP-AZ-TLS-REQUIRED")
    assert (tls.status, tls.actual) == (Status.PASS, "on (Azure default)")


def test_a_default_that_does_not_decide_the_verdict_is_not_blamed(
    avm_plan: dict[str, list[Finding]],
) -> None:
    """No administrator is declared: Entra fails whatever the authentication block says."""
    entra = one(avm_plan, "ZEP-AZ-ENTRA")
    assert entra.status is Status.FAIL
    assert "Azure default" not in entra.actual


def test_plan_needs_live_state_for_ha_health_backups_and_postgres(
    avm_plan: dict[str, list[Finding]],
) -> None:
    ha = one(avm_plan, "ZEP-AZ-HA")
    assert ha.status is Status.SKIP
    assert ha.actual.startswith("ZoneRedundant")
    assert "needs live state" in ha.message
    for rule in (
        "ZEP-AZ-BACKUP-RECENT",
        "ZEP-PG-VERSION",
        "ZEP-PG-VECTOR-INDEX",
        "ZEP-DSN-SSLMODE",
    ):
        (finding,) = avm_plan[rule]
        assert finding.status is Status.SKIP
        assert finding.message.startswith("needs live state")


def test_plan_values_unknown_until_apply_are_error_only_where_they_decide(
    unknowns_plan: dict[str, list[Finding]],
) -> None:
    retention = one(unknowns_plan, "ZEP-AZ-BACKUP-RETENTION")
    assert retention.status is Status.ERROR
    assert retention.message == "backup_retention_days: unknown until apply"
    for rule in ("ZEP-AZ-FIREWALL-OPEN", "ZEP-AZ-ALLOW-AZURE-SERVICES"):
        finding = one(unknowns_plan, rule)
        assert finding.status is Status.ERROR
        assert "firewall_rule.app.start_ip_address: unknown until apply" in finding.message
    # No administrator declared: the verdict stands whatever the unknown Entra switch becomes.
    entra = one(unknowns_plan, "ZEP-AZ-ENTRA")
    assert entra.status is Status.FAIL
    assert "active_directory_auth_enabled unknown until apply" in entra.actual
    assert entra.message == "0 Entra administrator(s); decided by the declared values"
    # Values the plan knows are judged as usual beside them.
    assert one(unknowns_plan, "ZEP-AZ-PUBLIC-ACCESS").status is Status.FAIL
    assert one(unknowns_plan, "ZEP-AZ-EXTENSIONS-VECTOR").status is Status.PASS


def test_a_sensitive_value_is_never_read_and_never_passes(
    unknowns_plan: dict[str, list[Finding]],
) -> None:
    tls = one(unknowns_plan, "ZEP-AZ-TLS-REQUIRED")
    assert tls.status is Status.ERROR
    assert "marked sensitive in the plan, so never read" in tls.message


def test_no_pass_on_an_unknown(unknowns_plan: dict[str, list[Finding]]) -> None:
    for rule in ("ZEP-AZ-BACKUP-RETENTION", "ZEP-AZ-FIREWALL-OPEN", "ZEP-AZ-TLS-REQUIRED"):
        assert all(f.status is not Status.PASS for f in unknowns_plan[rule])


def test_template_fails_on_planned_values(public_template: dict[str, list[Finding]]) -> None:
    expected = {
        "ZEP-AZ-VERSION": "14",
        "ZEP-AZ-BACKUP-RETENTION": "20 days",
        "ZEP-AZ-HA": "SameZone",
        "ZEP-AZ-PUBLIC-ACCESS": "Enabled",
        "ZEP-AZ-GEO-BACKUP": "Disabled",
        "ZEP-AZ-ALLOW-AZURE-SERVICES": "present (AllowAllWindowsAzureIps)",
    }
    for rule, actual in expected.items():
        finding = one(public_template, rule)
        assert (finding.status, finding.actual) == (Status.FAIL, actual), rule
    assert one(public_template, "ZEP-AZ-STORAGE-SIZE").status is Status.PASS


def test_template_fails_on_azure_default_and_errs_without_one(
    public_template: dict[str, list[Finding]],
) -> None:
    encryption = one(public_template, "ZEP-AZ-ENCRYPTION")
    assert encryption.status is Status.FAIL
    assert "properties.dataEncryption not declared in the template: Azure default" in (
        encryption.message
    )
    autogrow = one(public_template, "ZEP-AZ-STORAGE-AUTOGROW")
    assert autogrow.status is Status.ERROR
    assert "Microsoft documents no default for it" in autogrow.message


def test_template_needs_live_state_for_ha_health() -> None:
    ha = one(findings("avm-bicep-defaults"), "ZEP-AZ-HA")
    assert ha.status is Status.SKIP
    assert ha.actual == "ZoneRedundant, highAvailability.state needs live state"


def test_template_parameters_without_values_are_unknown() -> None:
    by_rule = findings("avm-bicep-without-parameters")
    tier = one(by_rule, "ZEP-AZ-SKU-TIER")
    assert tier.status is Status.ERROR
    assert "template parameter 'tier' has no value" in tier.message
    # The version has a default in the template: judged as declared.
    assert one(by_rule, "ZEP-AZ-VERSION").actual == "18"


def test_a_template_without_a_flexible_server_is_incomplete_not_clean() -> None:
    report = prod_report(CASES_BY_NAME["quickstart-managed-postgresql-with-vnet"])
    (issue,) = report.collection_issues
    assert "retired Single Server" in issue.reason
    azure = [f for f in report.findings if f.check.startswith("azure.")]
    assert azure and all(f.status is not Status.PASS for f in azure)


def test_a_replaced_or_deleted_server_is_reported_as_info() -> None:
    by_rule = findings("handwritten-replace")
    replaced = by_rule["engram-audit.plan.server-replaced"]
    assert {(f.actual, f.severity.value) for f in replaced} == {
        ("replaced (delete, create)", "info"),
        ("deleted (delete)", "info"),
    }
    main = next(f for f in replaced if f.actual.startswith("replaced"))
    assert "forced by geo_redundant_backup_enabled" in main.message
    assert "chosen only when a server is created" in main.message
    assert main.iac is not None and main.iac.address == "azurerm_postgresql_flexible_server.main"
