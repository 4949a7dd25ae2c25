"""Microsoft Defender for Cloud's threat protection on the server itself."""

from __future__ import annotations

from collections.abc import Iterator

from engram_audit.checks.azure.common import each_server
from engram_audit.checks.base import CheckContext, Outcome, Params, check, errored, verdict
from engram_audit.model.base import Source
from engram_audit.model.values import as_bool


class ThreatProtectionParams(Params):
    enabled: bool = True


@check(
    "azure.defender.threat_protection",
    sources=[Source.AZURE],
    params=ThreatProtectionParams,
    reads=("azure.threat_protection",),
)
def threat_protection(params: ThreatProtectionParams, context: CheckContext) -> Iterator[Outcome]:
    """Advanced Threat Protection (Microsoft Defender for open-source relational databases) is on for the server.

    Defender raises alerts on brute-force logins, logins from unusual places and suspicious
    database activity. The state read is the server's `advancedThreatProtectionSettings/Default`
    (`properties.state`), the resource Azure Policy's "Azure Defender for SQL should be enabled
    for unprotected PostgreSQL flexible servers" audits; the collector reads a list without a
    Default setting, or a setting without a state, as Disabled. The subscription's Defender plan
    (`Microsoft.Security/pricings/OpenSourceRelationalDatabases`) is not read: it is a
    subscription-wide setting, outside the server. A state that is neither Enabled nor Disabled
    is ERROR, as is a state that was not collected.

    Remediation: `az postgres flexible-server advanced-threat-protection-setting update --state Enabled`
    (or enable the plan for the subscription: `az security pricing create --name OpenSourceRelationalDatabases --tier Standard`).
    """
    expected = "Enabled" if params.enabled else "Disabled"
    for server in each_server(context):
        state = server.threat_protection_state
        if state is None:
            yield context.not_collected(server.id, "threat_protection_state", expected)
            continue
        value = as_bool(state)
        if value is None:
            yield errored(server.id, f"threat protection state is not readable: {state}", expected)
            continue
        yield verdict(value == params.enabled, server.id, expected, state)
