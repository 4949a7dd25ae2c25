"""What Azure Database for PostgreSQL flexible server offers, kept as data with its sources.

``data/extensions.json`` holds the extension versions Azure installs per PostgreSQL major
version, copied from the project's reference (``reference/azure-server-parameters.json``,
section ``extensions``), which names the Microsoft Learn table and commit it was read from:
https://learn.microsoft.com/azure/postgresql/extensions/concepts-extensions-versions.
Nothing here is guessed: a major version the table does not list is "not documented", and a
"Not supported" cell is "not offered". The file is read on first use, never at import.
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


@cache
def _extension_table() -> dict[str, Any]:
    text = files("engram_audit.checks.postgres").joinpath("data/extensions.json").read_text("utf-8")
    table: dict[str, Any] = json.loads(text)["extensions"]
    return table


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
