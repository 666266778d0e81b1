"""Produce/consume throughput against a running broker with a librdkafka client (confluent-kafka),
so the figures compare with anyone's. Prints one Markdown table row per workload.

usage: bench_broker.py BOOTSTRAP RECORD_SIZE RECORDS [PARTITIONS [LABEL BROKER_PIDS]]

With LABEL and BROKER_PID the rows have scripts/bench.sh's columns, including the broker's CPU
time per GB moved. BENCH_ACKS (default 1) and BENCH_RF (default 1) set the producer's acks and the
topic's replication factor; BENCH_PRODUCE_ONLY=1 skips the consume. The consumer runs at
librdkafka's default settings (read by assignment from offset 0, `consume(10000)` batches);
BENCH_CONSUMER="key=value,..." adds settings, named in its row."""

import os

import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
partitions = int(sys.argv[4]) if len(sys.argv) > 4 else 1
label, pid = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 6 else (None, None)
acks = os.environ.get("BENCH_ACKS", "1")
rf = int(os.environ.get("BENCH_RF", "1"))
produce_only = os.environ.get("BENCH_PRODUCE_ONLY") == "1"


def cpu_seconds():
    """User + system CPU of the broker processes (BROKER_PID may list several, comma-separated)."""
    if pid is None:
        return 0.0
    total = 0
    for p in pid.split(","):
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


topic = f"bench-{size}-{uuid.uuid4().hex[:6]}"
a = AdminClient({"bootstrap.servers": bootstrap})
a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf)])[topic].result(30)

p = Producer({
    "bootstrap.servers": bootstrap,
    "acks": acks,
    "linger.ms": 5,
    "batch.size": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "queue.buffering.max.messages": 1_000_000,
    "compression.type": "none",
    "enable.idempotence": False,
})
value = b"x" * size
cpu0 = cpu_seconds()
start = time.time()
for i in range(count):
    while True:
        try:
            p.produce(topic, value=value, partition=i % partitions)
            break
        except BufferError:
            p.poll(0.01)
    if i % 10_000 == 0:
        p.poll(0)
p.flush(120)
produce_s = time.time() - start
produce_cpu = cpu_seconds() - cpu0

mb = size * count / 1e6
unit = "1 KiB" if size == 1024 else f"{size} B"
if produce_only:
    print(f"| {label} | produce, {partitions} partition(s), RF {rf}, acks={acks}, {unit} | {count / produce_s:,.0f} | {mb / produce_s:,.1f} | | {produce_cpu / (mb / 1000):.2f} |")
    sys.exit(0)

extra = dict(kv.split("=", 1) for kv in os.environ.get("BENCH_CONSUMER", "").split(",") if kv)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False, **extra})
settings = f" ({', '.join(f'{k}={v}' for k, v in extra.items())})" if extra else " (defaults)"
c.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
got = 0
cpu0 = cpu_seconds()
start = time.time()
while got < count:
    msgs = c.consume(10_000, 2.0)
    if not msgs and time.time() - start > 120:
        break
    got += len(msgs)
consume_s = time.time() - start
consume_cpu = cpu_seconds() - cpu0
c.close()
if label is None:
    print(f"| produce, {partitions} partition(s), acks={acks}, {size} B | {count / produce_s:,.0f} records/s | {mb / produce_s:,.1f} MB/s |")
    print(f"| consume{settings}, {partitions} partition(s), {size} B | {got / consume_s:,.0f} records/s | {size * got / 1e6 / consume_s:,.1f} MB/s |")
else:
    print(f"| {label} | produce, {partitions} partition(s), acks={acks}, {unit} | {count / produce_s:,.0f} | {mb / produce_s:,.1f} | | {produce_cpu / (mb / 1000):.2f} |")
    print(f"| {label} | consume{settings}, {partitions} partition(s), {unit} | {got / consume_s:,.0f} | {size * got / 1e6 / consume_s:,.1f} | | {consume_cpu / (size * got / 1e9):.2f} |")
