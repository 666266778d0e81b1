"""Kafka's ordering guarantee: records a client sends to one partition over one connection land in
the order they were sent, even with several requests in flight. Real clients at their defaults
(librdkafka: max.in.flight.requests.per.connection=5; kafka-python: 5) send numbered records to a
one-partition topic; the partition must read back as exactly 0..n-1, in order, once each. The
librdkafka runs are repeated with linger.ms=0 (the Java client's default before Kafka 4.0): more,
smaller requests in flight, which is what made concurrent handling reorder batches (about 1,500
of 200,000 records out of order before requests of a connection were handled one at a time).

Also: a librdkafka producer to a topic whose name can never be valid fails its messages with the
invalid-topic error at once instead of retrying until its timeout."""

import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN_DIR, free_port

RECORDS = 200_000


@pytest.fixture(scope="module")
def dev_node(tmp_path_factory):
    """`odradek-broker --dev` itself, as a new user starts it, on free ports."""
    workdir = tmp_path_factory.mktemp("dev")
    port, cport = free_port(), free_port()
    log_path = workdir / "node.log"
    proc = subprocess.Popen(
        [BIN_DIR / "odradek-broker", "--dev", "--data-dir", workdir / "data",
         "--override", f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
         "--override", f"controller.quorum.voters=1@127.0.0.1:{cport}"],
        stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
    deadline = time.time() + 30
    while "broker ready" not in log_path.read_text():
        assert proc.poll() is None, "dev node exited:\n" + log_path.read_text()
        assert time.time() < deadline, "dev node not ready:\n" + log_path.read_text()
        time.sleep(0.05)

    class Dev:
        bootstrap = f"127.0.0.1:{port}"

    yield Dev()
    proc.terminate()
    proc.wait(timeout=20)


def create_one_partition(bootstrap, topic):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(15)


def read_values(bootstrap, topic, expected, timeout=120):
    """Every value of partition 0 from the beginning, as ints, in offset order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "order-" + uuid.uuid4().hex,
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    values, offsets = [], []
    deadline = time.time() + timeout
    while len(values) < expected and time.time() < deadline:
        for m in c.consume(num_messages=10_000, timeout=1.0):
            assert m.error() is None, m.error()
            offsets.append(m.offset())
            values.append(int(m.value()))
    # Nothing more arrives after the expected count.
    extra = [m for m in c.consume(num_messages=10, timeout=1.0) if m.error() is None]
    c.close()
    assert offsets == list(range(len(offsets))), "offsets are dense from 0"
    return values + [int(m.value()) for m in extra]


def assert_in_order(values, n):
    assert len(values) == n, f"read {len(values)} records, sent {n}"
    out_of_order = sum(1 for a, b in zip(values, values[1:]) if b != a + 1)
    assert out_of_order == 0, f"{out_of_order} records out of order; first: " + str(
        next((i, a, b) for i, (a, b) in enumerate(zip(values, values[1:])) if b != a + 1))
    assert values == list(range(n))


def produce_with_librdkafka(bootstrap, topic, n, extra):
    p = Producer({"bootstrap.servers": bootstrap, **extra})
    errors = []
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=str(i).encode(),
                          on_delivery=lambda err, msg: errors.append(err) if err else None)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(120) == 0
    assert errors == []


@pytest.mark.parametrize("extra", [{}, {"linger.ms": 0}, {"enable.idempotence": True}],
                         ids=["defaults", "linger0", "idempotent"])
def test_librdkafka_producer_order_on_dev(dev_node, extra):
    topic = "order-librdkafka-dev-" + "-".join(f"{k}{v}" for k, v in extra.items())
    create_one_partition(dev_node.bootstrap, topic)
    produce_with_librdkafka(dev_node.bootstrap, topic, RECORDS, extra)
    assert_in_order(read_values(dev_node.bootstrap, topic, RECORDS), RECORDS)


def test_librdkafka_producer_order_on_three_brokers(cluster3):
    topic = "order-librdkafka-cluster"
    create_one_partition(cluster3.bootstrap, topic)
    produce_with_librdkafka(cluster3.bootstrap, topic, RECORDS, {"linger.ms": 0})
    assert_in_order(read_values(cluster3.bootstrap, topic, RECORDS), RECORDS)


def test_kcat_producer_order(dev_node):
    topic = "order-kcat"
    create_one_partition(dev_node.bootstrap, topic)
    lines = "".join(f"{i}\n" for i in range(RECORDS))
    subprocess.run(["kcat", "-b", dev_node.bootstrap, "-P", "-t", topic, "-p", "0", "-X", "linger.ms=0"],
                   input=lines.encode(), check=True, timeout=120)
    out = subprocess.run(["kcat", "-b", dev_node.bootstrap, "-C", "-t", topic, "-p", "0",
                          "-o", "beginning", "-e", "-q", "-f", "%s\n"],
                         capture_output=True, check=True, timeout=120).stdout.decode()
    assert_in_order([int(v) for v in out.split()], RECORDS)


def test_kafka_python_producer_order(dev_node):
    from kafka import KafkaProducer

    topic = "order-kafka-python"
    create_one_partition(dev_node.bootstrap, topic)
    n = RECORDS // 4  # kafka-python is pure Python: a quarter of the records keeps it quick
    # Its defaults: max_in_flight_requests_per_connection=5, acks=all, and (kafka-python 3)
    # enable_idempotence=True, so InitProducerId and sequence numbers.
    p = KafkaProducer(bootstrap_servers=dev_node.bootstrap)
    assert p.config["enable_idempotence"]
    futures = [p.send(topic, value=str(i).encode(), partition=0) for i in range(n)]
    p.flush(120)
    offsets = [f.get(timeout=30).offset for f in futures]
    assert offsets == list(range(n)), "acknowledged offsets follow send order"
    p.close()
    assert_in_order(read_values(dev_node.bootstrap, topic, n), n)


def test_producer_to_an_invalid_topic_name_fails_at_once(dev_node):
    p = Producer({"bootstrap.servers": dev_node.bootstrap})
    results = []
    started = time.time()
    p.produce("no spaces/or slashes!", value=b"x", on_delivery=lambda err, msg: results.append((err, time.time())))
    while not results and time.time() - started < 30:
        p.poll(0.1)
    assert results, "the message was never failed"
    err, at = results[0]
    assert err is not None and err.code() == KafkaError.TOPIC_EXCEPTION, err
    assert at - started < 1.0, f"failed after {at - started:.2f} s"
