"""The values an open value of planned state can take, and Azure's defaults, each with its source.

A plan or template that leaves a value open (unknown until apply, an unresolved parameter, a
fact of a running server) is judged over these values (``checks.planned``): a verdict stands
only when it is the same for every one of them. Lists are Azure's own enumerations where Azure
has one; where it has none (SKU names, IP addresses, free text) they are probes chosen so that
each check's thresholds fall between them, never a claim about what the value will be.

Sources:
- enums: ``Azure/azure-rest-api-specs`` ``PostgreSQL/models.tsp`` @ dd817ad and the 2024-08-01
  swagger, as recorded in ``tests/azure/api_versions/SHAPES.md`` section 7;
- defaults (``Backup.backupRetentionDays = 7``, ``geoRedundantBackup = Disabled``,
  ``HighAvailability.mode = Disabled``, ``AuthConfig.passwordAuth = Enabled``): the same
  models.tsp field lists (SHAPES.md section 7);
- storage sizes: the azurerm provider's ``storage_mb`` values (website/docs/r/
  postgresql_flexible_server.html.markdown @ 69697b7), in GB;
- server bodies without ``authConfig`` or ``dataEncryption``: docs/azure.md (Entra off and
  password authentication on; service-managed keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engram_audit.checks.azure.server import HA_STATES

SWITCH = ("Enabled", "Disabled")
VERSIONS = ("11", "12", "13", "14", "15", "16", "17", "18")
SKU_TIERS = ("Burstable", "GeneralPurpose", "MemoryOptimized")
HA_MODES = ("Disabled", "ZoneRedundant", "SameZone")
ENCRYPTION_TYPES = ("SystemManaged", "AzureKeyVault")
# Every retention a rule can ask for (RetentionParams: 1-35 days).
RETENTION_DAYS = tuple(range(1, 36))
# azurerm's storage_mb values / 1024.
STORAGE_GB = (32, 64, 128, 256, 512, 1024, 2048, 4095, 4096, 8192, 16384, 32767)
# Probes across vCore counts 1-96 and the three families (no enumeration of SKU names exists).
SKU_NAME_PROBES = (
    "Standard_B1ms",
    "Standard_B2s",
    "Standard_D2s_v3",
    "Standard_D4ds_v5",
    "Standard_D96ds_v5",
    "Standard_E2ds_v5",
    "Standard_E96ds_v5",
)
# Probes: the "allow Azure services" address, a private address, the top of the range.
IP_PROBES = ("0.0.0.0", "10.0.0.1", "255.255.255.255")
THRESHOLD_PROBES = (0.0, 1.0e9)
AUTH_CONFIGS: tuple[dict[str, str], ...] = tuple(
    {"activeDirectoryAuth": entra, "passwordAuth": password}
    for entra in SWITCH
    for password in SWITCH
)
DATA_ENCRYPTION: tuple[Any, ...] = (None, {"type": "SystemManaged"}, {"type": "AzureKeyVault"})

# Body paths (under the ARM resource) the checks read, and the values each can take.
BODY_CANDIDATES: dict[tuple[str, ...], tuple[Any, ...]] = {
    ("sku", "name"): SKU_NAME_PROBES,
    ("sku", "tier"): SKU_TIERS,
    ("properties", "version"): VERSIONS,
    ("properties", "storage", "storageSizeGB"): STORAGE_GB,
    ("properties", "storage", "autoGrow"): SWITCH,
    ("properties", "backup", "backupRetentionDays"): RETENTION_DAYS,
    ("properties", "backup", "geoRedundantBackup"): SWITCH,
    ("properties", "highAvailability"): tuple({"mode": mode} for mode in HA_MODES),
    ("properties", "highAvailability", "mode"): HA_MODES,
    # Healthy first: a default or open HA mode is judged with a standby that could be healthy.
    ("properties", "highAvailability", "state"): (
        "Healthy",
        *(state for state in HA_STATES.values() if state != "Healthy"),
    ),
    ("properties", "network"): (
        {"publicNetworkAccess": "Enabled"},
        {"publicNetworkAccess": "Disabled"},
    ),
    ("properties", "network", "publicNetworkAccess"): SWITCH,
    ("properties", "authConfig"): AUTH_CONFIGS,
    ("properties", "authConfig", "activeDirectoryAuth"): SWITCH,
    ("properties", "authConfig", "passwordAuth"): SWITCH,
    ("properties", "dataEncryption"): DATA_ENCRYPTION,
    ("properties", "dataEncryption", "type"): ENCRYPTION_TYPES,
}


# Lists that are probes, not every value: a pass over them alone is not given.
PROBES: tuple[tuple[Any, ...], ...] = (SKU_NAME_PROBES, STORAGE_GB, IP_PROBES, THRESHOLD_PROBES)


def complete(candidates: tuple[Any, ...]) -> bool:
    """Whether ``candidates`` are every value (an enumeration), not probes."""
    return bool(candidates) and all(candidates != probes for probes in PROBES)


def body_candidates(path: Sequence[str]) -> tuple[Any, ...]:
    """What a body value at ``path`` can take; () when no check reads it (judged as absent)."""
    return BODY_CANDIDATES.get(tuple(path), ())


# Azure's defaults for a server body that leaves something out: (path, value, what, source).
AZURE_DEFAULTS: tuple[tuple[tuple[str, ...], Any, str], ...] = (
    (
        ("properties", "backup", "backupRetentionDays"),
        7,
        "models.tsp Backup.backupRetentionDays = 7",
    ),
    (
        ("properties", "backup", "geoRedundantBackup"),
        "Disabled",
        "models.tsp Backup.geoRedundantBackup = Disabled",
    ),
    (
        ("properties", "highAvailability", "mode"),
        "Disabled",
        "models.tsp HighAvailability.mode = Disabled",
    ),
    (
        ("properties", "authConfig"),
        {"activeDirectoryAuth": "Disabled", "passwordAuth": "Enabled"},
        "Entra authentication is on only where Azure says so; models.tsp "
        "AuthConfig.passwordAuth = Enabled (docs/azure.md)",
    ),
)
