"""Client quotas and the security CLI: `odradek quotas`, `odradek users scram` over SASL
(the CLI's own SASL and TLS), and a librdkafka producer over its produce quota throttled to
within 15% of it while another client is not."""

import subprocess
import threading
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from certs import Certs
from conftest import BIN_DIR, Node

JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret";'
QUOTA = 256 * 1024
# The rate is judged after the first window, once the initial burst Kafka's rate window allows
# is behind.
MEASURE_FROM = 10


@pytest.fixture(scope="module")
def qnode(tmp_path_factory):
    work = tmp_path_factory.mktemp("quotas")
    certs = Certs(work / "certs")
    node = Node(
        work,
        {
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
            "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
            "ssl.keystore.location": str(certs.broker),
            "ssl.truststore.location": str(certs.ca),
            # A shorter rate window than Kafka's 11 x 1 s, so the test reaches steady state sooner.
            "quota.window.num": "5",
        },
        extra_listeners={"SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL"},
    )
    node.certs = certs
    node.admin_config = work / "admin.properties"
    node.admin_config.write_text(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
        'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret";\n'
    )
    yield node
    node.stop()


def cli(node, *args, listener="SASL_PLAINTEXT", config=None):
    r = subprocess.run(
        [BIN_DIR / "odradek", "--bootstrap-server", node.bootstrap_of(listener), "--command-config", str(config or node.admin_config), *args],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_scram_users_through_the_cli_over_sasl_ssl(qnode, tmp_path):
    cli(qnode, "users", "scram", "set", "--user", "carol", "--mechanism", "SCRAM-SHA-512", "--password", "carol-pw")
    out = cli(qnode, "users", "scram", "describe", "--user", "carol")
    assert "SCRAM-SHA-512=iterations=4096" in out, out
    # The CLI itself logs in with SCRAM over TLS.
    scram = tmp_path / "carol.properties"
    scram.write_text(
        f"security.protocol=SASL_SSL\nssl.truststore.location={qnode.certs.ca}\nsasl.mechanism=SCRAM-SHA-512\n"
        'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="carol" password="carol-pw";\n'
    )
    assert "carol" in cli(qnode, "users", "scram", "describe", listener="SASL_SSL", config=scram)
    bad = tmp_path / "bad.properties"
    bad.write_text(scram.read_text().replace("carol-pw", "wrong"))
    r = subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", qnode.bootstrap_of("SASL_SSL"), "--command-config", str(bad), "topics", "list"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "SASL_AUTHENTICATION_FAILED" in r.stderr, r.stderr
    cli(qnode, "users", "scram", "delete", "--user", "carol", "--mechanism", "SCRAM-SHA-512")
    r = subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", qnode.bootstrap_of("SASL_SSL"), "--command-config", str(scram), "topics", "list"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, "a deleted credential must not log in"


def produce_for(config, seconds, counter, offered=None):
    """Produces 1 KiB records for `seconds`, at most `offered` bytes a second when given;
    counter[0] counts acknowledged bytes, counter[1] those acknowledged between MEASURE_FROM and
    `seconds` (the steady state, while the producer still has a backlog)."""
    # Requests of at most 64 KiB: at librdkafka's default 1 MB a throttled client gets about
    # one request through every 4 s, and a 30 s measurement would count 7 or 8 of them.
    p = Producer({**config, "linger.ms": 5, "batch.size": 65536, "queue.buffering.max.kbytes": 2048})
    value = b"x" * 1024
    start = time.time()
    end = start + seconds

    def delivered(err, msg):
        if err is None:
            counter[0] += len(msg.value())
            if MEASURE_FROM <= time.time() - start < seconds:
                counter[1] += len(msg.value())

    sent = 0
    while time.time() < end:
        if offered is not None and sent > offered * (time.time() - start):
            p.poll(0.01)
            continue
        try:
            p.produce("quota-topic", value=value, on_delivery=delivered)
            sent += len(value)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    p.flush(30)


def test_a_client_over_its_produce_quota_is_throttled_and_others_are_not(qnode):
    admin = AdminClient({"bootstrap.servers": qnode.bootstrap})
    admin.create_topics([NewTopic("quota-topic", 1, 1)])["quota-topic"].result(timeout=30)
    cli(qnode, "quotas", "alter", "--client-id", "slow", "--add-config", f"producer_byte_rate={QUOTA}")
    out = cli(qnode, "quotas", "describe", "--client-id", "slow")
    assert f"client-id=slow are producer_byte_rate={QUOTA}" in out, out
    seconds = 40
    slow, fast = [0, 0], [0, 0]
    # The unthrottled client offers a fixed 16x the quota rather than all it can: a producer
    # flat out would take both cores from the broker and the throttled client alike (one
    # Python process), and the throttled client's rate would then measure the machine's load.
    threads = [
        threading.Thread(target=produce_for, args=({"bootstrap.servers": qnode.bootstrap, "client.id": "slow"}, seconds, slow)),
        threading.Thread(target=produce_for, args=({"bootstrap.servers": qnode.bootstrap, "client.id": "fast"}, seconds, fast, 16 * QUOTA)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    steady = seconds - MEASURE_FROM
    slow_rate, fast_rate = slow[1] / steady, fast[1] / steady
    print(f"steady state: slow {slow_rate:.0f} B/s (quota {QUOTA}), fast {fast_rate:.0f} B/s; whole run: slow {slow[0]} B acknowledged")
    assert 0.85 * QUOTA <= slow_rate <= 1.15 * QUOTA, (slow_rate, QUOTA)
    assert fast_rate > 12 * QUOTA, (fast_rate, QUOTA)
    cli(qnode, "quotas", "alter", "--client-id", "slow", "--delete-config", "producer_byte_rate")
    assert "slow" not in cli(qnode, "quotas", "describe")
