"""KIP-932 share groups with a real client: confluent-kafka 2.16's ShareConsumer (librdkafka 2.16)
against a single node. Several members consume one partition at once with each record delivered
to one member at a time, records not acknowledged come back after the lock timeout, records past
the delivery limit are archived, and acknowledgements survive a kill -9 of the node (the share
coordinator's __share_group_state)."""

import subprocess
import time
import uuid

import pytest
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN_DIR, Node

SETTINGS = {
    # One node: the state topic has one replica.
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # Short locks and a low delivery limit, so the test need not wait Kafka's 30 s.
    "group.share.min.record.lock.duration.ms": "1000",
    "group.share.record.lock.duration.ms": "2000",
    "group.share.delivery.count.limit": "2",
}


@pytest.fixture(scope="module")
def share_node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("share"), SETTINGS)
    yield n
    n.stop()


def create(node, topic, partitions=1):
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(10)


def produce(node, topic, values):
    p = Producer({"bootstrap.servers": node.bootstrap})
    for v in values:
        p.produce(topic, value=v.encode())
    assert p.flush(10) == 0


def member(node, group, **extra):
    conf = {"bootstrap.servers": node.bootstrap, "group.id": group}
    conf.update(extra)
    return ShareConsumer(conf)


def warm_up(consumers, seconds=8):
    """Polls until the members joined and their share-partitions exist (share.auto.offset.reset
    is latest: only records produced after that are delivered)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        for c in consumers:
            c.poll(0.2)


def values(messages):
    return [m.value().decode() for m in messages if m.error() is None]


def test_members_share_one_partition_each_record_once(share_node):
    topic, group = "share-" + uuid.uuid4().hex[:6], "sg-" + uuid.uuid4().hex[:6]
    create(share_node, topic)
    members = [member(share_node, group) for _ in range(3)]
    for c in members:
        c.subscribe([topic])
    warm_up(members)
    # Records arrive in waves while the members poll: each wave is acquired by whichever member
    # fetches first, so the partition's records spread over the members.
    sent = [f"r{i}" for i in range(300)]
    waves = [sent[i:i + 20] for i in range(0, 300, 20)]
    p = Producer({"bootstrap.servers": share_node.bootstrap})
    got = {i: [] for i in range(3)}
    deadline = time.time() + 60
    while sum(len(v) for v in got.values()) < 300 and time.time() < deadline:
        if waves:
            for v in waves.pop(0):
                p.produce(topic, value=v.encode())
            p.flush(10)
        for i, c in enumerate(members):
            got[i].extend(values(c.poll(0.2)))
    everything = [v for vs in got.values() for v in vs]
    assert sorted(everything) == sorted(sent), "every record once across the group"
    assert sum(1 for vs in got.values() if vs) >= 2, {i: len(v) for i, v in got.items()}

    # `odradek share-groups` lists the group and shows the three members sharing partition 0.
    def cli(*args):
        out = subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", share_node.bootstrap, "share-groups", *args],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert f"{group}\tStable" in cli("list")
    described = cli("describe", "--group", group)
    rows = [line.split("\t") for line in described.splitlines()[3:] if line.startswith(group)]
    assert len(rows) == 3, described
    assert all(r[5] == f"{topic}:0" and int(r[4]) > 0 for r in rows), described
    for c in members:
        c.close()


def test_unacknowledged_records_come_back_then_are_archived(share_node):
    topic, group = "share-lock-" + uuid.uuid4().hex[:6], "sgl-" + uuid.uuid4().hex[:6]
    create(share_node, topic)
    a = member(share_node, group, **{"share.acknowledgement.mode": "explicit"})
    a.subscribe([topic])
    warm_up([a])
    produce(share_node, topic, [f"x{i}" for i in range(5)])
    first = []
    deadline = time.time() + 20
    while len(first) < 5 and time.time() < deadline:
        first.extend(a.poll(0.5))
    assert sorted(values(first)) == [f"x{i}" for i in range(5)]
    # a stays in the group but never acknowledges (and polls no more): once its 2 s locks run
    # out, b gets the same records again.
    b = member(share_node, group, **{"share.acknowledgement.mode": "explicit"})
    b.subscribe([topic])
    second = []
    started = time.time()
    deadline = started + 30
    while len(second) < 5 and time.time() < deadline:
        second.extend(b.poll(0.5))
    assert time.time() - started >= 1.0, "not before a's locks ran out"
    assert sorted(values(second)) == [f"x{i}" for i in range(5)], "redelivered"
    assert all(m.delivery_count() == 2 for m in second), [m.delivery_count() for m in second]
    # b releases them: they were delivered group.share.delivery.count.limit (2) times, so they
    # are archived, never delivered again, while a new record still is.
    for m in second:
        b.acknowledge(m, AcknowledgeType.RELEASE)
    b.commit_sync()
    produce(share_node, topic, ["after"])
    third = []
    deadline = time.time() + 10
    while time.time() < deadline and "after" not in values(third):
        third.extend(b.poll(0.5))
    assert values(third) == ["after"], values(third)
    b.close()
    a.close()


def test_group_configs_set_where_a_share_group_starts_and_its_lock(share_node):
    # Kafka's group configs (kafka-configs --entity-type groups) through librdkafka's admin
    # client: share.auto.offset.reset=earliest makes a new share group read what was produced
    # before it existed; wrong names, forms and values out of the broker's bounds are refused.
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    topic, group = "share-cfg-" + uuid.uuid4().hex[:6], "sgc-" + uuid.uuid4().hex[:6]
    create(share_node, topic)
    produce(share_node, topic, [f"old{i}" for i in range(20)])
    admin = AdminClient({"bootstrap.servers": share_node.bootstrap})

    def alter(*entries):
        res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in entries])
        return admin.incremental_alter_configs([res])[res].result(10)

    def refused(*entries):
        with pytest.raises(KafkaException) as e:
            alter(*entries)
        return e.value.args[0]

    assert "Unknown group config" in refused(("share.nonsense", "1")).str()
    assert refused(("share.auto.offset.reset", "sometimes")).name() == "INVALID_CONFIG"
    # The broker's group.share.min.record.lock.duration.ms is 1000.
    assert refused(("share.record.lock.duration.ms", "500")).name() == "INVALID_CONFIG"
    assert refused(("share.heartbeat.interval.ms", "60000")).name() == "INVALID_CONFIG"
    alter(("share.auto.offset.reset", "earliest"), ("share.record.lock.duration.ms", "3000"))
    res = ConfigResource(ResourceType.GROUP, group)
    described = admin.describe_configs([res])[res].result(10)
    assert described["share.auto.offset.reset"].value == "earliest"
    assert described["share.auto.offset.reset"].source == 8, "GROUP_CONFIG"
    assert described["share.record.lock.duration.ms"].value == "3000"
    # Not set on the group: the broker's value.
    assert described["share.session.timeout.ms"].value == "45000"

    c = member(share_node, group)
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < 20 and time.time() < deadline:
        got.extend(c.poll(0.5))
    assert sorted(values(got)) == sorted(f"old{i}" for i in range(20)), "earliest: the records from before"
    c.close()


def test_acknowledgements_survive_kill_9(tmp_path):
    node = Node(tmp_path, SETTINGS)
    try:
        topic, group = "share-kill-" + uuid.uuid4().hex[:6], "sgk-" + uuid.uuid4().hex[:6]
        create(node, topic)
        a = member(node, group, **{"share.acknowledgement.mode": "explicit"})
        a.subscribe([topic])
        warm_up([a])
        produce(node, topic, [f"k{i}" for i in range(10)])
        got = []
        deadline = time.time() + 20
        while len(got) < 10 and time.time() < deadline:
            got.extend(a.poll(0.5))
        assert len(values(got)) == 10
        # Accept the first six; the last four stay unacknowledged.
        for m in got:
            if int(m.value().decode()[1:]) < 6:
                a.acknowledge(m, AcknowledgeType.ACCEPT)
        a.commit_sync()
        node.kill9()
        node.start()
        b = member(node, group)
        b.subscribe([topic])
        again = []
        deadline = time.time() + 40
        while len(values(again)) < 4 and time.time() < deadline:
            again.extend(b.poll(0.5))
        time.sleep(1)
        again.extend(b.poll(1.0))
        assert sorted(values(again)) == [f"k{i}" for i in range(6, 10)], "only what was not accepted"
        b.close()
    finally:
        node.stop()


def java_hash(text):
    h = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def test_share_state_survives_kill_9_of_the_share_coordinator(tmp_path):
    """Three brokers, the topic and __share_group_state with three replicas: the broker leading
    the share-partition's state (its share coordinator) is killed; acknowledged records are not
    delivered again, unacknowledged ones are."""
    from confluent_kafka import TopicCollection
    from conftest import Cluster
    extra = dict(SETTINGS)
    extra.update({
        "share.coordinator.state.topic.replication.factor": "3",
        "share.coordinator.state.topic.min.isr": "2",
        "replica.lag.time.max.ms": "3000",
    })
    cluster = Cluster(tmp_path, brokers=3, extra=extra)
    try:
        topic, group = "share-fo-" + uuid.uuid4().hex[:6], "sgf-" + uuid.uuid4().hex[:6]
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic].result(10)
        a = member(cluster, group, **{"share.acknowledgement.mode": "explicit"})
        a.subscribe([topic])
        warm_up([a], seconds=10)
        p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
        for i in range(10):
            p.produce(topic, value=f"f{i}".encode())
        assert p.flush(10) == 0
        got = []
        deadline = time.time() + 30
        while len(values(got)) < 10 and time.time() < deadline:
            got.extend(a.poll(0.5))
        assert len(values(got)) == 10
        for m in got:
            if int(m.value().decode()[1:]) < 7:
                a.acknowledge(m, AcknowledgeType.ACCEPT)
        a.commit_sync()
        a.close()
        # The share coordinator of the share-partition: the leader of its __share_group_state
        # partition, found as Kafka finds it.
        topic_id = admin.describe_topics(TopicCollection([topic]))[topic].result(10).topic_id
        key = f"{group}:{topic_id}:0"
        h = java_hash(key)
        state_partition = (0 if h == -(1 << 31) else abs(h)) % 50
        md = admin.list_topics(timeout=10)
        coordinator = md.topics["__share_group_state"].partitions[state_partition].leader
        cluster.kill9(f"broker-{coordinator}")
        b = member(cluster, group)
        b.subscribe([topic])
        again = []
        deadline = time.time() + 90
        while len(values(again)) < 3 and time.time() < deadline:
            again.extend(b.poll(0.5))
        time.sleep(2)
        again.extend(b.poll(1.0))
        assert sorted(values(again)) == ["f7", "f8", "f9"], values(again)
        b.close()
    finally:
        cluster.stop()
