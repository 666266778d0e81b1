"""Partition reassignment as an operator runs it, with the `odradek reassign` commands
(kafka-reassign-partitions' JSON files and output), on three controllers and three brokers:
under an acks=all numbered load from an idempotent confluent-kafka producer, a fourth broker is
formatted and started, a topic's partitions move from brokers {1,2,3} to {2,3,4}, and `verify`
is polled until every partition is done. Then broker 1 must hold no copy of the topic, and
every acknowledged record must read back once, at its offset, in order. The same again with
the active controller killed -9 in the middle of the reassignment (its state is in the
metadata log, so the next active controller carries it on)."""

import json
import re
import subprocess
import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN_DIR, Cluster
from test_durability import PARTITIONS, Load, check_read_back, wait_for


def odradek(cluster, *args):
    out = subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", cluster.bootstrap, *map(str, args)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"odradek {args}: {out.stderr}"
    return out.stdout


def replicas(cluster, topic):
    md = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(topic, timeout=10)
    return {p.id: p.replicas for p in md.topics[topic].partitions.values()}


def active_controller(cluster):
    for line in odradek(cluster, "metadata-quorum", "describe", "--status").splitlines():
        if line.startswith("LeaderId:"):
            return int(line.split(":")[1])
    raise AssertionError("no active controller")


def move_under_load(tmp_path, kill_controller):
    cluster = Cluster(tmp_path, brokers=3, extra={"min.insync.replicas": 2})
    try:
        topic = "moving-" + uuid.uuid4().hex[:6]
        a = AdminClient({"bootstrap.servers": cluster.bootstrap})
        a.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)])[topic].result(30)
        wait_for("the topic's replicas", lambda: len(replicas(cluster, topic)) == PARTITIONS, 30)
        load = Load(cluster, topic, "librdkafka-idempotent")
        time.sleep(2)
        cluster.add_broker(4)

        to_move = tmp_path / "topics.json"
        to_move.write_text(json.dumps({"version": 1, "topics": [{"topic": topic}]}))
        out = odradek(cluster, "reassign", "generate", "--topics-to-move-json-file", to_move, "--broker-list", "2,3,4")
        current_text, proposed_text = out.split("Proposed partition reassignment configuration\n")
        current = json.loads(current_text.split("Current partition replica assignment\n")[1])
        assert {p["partition"]: p["replicas"] for p in current["partitions"]} == replicas(cluster, topic)
        plan = tmp_path / "plan.json"
        plan.write_text(proposed_text.strip())
        target = {p["partition"]: p["replicas"] for p in json.loads(proposed_text)["partitions"]}
        assert all(sorted(r) == [2, 3, 4] for r in target.values()), target

        out = odradek(cluster, "reassign", "execute", "--reassignment-json-file", plan)
        assert "Save this to use as the --reassignment-json-file option during rollback" in out, out
        assert f"Successfully started partition reassignments for {topic}-0,{topic}-1,{topic}-2" in out, out
        listed = odradek(cluster, "reassign", "list")
        # A partition whose new replica is still catching up is listed as Kafka prints it (the
        # replicas now, then what is added and removed); a small one may be done already.
        lines = listed.strip().splitlines()
        if lines != ["No partition reassignments found."]:
            assert lines[0] == "Current partition reassignments:" and lines[1:], listed
            assert all(re.fullmatch(rf"{topic}-\d: replicas: [1-4](,[1-4]){{3}}\. adding: 4\. removing: 1\.", l)
                       for l in lines[1:]), listed
        if kill_controller:
            victim = active_controller(cluster)
            cluster.kill9(f"controller-{victim - 100}")
            wait_for("another active controller", lambda: active_controller(cluster) != victim, 30)
            cluster.restart(f"controller-{victim - 100}")

        def done():
            out = odradek(cluster, "reassign", "verify", "--reassignment-json-file", plan)
            return all(f"Reassignment of partition {topic}-{p} is completed." in out for p in range(PARTITIONS))
        wait_for("every partition reassigned", done, 90)
        time.sleep(1)
        load.finish()
        assert replicas(cluster, topic) == target
        assert odradek(cluster, "reassign", "list").strip() == "No partition reassignments found."
        # The removed replicas are deleted from broker 1.
        wait_for("broker 1's copies deleted",
                 lambda: not any((tmp_path / "broker-1" / f"{topic}-{p}").exists() for p in range(PARTITIONS)), 30)
        assert all((tmp_path / "broker-4" / f"{topic}-{p}").exists() for p in range(PARTITIONS))
        print(f"\nwhile reassigning, `reassign list` said:\n{listed}")
        return check_read_back(cluster, topic, load, f"reassignment {{1,2,3}} -> {{2,3,4}} "
                               f"(controller killed: {kill_controller})", strict=True)
    finally:
        cluster.stop()


def test_partitions_move_to_a_new_broker_under_load(tmp_path):
    move_under_load(tmp_path, kill_controller=False)


def test_a_reassignment_survives_kill_9_of_the_active_controller(tmp_path):
    move_under_load(tmp_path, kill_controller=True)


def log_size(cluster, broker, topic):
    """The size of `topic`-0 on `broker`, from `odradek log-dirs describe`."""
    out = odradek(cluster, "log-dirs", "describe", "--broker-list", broker, "--topic-list", topic)
    doc = json.loads(out.splitlines()[-1])
    sizes = [p["size"] for b in doc["brokers"] for d in b["logDirs"] for p in d["partitions"]
             if p["partition"] == f"{topic}-0"]
    return sizes[0] if sizes else None


def test_a_throttled_reassignment_replicates_at_the_throttle(tmp_path):
    """A 24 MB partition moves from broker 1 to broker 2 with `--throttle 2000000`: the new
    replica grows at 2 MB/s (within 20%, measured from its size in `log-dirs describe` while it
    catches up), and `verify` clears the throttles once it is done."""
    from confluent_kafka import Producer

    throttle = 2_000_000
    cluster = Cluster(tmp_path, brokers=2)
    try:
        topic = "throttled-" + uuid.uuid4().hex[:6]
        a = AdminClient({"bootstrap.servers": cluster.bootstrap})
        # A manual assignment through confluent-kafka's CreateTopics.
        a.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[1]])])[topic].result(30)
        p = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 20, "compression.type": "none"})
        value = b"x" * 1000
        for i in range(24_000):
            while True:
                try:
                    p.produce(topic, value=value, partition=0)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        assert p.flush(60) == 0
        size = log_size(cluster, 1, topic)
        assert size > 24_000_000, size
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [2]}]}))
        out = odradek(cluster, "reassign", "execute", "--reassignment-json-file", plan, "--throttle", throttle)
        assert f"The inter-broker throttle limit was set to {throttle} B/s" in out, out
        samples = []
        deadline = time.time() + 120
        while time.time() < deadline:
            s = log_size(cluster, 2, topic)
            if s is not None:
                samples.append((time.time(), s))
            if s is not None and s >= size:
                break
            time.sleep(0.5)
        # The steady part: from 2 MB in until 2 MB short of the end (leaving out the first
        # second's burst and the last fetch).
        steady = [(t, s) for t, s in samples if 2_000_000 <= s <= size - 2_000_000]
        assert len(steady) >= 4, samples
        (t0, s0), (t1, s1) = steady[0], steady[-1]
        rate = (s1 - s0) / (t1 - t0)
        print(f"\nthrottled replication: {s1 - s0} bytes in {t1 - t0:.1f} s = {rate / 1e6:.2f} MB/s "
              f"(throttle {throttle / 1e6:.2f} MB/s)")
        assert 0.8 * throttle <= rate <= 1.2 * throttle, rate

        verified = {}

        def done():
            verified["out"] = odradek(cluster, "reassign", "verify", "--reassignment-json-file", plan)
            return f"Reassignment of partition {topic}-0 is completed." in verified["out"]
        wait_for("the reassignment", done, 60)
        # Nothing else is moving: the throttles go, as kafka-reassign-partitions --verify says.
        assert "Clearing broker-level throttles on brokers 1,2" in verified["out"], verified["out"]
        assert f"Clearing topic-level throttles on topic {topic}" in verified["out"], verified["out"]
        assert f"{topic}-0" not in odradek(cluster, "reassign", "list")
        assert replicas(cluster, topic) == {0: [2]}
        configs = odradek(cluster, "configs", "describe", "--entity", "topic", "--name", topic)
        assert "throttled.replicas" not in configs, configs
    finally:
        cluster.stop()
