"""DSNs under libpq's rules: redaction of every secret form, effective sslmode, the dsn section."""

from __future__ import annotations

import pytest

from engram_audit.collectors.dsn import (
    DsnError,
    collect_dsns,
    effective_sslmode,
    parse_dsn,
    redact_dsn,
)
from engram_audit.model.plan import CollectionPlan

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
