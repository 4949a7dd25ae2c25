"""Every official example in ``tests/azure/api_versions`` through the SDK, the collector and every
``azure.*`` check: the material behind ``tests/azure/test_api_versions.py`` and its results.

For each API version, every server body the examples hold (GETs, list items, create responses)
is served by the HTTPS ARM emulator together with that version's child examples (configurations,
firewall rules, backups, databases, Entra administrators), collected through the real SDK
(``collect_azure``, i.e. ``collectors/azure/parts.py``) and evaluated with the production policy,
which uses every ``azure.*`` check. A part the version's examples do not hold (no backup example
for 2021-06-01; no example of private endpoints, replicas, threat protection, diagnostic settings
or metric alerts in this directory at all) is marked not collected, with that reason, instead of
being served as an empty list: an empty list would be an invented answer.

Results are kept per API version in ``tests/azure/api_versions/results/<version>.json``, cfn-lint
style; ``scripts/update-api-version-results`` rewrites them, and the test compares.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engram_audit.collectors.azure.collector import AzureRequest, collect_azure
from engram_audit.collectors.run import assemble
from engram_audit.engine import evaluate
from engram_audit.model import Source
from engram_audit.model.snapshot import AzureSection, AzureServer, CollectionIssue
from engram_audit.policy.loader import load_policy
from tests.support.arm_emulator import ArmEmulator, TlsMaterial

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "tests" / "azure" / "api_versions"
RESULTS = EXAMPLES / "results"
POLICY = Path("policies") / "prod.yaml"
# A fixed clock, so backup ages (and the results) do not change from one day to the next.
COLLECTED_AT = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
TOKEN = "api-versions-emulator-token"
TOKEN_VARIABLE = "ENGRAM_AUDIT_API_VERSIONS_TOKEN"

_PROVIDER = "microsoft.dbforpostgresql/flexibleservers"
# Child resource type -> (emulator world key, snapshot field).
CHILD_KINDS: dict[str, tuple[str, str]] = {
    f"{_PROVIDER}/configurations": ("configurations", "parameters"),
    f"{_PROVIDER}/firewallrules": ("firewallRules", "firewall_rules"),
    f"{_PROVIDER}/backups": ("backups", "backups"),
    f"{_PROVIDER}/databases": ("databases", "databases"),
    f"{_PROVIDER}/administrators": ("administrators", "administrators"),
}
# Parts the collector reads that no example in this directory holds.
NOT_IN_EXAMPLES = (
    "private_endpoint_connections",
    "replicas",
    "threat_protection_state",
    "diagnostic_settings",
    "metric_alerts",
)
_SERVER_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
    r"/providers/microsoft\.dbforpostgresql/flexibleservers/(?P<name>[^/]+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ServerExample:
    label: str  # "ServerGet.json#200", "ServerListByResourceGroup.json#200[1]"
    body: dict[str, Any]


@dataclass
class VersionExamples:
    api_version: str
    servers: list[ServerExample] = field(default_factory=list)
    # world key -> [(file name, item)]
    children: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    files_used: set[str] = field(default_factory=set)


def api_versions() -> list[str]:
    return sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and p.name[:2] == "20")


def _bodies(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(suffix, item) for every resource in the example's response bodies."""
    for status, response in sorted(document.get("responses", {}).items()):
        body = response.get("body")
        if not isinstance(body, dict):
            continue
        if isinstance(body.get("value"), list):
            for index, item in enumerate(body["value"]):
                if isinstance(item, dict):
                    yield f"#{status}[{index}]", item
        else:
            yield f"#{status}", body


def load_version(api_version: str) -> VersionExamples:
    found = VersionExamples(api_version)
    for path in sorted((EXAMPLES / api_version).glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        for suffix, item in _bodies(document):
            kind = str(item.get("type", "")).casefold()
            if kind == _PROVIDER:
                found.servers.append(ServerExample(f"{path.name}{suffix}", item))
                found.files_used.add(path.name)
            elif kind in CHILD_KINDS:
                key = CHILD_KINDS[kind][0]
                found.children.setdefault(key, []).append((path.name, item))
                found.files_used.add(path.name)
    return found


def _identity(body: dict[str, Any], label: str) -> tuple[str, str, str]:
    match = _SERVER_ID.match(str(body.get("id", "")))
    if match is None:
        raise ValueError(f"{label}: no flexible server id in the example body")
    return match["sub"], match["rg"], match["name"]


def _world(version: VersionExamples, example: ServerExample) -> dict[str, Any]:
    subscription = _identity(example.body, example.label)[0]
    bundle: dict[str, Any] = {"server": example.body}
    for key, items in version.children.items():
        bundle[key] = [item for _, item in items]
    return {"subscriptionId": subscription, "servers": [bundle], "metricAlerts": []}


def _without_unexampled_parts(
    version: VersionExamples, server: AzureServer
) -> tuple[AzureServer, list[CollectionIssue]]:
    """Mark the parts this version's examples do not hold as not collected, with the reason."""
    present = {
        CHILD_KINDS[kind][1] for kind in CHILD_KINDS if CHILD_KINDS[kind][0] in version.children
    }
    missing = [f for _, f in CHILD_KINDS.values() if f not in present] + list(NOT_IN_EXAMPLES)
    issues = [
        CollectionIssue(
            source=Source.AZURE,
            resource=server.id,
            part=part,
            reason=f"no official example of this part for api-version {version.api_version} "
            "in tests/azure/api_versions",
        )
        for part in missing
    ]
    return server.model_copy(update=dict.fromkeys(missing)), issues


def _parts(version: VersionExamples) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {}
    for key, snapshot_field in CHILD_KINDS.values():
        files = sorted({name for name, _ in version.children.get(key, [])})
        parts[snapshot_field] = files
    for snapshot_field in NOT_IN_EXAMPLES:
        parts[snapshot_field] = []
    return parts


def _finding(finding: Any, server_id: str) -> dict[str, str]:
    resource = str(finding.resource)
    if resource.casefold().startswith(server_id.casefold()):
        resource = "<server>" + resource[len(server_id) :]
    return {
        "rule": finding.rule,
        "check": finding.check,
        "status": finding.status.value,
        "resource": resource,
        "expected": finding.expected,
        "actual": finding.actual,
        "message": finding.message,
    }


class Collector:
    """One HTTPS emulator for a whole run; servers are served and collected one at a time."""

    def __init__(self, tls: TlsMaterial | None = None) -> None:
        self.arm = ArmEmulator(token=TOKEN, tls=tls or TlsMaterial())

    def __enter__(self) -> Collector:
        self.arm.start()
        self._saved = {
            name: os.environ.get(name) for name in ("REQUESTS_CA_BUNDLE", TOKEN_VARIABLE)
        }
        os.environ["REQUESTS_CA_BUNDLE"] = self.arm.ca_pem
        os.environ[TOKEN_VARIABLE] = TOKEN
        return self

    def __exit__(self, *_: object) -> None:
        self.arm.stop()
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def results(self, api_version: str) -> dict[str, Any]:
        """The results document for one API version."""
        version = load_version(api_version)
        policy = load_policy(REPO / POLICY)
        servers = []
        for example in version.servers:
            subscription, group, name = _identity(example.body, example.label)
            self.arm.reset_log()
            self.arm.add_world(_world(version, example))
            collection = collect_azure(
                AzureRequest(
                    subscription,
                    resource_group=group,
                    server_name=name,
                    arm_endpoint=self.arm.url,
                    token_env=TOKEN_VARIABLE,
                    timeout_seconds=30,
                ),
                show_progress=False,
            )
            requested = sorted(
                {
                    entry.api_version or ""
                    for entry in self.arm.requests
                    if _PROVIDER in entry.path.casefold()
                    and "/providers/microsoft.insights/" not in entry.path.casefold()
                }
            )
            (collected,) = collection.section.servers
            server, marked = _without_unexampled_parts(version, collected)
            snapshot = assemble(
                "prod",
                azure=AzureSection(servers=(server,)),
                issues=(*collection.issues, *marked),
                collected_at=COLLECTED_AT,
            )
            report = evaluate(policy, snapshot, {Source.AZURE})
            servers.append(
                {
                    "example": example.label,
                    "server_id": server.id,
                    "collection_issues": [
                        {"part": i.part, "reason": i.reason} for i in collection.issues
                    ],
                    "requested_api_versions": requested,
                    "body_is_kept_as_sent": server.resource == example.body,
                    "findings": sorted(
                        (
                            _finding(f, server.id)
                            for f in report.findings
                            if f.check.startswith("azure.")
                        ),
                        key=lambda f: (f["rule"], f["resource"], f["status"], f["message"]),
                    ),
                }
            )
        return {
            "api_version": api_version,
            "policy": POLICY.as_posix(),
            "collected_at": COLLECTED_AT.isoformat(),
            "parts": _parts(version),
            "servers": servers,
        }


def render(results: dict[str, Any]) -> str:
    return json.dumps(results, indent=2, ensure_ascii=False) + "\n"


def result_path(api_version: str) -> Path:
    return RESULTS / f"{api_version}.json"


def write_all() -> list[Path]:
    """Regenerate every results file (what ``scripts/update-api-version-results`` runs)."""
    RESULTS.mkdir(exist_ok=True)
    written = []
    with Collector() as collector:
        for api_version in api_versions():
            path = result_path(api_version)
            path.write_text(render(collector.results(api_version)), encoding="utf-8")
            written.append(path)
    for stale in set(RESULTS.glob("*.json")) - set(written):
        stale.unlink()
    return written
