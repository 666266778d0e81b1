"""KIP-848 consumer groups with a real client: confluent-kafka 2.16 (librdkafka) consumers with
`group.protocol=consumer` share a topic through the broker's assignor, rebalance incrementally
when members join and leave, resume from committed offsets (also those a classic-protocol
consumer committed), and the admin APIs describe and list the group."""

import subprocess
import time
import uuid

import pytest

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN_DIR, Cluster


def create(node, topic, partitions, replicas=1):
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=replicas)])[topic].result(10)


def produce(node, topic, values, timeout=10):
    p = Producer({"bootstrap.servers": node.bootstrap, "acks": "all"})
    for i, v in enumerate(values):
        p.produce(topic, value=v.encode(), key=v.encode())
    assert p.flush(timeout) == 0


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


def poll_all(consumers, got, until, timeout=40, each=lambda: None):
    """Polls every consumer in turn until `until()` holds; `got[i]` collects consumer i's values;
    `each()` runs after every round."""
    deadline = time.time() + timeout
    while not until() and time.time() < deadline:
        for i, c in enumerate(consumers):
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                got[i].append(m.value().decode())
        each()
    assert until(), f"timed out; assignments {[sorted(tp.partition for tp in c.assignment()) for c in consumers]}"


def drain(consumers, got, quiet=1.0):
    """Polls until no consumer has had a record for `quiet` seconds."""
    last = time.time()
    while time.time() - last < quiet:
        for i, c in enumerate(consumers):
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                got[i].append(m.value().decode())
                last = time.time()


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

    # b joins: a gives up three partitions (incrementally: it keeps the other three throughout,
    # where an eager rebalance would take all six away first) and b gets them; the assignments
    # are disjoint and cover the topic.
    b = member(node, group)
    b.subscribe([topic])
    fewest = []
    poll_all([a, b], got, lambda: len(partitions(a)) == 3 and len(partitions(b)) == 3,
             each=lambda: fewest.append(len(partitions(a))))
    assert min(fewest) == 3, f"a's partition counts while b joined: {sorted(set(fewest))}"
    assert partitions(a) | partitions(b) == set(range(6))
    assert not partitions(a) & partitions(b)

    second = [f"b{i}" for i in range(300)]
    produce(node, topic, second)
    got = {0: [], 1: [], 2: []}
    poll_all([a, b], got, lambda: len(got[0]) + len(got[1]) >= 300)
    drain([a, b], got)
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

    # So does `odradek groups`: the group's type, epochs, and each member's epoch and partitions.
    def cli(*args):
        out = subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", node.bootstrap, "groups", *args],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert f"{group}\tStable\tconsumer\tconsumer" in cli("list")
    described = cli("describe", "--group", group)
    members = [line.split("\t") for line in described.splitlines()
               if line.startswith(group + "\t") and len(line.split("\t")) == 7]
    assert len(members) == 2, described
    for m in members:
        assert int(m[4]) >= 2, described  # at or past the epoch b joined at
        assert m[5] == m[6] and len(m[5].split(":")[1].split(",")) == 3, described

    # b leaves: a gets everything back and reads what b did not.
    b.close()
    third = [f"c{i}" for i in range(120)]
    produce(node, topic, third)
    got = {0: [], 1: [], 2: []}
    poll_all([a], got, lambda: len(partitions(a)) == 6 and len(got[0]) >= 120)
    assert sorted(got[0]) == sorted(third)
    a.commit(asynchronous=False)
    a.close()

    # A new member of the group resumes after the committed offsets: only new records.
    fourth = [f"d{i}" for i in range(60)]
    produce(node, topic, fourth)
    c = member(node, group)
    c.subscribe([topic])
    got = {0: []}
    poll_all([c], got, lambda: len(got[0]) >= 60)
    drain([c], got)
    assert sorted(got[0]) == sorted(fourth)
    c.close()


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
    drain([c], got)
    assert sorted(got[0]) == sorted(f"y{i}" for i in range(30)), "only what the classic member had not read"
    c.close()


def classic_member(node, group, **extra):
    """A consumer at librdkafka's defaults (the classic protocol, eager range/roundrobin), no auto
    commit."""
    return Consumer({
        "bootstrap.servers": node.bootstrap, "group.id": group,
        "auto.offset.reset": "earliest", "enable.auto.commit": False, **extra,
    })


@pytest.mark.parametrize("strategy", ["range,roundrobin", "cooperative-sticky"])
def test_online_upgrade_and_downgrade_with_a_classic_member_in_the_group(node, strategy):
    # Kafka 4's rolling upgrade: a classic consumer is in the group when a consumer-protocol one
    # joins; the group becomes a consumer group with the classic member in it (it rejoins
    # through JoinGroup and gets its partitions from the broker's assignor), the two share the
    # topic, every record once; when the consumer-protocol member leaves, the group is classic
    # again and the classic member takes every partition.
    topic, group = "kip848-mig-" + uuid.uuid4().hex[:6], "gmig-" + uuid.uuid4().hex[:6]
    create(node, topic, 6)
    first = [f"a{i}" for i in range(120)]
    produce(node, topic, first)
    # Eager (librdkafka's default: gives up everything to rejoin) or cooperative (rejoins owning
    # its partitions, and gives back only those it must).
    old = classic_member(node, group, **{"partition.assignment.strategy": strategy})
    old.subscribe([topic])
    got = {0: [], 1: []}
    poll_all([old], got, lambda: len(got[0]) == 120)
    assert sorted(got[0]) == sorted(first)
    old.commit(asynchronous=False)
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    assert str(admin.describe_consumer_groups([group])[group].result(10).type).endswith("CLASSIC")

    new = member(node, group)
    new.subscribe([topic])
    poll_all([old, new], got, lambda: len(partitions(new)) == 3 and len(partitions(old)) == 3, timeout=60)
    assert partitions(old) | partitions(new) == set(range(6))
    d = admin.describe_consumer_groups([group])[group].result(10)
    assert str(d.type).endswith("CONSUMER"), d.type
    assert len(d.members) == 2
    second = [f"b{i}" for i in range(300)]
    produce(node, topic, second)
    got = {0: [], 1: []}
    poll_all([old, new], got, lambda: len(got[0]) + len(got[1]) >= 300)
    drain([old, new], got)
    assert sorted(got[0] + got[1]) == sorted(second), "every new record once, across both protocols"
    assert got[0] and got[1], "both members consumed"
    old.commit(asynchronous=False)
    new.commit(asynchronous=False)

    # The consumer-protocol member leaves: the group goes back to the classic protocol and the
    # classic member rebalances onto all six partitions.
    new.close()
    got = {0: []}
    poll_all([old], got, lambda: len(partitions(old)) == 6, timeout=60)
    third = [f"c{i}" for i in range(60)]
    produce(node, topic, third)
    poll_all([old], got, lambda: len(got[0]) >= 60)
    drain([old], got)
    assert sorted(got[0]) == sorted(third), "only the new records: the committed offsets held"
    d = admin.describe_consumer_groups([group])[group].result(10)
    assert str(d.type).endswith("CLASSIC"), d.type
    old.close()


def test_a_regex_subscription_is_resolved_by_the_broker(node):
    prefix = "kip848-re-" + uuid.uuid4().hex[:6]
    group = "gre-" + uuid.uuid4().hex[:6]
    create(node, prefix + "-a", 2)
    create(node, prefix + "-b", 1)
    create(node, "x" + prefix, 1)
    produce(node, prefix + "-a", [f"a{i}" for i in range(20)])
    produce(node, prefix + "-b", [f"b{i}" for i in range(10)])
    produce(node, "x" + prefix, [f"x{i}" for i in range(10)])
    c = member(node, group)
    # librdkafka sends a subscription starting with ^ as SubscribedTopicRegex (KIP-848).
    c.subscribe(["^" + prefix + "-.*"])
    got = {0: []}
    poll_all([c], got, lambda: len(got[0]) >= 30)
    drain([c], got)
    assert sorted(got[0]) == sorted([f"a{i}" for i in range(20)] + [f"b{i}" for i in range(10)])
    # A topic created later that matches joins the subscription.
    create(node, prefix + "-c", 1)
    produce(node, prefix + "-c", [f"c{i}" for i in range(5)])
    got = {0: []}
    poll_all([c], got, lambda: len(got[0]) >= 5, timeout=60)
    assert sorted(got[0]) == sorted(f"c{i}" for i in range(5))
    c.close()


def committed(admin, group, topic, n):
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(n)])
    r = admin.list_consumer_group_offsets([req])[group].result(20)
    return {tp.partition: tp.offset for tp in r.topic_partitions}


def test_kill_9_of_the_coordinator_mid_rebalance_loses_no_offset(tmp_path):
    # Three brokers; the offsets topic has three replicas. A dead follower leaves the ISR after
    # replica.lag.time.max.ms (lowered from Kafka's 30 s so the test is short).
    cluster = Cluster(tmp_path, brokers=3, extra={"replica.lag.time.max.ms": "3000"})
    try:
        topic, group = "kip848-kill-" + uuid.uuid4().hex[:6], "gkill-" + uuid.uuid4().hex[:6]
        create(cluster, topic, 6, replicas=3)
        before = [f"o{i}" for i in range(600)]
        produce(cluster, topic, before)
        a, b = member(cluster, group), member(cluster, group)
        a.subscribe([topic])
        b.subscribe([topic])
        got = {0: [], 1: [], 2: []}
        poll_all([a, b], got, lambda: len(got[0]) + len(got[1]) >= 600, timeout=60)
        drain([a, b], got)
        assert sorted(got[0] + got[1]) == sorted(before)
        for c in (a, b):
            c.commit(asynchronous=False)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        offsets = committed(admin, group, topic, 6)
        assert sum(offsets.values()) == 600, offsets

        # A third member joins, and while the group reconciles, the coordinator dies.
        coordinator = admin.describe_consumer_groups([group])[group].result(10).coordinator.id
        c = member(cluster, group)
        c.subscribe([topic])
        for _ in range(3):
            for x in (a, b, c):
                x.poll(0.1)
        cluster.kill9(f"broker-{coordinator}")

        # The group settles on a new coordinator with three members over all six partitions,
        # and reads only records written after the commits: nothing committed was lost.
        after = [f"n{i}" for i in range(300)]
        # The killed broker led some partitions: their leaders move once the controller sees it
        # gone (a broker session, about 10 s under load, as test_durability.py's gaps show).
        produce(cluster, topic, after, timeout=60)
        got = {0: [], 1: [], 2: []}
        members = [a, b, c]
        poll_all(members, got, lambda: sum(len(v) for v in got.values()) >= 300
                 and sorted(len(partitions(x)) for x in members) == [2, 2, 2], timeout=90)
        drain(members, got)
        read = got[0] + got[1] + got[2]
        assert sorted(set(read)) == sorted(after), "only the new records, each of them"
        assert committed(admin, group, topic, 6) == offsets or all(
            v >= offsets[p] for p, v in committed(admin, group, topic, 6).items())
        for x in members:
            x.close()
    finally:
        cluster.stop()
