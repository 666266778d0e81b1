"""Debian's kcat (librdkafka 2.0.2): metadata, produce/consume with every codec, keys, restart."""

import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")


def kcat(*args, stdin=None):
    return subprocess.run(["kcat", *args], input=stdin, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_round_trip_with_each_codec(node, codec):
    topic = f"kcat-{codec}"
    lines = [f"{codec}-{i}" for i in range(50)]
    r = kcat("-b", node.bootstrap, "-P", "-t", topic, "-z", codec, stdin="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    r = kcat("-b", node.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%o %s\\n")
    assert r.returncode == 0, r.stderr
    got = [l.split(" ", 1) for l in r.stdout.splitlines()]
    assert [int(o) for o, _ in got] == list(range(50))
    assert [v for _, v in got] == lines


def test_metadata_lists_broker_and_topics(node):
    kcat("-b", node.bootstrap, "-P", "-t", "kcat-meta", stdin="x\n")
    r = kcat("-b", node.bootstrap, "-L")
    assert r.returncode == 0, r.stderr
    assert f"broker 1 at {node.bootstrap}" in r.stdout
    assert 'topic "kcat-meta" with 1 partitions' in r.stdout


def test_keys_survive_and_kill_9_restart_keeps_data(fresh_node):
    r = kcat("-b", fresh_node.bootstrap, "-P", "-t", "durable", "-K:", stdin="".join(f"k{i}:v{i}\n" for i in range(100)))
    assert r.returncode == 0, r.stderr
    fresh_node.kill9()
    fresh_node.start()
    r = kcat("-b", fresh_node.bootstrap, "-C", "-t", "durable", "-o", "beginning", "-e", "-f", "%k=%s\\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"k{i}=v{i}" for i in range(100)]


def test_sigterm_closes_logs_cleanly(fresh_node):
    r = kcat("-b", fresh_node.bootstrap, "-P", "-t", "graceful", stdin="a\nb\nc\n")
    assert r.returncode == 0, r.stderr
    fresh_node.stop()
    assert fresh_node.proc.returncode == 0, "clean exit on SIGTERM"
    partition = fresh_node.workdir / "data" / "graceful-0"
    assert (partition / ".clean-shutdown").exists(), "logs closed cleanly"
    assert "broker stopped" in (fresh_node.workdir / "node.log").read_text()


def test_balanced_consumer_group_commits(node):
    """kcat -G: librdkafka 2.0.2's group consumer (JoinGroup/SyncGroup, offsets committed on exit)."""
    topic = "kcat-group"
    r = kcat("-b", node.bootstrap, "-P", "-t", topic, stdin="".join(f"g{i}\n" for i in range(20)))
    assert r.returncode == 0, r.stderr
    # -o would override the committed offsets on assignment: start from the earliest only
    # where the group has none.
    group = ["-b", node.bootstrap, "-G", "kcat-grp", "-e", "-f", "%s\\n", "-X", "auto.offset.reset=earliest"]
    r = kcat(*group, topic)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted(f"g{i}" for i in range(20))
    # The group resumes after what it committed: only new records come back.
    kcat("-b", node.bootstrap, "-P", "-t", topic, stdin="late\n")
    r = kcat(*group, topic)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["late"]
