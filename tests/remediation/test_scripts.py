"""``engram-audit remediate``: scripts per server and database from a report's failures."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from engram_audit.model import Finding, Report, Severity, Status
from engram_audit.remediation.scripts import build, scripted, split_sql
from tests.support.cli import run_in_process

ROOT = Path(__file__).parents[2]
SERVER = (
    "/subscriptions/0/resourceGroups/far-rg/providers/Microsoft.DBforPostgreSQL"
    "/flexibleServers/zep-x-db"
)


def _report(environment: str, tmp_path: Path) -> Path:
    out = tmp_path / f"{environment}.json"
    snapshot = ROOT / "fixtures" / "snapshots" / f"{environment}-drifted.json"
    run_in_process("check", "--snapshot", str(snapshot), "-o", f"json:{out}")
    return out


def test_remediate_writes_reviewed_scripts(tmp_path: Path) -> None:
    report = _report("prod", tmp_path)
    result = run_in_process("remediate", str(report), "-o", str(tmp_path / "fix"))
    assert result.code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "fix").iterdir())
    assert files == ["README.md", "azure.sh", "postgres-zep.sql"]
    script = (tmp_path / "fix" / "azure.sh").read_text(encoding="utf-8")
    assert "set -euo pipefail" in script and "zep-prod-db" in script
    subprocess.run(["bash", "-n", str(tmp_path / "fix" / "azure.sh")], check=True)
    sql = (tmp_path / "fix" / "postgres-zep.sql").read_text(encoding="utf-8")
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.messages_session_id_idx_ccnew;" in sql
    assert sql.index("\nDROP INDEX") < sql.index("\nCREATE INDEX CONCURRENTLY")
    readme = (tmp_path / "fix" / "README.md").read_text(encoding="utf-8")
    assert "ZEP-AZ-GEO-BACKUP" in readme and "new server" in readme


def _finding(rule: str, fix: str, **facts: str | tuple[str, ...]) -> Finding:
    return Finding(
        rule=rule,
        check="c",
        title="t",
        severity=Severity.HIGH,
        status=Status.FAIL,
        resource=SERVER,
        expected="e\nx",
        actual="a",
        remediation=fix,
        facts=dict(facts),
    )


def test_static_parameters_go_last_before_one_restart_and_sql_is_ordered() -> None:
    restart = f" && az postgres flexible-server restart --ids {SERVER}  # static"
    findings = (
        _finding(
            "R1",
            "az p set --name shared_preload_libraries" + restart,
            server_id=SERVER,
            restart="required",
        ),
        _finding("R2", "az p set --name other" + restart, server_id=SERVER, restart="required"),
        _finding(
            "R3",
            "az postgres flexible-server update --ids x --public-access Disabled",
            server_id=SERVER,
        ),
        _finding("R4", "VACUUM (ANALYZE) public.t;", database="zep"),
        _finding("R5", "ALTER TABLE public.t RESET (autovacuum_enabled);", database="zep"),
    )
    base = json.loads((ROOT / "tests" / "golden" / "report.json").read_text(encoding="utf-8"))
    report = Report.model_validate({**base, "findings": []}).model_copy(
        update={"findings": findings}
    )
    files = build(report)
    script = files["azure.sh"]
    assert script.count("flexible-server restart") == 1
    assert script.index("--public-access") < script.index("shared_preload_libraries")
    assert script.rstrip().endswith(f"az postgres flexible-server restart --ids {SERVER}")
    assert "\ne\n" not in script  # audited text stays on its comment line
    sql = files["postgres-zep.sql"]
    assert (
        sql.index("BEGIN;") < sql.index("ALTER TABLE") < sql.index("COMMIT;") < sql.index("VACUUM")
    )


def test_split_sql_keeps_quotes_and_trailing_comments() -> None:
    assert split_sql("DROP INDEX CONCURRENTLY a; -- why; not a statement\nSELECT ';';") == [
        ("DROP INDEX CONCURRENTLY a;", "why; not a statement"),
        ("SELECT ';';", ""),
    ]


def test_a_command_two_rules_share_runs_once(tmp_path: Path) -> None:
    """Staging's SKU tier and size rules have the same fix: the script runs it once (a second
    compute change would only ask again), under both rules' comments."""
    result = run_in_process(
        "remediate", str(_report("staging", tmp_path)), "-o", str(tmp_path / "f")
    )
    assert result.code == 0, result.output
    script = (tmp_path / "f" / "azure.sh").read_text(encoding="utf-8")
    assert script.count("--sku-name Standard_B1ms --yes") == 1
    assert "ZEP-AZ-SKU-SIZE" in script and "ZEP-AZ-SKU-TIER" in script
    assert "#   the same command as above" in script


def test_public_access_is_not_cut_before_a_private_endpoint_is_approved(tmp_path: Path) -> None:
    """prod-drifted: public access is enabled and the only private endpoint is Pending, so
    disabling public access now would leave Zep no way in: azure.sh holds it for a person."""
    path = _report("prod", tmp_path)
    report = Report.model_validate_json(path.read_text(encoding="utf-8"))
    public = next(f for f in report.findings if f.check == "azure.network.public_access")
    private = next(f for f in report.findings if f.check == "azure.network.private_connectivity")
    assert (public.status, private.status) == (Status.FAIL, Status.FAIL)
    assert "--public-access Disabled" in public.remediation

    files = build(report)
    runnable = [
        line
        for line in files["azure.sh"].splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert not any("--public-access Disabled" in line for line in runnable)
    assert "#   az postgres flexible-server update --ids" in files["azure.sh"]
    assert "no approved private endpoint" in files["README.md"]
    assert public not in scripted(report)

    # Once the endpoint is approved (the rule passes), the same fix is scripted.
    approved = report.model_copy(
        update={
            "findings": tuple(
                f.model_copy(update={"status": Status.PASS, "remediation": ""})
                if f is private
                else f
                for f in report.findings
            )
        }
    )
    runnable = [
        line
        for line in build(approved)["azure.sh"].splitlines()
        if not line.lstrip().startswith("#")
    ]
    assert any("--public-access Disabled" in line for line in runnable)


def test_every_failure_of_the_drifted_snapshots_has_a_rendered_fix(tmp_path: Path) -> None:
    """No failure of the bundled drifted snapshots falls back to an unrendered template or a
    '<placeholder>': each names its real resource or says what a person does instead."""
    for environment in ("dev", "staging", "uat", "prod"):
        report = Report.model_validate_json(
            _report(environment, tmp_path).read_text(encoding="utf-8")
        )
        failures = [f for f in report.findings if f.status is Status.FAIL]
        assert failures, environment
        for finding in failures:
            fix = finding.remediation
            assert fix, (environment, finding.rule)
            assert "(not rendered" not in fix, (environment, finding.rule, fix)
            assert not re.search(r"<[a-z_-]+>|\{[a-z_]+\}", fix), (environment, finding.rule, fix)
