"""Fixtures for Azure tests: a fresh HTTPS ARM emulator per test (one CA per session) and a
``collect`` helper that points the real SDK at it through the environment, like a CI run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engram_audit.collectors.azure.collector import AzureCollection, AzureRequest, collect_azure
from tests.support.arm_emulator import ArmEmulator, TlsMaterial

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.emulator-secret-token.c2lnbmF0dXJl"
TOKEN_VARIABLE = "ENGRAM_AUDIT_TEST_ARM_TOKEN"

Collect = Callable[..., AzureCollection]


@pytest.fixture(scope="session")
def tls() -> TlsMaterial:
    return TlsMaterial()


@pytest.fixture
def arm(tls: TlsMaterial, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmEmulator]:
    with ArmEmulator(token=TOKEN, tls=tls) as emulator:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_pem)
        monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
        for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.delenv(proxy, raising=False)
        yield emulator


@pytest.fixture
def collect(arm: ArmEmulator) -> Collect:
    def run(subscription_id: str | None, **fields: Any) -> AzureCollection:
        """Collect through the real SDK; ``parts`` (the plan's parts) defaults to every part."""
        parts = fields.pop("parts", None)
        fields.setdefault("arm_endpoint", arm.url)
        fields.setdefault("token_env", TOKEN_VARIABLE)
        fields.setdefault("timeout_seconds", 30.0)
        request = AzureRequest(subscription_id, **fields)
        return collect_azure(request, show_progress=False, parts=parts)

    return run
