"""What to collect from Azure, as the CLI states it: no SDK import, so parsing flags stays cheap."""

from __future__ import annotations

from dataclasses import dataclass

MAX_CONCURRENCY = 64
# The clouds ``--cloud`` accepts; ``clients.CLOUDS`` maps each to the SDK's endpoints.
CLOUD_NAMES = ("AzureChinaCloud", "AzureCloud", "AzureUSGovernment")


@dataclass(frozen=True)
class AzureRequest:
    subscription_id: str
    resource_group: str | None = None
    server_name: str | None = None
    tag: tuple[str, str] | None = None
    arm_endpoint: str | None = None
    cloud: str = "AzureCloud"
    token_env: str | None = None
    timeout_seconds: float = 300.0
    concurrency: int = 8
