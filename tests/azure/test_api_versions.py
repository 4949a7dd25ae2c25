"""Every official example of every API version (tests/azure/api_versions) through the SDK, the
collector and every ``azure.*`` check.

- No ERROR where the payload holds the answer: every ERROR and every SKIP must match the
  reviewed lists below, each entry saying why the examples cannot answer.
- The verdicts are kept in ``tests/azure/api_versions/results/<version>.json`` (cfn-lint style):
  a change in any verdict on real ARM material shows up in review. Regenerate with
  ``scripts/update-api-version-results`` and read the diff.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from engram_audit.checks import CATALOGUE
from engram_audit.collectors.azure.clients import POSTGRES_API_VERSION
from tests.support.api_versions import (
    RESULTS,
    Collector,
    api_versions,
    load_version,
    render,
    result_path,
)
from tests.support.arm_emulator import TlsMaterial

pytestmark = pytest.mark.azure

AZURE_CHECKS = {entry.id for entry in CATALOGUE if entry.id.startswith("azure.")}
VERSIONS = api_versions()


@dataclass(frozen=True)
class Expected:
    """A reviewed ERROR or SKIP: which check, which message, on which API versions, and why."""

    checks: str  # regex on the check id
    message: str  # regex on the finding's message
    why: str
    before: str | None = None  # only on API versions older than this one

    def matches(self, api_version: str, finding: dict[str, str]) -> bool:
        return (
            re.fullmatch(self.checks, finding["check"]) is not None
            and re.match(self.message, finding["message"]) is not None
            and (self.before is None or api_version < self.before)
        )


EXPECTED_ERRORS = (
    Expected(
        checks=r"azure\..*",
        message=r"[a-z ]+ not collected: no official example of this part for api-version ",
        why="The version's examples hold no payload of that part (no backup list for "
        "2021-06-01; no private endpoint, replica, threat protection, diagnostic setting or "
        "metric alert examples here at all). Serving an empty list would be an invented answer.",
    ),
    Expected(
        checks=r"azure\.param\..*|azure\.monitor\.alerts",
        message=r"ARM did not return [\w.]+, which Azure offers on PostgreSQL \d+$",
        why="Each version's configuration example is a single ConfigurationGet item, not the "
        "server's ~430-item list; the catalogue says Azure offers the parameter on that "
        "version, so a list without it is an error, never a skip.",
    ),
    Expected(
        checks=r"azure\.storage\.auto_grow",
        message=r"storage\.autoGrow is not in the server resource: API versions before "
        r"2023-03-01-preview do not report it",
        before="2023-03-01-preview",
        why="storage.autoGrow first appears in 2023-03-01-preview, and Microsoft documents no "
        "default to assume for a body without it.",
    ),
)
EXPECTED_SKIPS: tuple[Expected, ...] = ()  # none: the examples answer or the finding is ERROR


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, dict[str, Any]]]:
    with Collector(TlsMaterial()) as collector:
        yield {version: collector.results(version) for version in VERSIONS}


def _findings(
    results: dict[str, dict[str, Any]],
) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    for version, document in results.items():
        for server in document["servers"]:
            for finding in server["findings"]:
                yield version, server, finding


def test_every_api_version_from_2021_06_01_has_examples_and_results() -> None:
    assert VERSIONS[0] == "2021-06-01" and VERSIONS[-1] == "2026-01-01-preview"
    assert len(VERSIONS) == 15
    assert {p.stem for p in RESULTS.glob("*.json")} == set(VERSIONS), (
        "run scripts/update-api-version-results"
    )


def test_the_version_the_collector_requests_is_among_them(
    results: dict[str, dict[str, Any]],
) -> None:
    assert POSTGRES_API_VERSION in VERSIONS
    for document in results.values():
        for server in document["servers"]:
            assert server["requested_api_versions"] == [POSTGRES_API_VERSION], server["example"]


@pytest.mark.parametrize("api_version", VERSIONS)
def test_every_example_file_is_served(api_version: str) -> None:
    version = load_version(api_version)
    files = {p.name for p in (RESULTS.parent / api_version).glob("*.json")}
    assert version.files_used == files
    assert version.servers, f"{api_version}: no server body"


def test_every_server_body_is_collected_whole_and_judged_by_every_azure_check(
    results: dict[str, dict[str, Any]],
) -> None:
    for version, document in results.items():
        for server in document["servers"]:
            label = f"{version}/{server['example']}"
            assert server["collection_issues"] == [], label
            assert server["body_is_kept_as_sent"], label
            assert {f["check"] for f in server["findings"]} == AZURE_CHECKS, label


def test_no_error_or_skip_where_the_payload_holds_the_answer(
    results: dict[str, dict[str, Any]],
) -> None:
    unexpected = []
    for version, server, finding in _findings(results):
        allowed = {"error": EXPECTED_ERRORS, "skip": EXPECTED_SKIPS}.get(finding["status"])
        if allowed is not None and not any(e.matches(version, finding) for e in allowed):
            unexpected.append((version, server["example"], finding))
    assert unexpected == []


def test_every_reviewed_error_still_occurs(results: dict[str, dict[str, Any]]) -> None:
    for expected in EXPECTED_ERRORS:
        assert any(
            f["status"] == "error" and expected.matches(v, f) for v, _, f in _findings(results)
        ), f"stale entry: {expected.why}"


def _verdict(
    results: dict[str, dict[str, Any]], version: str, example: str, check: str
) -> dict[str, str]:
    (server,) = [s for s in results[version]["servers"] if s["example"] == example]
    (finding,) = [f for f in server["findings"] if f["check"] == check]
    found: dict[str, str] = finding
    return found


@pytest.mark.parametrize(
    ("version", "example", "check", "status", "text"),
    [
        # authConfig, boolean shape (2022-03-08-preview create examples, stale in 2022-12-01)
        (
            "2022-03-08-preview",
            "ServerCreateWithAadAuthEnabled.json#200",
            "azure.auth.entra",
            "pass",
            "Entra auth Enabled",
        ),
        (
            "2022-03-08-preview",
            "ServerCreateWithDataEncryptionEnabled.json#200",
            "azure.auth.entra",
            "fail",
            "Entra authentication is disabled",
        ),
        (
            "2022-12-01",
            "ServerCreateWithDataEncryptionEnabled.json#201",
            "azure.auth.entra",
            "fail",
            "Entra authentication is disabled",
        ),
        # authConfig absent: Entra off
        (
            "2022-03-08-preview",
            "ServerGet.json#200",
            "azure.auth.entra",
            "fail",
            "authConfig absent: Entra off",
        ),
        (
            "2025-01-01-preview",
            "ServerListByResourceGroup.json#200[2]",
            "azure.auth.entra",
            "fail",
            "authConfig absent: Entra off",
        ),
        # authConfig, enum shape
        (
            "2025-08-01",
            "ServersListByResourceGroup.json#200[0]",
            "azure.auth.entra",
            "pass",
            "Entra auth Enabled",
        ),
        # dataEncryption absent: system-managed keys (production requires a customer-managed key)
        (
            "2021-06-01",
            "ServerGet.json#200",
            "azure.encryption.at_rest",
            "fail",
            "SystemManaged (dataEncryption absent",
        ),
        (
            "2025-08-01",
            "ServersGetWithPrivateEndpoints.json#200",
            "azure.encryption.at_rest",
            "fail",
            "SystemManaged (dataEncryption absent",
        ),
        (
            "2024-08-01",
            "ServerCreateGeoRestoreWithDataEncryptionEnabled.json#200",
            "azure.encryption.at_rest",
            "pass",
            "AzureKeyVault",
        ),
        # storage.autoGrow, with storage.type "" beside it
        ("2023-03-01-preview", "ServerGet.json#200", "azure.storage.auto_grow", "fail", "Disabled"),
        ("2024-08-01", "ServerGet.json#200", "azure.storage.auto_grow", "fail", "Disabled"),
        (
            "2023-12-01-preview",
            "ServerList.json#200[1]",
            "azure.storage.auto_grow",
            "pass",
            "Enabled",
        ),
        # high availability
        (
            "2021-06-01",
            "ServerListByResourceGroup.json#200[0]",
            "azure.ha.mode",
            "pass",
            "ZoneRedundant, Healthy",
        ),
        (
            "2025-01-01-preview",
            "ServerListByResourceGroup.json#200[2]",
            "azure.ha.mode",
            "fail",
            "Disabled",
        ),
    ],
)
def test_shapes_answer_where_the_payload_holds_the_answer(
    results: dict[str, dict[str, Any]],
    version: str,
    example: str,
    check: str,
    status: str,
    text: str,
) -> None:
    finding = _verdict(results, version, example, check)
    assert finding["status"] == status, finding
    assert text in f"{finding['actual']} | {finding['message']}", finding


@pytest.mark.parametrize("api_version", VERSIONS)
def test_results_are_as_reviewed(results: dict[str, dict[str, Any]], api_version: str) -> None:
    path = result_path(api_version)
    assert path.is_file(), "run scripts/update-api-version-results"
    assert path.read_text(encoding="utf-8") == render(results[api_version]), (
        f"{path.name} differs: run scripts/update-api-version-results and review the diff"
    )
