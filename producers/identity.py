"""Person identity: check a raw resident ID, derive birth date and sex, replace it with a pseudonym.

The raw 18-character resident ID (居民身份证号, GB 11643) never leaves the producer. Its last
character is an ISO 7064 MOD 11-2 check; digits 7–14 are the birth date; digit 17 is odd for
men. The pseudonym is ``P`` + the first 32 hex digits of HMAC-SHA256(key, ID), so the same
person gets the same ``person_id`` in every department that shares the key, and nobody without
the key can test a guessed ID against it. Error reasons never echo the ID.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from operator import mul

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


class IdentityError(ValueError):
    """A resident ID that cannot be used; ``reason`` never contains the ID itself."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Person:
    person_id: str
    birth_date: str  # ISO date
    sex: str  # "M" | "F"


def check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits."""
    if len(first17) != 17:
        raise ValueError("need 17 digits")
    return _CHECK[sum(map(mul, map(int, first17), _WEIGHTS)) % 11]


def parse_resident_id(raw: str) -> tuple[str, str]:
    """(birth date ISO, sex) of a valid ID; raises IdentityError naming what is wrong, not the ID."""
    if not isinstance(raw, str):
        raise IdentityError("resident ID missing")
    rid = raw.strip().upper()
    if len(rid) != 18:
        raise IdentityError(f"resident ID has {len(rid)} characters, expected 18")
    if not rid[:17].isdigit() or not (rid[17].isdigit() or rid[17] == "X"):
        raise IdentityError("resident ID has characters other than digits and a final X")
    if check_digit(rid[:17]) != rid[17]:
        raise IdentityError("resident ID checksum (ISO 7064 MOD 11-2) does not match")
    try:
        born = date(int(rid[6:10]), int(rid[10:12]), int(rid[12:14]))
    except ValueError:
        raise IdentityError("resident ID holds an impossible birth date") from None
    if born.year < 1880:
        raise IdentityError("resident ID holds an implausible birth year")
    return born.isoformat(), ("M" if int(rid[16]) % 2 else "F")


def make_resident_id(region6: str, born: date, sequence: int, sex: str) -> str:
    """A synthetic ID with a valid checksum (simulator): ``sequence`` 0–499 picks the order code."""
    order = (sequence % 500) * 2 + (1 if sex == "M" else 0)
    body = f"{region6}{born:%Y%m%d}{order:03d}"
    return body + check_digit(body)


class Pseudonymizer:
    """Keyed pseudonyms for one key. Refuses to exist without a key: no key, no start."""

    def __init__(self, key: str | bytes) -> None:
        if not key:
            raise ValueError("pseudonym key is empty: set FUPIN_PSEUDONYM_KEY")
        self._key = key.encode() if isinstance(key, str) else bytes(key)
        self.person = lru_cache(maxsize=262_144)(self._person)

    def pseudonym(self, raw: str) -> str:
        """``P`` + 32 lowercase hex of HMAC-SHA256 over the normalised ID (no checks)."""
        digest = hmac.new(self._key, raw.strip().upper().encode(), hashlib.sha256).hexdigest()
        return "P" + digest[:32]

    def _person(self, raw: str) -> Person:
        born, sex = parse_resident_id(raw)
        return Person(self.pseudonym(raw), born, sex)
