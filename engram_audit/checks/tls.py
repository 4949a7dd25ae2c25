"""TLS protocol versions as PostgreSQL and Azure name them, ordered oldest to newest."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

TLS_VERSIONS = ("tlsv1", "tlsv1.1", "tlsv1.2", "tlsv1.3")


def tls_rank(value: str) -> int | None:
    folded = value.strip().casefold().replace(" ", "")
    return TLS_VERSIONS.index(folded) if folded in TLS_VERSIONS else None


def _known(value: str) -> str:
    if tls_rank(value) is None:
        raise ValueError(
            f"unknown TLS version {value!r}; use one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"
        )
    return value


TlsVersion = Annotated[str, AfterValidator(_known)]
"""A params field holding a TLS version name, rejected at policy load when unknown."""
