"""Seeded, bounded fuzzing of every input file the CLI reads: policies, waivers, snapshots and
reports, starting from the shipped files and mutated the ways hostile or broken files differ
(random bytes, control characters, deep nesting, aliases, tags, huge and non-finite numbers,
lone surrogates, truncation, duplicated and swapped lines, wrong types).

Each case must end in a verdict or in exit 2 naming the file: never an internal error, never
a traceback, never longer than ``CASE_SECONDS``. ``check`` may legitimately exit 3 (a mutated
snapshot that lacks a part is *incomplete*), so for it the criterion is "no internal error".

The seed is fixed so CI is reproducible; ``ENGRAM_AUDIT_FUZZ_SEED`` and
``ENGRAM_AUDIT_FUZZ_CASES`` explore further locally. A failing case leaves its input in the
test's ``tmp_path`` and names seed, case and mutations in the assertion.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engram_audit.reporters import json_report
from tests.conftest import POLICIES, ROOT, SNAPSHOTS
from tests.golden.sample import sample_report
from tests.support.cli import CliResult, invoke

SEED = int(os.environ.get("ENGRAM_AUDIT_FUZZ_SEED", "20260427"))
CASES = int(os.environ.get("ENGRAM_AUDIT_FUZZ_CASES", "30"))
CASE_SECONDS = 10.0
WAIVERS = (ROOT / "docs" / "ci" / "waivers.example.yaml").read_text(encoding="utf-8")
ENVIRONMENTS = ("staging", "dev", "uat", "prod")

NASTY = (
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\x9b",
    "\u2028",
    "\ufeff",
    "\ufffe",
    "\t",
    "\r",
    "&a ",
    "*a",
    "*nowhere",
    "<<: *a",
    "!!binary ",
    "!x ",
    "!!python/object:os.system ",
    "? ",
    "- ",
    ": ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "{",
    "}",
    "[",
    "]",
    ",",
    '"',
    "'",
    "#",
    ".nan",
    ".inf",
    "NaN",
    "-Infinity",
    "1e999",
    "9" * 400,
    "0x" + "f" * 300,
    "-0",
    "1_000",
    '"\\ud800"',
    "\\udfff",
    "\\u0000",
    "\ud800",
    "2026-W53-7",
    "2031-02-30",
    "null",
    "true",
    "~",
    "=",
    "@",
    "%",
    "\\",
    "{{",
    "]]",
    "&x [*x]",
)


def _insert(rng: random.Random, text: str) -> tuple[str, str]:
    at = rng.randrange(len(text) + 1)
    token = rng.choice(NASTY)
    return text[:at] + token + text[at:], f"insert {token!r} at {at}"


def _flip(rng: random.Random, text: str) -> tuple[str, str]:
    if not text:
        return text, "flip (empty)"
    at = rng.randrange(len(text))
    character = chr(
        rng.choice([rng.randrange(0x20), rng.randrange(0x7F, 0xA0), rng.randrange(0x110000)])
    )
    return text[:at] + character + text[at + 1 :], f"flip {at} to {character!r}"


def _delete(rng: random.Random, text: str) -> tuple[str, str]:
    start = rng.randrange(len(text) + 1)
    end = min(len(text), start + rng.randrange(1, 200))
    return text[:start] + text[end:], f"delete {start}:{end}"


def _truncate(rng: random.Random, text: str) -> tuple[str, str]:
    at = rng.randrange(len(text) + 1)
    return text[:at], f"truncate at {at}"


def _lines(rng: random.Random, text: str) -> tuple[str, str]:
    lines = text.splitlines(keepends=True)
    if len(lines) < 2:
        return text, "lines (too few)"
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    if rng.random() < 0.5:
        lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines), f"swap lines {i} and {j}"
    lines.insert(j, lines[i])
    return "".join(lines), f"repeat line {i} at {j}"


def _nest(rng: random.Random, text: str) -> tuple[str, str]:
    depth = rng.choice([30, 70, 300, 3000])
    at = rng.randrange(len(text) + 1)
    return text[:at] + "[" * depth + "]" * depth + text[at:], f"nest {depth} at {at}"


def _alias_bomb(rng: random.Random, text: str) -> tuple[str, str]:
    levels = rng.randrange(3, 10)
    bomb = ["b0: &b0 [x,x,x,x,x,x,x,x,x,x]"]
    bomb += [f"b{i}: &b{i} [" + ",".join([f"*b{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(bomb) + "\n" + text, f"alias bomb of 10^{levels}"


TEXT_MUTATIONS: tuple[Callable[[random.Random, str], tuple[str, str]], ...] = (
    _insert,
    _insert,
    _flip,
    _flip,
    _delete,
    _truncate,
    _lines,
    _nest,
    _alias_bomb,
)
NASTY_VALUES: tuple[Any, ...] = (
    float("nan"),
    float("inf"),
    10**400,
    -(2**63),
    1e308,
    "",
    "\x00\x7f\x85\u2028",
    "\ud800",
    "x" * 10_000,
    None,
    True,
    [],
    {},
    [[[[[]]]]],
    {"unknown": 1},
    "2026-W53-7",
)


def _json_value(rng: random.Random, data: Any) -> tuple[Any, str]:
    """Replace, delete or add one value somewhere in a parsed JSON document."""
    path: list[str | int] = []
    node = data
    while isinstance(node, dict | list) and node and rng.random() < 0.8:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        if not isinstance(node[key], dict | list) or not node[key]:
            break
        path.append(key)
        node = node[key]
    if not isinstance(node, dict | list) or not node:
        return rng.choice(NASTY_VALUES), "replace the document"
    key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
    roll = rng.random()
    if roll < 0.15 and isinstance(node, dict):
        del node[key]
        return data, f"delete {[*path, key]}"
    if roll < 0.25 and isinstance(node, dict):
        node["unexpected"] = rng.choice(NASTY_VALUES)
        return data, f"add unexpected at {path}"
    value = rng.choice(NASTY_VALUES)
    node[key] = value
    return data, f"set {[*path, key]} to {str(value)[:40]!r}"


def mutate(rng: random.Random, text: str, *, json_aware: bool) -> tuple[bytes, list[str]]:
    """1-4 mutations of ``text``; sometimes random bytes instead."""
    if rng.random() < 0.08:
        size = rng.randrange(0, 2000)
        return bytes(rng.randrange(256) for _ in range(size)), [f"{size} random bytes"]
    steps: list[str] = []
    if json_aware and rng.random() < 0.5:
        data = json.loads(text)
        for _ in range(rng.randrange(1, 3)):
            data, step = _json_value(rng, data)
            steps.append(step)
        text = json.dumps(data, indent=2, ensure_ascii=rng.random() < 0.5)
    for _ in range(rng.randrange(0 if steps else 1, 3)):
        text, step = rng.choice(TEXT_MUTATIONS)(rng, text)
        steps.append(step)
    return text.encode("utf-8", "surrogatepass"), steps


def check_case(result: CliResult, allowed: set[int], named: str, context: str) -> None:
    assert "internal error" not in result.output, context + result.output[-2000:]
    assert "Traceback" not in result.output, context + result.output[-2000:]
    assert result.code in allowed, context + result.output[-2000:]
    if result.code == 2:
        assert named in result.stderr, context + result.stderr[-2000:]


def case_rng(kind: str, case: int) -> random.Random:
    return random.Random(f"{SEED}:{kind}:{case}")


@pytest.mark.parametrize("case", range(CASES))
def test_fuzzed_policies(tmp_path: Path, case: int) -> None:
    rng = case_rng("policy", case)
    for policy in POLICIES.glob("*.yaml"):
        shutil.copy(policy, tmp_path / policy.name)
    target = tmp_path / rng.choice(sorted(p.name for p in POLICIES.glob("*.yaml")))
    data, steps = mutate(rng, target.read_text(encoding="utf-8"), json_aware=False)
    target.write_bytes(data)
    context = f"seed {SEED} policy case {case} ({target.name}): {steps}\n"
    result = invoke("validate", str(target), timeout=CASE_SECONDS)
    check_case(result, {0, 2}, tmp_path.name, context)
    environment = rng.choice(ENVIRONMENTS)
    result = invoke(
        "check",
        "--env",
        environment,
        "--policy-dir",
        str(tmp_path),
        "--snapshot",
        str(SNAPSHOTS / f"{environment}-drifted.json"),
        timeout=CASE_SECONDS,
    )
    check_case(result, {0, 1, 2, 3}, tmp_path.name, context)


@pytest.mark.parametrize("case", range(CASES))
def test_fuzzed_waivers(tmp_path: Path, case: int) -> None:
    rng = case_rng("waivers", case)
    target = tmp_path / "waivers.yaml"
    data, steps = mutate(rng, WAIVERS, json_aware=False)
    target.write_bytes(data)
    context = f"seed {SEED} waivers case {case}: {steps}\n"
    result = invoke(
        "check",
        "--env",
        "prod",
        "--snapshot",
        str(SNAPSHOTS / "prod-drifted.json"),
        "--waivers",
        str(target),
        "--warn-expiring",
        str(rng.choice([0, 30, 36525])),
        timeout=CASE_SECONDS,
    )
    check_case(result, {0, 1, 2, 3}, str(target), context)


@pytest.mark.parametrize("case", range(CASES))
def test_fuzzed_snapshots(tmp_path: Path, case: int) -> None:
    rng = case_rng("snapshot", case)
    environment = rng.choice(ENVIRONMENTS)
    original = SNAPSHOTS / f"{environment}-{rng.choice(['compliant', 'drifted'])}.json"
    target = tmp_path / "snapshot.json"
    data, steps = mutate(rng, original.read_text(encoding="utf-8"), json_aware=True)
    target.write_bytes(data)
    context = f"seed {SEED} snapshot case {case} ({original.name}): {steps}\n"
    result = invoke("check", "--env", environment, "--snapshot", str(target), timeout=CASE_SECONDS)
    check_case(result, {0, 1, 2, 3}, str(target), context)
    result = invoke("diff", str(original), str(target), "--format", "json", timeout=CASE_SECONDS)
    check_case(result, {0, 1, 2, 3}, str(target), context)


@pytest.mark.parametrize("case", range(CASES))
def test_fuzzed_reports(tmp_path: Path, case: int) -> None:
    rng = case_rng("report", case)
    target = tmp_path / "report.json"
    data, steps = mutate(rng, json_report.render(sample_report()), json_aware=True)
    target.write_bytes(data)
    context = f"seed {SEED} report case {case}: {steps}\n"
    result = invoke(
        "check",
        "--env",
        "prod",
        "--snapshot",
        str(SNAPSHOTS / "prod-drifted.json"),
        "--baseline",
        str(target),
        timeout=CASE_SECONDS,
    )
    check_case(result, {0, 1, 2, 3}, str(target), context)
    result = invoke("diff", str(target), str(target), timeout=CASE_SECONDS)
    check_case(result, {0, 1, 2}, str(target), context)
