"""Transactions with confluent-kafka (librdkafka) and kafka-python 3 at their defaults:

- on one node: committed transactions are seen by read_committed consumers, aborted ones only
  by read_uncommitted consumers; offsets sent to a transaction are committed with it; a
  second producer with the same transactional.id fences the first (its commit fails);
- on Kafka's three-node tutorial cluster (RF 3, min.insync.replicas=2, the transaction state
  topic at its defaults: RF 3, min ISR 2): an exactly-once copy loop (`eos_copy.py`:
  consume read_committed, produce in a transaction, send_offsets_to_transaction, commit) copies
  a numbered input topic while, in separate rounds, the loop's process is killed -9
  mid-transaction and restarted, the transaction coordinator's node is killed -9, and an
  output partition's leader is killed -9 (both restarted). A read_committed consumer of the
  output must see every input record exactly once; a read_uncommitted one sees at least as
  many (the aborted ones too)."""

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3
COPY_LOOP = Path(__file__).parent / "eos_copy.py"


def create(bootstrap, topic, partitions=1, rf=1):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf)])[topic].result(30)


def read_all(bootstrap, topic, partitions, isolation, expect=None, timeout=60):
    """Every value of `topic`, as ints, read to the end with `isolation`."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "read-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values = []
    deadline = time.time() + timeout
    idle = 0
    while time.time() < deadline:
        msgs = c.consume(1000, 0.5)
        values.extend(int(m.value()) for m in msgs if m.error() is None)
        idle = 0 if msgs else idle + 1
        if expect is not None and len(values) >= expect and idle >= 2:
            break
        if expect is None and idle >= 4:
            break
    c.close()
    return values


def test_commit_abort_offsets_and_fencing(node):
    bs = node.bootstrap
    create(bs, "txn-out")
    create(bs, "txn-in")
    p = Producer({"bootstrap.servers": bs, "transactional.id": "txn-basic"})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(10):
        p.produce("txn-out", str(i).encode(), partition=0)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(10, 15):
        p.produce("txn-out", str(i).encode(), partition=0)
    p.flush(10)  # sent, so the abort has records to abort (librdkafka purges unsent ones)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(15, 20):
        p.produce("txn-out", str(i).encode(), partition=0)
    group = "txn-group-" + uuid.uuid4().hex
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
    c.subscribe(["txn-in"])
    deadline = time.time() + 20
    while not c.assignment() and time.time() < deadline:
        c.poll(0.2)
    p.send_offsets_to_transaction([TopicPartition("txn-in", 0, 42)], c.consumer_group_metadata(), 30)
    p.commit_transaction(30)
    committed = read_all(bs, "txn-out", 1, "read_committed", expect=15)
    assert committed == list(range(10)) + list(range(15, 20))
    assert read_all(bs, "txn-out", 1, "read_uncommitted", expect=20) == list(range(20))
    assert c.committed([TopicPartition("txn-in", 0)], timeout=10)[0].offset == 42
    c.close()

    # A new session of the same transactional.id fences the old one.
    p.begin_transaction()
    p.produce("txn-out", b"99", partition=0)
    p.flush(10)
    p2 = Producer({"bootstrap.servers": bs, "transactional.id": "txn-basic"})
    p2.init_transactions(30)
    with pytest.raises(KafkaException) as fenced:
        p.commit_transaction(30)
    assert fenced.value.args[0].fatal() or "fenced" in str(fenced.value).lower(), str(fenced.value)
    p2.begin_transaction()
    p2.produce("txn-out", b"20", partition=0)
    p2.commit_transaction(30)
    committed = read_all(bs, "txn-out", 1, "read_committed", expect=16)
    assert committed == list(range(10)) + list(range(15, 21)), "the zombie's record was aborted"


def java_hash(s):
    h = 0
    for ch in s:  # the ids here are ASCII: one UTF-16 unit per character
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def coordinator_of(cluster, txid):
    """The node leading txid's __transaction_state partition (Kafka's partitioning)."""
    md = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics("__transaction_state", timeout=10)
    parts = md.topics["__transaction_state"].partitions
    h = java_hash(txid)
    p = (0 if h == -(1 << 31) else abs(h)) % len(parts)
    return parts[p].leader


def leader_of(cluster, topic, partition):
    md = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(topic, timeout=10)
    return md.topics[topic].partitions[partition].leader


class CopyLoop:
    """eos_copy.py as a supervised process: restarted whenever it exits, until stopped."""

    def __init__(self, cluster, tin, tout, txid, log):
        self.args = [sys.executable, str(COPY_LOOP), cluster.bootstrap, tin, tout, txid, "eos-" + txid]
        self.log = open(log, "a")
        self.restarts = 0
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=self.log)

    def check(self):
        if self.proc.poll() is not None:
            self.restarts += 1
            self.start()

    def kill9_mid_transaction(self, log, timeout=30):
        """kill -9 right after the loop reports a transaction open with records written."""
        seen = log.read_text().count("open")
        deadline = time.time() + timeout
        while log.read_text().count("open") == seen:
            assert time.time() < deadline, "no transaction opened"
            time.sleep(0.01)
        self.proc.kill()
        self.proc.wait()
        self.restarts += 1
        self.start()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.mark.parametrize("fault", ["kill9-loop", "kill9-coordinator", "kill9-output-leader"])
def test_exactly_once_copy_loop_survives_kills(tutorial_cluster, tmp_path, fault):
    cluster = tutorial_cluster
    n = 6000
    tin, tout, txid = f"eos-in-{fault}", f"eos-out-{fault}", f"eos-{fault}"
    create(cluster.bootstrap, tin, PARTITIONS, 3)
    create(cluster.bootstrap, tout, PARTITIONS, 3)
    p = Producer({"bootstrap.servers": cluster.bootstrap})
    for i in range(n):
        p.produce(tin, str(i).encode(), partition=i % PARTITIONS)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    loop = CopyLoop(cluster, tin, tout, txid, tmp_path / "loop.log")
    try:
        # Let it copy part of the input, then the fault.
        deadline = time.time() + 60
        while len(read_all(cluster.bootstrap, tout, PARTITIONS, "read_uncommitted", timeout=5)) < n // 5:
            assert time.time() < deadline, "the loop copies nothing:\n" + (tmp_path / "loop.log").read_text()
            loop.check()
            time.sleep(0.5)
        if fault == "kill9-loop":
            loop.kill9_mid_transaction(tmp_path / "loop.log")
        else:
            victim = coordinator_of(cluster, txid) if fault == "kill9-coordinator" else leader_of(cluster, tout, 0)
            cluster.kill9(victim)
            time.sleep(12)  # past broker.session.timeout.ms: leaderships move
            cluster.start(victim)
        deadline = time.time() + 180
        while True:
            loop.check()
            got = read_all(cluster.bootstrap, tout, PARTITIONS, "read_committed", timeout=10)
            if len(got) >= n or time.time() > deadline:
                break
            time.sleep(1)
    finally:
        loop.stop()
    committed = read_all(cluster.bootstrap, tout, PARTITIONS, "read_committed", expect=n)
    dups = len(committed) - len(set(committed))
    missing = set(range(n)) - set(committed)
    uncommitted = read_all(cluster.bootstrap, tout, PARTITIONS, "read_uncommitted", expect=len(committed))
    print(f"\n{fault}: copied {len(committed)} of {n} (read_committed), {len(uncommitted)} "
          f"read_uncommitted, duplicates {dups}, missing {len(missing)}, loop restarts {loop.restarts}")
    assert dups == 0 and not missing, (dups, sorted(missing)[:10])
    assert len(uncommitted) >= len(committed)
    if fault == "kill9-loop":
        # The killed session's open transaction was aborted by its successor's
        # init_transactions: its records are in the log, visible to read_uncommitted only.
        assert len(uncommitted) > len(committed)


def test_kafka_python_transactions(node):
    """kafka-python 3's transactional producer: commit and abort, as read_committed and
    read_uncommitted confluent-kafka consumers see them; a second producer of the same
    transactional_id fences the first."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as PyKafkaError

    bs = node.bootstrap
    create(bs, "kp-txn-out")
    p = KafkaProducer(bootstrap_servers=bs, transactional_id="kp-txn")
    p.init_transactions()
    p.begin_transaction()
    for i in range(10):
        p.send("kp-txn-out", str(i).encode(), partition=0)
    p.commit_transaction()
    p.begin_transaction()
    for i in range(10, 15):
        p.send("kp-txn-out", str(i).encode(), partition=0)
    p.flush()
    p.abort_transaction()
    p.begin_transaction()
    p.send("kp-txn-out", b"15", partition=0)
    p.commit_transaction()
    assert read_all(bs, "kp-txn-out", 1, "read_committed", expect=11) == list(range(10)) + [15]
    assert read_all(bs, "kp-txn-out", 1, "read_uncommitted", expect=16) == list(range(16))

    p.begin_transaction()
    p.send("kp-txn-out", b"99", partition=0)
    p.flush()
    p2 = KafkaProducer(bootstrap_servers=bs, transactional_id="kp-txn")
    p2.init_transactions()
    with pytest.raises(PyKafkaError):
        p.commit_transaction()
    p2.begin_transaction()
    p2.send("kp-txn-out", b"16", partition=0)
    p2.commit_transaction()
    assert read_all(bs, "kp-txn-out", 1, "read_committed", expect=12) == list(range(10)) + [15, 16]
    p2.close()
