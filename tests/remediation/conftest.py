"""The real Azure CLI for the remediation tests, in its own cached virtual environment.

Cost: ``azure-cli`` 2.91.0 takes about 95 s to install on this machine, once; it is kept out of
the project's environment because it pins its own Azure SDK versions. Set ``ENGRAM_AZ_PYTHON``
to a Python that has azure-cli to reuse one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

AZURE_CLI = "azure-cli==2.91.0"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "engram-audit-azcli"


@pytest.fixture(scope="session")
def az_python() -> str:
    given = os.environ.get("ENGRAM_AZ_PYTHON")
    if given:
        return given
    python = CACHE / "bin" / "python"
    if not (CACHE / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(CACHE)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", AZURE_CLI], check=True, timeout=900
        )
        (CACHE / ".installed").write_text(AZURE_CLI, encoding="utf-8")
    return str(python)
