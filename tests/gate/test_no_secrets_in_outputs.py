"""No secret in any output: a live run against a real PostgreSQL and the HTTPS ARM emulator,
with a password planted in the DSNs and an ARM token planted in the environment. Every
format, the saved snapshot, stdout and the verbose log are searched for both."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from engram_audit.demo.server import free_loopback_port
from engram_audit.reporters import FORMATS
from tests.conftest import ROOT
from tests.support.arm_emulator import ArmEmulator, TlsMaterial
from tests.support.arm_world import load_world
from tests.support.cli import run_process
from tests.support.pg_servers import AUDITOR, KINDS, SeededServer, seeded_server

pytestmark = [pytest.mark.postgres, pytest.mark.azure]

# Distinctive, and with characters that URL-encoding would change, so an encoded leak shows too.
PASSWORD = f"Planted/pw:{secrets.token_hex(8)}@#"
TOKEN = f"eyJhbGciOiJSUzI1NiJ9.planted-{secrets.token_hex(12)}.c2ln"
TOKEN_VARIABLE = "ENGRAM_AUDIT_PLANTED_TOKEN"
SUBSCRIPTION = "0b9e6c3a-5d1f-4c2e-8a7b-3f9d1e2c4a60"
WORLD = "prod-unseen-drifted"  # fixtures/arm/prod-unseen-drifted.json


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededServer]:
    with seeded_server(KINDS[0], Path(tmp_path_factory.mktemp("secrets-pg"))) as seeded:
        with psycopg.connect(seeded.admin_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(AUDITOR), sql.Literal(PASSWORD)
                )
            )
        yield seeded


@pytest.fixture(scope="module")
def arm() -> Iterator[ArmEmulator]:
    with ArmEmulator(token=TOKEN, tls=TlsMaterial()) as emulator:
        emulator.add_world(load_world(WORLD))
        yield emulator


def leaks(text: str) -> list[str]:
    forms = {
        "password": PASSWORD,
        "password (url-encoded)": quote(PASSWORD, safe=""),
        "token": TOKEN,
        "token body": TOKEN.split(".")[1],
    }
    return [name for name, value in forms.items() if value in text]


def live_check(
    server: SeededServer, arm: ArmEmulator, tmp_path: Path, *, dsn: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    outputs = {name: tmp_path / f"report.{name}" for name in FORMATS}
    snapshot = tmp_path / "snapshot.json"
    env = {
        **{k: v for k, v in os.environ.items() if "PROXY" not in k.upper()},
        "REQUESTS_CA_BUNDLE": arm.ca_pem,
        TOKEN_VARIABLE: TOKEN,
        "PLANTED_AUDIT_DSN": dsn,
        # The application DSN the dsn checks parse: URI form, password percent-encoded.
        "ZEP_STORE_POSTGRES_DSN": f"postgresql://zep:{quote(PASSWORD, safe='')}@db.internal:5432/zep",
    }
    args = [
        sys.executable,
        "-m",
        "engram_audit",
        "-vv",
        "check",
        "--env",
        "prod",
        "--subscription",
        SUBSCRIPTION,
        "--resource-group",
        "rg-engram-prod-euw",
        "--server",
        "engram-zep-prod-eu2",
        "--azure-token-env",
        TOKEN_VARIABLE,
        "--arm-endpoint",
        arm.url,
        "--dsn-env",
        "PLANTED_AUDIT_DSN",
        "--save-snapshot",
        str(snapshot),
        *[f"-o{name}:{path}" for name, path in outputs.items()],
    ]
    result = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    written = {**outputs, "snapshot": snapshot}
    files = {name: p.read_text(encoding="utf-8") for name, p in written.items() if p.exists()}
    return result, files


def test_planted_password_and_token_appear_nowhere(
    server: SeededServer, arm: ArmEmulator, tmp_path: Path
) -> None:
    dsn = server.auditor_dsn(password=PASSWORD)
    result, files = live_check(server, arm, tmp_path, dsn=dsn)
    assert result.returncode in (1, 3), result.stderr[-3000:]
    assert set(files) == {*FORMATS, "snapshot"}, result.stderr[-3000:]
    # The run really used both secrets: it logged in to the database and read ARM.
    collected = json.loads(files["snapshot"])
    assert collected["postgres"]["databases"][0]["server_version_num"] >= 160000
    assert collected["azure"]["servers"][0]["parameters"]
    assert collected["dsn"]["entries"][0]["present"] is True
    for name, text in {**files, "stdout": result.stdout, "stderr (-vv log)": result.stderr}.items():
        assert leaks(text) == [], f"secret in {name}"


def test_a_rejected_password_is_not_echoed_in_the_error(
    server: SeededServer, arm: ArmEmulator, tmp_path: Path
) -> None:
    wrong = server.auditor_dsn(password=PASSWORD + "-wrong")
    result, files = live_check(server, arm, tmp_path, dsn=wrong)
    assert result.returncode != 0
    for name, text in {**files, "stdout": result.stdout, "stderr (-vv log)": result.stderr}.items():
        assert leaks(text) == [], f"secret in {name}"


# --- DSNs in every form libpq reads: no server needed ------------------------------------------


def _part() -> str:
    return f"Pw{secrets.token_hex(5)}"


def _dsn_variants() -> dict[str, tuple[str, tuple[str, ...]]]:
    """variable -> (application DSN, the secret pieces that must appear nowhere)."""
    a, b, c, d, e, f, g, h, i, j, k, m, n = (_part() for _ in range(13))
    return {
        # libpq ends the user information at the first '@': '?' and '#' belong to the password.
        "QMARK_DSN": (f"postgresql://zep:{a}?{b}@db.internal/zep?sslmode=require", (a, b)),
        "HASH_DSN": (f"postgresql://zep:{c}#x@db.internal/zep", (c,)),
        # libpq percent-decodes query keys and values before looking them up.
        "ENCODED_KEY_DSN": (
            f"postgresql://zep@db.internal/zep?pass%77ord={quote(d + '&/')}&sslmode=require",
            (d, quote(d + "&/", safe="")),
        ),
        "QUOTED_DSN": (f"host=db password='{e} {f}' sslmode=require", (e, f)),
        "ESCAPED_DSN": (f"host=db password='{g}\\'s' sslmode=require", (g,)),
        "BLANK_DSN": (f"host=db password={h}\\ {i} sslmode=verify-full", (h, i)),
        "SSLPASSWORD_DSN": (f"host=db sslpassword={j} sslmode=verify-full", (j,)),
        "SPACED_DSN": (f"host=db password   =   {k}   sslmode=require", (k,)),
        # Rejected by libpq: still never shown.
        "KEYWORD_ENCODED_DSN": (f"host=db pass%77ord={m} sslmode=require", (m,)),
        "UNCLOSED_DSN": (f"host=db password='{n}", (n,)),
    }


def _dsn_policy(tmp_path: Path, variables: list[str]) -> Path:
    policy = tmp_path / "dsn-policy.yaml"
    policy.write_text(
        "environment: prod\nrules:\n  - id: DSN-SSLMODE\n    check: dsn.sslmode\n"
        f"    severity: high\n    title: TLS in every DSN\n    params: {{variables: {variables}}}\n",
        encoding="utf-8",
    )
    return policy


def _outputs(tmp_path: Path) -> tuple[list[str], dict[str, Path]]:
    paths = {name: tmp_path / f"report.{name}" for name in FORMATS}
    return [f"-o{name}:{path}" for name, path in paths.items()], paths


def _leaks(texts: dict[str, str], pieces: dict[str, tuple[str, ...]]) -> list[str]:
    return [
        f"{variable} piece in {name}"
        for name, text in texts.items()
        for variable, parts in pieces.items()
        for part in parts
        if part in text
    ]


def test_application_dsn_passwords_appear_nowhere(tmp_path: Path) -> None:
    variants = _dsn_variants()
    outputs, paths = _outputs(tmp_path)
    snapshot = tmp_path / "snapshot.json"
    policy = _dsn_policy(tmp_path, list(variants))
    result = run_process(
        "-vv",
        "check",
        "--env",
        "prod",
        "--policy",
        str(policy),
        "--sources",
        "dsn",
        "--save-snapshot",
        str(snapshot),
        *outputs,
        env={variable: dsn for variable, (dsn, _) in variants.items()},
    )
    assert result.code in (1, 3), result.output
    written = {name: path.read_text(encoding="utf-8") for name, path in paths.items()}
    written["snapshot"] = snapshot.read_text(encoding="utf-8")
    entries = json.loads(written["snapshot"])["dsn"]["entries"]
    assert {entry["variable"] for entry in entries} == set(variants)
    assert all(entry["redacted"] for entry in entries)
    texts = {**written, "stdout": result.stdout, "stderr (-vv)": result.stderr}
    diff = run_process("diff", str(snapshot), str(snapshot), "--format", "json")
    texts["diff"] = diff.output
    assert _leaks(texts, {v: parts for v, (_, parts) in variants.items()}) == []


def test_audited_dsn_passwords_appear_nowhere_when_the_connection_fails(tmp_path: Path) -> None:
    port = free_loopback_port()  # nothing listens: libpq reports a refused connection
    a, b, c = _part(), _part(), _part()
    cases = {
        "qmark": (f"postgresql://auditor:{a}?{b}@127.0.0.1:{port}/zep?sslmode=disable", (a, b)),
        "encoded-key": (
            f"postgresql://auditor@127.0.0.1:{port}/zep?pass%77ord={c}&sslmode=disable",
            (c,),
        ),
    }
    for name, (dsn, pieces) in cases.items():
        outputs, paths = _outputs(tmp_path)
        result = run_process(
            "-vv",
            "check",
            "--env",
            "prod",
            "--sources",
            "postgres",
            "--dsn-env",
            "PLANTED_AUDIT_DSN",
            *outputs,
            env={"PLANTED_AUDIT_DSN": dsn},
        )
        assert result.code == 3 and "Connection refused" in result.stdout, result.output
        texts = {n: p.read_text(encoding="utf-8") for n, p in paths.items()}
        texts |= {"stdout": result.stdout, "stderr (-vv)": result.stderr}
        assert _leaks(texts, {name: pieces}) == []
