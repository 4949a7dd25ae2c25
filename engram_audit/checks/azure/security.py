"""Security-review baseline: network exposure, encryption at rest, Entra authentication."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from engram_audit.checks.azure.common import each_server, prop, setting
from engram_audit.checks.base import CheckContext, Outcome, Params, check, errored, verdict
from engram_audit.model.base import Source
from engram_audit.model.snapshot import AzureServer, FirewallRule
from engram_audit.model.values import as_bool, dig, fold, text

_ALLOW_AZURE = ("0.0.0.0", "0.0.0.0")


def _is_allow_azure(rule: FirewallRule) -> bool:
    return (rule.start_ip_address.strip(), rule.end_ip_address.strip()) == _ALLOW_AZURE


def _range_size(rule: FirewallRule) -> int | None:
    try:
        start = ipaddress.IPv4Address(rule.start_ip_address.strip())
        end = ipaddress.IPv4Address(rule.end_ip_address.strip())
    except ValueError:
        return None
    return int(end) - int(start) + 1 if end >= start else None


class FirewallOpenParams(Params):
    max_addresses: int = Field(
        default=256, ge=1, description="Widest range a single rule may open (256 = a /24)"
    )


@check(
    "azure.network.firewall_open",
    sources=[Source.AZURE],
    params=FirewallOpenParams,
    reads=("azure.firewall_rules",),
    planned=True,
    facts=("firewall_rule",),
)
def firewall_open(params: FirewallOpenParams, context: CheckContext) -> Iterator[Outcome]:
    """No firewall rule opens the server to the whole internet or to a very wide range.

    A rule such as 0.0.0.0-255.255.255.255 exposes the login endpoint of the database holding
    every agent's memory to the internet, leaving only the password between it and an attacker.

    Remediation: `az postgres flexible-server firewall-rule delete --rule-name <name>`; allow only the
    application's egress addresses, or move to private access.
    """
    expected = f"no rule wider than {params.max_addresses} addresses"
    for server in each_server(context):
        if server.firewall_rules is None:
            yield context.not_collected(server.id, "firewall_rules", expected)
            continue
        wide, unreadable, names = [], [], []
        for rule in sorted(server.firewall_rules, key=lambda r: r.name):
            if _is_allow_azure(rule):
                continue
            size = _range_size(rule)
            described = f"{rule.name} ({rule.start_ip_address}-{rule.end_ip_address})"
            if size is None:
                unreadable.append(described)
            elif size > params.max_addresses:
                wide.append(described)
                names.append(rule.name)
        if unreadable and not wide:
            yield errored(server.id, f"not an IPv4 range: {', '.join(unreadable)}", expected)
            continue
        actual = ", ".join(wide) if wide else f"{len(server.firewall_rules)} rule(s), none too wide"
        yield verdict(not wide, server.id, expected, actual, facts={"firewall_rule": tuple(names)})


class AllowAzureServicesParams(Params):
    allowed: bool = False


@check(
    "azure.network.allow_azure_services",
    sources=[Source.AZURE],
    params=AllowAzureServicesParams,
    reads=("azure.firewall_rules",),
    planned=True,
    facts=("firewall_rule",),
)
def allow_azure_services(
    params: AllowAzureServicesParams, context: CheckContext
) -> Iterator[Outcome]:
    """The "allow public access from any Azure service" rule (0.0.0.0-0.0.0.0) is absent.

    That rule admits connections from every Azure tenant's resources, not only yours; in
    production access should be limited to the application's own network.

    Remediation: `az postgres flexible-server firewall-rule delete --rule-name AllowAllAzureServicesAndResourcesWithinAzureIps`.
    """
    expected = "allowed" if params.allowed else "absent"
    for server in each_server(context):
        if server.firewall_rules is None:
            yield context.not_collected(server.id, "firewall_rules", expected)
            continue
        present = [rule.name for rule in server.firewall_rules if _is_allow_azure(rule)]
        actual = f"present ({', '.join(sorted(present))})" if present else "absent"
        yield verdict(
            params.allowed or not present,
            server.id,
            expected,
            actual,
            facts={"firewall_rule": tuple(sorted(present))},
        )


class PublicAccessParams(Params):
    allowed: bool = False


@check(
    "azure.network.public_access",
    sources=[Source.AZURE],
    params=PublicAccessParams,
    reads=("azure.server",),
    planned=True,
    facts=("setting",),
)
def public_access(params: PublicAccessParams, context: CheckContext) -> Iterator[Outcome]:
    """Public network access is off where the policy requires private networking.

    With public access disabled the server is reachable only through a VNet or private endpoint;
    firewall mistakes can then no longer expose it.

    Remediation: `az postgres flexible-server update --public-access Disabled` and connect through a
    private endpoint.
    """
    expected = "Enabled or Disabled" if params.allowed else "Disabled"
    for server in each_server(context):
        raw = prop(server, "network", "publicNetworkAccess")
        value = as_bool(raw)
        if value is None:
            yield errored(
                server.id, f"network.publicNetworkAccess is not readable: {text(raw)}", expected
            )
            continue
        ok = params.allowed or not value
        fix = (
            {} if ok else {"setting": setting("properties.network.publicNetworkAccess", "Disabled")}
        )
        yield verdict(ok, server.id, expected, text(raw), facts=fix)


class EncryptionParams(Params):
    require_customer_managed_key: bool = False


# DataEncryptionType (tests/azure/api_versions/SHAPES.md section 7: models.tsp and the
# 2024-08-01 swagger's ArmServerKeyType).
_ENCRYPTION_TYPES = {"systemmanaged": "SystemManaged", "azurekeyvault": "AzureKeyVault"}


@check(
    "azure.encryption.at_rest",
    sources=[Source.AZURE],
    params=EncryptionParams,
    reads=("azure.server",),
    planned=True,
    facts=("setting",),
)
def encryption_at_rest(params: EncryptionParams, context: CheckContext) -> Iterator[Outcome]:
    """Data is encrypted at rest, with a customer-managed key where the policy asks for one.

    Azure encrypts with service-managed keys by default; production may require keys in your own
    Key Vault (`dataEncryption.type = AzureKeyVault`) so that access can be revoked and rotation
    is under your control.

    A server body without `dataEncryption` is read as system-managed keys: Microsoft documents
    that all data is always encrypted at rest and that service-managed keys are the default mode
    (learn.microsoft.com/azure/postgresql/flexible-server/security-data-encryption), and older API
    versions (GETs before 2024-08-01) and some newer examples leave the block out. A
    `dataEncryption` block without a `type`, or with a type Azure does not define, is ERROR.

    Remediation: customer-managed keys are set at creation: restore into a server created with
    `--key <key vault key id> --identity <managed identity>` and cut over.
    """
    expected = (
        "AzureKeyVault" if params.require_customer_managed_key else "SystemManaged or AzureKeyVault"
    )
    fix = {"setting": setting("properties.dataEncryption.type", "AzureKeyVault")}
    for server in each_server(context):
        block = prop(server, "dataEncryption")
        if block is None:
            actual = "SystemManaged (dataEncryption absent: Azure's default)"
            ok = not params.require_customer_managed_key
            yield verdict(ok, server.id, expected, actual, facts={} if ok else fix)
            continue
        raw = prop(server, "dataEncryption", "type")
        if raw is None:
            yield errored(server.id, "dataEncryption has no type", expected)
            continue
        kind = fold(raw)
        if kind not in _ENCRYPTION_TYPES:
            yield errored(
                server.id,
                f"unknown encryption type {text(raw)!r} (Azure defines "
                f"{' and '.join(_ENCRYPTION_TYPES.values())})",
                expected,
            )
            continue
        ok = kind == "azurekeyvault" or not params.require_customer_managed_key
        yield verdict(ok, server.id, expected, text(raw), facts={} if ok else fix)


class EntraParams(Params):
    required: bool = True
    password_auth_allowed: bool = True
    min_administrators: int = Field(default=1, ge=0)


@dataclass(frozen=True)
class _AuthConfig:
    entra: bool
    password: bool
    note: str = ""


def _switch(auth: dict[str, Any], enum_key: str, boolean_key: str) -> tuple[bool | None, Any]:
    """One authConfig switch in either shape: ``activeDirectoryAuth: "Enabled"`` (2022-12-01
    GETs and every later version) or ``activeDirectoryAuthEnabled: true`` (2022-03-08-preview
    and the 2022-12-01 create examples). (None, None) when neither key is there."""
    for key in (enum_key, boolean_key):
        raw = dig(auth, key)
        if raw is not None:
            return as_bool(raw), raw
    return None, None


def _auth_config(server: AzureServer) -> _AuthConfig | str:
    """The server's authentication switches, or why they cannot be read."""
    auth = prop(server, "authConfig")
    if auth is None:
        return _AuthConfig(False, True, "authConfig absent: Entra off, password auth on")
    if not isinstance(auth, dict):
        return f"authConfig is not an object: {text(auth)}"
    entra, raw_entra = _switch(auth, "activeDirectoryAuth", "activeDirectoryAuthEnabled")
    if raw_entra is not None and entra is None:
        return f"authConfig.activeDirectoryAuth is not readable: {text(raw_entra)}"
    password, raw_password = _switch(auth, "passwordAuth", "passwordAuthEnabled")
    if raw_password is not None and password is None:
        return f"authConfig.passwordAuth is not readable: {text(raw_password)}"
    notes = []
    if raw_entra is None:
        notes.append("Entra switch absent: off")
    if raw_password is None:
        notes.append("passwordAuth absent: Azure's default Enabled")
    return _AuthConfig(
        entra if entra is not None else False,
        password if password is not None else True,
        "; ".join(notes),
    )


@check(
    "azure.auth.entra",
    sources=[Source.AZURE],
    params=EntraParams,
    reads=("azure.administrators", "azure.server"),
    planned=True,
    facts=("setting",),
)
def entra_auth(params: EntraParams, context: CheckContext) -> Iterator[Outcome]:
    """Microsoft Entra authentication is on, with an Entra administrator assigned.

    Entra identities give per-person, revocable, MFA-backed access and short-lived tokens instead
    of a shared `cogadmin` password; a reviewer expects it at least for administration.

    Both shapes ARM has shipped are read: `authConfig.activeDirectoryAuth` /
    `passwordAuth` ("Enabled"/"Disabled", 2022-12-01 GETs and later) and
    `activeDirectoryAuthEnabled` / `passwordAuthEnabled` (booleans, 2022-03-08-preview and the
    2022-12-01 create examples). No `authConfig` at all (API versions before 2022-03-08-preview)
    or no Entra switch in it means Entra authentication is off: it is on only where Azure says
    so (Azure Policy's built-in Entra-only audit treats anything but "Enabled" the same way), so
    a rule requiring Entra FAILs. An absent `passwordAuth` is Azure's default, Enabled
    (models.tsp `AuthConfig.passwordAuth = Enabled`). A value that is neither is ERROR.

    Remediation: `az postgres flexible-server update --microsoft-entra-auth Enabled` and
    `az postgres flexible-server microsoft-entra-admin create --display-name <group> --object-id <id>`.
    """
    expected_parts = ["Entra auth Enabled" if params.required else "Entra auth any"]
    if params.required and params.min_administrators:
        expected_parts.append(f">= {params.min_administrators} Entra admin(s)")
    if not params.password_auth_allowed:
        expected_parts.append("password auth Disabled")
    expected = ", ".join(expected_parts)
    for server in each_server(context):
        config = _auth_config(server)
        if isinstance(config, str):
            yield errored(server.id, config, expected)
            continue
        entra, password = config.entra, config.password
        problems = []
        settings = []
        if params.required and not entra:
            problems.append("Entra authentication is disabled")
            settings.append(setting("properties.authConfig.activeDirectoryAuth", "Enabled"))
        admins = None
        if params.required and params.min_administrators:
            if server.administrators is None:
                yield context.not_collected(server.id, "administrators", expected)
                continue
            admins = len(server.administrators)
            if admins < params.min_administrators:
                problems.append(f"{admins} Entra administrator(s)")
                settings.append(setting("administrators", params.min_administrators))
        if not params.password_auth_allowed and password:
            problems.append("password authentication is enabled")
            settings.append(setting("properties.authConfig.passwordAuth", "Disabled"))
        actual = (
            f"Entra auth {'Enabled' if entra else 'Disabled'}"
            + (f", {admins} admin(s)" if admins is not None else "")
            + f", password auth {'Enabled' if password else 'Disabled'}"
        )
        message = "; ".join([*problems, config.note] if config.note else problems)
        fix = {"setting": tuple(settings)} if settings else {}
        yield verdict(not problems, server.id, expected, actual, message, facts=fix)
