"""confluent-kafka (librdkafka 2.16): admin, keyed produce across partitions, consume by assign,
timestamps, message size limits, auto-creation off."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def admin(node):
    return AdminClient({"bootstrap.servers": node.bootstrap})


def create(node, topic, partitions):
    # Keep the client alive until the future resolves: a collected client fails its futures.
    a = admin(node)
    a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(10)


def consume_all(node, topic, partitions, expected, timeout=20):
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "unused-" + uuid.uuid4().hex, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    while len(out) < expected and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        out.append(m)
    c.close()
    return out


def test_admin_create_and_delete_topics(node):
    a = admin(node)
    fs = a.create_topics([NewTopic("cf-admin", num_partitions=3, replication_factor=1)])
    fs["cf-admin"].result(10)
    md = a.list_topics(timeout=10)
    assert len(md.topics["cf-admin"].partitions) == 3
    # Creating it again is TOPIC_ALREADY_EXISTS; RF above the broker count is refused.
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic("cf-admin", num_partitions=1, replication_factor=1)])["cf-admin"].result(10)
    assert e.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic("cf-wide", num_partitions=1, replication_factor=3)])["cf-wide"].result(10)
    assert e.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR
    a.delete_topics(["cf-admin"])["cf-admin"].result(10)
    assert "cf-admin" not in a.list_topics(timeout=10).topics


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_keyed_produce_and_consume(node, codec):
    topic = f"cf-keys-{codec}"
    create(node, topic, 3)
    p = Producer({"bootstrap.servers": node.bootstrap, "compression.type": codec, "linger.ms": 5, "enable.idempotence": False})
    errors = []
    for i in range(300):
        p.produce(topic, key=f"key-{i % 7}", value=f"value-{i}", on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(20) == 0
    assert errors == []
    msgs = consume_all(node, topic, 3, 300)
    assert len(msgs) == 300
    # Each key went to one partition, and within it values are in order.
    part_of = {}
    for m in msgs:
        part_of.setdefault(m.key(), set()).add(m.partition())
    assert all(len(ps) == 1 for ps in part_of.values())
    per_key = {}
    for m in sorted(msgs, key=lambda m: (m.partition(), m.offset())):
        per_key.setdefault(m.key(), []).append(int(m.value().decode().split("-")[1]))
    assert all(v == sorted(v) for v in per_key.values())
    assert len({m.partition() for m in msgs}) > 1, "keys spread over partitions"


def test_consume_from_timestamp(node):
    topic = "cf-time"
    create(node, topic, 1)
    p = Producer({"bootstrap.servers": node.bootstrap, "enable.idempotence": False})
    base = 1_700_000_000_000
    for i in range(10):
        p.produce(topic, value=f"t{i}", timestamp=base + i * 1000)
    p.flush(10)
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    [tp] = c.offsets_for_times([TopicPartition(topic, 0, base + 4500)], timeout=10)
    assert tp.offset == 5
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (lo, hi) == (0, 10)
    c.close()


def test_message_size_limit(node):
    topic = "cf-size"
    create(node, topic, 1)
    p = Producer({"bootstrap.servers": node.bootstrap, "message.max.bytes": 4_000_000, "enable.idempotence": False, "compression.type": "none"})
    results = []
    # max.message.bytes (1048588) bounds the whole batch: header and record overhead included.
    p.produce(topic, value=b"x" * 1_048_000, on_delivery=lambda err, msg: results.append(err))
    p.produce(topic, value=b"y" * 1_100_000, on_delivery=lambda err, msg: results.append(err))
    p.flush(20)
    assert results[0] is None
    assert results[1] is not None and results[1].code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_produce_to_missing_topic_without_auto_create(no_autocreate_node):
    p = Producer({"bootstrap.servers": no_autocreate_node.bootstrap, "message.timeout.ms": 3000, "enable.idempotence": False})
    results = []
    p.produce("does-not-exist", value=b"x", on_delivery=lambda err, msg: results.append(err))
    p.flush(10)
    assert results and results[0] is not None
    assert results[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._MSG_TIMED_OUT)
