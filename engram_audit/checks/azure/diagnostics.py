"""Resource logs leave the server: diagnostic settings, read as ARM sends them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from engram_audit.checks.azure.common import each_server
from engram_audit.checks.base import CheckContext, Outcome, Params, check, verdict
from engram_audit.model.base import Source
from engram_audit.model.values import as_bool, dig, fold, text

Destination = Literal["log_analytics", "storage_account", "event_hub"]
# Microsoft.Insights/diagnosticSettings properties naming each destination (an empty string,
# as in the official listDiagnosticSettings example's "workspaceId": "", names none).
DESTINATION_KEYS: dict[str, tuple[str, str]] = {
    "log_analytics": ("workspaceId", "Log Analytics workspace"),
    "storage_account": ("storageAccountId", "storage account"),
    "event_hub": ("eventHubAuthorizationRuleId", "event hub"),
}


def _log_analytics() -> list[Destination]:
    return ["log_analytics"]


class DiagnosticSettingsParams(Params):
    destinations: list[Destination] = Field(
        default_factory=_log_analytics,
        min_length=1,
        description="Where logs must go (any one of these): log_analytics, storage_account, "
        "event_hub",
    )
    categories: list[str] = Field(
        default_factory=lambda: ["PostgreSQLLogs"],
        description="Log categories that count (PostgreSQLLogs: 'PostgreSQL Server Logs')",
    )
    category_groups: list[str] = Field(
        default_factory=lambda: ["allLogs"],
        description="Category groups that count (allLogs includes every category)",
    )


@dataclass(frozen=True)
class _Setting:
    name: str
    destinations: dict[str, str]  # kind -> resource id
    logs: tuple[str, ...]  # enabled categories and category groups, as ARM spells them


def _setting(raw: dict[str, Any]) -> _Setting:
    name = text(raw.get("name") or str(raw.get("id") or "").rsplit("/", 1)[-1] or "(unnamed)")
    destinations = {}
    for kind, (key, _) in DESTINATION_KEYS.items():
        value = dig(raw, "properties", key)
        if isinstance(value, str) and value.strip():
            destinations[kind] = value.strip()
    logs = []
    for entry in dig(raw, "properties", "logs") or ():
        if not isinstance(entry, dict) or as_bool(dig(entry, "enabled")) is not True:
            continue
        label = dig(entry, "category") or dig(entry, "categoryGroup")
        if isinstance(label, str) and label.strip():
            logs.append(label.strip())
    return _Setting(name, destinations, tuple(logs))


def _problem(setting: _Setting, params: DiagnosticSettingsParams) -> str | None:
    """Why this setting does not send the required logs to a required destination."""
    wanted_logs = {fold(c) for c in (*params.categories, *params.category_groups)}
    sent = [label for label in setting.logs if fold(label) in wanted_logs]
    targets = [kind for kind in params.destinations if kind in setting.destinations]
    if not targets:
        where = ", ".join(DESTINATION_KEYS[k][1] for k in setting.destinations) or "nowhere"
        return f"{setting.name} sends to {where}"
    if not sent:
        enabled = ", ".join(setting.logs) or "no log category"
        return f"{setting.name} enables {enabled}"
    return None


def _short(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


@check(
    "azure.monitor.diagnostic_settings",
    sources=[Source.AZURE],
    params=DiagnosticSettingsParams,
    reads=("azure.diagnostic_settings",),
    facts=("log_analytics_workspace_id",),
)
def diagnostic_settings(
    params: DiagnosticSettingsParams, context: CheckContext
) -> Iterator[Outcome]:
    """A diagnostic setting sends the server's PostgreSQL logs to a Log Analytics workspace.

    The server keeps its own log files for at most `logfiles.retention_days` (1-7 days): only a
    diagnostic setting keeps connection, disconnection and PgAudit records beyond that and makes
    them searchable. A setting counts when it names a destination the policy accepts (a non-empty
    `workspaceId`, `storageAccountId` or `eventHubAuthorizationRuleId`) and enables a log
    category the policy accepts (`PostgreSQLLogs`, "PostgreSQL Server Logs" in Azure Monitor's
    supported logs for Microsoft.DBforPostgreSQL/flexibleServers) or a category group it accepts
    (`allLogs`, which Azure Policy's "Deploy Diagnostic Settings for PostgreSQL flexible servers
    to Log Analytics workspace" requires). The `audit` category group does not count by default:
    which categories it holds for flexible servers is not stated in the material this check was
    written from; add it to `category_groups` to accept it. No setting at all is FAIL; the list
    not collected (no permission `Microsoft.Insights/diagnosticSettings/read`) is ERROR.

    Remediation: `az monitor diagnostic-settings create --resource <server id> --name to-log-analytics --workspace <workspace id> --logs '[{"categoryGroup":"allLogs","enabled":true}]'`.
    """
    accepted = " or ".join(DESTINATION_KEYS[k][1] for k in params.destinations)
    logs = " or ".join([*params.categories, *params.category_groups])
    expected = f"{logs} sent to a {accepted}"
    for server in each_server(context):
        if server.diagnostic_settings is None:
            yield context.not_collected(server.id, "diagnostic_settings", expected)
            continue
        settings = [_setting(raw) for raw in server.diagnostic_settings if isinstance(raw, dict)]
        if not settings:
            yield verdict(False, server.id, expected, "no diagnostic setting")
            continue
        judged = sorted(((s, _problem(s, params)) for s in settings), key=lambda p: p[0].name)
        good = [s for s, problem in judged if problem is None]
        if good:
            first = good[0]
            kind = next(k for k in params.destinations if k in first.destinations)
            actual = (
                f"{first.name} sends {', '.join(first.logs)} to "
                f"{DESTINATION_KEYS[kind][1]} {_short(first.destinations[kind])}"
            )
            yield verdict(True, server.id, expected, actual)
            continue
        reasons = "; ".join(problem for _, problem in judged if problem)
        yield verdict(
            False, server.id, expected, f"{len(settings)} setting(s), none qualifies", reasons
        )
