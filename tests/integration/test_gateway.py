"""The HTTP gateway on the embedded broker: a real server on loopback, a real HTTP client.

Verdicts per event in order (accepted, duplicate, rejected with the judgement's reason), dead
letters for the rejected, events on the topic as soon as the answer is there, tokens, limits, and
429 while the broker does not acknowledge.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid

import orjson
import pytest
from gateway_support import dibao, get, post, read_topic, running_gateway, token_for

from fupin.auth import tokens_file
from fupin.broker import create_topics, free_port, start_broker
from fupin.topics import all_topics, deadletter_topic, department_topic
from streams.deadletter import header_dict

#: A resident ID with a valid check digit (GB 11643 example): the gateway must refuse it.
RAW_ID = "11010519491231002X"


@pytest.fixture
def gateway(broker_settings):
    with running_gateway(broker_settings) as url:
        yield url, broker_settings, token_for(broker_settings, "department:civil_affairs")


def test_verdicts_in_order_and_on_the_topic_when_answered(gateway, broker, caplog):
    caplog.set_level(logging.INFO)
    url, settings, token = gateway
    a, b = dibao(1), dibao(2)
    bad_schema = dibao(3)
    del bad_schema["region_code"]
    raw_id = dibao(4, source_system=f"dibao {RAW_ID}")
    wrong_dept = {**dibao(5), "event_type": "water.water_assessed", "department": "water",
                  "payload": {"safe": True, "issues": []}}
    conflict = {**a, "payload": {"monthly_amount": 999.0, "persons_covered": 2}}
    batch = [a, b, a, bad_schema, raw_id, wrong_dept, conflict]
    status, _, answer = post(url, orjson.dumps(batch), token)
    assert status == 200, answer
    verdicts = [e["verdict"] for e in answer["events"]]
    assert verdicts == ["accepted", "accepted", "duplicate", "rejected", "rejected", "rejected", "rejected"]
    assert [e["event_id"] for e in answer["events"]] == [e["event_id"] for e in batch]
    reasons = [e.get("reason", "") for e in answer["events"]]
    assert "region_code: required field is missing" in reasons[3]
    assert "raw identifier" in reasons[4] and RAW_ID not in reasons[4]
    assert "department" in reasons[5] and "civil_affairs" in reasons[5]
    assert reasons[6].startswith(f"conflicting duplicate: event_id {a['event_id']}")
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (2, 1, 4)

    # Published only when acknowledged: readable right after the answer, each once.
    topic = department_topic(settings, "civil_affairs")
    records = read_topic(broker, [topic])
    assert sorted(orjson.loads(r.value)["event_id"] for r in records) == sorted([a["event_id"], b["event_id"]])
    assert all(r.key == orjson.loads(r.value)["household_id"].encode() for r in records)
    letters = read_topic(broker, [deadletter_topic(settings)])
    assert len(letters) == 4
    by_index = {int(header_dict(r.headers)["fupin.source_partition"]): r for r in letters}
    assert sorted(by_index) == [3, 4, 5, 6]
    for index, letter in by_index.items():
        h = header_dict(letter.headers)
        assert h["fupin.source"] == "gateway" and h["fupin.source_topic"] == topic
        assert int(h["fupin.source_offset"]) == answer["request_id"]
        assert h["fupin.reason"] == reasons[index]
    assert RAW_ID.encode() not in by_index[4].value and b"[redacted]" in by_index[4].value
    assert header_dict(by_index[4].headers)["fupin.redacted"] == "true"

    # A resend (the department got no answer): nothing new on the topic.
    status, _, again = post(url, orjson.dumps(batch), token)
    assert status == 200
    assert [e["verdict"] for e in again["events"]][:3] == ["duplicate", "duplicate", "duplicate"]
    assert again["accepted"] == 0
    assert len(read_topic(broker, [topic])) == 2
    assert token not in caplog.text


def test_one_object_and_ndjson(gateway, broker):
    url, settings, token = gateway
    one = dibao(10)
    status, _, answer = post(url, orjson.dumps(one, option=orjson.OPT_INDENT_2), token)
    assert status == 200 and answer["events"] == [{"event_id": one["event_id"], "verdict": "accepted"}]
    lines = [dibao(11), dibao(12)]
    body = b"\n".join(orjson.dumps(e) for e in lines) + b"\n{not json\n" + orjson.dumps(lines[0]) + b"\n"
    status, _, answer = post(url, body, token, "application/x-ndjson")
    assert status == 200
    assert [e["verdict"] for e in answer["events"]] == ["accepted", "accepted", "rejected", "duplicate"]
    assert answer["events"][2]["reason"].startswith("not valid JSON")
    # A repeated key is the judgement's verdict on that event, whatever the body's form.
    repeated = orjson.dumps(dibao(13))[:-1] + b',"source_system":"x"}'
    status, _, answer = post(url, b"[" + repeated + b"]", token)
    assert status == 200 and "repeated key" in answer["events"][0]["reason"]
    topic = department_topic(settings, "civil_affairs")
    assert len(read_topic(broker, [topic])) == 3


def test_tokens(gateway, broker_settings):
    url, settings, token = gateway
    body = orjson.dumps(dibao(20))
    status, headers, answer = post(url, body, None)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer") and "error" in answer
    assert post(url, body, "not-a-token")[0] == 401
    assert post(url, body, token[:-1])[0] == 401
    analyst = token_for(settings, "analyst")
    status, _, answer = post(url, body, analyst)
    assert status == 403 and "analyst" in answer["error"]
    water = token_for(settings, "department:water")
    status, _, answer = post(url, body, water)
    assert status == 200 and answer["events"][0]["verdict"] == "rejected"
    assert "'water'" in answer["events"][0]["reason"]
    stored = tokens_file(settings)
    assert os.stat(stored).st_mode & 0o777 == 0o600
    assert token not in stored.read_text()


def test_malformed_and_limits(broker_settings):
    settings = broker_settings.with_(gateway_max_events=5, gateway_max_bytes=4000)
    with running_gateway(settings) as url:
        token = token_for(settings, "department:civil_affairs")
        assert post(url, orjson.dumps([dibao(i) for i in range(6)]), token)[0] == 413
        status, _, answer = post(url, b"[" + b" " * 5000 + b"]", token)
        assert status == 413 and "4000" in answer["error"]
        for body in (b"", b"[", b"[]", b"42", b"[1,]"):
            status, _, answer = post(url, body, token)
            assert status == 400 and answer["error"], body
        assert post(url, b"{}", token, "text/csv")[0] == 415
        status, _, answer = post(url, orjson.dumps([dibao(i) for i in range(5)]), token)
        assert status == 200 and answer["accepted"] == 5


def test_schemas_openapi_and_docs(gateway):
    url, _, _ = gateway
    status, _, body = get(url, "/v1/schemas")
    listed = {e["event_type"]: e["versions"] for e in orjson.loads(body)["event_types"]}
    assert status == 200 and listed["health_insurance.hospitalization_settled"] == [1, 2]
    status, _, body = get(url, "/v1/schemas/civil_affairs.dibao_enrolled/1")
    assert status == 200 and orjson.loads(body)["properties"]["event_type"]["const"] == "civil_affairs.dibao_enrolled"
    assert get(url, "/v1/schemas/civil_affairs.dibao_enrolled/7")[0] == 404
    assert get(url, "/v1/schemas/nothing.here/1")[0] == 404
    assert get(url, "/v1/schemas/civil_affairs.dibao_enrolled/" + "9" * 5000)[0] in (404, 414)
    status, _, body = get(url, "/openapi.json")
    doc = orjson.loads(body)
    assert doc["openapi"] == "3.1.0" and "civil_affairs.dibao_enrolled.v1" in doc["components"]["schemas"]
    status, headers, page = get(url, "/docs")
    assert status == 200 and b"/docs/static/swagger-ui-bundle.js" in page and b"http" not in page.split(b"<body>")[1]
    status, headers, js = get(url, "/docs/static/swagger-ui-bundle.js")
    assert status == 200 and len(js) > 100_000 and headers["content-type"].startswith("text/javascript")


def test_busy_broker_gets_429_then_duplicates(tmp_path, settings):
    """A broker that does not acknowledge (stopped): 429 with Retry-After, nothing lost or doubled."""
    port = free_port()
    proc = start_broker(port, tmp_path / "broker.log")
    try:
        bootstrap = f"127.0.0.1:{port}"
        s = settings.with_(broker_bootstrap=bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:8]}",
                           gateway_ack_timeout=1.0, gateway_max_pending=5)
        create_topics(bootstrap, all_topics(s), s.topic_partitions)
        with running_gateway(s) as url:
            token = token_for(s, "department:civil_affairs")
            assert post(url, orjson.dumps(dibao(0)), token)[2]["accepted"] == 1
            batch = orjson.dumps([dibao(i) for i in range(1, 9)])
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                status, headers, answer = post(url, batch, token)
                assert status == 429 and int(headers["retry-after"]) >= 1, answer
                status, headers, answer = post(url, batch, token)
                assert status == 429 and "behind" in answer["error"]
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            deadline = time.monotonic() + 30
            while orjson.loads(get(url, "/health")[2])["in_flight"] and time.monotonic() < deadline:
                time.sleep(0.1)
            status, _, answer = post(url, batch, token)
            assert status == 200 and answer["duplicate"] == 8, answer
        topic = department_topic(s, "civil_affairs")
        ids = [orjson.loads(r.value)["event_id"] for r in read_topic(bootstrap, [topic])]
        assert len(ids) == 9 == len(set(ids))
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(10)


def test_started_by_fupin_up_and_found_by_status(tmp_path):
    """`fupin up` with gateway_port set starts it; `status --json` names its URL; `down` stops it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUPIN_")}
    env.update(FUPIN_DATA_DIR=str(tmp_path / "data"), FUPIN_GATEWAY_PORT="0")

    def fupin(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fupin.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    try:
        up = fupin("up", "--no-warehouse")
        assert up.returncode == 0, up.stderr
        report = json.loads(fupin("status", "--json").stdout)
        url = report["gateway_url"]
        assert url and f"at {url}" in up.stdout
        token = fupin("token", "create", "--role", "department:civil_affairs").stdout.strip()
        status, _, answer = post(url, orjson.dumps(dibao(1)), token)
        assert status == 200 and answer["accepted"] == 1
    finally:
        down = fupin("down", "--timeout", "10")
    assert "gateway pid" in down.stdout and "stopped" in down.stdout
    assert not (tmp_path / "data" / "gateway.json").exists()


def test_an_event_larger_than_the_broker_takes_is_rejected(broker_settings):
    """A valid household of 9,000 members is past the producer's 1 MB a message: rejected, no 500."""
    members = [{"person_id": f"P{i:032x}", "relation": "child", "birth_date": "2001-01-01", "sex": "F",
                "labour_capacity": "normal"} for i in range(9000)]
    huge = {**dibao(30), "event_type": "poverty_office.household_registered", "department": "poverty_office",
            "payload": {"year_identified": 2015, "poverty_causes": ["disability"], "members": members}}
    small = {**huge, "event_id": str(uuid.uuid4()), "payload": {**huge["payload"], "members": members[:2]}}
    with running_gateway(broker_settings) as url:
        token = token_for(broker_settings, "department:poverty_office")
        status, _, answer = post(url, orjson.dumps([huge, small]), token)
        assert status == 200, answer
        assert [e["verdict"] for e in answer["events"]] == ["rejected", "accepted"]
        assert "the broker takes at most" in answer["events"][0]["reason"]
        assert orjson.loads(get(url, "/health")[2])["in_flight"] == 0
