"""Azure's documented extension versions, shipped as package data, and version comparison."""

from __future__ import annotations

import json
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from engram_audit.checks.postgres import azure_reference
from engram_audit.checks.postgres.azure_reference import documented_extensions, extension_offer
from engram_audit.checks.postgres.common import version_key

ROOT = Path(__file__).parents[2]
DATA = ROOT / "engram_audit" / "checks" / "postgres" / "data" / "extensions.json"


def test_the_data_file_ships_with_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["engram_audit"]
    relative = DATA.relative_to(ROOT / "engram_audit").as_posix()
    assert any(fnmatch(relative, pattern) for pattern in patterns), patterns


def test_every_entry_names_its_source() -> None:
    table = json.loads(DATA.read_text(encoding="utf-8"))
    assert table["_about"]["source_url"].startswith("https://learn.microsoft.com/")
    for name, entry in table["extensions"].items():
        assert entry["source"], name
        assert set(entry["versions"]) <= {str(major) for major in range(11, 19)}, name


@pytest.mark.parametrize(
    ("extension", "major", "version", "allow_listed"),
    [
        ("vector", 16, "0.8.2", True),
        ("vector", 12, "0.7.0", True),
        ("vector", 11, "0.5.1", True),
        ("pg_diskann", 18, "0.6.5", True),
        ("pg_diskann", 16, "0.6.4", True),
        ("pg_diskann", 13, None, False),
        ("pg_stat_statements", 16, "1.10", True),
        ("pg_stat_statements", 18, "1.12", True),
    ],
)
def test_documented_offers(
    extension: str, major: int, version: str | None, allow_listed: bool
) -> None:
    offer = extension_offer(extension, major)
    assert offer is not None
    assert offer.version == version
    assert offer.offered is (version is not None)
    assert offer.in_allow_list is allow_listed
    assert "extensions-table.md@" in offer.source


def test_what_is_not_documented_is_none_not_a_guess() -> None:
    assert extension_offer("vector", 19) is None
    assert extension_offer("vector", 10) is None
    assert extension_offer("no_such_extension", 16) is None
    assert "vector" in documented_extensions()


def test_the_table_is_read_once_and_lazily() -> None:
    azure_reference._extension_table.cache_clear()
    assert azure_reference._extension_table.cache_info().currsize == 0
    extension_offer("vector", 16)
    extension_offer("pgaudit", 16)
    assert azure_reference._extension_table.cache_info().misses == 1


@pytest.mark.parametrize(
    ("left", "right"),
    [("0.5", "0.5.0"), ("0.5.0", "0.5.0.0"), ("1", "1.0"), ("1.10", "1.10.0"), ("0", "0.0")],
)
def test_versions_padded_with_zeros_are_equal(left: str, right: str) -> None:
    assert version_key(left) == version_key(right)


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("0.5", "0.5.1"),
        ("0.8.0", "0.10.0"),
        ("1.8", "1.10"),
        ("1.4-1", "1.5"),
        ("0.9.9", "1"),
        ("1.0.0", "1.0.1"),
        ("0", "0.0.1"),
    ],
)
def test_versions_order_numerically(older: str, newer: str) -> None:
    assert version_key(older) < version_key(newer)


def test_build_suffixes_count_by_their_leading_digits() -> None:
    assert version_key("1.4-1") == (1, 4)
    assert version_key("0.8.0-beta") == (0, 8)
    assert version_key("x.1") == (0, 1)


def test_azure_reserves_fifteen_connections() -> None:
    """concepts-limits: reserved_connections 5 + superuser_reserved_connections 10."""
    from engram_audit.checks.postgres.azure_reference import azure_reserved_connections

    assert azure_reserved_connections() == {
        "superuser_reserved_connections": 10,
        "reserved_connections": 5,
    }
    document = json.loads((DATA.parent / "connections.json").read_text(encoding="utf-8"))
    assert "concepts-limits.md@" in document["_about"]["source"]
    for name, count in document["reserved"].items():
        versions = document["parameters"][name]
        assert set(versions) == {str(major) for major in range(11, 19)}
        assert {entry["default"] for entry in versions.values()} == {str(count)}
        assert {entry["parameter_type"] for entry in versions.values()} == {"read-only"}
