"""Several log directories per broker (`log.dirs`), as a Kafka operator runs JBOD: each
broker places new replicas in the directory holding the fewest, `odradek log-dirs describe`
shows every directory, and when one directory fails under an acks=all load (it is deleted from
under the broker; the next write to it fails) only its replicas go offline: their leadership and
ISR membership move to other brokers, the broker keeps serving the replicas of its other
directory, and every acknowledged record reads back once, in order."""

import json
import shutil
import subprocess
import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN_DIR, Cluster
from test_durability import PARTITIONS, Load, check_read_back, wait_for


def log_dirs(cluster, broker):
    out = subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", cluster.bootstrap, "log-dirs", "describe",
                          "--broker-list", str(broker)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout.splitlines()[-1])
    return {d["logDir"]: d for b in doc["brokers"] for d in b["logDirs"]}


def state(cluster, topic):
    md = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(topic, timeout=10)
    return {p.id: (p.leader, sorted(p.isrs)) for p in md.topics[topic].partitions.values()}


def test_a_failed_log_directory_takes_only_its_replicas_offline(tmp_path):
    cluster = Cluster(tmp_path, brokers=3, broker_dirs=2, extra={"min.insync.replicas": 2})
    try:
        topic = "jbod-" + uuid.uuid4().hex[:6]
        a = AdminClient({"bootstrap.servers": cluster.bootstrap})
        # Every partition led by broker 1, whose two directories hold two and one of them.
        a.create_topics([NewTopic(topic, num_partitions=PARTITIONS,
                                  replica_assignment=[[1, 2, 3], [1, 3, 2], [1, 2, 3]])])[topic].result(30)
        wait_for("full ISRs", lambda: all(len(isr) == 3 for _, isr in state(cluster, topic).values()), 30)
        dirs = log_dirs(cluster, 1)
        assert sorted(dirs) == sorted(str(d) for d in cluster.log_dirs("broker-1")), dirs
        held = {d: sorted(int(p["partition"].rsplit("-", 1)[1]) for p in dirs[d]["partitions"] if p["partition"].startswith(topic))
                for d in dirs}
        assert sorted(len(h) for h in held.values()) == [1, 2], f"the fewest-replicas directory first: {held}"
        # The directory that fails is the one with two of broker 1's leaderships.
        b_dir = max(held, key=lambda d: len(held[d]))
        a_dir = min(held, key=lambda d: len(held[d]))
        assert all(dirs[d]["error"] is None and dirs[d]["totalBytes"] > 0 for d in dirs)

        load = Load(cluster, topic, "librdkafka-idempotent")
        time.sleep(3)
        # The disk of b_dir "fails": the next write there (the HW checkpoint, within 5 s, or a
        # segment roll) gets an I/O error.
        shutil.rmtree(b_dir)
        wait_for("broker 1's replicas in the failed directory out of their ISRs", lambda: all(
            1 not in state(cluster, topic)[p][1] and state(cluster, topic)[p][0] != 1 for p in held[b_dir]), 30)
        # The other directory's replicas stay in sync on broker 1.
        assert all(1 in state(cluster, topic)[p][1] for p in held[a_dir]), state(cluster, topic)
        dirs = log_dirs(cluster, 1)
        assert dirs[b_dir]["error"] == "KafkaStorageException" and dirs[b_dir]["partitions"] == [], dirs[b_dir]
        assert dirs[a_dir]["error"] is None and len(dirs[a_dir]["partitions"]) == 1
        assert cluster.procs["broker-1"].poll() is None, "the broker lives on"
        time.sleep(3)
        load.finish()
        check_read_back(cluster, topic, load, "a log directory of broker 1 failed under load", strict=True)
    finally:
        cluster.stop()
