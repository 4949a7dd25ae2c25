"""The controls reviewers bring for Azure Database for PostgreSQL flexible server (Azure Policy,
Microsoft cloud security benchmark, CIS, Prowler), as data with their sources.

``data/controls.json`` lists each framework's controls for Azure Database for PostgreSQL flexible
server: ids, names and cross-mappings extracted from the public repositories named in each
framework's ``source`` (Azure/azure-policy, prowler-cloud/prowler, at the commits given), plus
engram-audit's own words on what each evaluates and, where no rule implements a control, why
(``not_covered``). Rules cite controls as ``framework:id``; the policy schema accepts only the
ids listed here. The file is read once, on first use, never at import time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

DATA_FILE = "controls.json"


@dataclass(frozen=True)
class Framework:
    id: str
    title: str
    version: str
    source: str


@dataclass(frozen=True)
class Control:
    framework: str
    id: str
    name: str
    source: str
    related: tuple[str, ...] = ()
    not_covered: str = ""
    note: str = ""
    evaluates: str = ""
    deprecated: bool = False

    @property
    def key(self) -> str:
        return f"{self.framework}:{self.id}"

    @property
    def label(self) -> str:
        """``id`` with the name when there is one: what a table shows."""
        return f"{self.id} {self.name}".strip()


class ControlCatalogue:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.frameworks: dict[str, Framework] = {
            entry["id"]: Framework(
                id=entry["id"],
                title=entry["title"],
                version=str(entry.get("version", "")),
                source=entry["source"],
            )
            for entry in document["frameworks"]
        }
        self.controls: dict[str, Control] = {}
        for entry in document["controls"]:
            control = Control(
                framework=entry["framework"],
                id=str(entry["id"]),
                name=str(entry.get("name", "")),
                source=str(entry.get("source", "")),
                related=tuple(entry.get("related", ())),
                not_covered=str(entry.get("not_covered", "")),
                note=str(entry.get("note", "")),
                evaluates=str(entry.get("evaluates", "")),
                deprecated=bool(entry.get("deprecated", False)),
            )
            if control.framework not in self.frameworks:
                raise ValueError(f"control {control.key}: unknown framework")
            if control.key in self.controls:
                raise ValueError(f"duplicate control {control.key}")
            self.controls[control.key] = control

    def get(self, key: str) -> Control | None:
        return self.controls.get(key)

    def of(self, framework: str) -> tuple[Control, ...]:
        """A framework's controls in the file's order."""
        return tuple(c for c in self.controls.values() if c.framework == framework)


@cache
def control_catalogue() -> ControlCatalogue:
    """The shipped controls, read on first use."""
    text = (
        resources.files("engram_audit.checks.azure")
        .joinpath("data", DATA_FILE)
        .read_text(encoding="utf-8")
    )
    return ControlCatalogue(json.loads(text))
