"""What a policy directory offers: its environments and rule ids (for ``environments``,
``explain RULE-ID`` and shell completion).

An environment is a file ``<env>.yaml`` (or .yml, .json) that declares ``environment: <env>``:
exactly what ``check --env <env>`` can load. Base files (no ``environment``) are layers only.
"""

from __future__ import annotations

from pathlib import Path

from engram_audit.errors import InputError
from engram_audit.inputs.yaml_source import SourceDocument, load_document
from engram_audit.model import Rule
from engram_audit.policy.loader import load_policy, policy_files, policy_path_for


def _documents(policy_dir: Path) -> list[tuple[Path, SourceDocument]]:
    """Every policy file that parses; one that does not is left to ``validate`` to report."""
    if not policy_dir.is_dir():
        return []
    found = []
    for path in policy_files([policy_dir]):
        try:
            document = load_document(path)
        except InputError:
            continue
        if isinstance(document.data, dict):
            found.append((path, document))
    return found


def environments(policy_dir: Path) -> list[str]:
    """The environments ``check --env`` accepts with this policy directory, sorted."""
    return sorted(
        {
            path.stem
            for path, document in _documents(policy_dir)
            if document.data.get("environment") == path.stem
        }
    )


def rule_ids(policy_dir: Path) -> list[str]:
    """Every rule id any policy file of the directory declares or overrides, sorted; cheap and
    tolerant of invalid files (completion must not fail)."""
    ids: set[str] = set()
    for _, document in _documents(policy_dir):
        rules = document.data.get("rules")
        if isinstance(rules, list):
            ids.update(
                r["id"] for r in rules if isinstance(r, dict) and isinstance(r.get("id"), str)
            )
    return sorted(ids)


def rule_by_environment(rule_id: str, policy_dir: Path) -> dict[str, Rule]:
    """The rule as each environment's merged policy defines it (disabled ones included).

    Raises InputError when an environment's policy is invalid: what it says cannot be known.
    """
    found: dict[str, Rule] = {}
    for environment in environments(policy_dir):
        policy = load_policy(policy_path_for(environment, policy_dir))
        for rule in policy.rules:
            if rule.id == rule_id:
                found[environment] = rule
    return found
