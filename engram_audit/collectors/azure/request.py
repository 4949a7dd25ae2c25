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
    # ``--allow-empty``: a scope in which no flexible server is found is accepted (its rules are
    # SKIP) instead of being recorded as a collection issue (exit 3).
    allow_empty: bool = False


def no_server_found(request: AzureRequest) -> str:
    """What an empty discovery means, in the request's own terms (for issues and notes)."""
    if request.resource_group:
        where = f"resource group {request.resource_group} of subscription {request.subscription_id}"
    else:
        where = f"subscription {request.subscription_id}"
    if request.tag is not None:
        key, value = request.tag
        return f"no flexible server matched tag {key}={value} in {where}"
    return f"no flexible server in {where}"
