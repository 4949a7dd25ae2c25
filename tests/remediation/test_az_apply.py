"""``azure.sh`` applied by the real Azure CLI to the ARM emulator, then audited again.

The flow the README promises, end to end, per environment: the emulator serves the ARM state of
a bundled drifted snapshot; engram-audit audits it live (the real collector and Azure SDK),
``remediate`` writes ``azure.sh``; the real Azure CLI (``azure-cli`` 2.91.0, ``az_python`` in
conftest.py), logged in to the emulator, runs the script with bash; engram-audit audits again.
Every Azure failure that had a scripted fix now passes, every other finding keeps its verdict,
and findings that appear only now (PgBouncer's pool size once PgBouncer is on) pass, or are
SKIP by design (its server lifetime, which Azure's PgBouncer does not have).

How the CLI reaches the emulator, all through its documented configuration:

- ``az cloud register --endpoint-resource-manager <emulator> --skip-endpoint-discovery`` and
  ``az cloud set``, with ``AZURE_CONFIG_DIR`` in the test's temporary directory;
- ``az login --identity``: MSAL's App Service managed identity, which reads
  ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` (msal/managed_identity.py); the emulator answers
  with a JWT whose ``tid`` names the tenant (azure-cli decodes it without verifying) and lists
  the world's subscriptions at ``GET /subscriptions``;
- TLS through ``REQUESTS_CA_BUNDLE`` (the emulator's throwaway CA).

The emulator is writable for these tests only (``ArmEmulator(writable=True)``): it applies what
the CLI sends as a plain resource store and answers like ARM's long-running operations (202 and
``Azure-AsyncOperation`` for Microsoft.DBforPostgreSQL). What that cannot prove: that Azure
accepts each change on a real server (quota, SKU availability in the region, a restart's
duration, a standby actually becoming healthy); it proves that each command names the right
resource, sends the value the audit wanted, and that the audit then agrees.

Cost: 4 to 11 s per environment on this machine (each ``az`` call starts a Python), plus the
one-time install of azure-cli.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engram_audit.model import Report, Status
from engram_audit.model.snapshot_io import load_snapshot
from engram_audit.remediation.scripts import scripted
from tests.support.arm_emulator import ArmEmulator, TlsMaterial
from tests.support.arm_world import world_from_servers
from tests.support.cli import run_in_process

pytestmark = [pytest.mark.azcli, pytest.mark.azure]

ROOT = Path(__file__).parents[2]
TENANT = "8a1f0c2e-6b3d-4e5f-9a7b-0c1d2e3f4a5b"
TOKEN_VARIABLE = "ENGRAM_AUDIT_TEST_ARM_TOKEN"
# Values only a person supplies: the script asks for them as required shell variables.
PERSON = {
    "ACTION_GROUP_ID": "/subscriptions/{sub}/resourceGroups/engram-rg/providers/"
    "microsoft.insights/actionGroups/zep-oncall",
    "LOG_ANALYTICS_WORKSPACE_ID": "/subscriptions/{sub}/resourceGroups/engram-rg/providers/"
    "Microsoft.OperationalInsights/workspaces/zep-logs",
}


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def _token() -> str:
    """A bearer token shaped as a JWT: azure-cli reads the tenant from its ``tid`` claim."""
    claims = {"tid": TENANT, "exp": int(time.time()) + 3600}
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.c2lnbmF0dXJl"


def _world(environment: str) -> tuple[list[str], dict[str, Any]]:
    """The ARM state of the environment's drifted snapshot, and the flags that name its server."""
    snapshot = load_snapshot(ROOT / "fixtures" / "snapshots" / f"{environment}-drifted.json")
    assert snapshot.azure is not None
    servers = list(snapshot.azure.servers)
    server = servers[0]
    target = [
        "--subscription",
        server.subscription_id,
        "--resource-group",
        server.resource_group,
        "--server",
        server.name,
    ]
    return target, world_from_servers(server.subscription_id, servers)


def _set_parameter(world: dict[str, Any], name: str, value: str) -> None:
    for configuration in world["servers"][0]["configurations"]:
        if configuration["name"] == name:
            configuration["properties"]["value"] = value
            return
    raise KeyError(name)


@pytest.fixture(scope="module")
def tls() -> TlsMaterial:
    return TlsMaterial()


@pytest.fixture
def emulator(tls: TlsMaterial, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmEmulator]:
    token = _token()
    with ArmEmulator(
        token=token, tls=tls, writable=True, managed_identity=True, tenant_id=TENANT
    ) as arm:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", arm.ca_pem)
        monkeypatch.setenv(TOKEN_VARIABLE, token)
        for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.delenv(proxy, raising=False)
        yield arm


def _audit(arm: ArmEmulator, environment: str, target: list[str], out: Path) -> Report:
    result = run_in_process(
        "check",
        "--env",
        environment,
        "--sources",
        "azure",
        *target,
        "--arm-endpoint",
        arm.url,
        "--azure-token-env",
        TOKEN_VARIABLE,
        "-o",
        f"json:{out}",
    )
    assert result.code in (0, 1, 3), result.output
    return Report.model_validate_json(out.read_text(encoding="utf-8"))


def _az_environment(
    arm: ArmEmulator, az_python: str, home: Path, subscription: str
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AZURE_", "IDENTITY_", "MSI_", "ENGRAM_"))
        and "PROXY" not in key.upper()
    }
    env.update(
        PATH=f"{Path(az_python).parent}{os.pathsep}{env.get('PATH', '')}",
        AZURE_CONFIG_DIR=str(home),
        AZURE_CORE_COLLECT_TELEMETRY="0",
        AZURE_CORE_ONLY_SHOW_ERRORS="1",
        REQUESTS_CA_BUNDLE=arm.ca_pem,
        IDENTITY_ENDPOINT=arm.identity_endpoint,
        IDENTITY_HEADER=arm.identity_header,
        **{name: value.format(sub=subscription) for name, value in PERSON.items()},
    )
    return env


def _az(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        ["az", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"az {' '.join(args)}: {result.stderr}"


def _login(arm: ArmEmulator, env: dict[str, str]) -> None:
    _az(
        env,
        "cloud",
        "register",
        "--name",
        "EngramEmulator",
        "--endpoint-resource-manager",
        f"{arm.url}/",
        "--endpoint-active-directory",
        arm.url,
        "--endpoint-active-directory-resource-id",
        "https://management.core.windows.net/",
        "--skip-endpoint-discovery",
    )
    _az(env, "cloud", "set", "--name", "EngramEmulator")
    _az(env, "login", "--identity", "--output", "none")


def _key(finding: Any) -> tuple[str, str]:
    return finding.rule, finding.resource.casefold()


def _scripted_keys(report: Report) -> set[tuple[str, str]]:
    """The failures ``azure.sh`` runs a command for (the rest is listed for a person)."""
    return {_key(f) for f in scripted(report)}


def _apply_and_reaudit(
    arm: ArmEmulator,
    az_python: str,
    tmp_path: Path,
    environment: str,
    target: list[str],
) -> tuple[Report, Report, str]:
    subscription = target[1]
    before = _audit(arm, environment, target, tmp_path / "before.json")
    fixes = tmp_path / "fixes"
    result = run_in_process("remediate", str(tmp_path / "before.json"), "-o", str(fixes))
    assert result.code == 0, result.output
    script = (fixes / "azure.sh").read_text(encoding="utf-8")
    env = _az_environment(arm, az_python, tmp_path / "az", subscription)
    _login(arm, env)
    arm.reset_log()
    applied = subprocess.run(
        ["bash", str(fixes / "azure.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    assert arm.violations == []
    assert [w for w in arm.writes if w.status >= 400] == []
    after = _audit(arm, environment, target, tmp_path / "after.json")
    return before, after, script


def _assert_fixed(before: Report, after: Report) -> list[str]:
    """Scripted failures pass, nothing else changes verdict, findings judged only now pass (or
    are SKIP by design); the rules fixed."""
    was = {_key(f): f for f in before.findings}
    now = {_key(f): f for f in after.findings}
    assert set(was) <= set(now), sorted(set(was) - set(now))
    run = _scripted_keys(before)
    fixed = sorted(f.rule for f in before.findings if _key(f) in run)
    assert fixed, "the drifted snapshot has no scripted Azure fix"
    for key, finding in was.items():
        expected = Status.PASS if key in run else finding.status
        assert now[key].status is expected, (key, finding.actual, now[key].actual)
    for key in set(now) - set(was):  # judged only now: PgBouncer's pool once it is on
        assert now[key].status in (Status.PASS, Status.SKIP), (key, now[key].message)
        assert key[0] in fixed, key
    return fixed


@pytest.mark.parametrize("environment", ["dev", "staging", "uat", "prod"])
def test_azure_sh_run_by_the_real_cli_turns_scripted_failures_into_passes(
    environment: str, az_python: str, emulator: ArmEmulator, tmp_path: Path
) -> None:
    target, world = _world(environment)
    emulator.add_world(world)

    before, after, script = _apply_and_reaudit(emulator, az_python, tmp_path, environment, target)

    fixed = _assert_fixed(before, after)
    # Every write named this environment's server (or, for an alert, its group).
    server_id = world["servers"][0]["server"]["id"].casefold()
    for write in emulator.writes:
        assert write.path.casefold().startswith(server_id) or "/metricalerts/" in (
            write.path.casefold()
        ), write.path
    # What was left to a person is still failing, and said so in the script.
    run = _scripted_keys(before)
    for finding in before.findings:
        if (
            finding.status is Status.FAIL
            and _key(finding) not in run
            and "server_id" in finding.facts
        ):
            assert finding.rule in script and "needs a person" in script
    assert fixed


def test_list_parameters_keep_their_entries_and_static_ones_restart_once(
    az_python: str, emulator: ArmEmulator, tmp_path: Path
) -> None:
    """Production without pgaudit preloaded or allow-listed: the fix appends pgaudit to what
    the server lists (pg_cron stays), and the static shared_preload_libraries is set last,
    followed by one restart of that server."""
    target, world = _world("prod")
    world = copy.deepcopy(world)
    _set_parameter(world, "shared_preload_libraries", "pg_cron,pg_stat_statements")
    _set_parameter(world, "azure.extensions", "VECTOR,PG_STAT_STATEMENTS")
    emulator.add_world(world)

    before, after, _ = _apply_and_reaudit(emulator, az_python, tmp_path, "prod", target)

    fixed = _assert_fixed(before, after)
    assert {"ZEP-AZ-PGAUDIT-PRELOAD", "ZEP-AZ-PGAUDIT-ALLOWLIST"} <= set(fixed)
    sent = {
        w.path.rsplit("/", 1)[-1]: w.body["properties"]["value"]
        for w in emulator.writes
        if "/configurations/" in w.path
    }
    assert sent["shared_preload_libraries"] == "pg_cron,pg_stat_statements,pgaudit"
    assert sent["azure.extensions"] == "VECTOR,PG_STAT_STATEMENTS,pgaudit"
    methods = [(w.method, w.path.rsplit("/", 1)[-1]) for w in emulator.writes]
    restarts = [i for i, (method, name) in enumerate(methods) if name == "restart"]
    assert [methods[i][0] for i in restarts] == ["POST"]
    assert restarts[0] == len(methods) - 1  # after every change, the static one included
    assert methods[restarts[0] - 1][1] == "shared_preload_libraries"
