"""The controls catalogue (``checks/azure/data/controls.json``): every framework names its source,
every control its file and commit, and the lists are the ones read from Azure/azure-policy and
prowler-cloud/prowler."""

from __future__ import annotations

import re

from engram_audit.checks.azure.controls import control_catalogue

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_every_framework_names_its_source_and_commit() -> None:
    catalogue = control_catalogue()
    assert list(catalogue.frameworks) == ["azure-policy", "mcsb", "cis-azure-3.0.0", "prowler"]
    for framework in catalogue.frameworks.values():
        assert framework.title and framework.source
    sha = re.compile(r"@[0-9a-f]{40}\b")
    assert sha.search(catalogue.frameworks["azure-policy"].source)
    assert sha.search(catalogue.frameworks["prowler"].source)
    assert "v3.0.0" in catalogue.frameworks["cis-azure-3.0.0"].title


def test_every_control_has_a_source_and_azure_policy_ids_are_definition_guids() -> None:
    catalogue = control_catalogue()
    for control in catalogue.controls.values():
        assert control.source, control.key
        for related in control.related:
            assert catalogue.get(related) is not None, f"{control.key} -> unknown {related}"
    for control in catalogue.of("azure-policy"):
        assert GUID.match(control.id), control.id
        assert control.name and control.evaluates, control.key
        assert "Azure/azure-policy:built-in-policies/policyDefinitions/" in control.source
    for control in catalogue.of("prowler"):
        assert control.name and "prowler-cloud/prowler:prowler/providers/azure/" in control.source


def test_the_azure_policy_built_ins_for_flexible_server_are_all_listed() -> None:
    """The definitions read from Azure/azure-policy (every rule naming flexibleServers, plus the
    subscription-level Defender pair): 30, including the deprecated ones."""
    azure_policy = control_catalogue().of("azure-policy")
    assert len(azure_policy) == 30
    deprecated = {c.id for c in azure_policy if c.deprecated}
    assert deprecated == {
        "dacf07fa-0eea-4486-80bc-b93fae88ac40",  # connection throttling
        "e27a6dfc-883f-4f9e-97cc-a819fe702400",  # AAD-only authentication
    }


def test_prowler_lists_every_flexible_server_check_and_the_defender_plan() -> None:
    ids = {c.id for c in control_catalogue().of("prowler")}
    assert len([i for i in ids if i.startswith("postgresql_flexible_server_")]) == 10
    assert "defender_ensure_defender_for_os_relational_databases_is_on" in ids
