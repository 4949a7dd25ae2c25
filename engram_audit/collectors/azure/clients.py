"""Where to talk to (cloud, endpoint, CA bundle), as whom (credential), and the SDK clients.

Every "cannot even start" problem is raised here, with one clear line, before any request
is sent: ``AzureTargetError`` for settings that are wrong, ``AzureCollectionError`` when no
credential can be had.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.core import AzureClouds
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.core.rest import HttpRequest, HttpResponse
from azure.identity import AzureAuthorityHosts, DefaultAzureCredential
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.tools import get_arm_endpoints
from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient

from engram_audit import __version__
from engram_audit.collectors.azure.errors import AzureCollectionError, AzureTargetError
from engram_audit.collectors.azure.pacing import Pacers
from engram_audit.collectors.azure.pipeline import (
    RESOURCE_GRAPH_PATH,
    Budget,
    BudgetExhausted,
    RequestCounter,
    read_only_policies,
)
from engram_audit.collectors.azure.transport import Urllib3Transport

# The newest stable API of the examples we test against; the SDK's own default is a preview.
POSTGRES_API_VERSION = "2025-08-01"
DIAGNOSTIC_SETTINGS_API_VERSION = "2021-05-01-preview"
METRIC_ALERTS_API_VERSION = "2018-03-01"
# Microsoft.Authorization "Permissions" list (the identity's own permissions at a scope): the
# newest stable version in the REST API specs (stable/2022-04-01, authorization-RoleDefinitionsCalls.json).
PERMISSIONS_API_VERSION = "2022-04-01"

CLOUDS: dict[str, tuple[AzureClouds, str]] = {
    "AzureCloud": (AzureClouds.AZURE_PUBLIC_CLOUD, AzureAuthorityHosts.AZURE_PUBLIC_CLOUD),
    "AzureChinaCloud": (AzureClouds.AZURE_CHINA_CLOUD, AzureAuthorityHosts.AZURE_CHINA),
    "AzureUSGovernment": (AzureClouds.AZURE_US_GOVERNMENT, AzureAuthorityHosts.AZURE_GOVERNMENT),
}

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9\-._~+/=]+$")


class EnvironmentToken:
    """A bearer token a pipeline already minted (``--azure-token-env``); never shown in repr."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        # The real expiry is unknown; ARM's 401 tells us when it has passed.
        return AccessToken(self._token, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "EnvironmentToken(<redacted>)"


class DeadlineCredential:
    """Any credential, with every ``get_token`` bounded by the run's deadline.

    ``DefaultAzureCredential`` may probe several sources (managed identity endpoint, Azure CLI
    subprocess, ...) before it answers; without a bound that would run before or beside
    ``--timeout``. The inner call runs on a daemon thread; when the time left runs out first,
    ``BudgetExhausted`` is raised and the thread is abandoned (it cannot hold the process open).
    """

    def __init__(self, inner: TokenCredential, budget: Budget) -> None:
        self._inner = inner
        self._budget = budget

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        budget = self._budget
        remaining = budget.remaining()
        if remaining <= 0:
            raise BudgetExhausted(
                f"the {budget.total_seconds:g} s --timeout ran out before an Azure token was had"
            )
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def fetch() -> None:
            try:
                outcome["token"] = self._inner.get_token(
                    *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
                )
            except BaseException as error:  # handed to the waiting thread below
                outcome["error"] = error
            finally:
                done.set()

        threading.Thread(target=fetch, name="engram-audit-token", daemon=True).start()
        if not done.wait(remaining):
            raise BudgetExhausted(
                f"getting an Azure token took longer than the {remaining:.0f} s left of the "
                f"{budget.total_seconds:g} s --timeout"
            )
        if "error" in outcome:
            raise outcome["error"]
        token: AccessToken = outcome["token"]
        return token

    def __repr__(self) -> str:
        return f"DeadlineCredential({self._inner!r})"


@dataclass(frozen=True)
class Target:
    endpoint: str
    scopes: list[str]
    authority: str


def resolve_target(cloud: str, arm_endpoint: str | None) -> Target:
    if cloud not in CLOUDS:
        raise AzureTargetError(
            f"unknown Azure cloud {cloud!r}: use one of {', '.join(sorted(CLOUDS))}"
        )
    cloud_setting, authority = CLOUDS[cloud]
    endpoints = get_arm_endpoints(cloud_setting)
    endpoint = endpoints["resource_manager"] if arm_endpoint is None else arm_endpoint
    return Target(_checked_endpoint(endpoint), list(endpoints["credential_scopes"]), authority)


def _checked_endpoint(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise AzureTargetError(f"--arm-endpoint is not a valid URL: {error}") from None
    shown = f"{parts.scheme}://{parts.hostname or ''}" + (f":{port}" if port else "")
    if parts.scheme != "https":
        raise AzureTargetError(
            f"--arm-endpoint must be an https:// URL (bearer tokens are never sent over plain "
            f"http): got {shown if parts.scheme else url.strip()[:80]!r}"
        )
    if not parts.hostname:
        raise AzureTargetError(f"--arm-endpoint has no host: {shown!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise AzureTargetError(
            f"--arm-endpoint must be a plain https://host[:port] URL without credentials, "
            f"query or fragment: {shown!r}"
        )
    return f"{shown}{parts.path.rstrip('/')}"


def ca_bundle() -> str | bool:
    """The CA bundle from ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE``; True: the default store."""
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(variable)
        if value:
            if not Path(value).is_file():
                raise AzureTargetError(
                    f"{variable} points at {value}, which is not a readable file"
                )
            return value
    return True


def environment_proxy(endpoint: str) -> str | None:
    """The proxy for ``endpoint`` from ``HTTPS_PROXY`` / ``ALL_PROXY`` and ``NO_PROXY``, read as
    ``requests`` reads them (a proxy without a scheme is ``http://``); None: connect directly.

    The transport speaks to http:// and https:// proxies only; anything else is a settings
    error before any request. The proxy URL itself is never shown: it may hold a password.
    """
    where = "the proxy in HTTPS_PROXY / ALL_PROXY"
    try:
        proxies = requests.utils.get_environ_proxies(endpoint)
        proxy = proxies.get(urlsplit(endpoint).scheme) or proxies.get("all")
        if not proxy:
            return None
        proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
        parts = urlsplit(proxy)
        _ = parts.port  # a port that is not a number raises here, not at the first request
    except ValueError:
        raise AzureTargetError(f"{where} is not a valid URL") from None
    if parts.scheme.casefold() not in ("http", "https") or not parts.hostname:
        # Not even the scheme is shown: in "user:password@host" it is the user name.
        raise AzureTargetError(f"{where} must be an http:// or https:// URL with a host")
    return proxy


def build_credential(token_env: str | None, authority: str) -> tuple[TokenCredential, str | None]:
    """The credential and, for ``--azure-token-env``, the token itself (to scrub from messages)."""
    if token_env is None:
        return DefaultAzureCredential(authority=authority), None
    token = os.environ.get(token_env, "").strip()
    if token.casefold().startswith("bearer "):
        token = token[len("bearer ") :].strip()
    if not token:
        raise AzureTargetError(
            f"--azure-token-env {token_env}: the environment variable {token_env} is not set "
            f"or empty"
        )
    if not _TOKEN_SHAPE.match(token):
        raise AzureTargetError(
            f"--azure-token-env {token_env}: the value does not look like a bearer token "
            f"(it contains spaces or characters a token cannot have)"
        )
    return EnvironmentToken(token), token


def check_credential(credential: TokenCredential, scopes: list[str]) -> None:
    """Fail early and clearly when DefaultAzureCredential has nothing to sign in with, or does
    not answer within the run's deadline (give it a ``DeadlineCredential``)."""
    try:
        credential.get_token(*scopes)
    except BudgetExhausted as error:
        raise AzureCollectionError(
            f"no Azure token in time: {error} (DefaultAzureCredential did not answer; sign in "
            "with `az login`, check the managed identity, or pass --azure-token-env VAR)"
        ) from None
    except ClientAuthenticationError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise AzureCollectionError(
            "no Azure credential available: DefaultAzureCredential could not get a token "
            "(sign in with `az login`, configure a managed or workload identity, or pass "
            f"--azure-token-env VAR with a token your pipeline minted). {first}".strip()
        ) from None


class ArmClients:
    """The SDK clients on one pooled session, with the run's budget, pacers and request counter.

    One ``PostgreSQLManagementClient`` per subscription (the SDK binds a client to one), made on
    first use, and one pipeline client for Resource Graph; every client has its own copy of the same
    read-only pipeline (policies hold their successor, so they cannot be shared), and all of
    them share the session, the counter and the pacers: one read budget per subscription,
    whichever client sends. Monitor resources (metric alerts, diagnostic settings) are read as
    wire JSON through the subscription's client's ``send_request``, on the same pipeline.
    """

    def __init__(
        self,
        *,
        target: Target,
        credential: TokenCredential,
        budget: Budget,
        concurrency: int,
        verify: str | bool,
    ) -> None:
        self.endpoint = target.endpoint
        self.counter = RequestCounter()
        self.pacers = Pacers(urlsplit(target.endpoint).path.rstrip("/") + RESOURCE_GRAPH_PATH)
        self._target = target
        self._credential = credential
        self._budget = budget
        # Proxy settings (HTTPS_PROXY, NO_PROXY) are read once for the one endpoint instead of
        # on every request; the CA bundle is passed explicitly.
        # One connection per worker (``concurrency``: the requests in flight in the whole run).
        self._transport = Urllib3Transport(
            verify=verify, proxy=environment_proxy(target.endpoint), pool_maxsize=concurrency + 2
        )
        self._postgres: dict[str, PostgreSQLManagementClient] = {}
        self._graph: ARMPipelineClient[HttpRequest, HttpResponse] | None = None
        self._lock = threading.Lock()

    def _common(self) -> dict[str, Any]:
        return {
            "base_url": self._target.endpoint,
            "transport": self._transport,
            "credential_scopes": self._target.scopes,
            "policies": read_only_policies(
                endpoint=self._target.endpoint,
                credential=self._credential,
                scopes=self._target.scopes,
                budget=self._budget,
                counter=self.counter,
                user_agent=f"engram-audit/{__version__}",
                pacers=self.pacers,
            ),
        }

    def postgres(self, subscription_id: str) -> PostgreSQLManagementClient:
        key = subscription_id.casefold()
        with self._lock:
            client = self._postgres.get(key)
            if client is None:
                client = PostgreSQLManagementClient(
                    self._credential,
                    subscription_id,
                    api_version=POSTGRES_API_VERSION,
                    **self._common(),
                )
                self._postgres[key] = client
            return client

    @property
    def graph(self) -> ARMPipelineClient[HttpRequest, HttpResponse]:
        """Resource Graph's pipeline: what azure-mgmt-resourcegraph 8.0.x's
        ``ResourceGraphClient`` builds around the policies it is given (an ``ARMPipelineClient``),
        used through ``send_request`` so the rows stay wire JSON (``graph.query_rows``)."""
        with self._lock:
            if self._graph is None:
                common = self._common()
                self._graph = ARMPipelineClient(
                    base_url=common.pop("base_url"),
                    policies=common.pop("policies"),
                    transport=common.pop("transport"),
                )
            return self._graph

    def close(self) -> None:
        self._transport.close()
