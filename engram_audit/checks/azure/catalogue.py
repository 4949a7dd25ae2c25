"""Azure's server parameters as data: what exists on which PostgreSQL major version and tier.

The facts come from Microsoft's parameter tables for PostgreSQL 11-18, shipped as package data
(``data/server-parameters.json``, built by ``scripts/build_parameter_catalogue.py`` from the
project's reference). Every version entry keeps the ``file@commit`` of the Microsoft table it was
read from, and ``source_urls`` lists the learn.microsoft.com pages; nothing here is a literal
typed into a check.

Three answers are possible for "does Azure offer parameter X on this server?":

- **offered**: the table for that major version lists it (and the tier and switch allow it);
- **not offered**: the table was read and X is not in it (``exists: false``), the tier does not
  have it (``pgbouncer.*`` on Burstable), or it is listed only while a switch is on
  (``pgbouncer.*`` while ``pgbouncer.enabled`` is false);
- **unknown**: the version was not read, or the server's version or tier is unknown. Unknown is
  never "not offered": a check reports it as an error, not as a skip.

The document is read once, on first use, never at import time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any

from engram_audit.model.values import fold

DATA_FILE = "server-parameters.json"
# The docs' lower-case data types as ARM spells them (``dataType``: Boolean, Numeric, ...).
ARM_DATA_TYPES = {
    "boolean": "Boolean",
    "numeric": "Numeric",
    "integer": "Integer",
    "enumeration": "Enumeration",
    "string": "String",
    "set": "Set",
}
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")
_SHOWN_CHOICES = 8


class Availability(Enum):
    OFFERED = "offered"
    NOT_OFFERED = "not offered"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Offer:
    """Whether Azure offers a parameter on one server, and why (a sentence fit for a finding)."""

    availability: Availability
    reason: str


@dataclass(frozen=True)
class VersionFacts:
    """One row of Microsoft's table for one major version (``exists: false``: looked for, absent)."""

    exists: bool
    default: str | None
    allowed: str | None
    parameter_type: str | None
    source: str


@dataclass(frozen=True)
class Condition:
    """The parameter is listed only while ``parameter`` has ``value``."""

    parameter: str
    value: str


@dataclass(frozen=True)
class ParameterFacts:
    name: str
    data_type: str
    source: str
    versions: Mapping[str, VersionFacts]
    tiers: tuple[str, ...] = ()
    listed_only_when: Condition | None = None
    description: str = ""
    dynamic: bool | None = None
    """The entry's ``dynamic`` (None when the docs give no parameter type)."""

    def on(self, major: str) -> VersionFacts | None:
        """The row for ``major`` (``"16"``), or None when that version was not read."""
        return self.versions.get(major)

    def static_on(self, major: str | None) -> tuple[bool, str] | None:
        """Whether Azure applies the parameter only after a restart, and the table that says
        so: the row for ``major`` (its ``parameter_type``: static, dynamic or read-only), else
        the entry's ``dynamic``; None when neither is recorded."""
        row = self.on(major) if major is not None else None
        if row is not None and row.exists and row.parameter_type:
            return row.parameter_type.strip().casefold() == "static", row.source
        if self.dynamic is not None:
            return not self.dynamic, self.source
        return None

    def offered_on_tier(self, tier: str) -> bool:
        return not self.tiers or fold(tier) in {fold(t) for t in self.tiers}

    @property
    def arm_data_type(self) -> str | None:
        """ARM's ``dataType`` spelling (``boolean`` -> ``Boolean``); None when the docs give none."""
        return ARM_DATA_TYPES.get(self.data_type.split(" ")[0])


@dataclass(frozen=True)
class AllowedValues:
    """Azure's ``allowedValues`` for one parameter: a list of choices or a numeric range.

    String parameters carry a regular expression in that field; it is kept as text but not
    applied (``admits`` answers None), since ARM's pattern dialect is not Python's.
    """

    text: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    multiple: bool = False

    def admits(self, value: str) -> bool | None:
        """True or False when the value can be judged against the allowed values, else None."""
        if self.low is not None and self.high is not None:
            try:
                number = float(value.strip())
            except ValueError:
                return False
            return self.low <= number <= self.high
        if self.choices is None:
            return None
        folded = {choice.casefold() for choice in self.choices}
        items = value.split(",") if self.multiple else [value]
        return all(
            item.strip().casefold() in folded for item in items if item.strip() or not self.multiple
        )

    def describe(self) -> str:
        if self.choices is None:
            return self.text.strip()
        shown = [choice for choice in self.choices if choice]
        if len(shown) <= _SHOWN_CHOICES:
            return ", ".join(shown)
        return ", ".join(shown[:_SHOWN_CHOICES]) + f", ... ({len(shown)} values)"


def allowed_values(text: str | None, data_type: str | None) -> AllowedValues | None:
    """Parse an ``allowedValues`` cell for a parameter of ``data_type`` (docs or ARM spelling)."""
    if text is None or not text.strip():
        return None
    kind = (data_type or "").split(" ")[0].casefold()
    if kind == "string":
        return AllowedValues(text)
    if kind in {"integer", "numeric", ""} and (match := _RANGE.match(text)):
        return AllowedValues(text, low=float(match[1]), high=float(match[2]))
    if kind in {"integer", "numeric"}:
        return AllowedValues(text, choices=tuple(item.strip() for item in text.split(",")))
    choices = tuple(item.strip() for item in text.split(","))
    return AllowedValues(text, choices=choices, multiple=kind == "set")


class ParameterCatalogue:
    """Microsoft's parameter tables, looked up by name in any case."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        about = document.get("_about", {})
        self.source_urls: tuple[str, ...] = tuple(about.get("source_urls", ()))
        self.retrieved: str = str(about.get("retrieved", ""))
        self.parameters: dict[str, ParameterFacts] = {
            name: _facts(name, entry) for name, entry in document["parameters"].items()
        }
        self.max_connections_defaults: Mapping[str, Any] = document.get(
            "max_connections_defaults", {}
        )
        self._folded = {name.casefold(): facts for name, facts in self.parameters.items()}

    def get(self, name: str) -> ParameterFacts | None:
        return self.parameters.get(name) or self._folded.get(name.casefold())

    def offer(
        self,
        name: str,
        *,
        major: str | None,
        tier: str | None,
        value_of: Callable[[str], str | None],
    ) -> Offer:
        """Whether Azure lists ``name`` for a server of this major version and tier.

        ``value_of`` answers the current value of another parameter in ARM's answer (None when
        ARM did not return it); it decides switch-dependent parameters such as ``pgbouncer.*``.
        """
        facts = self.get(name)
        if facts is None:
            return Offer(
                Availability.UNKNOWN,
                f"the parameter catalogue (Microsoft's tables) has no entry for {name}",
            )
        if major is None:
            return Offer(Availability.UNKNOWN, "the server's PostgreSQL major version is unknown")
        row = facts.on(major)
        if row is None:
            return Offer(
                Availability.UNKNOWN,
                f"the parameter catalogue does not record whether Azure offers {name} on "
                f"PostgreSQL {major}",
            )
        if not row.exists:
            return Offer(
                Availability.NOT_OFFERED,
                f"Azure does not offer {name} on PostgreSQL {major} "
                "(Microsoft's parameter table for that version does not list it)",
            )
        if facts.tiers:
            offered_on = " and ".join(facts.tiers)
            if tier is None:
                return Offer(
                    Availability.UNKNOWN,
                    f"the server's compute tier is unknown, and Azure offers {name} only on "
                    f"{offered_on}",
                )
            if not facts.offered_on_tier(tier):
                return Offer(
                    Availability.NOT_OFFERED,
                    f"Azure does not offer {name} on the {tier} tier (only on {offered_on})",
                )
        condition = facts.listed_only_when
        if condition is not None:
            current = value_of(condition.parameter)
            if current is None:
                return Offer(
                    Availability.UNKNOWN,
                    f"Azure lists {name} only while {condition.parameter} is {condition.value}, "
                    f"and ARM did not return {condition.parameter}",
                )
            if fold(current) != fold(condition.value):
                return Offer(
                    Availability.NOT_OFFERED,
                    f"Azure lists {name} only while {condition.parameter} is {condition.value} "
                    f"(it is {current})",
                )
        return Offer(Availability.OFFERED, f"Azure offers {name} on PostgreSQL {major}")

    def listed(
        self, *, major: str, tier: str, values: Mapping[str, str]
    ) -> Iterator[tuple[ParameterFacts, VersionFacts]]:
        """The catalogue's parameters ARM lists for such a server, given some current values
        (a switch not in ``values`` has its default), in name order."""

        def value_of(name: str) -> str | None:
            if name in values:
                return values[name]
            facts = self.get(name)
            row = facts.on(major) if facts else None
            return row.default if row else None

        for name in sorted(self.parameters):
            facts = self.parameters[name]
            offer = self.offer(name, major=major, tier=tier, value_of=value_of)
            row = facts.on(major)
            if offer.availability is Availability.OFFERED and row is not None:
                yield facts, row


def _facts(name: str, entry: Mapping[str, Any]) -> ParameterFacts:
    condition = entry.get("listed_only_when")
    return ParameterFacts(
        name=name,
        data_type=str(entry.get("type", "")),
        source=str(entry.get("source", "")),
        versions={
            major: VersionFacts(
                exists=bool(row.get("exists")),
                default=row.get("default"),
                allowed=row.get("allowed"),
                parameter_type=row.get("parameter_type"),
                source=str(row.get("source", "")),
            )
            for major, row in entry.get("versions", {}).items()
        },
        tiers=tuple(entry.get("offered_on_tiers", ())),
        listed_only_when=Condition(str(condition["parameter"]), str(condition["value"]))
        if condition
        else None,
        description=str(entry.get("description", "")),
        dynamic=entry["dynamic"] if isinstance(entry.get("dynamic"), bool) else None,
    )


@cache
def parameter_catalogue() -> ParameterCatalogue:
    """The shipped catalogue, read on first use."""
    text = (
        resources.files("engram_audit.checks.azure")
        .joinpath("data", DATA_FILE)
        .read_text(encoding="utf-8")
    )
    return ParameterCatalogue(json.loads(text))
