"""Schemathesis against the gateway's own /openapi.json: no 5xx, every answer as documented, and
every event the gateway called ``accepted`` on the topic exactly once (nothing lost, nothing doubled).

Positive generation only: the document describes valid envelopes, and an envelope that breaks the
contract is still a processed request (200 with a ``rejected`` verdict), not a 4xx, by design.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import timedelta

import orjson
import pytest
import schemathesis
from gateway_support import get, read_topic, running_gateway, token_for
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from fupin.broker import create_topics
from fupin.config import load_settings
from fupin.topics import DEPARTMENTS, all_topics, deadletter_topic, input_topics
from producers.gateway.openapi import document

DEPARTMENT = "civil_affairs"
#: Small batches: the document's maxItems follows the setting, and ten thousand generated events
#: an example would spend the test's time in generation, not in the gateway.
LIMITS = {"gateway_max_events": 20, "gateway_max_bytes": 1 << 20}
SEEN: dict[str, list] = {"accepted": [], "rejected": []}
REASONS: Counter = Counter()


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in items).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, broker):
    s = load_settings(data_dir=str(tmp_path_factory.mktemp("fuzz") / "data"), broker_bootstrap=broker,
                      topic_prefix=f"t{uuid.uuid4().hex[:10]}", **LIMITS)
    create_topics(broker, all_topics(s), s.topic_partitions)
    with running_gateway(s) as url:
        yield url, s, {d: token_for(s, f"department:{d}") for d in DEPARTMENTS}


def _schema():
    """The document the gateway serves (the test below checks that /openapi.json is this one).

    Built at collection, as Schemathesis' eager loader wants; its lazy loader (from a fixture)
    does not work with pytest 9.
    """
    loaded = schemathesis.openapi.from_dict(document(load_settings(env={}, **LIMITS)))
    loaded.config.generation.update(modes=[GenerationMode.POSITIVE], max_examples=50)
    # The contract's examples, then generated cases; the coverage phase's boundary combinations of
    # 42 event schemas would take minutes.
    loaded.config.phases.update(phases=["examples", "fuzzing"])
    return loaded


schema = _schema()


def test_served_document_is_the_fuzzed_one(fuzzed):
    url, s, _ = fuzzed
    status, _, body = get(url, "/openapi.json")
    assert status == 200 and orjson.loads(body) == document(s) == schema.raw_schema


@pytest.mark.timeout(240)
@schema.parametrize()
@settings(max_examples=50, deadline=timedelta(seconds=10),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_gateway_conforms_to_its_document(case, fuzzed):
    url, _, tokens = fuzzed
    # The token of the first event's department, so that generated events can be accepted too.
    first = (case.body[0] if case.body else None) if isinstance(case.body, list) else case.body
    department = first.get("department") if isinstance(first, dict) else None
    token = tokens.get(department, tokens[DEPARTMENT]) if isinstance(department, str) else tokens[DEPARTMENT]
    response = case.call_and_validate(base_url=url, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500
    if case.method == "POST" and response.status_code == 200:
        sent = case.body if isinstance(case.body, list) else [case.body]
        for event, verdict in zip(sent, response.json()["events"], strict=True):
            if verdict["verdict"] in SEEN:
                # An event is (household_id, event_id): the same id in another household is another event.
                SEEN[verdict["verdict"]].append((event.get("household_id") if isinstance(event, dict) else None,
                                                 verdict["event_id"]))
            REASONS[verdict.get("reason", verdict["verdict"])[:50]] += 1


def test_nothing_lost_or_doubled(fuzzed):
    """After the fuzzing: the topics hold exactly the accepted events, and a dead letter per rejection."""
    _, s, _ = fuzzed
    on_topics = [(e["household_id"], e["event_id"])
                 for e in (orjson.loads(r.value) for r in read_topic(s.broker_bootstrap, input_topics(s)))]
    assert sorted(on_topics) == sorted(SEEN["accepted"])
    assert len(on_topics) == len(set(on_topics))
    letters = read_topic(s.broker_bootstrap, [deadletter_topic(s)])
    assert len(letters) == len(SEEN["rejected"])
    print(f"fuzzed: {len(SEEN['accepted'])} accepted, {len(SEEN['rejected'])} rejected", REASONS.most_common(12))
