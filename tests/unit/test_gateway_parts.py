"""The gateway's parts without a broker: cutting bodies into events, the accepted index, tokens."""

from __future__ import annotations

import pytest

from producers.gateway.auth import AuthError, authorize
from producers.gateway.body import UNPARSED, BodyError, split
from producers.gateway.index import AcceptedIndex


def test_each_event_keeps_its_own_bytes():
    compact = b'[{"a":1},{"b":[1,{"c":2}]}]'
    assert [raw for raw, _ in split(compact, "application/json", 10)] == [b'{"a":1}', b'{"b":[1,{"c":2}]}']
    spaced = b' [ {"a":1, "a":2} ,\n 5, NaN, {"x": "]"} ] '
    items = split(spaced, "application/json", 10)
    assert [raw for raw, _ in items] == [b'{"a":1, "a":2}', b"5", b"NaN", b'{"x": "]"}']
    lines = split(b'{"a":1}\r\n\n{oops\n', "application/x-ndjson; charset=utf-8", 10)
    assert lines[0][0] == b'{"a":1}' and lines[1] == (b"{oops", UNPARSED)
    assert split(b'{\n "a": 1\n}\n', "application/json", 10) == [(b'{\n "a": 1\n}', {"a": 1})]
    assert len(split(b'{"a":1}\n{"b":2}\n', "", 10)) == 2  # curl without a Content-Type: NDJSON sniffed


@pytest.mark.parametrize(("body", "ctype", "status"), [
    (b"", "application/json", 400), (b"[]", "application/json", 400), (b"[1,]", "application/json", 400),
    (b"[1] 2", "application/json", 400), (b'"x"', "application/json", 400), (b"\n\n", "application/x-ndjson", 400),
    (b"{}", "text/csv", 415), (b"[1,2,3]", "application/json", 413), (b"1\n2\n3\n", "application/x-ndjson", 413),
])  # fmt: skip
def test_malformed_bodies(body, ctype, status):
    with pytest.raises(BodyError) as info:
        split(body, ctype, 2)
    assert info.value.status == status


def test_index_is_bounded_and_survives_a_restart(tmp_path):
    path = tmp_path / "accepted.log"
    index = AcceptedIndex(path, capacity=3)
    index.add_many([(f"H1 e{i}", f"fp{i}") for i in range(5)])
    assert len(index) == 3 and index.get("H1 e0") is None and index.get("H1 e4") == "fp4"
    index.add_many([(f"H2 e{i}", "x") for i in range(5)])  # past twice the bound: compacted
    index.close()
    assert len(path.read_text().splitlines()) <= 6
    again = AcceptedIndex(path, capacity=3)
    assert [again.get(f"H2 e{i}") for i in (1, 2, 3, 4)] == [None, "x", "x", "x"]


def test_authorize(tmp_path):
    from fupin.auth import create_token
    from fupin.config import load_settings

    settings = load_settings(data_dir=str(tmp_path))
    token = create_token(settings, "department:education")[1]
    assert authorize(settings, f"Bearer {token}") == "education"
    analyst = create_token(settings, "analyst")[1]
    for header, status in ((None, 401), ("", 401), (token, 401), ("Basic abc", 401), ("Bearer nope", 401),
                           (f"Bearer {analyst}", 403)):
        with pytest.raises(AuthError) as info:
            authorize(settings, header)
        assert info.value.status == status and token not in str(info.value)
