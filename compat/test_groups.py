"""Consumer groups with real clients: confluent-kafka (librdkafka 2.16) and kafka-python subscribe,
share partitions, rebalance, commit, resume from committed offsets (also after kill -9), and
the admin APIs list, describe and delete groups."""

import time
import uuid

from confluent_kafka import Consumer, ConsumerGroupState, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer


def create(node, topic, partitions):
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(10)


def produce(node, topic, values):
    p = Producer({"bootstrap.servers": node.bootstrap})
    for v in values:
        p.produce(topic, value=v.encode(), key=v.encode())
    assert p.flush(10) == 0


def consumer(node, group, **extra):
    conf = {
        "bootstrap.servers": node.bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    conf.update(extra)
    return Consumer(conf)


def drain(consumers, expected, timeout=30):
    """Polls every consumer in turn until `expected` records arrived; returns {consumer index: values}."""
    got = {i: [] for i in range(len(consumers))}
    deadline = time.time() + timeout
    while sum(len(v) for v in got.values()) < expected and time.time() < deadline:
        for i, c in enumerate(consumers):
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got[i].append(m.value().decode())
    return got


def test_two_confluent_consumers_share_a_topic_and_commit(node):
    topic, group = "grp-share-" + uuid.uuid4().hex[:6], "g-" + uuid.uuid4().hex[:6]
    create(node, topic, 4)
    values = [f"v{i}" for i in range(200)]
    produce(node, topic, values)
    a, b = consumer(node, group), consumer(node, group)
    a.subscribe([topic])
    b.subscribe([topic])
    # Wait until the group settled with both members, each owning two partitions.
    deadline = time.time() + 30
    while time.time() < deadline:
        a.poll(0.1)
        b.poll(0.1)
        if len(a.assignment()) == 2 and len(b.assignment()) == 2:
            break
    pa = {tp.partition for tp in a.assignment()}
    pb = {tp.partition for tp in b.assignment()}
    assert pa | pb == {0, 1, 2, 3} and not pa & pb, (pa, pb)
    # Records polled while settling were not committed: read everything from the start again.
    for c in (a, b):
        c.commit(offsets=[TopicPartition(topic, tp.partition, 0) for tp in c.assignment()], asynchronous=False)
        for tp in c.assignment():
            c.seek(TopicPartition(topic, tp.partition, 0))
    got = drain([a, b], 200)
    assert sorted(got[0] + got[1]) == sorted(values), "every record once, across the group"
    assert got[0] and got[1], "both members consumed"
    for c in (a, b):
        c.commit(asynchronous=False)
        c.close()

    # The group's committed offsets: a new member resumes after them and sees only new records.
    produce(node, topic, ["late-1", "late-2"])
    c = consumer(node, group)
    c.subscribe([topic])
    got = drain([c], 2, timeout=20)
    assert sorted(got[0]) == ["late-1", "late-2"]
    committed = c.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
    assert sum(tp.offset for tp in committed) == 200
    c.close()


def test_a_second_consumer_takes_partitions_from_the_first(node):
    topic, group = "grp-rebalance-" + uuid.uuid4().hex[:6], "g-" + uuid.uuid4().hex[:6]
    create(node, topic, 2)
    a = consumer(node, group)
    a.subscribe([topic])
    deadline = time.time() + 20
    while len(a.assignment()) != 2 and time.time() < deadline:
        a.poll(0.1)
    assert len(a.assignment()) == 2
    b = consumer(node, group)
    b.subscribe([topic])
    deadline = time.time() + 30
    while time.time() < deadline and not (len(a.assignment()) == 1 and len(b.assignment()) == 1):
        a.poll(0.1)
        b.poll(0.1)
    assert (len(a.assignment()), len(b.assignment())) == (1, 1)
    # b leaves: a gets both partitions back.
    b.close()
    deadline = time.time() + 30
    while len(a.assignment()) != 2 and time.time() < deadline:
        a.poll(0.1)
    assert len(a.assignment()) == 2
    a.close()


def test_kafka_python_group_consumer_commits(node):
    topic, group = "grp-kp-" + uuid.uuid4().hex[:6], "g-" + uuid.uuid4().hex[:6]
    create(node, topic, 2)
    produce(node, topic, [f"k{i}" for i in range(50)])
    c = KafkaConsumer(
        topic,
        bootstrap_servers=node.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10000,
    )
    got = []
    for m in c:
        got.append(m.value.decode())
        if len(got) == 50:
            break
    assert sorted(got) == sorted(f"k{i}" for i in range(50))
    c.commit()
    c.close()
    # confluent-kafka reads the offsets kafka-python committed.
    cf = consumer(node, group)
    committed = cf.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    assert sum(tp.offset for tp in committed) == 50
    cf.close()


def test_admin_lists_describes_and_deletes_groups(node):
    topic, group = "grp-admin-" + uuid.uuid4().hex[:6], "g-" + uuid.uuid4().hex[:6]
    create(node, topic, 1)
    produce(node, topic, ["x"])
    c = consumer(node, group, **{"client.id": "admin-test-client"})
    c.subscribe([topic])
    assert drain([c], 1)[0] == ["x"]
    c.commit(asynchronous=False)
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    listed = admin.list_consumer_groups().result(10)
    ours = [g for g in listed.valid if g.group_id == group]
    assert ours and ours[0].state == ConsumerGroupState.STABLE, listed.valid
    d = admin.describe_consumer_groups([group])[group].result(10)
    assert d.state == ConsumerGroupState.STABLE
    assert [m.client_id for m in d.members] == ["admin-test-client"]
    assert [tp.partition for tp in d.members[0].assignment.topic_partitions] == [0]
    # A group with members cannot be deleted; once empty it can, with its offsets.
    fut = admin.delete_consumer_groups([group])[group]
    try:
        fut.result(10)
        raise AssertionError("deleted a non-empty group")
    except Exception as e:  # KafkaException(NON_EMPTY_GROUP)
        assert "NON_EMPTY_GROUP" in str(e) or "not empty" in str(e).lower(), e
    c.close()
    admin.delete_consumer_groups([group])[group].result(10)
    fresh = consumer(node, group)
    committed = fresh.committed([TopicPartition(topic, 0)], timeout=10)
    assert committed[0].offset < 0, "offsets went with the group"
    fresh.close()


def test_committed_offsets_survive_kill_9(fresh_node):
    topic, group = "grp-durable", "g-durable"
    create(fresh_node, topic, 3)
    produce(fresh_node, topic, [f"a{i}" for i in range(30)])
    c = consumer(fresh_node, group)
    c.subscribe([topic])
    assert len(drain([c], 30)[0]) == 30
    c.commit(asynchronous=False)
    c.close()
    fresh_node.kill9()
    fresh_node.start()
    produce(fresh_node, topic, ["after-restart"])
    c = consumer(fresh_node, group)
    c.subscribe([topic])
    assert drain([c], 1, timeout=30)[0] == ["after-restart"]
    c.close()


def test_a_static_member_restarts_into_its_place(node):
    """group.instance.id (KIP-345): a restarted static member takes over its old member's place
    and assignment without a rebalance; the group never shows two members."""
    topic, group = "grp-static-" + uuid.uuid4().hex[:6], "g-" + uuid.uuid4().hex[:6]
    create(node, topic, 2)
    admin = AdminClient({"bootstrap.servers": node.bootstrap})

    def member_ids():
        return [m.member_id for m in admin.describe_consumer_groups([group])[group].result(10).members]

    first = consumer(node, group, **{"group.instance.id": "pod-0", "session.timeout.ms": 30000})
    first.subscribe([topic])
    deadline = time.time() + 20
    while len(first.assignment()) != 2 and time.time() < deadline:
        first.poll(0.1)
    assert len(first.assignment()) == 2
    before = member_ids()
    first.close()  # a static member does not leave on close
    assert member_ids() == before, "still in the group after close"
    second = consumer(node, group, **{"group.instance.id": "pod-0", "session.timeout.ms": 30000})
    second.subscribe([topic])
    deadline = time.time() + 20
    while len(second.assignment()) != 2 and time.time() < deadline:
        second.poll(0.1)
    assert len(second.assignment()) == 2
    after = member_ids()
    assert len(after) == 1 and after != before, (before, after)
    second.close()
