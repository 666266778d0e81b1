"""`odradek consume --share-group` (KIP-932) against a single node: two CLI members of one share
group print every record exactly once between them and exit 0, nothing they printed comes back
(they accepted it before leaving), records a confluent-kafka ShareConsumer of the same group
accepted never reach them, and records a member fetched but did not print (past
--max-messages) go to the next member instead of being lost; SIGTERM stops a member cleanly."""

import signal
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
    # Locks shorter than Kafka's 30 s, so a record whose acknowledgement went missing comes
    # back within a test run.
    "group.share.min.record.lock.duration.ms": "1000",
    "group.share.record.lock.duration.ms": "3000",
}


@pytest.fixture(scope="module")
def share_node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("cli-share"), SETTINGS)
    yield n
    n.stop()


def create(node, topic):
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(10)


def produce(node, records):
    """`records`: (topic, key, value) triples."""
    p = Producer({"bootstrap.servers": node.bootstrap})
    for topic, key, value in records:
        p.produce(topic, key=key, value=value.encode())
    assert p.flush(10) == 0


def consume_cmd(node, topic, group, *extra):
    return [BIN_DIR / "odradek", "--bootstrap-server", node.bootstrap, "consume", "--topic", topic,
            "--share-group", group, *extra]


def finished(proc, timeout=120):
    """(lines printed, stderr) of a CLI member that must exit 0 and count what it printed."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert f"Processed a total of {len(lines)} messages" in err, err
    assert "warning" not in err, err
    return lines, err


def run(cmd, timeout=120):
    return finished(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
                    timeout)


def test_two_cli_members_print_every_record_once(share_node):
    topic, group = "cli-share-" + uuid.uuid4().hex[:6], "csg-" + uuid.uuid4().hex[:6]
    create(share_node, topic)
    # A ShareConsumer joins first: its fetches start the share-partition (at the log end, the
    # default share.auto.offset.reset), then it accepts everything of a first wave.
    c = ShareConsumer({"bootstrap.servers": share_node.bootstrap, "group.id": group,
                       "share.acknowledgement.mode": "explicit"})
    c.subscribe([topic])
    deadline = time.time() + 8
    while time.time() < deadline:
        assert not [m for m in c.poll(0.2) if m.error() is None], "nothing produced yet"
    first = [f"a{i}" for i in range(50)]
    produce(share_node, [(topic, None, v) for v in first])
    accepted = []
    deadline = time.time() + 30
    while len(accepted) < len(first) and time.time() < deadline:
        for m in c.poll(0.5):
            if m.error() is None:
                c.acknowledge(m, AcknowledgeType.ACCEPT)
                accepted.append(m.value().decode())
    c.commit_sync()
    c.close()
    assert sorted(accepted) == sorted(first)

    # Two CLI members, then a second wave in bursts while both fetch.
    cmd = consume_cmd(share_node, topic, group, "--max-messages", "1000", "--timeout-ms", "8000")
    members = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    time.sleep(2)
    second = [f"b{i}" for i in range(200)]
    for i in range(0, len(second), 20):
        produce(share_node, [(topic, None, v) for v in second[i:i + 20]])
        time.sleep(0.2)
    printed = [finished(m)[0] for m in members]
    everything = printed[0] + printed[1]
    assert sorted(everything) == sorted(second), "every record of the second wave, once"
    assert not set(printed[0]) & set(printed[1]), "no record printed by both members"

    # They accepted what they printed before leaving: nothing comes back, not even after the
    # records' locks (3 s) ran out.
    again, _ = run(consume_cmd(share_node, topic, group, "--timeout-ms", "5000"))
    assert again == []


def test_records_past_max_messages_go_to_the_next_member(share_node):
    topic, group = "cli-share-max-" + uuid.uuid4().hex[:6], "csm-" + uuid.uuid4().hex[:6]
    create(share_node, topic)
    # A first member starts the share-partition at the (empty) log's end.
    assert run(consume_cmd(share_node, topic, group, "--timeout-ms", "3000"))[0] == []
    produce(share_node, [(topic, f"k{i}".encode(), f"v{i}") for i in range(30)])
    # One fetch acquires all 30; the member prints 10, accepts them and releases the rest.
    ten, _ = run(consume_cmd(share_node, topic, group, "--max-messages", "10", "--timeout-ms", "20000",
                             "--print-key", "--key-separator", ":"))
    assert len(ten) == 10
    assert all(line.replace("k", "v", 1).split(":")[0] == line.split(":")[1] for line in ten), ten
    rest, _ = run(consume_cmd(share_node, topic, group, "--timeout-ms", "3000", "--print-key",
                              "--key-separator", ":"))
    assert sorted(ten + rest) == sorted(f"k{i}:v{i}" for i in range(30))
    assert len(rest) == 20
    # SIGTERM stops a member between fetches: it leaves and reports, exit 0.
    idle = subprocess.Popen(consume_cmd(share_node, topic, group), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    idle.send_signal(signal.SIGTERM)
    assert finished(idle, timeout=30)[0] == []
