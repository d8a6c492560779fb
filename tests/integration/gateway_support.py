"""What the gateway's tests share: a real gateway on loopback, a real HTTP client, the topics' contents."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
from kafka import KafkaConsumer, TopicPartition

from fupin.auth import create_token
from producers.gateway.app import GatewayServer


@contextlib.contextmanager
def running_gateway(settings) -> Iterator[str]:
    """The gateway served by its own event loop on a thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    server = GatewayServer(settings, "127.0.0.1", 0)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=run, name="gateway", daemon=True)
    thread.start()
    started.wait(60)
    if failure:
        raise failure[0]
    try:
        yield server.url
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


def token_for(settings, role: str) -> str:
    return create_token(settings, role)[1]


def post(url: str, body: bytes, token: str | None, content_type: str = "application/json",
         path: str = "/v1/events") -> tuple[int, dict[str, str], Any]:  # fmt: skip
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, orjson.loads(data) if data else None
    finally:
        conn.close()


def get(url: str, path: str) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def dibao(i: int, household: str | None = None, **changes: Any) -> dict[str, Any]:
    """A valid civil_affairs.dibao_enrolled envelope (fresh event_id)."""
    env = {
        "event_id": str(uuid.uuid4()),
        "event_type": "civil_affairs.dibao_enrolled",
        "schema_version": 1,
        "department": "civil_affairs",
        "source_system": "county-dibao",
        "household_id": household or f"H431224104201-{i:04d}",
        "person_id": None,
        "region_code": "431224104201",
        "occurred_at": "2020-06-15",
        "recorded_at": "2020-06-16T09:30:00+08:00",
        "payload": {"monthly_amount": 420.0 + i, "persons_covered": 2},
    }
    env.update(changes)
    return env


def read_topic(bootstrap: str, topics: list[str], idle_polls: int = 2) -> list[Any]:
    """Every record of the topics from the beginning (ConsumerRecords: key, value, headers)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out, empty = [], 0
        while empty < idle_polls:
            batch = consumer.poll(timeout_ms=500, max_records=10000)
            if not batch:
                empty += 1
                continue
            empty = 0
            for records in batch.values():
                out.extend(records)
        return out
    finally:
        consumer.close()
