"""Incremental fetch sessions (KIP-227) with a real client that uses them by default:
kafka-python 3 (Fetch v7+, `enable_incremental_fetch_sessions=True`). A consumer of six
partitions reads records produced in waves while it fetches; every record comes back once, in
order per partition, and the broker's FetchSessionCache gauges show the session and its six
partitions. With `max.incremental.fetch.session.cache.slots=0` the same consumer is served
without a session and reads the same records."""

import time
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import Node, free_port
from test_metrics import scrape, total

PARTITIONS = 6
WAVES = 5
PER_WAVE = 120


def consume_waves(bootstrap, port):
    """Produces WAVES waves while one assigned consumer reads; returns what it read per
    partition and the largest session gauges seen during the reads."""
    topic = f"fs-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=100)
    parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(parts)
    consumer.seek_to_beginning()
    got = {p: [] for p in range(PARTITIONS)}
    seen_sessions, seen_partitions = 0, 0
    expected = WAVES * PER_WAVE
    for wave in range(WAVES):
        for i in range(PER_WAVE):
            n = wave * PER_WAVE + i
            producer.send(topic, value=f"{n}".encode(), partition=n % PARTITIONS)
        producer.flush(timeout=20)
        deadline = time.time() + 30
        while sum(len(v) for v in got.values()) < (wave + 1) * PER_WAVE and time.time() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                got[tp.partition].extend((r.offset, int(r.value)) for r in records)
        samples = scrape(port)
        seen_sessions = max(seen_sessions, total(samples, "kafka_server_fetchsessioncache_numincrementalfetchsessions") or 0)
        seen_partitions = max(seen_partitions, total(samples, "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached") or 0)
    producer.close()
    consumer.close()
    assert sum(len(v) for v in got.values()) == expected, {p: len(v) for p, v in got.items()}
    for p, records in got.items():
        offsets = [o for o, _ in records]
        assert offsets == list(range(len(records))), f"partition {p}: offsets {offsets[:20]}..."
        values = [v for _, v in records]
        assert values == [n for n in range(expected) if n % PARTITIONS == p], f"partition {p}"
    return seen_sessions, seen_partitions


def test_kafka_python_reads_through_an_incremental_session(tmp_path):
    port = free_port()
    node = Node(tmp_path, {"metrics.listener": f"http://127.0.0.1:{port}"})
    try:
        sessions, partitions = consume_waves(node.bootstrap, port)
        assert sessions >= 1, "kafka-python opened an incremental fetch session"
        assert partitions >= PARTITIONS, f"the session holds the consumer's partitions ({partitions})"
    finally:
        node.stop()


def test_without_session_slots_the_consumer_fetches_in_full(tmp_path):
    port = free_port()
    node = Node(tmp_path, {"metrics.listener": f"http://127.0.0.1:{port}",
                           "max.incremental.fetch.session.cache.slots": "0"})
    try:
        sessions, _ = consume_waves(node.bootstrap, port)
        assert sessions == 0
    finally:
        node.stop()
