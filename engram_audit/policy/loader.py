"""Policy files -> a validated ``Policy``: schema checks, ``extends:`` merging by rule id, params.

Every problem in every file is collected and reported together with file, line, column and key
path, so a user fixes a broken policy in one pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engram_audit.checks import Check, get_check
from engram_audit.checks.azure.controls import control_catalogue
from engram_audit.checks.facts import PERSON_FACTS, placeholders
from engram_audit.errors import InputError, Problem
from engram_audit.inputs.files import path_name_problem, special_kind
from engram_audit.inputs.yaml_source import KeyPath, SourceDocument, load_document, schema_problems
from engram_audit.model import ControlRef, Policy, PostgresScope, Rule, Severity, SourceLocation
from engram_audit.policy.builtin import BUILTIN_DISPLAY, is_builtin
from engram_audit.remediation import misplaced_statements
from engram_audit.schemas import POLICY_SCHEMA, shipped

POLICY_SUFFIXES = (".yaml", ".yml", ".json")
REQUIRED_RULE_FIELDS = ("check", "severity", "title")
# The shipped chain is prod -> uat -> base; these only stop a runaway or hostile graph.
MAX_EXTENDS_DEPTH = 32
MAX_POLICY_FILES = 128


def display_path(path: Path) -> str:
    """Paths as users and SARIF want them: relative to the working directory when inside it;
    a shipped policy as ``builtin-policies/<name>`` (so a report says the built-in set was used)."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        pass
    return f"{BUILTIN_DISPLAY}/{resolved.name}" if is_builtin(resolved) else resolved.as_posix()


@dataclass
class _Anchor:
    document: SourceDocument
    key_path: KeyPath

    def problem(self, message: str, *, suffix: KeyPath = ()) -> Problem:
        return self.document.problem((*self.key_path, *suffix), message)

    def location(self) -> SourceLocation:
        line, column = self.document.position(self.key_path)
        return SourceLocation(path=self.document.path, line=line, column=column)


@dataclass
class _RuleDraft:
    fields: dict[str, Any]
    anchor: _Anchor
    params: dict[str, Any] = field(default_factory=dict)
    param_anchors: dict[str, _Anchor] = field(default_factory=dict)
    remediation_anchor: _Anchor | None = None
    remediation_params: dict[str, Any] = field(default_factory=dict)
    remediation_param_anchors: dict[str, _Anchor] = field(default_factory=dict)


@dataclass
class _Layered:
    environment: str | None = None
    description: str = ""
    scope: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, _RuleDraft] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _extends_list(document: SourceDocument) -> list[tuple[str, KeyPath]]:
    raw = document.data.get("extends")
    if isinstance(raw, str):
        return [(raw, ("extends",))]
    if isinstance(raw, list):
        return [(item, ("extends", i)) for i, item in enumerate(raw) if isinstance(item, str)]
    return []


class _PolicyReader:
    """Reads one policy and its bases. Each file is read and layered once, however many files
    extend it (a chain of files each extending the next twice would otherwise be read 2^n
    times), and the extends graph is bounded in depth and in size."""

    def __init__(self, documents: dict[Path, SourceDocument] | None = None) -> None:
        self.problems: list[Problem] = []
        self._layered: dict[Path, _Layered] = {}
        # Parsed files, shared by the readers of one validate run: a base that five
        # environments extend is parsed once, not once per environment.
        self._documents = {} if documents is None else documents

    def read(self, path: Path, chain: tuple[Path, ...] = ()) -> _Layered:
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError, ValueError) as error:  # RuntimeError: a symlink loop
            self.problems.append(Problem(str(path), 1, 1, "", f"cannot read file: {error}"))
            return _Layered()
        known = self._layered.get(resolved)
        if known is not None:
            return known
        layered = self._layered[resolved] = self._read(path, resolved, chain)
        return layered

    def _read(self, path: Path, resolved: Path, chain: tuple[Path, ...]) -> _Layered:
        document = self._documents.get(resolved)
        if document is None:
            try:
                document = load_document(path, display_path(path))
            except InputError as error:
                self.problems.extend(error.problems)
                return _Layered()
            self._documents[resolved] = document
        if not isinstance(document.data, dict):
            self.problems.append(document.problem((), "a policy file must be a mapping of keys"))
            return _Layered()
        self.problems.extend(schema_problems(document, shipped(POLICY_SCHEMA)))

        layered = _Layered()
        for reference, key_path in _extends_list(document):
            base_path = self._base_path(document, key_path, resolved, reference, chain)
            if base_path is not None:
                self._merge(layered, self.read(base_path, (*chain, resolved)))
        self._apply(layered, document)
        return layered

    def _base_path(
        self,
        document: SourceDocument,
        key_path: KeyPath,
        resolved: Path,
        reference: str,
        chain: tuple[Path, ...],
    ) -> Path | None:
        """The base file ``reference`` names, or None with a problem at the ``extends`` line."""
        invalid = path_name_problem(reference)
        if invalid:
            self.problems.append(
                document.problem(key_path, f"invalid base file name: it {invalid}")
            )
            return None
        if len(chain) + 1 >= MAX_EXTENDS_DEPTH:
            self.problems.append(
                document.problem(key_path, f"extends chain deeper than {MAX_EXTENDS_DEPTH} files")
            )
            return None
        if len(self._layered) >= MAX_POLICY_FILES:
            self.problems.append(
                document.problem(key_path, f"more than {MAX_POLICY_FILES} files extended")
            )
            return None
        try:
            base_path = (resolved.parent / reference).resolve()
            mode = base_path.stat().st_mode
        except FileNotFoundError:
            self.problems.append(document.problem(key_path, f"base file not found: {reference}"))
            return None
        except (OSError, RuntimeError, ValueError) as error:
            self.problems.append(
                document.problem(key_path, f"cannot read base file {reference}: {error}")
            )
            return None
        if base_path in (*chain, resolved):
            cycle = " -> ".join(display_path(p) for p in (*chain, resolved, base_path))
            self.problems.append(document.problem(key_path, f"extends cycle: {cycle}"))
            return None
        kind = special_kind(mode)
        if kind:
            self.problems.append(
                document.problem(key_path, f"base file {reference} is {kind}, not a regular file")
            )
            return None
        return base_path

    def _merge(self, into: _Layered, base: _Layered) -> None:
        into.environment = base.environment or into.environment
        into.description = base.description or into.description
        into.scope.update(base.scope)
        for rule_id, draft in base.rules.items():
            # A copy: the base is shared by every file extending it, and _apply updates drafts.
            into.rules[rule_id] = _RuleDraft(
                fields=dict(draft.fields),
                anchor=draft.anchor,
                params=dict(draft.params),
                param_anchors=dict(draft.param_anchors),
                remediation_anchor=draft.remediation_anchor,
                remediation_params=dict(draft.remediation_params),
                remediation_param_anchors=dict(draft.remediation_param_anchors),
            )
        into.files.extend(f for f in base.files if f not in into.files)

    def _apply(self, layered: _Layered, document: SourceDocument) -> None:
        data = document.data
        layered.files.append(document.path)
        if isinstance(data.get("environment"), str):
            layered.environment = data["environment"]
        if isinstance(data.get("description"), str):
            layered.description = data["description"]
        if isinstance(data.get("scope"), dict):
            layered.scope.update(data["scope"])
        rules = data.get("rules")
        if not isinstance(rules, list):
            return
        seen: dict[str, int] = {}
        for index, raw in enumerate(rules):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue
            rule_id = raw["id"]
            anchor = _Anchor(document, ("rules", index))
            if rule_id in seen:
                first = document.position(("rules", seen[rule_id]))[0]
                self.problems.append(
                    anchor.problem(
                        f"duplicate rule id {rule_id!r} (first at line {first})", suffix=("id",)
                    )
                )
                continue
            seen[rule_id] = index
            draft = layered.rules.get(rule_id)
            if draft is None:
                draft = layered.rules[rule_id] = _RuleDraft(fields={}, anchor=anchor)
            draft.anchor = anchor
            draft.fields.update(
                {k: v for k, v in raw.items() if k not in ("params", "remediation_params")}
            )
            if "remediation" in raw:
                draft.remediation_anchor = _Anchor(document, ("rules", index, "remediation"))
            params = raw.get("params")
            if isinstance(params, dict):
                draft.params = _deep_merge(draft.params, params)
                for key in params:
                    draft.param_anchors[key] = _Anchor(document, ("rules", index, "params", key))
            given = raw.get("remediation_params")
            if isinstance(given, dict):
                draft.remediation_params.update(given)
                for key in given:
                    draft.remediation_param_anchors[key] = _Anchor(
                        document, ("rules", index, "remediation_params", key)
                    )

    def _already_reported(self, problem: Problem) -> bool:
        """The schema and the params model can both reject one value; say it once."""
        return any(p.path == problem.path and p.key_path == problem.key_path for p in self.problems)

    def build_rules(self, layered: _Layered, complete: bool) -> list[Rule]:
        built = []
        for rule_id, draft in layered.rules.items():
            fields = draft.fields
            enabled = fields.get("enabled", True) is not False
            missing = [name for name in REQUIRED_RULE_FIELDS if name not in fields]
            if missing:
                if complete and enabled:
                    self.problems.append(
                        draft.anchor.problem(
                            f"rule {rule_id!r} has no {', '.join(missing)}: a rule that no base file "
                            "declares needs check, severity and title"
                        )
                    )
                continue
            check = get_check(str(fields["check"]))
            if check is None:
                continue  # the schema already reported the unknown check id at its line
            try:
                check.parse_params(draft.params)
            except ValidationError as error:
                for detail in error.errors():
                    location = tuple(str(part) for part in detail["loc"])
                    anchor = draft.param_anchors.get(location[0]) if location else None
                    target = anchor or _Anchor(
                        draft.anchor.document, (*draft.anchor.key_path, "params")
                    )
                    problem = target.problem(
                        f"params do not fit check {check.id}: "
                        f"{'.'.join(location) or 'params'}: {detail['msg']}",
                        suffix=tuple(location[1:]) if anchor else (),
                    )
                    if not self._already_reported(problem):
                        self.problems.append(problem)
                continue
            if template_problem := _template_problem(str(fields.get("remediation", "")), check):
                anchor = draft.remediation_anchor or draft.anchor
                self.problems.append(anchor.problem(template_problem))
                continue
            person = self._remediation_params(draft)
            if person is None:
                continue
            try:
                severity = Severity(fields["severity"])
            except ValueError:
                continue  # reported by the schema
            controls = self._controls(fields.get("controls"), draft)
            if controls is None:
                continue
            built.append(
                Rule(
                    id=rule_id,
                    check=check.id,
                    severity=severity,
                    title=str(fields["title"]),
                    rationale=str(fields.get("rationale", "")),
                    remediation=str(fields.get("remediation", "")),
                    params=draft.params,
                    remediation_params=person,
                    enabled=enabled,
                    location=draft.anchor.location(),
                    controls=controls,
                )
            )
        return sorted(built, key=lambda r: r.id)

    def _remediation_params(self, draft: _RuleDraft) -> dict[str, str] | None:
        """``remediation_params:``: values only a person can supply to the fix, by fact name;
        None (and a problem at the key's line) for a name that is not such a fact or a value
        that is not a non-empty string."""
        found: dict[str, str] = {}
        bad = False
        for key, value in draft.remediation_params.items():
            anchor = draft.remediation_param_anchors.get(key) or draft.anchor
            message = None
            if key not in PERSON_FACTS:
                message = (
                    f"remediation_params: unknown key {key!r}; a policy can supply "
                    f"{', '.join(sorted(PERSON_FACTS))}"
                )
            elif not isinstance(value, str) or not value.strip():
                message = f"remediation_params: {key} must be a non-empty string"
            if message is None:
                found[key] = value
                continue
            bad = True
            problem = anchor.problem(message)
            if not self._already_reported(problem):
                self.problems.append(problem)
        return None if bad else found

    def _controls(self, raw: Any, draft: _RuleDraft) -> tuple[ControlRef, ...] | None:
        """``controls:`` as references with their names; None (and a problem) when one is not
        in the shipped controls catalogue. Malformed lists are the schema's to report."""
        if not isinstance(raw, list):
            return ()
        catalogue = control_catalogue()
        found: list[ControlRef] = []
        unknown = False
        for index, item in enumerate(raw):
            if not isinstance(item, str):
                unknown = True
                continue
            control = catalogue.get(item.strip())
            if control is None:
                problem = draft.anchor.problem(
                    f"unknown control {item!r}: see engram-audit controls for the known ones",
                    suffix=("controls", index),
                )
                if not self._already_reported(problem):
                    self.problems.append(problem)
                unknown = True
                continue
            if control.key not in {c.key for c in found}:
                found.append(
                    ControlRef(framework=control.framework, id=control.id, name=control.name)
                )
        return None if unknown else tuple(found)


def _template_problem(template: str, check: Check[Any]) -> str | None:
    """Why a remediation template cannot be rendered for this check's findings, or None."""
    try:
        used = placeholders(template)
    except ValueError as error:
        return f"remediation: {error} (write a literal brace as {{{{ or }}}})"
    known = check.facts | PERSON_FACTS
    unknown = sorted({name for name in used if name not in known})
    if unknown:
        return (
            f"remediation: unknown placeholder {', '.join('{' + n + '}' for n in unknown)} for "
            f"check {check.id}; it provides {', '.join('{' + n + '}' for n in sorted(known))}"
        )
    misplaced = misplaced_statements(template)
    if misplaced:
        return (
            f"remediation: {', '.join('{' + n + '}' for n in misplaced)} is SQL the audited "
            "database wrote: show it only inside a SQL comment (after --), never where it runs"
        )
    return None


def _scope(layered: _Layered) -> PostgresScope:
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in layered.scope.items()}
    return PostgresScope.model_validate(values)


def load_policy(path: Path) -> Policy:
    """Load one environment's policy with its bases; raise InputError listing every problem."""
    reader = _PolicyReader()
    layered = reader.read(path)
    rules = reader.build_rules(layered, complete=True)
    if layered.environment is None and not reader.problems:
        reader.problems.append(
            Problem(
                display_path(path),
                1,
                1,
                "environment",
                "no environment: an environment policy needs `environment:`",
            )
        )
    if reader.problems:
        raise InputError(_unique(reader.problems))
    return Policy(
        environment=layered.environment or "",
        description=layered.description,
        scope=_scope(layered),
        rules=tuple(rules),
        files=tuple(layered.files),
    )


def validate_paths(paths: Iterable[Path]) -> tuple[list[str], list[Problem]]:
    """Check every policy file under ``paths``; base files (no environment) are checked as layers."""
    checked: list[str] = []
    problems: list[Problem] = []
    documents: dict[Path, SourceDocument] = {}
    for path in policy_files(paths):
        reader = _PolicyReader(documents)
        layered = reader.read(path)
        reader.build_rules(layered, complete=layered.environment is not None)
        checked.append(display_path(path))
        problems.extend(reader.problems)
    return checked, _unique(problems)


def with_dependents(paths: Iterable[Path]) -> list[Path]:
    """``paths`` and, for each file among them, the policy files of its directory that extend it,
    directly or through others: a change to a base is checked in every policy built on it.

    A sibling that cannot be read is left out here; it is reported when it is validated itself.
    """
    given = list(paths)
    result = list(given)
    seen = {p.resolve() for p in policy_files(given)}
    files = [p for p in given if not p.is_dir()]
    for directory in dict.fromkeys(p.parent for p in files):
        bases: dict[Path, set[Path]] = {}
        siblings = policy_files([directory]) if directory.is_dir() else []
        for sibling in siblings:
            try:
                document = load_document(sibling)
            except InputError:
                continue
            if isinstance(document.data, dict):
                # A name that cannot name a file is reported when the sibling is validated.
                bases[sibling] = {
                    (sibling.parent / reference).resolve()
                    for reference, _ in _extends_list(document)
                    if path_name_problem(reference) is None
                }
        affected = {p.resolve() for p in files if p.parent == directory}
        grew = True
        while grew:
            grew = False
            for sibling, extended in bases.items():
                if sibling.resolve() not in affected and extended & affected:
                    affected.add(sibling.resolve())
                    grew = True
        for sibling in siblings:
            if sibling.resolve() in affected and sibling.resolve() not in seen:
                seen.add(sibling.resolve())
                result.append(sibling)
    return result


def policy_files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if _is_dir(path):
            try:
                entries = sorted(path.iterdir())
            except OSError as error:
                raise InputError(
                    [Problem(str(path), 1, 1, "", f"cannot list directory: {error.strerror}")]
                ) from None
            found.extend(p for p in entries if p.suffix in POLICY_SUFFIXES and _is_file(p))
        else:
            found.append(path)
    return found


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte: no such file
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _unique(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.column, p.message))


def policy_path_for(environment: str, policy_dir: Path) -> Path:
    for suffix in POLICY_SUFFIXES:
        candidate = policy_dir / f"{environment}{suffix}"
        if _is_file(candidate):
            return candidate
    known = (
        sorted(p.stem for p in policy_files([policy_dir]) if _is_file(p))
        if _is_dir(policy_dir)
        else []
    )
    hint = f" (found: {', '.join(known)})" if known else ""
    raise InputError(
        [
            Problem(
                os.fspath(policy_dir), 1, 1, "", f"no policy for environment {environment!r}{hint}"
            )
        ]
    )


def environment_policies(policy_dir: Path) -> list[Policy]:
    """Every environment policy in ``policy_dir``: the files that declare or inherit an
    ``environment:`` (base files that declare none are layers, not environments)."""
    policies: list[Policy] = []
    problems: list[Problem] = []
    for path in policy_files([policy_dir]):
        reader = _PolicyReader()
        layered = reader.read(path)
        if layered.environment is None and not reader.problems:
            continue
        try:
            policies.append(load_policy(path))
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise InputError(_unique(problems))
    return policies
