"""fsync before acknowledgement (`log.flush.before.ack=true`, issue 16): on the classic
three-node cluster, a confluent-kafka producer at its defaults (acks=all) and one with acks=1
are answered only after group commits on the leader, and followers sync what they replicate
before reporting it (each node's `kafka_log_logflushstats_*` counters move); every record comes
back in order. Without the setting nothing is synced per append (Kafka's default), and a wrong
value stops the broker naming the key."""

import subprocess
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN_DIR, Node, TutorialCluster, free_port
from test_metrics import scrape, total


def produce(bootstrap, topic, n, acks):
    """n records in 20 waves (each flushed: a produce request or more per wave)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks})
    acked = []
    for i in range(n):
        p.produce(topic, value=b"%06d" % i, partition=0,
                  on_delivery=lambda err, msg: acked.append(None if err else msg.offset()))
        if i % (n // 20) == 0:
            assert p.flush(60) == 0
    assert p.flush(60) == 0
    assert len(acked) == n and None not in acked
    return acked


def read_all(bootstrap, topic, n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    values = []
    while len(values) < n:
        m = c.poll(10)
        assert m is not None, f"only {len(values)} of {n} records came back"
        assert m.error() is None, m.error()
        values.append(m.value())
    c.close()
    return values


def flushes(port):
    s = scrape(port)
    return (total(s, "kafka_log_logflushstats_flushes_total") or 0,
            total(s, "kafka_log_logflushstats_flushed_appends_total") or 0)


def test_flush_before_ack_syncs_every_acknowledged_append(tmp_path):
    ports = {i: free_port() for i in (1, 2, 3)}
    cluster = TutorialCluster(tmp_path, extra={"log.flush.before.ack": "true"},
                              per_node=lambda i: {"metrics.listener": f"http://127.0.0.1:{ports[i]}"})
    try:
        topic = f"flush-{uuid.uuid4().hex[:6]}"
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic].result(30)
        before = {i: flushes(ports[i]) for i in ports}
        offsets = produce(cluster.bootstrap, topic, 3000, "all") + produce(cluster.bootstrap, topic, 3000, "1")
        assert offsets == list(range(6000))
        after = {i: flushes(ports[i]) for i in ports}
        # Every node holds a replica: the leader synced the produced appends (40 waves at
        # least), the followers the replicated ones; a round covers one append or more.
        for i in ports:
            rounds, appends = after[i][0] - before[i][0], after[i][1] - before[i][1]
            print(f"node {i}: {rounds:.0f} group commits covered {appends:.0f} appends")
            assert rounds > 0 and appends >= rounds, (i, before[i], after[i])
        assert max(after[i][1] - before[i][1] for i in ports) >= 40
        assert read_all(cluster.bootstrap, topic, 6000) == [b"%06d" % i for i in range(3000)] * 2
    finally:
        cluster.stop()


def test_without_the_setting_nothing_is_synced_per_append(tmp_path):
    port = free_port()
    node = Node(tmp_path, {"metrics.listener": f"http://127.0.0.1:{port}"})
    try:
        topic = f"noflush-{uuid.uuid4().hex[:6]}"
        admin = AdminClient({"bootstrap.servers": node.bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
        produce(node.bootstrap, topic, 1000, "all")
        assert flushes(port) == (0, 0)
    finally:
        node.stop()


def test_a_wrong_value_stops_the_broker_naming_the_key(tmp_path):
    cfg = tmp_path / "bad.properties"
    cp = free_port()
    cfg.write_text(
        "node.id=1\nprocess.roles=broker,controller\n"
        f"controller.quorum.voters=1@127.0.0.1:{cp}\n"
        f"listeners=PLAINTEXT://127.0.0.1:{free_port()},CONTROLLER://127.0.0.1:{cp}\n"
        "controller.listener.names=CONTROLLER\n"
        f"log.dirs={tmp_path / 'data'}\nlog.flush.before.ack=yes\n")
    cluster_id = subprocess.run([BIN_DIR / "odradek-storage", "random-uuid"], check=True,
                                capture_output=True, text=True).stdout.strip()
    subprocess.run([BIN_DIR / "odradek-storage", "format", "-t", cluster_id, "-c", cfg],
                   capture_output=True)
    r = subprocess.run([BIN_DIR / "odradek-broker", "-c", cfg], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "log.flush.before.ack" in r.stderr, r.stderr
