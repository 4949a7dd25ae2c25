"""What each check costs in Azure requests: the table in docs/azure.md, generated from the
checks' declared reads (``@check(reads=...)``) and the collector's parts.

    .venv/bin/python -m engram_audit.collectors.azure.reads docs/azure.md   # rewrite the table

``tests/azure/test_azure_reads_doc.py`` fails when the page and the code disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engram_audit.checks import CATALOGUE
from engram_audit.collectors.azure.parts import PARTS
from engram_audit.model.snapshot import AZURE_PARTS

START = "<!-- generated: azure reads per check -->"
END = "<!-- end of generated table -->"

# How each snapshot part is read: what the collector sends, the permission, reads per server.
_SHARED = {
    "azure.server": (
        "the server body: from the `--server` GET, the `--resource-group` list or the "
        "Resource Graph query",
        "Microsoft.DBforPostgreSQL/flexibleServers/read",
        0,
    ),
    "azure.metric_alerts": (
        "one Resource Graph query for the run and, to confirm that the identity may read every "
        "alert, its permissions list once per subscription (discovery; needs "
        "`Microsoft.Authorization/permissions/read`); or one ARM list per subscription",
        "Microsoft.Insights/metricAlerts/read",
        0,
    ),
}


def _part_reads() -> dict[str, tuple[str, str, int]]:
    reads = dict(_SHARED)
    for part in PARTS:
        (name,) = [key for key, fields in AZURE_PARTS.items() if part.field in fields]
        reads[name] = (f"{part.what}: one ARM list (one page)", part.permission, 1)
    return reads


def table() -> str:
    reads = _part_reads()
    lines = [
        START,
        "",
        "| Part | Read as | Permission | ARM reads per server |",
        "|---|---|---|---:|",
    ]
    for name in sorted(reads):
        what, permission, count = reads[name]
        lines.append(f"| `{name}` | {what} | `{permission}` | {count} |")
    lines += ["", "| Check | Parts it reads | ARM reads per server |", "|---|---|---:|"]
    for check in sorted(CATALOGUE, key=lambda c: c.id):
        azure = sorted(part for part in check.reads if part.startswith("azure."))
        if not azure:
            continue
        per_server = sum(reads[part][2] for part in azure)
        shown = ", ".join(f"`{part}`" for part in azure)
        lines.append(f"| `{check.id}` | {shown} | {per_server} |")
    production = sorted(_production_parts())
    per_server = sum(reads[part][2] for part in production)
    lines += [
        "",
        "A rule reads what its check reads; a policy costs the union of its enabled rules' "
        "parts, each part once. The production policy (`policies/prod.yaml`) reads "
        f"{', '.join(f'`{part}`' for part in production)}: {per_server} ARM reads per server, "
        "plus the discovery and alert queries and the permissions read per subscription shared "
        "by the whole run.",
        "",
        END,
    ]
    return "\n".join(lines)


def _production_parts() -> set[str]:
    from engram_audit.policy.builtin import builtin_policy_dir
    from engram_audit.policy.loader import load_policy
    from engram_audit.policy.planning import plan_for

    parts = plan_for(load_policy(builtin_policy_dir() / "prod.yaml")).parts or frozenset()
    return {part for part in parts if part.startswith("azure.")}


def rewrite(text: str) -> str:
    start, end = text.index(START), text.index(END) + len(END)
    return text[:start] + table() + text[end:]


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "docs/azure.md")
    text = path.read_text(encoding="utf-8")
    path.write_text(rewrite(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
