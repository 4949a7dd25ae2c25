"""Value normalisation: booleans exactly as PostgreSQL parses them, plus ARM's spellings."""

from __future__ import annotations

import itertools

import pytest

from engram_audit.model.values import as_bool, pg_bool


def _pg_strncasecmp(s1: str, s2: str, n: int) -> int:
    """src/port/pgstrcasecmp.c over C strings (a NUL ends each), ASCII folding only."""
    a, b = s1 + "\0", s2 + "\0"
    for i in range(n):
        ch1 = a[i] if i < len(a) else "\0"
        ch2 = b[i] if i < len(b) else "\0"
        if ch1 != ch2:
            ch1 = ch1.lower() if "A" <= ch1 <= "Z" else ch1
            ch2 = ch2.lower() if "A" <= ch2 <= "Z" else ch2
            if ch1 != ch2:
                return ord(ch1) - ord(ch2)
        if ch1 == "\0":
            break
    return 0


def _parse_bool_with_len(value: str) -> bool | None:
    """A line-by-line transliteration of parse_bool_with_len() in src/backend/utils/adt/bool.c."""
    length = len(value)
    first = value[:1]
    if first in ("t", "T") and _pg_strncasecmp(value, "true", length) == 0:
        return True
    if first in ("f", "F") and _pg_strncasecmp(value, "false", length) == 0:
        return False
    if first in ("y", "Y") and _pg_strncasecmp(value, "yes", length) == 0:
        return True
    if first in ("n", "N") and _pg_strncasecmp(value, "no", length) == 0:
        return False
    if first in ("o", "O"):
        # 'o' is not unique enough
        if _pg_strncasecmp(value, "on", max(length, 2)) == 0:
            return True
        if _pg_strncasecmp(value, "off", max(length, 2)) == 0:
            return False
    if first == "1" and length == 1:
        return True
    if first == "0" and length == 1:
        return False
    return None


ALPHABET = "trueFALSyYnNoO10x "


def test_pg_bool_agrees_with_bool_c_on_every_short_string() -> None:
    """All strings of up to four characters over the letters that matter, and a few more."""
    for size in range(5):
        for letters in itertools.product(ALPHABET, repeat=size):
            value = "".join(letters)
            assert pg_bool(value) is _parse_bool_with_len(value), repr(value)


@pytest.mark.parametrize(
    ("spelling", "meaning"),
    [
        ("on", True),
        ("off", False),
        ("true", True),
        ("false", False),
        ("yes", True),
        ("no", False),
        ("1", True),
        ("0", False),
        ("OFF", False),
        ("True", True),
        ("t", True),
        ("tr", True),
        ("f", False),
        ("fal", False),
        ("of", False),
        ("y", True),
        ("ye", True),
        ("n", False),
        ("N", False),
    ],
)
def test_every_spelling_postgresql_accepts(spelling: str, meaning: bool) -> None:
    assert pg_bool(spelling) is meaning
    assert as_bool(spelling) is meaning


@pytest.mark.parametrize(
    "spelling",
    ["", "o", "O", "onn", "offf", "truex", "nope", "00", "01", "10", "2", "-1", "enabled", "yes!"],
)
def test_what_postgresql_rejects_is_not_a_boolean(spelling: str) -> None:
    assert pg_bool(spelling) is None


def test_blanks_are_not_skipped_by_parse_bool_but_are_by_as_bool() -> None:
    """A storage parameter ' off' is rejected by PostgreSQL; ARM values may carry blanks."""
    assert pg_bool(" off") is None
    assert pg_bool("off ") is None
    assert as_bool(" off ") is False


def test_only_ascii_letters_fold() -> None:
    """bool.c folds ASCII only: a Kelvin sign or a long s never spells a boolean."""
    assert pg_bool("ye\u017f") is None  # long s casefolds to "s"
    assert as_bool("ye\u017f") is None
    assert pg_bool("\uff54rue") is None  # fullwidth t


@pytest.mark.parametrize(
    ("value", "meaning"),
    [("Enabled", True), ("enable", True), ("Disabled", False), ("DISABLE", False)],
)
def test_arm_switch_spellings(value: str, meaning: bool) -> None:
    assert as_bool(value) is meaning


@pytest.mark.parametrize("value", [None, "maybe", "o", "", "e", "d"])
def test_unreadable_values_are_none(value: object) -> None:
    assert as_bool(value) is None


def test_python_booleans_pass_through() -> None:
    assert as_bool(True) is True
    assert as_bool(False) is False
