"""Changing the controller quorum of a running cluster (KIP-853), as an operator does with
kafka-metadata-quorum: a fourth controller is formatted and started, added with
`metadata-quorum add-controller`, an old voter is removed with `remove-controller` and stopped,
all while a client keeps creating topics. Every topic whose creation was acknowledged must
exist afterwards (no metadata lost), and `metadata-quorum describe` must show each step. The
quorum was configured statically (controller.quorum.voters), which Kafka cannot change
(KAFKA-16538)."""

import re
import subprocess
import threading
import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN_DIR, Cluster
from test_durability import wait_for


def ok(cluster, *args):
    out = subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", cluster.bootstrap, *map(str, args)],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, f"odradek {args}: {out.stderr}"
    return out.stdout


def quorum(cluster):
    """(voters, observers) from `metadata-quorum describe --status`."""
    out = ok(cluster, "metadata-quorum", "describe", "--status")
    line = lambda key: next(l for l in out.splitlines() if l.startswith(key))
    ids = lambda l: sorted(int(i) for i in re.findall(r'"id": (\d+)', l))
    return ids(line("CurrentVoters:")), ids(line("CurrentObservers:"))


class TopicLoad:
    """Creates one topic after another; records those acknowledged."""

    def __init__(self, cluster):
        self.admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        self.created, self.failed = [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        tag = uuid.uuid4().hex[:6]
        i = 0
        while not self.stop.is_set():
            name = f"load-{tag}-{i}"
            i += 1
            try:
                self.admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)],
                                         operation_timeout=20)[name].result(30)
                self.created.append(name)
            except Exception as e:  # noqa: BLE001 - a failed creation is counted, not fatal
                self.failed.append((name, str(e)))
            time.sleep(0.05)

    def finish(self):
        self.stop.set()
        self.thread.join()


def test_a_controller_is_added_and_an_old_one_removed_under_topic_creation_load(tmp_path):
    cluster = Cluster(tmp_path, brokers=3)
    try:
        assert quorum(cluster) == ([100, 101, 102], [])
        load = TopicLoad(cluster)
        time.sleep(2)

        config = cluster.add_controller(3)
        time.sleep(1)
        assert quorum(cluster) == ([100, 101, 102], []), "a started controller is not a voter by itself"
        out = ok(cluster, "metadata-quorum", "add-controller", "--command-config", config)
        assert re.match(r"Added controller 103 with directory id \S+ and endpoints: CONTROLLER://127\.0\.0\.1:\d+$", out.strip()), out
        assert quorum(cluster) == ([100, 101, 102, 103], [])
        rows = ok(cluster, "metadata-quorum", "describe", "--replication").splitlines()
        assert rows[0].split("\t") == ["NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                                       "LastCaughtUpTimestamp", "Status"], rows
        assert sorted(int(r.split("\t")[0]) for r in rows[1:]) == [100, 101, 102, 103], rows
        assert all(int(r.split("\t")[4]) > 0 for r in rows[1:]), f"every voter heard from: {rows}"
        time.sleep(2)

        # The old voter removed is the active controller itself (it hands over first).
        leader = int(next(l for l in ok(cluster, "metadata-quorum", "describe", "--status").splitlines()
                          if l.startswith("LeaderId:")).split(":")[1])
        old = leader if leader != 103 else 100
        out = ok(cluster, "metadata-quorum", "remove-controller", "--controller-id", old)
        assert out.startswith(f"Removed KRaft controller {old} with directory id"), out
        remaining = sorted({100, 101, 102, 103} - {old})
        assert quorum(cluster) == (remaining, [])
        cluster.stop_node(f"controller-{old - 100}")
        time.sleep(3)
        # The active controller may be any of the three left: kill it, the other two carry on.
        leader = int(next(l for l in ok(cluster, "metadata-quorum", "describe", "--status").splitlines()
                          if l.startswith("LeaderId:")).split(":")[1])
        cluster.kill9(f"controller-{leader - 100}")
        wait_for("a new active controller", lambda: int(next(
            l for l in ok(cluster, "metadata-quorum", "describe", "--status").splitlines()
            if l.startswith("LeaderId:")).split(":")[1]) not in (leader, -1), 30)
        cluster.restart(f"controller-{leader - 100}")
        time.sleep(3)
        load.finish()
        print(f"\nremoved controller {old} (the active one), then killed -9 the next active, {leader}")

        assert len(load.created) > 20, (len(load.created), load.failed[:5])
        names = set(AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(timeout=20).topics)
        lost = [t for t in load.created if t not in names]
        print(f"\ncreated {len(load.created)} topics while the quorum changed; {len(load.failed)} "
              f"creations failed (retriable, during elections); lost {len(lost)}")
        assert lost == [], lost
        assert quorum(cluster) == (remaining, [])
    finally:
        cluster.stop()
