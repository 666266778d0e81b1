"""Overload: 10,000 connections that each announce a request and stall, and many producers sending
large batches at once, must stay within the broker's memory bound (queued.max.request.bytes)
while a normal client is served throughout. The broker's peak RSS is printed."""

import resource
import socket
import struct
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Node

MiB = 1024 * 1024
POOL = 32 * MiB
STALLED = 10_000


def rss_kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_stalled_connections_and_large_batches_stay_within_the_memory_bound(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = STALLED + 2_000
    if soft < want:
        # The broker inherits this limit; each side holds one descriptor per connection.
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= want, "too few file descriptors allowed"
    node = Node(tmp_path, {
        "queued.max.request.bytes": str(POOL),
        # The pool must hold a largest request beside every connection's first KiB.
        "max.connections": "12000",
        "socket.request.max.bytes": str(16 * MiB),
        "log.segment.bytes": str(64 * MiB),
    })
    try:
        a = AdminClient({"bootstrap.servers": node.bootstrap})
        a.create_topics([NewTopic("overload", num_partitions=4, replication_factor=1),
                         NewTopic("normal", num_partitions=1, replication_factor=1)])["normal"].result(15)
        pid = node.proc.pid
        baseline = rss_kib(pid, "VmRSS")

        # A normal client, timing each acknowledged produce for the whole test.
        stop = threading.Event()
        latencies, failures = [], []

        def normal_client():
            p = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 0})
            while not stop.is_set():
                started = time.time()
                p.produce("normal", value=b"ping", on_delivery=lambda err, msg: failures.append(err) if err else None)
                p.flush(60)
                latencies.append(time.time() - started)
                time.sleep(0.05)

        client = threading.Thread(target=normal_client)
        client.start()

        # 10,000 peers announce a 1 MiB request, send 100 bytes of it and stall.
        stalled = []
        for _ in range(STALLED):
            s = socket.create_connection(("127.0.0.1", node.port))
            s.sendall(struct.pack(">i", MiB) + b"\0" * 100)
            stalled.append(s)

        # Eight producers with large batches (~1 MiB requests, 5 in flight each).
        def heavy(i):
            p = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 50,
                          "batch.size": 1_000_000, "enable.idempotence": False})
            value = bytes([65 + i]) * 100_000
            for _ in range(300):
                while True:
                    try:
                        p.produce("overload", value=value)
                        break
                    except BufferError:
                        p.poll(0.05)
            assert p.flush(120) == 0

        producers = [threading.Thread(target=heavy, args=(i,)) for i in range(8)]
        for t in producers:
            t.start()
        for t in producers:
            t.join()
        assert node.proc.poll() is None, "the broker died"
        stop.set()
        client.join()
        peak = rss_kib(pid, "VmHWM")
        for s in stalled:
            s.close()
        print(f"\nbroker RSS: baseline {baseline // 1024} MiB, peak {peak // 1024} MiB with {STALLED} stalled "
              f"connections and 8 producers of 1 MB batches (queued.max.request.bytes={POOL // MiB} MiB); "
              f"normal client: {len(latencies)} produces, max {max(latencies):.2f} s")
        assert failures == [], failures
        assert len(latencies) > 10, "the normal client was served throughout"
        # Bounded: the request pool plus what 10,000 connections cost at rest (their tasks,
        # channels and small buffers), with room for the heavy producers' responses.
        # (Measured: 130 MiB above the baseline on a debug build.)
        assert peak - baseline < (POOL + 200 * MiB) // 1024, f"peak RSS {peak // 1024} MiB"
    finally:
        node.stop()
