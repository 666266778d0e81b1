"""The operator commands against a cluster of three controllers and four brokers, as a Kafka
operator runs kafka-reassign-partitions (cancel, balance), kafka-leader-election (preferred
after a broker restart, by hand and automatically; unclean only when asked), kafka-log-dirs and
kafka-cluster unregister, each checked against what the command prints and what the cluster
then looks like."""

import json
import subprocess
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN_DIR, Cluster
from test_durability import wait_for


def run(cluster, *args):
    return subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", cluster.bootstrap, *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def ok(cluster, *args):
    out = run(cluster, *args)
    assert out.returncode == 0, f"odradek {args}: {out.stderr}"
    return out.stdout


def partitions(cluster, topic):
    md = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(topic, timeout=10)
    return {p.id: (p.leader, p.replicas, sorted(p.isrs)) for p in md.topics[topic].partitions.values()}


def create(cluster, topic, assignment, config=None):
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=len(assignment), replica_assignment=assignment,
                              config=config or {})])[topic].result(30)
    wait_for(f"{topic}'s full ISRs", lambda: all(len(isr) == len(r) for _, r, isr in partitions(cluster, topic).values()), 30)


def fill(cluster, topic, n, size=1000):
    p = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 20})
    for _ in range(n):
        while True:
            try:
                p.produce(topic, value=b"x" * size, partition=0)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0


def restart_broker(cluster, b):
    cluster.stop_node(f"broker-{b}")
    cluster.restart(f"broker-{b}")
    cluster.wait_ready(f"broker-{b}")


def test_reassign_cancel_balance_log_dirs_and_unregister(tmp_path):
    cluster = Cluster(tmp_path, brokers=4)
    try:
        # cancel: a throttled move that cannot finish yet goes back to the original replicas.
        slow = "slow-" + uuid.uuid4().hex[:6]
        create(cluster, slow, [[1, 2]])
        fill(cluster, slow, 4000)
        plan = tmp_path / "slow.json"
        plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": slow, "partition": 0, "replicas": [3, 4]}]}))
        ok(cluster, "reassign", "execute", "--reassignment-json-file", plan, "--throttle", 50_000)
        listed = ok(cluster, "reassign", "list")
        assert f"{slow}-0: replicas: 3,4,1,2. adding: 3,4. removing: 1,2." in listed, listed
        bad = run(cluster, "log-dirs", "describe", "--broker-list", "1,7")
        assert bad.returncode == 1 and "The given brokers do not exist from --broker-list: 7." in bad.stderr, bad.stderr
        again = run(cluster, "reassign", "execute", "--reassignment-json-file", plan)
        assert again.returncode == 1 and "Use --additional" in again.stderr, again.stderr
        out = ok(cluster, "reassign", "cancel", "--reassignment-json-file", plan)
        assert out.splitlines() == [
            f"Successfully cancelled partition reassignment for: {slow}-0",
            "Clearing broker-level throttles on brokers 1,2,3,4",
            f"Clearing topic-level throttles on topic {slow}",
        ], out
        assert ok(cluster, "reassign", "list").strip() == "No partition reassignments found."
        assert sorted(partitions(cluster, slow)[0][1]) == [1, 2]
        assert ok(cluster, "reassign", "cancel", "--reassignment-json-file", plan, "--preserve-throttles").strip() == \
            "None of the specified partition reassignments are active."
        out = ok(cluster, "reassign", "verify", "--reassignment-json-file", plan)
        assert f"There is no active reassignment of partition {slow}-0, but replica set is" in out, out
        assert "throttled" not in ok(cluster, "configs", "describe", "--entity", "topic", "--name", slow)
        broker_configs = ok(cluster, "configs", "describe", "--entity", "broker", "--name", 1)
        assert "leader.replication.throttled.rate=9223372036854775807 (DEFAULT_CONFIG)" in broker_configs, broker_configs
        assert "follower.replication.throttled.rate=9223372036854775807 (DEFAULT_CONFIG)" in broker_configs, broker_configs

        # balance: eight partitions crowded on brokers 1 and 2 spread over all four.
        crowded = "crowded-" + uuid.uuid4().hex[:6]
        create(cluster, crowded, [[1, 2]] * 8)
        out = ok(cluster, "reassign", "balance", "--execute")
        assert "Broker\tReplicas\tLeaders\tBytes" in out, out
        assert "Proposed partition reassignment configuration" in out, out
        assert "Successfully started partition reassignments for" in out, out
        proposed = json.loads(out.split("Proposed partition reassignment configuration\n")[1].splitlines()[0])
        moves = {p["partition"]: p["replicas"] for p in proposed["partitions"] if p["topic"] == crowded}
        assert moves, out
        wait_for("the balance to finish", lambda: ok(cluster, "reassign", "list").strip() == "No partition reassignments found.", 60)
        per_broker = {b: 0 for b in (1, 2, 3, 4)}
        for leader, replicas, isr in partitions(cluster, crowded).values():
            for r in replicas:
                per_broker[r] += 1
        counts = [per_broker[b] for b in (1, 2, 3, 4)]
        # Every broker holds its share (the slow topic's two replicas count as well).
        assert max(counts) - min(counts) <= 2, (counts, out)
        again = ok(cluster, "reassign", "balance")
        assert "Successfully started" not in again

        # log-dirs describe: every replica of the topic, on the broker that holds it.
        doc = json.loads(ok(cluster, "log-dirs", "describe", "--topic-list", slow).splitlines()[-1])
        held = {b["broker"]: [p["partition"] for d in b["logDirs"] for p in d["partitions"]] for b in doc["brokers"]}
        assert sorted(b for b, ps in held.items() if f"{slow}-0" in ps) == [1, 2], held
        sizes = [p["size"] for b in doc["brokers"] for d in b["logDirs"] for p in d["partitions"]]
        assert all(s > 4_000_000 for s in sizes), sizes
        assert all(d["totalBytes"] > 0 and d["usableBytes"] > 0 for b in doc["brokers"] for d in b["logDirs"])

        # cluster unregister: a broker that is gone leaves the cluster; an unknown id is an error.
        cluster.stop_node("broker-4")
        out = ok(cluster, "cluster", "unregister", "--id", 4)
        assert out.strip() == "Broker 4 is no longer registered.", out
        md = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(timeout=10)
        assert sorted(md.brokers) == [1, 2, 3]
        bad = run(cluster, "cluster", "unregister", "--id", 99)
        assert bad.returncode == 1 and "BROKER_ID_NOT_REGISTERED" in bad.stderr, bad.stderr
    finally:
        cluster.stop()


def test_preferred_election_by_hand_and_unclean_only_when_asked(tmp_path):
    cluster = Cluster(tmp_path, brokers=4, extra={"auto.leader.rebalance.enable": "false"})
    try:
        topic = "pref-" + uuid.uuid4().hex[:6]
        create(cluster, topic, [[1, 2], [1, 3], [2, 1]])
        restart_broker(cluster, 1)
        wait_for("broker 1 back in the ISRs", lambda: all(1 in isr for _, r, isr in partitions(cluster, topic).values() if 1 in r), 60)
        assert partitions(cluster, topic)[0][0] != 1, "broker 1 lost its leaderships when it stopped"
        time.sleep(3)
        assert partitions(cluster, topic)[0][0] != 1, "no automatic rebalance when it is off"
        out = ok(cluster, "leader-election", "--election-type", "preferred", "--all-topic-partitions")
        assert f"Successfully completed leader election (PREFERRED) for partitions {topic}-0, {topic}-1" in out, out
        wait_for("preferred leaders", lambda: {p: l for p, (l, _, _) in partitions(cluster, topic).items()} == {0: 1, 1: 1, 2: 2}, 10)
        out = ok(cluster, "leader-election", "--election-type", "preferred", "--topic", topic, "--partition", 0)
        assert out.strip() == f"Valid replica already elected for partitions {topic}-0", out

        # Unclean: the ISR's only member is gone; the out-of-sync replica leads only when asked.
        lonely = "lonely-" + uuid.uuid4().hex[:6]
        create(cluster, lonely, [[3, 4]], {"min.insync.replicas": "1"})
        cluster.stop_node("broker-4")
        wait_for("broker 4 out of the ISR", lambda: partitions(cluster, lonely)[0][2] == [3], 30)
        fill(cluster, lonely, 10)
        cluster.stop_node("broker-3")
        cluster.restart("broker-4")
        cluster.wait_ready("broker-4")
        time.sleep(2)
        leader, _, isr = partitions(cluster, lonely)[0]
        assert leader == -1 and isr == [3], (leader, isr)
        bad = run(cluster, "leader-election", "--election-type", "preferred", "--topic", lonely, "--partition", 0)
        assert bad.returncode == 1 and "PREFERRED_LEADER_NOT_AVAILABLE" in bad.stdout, bad.stdout
        out = ok(cluster, "leader-election", "--election-type", "unclean", "--topic", lonely, "--partition", 0)
        assert f"Successfully completed leader election (UNCLEAN) for partitions {lonely}-0" in out, out
        assert "not in sync" in out, out
        wait_for("broker 4 leading", lambda: partitions(cluster, lonely)[0][0] == 4, 10)
        assert partitions(cluster, lonely)[0][2] == [4]
        out = ok(cluster, "leader-election", "--election-type", "unclean", "--topic", lonely, "--partition", 0)
        assert "Valid replica already elected" in out, out
    finally:
        cluster.stop()


def test_leadership_returns_by_itself_after_a_restart(tmp_path):
    cluster = Cluster(tmp_path, brokers=4, extra={"leader.imbalance.check.interval.seconds": 2})
    try:
        topic = "auto-" + uuid.uuid4().hex[:6]
        create(cluster, topic, [[1, 2], [1, 3], [1, 4]])
        restart_broker(cluster, 1)
        wait_for("automatic preferred leader election", lambda: all(l == 1 for l, _, _ in partitions(cluster, topic).values()), 60)
    finally:
        cluster.stop()
