"""Any server parameter as a rule, in YAML alone: ``azure.param.value``.

The comparison follows the parameter's data type (ARM's ``dataType``, else the catalogue's):
booleans as PostgreSQL and ARM spell them (``on``/``off``/``true``/``false``/``1``/``0`` ... in
any case), numbers as numbers, sets (``azure.extensions``, ``shared_preload_libraries``) as
comma-separated sets in any case, everything else as text in any case. Whether the parameter
exists on the server is judged by ``ParameterLookup`` against Azure's catalogue, like every
other parameter check.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from engram_audit.checks.azure.catalogue import AllowedValues
from engram_audit.checks.azure.common import ParameterLookup, configuration_id, each_server
from engram_audit.checks.azure.params import (
    PARAMETER_FACTS,
    PARAMETER_READS,
    extended,
    parameter_facts,
)
from engram_audit.checks.base import CheckContext, Outcome, Params, check, errored, verdict
from engram_audit.checks.facts import FactValue
from engram_audit.model.base import Source
from engram_audit.model.snapshot import ServerParameter
from engram_audit.model.values import as_bool, as_float, as_set, text


def _as_text(value: Any) -> Any:
    """YAML and JSON scalars as Azure sends values: strings (``true``, ``7``, ``1.5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return value


def _as_list(value: Any) -> Any:
    """One item or a list of items."""
    if isinstance(value, str | bool | int | float):
        return [_as_text(value)]
    if isinstance(value, list):
        return [_as_text(item) for item in value]
    return value


# YAML and JSON policies may write a value unquoted (7, true): the schema accepts what the
# validators turn into Azure's strings.
_SCALAR_SCHEMA: dict[str, Any] = {"type": ["string", "boolean", "number"]}
Scalar = Annotated[str, BeforeValidator(_as_text), WithJsonSchema(_SCALAR_SCHEMA)]
Items = Annotated[
    list[str],
    BeforeValidator(_as_list),
    Field(min_length=1),
    WithJsonSchema(
        {"anyOf": [_SCALAR_SCHEMA, {"type": "array", "items": _SCALAR_SCHEMA, "minItems": 1}]}
    ),
]


class Kind(Enum):
    BOOLEAN = "boolean"
    NUMBER = "number"
    SET = "set"
    TEXT = "text"
    UNKNOWN = "unknown"


_KINDS = {
    "boolean": Kind.BOOLEAN,
    "integer": Kind.NUMBER,
    "numeric": Kind.NUMBER,
    "set": Kind.SET,
    "enumeration": Kind.TEXT,
    "string": Kind.TEXT,
}
# Comparisons that may be combined in one rule; give exactly one group.
_GROUPS = (
    ("equals",),
    ("one_of",),
    ("min", "max"),
    ("contains", "not_contains"),
    ("contains_text",),
)


class ParameterValueParams(Params):
    name: str = Field(
        min_length=1,
        description="The server parameter as Azure lists it (any case), e.g. log_connections",
    )
    equals: Scalar | None = Field(
        default=None,
        description="The value must equal this (booleans: on = true = 1; numbers numerically; "
        "sets as sets; text in any case)",
    )
    one_of: Items | None = Field(
        default=None, description="The value must equal one of these (compared like equals)"
    )
    min: float | None = Field(default=None, description="The value must be a number >= this")
    max: float | None = Field(default=None, description="The value must be a number <= this")
    contains: Items | None = Field(
        default=None,
        description="Comma-separated set: every one of these must be in it (any case)",
    )
    not_contains: Items | None = Field(
        default=None,
        description="Comma-separated set: none of these may be in it (any case)",
    )
    contains_text: Items | None = Field(
        default=None,
        description="Text: every one of these must occur in the value, exactly as written "
        "(e.g. log_line_prefix escapes %u and %d)",
    )

    @model_validator(mode="after")
    def _one_comparison(self) -> ParameterValueParams:
        given = [group for group in _GROUPS if any(getattr(self, f) is not None for f in group)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one comparison: equals, one_of, min and/or max, contains and/or "
                "not_contains, or contains_text"
                + (f" (got {', '.join('/'.join(g) for g in given)})" if given else "")
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


def _number(value: float) -> str:
    return f"{value:g}"


def expectation(params: ParameterValueParams) -> str:
    """What the rule asks, in the words findings use."""
    if params.equals is not None:
        return f"= {params.equals}"
    if params.one_of is not None:
        return "one of " + ", ".join(params.one_of)
    if params.min is not None or params.max is not None:
        parts = []
        if params.min is not None:
            parts.append(f">= {_number(params.min)}")
        if params.max is not None:
            parts.append(f"<= {_number(params.max)}")
        return " and ".join(parts)
    if params.contains_text is not None:
        return "contains " + ", ".join(f'"{item}"' for item in params.contains_text)
    parts = []
    if params.contains is not None:
        parts.append("includes " + ", ".join(params.contains))
    if params.not_contains is not None:
        parts.append("excludes " + ", ".join(params.not_contains))
    return "; ".join(parts)


def _kind(lookup: ParameterLookup, name: str, parameter: ServerParameter) -> Kind:
    facts = lookup.catalogue.get(name)
    data_type = parameter.data_type or (facts.data_type if facts is not None else "") or ""
    words = data_type.split()
    return _KINDS.get(words[0].casefold(), Kind.UNKNOWN) if words else Kind.UNKNOWN


def _same(value: str, wanted: str, kind: Kind) -> bool:
    """``value`` (as ARM sent it) equals ``wanted`` (as the policy wrote it) for this kind."""
    if kind is Kind.SET:
        return as_set(value) == as_set(wanted)
    if kind in (Kind.BOOLEAN, Kind.UNKNOWN):
        left, right = as_bool(value), as_bool(wanted)
        if left is not None and right is not None:
            return left == right
    if kind in (Kind.NUMBER, Kind.UNKNOWN):
        left_n, right_n = as_float(value), as_float(wanted)
        if left_n is not None and right_n is not None:
            return left_n == right_n
    return value.strip().casefold() == wanted.strip().casefold()


def _unreadable(value: str, kind: Kind) -> str:
    """Why the value cannot be read as its kind ("" when it can)."""
    if kind is Kind.BOOLEAN and as_bool(value) is None:
        return "is not on/off"
    if kind is Kind.NUMBER and as_float(value) is None:
        return "is not a number"
    return ""


def _spelled(wanted: str, kind: Kind, allowed: AllowedValues | None) -> str:
    """The value to set as Azure's allowed values spell it (a boolean ``true`` where the server
    lists ``on,off``), else as the policy wrote it."""
    if allowed is None or allowed.choices is None:
        return wanted
    for choice in allowed.choices:
        if choice.strip() and _same(choice, wanted, kind):
            return choice.strip()
    return wanted


def fix_value(
    params: ParameterValueParams, kind: Kind, current: str, allowed: AllowedValues | None
) -> str:
    """The value a fix sets; "" when none can be computed (``contains_text``: where the missing
    text goes in the value is a person's choice).

    ``equals`` and ``one_of``: the (first) wanted value; ``min``/``max``: the bound the value is
    outside; ``contains``/``not_contains``: the current set minus what is forbidden plus what is
    missing, never a replacement of what else is listed.
    """
    if params.equals is not None or params.one_of is not None:
        wanted = params.equals if params.equals is not None else (params.one_of or [""])[0]
        return _spelled(wanted, kind, allowed)
    if params.min is not None or params.max is not None:
        number = as_float(current)
        if params.min is not None and (number is None or number < params.min):
            return _number(params.min)
        if params.max is not None and (number is None or number > params.max):
            return _number(params.max)
        return current
    if params.contains is not None or params.not_contains is not None:
        spelled = ",".join(allowed.choices) if allowed and allowed.choices else None
        return extended(current, params.contains or (), spelled, drop=params.not_contains or ())
    return ""


def _judge(
    params: ParameterValueParams, lookup: ParameterLookup, parameter: ServerParameter
) -> Outcome:
    name = params.name
    expected = expectation(params)
    resource = configuration_id(lookup.server, name)
    value = parameter.value if parameter.value is not None else ""
    actual = text(parameter.value) if parameter.value else "(empty)"
    outside = lookup.outside_allowed(name, parameter)
    allowed = lookup.allowed(name, parameter)
    allows = f" (Azure allows: {allowed.describe()})" if allowed is not None else ""
    kind = _kind(lookup, name, parameter)
    wanted = fix_value(params, kind, value, allowed)
    facts: dict[str, FactValue] = (
        parameter_facts(lookup, name, parameter.value, wanted) if wanted else {}
    )

    if params.equals is not None or params.one_of is not None:
        candidates = [params.equals] if params.equals is not None else list(params.one_of or ())
        if any(_same(value, wanted, kind) for wanted in candidates):
            return verdict(True, resource, expected, actual, outside)
        reason = _unreadable(value, kind)
        # A value Azure allows (log_connections=receipt on 18) is judged; an unreadable value
        # Azure does not allow cannot be.
        if reason and (allowed is None or allowed.admits(value) is not True):
            return errored(resource, f"{name}={actual} {reason}{allows}", expected)
        return verdict(False, resource, expected, actual, outside, facts=facts)

    if params.min is not None or params.max is not None:
        number = as_float(value)
        if number is None:
            return errored(resource, f"{name}={actual} is not a number{allows}", expected)
        ok = (params.min is None or number >= params.min) and (
            params.max is None or number <= params.max
        )
        return verdict(ok, resource, expected, actual, outside, facts=facts)

    if params.contains_text is not None:
        missing_text = [item for item in params.contains_text if item not in value]
        problems = (
            ["lacks " + ", ".join(f'"{item}"' for item in missing_text)] if missing_text else []
        )
        if outside:
            problems.append(outside)
        return verdict(not missing_text, resource, expected, actual, "; ".join(problems))

    listed = as_set(value)
    missing = sorted({item.strip().casefold() for item in params.contains or ()} - listed)
    forbidden = sorted({item.strip().casefold() for item in params.not_contains or ()} & listed)
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if forbidden:
        problems.append("includes " + ", ".join(forbidden))
    if outside:
        problems.append(outside)
    return verdict(
        not (missing or forbidden), resource, expected, actual, "; ".join(problems), facts=facts
    )


@check(
    "azure.param.value",
    sources=[Source.AZURE],
    params=ParameterValueParams,
    reads=PARAMETER_READS,
    planned=True,
    facts=PARAMETER_FACTS,
)
def parameter_value(params: ParameterValueParams, context: CheckContext) -> Iterator[Outcome]:
    """Any server parameter has the value the policy requires: equals, one of, a range, or set membership.

    A rule names the parameter and one comparison: `equals`, `one_of`, `min` and/or `max`,
    `contains` and/or `not_contains` (comma-separated sets such as `shared_preload_libraries` or
    `azure.accepted_password_auth_method`, in any case), or `contains_text` (text that must occur
    as written, such as `%u` in `log_line_prefix`). Values are compared as Azure sends them, by
    the parameter's data type: booleans in every spelling PostgreSQL and ARM use (`on` = `ON` =
    `true` = `1`), numbers numerically (`7` = `7.0`), sets as sets, text in any case. A value
    that cannot be read as its type and that Azure does not allow (`log_checkpoints=maybe`) is
    ERROR; one Azure allows is judged (`log_connections=receipt` on PostgreSQL 18 is not `on`).

    Whether the parameter exists is decided by Azure's parameter catalogue, per major version and
    tier: absent where Azure does not offer it (`connection_throttle.enable` on PostgreSQL 18,
    `ssl_min_protocol_version` on 11) is SKIP with that reason; absent where Azure offers it is
    ERROR; a parameter the catalogue does not know (it holds Microsoft's tables for about 80 of
    Azure's ~430 parameters) is judged when ARM returns it and ERROR when ARM does not.

    A failure's fix sets `{value}`: the wanted value for `equals` and `one_of` (the first),
    spelled as Azure's allowed values spell it; the bound for `min` and `max`; for `contains`
    and `not_contains` the current set without what is forbidden and with what is missing
    appended, so nothing else listed is dropped. `contains_text` computes no value (where the
    text goes is a person's choice): its rule's fix must spell the whole value. A parameter
    Microsoft's table lists as static for the server's version gets the restart that applies it.

    Remediation: `az postgres flexible-server parameter set --subscription {subscription} --resource-group {resource_group} --server-name {server} --name {parameter} --value {value}`
    """
    expected = expectation(params)
    for server in each_server(context):
        lookup = ParameterLookup(context, server)
        parameter = lookup.require(params.name, expected)
        if isinstance(parameter, Outcome):
            yield parameter
            continue
        yield _judge(params, lookup, parameter)
