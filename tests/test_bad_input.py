"""Bad input is exit 2 with a located message: never an internal error (exit 3), never a hang.

Each case reproduces a file or flag that used to crash or hang the CLI, run the way a user
runs it: in-process through ``main`` (``tests.support.cli.invoke``), and a few as real
``python -m engram_audit`` processes. Every case has a time limit.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from engram_audit.inputs.files import MAX_JSON_BYTES, MAX_YAML_BYTES
from engram_audit.inputs.json_source import dump_json, parse_json
from engram_audit.inputs.yaml_source import MAX_DEPTH
from engram_audit.model import Snapshot
from engram_audit.model.snapshot_io import dump_snapshot
from engram_audit.policy.loader import load_policy
from engram_audit.reporters import json_report
from tests.conftest import POLICIES, SNAPSHOTS, snapshot_data
from tests.golden.sample import sample_report
from tests.support.cli import CliResult, invoke, run_process

DRIFTED = str(SNAPSHOTS / "prod-drifted.json")
COMPLIANT = str(SNAPSHOTS / "prod-compliant.json")

WAIVERS = """\
apiVersion: engram-audit/v1
waivers:
  - rule: ZEP-AZ-GEO-BACKUP
    resource: "*"
    reason: Geo backup needs a rebuild; scheduled for the Q1 maintenance window
    owner: dba-team@example.com
    ticket: SEC-142
    expires: {expires}
"""


def refused(result: CliResult, where: str, message: str) -> None:
    """Exit 2, the message, and ``where`` (``file:line:column`` or ``file:line``) on one line."""
    assert result.code == 2, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if message in line]
    assert lines, f"{message!r} not in:\n{result.stderr}"
    assert any(where in line for line in lines), f"{where!r} not in:\n{result.stderr}"


def alias_bomb(levels: int = 9) -> str:
    """The "billion laughs": 10 ** levels strings from a few hundred bytes."""
    lines = ["l0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- YAML: alias bombs, nesting, numbers, tags ---------------------------------------------


@pytest.mark.parametrize("levels", [7, 9])
def test_alias_bomb_in_a_policy_is_refused_at_once(tmp_path: Path, levels: int) -> None:
    policy = write(tmp_path / "prod.yaml", "environment: prod\n" + alias_bomb(levels))
    assert policy.stat().st_size < 512
    started = time.monotonic()
    result = invoke("validate", str(policy))
    assert time.monotonic() - started < 5
    refused(result, f"{policy.as_posix()}:", "values once YAML aliases are expanded")
    (where,) = result.located()
    assert where[1] > 1  # the line of the alias that crosses the limit


def test_alias_bomb_in_waivers_and_through_check_policy(tmp_path: Path) -> None:
    waivers = write(tmp_path / "waivers.yaml", alias_bomb() + "apiVersion: engram-audit/v1\n")
    result = invoke("check", "--env", "prod", "--snapshot", DRIFTED, "--waivers", str(waivers))
    refused(result, f"{waivers}:", "values once YAML aliases are expanded")
    policy = write(tmp_path / "prod.yaml", "environment: prod\n" + alias_bomb())
    result = invoke("check", "--env", "prod", "--policy", str(policy), "--snapshot", DRIFTED)
    refused(result, "prod.yaml:", "values once YAML aliases are expanded")


def test_a_snapshot_is_json_so_a_yaml_alias_bomb_is_not_one(tmp_path: Path) -> None:
    snapshot = write(tmp_path / "bomb.json", alias_bomb())
    result = invoke("check", "--env", "prod", "--snapshot", str(snapshot))
    refused(result, f"{snapshot}:1:1:", "not valid JSON")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("flow.yaml", "environment: prod\nx: " + "[" * 300 + "]" * 300 + "\n"),
        (
            "block.yaml",
            "environment: prod\n"
            + "".join(f"{'  ' * depth}k{depth}:\n" for depth in range(300))
            + f"{'  ' * 300}v\n",
        ),
    ],
)
def test_deep_yaml_nesting_is_refused_at_its_line(tmp_path: Path, name: str, text: str) -> None:
    policy = write(tmp_path / name, text)
    refused(invoke("validate", str(policy)), f"{policy.as_posix()}:", "nesting deeper than 64")


def test_nesting_through_an_alias_counts(tmp_path: Path) -> None:
    deep = "[" * 40 + "]" * 40
    policy = write(
        tmp_path / "prod.yaml",
        f"environment: prod\na: &deep {deep}\nb: {'[' * 30}*deep{']' * 30}\n",
    )
    refused(invoke("validate", str(policy)), f"{policy.as_posix()}:3:", "nesting deeper")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1" * 5000, "integer with more than 100 digits"),
        ("0x" + "f" * 200, "integer with more than 100 digits"),
        (".nan", "not a finite number"),
        ("-.inf", "not a finite number"),
        ("1e999", "not a finite number"),
        ("!!binary aGVsbG8=", "tag tag:yaml.org,2002:binary is not supported"),
        ("!custom x", "tag !custom is not supported"),
        ('"\\ud800"', "lone UTF-16 surrogate"),
    ],
)
def test_values_no_policy_can_mean_are_refused_at_their_line(
    tmp_path: Path, value: str, message: str
) -> None:
    policy = write(
        tmp_path / "prod.yaml",
        f"environment: prod\nextends: {POLICIES.as_posix()}/uat.yaml\n"
        f"rules:\n  - id: ZEP-AZ-SKU-SIZE\n    params: {{min_vcores: {value}}}\n",
    )
    refused(invoke("validate", str(policy)), f"{policy.as_posix()}:5:", message)


def test_oversized_yaml_is_refused_before_parsing(tmp_path: Path) -> None:
    policy = write(tmp_path / "prod.yaml", "environment: prod\n#" + "x" * MAX_YAML_BYTES + "\n")
    refused(invoke("validate", str(policy)), f"{policy.as_posix()}:1:1:", "larger than")


# --- extends ---------------------------------------------------------------------------------


def test_an_extends_graph_is_read_once_per_file(tmp_path: Path) -> None:
    """15 files each extending the next twice: 2^15 paths, 16 files (it took 18 s)."""
    for level in range(16):
        extends = f"extends: [l{level + 1}.yaml, l{level + 1}.yaml]\n" if level < 15 else ""
        environment = "environment: prod\n" if level == 0 else ""
        rule = (
            f"rules:\n  - id: R{level}\n    check: azure.sku.tier\n    severity: low\n"
            f"    title: t{level}\n    params: {{allowed: [GeneralPurpose]}}\n"
        )
        write(tmp_path / f"l{level}.yaml", environment + extends + rule)
    started = time.monotonic()
    result = invoke("validate", str(tmp_path / "l0.yaml"))
    assert result.code == 0, result.output
    assert time.monotonic() - started < 5
    policy = load_policy(tmp_path / "l0.yaml")
    assert [rule.id for rule in policy.rules] == sorted(f"R{level}" for level in range(16))
    assert len(policy.files) == 16


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ('"base\\0.yaml"', "invalid base file name: it contains a NUL byte"),
        ("a" * 300 + ".yaml", "path component longer than 255 bytes"),
        (".", "is a directory, not a regular file"),
        ("/dev/zero", "is a device, not a regular file"),
    ],
)
def test_bad_extends_names_are_located_at_the_extends_line(
    tmp_path: Path, reference: str, message: str
) -> None:
    policy = write(tmp_path / "prod.yaml", f"environment: prod\nextends: {reference}\n")
    refused(invoke("validate", str(policy)), f"{policy.as_posix()}:2:10:", message)


def test_an_extends_chain_deeper_than_the_limit_is_refused(tmp_path: Path) -> None:
    for level in range(40):
        write(tmp_path / f"l{level}.yaml", f"extends: l{level + 1}.yaml\n")
    write(tmp_path / "l40.yaml", "rules: []\n")
    write(tmp_path / "prod.yaml", "environment: prod\nextends: l0.yaml\n")
    refused(invoke("validate", str(tmp_path / "prod.yaml")), ":1:10:", "extends chain deeper")


@pytest.mark.parametrize("environment", ["prod\x00", "a" * 300, "../prod", "Prod"])
def test_env_must_be_an_environment_name(environment: str) -> None:
    result = invoke("check", "--env", environment, "--snapshot", DRIFTED)
    assert result.code == 2, result.output
    assert "Invalid value for '--env'" in result.stderr
    assert "a" * 100 not in result.stderr


# --- files that are not files ------------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.json"
    os.mkfifo(path)
    return path


def special_files(tmp_path: Path, fifo: Path) -> dict[str, tuple[str, str]]:
    """name -> (path, what the message says)."""
    return {
        "fifo": (str(fifo), "a named pipe (FIFO)"),
        "dev-zero": ("/dev/zero", "a device"),
        "directory": (str(tmp_path), "a directory"),
    }


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_special_files_as_inputs_are_refused_without_reading(
    tmp_path: Path, fifo: Path, kind: str
) -> None:
    path, what = special_files(tmp_path, fifo)[kind]
    runs = {
        "validate": ("validate", path),
        "--policy": ("check", "--env", "prod", "--policy", path, "--snapshot", DRIFTED),
        "--snapshot": ("check", "--env", "prod", "--snapshot", path),
        "--waivers": ("check", "--env", "prod", "--snapshot", DRIFTED, "--waivers", path),
        "--baseline": ("check", "--env", "prod", "--snapshot", DRIFTED, "--baseline", path),
        "diff": ("diff", path, DRIFTED),
    }
    if kind == "directory":
        del runs["validate"]  # validate DIR checks the policies in DIR
    for name, args in runs.items():
        result = invoke(*args, timeout=10)
        assert result.code == 2, (name, result.output)
        assert "internal error" not in result.output, name
        if kind == "directory":  # click's Path(dir_okay=False) refuses it first
            assert "is a directory" in result.stderr, (name, result)
        else:
            assert f"{path}:1:1: cannot read file: it is {what}" in result.stderr, (name, result)


def test_proc_files_are_read_within_bounds_and_refused_as_content() -> None:
    for args in (
        ("validate", "/proc/version"),
        ("check", "--env", "prod", "--snapshot", "/proc/version"),
        ("check", "--env", "prod", "--snapshot", DRIFTED, "--waivers", "/proc/version"),
        ("diff", "/proc/version", DRIFTED),
    ):
        result = invoke(*args, timeout=10)
        refused(result, "/proc/version:1:", "")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "proc"])
def test_special_files_as_outputs_are_refused(tmp_path: Path, fifo: Path, kind: str) -> None:
    targets = {**special_files(tmp_path, fifo), "proc": ("/proc/version", "")}
    path, what = targets[kind]
    for args in (
        ("--output", path, "--format", "json"),
        ("-o", f"sarif:{path}"),
        ("-o", f"markdown:{tmp_path / 'fine.md'}", "-o", f"junit:{path}"),
    ):
        result = invoke("check", "--env", "prod", "--snapshot", DRIFTED, *args, timeout=10)
        assert result.code == 2, (args, result.output)
        assert "internal error" not in result.output
        if kind == "directory" and args[0] == "--output":  # click's Path(dir_okay=False)
            assert "is a directory" in result.stderr
            continue
        assert f"{path}:1:1:" in result.stderr and "cannot write the" in result.stderr
        if what:
            assert f"it is {what}, not a regular file" in result.stderr
    # A special file is refused before anything is written; /proc/version only fails on write.
    assert (tmp_path / "fine.md").exists() == (kind == "proc")


def test_a_special_file_as_snapshot_target_is_refused_before_collecting(fifo: Path) -> None:
    result = invoke("collect", "--env", "prod", "--sources", "dsn", "--output", str(fifo))
    refused(result, f"{fifo}:1:1:", "cannot write the snapshot: it is a named pipe (FIFO)")


# --- waivers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("2026-W53-7", "write the last valid day as YYYY-MM-DD"),
        ("2026-W01-1", "write the last valid day as YYYY-MM-DD"),
        ("\uff12\uff10\uff13\uff11-01-31", "write the last valid day as YYYY-MM-DD"),
        ("2031-02-30", "write the last valid day as YYYY-MM-DD"),
        ("20310131", "is not of type 'string'"),
    ],
)
def test_only_yyyy_mm_dd_is_an_expiry(tmp_path: Path, expires: str, message: str) -> None:
    waivers = write(tmp_path / "waivers.yaml", WAIVERS.format(expires=expires))
    result = invoke("check", "--env", "prod", "--snapshot", DRIFTED, "--waivers", str(waivers))
    refused(result, f"{waivers}:8:14:", message)


def test_warn_expiring_is_bounded(tmp_path: Path) -> None:
    waivers = write(tmp_path / "waivers.yaml", WAIVERS.format(expires="2031-01-31"))
    args = ("check", "--env", "prod", "--snapshot", DRIFTED, "--waivers", str(waivers))
    result = invoke(*args, "--warn-expiring", "3000000")
    assert result.code == 2 and "Invalid value for '--warn-expiring'" in result.stderr
    result = invoke(*args, "--warn-expiring", "36525", "--today", "9999-12-01")
    assert result.code in (0, 1), result.output  # the horizon stops at the last date


# --- JSON: snapshots and reports ------------------------------------------------------------


def snapshot_file(tmp_path: Path, text: str) -> Path:
    return write(tmp_path / "snapshot.json", text)


def drifted_with(replace: str, by: str) -> str:
    text = (SNAPSHOTS / "prod-drifted.json").read_text(encoding="utf-8")
    assert replace in text
    return text.replace(replace, by, 1)


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ('"threshold": 1374', '"threshold": NaN', "NaN is not a JSON number"),
        ('"threshold": 1374', '"threshold": -Infinity', "-Infinity is not a JSON number"),
        ('"threshold": 1374', '"threshold": 1e999', "1e999 is too large for a number"),
        ('"threshold": 1374', '"threshold": ' + "9" * 5000, "more than 100 digits"),
        ('"environment": "prod"', '"environment": "prod\\ud800"', "lone UTF-16 surrogate"),
        ('"environment": "prod"', '"environment": "prod", "environment": "x"', "duplicate key"),
    ],
)
def test_json_values_no_snapshot_can_hold_are_refused_at_their_line(
    tmp_path: Path, replace: str, by: str, message: str
) -> None:
    text = drifted_with(replace, by)
    line = text[: text.index(by)].count("\n") + 1
    snapshot = snapshot_file(tmp_path, text)
    refused(invoke("check", "--env", "prod", "--snapshot", str(snapshot)), f":{line}:", message)
    refused(invoke("diff", str(snapshot), DRIFTED), f"{snapshot}:{line}:", message)


def test_a_schema_problem_in_a_snapshot_names_its_line_and_key(tmp_path: Path) -> None:
    text = drifted_with('"threshold": 1374', '"threshold": "eighty"')
    line = text[: text.index('"eighty"')].count("\n") + 1
    snapshot = snapshot_file(tmp_path, text)
    result = invoke("check", "--env", "prod", "--snapshot", str(snapshot))
    refused(result, f"{snapshot}:{line}:", "invalid snapshot")
    assert ".threshold]" in result.stderr


def test_deep_json_is_refused(tmp_path: Path) -> None:
    for depth in (MAX_DEPTH + 1, 100_000):
        text = '{"environment": "prod",\n "x": ' + "[" * depth + "]" * depth + "}"
        snapshot = snapshot_file(tmp_path, text)
        result = invoke("check", "--env", "prod", "--snapshot", str(snapshot))
        refused(result, f"{snapshot}:2:", "nesting deeper than 64 levels")


def test_oversized_json_is_refused_before_parsing(tmp_path: Path) -> None:
    snapshot = tmp_path / "big.json"
    with snapshot.open("wb") as handle:
        handle.truncate(MAX_JSON_BYTES + 1)
    refused(invoke("diff", str(snapshot), DRIFTED), f"{snapshot}:1:1:", "larger than")


def test_reports_are_read_as_strictly_as_snapshots(tmp_path: Path) -> None:
    text = json_report.render(sample_report())
    baseline = write(tmp_path / "report.json", text.replace('"total": ', '"total": NaN, "x": ', 1))
    result = invoke("check", "--env", "prod", "--snapshot", DRIFTED, "--baseline", str(baseline))
    refused(result, f"{baseline}:", "NaN is not a JSON number")
    wrong = write(
        tmp_path / "wrong.json", text.replace('"status": "fail"', '"status": "broken"', 1)
    )
    result = invoke("diff", str(wrong), str(wrong))
    refused(result, f"{wrong}:", "not a valid engram-audit JSON report")
    assert "[findings[" in result.stderr


def test_what_the_tool_writes_it_reads_back_control_characters_included(tmp_path: Path) -> None:
    data = snapshot_data("prod-drifted")
    table = data["postgres"]["databases"][0]["tables"][0]
    table["table"] = "messages\x7f\x85\x9b\u2028\ufffe"
    snapshot = Snapshot.model_validate(data)
    written = dump_snapshot(snapshot)
    assert "\x7f" not in written and "\\u007f" in written and "\\u009b" in written
    path = write(tmp_path / "written.json", written)
    result = invoke("check", "--env", "prod", "--snapshot", str(path))
    assert result.code == 1, result.output  # read and evaluated: the drifted snapshot fails
    result = invoke("diff", str(path), DRIFTED)
    assert result.code == 1 and "messages" in result.stdout, result.output
    assert Snapshot.model_validate(parse_json(written, "written").data) == snapshot


def test_nan_and_lone_surrogates_are_never_written() -> None:
    text = dump_json({"threshold": float("nan"), "x": [float("-inf")], "name": "a\ud800b"})
    assert json.loads(text) == {"threshold": None, "x": [None], "name": "a\ufffdb"}
    assert parse_json(text, "x").data == json.loads(text)


# --- DSN flags -------------------------------------------------------------------------------
# Every DSN here also names hostaddr 127.0.0.1 and a closed port: were a check to let it
# through, the run would fail on loopback, never resolve a name or reach another machine.


@pytest.fixture(scope="module")
def closed_port() -> int:
    from engram_audit.demo.server import free_loopback_port

    return free_loopback_port()


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        (f"host={'a' * 64}.example.com", "host: a label of the host name is longer than 63"),
        (f"host=db,{'b' * 70}.example.com hostaddr=127.0.0.1,127.0.0.1", "host 2: a label"),
        ("host=db..example.com", "an empty label"),
        (f"host={'a.' * 130}com", "a host name is at most 253 characters"),
        ("host=db sslmode=bogus", "libpq refuses the connection settings: invalid sslmode value"),
        ("host=db target_session_attrs=whatever", "invalid target_session_attrs value"),
        (
            "host=db,db2 hostaddr=127.0.0.1,127.0.0.1 port=1,2,3",
            "could not match 3 port numbers to 2 hosts",
        ),
        ("host=db hostaddr=not-an-ip", "hostaddr: not a numeric IPv4 or IPv6 address"),
    ],
)
def test_dsn_settings_libpq_refuses_are_usage_errors(
    dsn: str, message: str, closed_port: int
) -> None:
    if "hostaddr=" not in dsn:
        dsn += f" hostaddr=127.0.0.1 port={closed_port}"
    result = invoke("check", "--env", "prod", "--sources", "postgres", "--dsn", dsn)
    assert result.code == 2, result.output
    assert "Error: --dsn:" in result.stderr
    assert message in result.stderr, result.stderr


def test_libpq_environment_variables_are_checked_too(closed_port: int) -> None:
    environment = {"PGHOST": "127.0.0.1", "PGPORT": str(closed_port), "PGSSLMODE": "x"}
    result = invoke("check", "--env", "prod", "--sources", "postgres", env=environment)
    assert result.code == 2, result.output
    assert "libpq environment variables (PG*)" in result.stderr
    assert 'invalid sslmode value: "x"' in result.stderr


# --- real processes -------------------------------------------------------------------------


def test_real_processes_exit_2_without_a_traceback(tmp_path: Path, fifo: Path) -> None:
    policy = write(tmp_path / "prod.yaml", "environment: prod\n" + alias_bomb())
    nan = snapshot_file(tmp_path, drifted_with('"threshold": 1374', '"threshold": NaN'))
    cases = [
        (("validate", str(policy)), "values once YAML aliases are expanded"),
        (("check", "--env", "prod", "--snapshot", str(fifo)), "named pipe (FIFO)"),
        (("check", "--env", "prod", "--snapshot", "/dev/zero"), "a device"),
        (("check", "--env", "prod", "--snapshot", COMPLIANT, "--output", str(fifo)), "FIFO"),
        (("diff", str(nan), DRIFTED), "NaN is not a JSON number"),
        (
            ("check", "--env", "prod", "--sources", "dsn", "--dsn", "host=/nowhere sslmode=x"),
            "sslmode",
        ),
    ]
    for args, message in cases:
        result = run_process(*args, timeout=30)
        assert result.code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output and "internal error" not in result.output
