from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engram_audit.model import Policy, Snapshot
from engram_audit.policy.loader import load_policy

ROOT = Path(__file__).parents[1]
SNAPSHOTS = ROOT / "fixtures" / "snapshots"
POLICIES = ROOT / "policies"


def snapshot_data(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SNAPSHOTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture
def prod_policy() -> Policy:
    return load_policy(POLICIES / "prod.yaml")


@pytest.fixture
def prod_drifted() -> Snapshot:
    return Snapshot.model_validate(snapshot_data("prod-drifted"))


@pytest.fixture
def prod_compliant() -> Snapshot:
    return Snapshot.model_validate(snapshot_data("prod-compliant"))


class NetworkEscape(AssertionError):
    """A test tried to reach beyond this machine; nothing was sent."""


def _loopback_only(address: object) -> None:
    if not isinstance(address, tuple):
        return  # Unix socket path
    host = str(address[0])
    try:
        allowed = ipaddress.ip_address(host).is_loopback
    except ValueError:
        allowed = host == "localhost"
    if not allowed:
        raise NetworkEscape(f"test tried to connect to {host}: tests stay on loopback")


@pytest.fixture(autouse=True, scope="session")
def _no_network_beyond_loopback() -> Iterator[None]:
    """Every Python-level connection (the Azure SDK's included) must go to loopback.

    libpq connects from C and is not covered; the PostgreSQL tests only use servers they start
    on a Unix socket or 127.0.0.1.
    """
    original = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        _loopback_only(address)
        original(self, address)

    socket.socket.connect = guarded  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]
