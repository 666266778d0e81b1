"""Three broker processes and a quorum of three controller processes: partitions spread over every
broker, clients route by Metadata and read back everything."""

import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def test_six_partitions_spread_over_three_brokers(cluster3):
    a = AdminClient({"bootstrap.servers": cluster3.bootstrap})
    a.create_topics([NewTopic("spread", num_partitions=6, replication_factor=1)])["spread"].result(15)
    md = a.list_topics("spread", timeout=10)
    leaders = [p.leader for p in md.topics["spread"].partitions.values()]
    assert sorted(set(leaders)) == [1, 2, 3], leaders
    assert len(md.brokers) == 3

    p = Producer({"bootstrap.servers": cluster3.bootstrap, "enable.idempotence": False, "linger.ms": 5})
    errors = []
    for i in range(600):
        p.produce("spread", key=f"k{i}", value=f"v{i}", on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert errors == []

    c = Consumer({"bootstrap.servers": cluster3.bootstrap, "group.id": "unused-" + uuid.uuid4().hex, "enable.auto.commit": False})
    c.assign([TopicPartition("spread", i, 0) for i in range(6)])
    got = {}
    deadline = time.time() + 30
    while len(got) < 600 and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got[m.key().decode()] = m.value().decode()
    c.close()
    assert got == {f"k{i}": f"v{i}" for i in range(600)}
