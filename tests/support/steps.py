"""Running the shell steps of a GitHub workflow job or composite action as a runner would.

The runner's contract, as far as these tests rely on it (GitHub Docs, "Workflow syntax for GitHub
Actions", ``jobs.<job_id>.steps[*].shell``, and "Workflow commands", environment files):

- ``${{ ... }}`` expressions are substituted into ``run:`` and ``env:`` before the shell sees
  them; a missing context value is the empty string.
- A step without ``shell:`` runs as ``bash -e {0}``; ``shell: bash`` as
  ``bash --noprofile --norc -eo pipefail {0}``; the script is a temporary file.
- ``if:`` without a status function is ANDed with ``success()``: after a failed step only
  ``always()``/``failure()`` steps run.
- A step appends ``NAME=value`` (or ``NAME<<DELIMITER`` ... ``DELIMITER``) lines to the files named
  by ``GITHUB_OUTPUT`` (its outputs, as ``steps.<id>.outputs.NAME``) and ``GITHUB_ENV``
  (environment of the later steps), and Markdown to ``GITHUB_STEP_SUMMARY``.

Steps that ``uses:`` another action cannot run here; a test names the steps it expects to be
skipped (with the values their outputs would have), so a new step that needs the network is
not skipped silently.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*(?:\[[^\]]*\])*))"
)
STATUS_FUNCTION = re.compile(r"\b(always|success|failure|cancelled)\s*\(")
BASH = {
    None: ["bash", "-e"],
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"],
}


class ExpressionError(ValueError):
    pass


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", 0)


class _Expression:
    """The part of the expression language the recipes use: context names, 'strings',
    == and != (strings compare case-insensitively), ! && || (|| returns the first truthy
    operand), parentheses, the status functions and ``hashFiles``."""

    def __init__(
        self,
        text: str,
        lookup: Callable[[str], Any],
        functions: Mapping[str, Callable[..., Any]],
    ):
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip() == "":
                    break
                raise ExpressionError(f"cannot read {text[position:]!r} in {text!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0
        self.lookup = lookup
        self.functions = functions
        self.text = text

    def _peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise ExpressionError(f"unexpected end of {self.text!r}")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def value(self) -> Any:
        result = self._or()
        if self.index != len(self.tokens):
            raise ExpressionError(f"unexpected {self._peek()!r} in {self.text!r}")
        return result

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            left = left if _truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._not()
        while self._peek() == "&&":
            self._take()
            right = self._not()
            left = right if _truthy(left) else left
        return left

    def _not(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not _truthy(self._not())
        return self._compare()

    def _compare(self) -> Any:
        left = self._primary()
        if self._peek() in ("==", "!="):
            operator = self._take()[1]
            right = self._primary()
            same = str(left).casefold() == str(right).casefold()
            if isinstance(left, bool) or isinstance(right, bool):
                same = left == right
            return same if operator == "==" else not same
        return left

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if text == "(":
            inner = self._or()
            if self._take()[1] != ")":
                raise ExpressionError(f"missing ) in {self.text!r}")
            return inner
        if kind == "name":
            if self._peek() == "(":
                self._take()
                arguments = []
                while self._peek() != ")":
                    arguments.append(self._or())
                    if self._peek() == ",":
                        self._take()
                self._take()
                if text not in self.functions:
                    raise ExpressionError(f"unknown function {text}() in {self.text!r}")
                return self.functions[text](*arguments)
            if text in ("true", "false"):
                return text == "true"
            return self.lookup(text)
        raise ExpressionError(f"unexpected {text!r} in {self.text!r}")


def read_environment_file(path: Path) -> dict[str, str]:
    """``NAME=value`` and ``NAME<<DELIMITER`` blocks, as the runner reads GITHUB_OUTPUT/ENV."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            while lines[index] != delimiter:
                block.append(lines[index])
                index += 1
            index += 1
            values[name] = "\n".join(block)
        else:
            name, _, value = line.partition("=")
            values[name] = value
    return values


@dataclass(frozen=True)
class StandIn:
    """What a step that cannot run here would leave behind: its outputs and GITHUB_ENV lines."""

    outputs: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class StepResult:
    name: str
    ran: bool
    stood_in: bool = False
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    steps: list[StepResult]
    summary: str
    env: dict[str, str]

    def step(self, name: str) -> StepResult:
        (found,) = [s for s in self.steps if s.name == name]
        return found

    @property
    def stood_in(self) -> list[str]:
        """Steps that could not run here and were replaced by their stand-in outputs."""
        return [s.name for s in self.steps if s.stood_in]

    @property
    def not_run(self) -> list[str]:
        """Steps whose ``if:`` was false."""
        return [s.name for s in self.steps if not s.ran and not s.stood_in]

    @property
    def failed(self) -> bool:
        return any(s.returncode != 0 for s in self.steps)

    def log(self) -> str:
        return "\n".join(
            f"--- {s.name} (exit {s.returncode}{'' if s.ran else ', not run'})\n{s.stdout}{s.stderr}"
            for s in self.steps
        )


def step_name(step: Mapping[str, Any]) -> str:
    if "name" in step:
        return str(step["name"])
    if "uses" in step:
        return str(step["uses"])
    return str(step.get("run", "")).splitlines()[0]


@dataclass
class StepRunner:
    """Runs steps in ``workdir`` with the given contexts (``inputs``, ``github``, ``vars``,
    ``secrets``, ``runner``: flat dicts) and environment on top of ``base_env``.

    ``stand_ins`` maps the name of each step that cannot run here (``uses:`` steps, network) to
    what it would leave behind; a ``uses:`` step that is not listed is an error.
    """

    workdir: Path
    contexts: dict[str, dict[str, str]]
    base_env: dict[str, str]
    stand_ins: dict[str, StandIn] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.files = self.workdir.parent / f"{self.workdir.name}-runner"
        self.files.mkdir(parents=True, exist_ok=True)
        self.summary = self.files / "step_summary.md"
        self.summary.touch()
        self.step_outputs: dict[str, dict[str, str]] = {}
        self.counter = 0

    def lookup(self, name: str) -> Any:
        head, _, rest = name.partition(".")
        if head == "env":
            return self.env.get(rest, "")
        if head == "steps":
            step_id, _, output = rest.partition(".outputs.")
            return self.step_outputs.get(step_id, {}).get(output, "")
        if head in self.contexts:
            return self.contexts[head].get(rest, "")
        raise ExpressionError(f"unknown context {name!r}")

    def hash_files(self, *patterns: str) -> str:
        """``hashFiles``: a hash of the files matching the patterns, '' when none match."""
        digest = hashlib.sha256()
        matched = sorted(
            {p for pattern in patterns for p in self.workdir.glob(pattern) if p.is_file()}
        )
        for path in matched:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest() if matched else ""

    def evaluate(self, expression: str, failed: bool = False) -> Any:
        functions: dict[str, Callable[..., Any]] = {
            "always": lambda: True,
            "success": lambda: not failed,
            "failure": lambda: failed,
            "cancelled": lambda: False,
            "hashFiles": self.hash_files,
        }
        return _Expression(expression, self.lookup, functions).value()

    def substitute(self, text: str) -> str:
        return EXPRESSION.sub(lambda m: str(self.evaluate(m.group(1))), text)

    def run(self, steps: list[dict[str, Any]], env: Mapping[str, str] = {}) -> Run:
        for name, value in env.items():
            self.env[name] = self.substitute(str(value))
        results: list[StepResult] = []
        failed = False
        unused = set(self.stand_ins)
        for step in steps:
            name = step_name(step)
            condition = EXPRESSION.sub(lambda m: m.group(1), str(step.get("if", "success()")))
            if not STATUS_FUNCTION.search(condition):
                condition = f"success() && ({condition})"  # the runner's implicit status check
            if not _truthy(self.evaluate(condition, failed)):
                results.append(StepResult(name, ran=False, returncode=0))
                unused.discard(name)
                continue
            if name in self.stand_ins:
                unused.discard(name)
                stand_in = self.stand_ins[name]
                if "id" in step:
                    self.step_outputs[str(step["id"])] = dict(stand_in.outputs)
                self.env.update(stand_in.env)
                results.append(
                    StepResult(name, ran=False, stood_in=True, outputs=dict(stand_in.outputs))
                )
                continue
            if "run" not in step:
                raise AssertionError(f"step {name!r} cannot run here and has no stand-in")
            result = self._run_shell(step, name)
            results.append(result)
            failed = failed or (result.returncode != 0 and not step.get("continue-on-error"))
        assert not unused, f"stand-ins for steps that do not exist: {sorted(unused)}"
        return Run(results, self.summary.read_text(encoding="utf-8"), dict(self.env))

    def _run_shell(self, step: Mapping[str, Any], name: str) -> StepResult:
        self.counter += 1
        script = self.files / f"step{self.counter}.sh"
        script.write_text(self.substitute(str(step["run"])), encoding="utf-8")
        output_file = self.files / f"output{self.counter}"
        env_file = self.files / f"env{self.counter}"
        output_file.touch()
        env_file.touch()
        step_env = {k: self.substitute(str(v)) for k, v in (step.get("env") or {}).items()}
        environment = {
            **self.base_env,
            **self.env,
            **step_env,
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_ENV": str(env_file),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_WORKSPACE": str(self.workdir),
        }
        shell = step.get("shell")
        if shell not in BASH:
            raise AssertionError(f"step {name!r}: shell {shell!r} is not one these tests run")
        cwd = self.workdir / self.substitute(str(step.get("working-directory", ".")))
        completed = subprocess.run(
            [*BASH[shell], str(script)],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        outputs = read_environment_file(output_file)
        if "id" in step:
            self.step_outputs[str(step["id"])] = outputs
        self.env.update(read_environment_file(env_file))
        return StepResult(
            name,
            ran=True,
            returncode=completed.returncode,
            stdout=completed.stdout,
            stderr=completed.stderr,
            outputs=outputs,
        )


def clean_environment(path_prefix: Path) -> dict[str, str]:
    """The test process's environment minus anything engram-audit reads, PATH led by ``path_prefix``."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENGRAM_AUDIT_", "GITHUB_", "PG", "AZURE_", "RUNNER_"))
    }
    keep["PATH"] = f"{path_prefix}{os.pathsep}{os.environ.get('PATH', '')}"
    return keep


MACRO = re.compile(r"\$\(([A-Za-z0-9_.]+)\)")
VARIABLE_REFERENCE = re.compile(r"^variables\['([^']+)'\]$")


@dataclass
class AzurePipelineRunner:
    """Runs the Bash steps of an Azure Pipelines job as the agent would on Linux.

    The agent's contract as these tests rely on it (Microsoft Learn, "Command Line task",
    "Define variables", "Expressions"): ``$(name)`` macros are replaced before a step runs (an
    unknown name is left as written); each variable is also an environment variable, upper-cased
    with ``.`` as ``_``; ``script:`` and AzureCLI's bash ``inlineScript`` run with bash *without*
    ``set -e`` (microsoft/azure-pipelines-agent#1803), so a step's result is its last command's;
    ``condition:`` defaults to ``succeeded()``.
    """

    workdir: Path
    variables: dict[str, str]
    base_env: dict[str, str]
    stand_ins: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.files = self.workdir.parent / f"{self.workdir.name}-agent"
        self.files.mkdir(parents=True, exist_ok=True)
        self.counter = 0

    def expand(self, text: str) -> str:
        for _ in range(10):  # variables may refer to variables
            expanded = MACRO.sub(lambda m: self.variables.get(m.group(1), m.group(0)), text)
            if expanded == text:
                return expanded
            text = expanded
        return text

    def lookup(self, name: str) -> Any:
        match = VARIABLE_REFERENCE.match(name)
        if match is None:
            raise ExpressionError(f"unknown reference {name!r}")
        return self.variables.get(match.group(1), "")

    def condition(self, text: str, failed: bool) -> bool:
        functions: dict[str, Callable[..., Any]] = {
            "succeeded": lambda: not failed,
            "failed": lambda: failed,
            "succeededOrFailed": lambda: True,
            "always": lambda: True,
            "and": lambda *v: all(_truthy(x) for x in v),
            "or": lambda *v: any(_truthy(x) for x in v),
            "not": lambda v: not _truthy(v),
            "eq": lambda a, b: str(a).casefold() == str(b).casefold(),
            "ne": lambda a, b: str(a).casefold() != str(b).casefold(),
        }
        return _truthy(_Expression(text, self.lookup, functions).value())

    def run(self, steps: list[dict[str, Any]]) -> Run:
        results: list[StepResult] = []
        failed = False
        for step in steps:
            name = str(step.get("displayName", step.get("task", step.get("script", ""))))
            if not self.condition(str(step.get("condition", "succeeded()")), failed):
                results.append(StepResult(name, ran=False))
                continue
            script = step.get("script")
            if step.get("task") == "AzureCLI@2":
                script = step["inputs"]["inlineScript"]
            if name in self.stand_ins or script is None:
                assert name in self.stand_ins, f"step {name!r} cannot run here and has no stand-in"
                results.append(StepResult(name, ran=False, stood_in=True))
                continue
            result = self._run(name, str(script), step.get("env") or {})
            results.append(result)
            failed = failed or (result.returncode != 0 and not step.get("continueOnError"))
        return Run(results, "", {})

    def _run(self, name: str, script: str, step_env: Mapping[str, str]) -> StepResult:
        self.counter += 1
        path = self.files / f"step{self.counter}.sh"
        path.write_text(self.expand(script), encoding="utf-8")
        environment = {
            **self.base_env,
            **{k.upper().replace(".", "_"): self.expand(v) for k, v in self.variables.items()},
            **{k: self.expand(str(v)) for k, v in step_env.items()},
        }
        completed = subprocess.run(
            ["bash", "--noprofile", "--norc", str(path)],
            cwd=self.workdir,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return StepResult(
            name,
            ran=True,
            returncode=completed.returncode,
            stdout=completed.stdout,
            stderr=completed.stderr,
        )
