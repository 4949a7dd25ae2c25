"""What the CLI asks of the IaC collector: a plan or a template, built from flags. SDK-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

IacKind = Literal["plan", "template"]


@dataclass(frozen=True)
class IacRequest:
    """The Azure source of a run that judges planned state instead of the live estate."""

    kind: IacKind
    path: Path
    parameters: Path | None = None
    allow_empty: bool = False  # a plan or template without any flexible server is accepted

    @property
    def flag(self) -> str:
        return "--terraform-plan" if self.kind == "plan" else "--arm-template"
