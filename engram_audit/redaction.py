"""Last line of defence for secrets: every byte the CLI prints or writes passes through here.

Collectors already redact DSNs before they store them; this catches anything that slips
through a third-party error message (a driver echoing a conninfo, an SDK quoting a header).
"""

from __future__ import annotations

import logging
import threading

MASK = "********"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


class SecretRegistry:
    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def register(self, secret: str | None) -> None:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            with self._lock:
                self._secrets.add(secret)

    def scrub(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()


SECRETS = SecretRegistry()


class ScrubbingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = SECRETS.scrub(record.getMessage())
        record.args = None
        return True
