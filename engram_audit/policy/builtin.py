"""The policies shipped inside the package, and which policy directory a run uses.

The repository's ``policies/`` is their single source: ``engram_audit/builtin/policies`` is a
link to it, and the wheel carries the files themselves (a test builds the wheel and compares).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

LOCAL_POLICY_DIR = Path("policies")
BUILTIN_DISPLAY = "builtin-policies"


def builtin_policy_dir() -> Path:
    return Path(str(resources.files("engram_audit.builtin").joinpath("policies")))


def default_policy_dir() -> Path:
    """``./policies`` when the working directory has one, else the policies shipped inside."""
    return LOCAL_POLICY_DIR if LOCAL_POLICY_DIR.is_dir() else builtin_policy_dir()


def is_builtin(path: Path) -> bool:
    try:
        path.resolve().relative_to(builtin_policy_dir().resolve())
    except ValueError:
        return False
    return True
