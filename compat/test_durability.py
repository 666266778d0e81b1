"""Durability on Kafka's three-node tutorial cluster (three combined nodes, RF 3,
min.insync.replicas=2), as a new user runs it: a confluent-kafka producer at its defaults
(acks=all) writes numbered records to three partitions while a fault hits one node: kill -9 of a
partition leader, kill -9 of the active controller, or SIGSTOP of a leader past the broker
session timeout (a paused leader removed from the ISR must not acknowledge acks=all writes), or
a rolling restart by SIGTERM of every node in turn, or (each node in a network namespace of its
own) a network cut of a leader past the session timeout.
Killed nodes restart in place, truncate what was never committed, catch up and rejoin the ISR.
Then every partition is read back: every acknowledged record must be there, once, exactly at its
acknowledged offset (lost = 0, moved = 0); records the broker holds twice (a retry whose first
attempt was in fact appended) are counted and reported. Idempotent producers (librdkafka with
enable.idempotence=true, kafka-python 3 at its defaults) under kill -9 of a leader must also
leave no duplicate, every partition in send order, and no failed record.

DURABILITY_ROUNDS (default: one round of each fault) sets how many rounds run;
scripts/durability.sh runs 100.

Also: committed consumer-group offsets survive kill -9 of the group coordinator's node under a
commit load, and records deleted with DeleteRecords stay deleted when the leader dies right after."""

import os
import subprocess
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN_DIR

FAULTS = ["kill9-leader", "kill9-controller", "sigstop-leader", "sigterm-rolling"]
ROUNDS = int(os.environ.get("DURABILITY_ROUNDS", len(FAULTS)))
PARTITIONS = 3


def describe(cluster, topic):
    md = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(topic, timeout=10)
    return {p.id: (p.leader, sorted(p.isrs)) for p in md.topics[topic].partitions.values()}


def active_controller(cluster):
    out = subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", cluster.bootstrap,
                          "metadata-quorum", "describe", "--status"],
                         capture_output=True, text=True, timeout=30).stdout
    for line in out.splitlines():
        if line.startswith("LeaderId:"):
            return int(line.split(":")[1])
    raise AssertionError("no LeaderId in:\n" + out)


def topics_describe(cluster, topic, flag):
    """The partitions `odradek topics describe --topic T FLAG` lists."""
    live = ",".join(f"{cluster.hosts[i]}:{cluster.ports[i]}" for i in cluster.ids if cluster.procs[i].poll() is None)
    out = subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", live, "topics", "describe",
                          "--topic", topic, flag], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return [int(line.split("Partition:")[1].split()[0]) for line in out.stdout.splitlines() if "Partition:" in line]


def wait_for(what, predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - a node may be down while we ask
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


class Load:
    """A producer thread recording acks: librdkafka at its defaults (acks=all, retries), or
    idempotent librdkafka (`enable.idempotence=true`), or kafka-python 3 at its defaults
    (idempotent, acks=all)."""

    def __init__(self, cluster, topic, client="librdkafka"):
        self.topic = topic
        self.client = client
        self.acked = {}  # (partition, offset) -> value
        self.ack_times = {p: [] for p in range(PARTITIONS)}
        self.errors = []
        self.sent = 0
        self.stop = threading.Event()
        if client == "kafka-python":
            from kafka import KafkaProducer
            self.producer = KafkaProducer(bootstrap_servers=cluster.bootstrap)
            assert self.producer.config["enable_idempotence"]
        else:
            config = {"bootstrap.servers": cluster.bootstrap}
            if client == "librdkafka-idempotent":
                config["enable.idempotence"] = True
            self.producer = Producer(config)
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def delivered(self, err, msg):
        if err is not None:
            self.errors.append(err)
            return
        self.acked[(msg.partition(), msg.offset())] = msg.value()
        self.ack_times[msg.partition()].append(time.time())

    def run(self):
        tag = uuid.uuid4().hex[:8]
        while not self.stop.is_set():
            value = f"{tag}-{self.sent}".encode()
            partition = self.sent % PARTITIONS
            if self.client == "kafka-python":
                def ok(md, value=value):
                    self.acked[(md.partition, md.offset)] = value
                    self.ack_times[md.partition].append(time.time())
                self.producer.send(self.topic, value=value, partition=partition).add_callback(ok) \
                    .add_errback(self.errors.append)
                self.sent += 1
                if self.sent % 50 == 0:
                    time.sleep(0.002)
                continue
            try:
                self.producer.produce(self.topic, value=value, partition=partition,
                                      on_delivery=self.delivered)
                self.sent += 1
            except BufferError:
                pass
            self.producer.poll(0.001 if self.sent % 50 == 0 else 0)
            if self.sent % 50 == 0:
                time.sleep(0.002)

    def finish(self):
        self.stop.set()
        self.thread.join()
        if self.client == "kafka-python":
            self.producer.flush(120)
            self.producer.close(30)
        else:
            assert self.producer.flush(120) == 0, "undelivered records after 120 s"


def read_partition(cluster, topic, partition):
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "check-" + uuid.uuid4().hex,
                  "enable.auto.commit": False})
    low, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    c.assign([TopicPartition(topic, partition, low)])
    out = {}
    deadline = time.time() + 60
    while (not out or max(out) < high - 1) and time.time() < deadline:
        for m in c.consume(10_000, 1.0):
            assert m.error() is None, m.error()
            out[m.offset()] = m.value()
    c.close()
    return out


def one_round(cluster, fault, round_no, client="librdkafka"):
    topic = f"durable-{round_no}-{client}"
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)])[topic].result(30)
    wait_for("the topic's full ISR", lambda: all(len(isr) == 3 for _, isr in describe(cluster, topic).values()), 30)
    load = Load(cluster, topic, client)
    time.sleep(2)
    if fault == "kill9-controller":
        victim = active_controller(cluster)
    else:
        victim = describe(cluster, topic)[0][0]
    led = [p for p, (leader, _) in describe(cluster, topic).items() if leader == victim]
    faulted_at = time.time()
    if fault == "sigterm-rolling":
        # Each node in turn: SIGTERM, restart, and its replicas back in every ISR.
        for node in cluster.ids:
            cluster.stop_node(node)
            cluster.start(node)
            wait_for(f"node {node} back in every ISR",
                     lambda: all(len(isr) == 3 for _, isr in describe(cluster, topic).values()), 90)
    elif fault.startswith("kill9"):
        cluster.kill9(victim)
        # Past broker.session.timeout.ms (9 s): the controller fences it and elects new leaders.
        time.sleep(12)
        # kafka-topics' health views, as an operator would look: every partition is
        # under-replicated (the victim left every ISR), none is unavailable.
        wait_for("every partition listed under-replicated", lambda: sorted(
            topics_describe(cluster, topic, "--under-replicated-partitions")) == list(range(PARTITIONS)), 20)
        assert topics_describe(cluster, topic, "--unavailable-partitions") == []
        cluster.start(victim)
    elif fault == "netcut-leader":
        # The leader's network goes down (its process lives on, believing it leads): past the
        # session timeout the others fence it and elect new leaders; healed, it must learn that,
        # truncate what it never committed, and rejoin.
        cluster.cut(victim)
        time.sleep(12)
        cluster.heal(victim)
    else:
        cluster.pause(victim)
        time.sleep(12)
        cluster.resume(victim)
    time.sleep(3)
    load.finish()
    wait_for("the restarted replica back in every ISR",
             lambda: all(len(isr) == 3 for _, isr in describe(cluster, topic).values()), 90)
    # Each broker learns the ISR change from the metadata log a moment apart (as in Kafka): the
    # CLI may ask one that has not yet.
    wait_for("no partition listed under-replicated",
             lambda: topics_describe(cluster, topic, "--under-replicated-partitions") == [], 10)
    # The outage: the longest gap between acknowledgements of a partition the victim led.
    outage = max((max(b - a for a, b in zip(t, t[1:])) if len(t) > 1 else 0.0)
                 for p, t in load.ack_times.items() if p in led) if led else 0.0

    label = (f"round {round_no} {fault} {client} (node {victim}, led {led}), longest gap in acks "
             f"on its partitions {outage:.1f} s")
    return check_read_back(cluster, topic, load, label, strict=client != "librdkafka")


def check_read_back(cluster, topic, load, label, strict):
    """Reads every partition back and checks it against the load's acknowledgements: none lost
    or moved; with `strict` (idempotent producers) also none duplicated, every partition in
    send order, and no failed record. Returns the report line."""
    lost = moved = duplicated = out_of_order = 0
    by_value = {}
    for p in range(PARTITIONS):
        log = read_partition(cluster, topic, p)
        numbers = [int(log[o].rsplit(b"-", 1)[1]) for o in sorted(log)]
        out_of_order += sum(1 for a, b in zip(numbers, numbers[1:]) if b <= a)
        for offset, value in log.items():
            by_value.setdefault(value, []).append((p, offset))
        for (ap, offset), value in load.acked.items():
            if ap != p:
                continue
            if log.get(offset) == value:
                continue
            if any(q == p for q, _ in by_value.get(value, [])):
                moved += 1
            else:
                lost += 1
    dups = sorted(o for v in by_value.values() if len(v) > 1 for o in v)
    duplicated = sum(len(v) - 1 for v in by_value.values() if len(v) > 1)
    if dups:
        print(f"\nduplicated records at (partition, offset) {dups[0]}..{dups[-1]}; first pairs: "
              f"{[v for v in by_value.values() if len(v) > 1][:3]}")
    report = (f"{label}: sent {load.sent}, acknowledged {len(load.acked)}, lost {lost}, moved {moved}, "
              f"duplicated-by-broker {duplicated}, out of order {out_of_order}, delivery errors "
              f"{len(load.errors)}")
    print("\n" + report)
    assert len(load.acked) > 1000, report
    assert lost == 0 and moved == 0, report
    if strict:
        # Idempotence: retries are never appended twice, and each partition holds the records
        # in the order they were sent; no record fails.
        assert duplicated == 0 and out_of_order == 0 and not load.errors, report
    return report


def test_acknowledged_records_survive_faults_of_any_one_node(tutorial_cluster):
    reports = [one_round(tutorial_cluster, FAULTS[r % len(FAULTS)], r) for r in range(ROUNDS)]
    print("\n" + "\n".join(reports))


def test_idempotent_producers_neither_lose_nor_duplicate_when_a_leader_is_killed(tutorial_cluster):
    clients = ["librdkafka-idempotent", "kafka-python"]
    rounds = max(len(clients), ROUNDS // len(FAULTS) * len(clients))
    reports = [one_round(tutorial_cluster, "kill9-leader", r, clients[r % len(clients)])
               for r in range(rounds)]
    print("\n" + "\n".join(reports))


def test_acknowledged_records_survive_a_network_cut_of_a_leader(netns_cluster):
    rounds = max(1, ROUNDS // len(FAULTS))
    reports = [one_round(netns_cluster, "netcut-leader", r) for r in range(rounds)]
    print("\n" + "\n".join(reports))


def test_committed_offsets_survive_kill_9_of_the_coordinator(tutorial_cluster):
    cluster = tutorial_cluster
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    a.create_topics([NewTopic("commits", num_partitions=1, replication_factor=3)])["commits"].result(30)
    group = "survivor"
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False})
    c.assign([TopicPartition("commits", 0, 0)])
    acked = -1

    def commit(offset):
        nonlocal acked
        c.commit(offsets=[TopicPartition("commits", 0, offset)], asynchronous=False)
        acked = offset

    for offset in range(1, 50):
        commit(offset)
    coordinator = a.describe_consumer_groups([group])[group].result(10).coordinator.id
    killed_at = time.time()
    cluster.kill9(coordinator)
    # Commits go on: the client finds the new coordinator, which loaded the replicated
    # partition of __consumer_offsets.
    offset = 50
    while time.time() - killed_at < 15:
        try:
            commit(offset)
            offset += 1
        except Exception:  # noqa: BLE001 - retriable while the coordinator moves
            time.sleep(0.2)
    assert acked > 50, f"no commit acknowledged after the coordinator died (last {acked})"
    cluster.start(coordinator)
    committed = c.committed([TopicPartition("commits", 0)], timeout=30)[0].offset
    c.close()
    print(f"\ncoordinator node {coordinator} killed: last acknowledged commit {acked}, committed now {committed}")
    assert committed == acked, f"acknowledged commit {acked}, committed {committed}"


def test_deleted_records_stay_deleted_when_the_leader_dies(tutorial_cluster):
    """DeleteRecords answers once every live replica has moved its log start (Kafka's low
    watermark), so a leader killed right after cannot hand the deleted records back."""
    cluster = tutorial_cluster
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    a.create_topics([NewTopic("trimmed", num_partitions=1, replication_factor=3)])["trimmed"].result(30)
    wait_for("the topic's full ISR", lambda: len(describe(cluster, "trimmed")[0][1]) == 3, 30)
    p = Producer({"bootstrap.servers": cluster.bootstrap})
    for i in range(1000):
        p.produce("trimmed", value=f"r{i}".encode(), partition=0)
    assert p.flush(30) == 0
    started = time.time()
    deleted = a.delete_records([TopicPartition("trimmed", 0, 600)])
    low = list(deleted.values())[0].result(30).low_watermark
    took = time.time() - started
    assert low == 600, f"low watermark {low}"
    leader = describe(cluster, "trimmed")[0][0]
    cluster.kill9(leader)
    wait_for("a new leader", lambda: describe(cluster, "trimmed")[0][0] not in (leader, -1), 30)
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "trim-" + uuid.uuid4().hex})
    start, end = c.get_watermark_offsets(TopicPartition("trimmed", 0), timeout=10)
    c.close()
    print(f"\nDeleteRecords to 600 answered in {took:.2f} s; after kill -9 of leader {leader}: "
          f"log start {start}, end {end}")
    assert (start, end) == (600, 1000)
    cluster.start(leader)


def test_sigterm_of_the_active_controller_moves_its_leaderships_at_once(tutorial_cluster):
    """A combined node that is the active controller and leads partitions, stopped by SIGTERM:
    its broker part asks the quorum to fence it (moving its leaderships) before its controller
    part stops, so its partitions get new leaders at once, not after broker.session.timeout.ms."""
    cluster = tutorial_cluster
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    a.create_topics([NewTopic("handover", num_partitions=6, replication_factor=3)])["handover"].result(30)
    wait_for("the topic's full ISR", lambda: all(len(isr) == 3 for _, isr in describe(cluster, "handover").values()), 30)
    victim = active_controller(cluster)
    led = [p for p, (leader, _) in describe(cluster, "handover").items() if leader == victim]
    assert led, f"node {victim} leads none of {describe(cluster, 'handover')}"
    stopped_at = time.time()
    cluster.stop_node(victim)
    wait_for("new leaders", lambda: all(describe(cluster, "handover")[p][0] not in (victim, -1) for p in led), 30)
    took = time.time() - stopped_at
    print(f"\nSIGTERM of node {victim} (active controller, leading {led}): new leaders after {took:.1f} s")
    # broker.session.timeout.ms is 9 s: a handover that waited for it took that long.
    assert took < 5, f"leaderships moved only after {took:.1f} s"
    log = cluster.log_path(victim).read_text()
    assert "controlled shutdown: fenced by the controller" in log, log[-3000:]
    cluster.start(victim)


def test_a_paused_active_controller_fences_no_live_broker(tutorial_cluster):
    """SIGSTOP of the node that is the active controller: the others elect a new one, and every
    live broker's heartbeats and metadata stream find it well within broker.session.timeout.ms
    (a voter that accepts connections but never answers must not hold them up), so only the
    paused node is fenced and the partitions the others lead keep their leaders."""
    cluster = tutorial_cluster
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    a.create_topics([NewTopic("steady", num_partitions=6, replication_factor=3)])["steady"].result(30)
    wait_for("the topic's full ISR", lambda: all(len(isr) == 3 for _, isr in describe(cluster, "steady").values()), 30)
    victim = active_controller(cluster)
    before = describe(cluster, "steady")
    cluster.pause(victim)
    time.sleep(14)
    after = describe(cluster, "steady")
    cluster.resume(victim)
    fenced = []
    # The paused node itself, resumed, may still log fencing attempts as the former active
    # controller; they fail to commit. The others' logs show what the active one did.
    for i in (n for n in cluster.ids if n != victim):
        for line in cluster.log_path(i).read_text().splitlines():
            if "broker session expired; fencing it" in line and f"broker_id={victim}" not in line:
                fenced.append(line)
    print(f"\nSIGSTOP of node {victim} (active controller): leaders before {before}, during {after}")
    assert not fenced, "live brokers fenced:\n" + "\n".join(fenced)
    for p, (leader, _) in before.items():
        if leader != victim:
            assert after[p][0] == leader, f"partition {p} moved from live leader {leader} to {after[p][0]}"
        else:
            assert after[p][0] not in (victim, -1), f"partition {p} still led by the paused node"
