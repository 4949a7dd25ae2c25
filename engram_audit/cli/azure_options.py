"""Click options that select the Azure target and how to reach it, and the request they build.

Every option can also come from an ``ENGRAM_AUDIT_*`` environment variable (CI pipelines set
them once). ``--azure-token-env`` names a variable holding a bearer token; the token itself is
never an option, so it never appears in a process list or a shell history.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from engram_audit.collectors.azure.request import (
    CLOUD_NAMES,
    MAX_CONCURRENCY,
    MAX_IN_FLIGHT,
    AzureRequest,
    Shard,
)

F = TypeVar("F", bound=Callable[..., Any])

# The keyword arguments these options add to a command, for callers that pop them.
AZURE_OPTION_NAMES: tuple[str, ...] = (
    "subscription",
    "management_group",
    "resource_group",
    "server",
    "tag",
    "azure_token_env",
    "arm_endpoint",
    "cloud",
    "timeout",
    "concurrency",
    "shard",
)
# Options that only make sense with --subscription (cloud/timeout/concurrency have defaults).
_TARGETING = ("resource_group", "server", "tag", "azure_token_env", "arm_endpoint", "shard")
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _parse_tag(_: click.Context, __: click.Parameter, value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    key, separator, tag_value = value.partition("=")
    if not separator or not key.strip() or not tag_value.strip():
        raise click.BadParameter(f"expected KEY=VALUE (e.g. environment=prod), got {value!r}")
    return key.strip(), tag_value.strip()


def _parse_shard(_: click.Context, __: click.Parameter, value: str | None) -> Shard | None:
    if value is None:
        return None
    match = _SHARD.match(value)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise click.BadParameter(f"expected I/N with 1 <= I <= N (e.g. 2/8), got {value!r}")
    return Shard(int(match[1]), int(match[2]))


def _check_env_name(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise click.BadParameter(
            "give the NAME of an environment variable holding the token (e.g. ARM_TOKEN), "
            "not the token itself"
        )
    return value


def azure_options(command: F) -> F:
    """Add --subscription --management-group --resource-group --server --tag --azure-token-env
    --arm-endpoint --cloud --timeout --concurrency --shard (each also from ENGRAM_AUDIT_<NAME>)."""
    options = (
        click.option(
            "--subscription",
            envvar="ENGRAM_AUDIT_SUBSCRIPTION",
            metavar="ID",
            multiple=True,
            help="Azure subscription id (GUID) to audit; repeatable (several: found through "
            "Resource Graph). The variable takes ids separated by spaces.",
        ),
        click.option(
            "--management-group",
            envvar="ENGRAM_AUDIT_MANAGEMENT_GROUP",
            metavar="ID",
            help="Discovery in every subscription under this management group (Resource Graph).",
        ),
        click.option(
            "--resource-group",
            envvar="ENGRAM_AUDIT_RESOURCE_GROUP",
            metavar="RG",
            help="Resource group of --server; alone, every flexible server in the group.",
        ),
        click.option(
            "--server",
            envvar="ENGRAM_AUDIT_SERVER",
            metavar="NAME",
            help="Flexible server name (needs --resource-group).",
        ),
        click.option(
            "--tag",
            envvar="ENGRAM_AUDIT_TAG",
            metavar="KEY=VALUE",
            callback=_parse_tag,
            help="Discovery: audit every flexible server carrying this tag (any resource group; "
            "found through Resource Graph).",
        ),
        click.option(
            "--azure-token-env",
            envvar="ENGRAM_AUDIT_AZURE_TOKEN_ENV",
            metavar="VAR",
            callback=_check_env_name,
            help="Read an ARM bearer token from environment variable VAR instead of "
            "DefaultAzureCredential. The token is never printed.",
        ),
        click.option(
            "--arm-endpoint",
            envvar="ENGRAM_AUDIT_ARM_ENDPOINT",
            metavar="URL",
            help="Resource Manager endpoint (https). Default: the --cloud's endpoint. "
            "CA bundle: REQUESTS_CA_BUNDLE or SSL_CERT_FILE.",
        ),
        click.option(
            "--cloud",
            envvar="ENGRAM_AUDIT_CLOUD",
            type=click.Choice(CLOUD_NAMES),
            default="AzureCloud",
            show_default=True,
            help="Azure cloud (sets the ARM endpoint, token audience and sign-in authority).",
        ),
        click.option(
            "--timeout",
            envvar="ENGRAM_AUDIT_TIMEOUT",
            type=click.FloatRange(min=1, max=86400),
            default=300.0,
            show_default=True,
            metavar="SECONDS",
            help="Upper bound for the whole Azure collection, throttling waits included.",
        ),
        click.option(
            "--concurrency",
            envvar="ENGRAM_AUDIT_CONCURRENCY",
            type=click.IntRange(1, MAX_CONCURRENCY),
            default=8,
            show_default=True,
            help="ARM requests in flight per subscription (and for Resource Graph), each "
            "subscription paced by its own read budget; subscriptions are read side by side, "
            f"at most {MAX_IN_FLIGHT} requests in flight in all.",
        ),
        click.option(
            "--shard",
            envvar="ENGRAM_AUDIT_SHARD",
            metavar="I/N",
            callback=_parse_shard,
            help="Audit only the I-th of N slices of the servers found (ordered by subscription, "
            "then id), for a CI matrix; `engram-audit merge` joins the shards' JSON reports.",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def azure_request_from_options(options: Mapping[str, object]) -> AzureRequest | None:
    """The Azure request the options describe; None when no Azure target was given.

    ``subscription`` and ``server`` may be one value or several (a tuple: repeated flags, or
    the inventory's lists).
    """
    subscriptions = _texts(options.get("subscription"))
    management_group = _text(options.get("management_group"))
    if not subscriptions and management_group is None:
        given = [name for name in _TARGETING if options.get(name)]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            verb = "needs" if len(given) == 1 else "need"
            raise click.UsageError(
                f"{flags} {verb} --subscription ID (or --management-group ID for discovery)"
            )
        return None
    for subscription in subscriptions:
        if not _GUID.match(subscription):
            raise click.UsageError(
                f"--subscription must be a subscription id (a GUID), {_shape(subscription)}"
            )
    group = _text(options.get("resource_group"))
    servers = _texts(options.get("server"))
    tag = options.get("tag")
    several = len(subscriptions) > 1 or management_group is not None
    if len(servers) == 1 and not group and not several:
        raise click.UsageError("--server NAME needs --resource-group RG")
    if servers and tag:
        raise click.UsageError("give either --server (one server) or --tag (discovery), not both")
    if not (servers or group or tag) or (several and not (servers or tag)):
        scope = "--subscription alone" if not several else "a scope without --tag or servers"
        raise click.UsageError(
            f"{scope} is too broad: give --resource-group RG --server NAME, "
            "--resource-group RG for every server in a group, or --tag KEY=VALUE for discovery"
        )
    timeout = options.get("timeout")
    concurrency = options.get("concurrency")
    cloud = _text(options.get("cloud"))
    shard = options.get("shard")
    return AzureRequest(
        subscription_id=subscriptions[0] if len(subscriptions) == 1 else None,
        subscriptions=subscriptions if len(subscriptions) > 1 else (),
        management_group=management_group,
        resource_group=group,
        server_name=servers[0] if len(servers) == 1 else None,
        server_names=servers if len(servers) > 1 else (),
        tag=tag if isinstance(tag, tuple) else None,
        arm_endpoint=_text(options.get("arm_endpoint")),
        cloud=cloud or "AzureCloud",
        token_env=_text(options.get("azure_token_env")),
        timeout_seconds=float(timeout) if isinstance(timeout, int | float) else 300.0,
        concurrency=concurrency if isinstance(concurrency, int) else 8,
        # --allow-empty is a run-wide option (cli.common), not one of the options above.
        allow_empty=options.get("allow_empty") is True,
        shard=shard if isinstance(shard, Shard) else None,
    )


def _shape(value: str) -> str:
    """What a wrong --subscription looks like, never the value itself: a DSN or a token pasted
    into the wrong flag must not reach a CI log."""
    if "://" in value or "=" in value or "@" in value:
        return "got what looks like a connection string (not shown): give a DSN with --dsn-env VAR"
    return f"got {len(value)} characters that are not one (not shown)"


def _texts(value: object) -> tuple[str, ...]:
    """One value or several, stripped, empty ones dropped, repeats removed (in any case)."""
    values = value if isinstance(value, tuple | list) else (value,)
    seen: dict[str, str] = {}
    for item in values:
        text = _text(item)
        if text is not None:
            seen.setdefault(text.casefold(), text)
    return tuple(seen.values())


def _text(value: object) -> str | None:
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None
