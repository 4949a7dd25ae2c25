"""PgAudit's session logging, read the way pgaudit itself reads ``pgaudit.log``."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field, field_validator

from engram_audit.checks.azure.common import ParameterLookup, configuration_id, each_server
from engram_audit.checks.azure.params import PARAMETER_FACTS, PARAMETER_READS, parameter_facts
from engram_audit.checks.base import CheckContext, Outcome, Params, check, errored, verdict
from engram_audit.model.base import Source
from engram_audit.model.values import text

# pgaudit.c (check_pgaudit_log): each class and the classes it sets; MISC includes MISC_SET,
# ALL is every class, NONE is none.
CLASSES: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"write"}),
    "function": frozenset({"function"}),
    "role": frozenset({"role"}),
    "ddl": frozenset({"ddl"}),
    "misc": frozenset({"misc", "misc_set"}),
    "misc_set": frozenset({"misc_set"}),
}
ALL = frozenset().union(*CLASSES.values())
_SPECIAL = {"all": ALL, "none": frozenset[str]()}


def logged_classes(value: str) -> frozenset[str] | str:
    """The classes a ``pgaudit.log`` value logs, or the token pgaudit would reject.

    pgaudit splits the list at commas (blanks around items ignored, any case) and applies the
    items in order: a class adds its bits, ``-class`` removes them, so ``all,-misc`` logs every
    class but MISC and MISC_SET while ``-misc,all`` logs everything.
    """
    logged: frozenset[str] = frozenset()
    for raw in value.split(","):
        token = raw.strip().casefold()
        if not token:
            continue
        subtract = token.startswith("-")
        name = token[1:] if subtract else token
        bits = _SPECIAL.get(name, CLASSES.get(name))
        if bits is None:
            return raw.strip()
        logged = logged - bits if subtract else logged | bits
    return logged


def with_classes(value: str, missing: list[str]) -> str:
    """``value`` extended to log ``missing`` too, nothing it logs dropped: the classes appended
    (pgaudit applies items in order, so an appended class is logged whatever came before), in
    lower case as Azure's allowed values spell them; a value that logs nothing (``none``,
    empty) is replaced by the classes alone."""
    logged = logged_classes(value)
    if not missing:
        return value
    if not value.strip() or logged == frozenset():
        return ",".join(missing)
    return ",".join([*(item.strip() for item in value.split(",") if item.strip()), *missing])


class PgAuditLogParams(Params):
    classes: list[str] = Field(
        default_factory=lambda: ["ddl", "role"],
        min_length=1,
        description="Statement classes pgaudit.log must log (read, write, function, role, ddl, "
        "misc, misc_set); ALL in the value logs every class",
    )

    @field_validator("classes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [item for item in value if item.strip().casefold() not in CLASSES]
        if unknown:
            raise ValueError(
                f"unknown pgaudit class {', '.join(unknown)}; pgaudit's classes are "
                + ", ".join(CLASSES)
            )
        return [item.strip().casefold() for item in value]


@check(
    "azure.param.pgaudit_log",
    sources=[Source.AZURE],
    params=PgAuditLogParams,
    reads=PARAMETER_READS,
    planned=True,
    facts=PARAMETER_FACTS,
)
def pgaudit_log(params: PgAuditLogParams, context: CheckContext) -> Iterator[Outcome]:
    """PgAudit logs the required statement classes (`pgaudit.log`, by default DDL and ROLE).

    Azure's default is `none`: with PgAudit preloaded nothing is audited until `pgaudit.log`
    names classes. The value is read as pgaudit reads it (pgaudit.c, `check_pgaudit_log`): a
    comma-separated list in any case, applied in order, where `ALL` is every class, `MISC`
    includes `MISC_SET` and `-class` removes a class, so `all,-misc` still logs DDL and ROLE.
    The default requirement, DDL and ROLE, is what Azure Policy's "Configure pgaudit.log to
    include role, ddl, and misc" checks before it deploys `role,ddl,misc`. A token pgaudit would
    reject is ERROR, as is a parameter ARM did not return although Azure offers it.

    A failure's fix keeps what the value logs and appends the missing classes (`none` becomes
    the missing classes alone).

    Remediation: `az postgres flexible-server parameter set --subscription {subscription} --resource-group {resource_group} --server-name {server} --name {parameter} --value {value}`
    (with `pgaudit` in `shared_preload_libraries` and `CREATE EXTENSION pgaudit` in the database).
    """
    name = "pgaudit.log"
    wanted = frozenset(params.classes)
    expected = "logs " + ", ".join(sorted(c.upper() for c in wanted))
    for server in each_server(context):
        lookup = ParameterLookup(context, server)
        parameter = lookup.require(name, expected)
        if isinstance(parameter, Outcome):
            yield parameter
            continue
        resource = configuration_id(server, name)
        value = parameter.value or ""
        actual = text(parameter.value) if parameter.value else "(empty)"
        logged = logged_classes(value)
        if isinstance(logged, str):
            yield errored(
                resource,
                f"pgaudit.log={actual}: {logged!r} is not a pgaudit class (pgaudit would reject "
                "the value)",
                expected,
            )
            continue
        missing = sorted(c.upper() for c in wanted - logged)
        problems = [f"does not log {', '.join(missing)}"] if missing else []
        if outside := lookup.outside_allowed(name, parameter):
            problems.append(outside)
        yield verdict(
            not missing,
            resource,
            expected,
            actual,
            "; ".join(problems),
            facts=parameter_facts(
                lookup, name, parameter.value, with_classes(value, sorted(wanted - logged))
            ),
        )
