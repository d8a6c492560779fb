import time

from kafka import KafkaConsumer, KafkaProducer

from fupin.broker import list_topics
from fupin.topics import all_topics, department_topic


def test_topics_created_and_round_trip(broker_settings):
    s = broker_settings
    assert set(all_topics(s)) <= set(list_topics(s.broker_bootstrap))
    topic = department_topic(s, "water")
    producer = KafkaProducer(bootstrap_servers=s.broker_bootstrap, acks="all")
    for i in range(10):
        producer.send(topic, key=f"H{i}".encode(), value=f"v{i}".encode())
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=s.broker_bootstrap,
        group_id="t",
        auto_offset_reset="earliest",
        max_poll_interval_ms=5000,
    )
    seen: set[bytes] = set()
    deadline = time.monotonic() + 30
    while len(seen) < 10 and time.monotonic() < deadline:
        for records in consumer.poll(500).values():
            seen.update(r.value for r in records)
    consumer.close()
    assert seen == {f"v{i}".encode() for i in range(10)}
