"""The shipped Zep layout presets: base policy layers under ``policies/presets/``.

A preset names one real Zep layout's tables, columns and expected indexes (the session table,
its age and soft-delete columns, the embedding tables, Zep's HNSW parameters) as rules with the
same ids as the environment policies' (``ZEP-PG-SESSION-RETENTION``, ``ZEP-PG-VECTOR-INDEX``)
plus the rules only a layout can state (one ``ZEP-PG-PURGE-*`` per table Zep purges). An
environment policy selects a layout by listing the preset last in ``extends``; the preset's rules
then replace the environment's of the same id. The presets carry their sources in comments.

The soft-delete rules live only here, not in the shipped environment policies: every table they
name belongs to one layout, and a preset is the one file where all of a layout's table names sit
together, so no environment policy is left naming a table that a layout does not have.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

PRESETS_DIR = "presets"
# Name -> what it describes; the file is policies/presets/<name>.yaml.
PRESETS: dict[str, str] = {
    "zep-legacy": "Zep legacy, the Go release (getzep/zep v0.27.2): session, message, "
    "message_embedding, summary, summary_embedding, docstore_<name>_<dims> in public",
    "zep-ce-v1": "Zep Community Edition v1 (getzep/zep v1.0.2): users, sessions, messages in "
    "postgres.schema_name, no vector columns",
}


def preset_path(policy_dir: Path, name: str) -> Path:
    return policy_dir / PRESETS_DIR / f"{name}.yaml"


def with_presets(paths: Iterable[Path]) -> list[Path]:
    """The paths, each policy directory followed by its ``presets/`` directory when it has one,
    so validating a policy directory validates the presets its policies may extend."""
    expanded: list[Path] = []
    for path in paths:
        expanded.append(path)
        presets = path / PRESETS_DIR
        if path.is_dir() and presets.is_dir():
            expanded.append(presets)
    return expanded
