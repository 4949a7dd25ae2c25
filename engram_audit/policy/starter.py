"""What ``engram-audit init`` writes: the shipped policies and an inventory ready to fill in."""

from __future__ import annotations

from pathlib import Path

from engram_audit.model.inventory import INVENTORY_FILE
from engram_audit.policy.builtin import builtin_policy_dir
from engram_audit.policy.loader import policy_files
from engram_audit.policy.presets import PRESETS_DIR

INVENTORY_TEMPLATE = """\
# yaml-language-server: $schema=https://github.com/engram/engram-audit/schemas/inventory.schema.json
# engram-audit inventory: the environments of this estate and what to audit in each.
# `engram-audit validate` checks this file and policies/; flags on the command line override it.
apiVersion: engram-audit/v1
environments:
{environments}
"""

ENVIRONMENT_TEMPLATE = """\
  {name}:
    policy: policies/{name}.yaml
    # Azure: name the servers, or discover them by tag, in one or more subscriptions.
    azure: {{}}         # e.g. {{subscriptions: [<id>], resource_group: engram-rg, servers: [zep-{name}-db]}}
                      #   or {{subscriptions: [<id>], tag: {{environment: {name}}}}}
    # PostgreSQL: the environment variable that holds the auditor's connection string.
    postgres: {{}}      # e.g. {{dsn_env: ZEP_AUDIT_DSN_{upper}}}
    # Application DSNs whose sslmode is checked (overrides the dsn.sslmode rule's variables).
    # dsn_env: [ZEP_STORE_POSTGRES_DSN]
    # waivers: waivers.{name}.yaml
    # fail_on: low
"""


class AlreadyThere(Exception):
    def __init__(self, paths: list[Path]) -> None:
        super().__init__(", ".join(map(str, paths)))
        self.paths = paths


def starter_files(directory: Path) -> dict[Path, str]:
    files: dict[Path, str] = {}
    environments = []
    for policy in policy_files([builtin_policy_dir()]):
        files[directory / "policies" / policy.name] = policy.read_text(encoding="utf-8")
        if policy.stem != "base":
            environments.append(
                ENVIRONMENT_TEMPLATE.format(name=policy.stem, upper=policy.stem.upper())
            )
    for preset in policy_files([builtin_policy_dir() / PRESETS_DIR]):
        files[directory / "policies" / PRESETS_DIR / preset.name] = preset.read_text(
            encoding="utf-8"
        )
    files[directory / INVENTORY_FILE] = INVENTORY_TEMPLATE.format(
        environments="".join(environments).rstrip("\n")
    )
    return files


def write_starter(directory: Path, *, force: bool) -> list[Path]:
    files = starter_files(directory)
    existing = [path for path in files if path.exists()]
    if existing and not force:
        raise AlreadyThere(existing)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
