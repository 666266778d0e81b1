"""KIP-848 consumer groups with a real client: confluent-kafka 2.16 (librdkafka) consumers with
`group.protocol=consumer` share a topic through the broker's assignor, rebalance incrementally
when members join and leave, resume from committed offsets (also those a classic-protocol
consumer committed), and the admin APIs describe and list the group."""

import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(node, topic, partitions):
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(10)


def produce(node, topic, values):
    p = Producer({"bootstrap.servers": node.bootstrap})
    for i, v in enumerate(values):
        p.produce(topic, value=v.encode(), key=v.encode())
    assert p.flush(10) == 0


def member(node, group, **extra):
    """A consumer at librdkafka's defaults but for the group protocol (and no auto commit, so the
    test decides what is committed)."""
    conf = {
        "bootstrap.servers": node.bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    conf.update(extra)
    return Consumer(conf)


def poll_all(consumers, got, until, timeout=40):
    """Polls every consumer in turn until `until()` holds; `got[i]` collects consumer i's values."""
    deadline = time.time() + timeout
    while not until() and time.time() < deadline:
        for i, c in enumerate(consumers):
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                got[i].append(m.value().decode())
    assert until(), f"timed out; assignments {[sorted(tp.partition for tp in c.assignment()) for c in consumers]}"


def partitions(c):
    return {tp.partition for tp in c.assignment()}


def test_members_share_a_topic_and_rebalance_incrementally(node):
    topic, group = "kip848-" + uuid.uuid4().hex[:6], "g848-" + uuid.uuid4().hex[:6]
    create(node, topic, 6)
    first = [f"a{i}" for i in range(300)]
    produce(node, topic, first)

    a = member(node, group)
    a.subscribe([topic])
    got = {0: [], 1: [], 2: []}
    poll_all([a], got, lambda: len(got[0]) == 300)
    assert sorted(got[0]) == sorted(first), "a alone reads every record once"
    assert partitions(a) == set(range(6))
    a.commit(asynchronous=False)

    # b joins: a gives up three partitions (incrementally: it keeps the other three throughout)
    # and b gets them; the assignments are disjoint and cover the topic.
    b = member(node, group)
    b.subscribe([topic])
    poll_all([a, b], got, lambda: len(partitions(a)) == 3 and len(partitions(b)) == 3)
    assert partitions(a) | partitions(b) == set(range(6))
    assert not partitions(a) & partitions(b)

    second = [f"b{i}" for i in range(300)]
    produce(node, topic, second)
    got = {0: [], 1: [], 2: []}
    poll_all([a, b], got, lambda: len(got[0]) + len(got[1]) >= 300)
    time.sleep(1)
    for i, c in enumerate((a, b)):
        m = c.poll(0.5)
        while m is not None:
            if m.error() is None:
                got[i].append(m.value().decode())
            m = c.poll(0.5)
    assert sorted(got[0] + got[1]) == sorted(second), "every new record once, across the group"
    assert got[0] and got[1], "both members consumed"
    for c in (a, b):
        c.commit(asynchronous=False)

    # The admin client sees a consumer-protocol group with both members and their epochs.
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    d = admin.describe_consumer_groups([group])[group].result(10)
    assert len(d.members) == 2
    assert str(d.type).endswith("CONSUMER"), d.type
    owned = sorted(tp.partition for m in d.members for tp in m.assignment.topic_partitions)
    assert owned == list(range(6)), owned
    listed = admin.list_consumer_groups().result(10)
    assert any(g.group_id == group for g in listed.valid)

    # b leaves: a gets everything back and reads what b did not.
    b.close()
    third = [f"c{i}" for i in range(120)]
    produce(node, topic, third)
    got = {0: [], 1: [], 2: []}
    poll_all([a], got, lambda: len(partitions(a)) == 6 and len(got[0]) >= 120)
    assert sorted(got[0]) == sorted(third)
    a.close()


def test_a_consumer_protocol_member_resumes_from_classic_offsets(node):
    topic, group = "kip848-up-" + uuid.uuid4().hex[:6], "gup-" + uuid.uuid4().hex[:6]
    create(node, topic, 3)
    produce(node, topic, [f"x{i}" for i in range(90)])
    classic = Consumer({
        "bootstrap.servers": node.bootstrap, "group.id": group,
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    classic.subscribe([topic])
    got = {0: []}
    poll_all([classic], got, lambda: len(got[0]) == 90)
    classic.commit(asynchronous=False)
    classic.close()

    produce(node, topic, [f"y{i}" for i in range(30)])
    c = member(node, group)
    c.subscribe([topic])
    got = {0: []}
    poll_all([c], got, lambda: len(got[0]) >= 30)
    time.sleep(1)
    m = c.poll(0.5)
    while m is not None:
        if m.error() is None:
            got[0].append(m.value().decode())
        m = c.poll(0.5)
    assert sorted(got[0]) == sorted(f"y{i}" for i in range(30)), "only what the classic member had not read"
    c.close()
