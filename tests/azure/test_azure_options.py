"""Targeting options, environment variables, and every "cannot even start" error."""

from __future__ import annotations

import os
import pty
import select
from typing import Any

import click
import pytest
from click.testing import CliRunner

from engram_audit.cli.azure_options import (
    AZURE_OPTION_NAMES,
    azure_options,
    azure_request_from_options,
)
from engram_audit.cli.common import allow_empty_option
from engram_audit.collectors.azure.collector import (
    AzureCollectionError,
    AzureRequest,
    collect_azure,
)
from engram_audit.collectors.azure.errors import AzureTargetError
from tests.azure.conftest import TOKEN, TOKEN_VARIABLE, Collect
from tests.support.arm_emulator import ArmEmulator
from tests.support.arm_world import load_world

SUB = "0b9e6c3a-5d1f-4c2e-8a7b-3f9d1e2c4a60"


@click.command()
@azure_options
def probe(**options: Any) -> None:
    request = azure_request_from_options(options)
    click.echo(repr(request))


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(probe, args, env=env or {})
    return result.exit_code, result.output


def test_the_options_build_the_request() -> None:
    code, output = _run(
        [
            "--subscription",
            SUB,
            "--tag",
            "environment = prod",
            "--azure-token-env",
            "ARM_TOKEN",
            "--arm-endpoint",
            "https://127.0.0.1:8443",
            "--cloud",
            "AzureUSGovernment",
            "--timeout",
            "45",
            "--concurrency",
            "16",
        ]
    )
    assert code == 0, output
    assert output.strip() == repr(
        AzureRequest(
            subscription_id=SUB,
            tag=("environment", "prod"),
            arm_endpoint="https://127.0.0.1:8443",
            cloud="AzureUSGovernment",
            token_env="ARM_TOKEN",
            timeout_seconds=45.0,
            concurrency=16,
        )
    )


def test_every_option_also_comes_from_an_engram_audit_variable() -> None:
    env = {
        "ENGRAM_AUDIT_SUBSCRIPTION": SUB,
        "ENGRAM_AUDIT_RESOURCE_GROUP": "rg",
        "ENGRAM_AUDIT_SERVER": "db",
        "ENGRAM_AUDIT_AZURE_TOKEN_ENV": "VAR",
        "ENGRAM_AUDIT_ARM_ENDPOINT": "https://arm.example",
        "ENGRAM_AUDIT_CLOUD": "AzureChinaCloud",
        "ENGRAM_AUDIT_TIMEOUT": "12",
        "ENGRAM_AUDIT_CONCURRENCY": "3",
    }
    code, output = _run([], env)
    assert code == 0, output
    assert output.strip() == repr(
        AzureRequest(
            SUB, "rg", "db", None, "https://arm.example", "AzureChinaCloud", "VAR", 12.0, 3
        )
    )
    code, output = _run([], {"ENGRAM_AUDIT_SUBSCRIPTION": SUB, "ENGRAM_AUDIT_TAG": "env=prod"})
    assert "tag=('env', 'prod')" in output


@click.command()
@azure_options
@allow_empty_option
def run_wide_probe(**options: Any) -> None:
    request = azure_request_from_options(options)
    click.echo(repr(request.allow_empty if request else None))


@pytest.mark.parametrize(
    ("args", "env", "allowed"),
    [
        ([], {}, "False"),
        (["--allow-empty"], {}, "True"),
        ([], {"ENGRAM_AUDIT_ALLOW_EMPTY": "1"}, "True"),
        ([], {"ENGRAM_AUDIT_ALLOW_EMPTY": "false"}, "False"),
    ],
)
def test_allow_empty_is_a_run_wide_flag_carried_on_the_azure_request(
    args: list[str], env: dict[str, str], allowed: str
) -> None:
    target = ["--subscription", SUB, "--tag", "environment=prod"]
    result = CliRunner().invoke(run_wide_probe, target + args, env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == allowed


def test_no_azure_target_means_no_request() -> None:
    assert _run([]) == (0, "None\n")
    assert set(AZURE_OPTION_NAMES) == {p.name for p in probe.params}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "db"], "--server needs --subscription ID"),
        (["--subscription", "prod-sub", "--tag", "a=b"], "must be a subscription id (a GUID)"),
        (["--subscription", SUB, "--server", "db"], "--server NAME needs --resource-group RG"),
        (["--subscription", SUB], "--subscription alone is too broad"),
        (
            ["--subscription", SUB, "--resource-group", "rg", "--server", "db", "--tag", "a=b"],
            "not both",
        ),
        (["--subscription", SUB, "--tag", "environment"], "expected KEY=VALUE"),
        (["--subscription", SUB, "--tag", "a=b", "--azure-token-env", "eyJ0.x y"], "NAME of an"),
        (["--subscription", SUB, "--tag", "a=b", "--concurrency", "0"], "--concurrency"),
        (["--subscription", SUB, "--tag", "a=b", "--cloud", "Mars"], "--cloud"),
    ],
)
def test_inconsistent_options_are_usage_errors(args: list[str], message: str) -> None:
    code, output = _run(args)
    assert code == 2
    assert message in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("postgresql://zep:Misplaced-pw1@db/zep", "looks like a connection string (not shown)"),
        ("host=db password=Misplaced-pw1", "looks like a connection string (not shown)"),
        ("Misplaced-pw1", "got 13 characters that are not one (not shown)"),
    ],
)
def test_a_wrong_subscription_is_never_echoed(value: str, message: str) -> None:
    """A DSN or token pasted into --subscription must not reach a CI log."""
    code, output = _run(["--subscription", value, "--tag", "a=b"])
    assert code == 2
    assert message in output
    assert "Misplaced-pw1" not in output


def _request(**fields: Any) -> AzureRequest:
    return AzureRequest(SUB, "rg", "db", token_env=TOKEN_VARIABLE, **fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"arm_endpoint": "http://127.0.0.1:8080"}, "must be an https:// URL"),
        ({"arm_endpoint": "https://user:hunter2@arm.example"}, "without credentials"),
        ({"arm_endpoint": "https://"}, "has no host"),
        ({"arm_endpoint": "https://[::1"}, "not a valid URL"),
        ({"cloud": "AzureGermanCloud"}, "unknown Azure cloud"),
        ({"concurrency": 0}, "concurrency must be between 1 and 64"),
        ({"timeout_seconds": 0}, "timeout must be positive"),
    ],
)
def test_bad_targets_fail_before_any_request(
    fields: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    with pytest.raises(AzureCollectionError) as raised:
        collect_azure(_request(**fields), show_progress=False)
    text = str(raised.value)
    assert message in text
    assert "\n" not in text
    assert "hunter2" not in text


def test_a_missing_or_malformed_token_variable_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    request = _request(arm_endpoint="https://127.0.0.1:1")
    with pytest.raises(AzureCollectionError, match="is not set or empty"):
        collect_azure(request, show_progress=False)
    monkeypatch.setenv(TOKEN_VARIABLE, "two words")
    with pytest.raises(AzureCollectionError, match="does not look like a bearer token") as raised:
        collect_azure(request, show_progress=False)
    assert "two words" not in str(raised.value)


def test_an_unreadable_ca_bundle_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    with pytest.raises(AzureCollectionError, match="REQUESTS_CA_BUNDLE points at /nonexistent"):
        collect_azure(_request(arm_endpoint="https://127.0.0.1:1"), show_progress=False)


def test_ssl_cert_file_is_honoured_too(
    arm: ArmEmulator, collect: Collect, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = load_world("prod-unseen-compliant")
    arm.add_world(world)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("SSL_CERT_FILE", arm.ca_pem)

    collection = collect(world["subscriptionId"], resource_group="rg-engram-prod-euw")

    assert collection.issues == ()
    assert len(collection.section.servers) == 1


@pytest.mark.azure
def test_progress_goes_to_a_terminal_stderr_only(
    arm: ArmEmulator,
    collect: Collect,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = load_world("prod-unseen-compliant")
    arm.add_world(world)
    fields: dict[str, Any] = {
        "resource_group": "rg-engram-prod-euw",
        "arm_endpoint": arm.url,
        "token_env": TOKEN_VARIABLE,
    }

    collect_azure(AzureRequest(world["subscriptionId"], **fields), show_progress=True)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")  # not a terminal: quiet

    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        monkeypatch.setattr("sys.stderr", terminal)
        collect_azure(AzureRequest(world["subscriptionId"], **fields), show_progress=True)
    shown = b""
    while select.select([leader], [], [], 0.2)[0]:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert b"Azure: 1/1 servers, 11 ARM reads, " in shown
    assert b"s waiting for the read budget" in shown
    assert TOKEN.encode() not in shown


@pytest.mark.parametrize(
    ("proxy", "said"),
    [
        ("socks5://user:s3cret-pw@127.0.0.1:1080", "must be an http:// or https:// URL"),
        ("user:s3cret-pw@proxy.corp:3128", "must be an http:// or https:// URL"),
        ("http://user:s3cret-pw@[::1", "is not a valid URL"),
        ("http://user:s3cret-pw@proxy:port", "is not a valid URL"),
    ],
    ids=["socks", "no-scheme-but-credentials", "broken-ipv6", "port-not-a-number"],
)
def test_a_proxy_the_transport_cannot_use_is_a_settings_error_that_hides_its_password(
    arm: ArmEmulator,
    collect: Collect,
    monkeypatch: pytest.MonkeyPatch,
    proxy: str,
    said: str,
) -> None:
    world = load_world("prod-unseen-compliant")
    arm.add_world(world)
    monkeypatch.setenv("HTTPS_PROXY", proxy)

    with pytest.raises(AzureTargetError) as caught:
        collect(world["subscriptionId"], tag=("app", "zep"))

    assert said in str(caught.value)
    assert "s3cret" not in str(caught.value) and "user" not in str(caught.value)
    assert arm.requests == []


def test_https_proxy_and_no_proxy_from_the_environment_are_honoured(
    arm: ArmEmulator, collect: Collect, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = load_world("prod-unseen-compliant")
    arm.add_world(world)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there

    through_proxy = collect(world["subscriptionId"], tag=("app", "zep"), timeout_seconds=2)

    assert through_proxy.section.servers == ()
    (issue,) = through_proxy.issues
    assert issue.part is None and "ProxyError" in issue.reason
    assert arm.requests == []

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = collect(world["subscriptionId"], tag=("app", "zep"))

    assert direct.issues == () and len(direct.section.servers) == 1
