"""DSNs under libpq's rules: redaction of every secret form, effective sslmode, the dsn section."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest

from engram_audit.collectors.dsn import (
    DsnError,
    check_connection_settings,
    collect_dsns,
    dsn_secrets,
    effective_sslmode,
    parse_dsn,
    redact_dsn,
    scrub,
)
from engram_audit.model.plan import CollectionPlan
from engram_audit.redaction import SECRETS

SECRET = "S3cr3t-pw"


@pytest.mark.parametrize(
    ("dsn", "redacted"),
    [
        (
            f"postgresql://zep:{SECRET}@db:5432/zep?sslmode=require",
            "postgresql://zep:****@db:5432/zep?sslmode=require",
        ),
        (f"postgres://zep:{SECRET}@h1:5432,h2:5433/zep", "postgres://zep:****@h1:5432,h2:5433/zep"),
        (f"postgresql+psycopg://zep:{SECRET}@db/zep", "postgresql+psycopg://zep:****@db/zep"),
        (
            f"postgresql://zep@db/zep?password={SECRET}&sslmode=verify-full",
            "postgresql://zep@db/zep?password=****&sslmode=verify-full",
        ),
        (f"postgresql://db/zep?sslpassword={SECRET}", "postgresql://db/zep?sslpassword=****"),
        # '@' and '/' left unencoded in a password: everything up to the last '@' is masked.
        ("postgresql://zep:p@ss/w0rd@db/zep", "postgresql://zep:****@db/zep"),
        (
            f"host=db user=zep password={SECRET} sslmode=require",
            "host=db user=zep password=**** sslmode=require",
        ),
        (
            f"host=db password = '{SECRET} with spaces \\' quote' dbname=zep",
            "host=db password = **** dbname=zep",
        ),
        (f"host=db password='{SECRET}", "host=db password=****"),
        (
            f"host=db sslpassword={SECRET} oauth_client_secret={SECRET}2",
            "host=db sslpassword=**** oauth_client_secret=****",
        ),
        ("host=db user=zep", "host=db user=zep"),
        ("postgresql://zep@db/zep", "postgresql://zep@db/zep"),
    ],
)
def test_redaction_masks_every_secret_form(dsn: str, redacted: str) -> None:
    assert redact_dsn(dsn) == redacted
    assert SECRET not in redact_dsn(dsn)


def test_redacted_text_still_parses_to_the_same_connection() -> None:
    dsn = f"postgresql://zep:{SECRET}@db:6432/zep?sslmode=verify-full&application_name=api"
    original, masked = parse_dsn(dsn), parse_dsn(redact_dsn(dsn))
    assert masked["password"] == "****"
    assert {k: v for k, v in masked.items() if k != "password"} == {
        k: v for k, v in original.items() if k != "password"
    }


@pytest.mark.parametrize(
    ("dsn", "sslmode"),
    [
        ("postgresql://db/zep", "prefer"),  # libpq's default: falls back to plaintext
        ("host=db dbname=zep", "prefer"),
        ("postgresql://db/zep?sslmode=require", "require"),
        ("host=db sslmode=verify-full", "verify-full"),
        ("host=db sslmode=disable", "disable"),
        ("host=db sslrootcert=system", "verify-full"),  # libpq >= 16
        ("host=db sslrootcert=system sslmode=require", "require"),
        ("postgresql+asyncpg://db/zep?sslmode=verify-ca", "verify-ca"),
    ],
)
def test_effective_sslmode_follows_libpq(dsn: str, sslmode: str) -> None:
    assert effective_sslmode(parse_dsn(dsn)) == sslmode


def test_invalid_sslmode_and_unparseable_strings_never_quote_the_input() -> None:
    with pytest.raises(DsnError, match="invalid sslmode 'requre'"):
        effective_sslmode(parse_dsn("host=db sslmode=requre"))
    with pytest.raises(DsnError) as error:
        parse_dsn(f"host=db {SECRET}")
    assert SECRET not in str(error.value)
    assert 'missing "=" after "…"' in str(error.value)
    with pytest.raises(DsnError) as error:
        parse_dsn(f"postgresql://db/zep?{SECRET}=1")
    assert SECRET not in str(error.value)


def test_collect_dsns_one_entry_per_named_variable_in_order() -> None:
    plan = CollectionPlan(
        environment="prod",
        dsn_variables=("ZEP_STORE_POSTGRES_DSN", "WORKER_DSN", "MISSING", "EMPTY", "BROKEN"),
    )
    environ = {
        "ZEP_STORE_POSTGRES_DSN": f"postgres://zep:{SECRET}@db.postgres.database.azure.com/zep",
        "WORKER_DSN": f"host=db password={SECRET} sslmode=verify-full",
        "EMPTY": " ",
        "BROKEN": f"host=db sslmode=on password={SECRET}",
    }
    section = collect_dsns(plan, environ)
    entries = {entry.variable: entry for entry in section.entries}
    assert [entry.variable for entry in section.entries] == list(plan.dsn_variables)
    zep = entries["ZEP_STORE_POSTGRES_DSN"]
    assert (zep.present, zep.sslmode, zep.parse_error) == (True, "prefer", None)
    assert zep.redacted == "postgres://zep:****@db.postgres.database.azure.com/zep"
    assert entries["WORKER_DSN"].sslmode == "verify-full"
    assert (entries["MISSING"].present, entries["MISSING"].redacted) == (False, None)
    assert entries["EMPTY"].parse_error == "set but empty"
    broken = entries["BROKEN"]
    assert broken.sslmode is None
    assert broken.parse_error is not None
    assert "invalid sslmode 'on'" in broken.parse_error
    assert SECRET not in section.model_dump_json()


# --- redaction follows libpq's reading (fe-connect.c conninfo_parse / conninfo_uri_parse_options)


@pytest.mark.parametrize(
    ("dsn", "redacted", "secret"),
    [
        # The user information ends at the first '@' before any '/': '?' is part of it.
        ("postgresql://zep:Pa?ss-word1@db/zep", "postgresql://zep:****@db/zep", "Pa?ss-word1"),
        (
            "postgresql://zep:Pa?ss-word1@db/zep?sslmode=require",
            "postgresql://zep:****@db/zep?sslmode=require",
            "Pa?ss-word1",
        ),
        ("postgresql://zep:Pa#ss-word1@db/zep", "postgresql://zep:****@db/zep", "Pa#ss-word1"),
        # Query keys and values are percent-decoded before libpq looks them up.
        (
            "postgresql://zep@db/zep?pass%77ord=Hid%64en-pw1&sslmode=require",
            "postgresql://zep@db/zep?pass%77ord=****&sslmode=require",
            "Hidden-pw1",
        ),
        ("postgresql://zep:S3cr%65t-pw1@db/zep", "postgresql://zep:****@db/zep", "S3cret-pw1"),
        # key=value: quoted values with blanks and escapes, escaped blanks, blanks around '='.
        ("host=db password='a b c d' dbname=zep", "host=db password=**** dbname=zep", "a b c d"),
        (
            "host=db password='it\\'s s3cret' dbname=zep",
            "host=db password=**** dbname=zep",
            "it's s3cret",
        ),
        (
            "host=db password=Esc\\ aped-pw1 sslmode=require",
            "host=db password=**** sslmode=require",
            "Esc aped-pw1",
        ),
        (
            "host=db   password   =   Spaced-pw1   user=zep",
            "host=db   password   =   ****   user=zep",
            "Spaced-pw1",
        ),
        (
            "host=db sslpassword=Key-pass1 sslmode=verify-full",
            "host=db sslpassword=**** sslmode=verify-full",
            "Key-pass1",
        ),
        # A dbname that is itself a connection string with a password is masked whole.
        ("host=db dbname='host=x password=Nested-pw1'", "host=db dbname=****", "Nested-pw1"),
        # libpq reads 'p/x?host=z' as host, port and query here: masked up to the last '@'.
        ("postgresql://zep:Pw/x?host=z1@db/zep", "postgresql://zep:****@db/zep", "Pw/x?host=z1"),
    ],
)
def test_redaction_follows_libpq(dsn: str, redacted: str, secret: str) -> None:
    assert redact_dsn(dsn) == redacted
    assert secret not in redact_dsn(dsn) and quote(secret, safe="") not in redact_dsn(dsn)
    assert secret in dsn_secrets(dsn)


@pytest.mark.parametrize(
    ("dsn", "redacted", "secret"),
    [
        # Strings libpq rejects: what it cannot read is masked, never shown.
        ("pass%77ord=Typo-pw12 host=db", "**** host=db", "Typo-pw12"),
        ("host=db pasword=Typo-pw12 sslmode=require", "host=db **** sslmode=require", None),
        ("host=db password=first half-pw12", "host=db password=**** ****", "first"),
        ("host=db password='Unclosed-pw12", "host=db password=****", "Unclosed-pw12"),
        ("host=db Bare-pw12", "host=db ****", None),
        ("postgresql://zep:Pw/x?y@db/zep", "postgresql://zep:****@db/zep", "Pw/x?y"),
        (
            "postgresql://db/zep?password=a&Rest-pw12",
            "postgresql://db/zep?password=****&****",
            None,
        ),
        ("POSTGRESQL://zep:Upper-pw12@db/zep", "POSTGRESQL://zep:****@db/zep", "Upper-pw12"),
        ("postgresql://zep:Bad%zz-pw12@db/zep", "postgresql://zep:****@db/zep", "Bad%zz-pw12"),
    ],
)
def test_rejected_strings_are_masked_conservatively(
    dsn: str, redacted: str, secret: str | None
) -> None:
    with pytest.raises(DsnError):
        parse_dsn(dsn)
    assert redact_dsn(dsn) == redacted
    assert "pw12" not in redact_dsn(dsn)
    if secret is not None:
        assert secret in dsn_secrets(dsn)


def test_app_dsn_passwords_are_registered_with_the_output_scrubber() -> None:
    dsn = "postgresql://zep:Reg%69stered-pw@db/zep?sslpassword=Also-registered"
    entry = collect_dsns(CollectionPlan(environment="prod", dsn_variables=("X",)), {"X": dsn})
    assert "registered" not in entry.model_dump_json().lower()
    text = "Registered-pw Reg%69stered-pw Also-registered"
    assert SECRETS.scrub(text) == "******** ******** ********"


def test_nul_and_undecodable_dsns_are_dsn_errors() -> None:
    with pytest.raises(DsnError, match="NUL"):
        parse_dsn("host=db\x00password=x")
    with pytest.raises(DsnError, match="UTF-8"):
        parse_dsn("host=db password=\udcff")
    assert redact_dsn("host=db password=\udcffabcd") == "host=db password=****"


def test_scrub_ignores_fragments_shorter_than_the_scrubber_floor() -> None:
    assert scrub("response on port 5432", ("p", "long-secret")) == "response on port 5432"
    assert scrub("x long-secret-2 y", ("long-secret", "long-secret-2")) == "x **** y"


@pytest.mark.parametrize(
    "dsn",
    [
        "host=db.example.com sslmode=verify-full sslrootcert=system",
        "postgresql://zep@h1.example.com,h2.example.com:5433/zep?target_session_attrs=read-write",
        "host=/var/run/postgresql port=5432 gssencmode=disable channel_binding=prefer",
        "host=db hostaddr=10.0.0.7 port=6432 keepalives=1 application_name=audit",
        "postgresql://[2001:db8::1]:5432/zep?sslmode=require&load_balance_hosts=random",
    ],
)
def test_settings_libpq_accepts_pass_the_check_without_any_connection(dsn: str) -> None:
    # The probe points every host at an empty directory: nothing is resolved or contacted.
    check_connection_settings(parse_dsn(dsn), {})


def test_settings_check_reads_the_libpq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSSLMODE", "nope")  # libpq reads its PG* variables from the process
    with pytest.raises(DsnError, match='invalid sslmode value: "nope"'):
        check_connection_settings({"host": "db"}, os.environ)
