"""Findings where the change is: the plan's or template's resource, and its file and line.

Every finding on planned state is named by the resource it is about: a Terraform address
(``module.db.azurerm_postgresql_flexible_server.this``) or a template resource (its symbolic
name, or ``resources[0]`` in a classic template). With ``--iac-root DIR`` it also gets the file
and line of the resource block, found by scanning the sources, so SARIF anchors the result on
the line a pull request changes:

- Terraform: ``resource "TYPE" "NAME"`` in the ``.tf`` files of the resource's module; a
  module call is followed to a local ``source`` (``./modules/db``) or, for a registry module,
  through ``.terraform/modules/modules.json`` (what ``terraform init`` writes); a module whose
  source is not on disk is located at its ``module "NAME"`` block;
- Bicep: ``resource NAME '...'`` or ``module NAME '...'`` in the ``.bicep`` files (the compiled
  template keeps Bicep's symbolic names);
- ARM JSON: the line of the resource in the template itself.

A server the plan deletes or replaces is reported as an ``info`` finding
(``engram-audit.plan.server-replaced``): geo-redundant backup and customer-managed keys can be
chosen only when a server is created, so a plan that changes them replaces the server.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from engram_audit.collectors.iac.fixes import PlannedFixes, Where
from engram_audit.collectors.iac.terraform import parse_address
from engram_audit.model import Finding, Report, RuleInfo, Severity, Status, Summary
from engram_audit.model.report import IacResource
from engram_audit.model.snapshot import PlannedChange, PlannedResource, Snapshot

REPLACED_RULE = "engram-audit.plan.server-replaced"
REPLACED_CHECK = "plan.server_replaced"
REPLACED_TITLE = "The release keeps its flexible servers (no delete, no replacement)"
_CREATE_ONLY = ("geo_redundant_backup_enabled", "customer_managed_key")
_REMEDIATION = (
    "Keep the attribute that forces the replacement as it is, or migrate on purpose: create "
    "the new server beside the old one, restore or replicate the data into it "
    "(az postgres flexible-server restore / geo-restore), cut over, then remove the old one."
)


def locate_findings(report: Report, snapshot: Snapshot, root: Path | None) -> Report:
    """The report with each finding's plan or template resource, and a finding per server the
    plan deletes or replaces."""
    origin = snapshot.origin
    if origin is None:
        return report
    index = _Index(origin.resources, origin.kind, root)
    fixes = PlannedFixes(snapshot, index.where)
    findings = [
        finding.model_copy(
            update={
                "iac": index.resource(finding.resource),
                "remediation": fixes.fix(finding) or finding.remediation,
            }
        )
        for finding in report.findings
    ]
    rules = list(report.rules)
    changes = [_replaced(change, index) for change in origin.changes]
    if changes:
        findings += changes
        rules.append(
            RuleInfo(
                id=REPLACED_RULE,
                check=REPLACED_CHECK,
                title=REPLACED_TITLE,
                severity=Severity.INFO,
                rationale="A plan that deletes or replaces a flexible server deletes its data "
                "with it. Geo-redundant backup and customer-managed keys can be chosen only when "
                "a server is created, so a plan that changes them replaces the server.",
                remediation=_REMEDIATION,
                check_summary="The plan keeps every flexible server it manages.",
            )
        )
    ordered = tuple(sorted(findings, key=lambda f: f.sort_key))
    return report.model_copy(
        update={"findings": ordered, "rules": tuple(rules), "summary": Summary.of(ordered)}
    )


def _replaced(change: PlannedChange, index: _Index) -> Finding:
    replaced = "create" in change.actions
    forced = [path for path in change.replace_paths if path.split(".")[0] in _CREATE_ONLY]
    message = (
        f"Terraform will delete {change.address}"
        + (" and create it again" if replaced else "")
        + (f", forced by {', '.join(change.replace_paths)}" if change.replace_paths else "")
    )
    if forced:
        message += (
            "; geo-redundant backup and customer-managed keys are chosen only when a server is "
            "created, so this replaces the server and its data"
        )
    return Finding(
        rule=REPLACED_RULE,
        check=REPLACED_CHECK,
        title=REPLACED_TITLE,
        severity=Severity.INFO,
        status=Status.FAIL,
        resource=change.resource,
        expected="kept",
        actual=("replaced (" if replaced else "deleted (") + ", ".join(change.actions) + ")",
        message=message,
        remediation=_REMEDIATION,
        iac=index.resource(change.resource) or index.address(change.address),
    )


class _Index:
    """Resource ids to their plan or template resource, and that resource's file and line."""

    def __init__(
        self, resources: tuple[PlannedResource, ...], kind: str, root: Path | None
    ) -> None:
        self.by_id = {r.id.rstrip("/").casefold(): r for r in resources}
        self.kind = kind
        self.root = root

    def resource(self, resource_id: str) -> IacResource | None:
        folded = resource_id.rstrip("/").casefold()
        found = self.by_id.get(folded)
        if found is None:
            parents = [key for key in self.by_id if folded.startswith(key + "/")]
            found = self.by_id[max(parents, key=len)] if parents else None
        if found is None:
            return None
        return self._located(found.address, found.file, found.line)

    def where(self, resource_id: str) -> Where | None:
        """The resource declaring exactly this id (no parent), with its file and line: from the
        sources under --iac-root, else as the reader found it (a template's own line)."""
        found = self.by_id.get(resource_id.rstrip("/").casefold())
        if found is None:
            return None
        located = self._located(found.address, found.file, found.line)
        if located.path is not None:
            return Where(found.address, located.path, located.line)
        return Where(found.address, found.file, found.line)

    def address(self, address: str) -> IacResource:
        return self._located(address, None, None)

    def _located(self, address: str, file: str | None, line: int | None) -> IacResource:
        if self.root is None:
            return IacResource(address=address)
        located = (
            terraform_location(self.root, address)
            if self.kind == "plan"
            else bicep_location(self.root, address)
        )
        if located is None and file is not None and line is not None:
            located = (file, line)
        if located is None:
            return IacResource(address=address)
        return IacResource(address=address, path=located[0], line=located[1])


# --- Terraform -------------------------------------------------------------------------------


def _tf_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.tf")) if directory.is_dir() else []


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _block(directory: Path, pattern: re.Pattern[str]) -> tuple[Path, int, list[str]] | None:
    """The first line matching ``pattern`` in the directory's .tf files, and the file's lines."""
    for path in _tf_files(directory):
        lines = _lines(path)
        for number, line in enumerate(lines, start=1):
            if pattern.match(line):
                return path, number, lines
    return None


_SOURCE = re.compile(r'^\s*source\s*=\s*"([^"]*)"')


def _module_source(lines: list[str], start: int) -> str | None:
    """The ``source`` of the module block starting on line ``start`` (1-based)."""
    depth = 0
    for offset, line in enumerate(lines[start - 1 :]):
        if offset > 0 and depth == 1 and (match := _SOURCE.match(line)):
            return match.group(1)
        depth += line.count("{") - line.count("}")
        if depth <= 0:
            break
    return None


def _installed_modules(root: Path) -> dict[str, str]:
    """``terraform init``'s record of where each module call was installed."""
    manifest = root / ".terraform" / "modules" / "modules.json"
    try:
        document = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    modules = document.get("Modules") if isinstance(document, dict) else None
    return {
        str(entry.get("Key")): str(entry.get("Dir"))
        for entry in modules or ()
        if isinstance(entry, dict) and entry.get("Key") and entry.get("Dir")
    }


def _shown(path: Path) -> str:
    """The file as a path from the directory engram-audit runs in (SARIF's %SRCROOT%): the
    sources were found under --iac-root as given."""
    return os.path.normpath(path)


def terraform_location(root: Path, address_text: str) -> tuple[str, int] | None:
    """File and line of a Terraform address's resource block (or of the module call that
    holds it, when the module's source is not on disk)."""
    address = parse_address(address_text)
    if address is None:
        return None
    directory = root
    calls: list[str] = []
    call_location: tuple[str, int] | None = None
    for call, _ in address.modules:
        found = _block(directory, re.compile(rf'^\s*module\s+"{re.escape(call)}"\s*\{{'))
        if found is None:
            return call_location
        path, line, lines = found
        calls.append(call)
        call_location = (_shown(path), line)
        source = _module_source(lines, line)
        installed = _installed_modules(root).get(".".join(calls))
        if source is not None and source.startswith(("./", "../")):
            directory = Path(os.path.normpath(directory / source))
        elif installed is not None and (root / installed).is_dir():
            directory = root / installed
        else:
            return call_location
    pattern = re.compile(
        rf'^\s*resource\s+"{re.escape(address.type)}"\s+"{re.escape(address.name)}"\s*\{{'
    )
    found = _block(directory, pattern)
    if found is None:
        return call_location  # the module's sources say otherwise: point at the call
    return _shown(found[0]), found[1]


# --- Bicep -----------------------------------------------------------------------------------


def _bicep_files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    yield from sorted(root.rglob("*.bicep"), key=lambda p: (len(p.parts), str(p)))


def bicep_location(root: Path, address: str) -> tuple[str, int] | None:
    """File and line of the Bicep declaration a compiled template resource came from: the
    symbolic name before any copy index or nested deployment (``pg::extensions``, a resource
    nested in its parent, is declared as ``resource extensions``)."""
    symbol = re.split(r"[\[/]", address, maxsplit=1)[0].rsplit("::", 1)[-1]
    if not symbol or symbol.startswith("resources"):
        return None
    pattern = re.compile(rf"^\s*(resource|module)\s+{re.escape(symbol)}\s+'")
    for path in _bicep_files(root):
        for number, line in enumerate(_lines(path), start=1):
            if pattern.match(line):
                return _shown(path), number
    return None
