"""Azure's parameter catalogue: shipped in the wheel, every fact with its source, read right."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import tomllib
from pathlib import Path

import pytest

from engram_audit.checks.azure.catalogue import (
    Availability,
    ParameterCatalogue,
    allowed_values,
    parameter_catalogue,
)

ROOT = Path(__file__).parents[2]
DATA = ROOT / "engram_audit" / "checks" / "azure" / "data" / "server-parameters.json"
REFERENCE = ROOT.parent / "shared" / "reference" / "azure-server-parameters.json"
VERSIONS = [str(v) for v in range(11, 19)]


def _offer(name: str, major: str | None, tier: str | None, **values: str) -> Availability:
    catalogue = parameter_catalogue()
    return catalogue.offer(name, major=major, tier=tier, value_of=values.get).availability


def test_the_catalogue_is_package_data_of_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["engram_audit"]
    relative = DATA.relative_to(ROOT / "engram_audit").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), patterns


def test_every_fact_names_its_source() -> None:
    catalogue = parameter_catalogue()
    assert any("learn.microsoft.com" in url for url in catalogue.source_urls)
    for facts in catalogue.parameters.values():
        assert facts.source, facts.name
        for major, row in facts.versions.items():
            assert row.source, (facts.name, major)


def _builder() -> object:
    spec = importlib.util.spec_from_file_location(
        "build_parameter_catalogue", ROOT / "scripts" / "build_parameter_catalogue.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"reference not on this machine: {REFERENCE}")
def test_the_shipped_file_is_the_builders_output_from_the_reference() -> None:
    build = _builder().build  # type: ignore[attr-defined]
    expected = build(json.loads(REFERENCE.read_text(encoding="utf-8")))
    assert json.loads(DATA.read_text(encoding="utf-8")) == expected, (
        "regenerate: python scripts/build_parameter_catalogue.py"
    )


def test_pgbouncer_is_the_ten_parameters_microsoft_lists() -> None:
    catalogue = parameter_catalogue()
    for major in VERSIONS:
        offered = sorted(
            name
            for name, facts in catalogue.parameters.items()
            if name.startswith("pgbouncer.") and (row := facts.on(major)) and row.exists
        )
        assert offered == [
            "pgbouncer.default_pool_size",
            "pgbouncer.enabled",
            "pgbouncer.ignore_startup_parameters",
            "pgbouncer.max_client_conn",
            "pgbouncer.max_prepared_statements",
            "pgbouncer.min_pool_size",
            "pgbouncer.pool_mode",
            "pgbouncer.query_wait_timeout",
            "pgbouncer.server_idle_timeout",
            "pgbouncer.stats_users",
        ], major
        assert (
            _offer(
                "pgbouncer.server_lifetime",
                major,
                "GeneralPurpose",
                **{"pgbouncer.enabled": "true"},
            )
            is Availability.NOT_OFFERED
        )


@pytest.mark.parametrize(
    ("name", "major", "tier", "values", "availability"),
    [
        ("require_secure_transport", "11", "Burstable", {}, Availability.OFFERED),
        ("require_secure_transport", "18", "GeneralPurpose", {}, Availability.OFFERED),
        ("ssl_min_protocol_version", "11", "GeneralPurpose", {}, Availability.NOT_OFFERED),
        ("ssl_min_protocol_version", "12", "GeneralPurpose", {}, Availability.OFFERED),
        ("connection_throttle.enable", "18", "GeneralPurpose", {}, Availability.NOT_OFFERED),
        ("connection_throttle.enable", "17", "GeneralPurpose", {}, Availability.OFFERED),
        ("pgbouncer.enabled", "16", "Burstable", {}, Availability.NOT_OFFERED),
        ("pgbouncer.enabled", "16", "burstable", {}, Availability.NOT_OFFERED),
        ("pgbouncer.enabled", "16", "GeneralPurpose", {}, Availability.OFFERED),
        ("pgbouncer.enabled", "16", "MemoryOptimized", {}, Availability.OFFERED),
        ("pgbouncer.enabled", "16", None, {}, Availability.UNKNOWN),
        (
            "pgbouncer.default_pool_size",
            "16",
            "GeneralPurpose",
            {"pgbouncer.enabled": "true"},
            Availability.OFFERED,
        ),
        (
            "pgbouncer.default_pool_size",
            "16",
            "GeneralPurpose",
            {"pgbouncer.enabled": "TRUE"},
            Availability.OFFERED,
        ),
        (
            "pgbouncer.default_pool_size",
            "16",
            "GeneralPurpose",
            {"pgbouncer.enabled": "false"},
            Availability.NOT_OFFERED,
        ),
        ("pgbouncer.default_pool_size", "16", "GeneralPurpose", {}, Availability.UNKNOWN),
        (
            "pgbouncer.default_pool_size",
            "16",
            "Burstable",
            {"pgbouncer.enabled": "true"},
            Availability.NOT_OFFERED,
        ),
        ("require_secure_transport", None, "GeneralPurpose", {}, Availability.UNKNOWN),
        ("require_secure_transport", "19", "GeneralPurpose", {}, Availability.UNKNOWN),
        ("md5_password_warnings", "16", "GeneralPurpose", {}, Availability.UNKNOWN),
        ("no_such_parameter", "16", "GeneralPurpose", {}, Availability.UNKNOWN),
    ],
)
def test_offer(
    name: str,
    major: str | None,
    tier: str | None,
    values: dict[str, str],
    availability: Availability,
) -> None:
    assert _offer(name, major, tier, **values) is availability


def test_names_are_found_in_any_case() -> None:
    catalogue = parameter_catalogue()
    facts = catalogue.get("Require_Secure_Transport")
    assert facts is not None and facts.name == "require_secure_transport"


@pytest.mark.parametrize(
    ("text", "data_type", "value", "admitted"),
    [
        ("on,off", "Boolean", "ON", True),
        ("on,off", "boolean", "true", False),
        ("true, false", "Boolean", "false", True),
        ("TLSv1.2,TLSv1.3", "Enumeration", "TLSv1.1", False),
        (",TLSv1.2,TLSv1.3", "Enumeration", "", True),
        ("1-4950", "Integer", "4950", True),
        ("1-4950", "Integer", "0", False),
        ("1-4950", "Integer", "many", False),
        ("-1-2147483647", "Integer", "-1", True),
        ("-1-2147483647", "integer", "-2", False),
        ("0.0-0.9", "Numeric", "0.95", False),
        ("10", "Integer", "10", True),
        (",age,vector,pg_stat_statements", "Set", "VECTOR, PG_STAT_STATEMENTS", True),
        (",age,vector,pg_stat_statements", "Set", "vector,plperl", False),
        (",age,vector", "Set", "", True),
        ("[A-Za-z0-9_]+", "String", "anything at all", None),
    ],
)
def test_allowed_values(text: str, data_type: str, value: str, admitted: bool | None) -> None:
    allowed = allowed_values(text, data_type)
    assert allowed is not None
    assert allowed.admits(value) is admitted


def test_long_lists_of_allowed_values_are_shortened() -> None:
    allowed = allowed_values(",".join(f"ext{n}" for n in range(20)), "Set")
    assert allowed is not None
    assert allowed.describe() == "ext0, ext1, ext2, ext3, ext4, ext5, ext6, ext7, ... (20 values)"


def test_listed_parameters_follow_version_tier_and_switch() -> None:
    catalogue = parameter_catalogue()

    def names(tier: str, **values: str) -> set[str]:
        return {facts.name for facts, _ in catalogue.listed(major="16", tier=tier, values=values)}

    burstable = names("Burstable")
    assert "require_secure_transport" in burstable
    assert not any(name.startswith("pgbouncer.") for name in burstable)
    general = names("GeneralPurpose")
    assert {n for n in general if n.startswith("pgbouncer.")} == {"pgbouncer.enabled"}
    enabled = names("GeneralPurpose", **{"pgbouncer.enabled": "true"})
    assert len({n for n in enabled if n.startswith("pgbouncer.")}) == 10
    assert "pgbouncer.server_lifetime" not in enabled
    assert "ssl_min_protocol_version" not in {
        facts.name for facts, _ in catalogue.listed(major="11", tier="Burstable", values={})
    }


def test_a_document_without_optional_sections_still_loads() -> None:
    catalogue = ParameterCatalogue({"parameters": {}})
    assert catalogue.source_urls == ()
    assert catalogue.get("anything") is None
