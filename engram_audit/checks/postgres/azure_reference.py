"""Facts about Azure Database for PostgreSQL flexible server, kept as data with their sources.

Both files are copied from the project's reference (``reference/azure-server-parameters.json``),
which names the Microsoft Learn page and the commit each value was read from:

- ``data/extensions.json``: the extension versions Azure installs per PostgreSQL major version
  (https://learn.microsoft.com/azure/postgresql/extensions/concepts-extensions-versions). A
  major version the table does not list is "not documented"; a "Not supported" cell is "not
  offered".
- ``data/connections.json``: the connection slots Azure reserves, ``superuser_reserved_connections``
  10 + ``reserved_connections`` 5, read-only on every version
  (https://learn.microsoft.com/azure/postgresql/configure-maintain/concepts-limits).

Nothing here is guessed, and the files are read on first use, never at import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any


@dataclass(frozen=True)
class ExtensionOffer:
    """One extension on one major version, as Microsoft documents it."""

    extension: str
    major: int
    version: str | None  # None: Azure does not offer it on this major version
    in_allow_list: bool | None  # azure.extensions allow-list; None: not documented
    source: str

    @property
    def offered(self) -> bool:
        return self.version is not None


def _data(name: str) -> dict[str, Any]:
    text = files("engram_audit.checks.postgres").joinpath(f"data/{name}").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _extension_table() -> dict[str, Any]:
    table: dict[str, Any] = _data("extensions.json")["extensions"]
    return table


@cache
def azure_reserved_connections() -> dict[str, int]:
    """Slots Azure keeps out of ordinary roles' reach, by the setting that reserves them."""
    reserved: dict[str, int] = _data("connections.json")["reserved"]
    return dict(reserved)


def extension_offer(extension: str, major: int) -> ExtensionOffer | None:
    """Azure's offer of ``extension`` on PostgreSQL ``major``; None when not documented."""
    entry = _extension_table().get(extension)
    if entry is None or str(major) not in entry["versions"]:
        return None
    allowed = entry["in_azure_extensions_allow_list"].get(str(major))
    return ExtensionOffer(
        extension=extension,
        major=major,
        version=entry["versions"][str(major)],
        in_allow_list=allowed,
        source=entry["source"],
    )


def documented_extensions() -> tuple[str, ...]:
    return tuple(sorted(_extension_table()))
