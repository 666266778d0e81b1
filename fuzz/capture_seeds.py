"""Seeds the fuzz corpus with what real clients send, so the fuzzers start deep inside the
decoders instead of at the first byte.

Starts a fresh `--dev` node whose advertised listener is a recording proxy, runs kcat
(librdkafka 2.0), confluent-kafka (librdkafka 2.x), kafka-python and the `odradek` CLI (the Rust
client) through it (produce with each codec, consume in a group, admin calls, idempotent and
transactional producers), and writes:

- every request frame (after its size prefix) to `fuzz/seeds/request/`, one file per distinct
  (API key, version, client) so the corpus stays small;
- the segment files the node wrote, as `record_batch` seeds (a flags byte, then the batches)
  and `log_recovery` seeds (flags, then file id 0 and a u16 length before the bytes).

Usage: python fuzz/capture_seeds.py <directory with odradek-broker and odradek>
It needs kcat and a Python with confluent-kafka and kafka-python (compat/requirements.txt).
"""

import hashlib
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "seeds"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingProxy:
    """Forwards connections to the broker and keeps one frame per (api, version, client)."""

    def __init__(self, listen_port, broker_port):
        self.broker_port = broker_port
        self.server = socket.create_server(("127.0.0.1", listen_port))
        self.seen = {}
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.server.accept()
            upstream = socket.create_connection(("127.0.0.1", self.broker_port))
            threading.Thread(target=self.requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def requests(self, client, upstream):
        buf = b""
        try:
            while data := client.recv(65536):
                upstream.sendall(data)
                buf += data
                while len(buf) >= 4:
                    size = int.from_bytes(buf[:4], "big")
                    if len(buf) < 4 + size:
                        break
                    self.keep(buf[4 : 4 + size])
                    buf = buf[4 + size :]
        except OSError:
            pass
        finally:
            upstream.close()

    def keep(self, frame):
        if len(frame) < 10:
            return
        api, version = int.from_bytes(frame[0:2], "big"), int.from_bytes(frame[2:4], "big")
        client_len = int.from_bytes(frame[8:10], "big", signed=True)
        client = frame[10 : 10 + max(client_len, 0)].decode(errors="replace").split("-")[0]
        with self.lock:
            self.seen.setdefault((api, version, client), frame)


def main():
    bin_dir = pathlib.Path(sys.argv[1])
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="odradek-seeds-"))
    port, proxy_port, cport = free_port(), free_port(), free_port()
    proxy = RecordingProxy(proxy_port, port)
    node = subprocess.Popen(
        [
            str(bin_dir / "odradek-broker"), "--dev", "--data-dir", str(scratch / "data"),
            "--override", f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}",
            "--override", f"controller.quorum.voters=1@127.0.0.1:{cport}",
            "--override", "metrics.listener=", "--override", "console.listener=",
        ],
        stderr=open(scratch / "node.log", "w"),
    )
    bootstrap = f"127.0.0.1:{proxy_port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.2)
        workloads(bin_dir, bootstrap)
    finally:
        node.terminate()
        node.wait()
    write_requests(proxy.seen)
    write_segments(scratch / "data")


def workloads(bin_dir, bootstrap):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    import kafka
    import kafka.errors

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = ["seeds", "seeds-compact"]
    futures = admin.create_topics([
        NewTopic("seeds", num_partitions=2, replication_factor=1),
        NewTopic("seeds-compact", num_partitions=1, replication_factor=1,
                 config={"cleanup.policy": "compact"}),
    ])
    for f in futures.values():
        f.result()
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                      "linger.ms": 5})
        for i in range(20):
            p.produce(topics[i % 2], key=f"k{i % 5}", value=f"{codec} value {i}" * (i + 1),
                      headers={"h": b"1"})
        p.flush(10)
    t = Producer({"bootstrap.servers": bootstrap, "transactional.id": "seed-txn"})
    t.init_transactions(10)
    t.begin_transaction()
    t.produce("seeds", key="t", value="in a transaction")
    t.commit_transaction(10)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "seed-group",
                  "auto.offset.reset": "earliest"})
    c.subscribe(["seeds"])
    got, deadline = 0, time.time() + 20
    while got < 20 and time.time() < deadline:
        if (m := c.poll(0.5)) is not None and not m.error():
            got += 1
    c.commit(asynchronous=False)
    c.close()
    for f in admin.describe_configs([ConfigResource("topic", "seeds")]).values():
        f.result()

    kp = kafka.KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(10):
        kp.send("seeds", key=b"py", value=b"kafka-python %d" % i)
    kp.flush()
    kc = kafka.KafkaConsumer("seeds", bootstrap_servers=bootstrap, group_id="seed-py",
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    try:
        for _ in kc:
            pass
    except kafka.errors.UnsupportedCodecError:
        pass  # snappy batches without python-snappy: its fetches were sent all the same
    kc.close()
    ka = kafka.KafkaAdminClient(bootstrap_servers=bootstrap)
    for call in (ka.list_groups, ka.describe_cluster, ka.list_topics, ka.list_transactions,
                 lambda: ka.describe_groups(["seed-group"]),
                 lambda: ka.list_group_offsets("seed-group"),
                 lambda: ka.describe_topics(["seeds"]),
                 lambda: ka.describe_log_dirs(),
                 lambda: ka.describe_metadata_quorum()):
        try:
            call()
        except Exception as e:  # an API the broker refuses still left its request behind
            print(f"kafka-python admin: {e!r}")
    ka.close()

    subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", "seeds", "-z", "lz4"],
                   input=b"kcat one\nkcat two\n", check=True, timeout=30)
    subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", "seeds", "-o", "beginning", "-e",
                    "-q"], check=True, timeout=30, stdout=subprocess.DEVNULL)
    subprocess.run(["kcat", "-b", bootstrap, "-L"], check=True, timeout=30,
                   stdout=subprocess.DEVNULL)

    cli = str(bin_dir / "odradek")
    for args in (["topics", "list"], ["topics", "describe", "seeds"],
                 ["groups", "list"], ["groups", "describe", "seed-group"],
                 ["metadata-quorum", "describe"], ["cluster", "describe"]):
        subprocess.run([cli, "--bootstrap-server", bootstrap, *args], timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write(directory, data):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def write_requests(seen):
    for frame in seen.values():
        write(CORPUS / "request", frame)
    print(f"{len(seen)} request frames")


def write_segments(data_dir):
    n = 0
    for seg in sorted(data_dir.rglob("*.log")):
        data = seg.read_bytes()[:65535]
        if not data:
            continue
        write(CORPUS / "record_batch", b"\x00" + data)
        write(CORPUS / "log_recovery", b"\x00\x00" + len(data).to_bytes(2, "big") + data)
        n += 1
    print(f"{n} segment files")


if __name__ == "__main__":
    main()
