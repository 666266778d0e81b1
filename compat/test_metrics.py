"""Prometheus metrics (issue 14), scraped from `metrics.listener` while real clients
(confluent-kafka, librdkafka 2.16, at its defaults) produce and consume: bytes and records in,
request counts and latency, consumer lag computed by the coordinator (it grows while the group
is stopped and drains when it resumes), process and controller metrics; and, on the classic
three-node cluster, an under-replicated partition and an ISR shrink when a follower is killed,
an expansion when it returns, and the lag of partitions whose only replica is on another broker
than the group's coordinator."""

import re
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Node, TutorialCluster, free_port

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(port):
    """Every sample of the node's /metrics: [(name, {labels}, value)]."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/openmetrics-text")
        text = r.read().decode()
    assert text.rstrip().endswith("# EOF")
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not an exposition line: {line!r}"
        out.append((m.group(1), dict(LABEL.findall(m.group(3) or "")), float(m.group(4))))
    return out


def total(samples, name, **labels):
    """The sum of `name`'s samples whose labels include `labels`; None when there are none."""
    hits = [v for n, ls, v in samples if n == name and all(ls.get(k) == v2 for k, v2 in labels.items())]
    return sum(hits) if hits else None


def produce(bootstrap, topic, n, size=100):
    """Keyed records, so every partition gets some (and a group commits on each)."""
    p = Producer({"bootstrap.servers": bootstrap})
    acked = []
    for i in range(n):
        p.produce(topic, value=(b"%08d" % i).ljust(size, b"x"), key=b"k%d" % i,
                  on_delivery=lambda err, msg: acked.append(err is None))
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    assert len(acked) == n and all(acked)


def consume(bootstrap, topic, group, n, timeout=30):
    """Consumes `n` records in `group` (subscribe, commit each poll's position synchronously)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got = 0
    deadline = time.time() + timeout
    while got < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got += 1
        if got % 100 == 0 or got == n:
            c.commit(asynchronous=False)
    c.close()
    assert got == n, f"consumed {got} of {n}"


def wait_for(port, check, what, timeout=30):
    deadline = time.time() + timeout
    while True:
        s = scrape(port)
        if check(s):
            return s
        if time.time() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout} s")
        time.sleep(0.5)


def test_metrics_follow_a_produce_and_consume_load(tmp_path):
    port = free_port()
    node = Node(tmp_path, {"metrics.listener": f"http://127.0.0.1:{port}", "auto.create.topics.enable": "false"})
    try:
        topic, group = "metered", "lagging-" + uuid.uuid4().hex[:6]
        a = AdminClient({"bootstrap.servers": node.bootstrap})
        a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(10)
        before = scrape(port)
        assert total(before, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic) in (None, 0)

        produce(node.bootstrap, topic, 2000)
        s = scrape(port)
        bytes_in = total(s, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic)
        records_in = total(s, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic)
        # 2000 records of 100 bytes, in batches with their headers.
        assert bytes_in >= 2000 * 100, bytes_in
        assert all(total(s, "kafka_log_log_logendoffset", topic=topic, partition=p) > 0 for p in ("0", "1"))
        assert records_in == 2000, records_in
        produces = total(s, "kafka_network_requestmetrics_requests_total", request="Produce")
        assert produces >= 1
        # Every answered Produce went through the time histograms.
        assert total(s, "kafka_network_requestmetrics_totaltimems_count", request="Produce") >= produces - 1
        assert total(s, "kafka_network_requestmetrics_totaltimems_sum", request="Produce") > 0
        assert total(s, "kafka_network_requestmetrics_localtimems_count", request="Produce") >= 1
        assert total(s, "kafka_log_log_logendoffset", topic=topic) == 2000
        assert total(s, "kafka_log_log_size", topic=topic) >= 2000 * 100
        assert total(s, "kafka_server_replicamanager_partitioncount") >= 2
        assert total(s, "kafka_server_replicamanager_underreplicatedpartitions") == 0
        assert total(s, "kafka_controller_kafkacontroller_activecontrollercount") == 1
        assert total(s, "kafka_controller_kafkacontroller_globaltopiccount") >= 1
        assert total(s, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
        assert total(s, "kafka_server_raft_metrics_commit_latency_ms_count") >= 1
        assert total(s, "process_resident_memory_bytes") > 1e6
        assert total(s, "process_open_fds") > 5
        assert total(s, "process_cpu_seconds_total") > 0

        # The group reads everything: no lag.
        consume(node.bootstrap, topic, group, 2000)
        s = wait_for(port, lambda s: total(s, "kafka_consumergroup_lag", consumergroup=group) == 0,
                     "the group's lag at 0")
        assert total(s, "kafka_consumergroup_current_offset", consumergroup=group) == 2000
        assert total(s, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic) >= 2000 * 100
        assert total(s, "kafka_coordinator_group_groupmetadatamanager_numgroups") >= 1
        assert total(s, "kafka_server_group_coordinator_metrics_group_completed_rebalance_total") >= 1

        # Stopped, it falls behind by what is produced meanwhile...
        produce(node.bootstrap, topic, 500)
        s = scrape(port)
        assert total(s, "kafka_consumergroup_lag", consumergroup=group) == 500
        assert total(s, "kafka_consumergroup_lag_sum", consumergroup=group, topic=topic) == 500
        # ...and catches up when it resumes.
        consume(node.bootstrap, topic, group, 500)
        wait_for(port, lambda s: total(s, "kafka_consumergroup_lag", consumergroup=group) == 0,
                 "the group's lag back at 0")
        unknown = dict(request="Metadata", error="UNKNOWN_TOPIC_OR_PARTITION")
        errors_before = total(scrape(port), "kafka_network_requestmetrics_errors_total", **unknown) or 0
        # An unknown topic is counted as an error of the Metadata API.
        md = AdminClient({"bootstrap.servers": node.bootstrap}).list_topics(topic="no-such-topic-" + uuid.uuid4().hex[:6], timeout=10)
        assert md is not None
        s = scrape(port)
        assert (total(s, "kafka_network_requestmetrics_errors_total", **unknown) or 0) > errors_before
        assert total(s, "kafka_server_socket_server_metrics_connection_creation_total", listener="PLAINTEXT") >= 3

        # Every metric the shipped Grafana dashboard queries exists.
        dashboard = (Path(__file__).parent.parent / "deploy/grafana/odradek-dashboard.json").read_text()
        queried = set(re.findall(r"\b((?:kafka|process|odradek)_[a-z0-9_]+)", dashboard))
        served = {n for n, _, _ in s}
        missing = sorted(q for q in queried if q not in served)
        assert not missing, f"the dashboard queries metrics no node serves: {missing}"
    finally:
        node.stop()


def test_metrics_show_an_under_replicated_partition_when_a_follower_dies(tmp_path):
    ports = {i: free_port() for i in (1, 2, 3)}
    cluster = TutorialCluster(tmp_path, extra={"replica.lag.time.max.ms": "2000"},
                              per_node=lambda i: {"metrics.listener": f"http://127.0.0.1:{ports[i]}"})
    try:
        topic = "replicated"
        a = AdminClient({"bootstrap.servers": cluster.bootstrap})
        a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic].result(20)
        produce(cluster.bootstrap, topic, 200)
        md = a.list_topics(topic=topic, timeout=10).topics[topic].partitions[0]
        leader = md.leader
        follower = next(i for i in (1, 2, 3) if i != leader)
        s = wait_for(ports[leader], lambda s: total(s, "kafka_server_replicamanager_underreplicatedpartitions") == 0,
                     "no under-replicated partition on the leader")
        assert total(s, "kafka_cluster_partition_underreplicated", topic=topic, partition="0") == 0
        shrinks = total(s, "kafka_server_replicamanager_isrshrinks_total") or 0

        cluster.kill9(follower)
        # The controller may have been on the follower: the leader stays leader either way.
        s = wait_for(ports[leader], lambda s: total(s, "kafka_cluster_partition_underreplicated", topic=topic, partition="0") == 1,
                     "the partition under-replicated", timeout=40)
        assert total(s, "kafka_server_replicamanager_underreplicatedpartitions") >= 1
        assert total(s, "kafka_server_replicamanager_isrshrinks_total") > shrinks
        # min.insync.replicas=2 still holds with two of three.
        assert total(s, "kafka_cluster_partition_underminisr", topic=topic, partition="0") == 0

        expands = total(s, "kafka_server_replicamanager_isrexpands_total") or 0
        cluster.start(follower)
        s = wait_for(ports[leader], lambda s: total(s, "kafka_cluster_partition_underreplicated", topic=topic, partition="0") == 0,
                     "the partition fully replicated again", timeout=60)
        assert total(s, "kafka_server_replicamanager_isrexpands_total") > expands
        # Every node's controller agrees on who leads the quorum: one active controller.
        active = sum(total(scrape(ports[i]), "kafka_controller_kafkacontroller_activecontrollercount") for i in (1, 2, 3))
        assert active == 1

        # Lag of partitions the coordinator hosts no replica of: one replica each, spread over
        # the brokers; the coordinator asks their leaders.
        single, group = "single-replica", "spread-group"
        a.create_topics([NewTopic(single, num_partitions=3, replication_factor=1, config={"min.insync.replicas": "1"})])[single].result(20)
        produce(cluster.bootstrap, single, 300)
        consume(cluster.bootstrap, single, group, 300)
        produce(cluster.bootstrap, single, 90)
        coordinator = a.describe_consumer_groups([group])[group].result(20).coordinator.id
        leaders = {p.leader for p in a.list_topics(topic=single, timeout=10).topics[single].partitions.values()}
        assert leaders - {coordinator}, "some partition is led by another broker"
        s = wait_for(ports[coordinator], lambda s: total(s, "kafka_consumergroup_lag", consumergroup=group, topic=single) == 90
                     and len([1 for n, l, _ in s if n == "kafka_consumergroup_lag" and l.get("consumergroup") == group]) == 3,
                     "the lag of every partition, hosted here or not", timeout=20)
        assert total(s, "kafka_consumergroup_current_offset", consumergroup=group) == 300
    finally:
        cluster.stop()
