"""Resident ID checks and pseudonyms (GB 11643, ISO 7064 MOD 11-2)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from producers.identity import IdentityError, Pseudonymizer, check_digit, make_resident_id, parse_resident_id

# A published specimen number with a valid checksum (GB 11643 examples use it).
SPECIMEN = "11010519491231002X"


def test_check_digit_of_specimen():
    assert check_digit(SPECIMEN[:17]) == "X"
    assert parse_resident_id(SPECIMEN) == ("1949-12-31", "F")


def test_lowercase_x_and_spaces_are_accepted():
    assert parse_resident_id(" 11010519491231002x ") == ("1949-12-31", "F")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("110105194912310021", "checksum"),
        ("11010519491231002", "17 characters"),
        ("1101051949123100AX", "characters other than digits"),
        ("110105194913310028", "checksum"),
    ],
)
def test_bad_ids_are_rejected_without_echo(raw, fragment):
    with pytest.raises(IdentityError) as err:
        parse_resident_id(raw)
    assert fragment in err.value.reason
    assert raw not in err.value.reason and raw[:14] not in err.value.reason


def test_impossible_birth_date_with_valid_checksum():
    body = "11010519490230002"
    with pytest.raises(IdentityError, match="impossible birth date"):
        parse_resident_id(body + check_digit(body))


def test_made_ids_carry_birth_date_and_sex():
    for i in range(300):
        born = date(1930 + i % 90, 1 + i % 12, 1 + i % 28)
        sex = "MF"[i % 2]
        rid = make_resident_id("431224", born, i, sex)
        assert parse_resident_id(rid) == (born.isoformat(), sex)


def test_pseudonym_is_keyed_and_stable():
    a, b = Pseudonymizer("key-a"), Pseudonymizer("key-b")
    pa = a.person(SPECIMEN)
    assert re.fullmatch(r"P[0-9a-f]{32}", pa.person_id)
    assert a.person(SPECIMEN.lower()).person_id == pa.person_id
    assert b.person(SPECIMEN).person_id != pa.person_id
    assert (pa.birth_date, pa.sex) == ("1949-12-31", "F")


def test_no_key_no_pseudonymizer():
    with pytest.raises(ValueError, match="FUPIN_PSEUDONYM_KEY"):
        Pseudonymizer("")
