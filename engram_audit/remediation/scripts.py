"""Reviewed fix scripts from a report's failures: ``azure.sh``, ``postgres-<database>.sql`` and
a README saying what each does and what needs a person. Nothing here runs them.

- ``azure.sh``: one block per server, ``set -euo pipefail``, each command under a comment with
  its rule, expected and actual value. Deleting a firewall rule first asks whether it still
  exists, so a second run does nothing; parameter sets and updates are idempotent in Azure.
  A command two rules share (a SKU's tier and size) runs once. Static parameters are set last
  and followed by one restart of the server.
- ``postgres-<database>.sql`` (psql): statements that may run in a transaction come first in
  one ``BEGIN ... COMMIT``; those PostgreSQL refuses inside a transaction block
  (``CREATE/DROP INDEX CONCURRENTLY``, ``REINDEX ... CONCURRENTLY``, ``VACUUM``) follow, each
  marked and on its own. ``ON_ERROR_STOP`` stops at the first error, and ``AUTOCOMMIT`` is set
  on whatever a ``.psqlrc`` says, so those statements really run outside a transaction. What
  a fix leaves to a person (re-creating a dropped invalid index) is a commented statement
  under it, on one line, that nothing in the audited database can end early.
- Fixes that are prose (a new server for geo-redundant backups or customer-managed keys, an
  archival job) are listed in the README as decisions for a person, never improvised.
- Failures of a plan or template (the report of ``check --terraform-plan`` / ``--arm-template``)
  are about resources not deployed: never in ``azure.sh``; ``iac.md`` lists each fix to make in
  the source, by resource address, file and line.
"""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engram_audit.model import Finding, Report, Status
from engram_audit.remediation import NON_TRANSACTIONAL, fact_value, sql_comments, target_of

_RESTART = re.compile(r"\s*&&\s*az postgres flexible-server restart --ids \S+\s*#.*$")
_ORDER = ("DROP", "CREATE", "REINDEX", "VACUUM")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _comment(finding: Finding) -> str:
    return _one_line(
        f"# {finding.rule} ({finding.severity.value}) {finding.resource}: "
        f"expected {finding.expected or '-'}; actual {finding.actual or '-'}"
    )


def split_sql(text: str) -> list[tuple[str, str]]:
    """(statement, comments) pairs of a rendered SQL fix, quotes and comments respected.

    Whitespace is collapsed outside quotes only: a quoted name or literal is kept byte for
    byte, so the statement still names the same object. The ``--`` comments after a statement
    (a reason, a commented statement) are its comments, one per line, each on one line.
    """
    statements: list[tuple[str, str]] = []
    current: list[str] = []

    def close() -> None:
        statement = "".join(current).strip()
        if statement:
            statements.append((statement + ";", ""))
        current.clear()

    i, quote = 0, ""
    while i < len(text):
        char = text[i]
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current.append(char)
        elif text.startswith("--", i):
            _, end = sql_comments(text[i:])[0]
            end += i
            if statements and not "".join(current).strip():
                previous, said = statements[-1]
                line = _one_line(text[i + 2 : end])
                statements[-1] = (previous, f"{said}\n{line}" if said else line)
            i = end
            continue
        elif char == ";":
            close()
        elif char.isspace():
            if current and not current[-1].isspace():
                current.append(" ")
        else:
            current.append(char)
        i += 1
    close()
    return statements


@dataclass
class _Server:
    commands: list[str] = field(default_factory=list)
    static: list[str] = field(default_factory=list)
    restart: str = ""
    decisions: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)


def _firewall_guard(command: str) -> str:
    if not command.startswith("az postgres flexible-server firewall-rule delete "):
        return command
    words = shlex.split(command, comments=True)
    show = ["az", "postgres", "flexible-server", "firewall-rule", "show"] + [
        w for w in words[5:] if w not in ("--yes", "-y")
    ]
    return f"if {shlex.join(show)} >/dev/null 2>&1; then\n  {command}\nfi"


def _failures(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.status is Status.FAIL and f.remediation]


_PUBLIC_ACCESS = "azure.network.public_access"
_PRIVATE_CONNECTIVITY = "azure.network.private_connectivity"


def held_back(report: Report) -> dict[int, str]:
    """Commands azure.sh must not run yet, by finding index, with the reason a person reads.

    Disabling public access while the same server has no approved private endpoint (its
    private-connectivity rule failed or could not be judged) would leave the application no
    way in: that command waits for a person, after the endpoint is approved and the
    application connects through it.
    """
    unreachable = {
        fact_value(f.facts.get("server_id", "")).casefold()
        for f in report.findings
        if f.check == _PRIVATE_CONNECTIVITY and f.status in (Status.FAIL, Status.ERROR)
    }
    unreachable.discard("")
    return {
        index: (
            "disabling public access now would cut the application off: the server has no "
            "approved private endpoint yet. Run it once the private endpoint is approved and "
            "the application connects through it"
        )
        for index, f in enumerate(report.findings)
        if f.status is Status.FAIL
        and f.check == _PUBLIC_ACCESS
        and target_of(f.remediation) == "shell"
        and fact_value(f.facts.get("server_id", "")).casefold() in unreachable
    }


def scripted(report: Report) -> list[Finding]:
    """The failures azure.sh runs a command for; the others are listed for a person."""
    waiting = held_back(report)
    return [
        f
        for index, f in enumerate(report.findings)
        if f.status is Status.FAIL
        and f.remediation
        and not planned(f)
        and target_of(f.remediation) == "shell"
        and "server_id" in f.facts
        and index not in waiting
    ]


def planned(finding: Finding) -> bool:
    """A finding on a plan or template (its resource is not deployed)."""
    return finding.iac is not None or fact_value(finding.facts.get("origin", "")) in (
        "plan",
        "template",
    )


def _code(text: str) -> str:
    return "`" + _one_line(text).replace("`", "'") + "`"


_FENCE = "`" * 3


def iac_fixes(findings: Iterable[Finding]) -> str:
    """``iac.md``: the fix of each failure of a plan or template, where it is in the source."""
    out = [
        "# Fixes in the Terraform or Bicep/ARM source",
        "",
        "These failures are about resources a plan or template declares, not deployed ones:",
        "change the source where each says, then plan (or build) and audit again before",
        "applying. Nothing here is run against Azure.",
    ]
    for number, finding in enumerate(findings, start=1):
        iac = finding.iac
        where = _code(iac.address) if iac is not None else _code(finding.resource)
        if iac is not None and iac.path:
            where += " at " + _code(f"{iac.path}:{iac.line}" if iac.line else iac.path)
        out += [
            "",
            f"## {number}. {_code(finding.rule)} ({finding.severity.value})",
            "",
            f"Resource {where}: expected {_code(finding.expected or '-')}, "
            f"actual {_code(finding.actual or '-')}.",
            "",
            _FENCE + "text",
            *(line.replace(_FENCE, "'" * 3) for line in finding.remediation.splitlines()),
            _FENCE,
        ]
    return "\n".join(out) + "\n"


def azure_script(findings: Iterable[Finding], waiting: Mapping[int, str] | None = None) -> str:
    """``waiting``: reasons by position in ``findings`` for commands held back for a person."""
    servers: dict[str, _Server] = defaultdict(_Server)
    for position, finding in enumerate(findings):
        server_id = fact_value(finding.facts.get("server_id", ""))
        if not server_id:
            continue
        block = servers[server_id]
        fix = finding.remediation
        if target_of(fix) != "shell":
            block.decisions.append(f"{_comment(finding)}\n#   needs a person: {_one_line(fix)}")
            continue
        reason = (waiting or {}).get(position)
        if reason:
            block.decisions.append(
                f"{_comment(finding)}\n#   needs a person: {_one_line(reason)}:\n"
                + "\n".join(f"#   {line}" for line in fix.splitlines())
            )
            continue
        static = finding.facts.get("restart") == "required"
        for line in fix.splitlines():
            restart = _RESTART.search(line)
            if restart:
                line = line[: restart.start()]
                block.restart = (
                    f"az postgres flexible-server restart --ids {shlex.quote(server_id)}"
                )
            command = shlex.split(line, comments=True)
            key = shlex.join(command)
            if key in block.seen:  # two rules, one fix (SKU tier and size): run it once
                entry = f"{_comment(finding)}\n#   the same command as above"
            else:
                block.seen.add(key)
                entry = f"{_comment(finding)}\n{_firewall_guard(line)}"
            (block.static if static else block.commands).append(entry)
    out = [
        "#!/usr/bin/env bash",
        "# Written by engram-audit remediate from a report's failures. Review before running:",
        "# every command names the server the audit found; values a person must supply are",
        '# required variables ("${NAME:?...}"). Safe to run twice.',
        "set -euo pipefail",
    ]
    for server_id in sorted(servers):
        block = servers[server_id]
        out += ["", f"# ==== {server_id}"]
        out += block.commands
        if block.static:
            out.append("# Static parameters: Azure applies them at the restart below.")
            out += block.static
        if block.restart:
            out.append(block.restart)
        if block.decisions:
            out.append("# Not scripted (see README.md):")
            out += block.decisions
    return "\n".join(out) + "\n"


def _kind(statement: str) -> int:
    word = statement.split(None, 1)[0].upper()
    return _ORDER.index(word) if word in _ORDER else len(_ORDER)


@dataclass(frozen=True)
class _Entry:
    """One statement of a SQL script: the finding it fixes, then the statement, then the
    comments that followed it in the fix (a reason, a commented statement to review)."""

    finding: str
    statement: str
    comments: str

    def lines(self) -> list[str]:
        notes = [f"-- {line}" for line in self.comments.splitlines() if line]
        return [self.finding, self.statement, *notes]


def sql_scripts(findings: Iterable[Finding]) -> dict[str, str]:
    """``postgres-<database>.sql`` per database."""
    by_database: dict[str, tuple[list[_Entry], list[_Entry]]] = defaultdict(lambda: ([], []))
    for finding in findings:
        if target_of(finding.remediation) != "sql":
            continue
        database = fact_value(finding.facts.get("database", "")) or "unknown"
        in_transaction, alone = by_database[database]
        header = _comment(finding).replace("#", "--", 1)
        for statement, comments in split_sql(finding.remediation):
            entry = _Entry(header, statement, comments)
            (alone if NON_TRANSACTIONAL.match(statement) else in_transaction).append(entry)
    files = {}
    for database, (in_transaction, alone) in sorted(by_database.items()):
        out = [
            f"-- Written by engram-audit remediate for database {_one_line(database)}.",
            f"-- Review, then: psql -X -d {_one_line(shlex.quote(database))} -f THIS_FILE",
            "-- (as the tables' owner or an administrator: the audit role is read-only)",
            "\\set ON_ERROR_STOP on",
            "\\set AUTOCOMMIT on",
        ]
        if in_transaction:
            out += ["", "BEGIN;"]
            for entry in in_transaction:
                out += entry.lines()
            out.append("COMMIT;")
        for entry in sorted(alone, key=lambda e: _kind(e.statement)):
            out += [
                "",
                "-- cannot run inside a transaction block: runs on its own (autocommit)",
                *entry.lines(),
            ]
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", database)
        files[f"postgres-{safe}.sql"] = "\n".join(out) + "\n"
    return files


def readme(
    report: Report,
    files: Iterable[str],
    decisions: list[Finding],
    reasons: Mapping[int, str] | None = None,
) -> str:
    """``reasons``: why a command waits for a person, by ``id()`` of its finding."""
    files = list(files)
    out = [
        f"# Fixes for {report.environment}",
        "",
        "Written by `engram-audit remediate` from the report's failures. Nothing has been run.",
        "Flow: audit -> remediate -> review these files -> apply -> audit again.",
        "",
        "| file | what it does |",
        "|---|---|",
    ]
    for name in sorted(files):
        if name == "iac.md":
            what = (
                "fixes to make in the Terraform or Bicep/ARM source (resource address, file and "
                "line) for failures of a plan or template; nothing in it runs against Azure"
            )
        elif name == "azure.sh":
            what = (
                "Azure CLI fixes, one block per server (`bash azure.sh` after `az login`); "
                "static parameters are followed by one restart of that server"
            )
        else:
            what = (
                "SQL fixes for one database (`psql -X -d DB -f FILE`, as the tables' owner or "
                "an administrator): a transaction first, then statements that cannot run in "
                "one (CREATE INDEX CONCURRENTLY, VACUUM); commented statements under a fix "
                "(re-creating a dropped invalid index) are for you to decide"
            )
        out.append(f"| `{name}` | {what} |")
    out += ["", "## Needs a human decision", ""]
    if not decisions:
        scripted = "a fix in the source (`iac.md`)" if "iac.md" in files else "a scripted fix"
        out.append(f"Nothing: every failure has {scripted}.")
    for finding in decisions:
        out.append(
            f"- `{finding.rule}` on `{_one_line(finding.resource)}`: "
            + (f"{_one_line(reason)}: " if (reason := (reasons or {}).get(id(finding))) else "")
            + f"{_one_line(finding.remediation)}"
        )
    out += [
        "",
        "Geo-redundant backups and customer-managed keys are fixed when a server is created:",
        "they need a new server and a cut-over, which these scripts do not attempt.",
        "Variables such as `ACTION_GROUP_ID` must be set before `azure.sh` runs (`set -u`).",
    ]
    if any(name.endswith(".sql") for name in files):
        out += [
            "Run `azure.sh` before the SQL: `CREATE EXTENSION` works only for extensions in",
            "`azure.extensions`, and some (pg_stat_statements, pgaudit) also need",
            "`shared_preload_libraries`. A `CREATE INDEX CONCURRENTLY` that fails leaves an",
            "INVALID index behind: audit again, and the next script drops it.",
        ]
    return "\n".join(out) + "\n"


def build(report: Report) -> dict[str, str]:
    """File name -> content for the failures of ``report``."""
    everything = _failures(report)
    failures = [f for f in everything if not planned(f)]
    files: dict[str, str] = {}
    in_source = [f for f in everything if planned(f)]
    if in_source:
        files["iac.md"] = iac_fixes(in_source)
    waiting = held_back(report)
    deployed = {id(f) for f in failures}
    azure = [
        (i, f)
        for i, f in enumerate(report.findings)
        if id(f) in deployed and "server_id" in f.facts
    ]
    if azure:
        files["azure.sh"] = azure_script(
            [f for _, f in azure],
            {n: waiting[i] for n, (i, _) in enumerate(azure) if i in waiting},
        )
    files.update(sql_scripts(failures))
    held = {id(f): waiting[i] for i, f in enumerate(report.findings) if i in waiting}
    decisions = [
        f
        for f in failures
        if target_of(f.remediation) == "text"
        or (target_of(f.remediation) == "shell" and "server_id" not in f.facts)
        or id(f) in held
    ]
    files["README.md"] = readme(report, [n for n in files if n != "README.md"], decisions, held)
    return files
