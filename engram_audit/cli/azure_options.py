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

from engram_audit.collectors.azure.request import CLOUD_NAMES, MAX_CONCURRENCY, AzureRequest

F = TypeVar("F", bound=Callable[..., Any])

# The keyword arguments these options add to a command, for callers that pop them.
AZURE_OPTION_NAMES: tuple[str, ...] = (
    "subscription",
    "resource_group",
    "server",
    "tag",
    "azure_token_env",
    "arm_endpoint",
    "cloud",
    "timeout",
    "concurrency",
)
# Options that only make sense with --subscription (cloud/timeout/concurrency have defaults).
_TARGETING = ("resource_group", "server", "tag", "azure_token_env", "arm_endpoint")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _parse_tag(_: click.Context, __: click.Parameter, value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    key, separator, tag_value = value.partition("=")
    if not separator or not key.strip() or not tag_value.strip():
        raise click.BadParameter(f"expected KEY=VALUE (e.g. environment=prod), got {value!r}")
    return key.strip(), tag_value.strip()


def _check_env_name(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise click.BadParameter(
            "give the NAME of an environment variable holding the token (e.g. ARM_TOKEN), "
            "not the token itself"
        )
    return value


def azure_options(command: F) -> F:
    """Add --subscription --resource-group --server --tag --azure-token-env --arm-endpoint
    --cloud --timeout --concurrency (each also from ENGRAM_AUDIT_<NAME>)."""
    options = (
        click.option(
            "--subscription",
            envvar="ENGRAM_AUDIT_SUBSCRIPTION",
            metavar="ID",
            help="Azure subscription id (GUID) to audit.",
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
            help="Discovery: audit every flexible server carrying this tag (any resource group).",
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
            help="ARM requests in flight at once.",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def azure_request_from_options(options: Mapping[str, object]) -> AzureRequest | None:
    """The Azure request the options describe; None when no Azure target was given."""
    subscription = _text(options.get("subscription"))
    if subscription is None:
        given = [name for name in _TARGETING if options.get(name)]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            verb = "needs" if len(given) == 1 else "need"
            raise click.UsageError(f"{flags} {verb} --subscription ID")
        return None
    if not _GUID.match(subscription):
        raise click.UsageError(
            f"--subscription must be a subscription id (a GUID), {_shape(subscription)}"
        )
    group = _text(options.get("resource_group"))
    server = _text(options.get("server"))
    tag = options.get("tag")
    if server and not group:
        raise click.UsageError("--server NAME needs --resource-group RG")
    if server and tag:
        raise click.UsageError("give either --server (one server) or --tag (discovery), not both")
    if not (server or group or tag):
        raise click.UsageError(
            "--subscription alone is too broad: give --resource-group RG --server NAME, "
            "--resource-group RG for every server in a group, or --tag KEY=VALUE for discovery"
        )
    timeout = options.get("timeout")
    concurrency = options.get("concurrency")
    cloud = _text(options.get("cloud"))
    return AzureRequest(
        subscription_id=subscription,
        resource_group=group,
        server_name=server,
        tag=tag if isinstance(tag, tuple) else None,
        arm_endpoint=_text(options.get("arm_endpoint")),
        cloud=cloud or "AzureCloud",
        token_env=_text(options.get("azure_token_env")),
        timeout_seconds=float(timeout) if isinstance(timeout, int | float) else 300.0,
        concurrency=concurrency if isinstance(concurrency, int) else 8,
        # --allow-empty is a run-wide option (cli.common), not one of the options above.
        allow_empty=options.get("allow_empty") is True,
    )


def _shape(value: str) -> str:
    """What a wrong --subscription looks like, never the value itself: a DSN or a token pasted
    into the wrong flag must not reach a CI log."""
    if "://" in value or "=" in value or "@" in value:
        return "got what looks like a connection string (not shown): give a DSN with --dsn-env VAR"
    return f"got {len(value)} characters that are not one (not shown)"


def _text(value: object) -> str | None:
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None
