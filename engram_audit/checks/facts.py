"""The facts a check attaches to an outcome, and what each one is.

A finding's fix is rendered from its facts (``engram_audit.remediation``): a policy's
``remediation`` text is a template over them (``{server_id}``, ``{table}``, ...). Each fact has
a kind that says how it is quoted for the target of the text (shell words for ``az``,
``quote_ident`` or literals for SQL; SQL the audited database wrote, such as an index's
definition, is only ever shown inside a SQL comment). A check declares the facts it provides with
``@check(..., facts=...)``; the facts every check of a source gets are in ``SOURCE_FACTS``,
and the loader rejects a template naming any other fact.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from engram_audit.model.base import Source

FactValue = str | tuple[str, ...]
"""A tuple-valued fact (several firewall rules) renders its template once per value; several
tuple-valued facts of one finding are parallel (the i-th alert has the i-th condition)."""
Facts = Mapping[str, FactValue]


class FactKind(Enum):
    TEXT = "text"  # a value: a shell word for az, a literal for SQL
    IDENTIFIER = "identifier"  # a SQL name (quote_ident)
    QUALIFIED = "qualified"  # a SQL name qualified by the finding's {schema}
    PERSON = "person"  # only a person can supply it: the rule's params, else a shell variable
    STATEMENT = "statement"  # SQL the audited database wrote: only ever inside a SQL comment


@dataclass(frozen=True)
class Fact:
    kind: FactKind
    description: str
    variable: str = ""  # PERSON facts: the shell variable asked for when the policy is silent


FACTS: dict[str, Fact] = {
    "origin": Fact(
        FactKind.TEXT,
        "where the finding was judged: deployed, or plan / template (planned state, whose fix "
        "names the source's attribute instead of rendering the rule's template)",
    ),
    "server_id": Fact(FactKind.TEXT, "the flexible server's ARM resource id"),
    "subscription": Fact(FactKind.TEXT, "the server's subscription id"),
    "resource_group": Fact(FactKind.TEXT, "the server's resource group"),
    "server": Fact(FactKind.TEXT, "the server's name"),
    "parameter": Fact(FactKind.TEXT, "the server parameter"),
    "current": Fact(FactKind.TEXT, "the parameter's current value"),
    "value": Fact(FactKind.TEXT, "the value to set (lists: current plus what is missing)"),
    "restart": Fact(FactKind.TEXT, "'required' when the change takes effect after a restart"),
    "setting": Fact(
        FactKind.TEXT,
        "what a fix sets on the server, as ARM names it in the server resource: "
        "path=value (properties.backup.backupRetentionDays=35), the path alone when no one "
        "value is implied; administrators=N: N Entra administrators; "
        "metric_alerts.METRIC.AGGREGATION=THRESHOLD: an alert above the threshold "
        "(one fix per setting)",
    ),
    "firewall_rule": Fact(FactKind.TEXT, "a firewall rule's name (one fix per rule)"),
    "alert": Fact(FactKind.TEXT, "a missing alert's name in the rule (one fix per alert)"),
    "condition": Fact(
        FactKind.TEXT, "that alert's condition as az writes it (avg storage_percent > 90)"
    ),
    "unscripted": Fact(
        FactKind.TEXT,
        "why no command fixes this outcome and what a person does instead: the finding's fix "
        "is this text, not the rule's template",
    ),
    "database": Fact(FactKind.TEXT, "the PostgreSQL database"),
    "schema": Fact(FactKind.IDENTIFIER, "the schema of the table or index"),
    "table": Fact(FactKind.QUALIFIED, "the table, qualified by its schema in SQL"),
    "column": Fact(FactKind.IDENTIFIER, "the column"),
    "index": Fact(FactKind.QUALIFIED, "the index, qualified by its schema in SQL"),
    "index_definition": Fact(
        FactKind.STATEMENT,
        "the statement that re-creates the index: its definition as pg_get_indexdef shows it, "
        "built CONCURRENTLY; shown only inside a SQL comment, on one line",
    ),
    "hnsw_index": Fact(
        FactKind.IDENTIFIER,
        "a free name for the column's new HNSW index: <table>_<column>_hnsw_idx, the name Zep "
        "legacy gives its own",
    ),
    "extension": Fact(FactKind.IDENTIFIER, "the extension"),
    "opclass": Fact(FactKind.IDENTIFIER, "the operator class for the column's type"),
    "action_group_id": Fact(
        FactKind.PERSON, "the resource id of the Azure Monitor action group", "ACTION_GROUP_ID"
    ),
    "entra_admin_object_id": Fact(
        FactKind.PERSON,
        "the object id of the Entra group to make administrator",
        "ENTRA_ADMIN_OBJECT_ID",
    ),
    "entra_admin_name": Fact(
        FactKind.PERSON, "the display name of that Entra group", "ENTRA_ADMIN_NAME"
    ),
    "log_analytics_workspace_id": Fact(
        FactKind.PERSON,
        "the resource id of the Log Analytics workspace",
        "LOG_ANALYTICS_WORKSPACE_ID",
    ),
}

SOURCE_FACTS: dict[Source, frozenset[str]] = {
    Source.AZURE: frozenset({"origin", "server_id", "subscription", "resource_group", "server"}),
    Source.POSTGRES: frozenset({"origin", "database"}),
    Source.DSN: frozenset({"origin"}),
}
PERSON_FACTS = frozenset(name for name, fact in FACTS.items() if fact.kind is FactKind.PERSON)

_ARM_SERVER = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)"
    r"/providers/Microsoft\.DBforPostgreSQL/flexibleServers/(?P<server>[^/]+)"
    r"(?:/(?P<child>configurations|firewallRules)/(?P<name>[^/]+))?/?$",
    re.IGNORECASE,
)


def arm_facts(resource_id: str) -> dict[str, FactValue]:
    """Server facts from a flexible server's ARM id or one of its children's; {} for others."""
    match = _ARM_SERVER.match(resource_id)
    if match is None:
        return {}
    facts: dict[str, FactValue] = {
        "server_id": resource_id[: match.end("server")],
        "subscription": match["subscription"],
        "resource_group": match["resource_group"],
        "server": match["server"],
    }
    child = (match["child"] or "").casefold()
    if child == "configurations":
        facts["parameter"] = match["name"]
    elif child == "firewallrules":
        facts["firewall_rule"] = match["name"]
    return facts


def no_downgrade(subject: str, major: object, allowed: str, newest: object) -> str:
    """The ``unscripted`` fact of a server newer than every allowed major version: Azure's
    in-place major version upgrade only moves forward (learn.microsoft.com, "Major version
    upgrades in Azure Database for PostgreSQL"), so no command brings it back."""
    return (
        f"{subject} runs PostgreSQL {major}, newer than every version the policy allows "
        f"({allowed}), and a major version is upgraded in place but never back: either create a "
        f"PostgreSQL {newest} server and move the data (pg_dump/pg_restore), or allow {major} in "
        f"the policy"
    )


def placeholders(template: str) -> list[str]:
    """The fact names a template uses; ValueError for a malformed one (a lone ``{``)."""
    names = []
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if spec or conversion or not re.fullmatch(r"[a-z_]+", field):
            raise ValueError(f"placeholder {{{field}}} is not a fact name")
        names.append(field)
    return names
