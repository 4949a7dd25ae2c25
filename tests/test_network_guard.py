"""The suite's guard refuses connections beyond loopback before a byte is sent."""

from __future__ import annotations

import socket

import pytest


def test_non_loopback_connection_is_refused_before_connecting() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe,
        pytest.raises(AssertionError, match="tests stay on loopback"),
    ):
        probe.connect(("192.0.2.1", 443))  # TEST-NET-1: documentation range, never routed


def test_loopback_stays_allowed() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
