"""Packed values (stored household states) and the privacy scan: it reads what they hold."""

from __future__ import annotations

import orjson

from fupin import packing, privacy
from fupin.scan import findings_in
from streams import household

#: A resident ID with a valid check digit (GB 11643's example).
RAW_ID = "11010519491231002X"


def test_a_packed_state_is_scanned_as_what_it_holds():
    state = household.new_state("H1")
    # Many valid-time keys: compressed, their digits and separators make digit runs of their own.
    state["log"] = [[f"20{16 + i % 6}-0{1 + i % 9}-1{i % 10}T00:00:00.000Z|2021-03-0{1 + i % 9}T08:00:00.000Z|"
                     f"{i:08d}-0000-4000-8000-{i * 7919:012d}", "visit", None, None, None] for i in range(400)]  # fmt: skip
    packed = household.encode(state)
    assert packed[:1] == packing.PACKED and packing.unpack(packed) == orjson.dumps(state)
    assert list(findings_in(packed)) == []
    state["log"][7][2] = f"reason {RAW_ID}"  # what a compressed value could hide
    assert [kind for _, kind in findings_in(household.encode(state))] == [privacy.RESIDENT_ID_18]


def test_a_value_that_only_looks_packed_is_scanned_as_it_is():
    fake = packing.PACKED + f"not lz4 {RAW_ID} here".encode()
    assert packing.unpack(fake) == fake
    assert [kind for _, kind in findings_in(fake)] == [privacy.RESIDENT_ID_18]
