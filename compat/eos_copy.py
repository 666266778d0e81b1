"""An exactly-once copy loop, as a Kafka user writes one with confluent-kafka: consume from the
input topic (read_committed), produce each record to the same partition of the output topic in
a transaction, send the consumer's offsets to the transaction, commit. Each transaction stays
open 200 ms after its records are written (it prints "transaction N open" then), so that
faults land mid-transaction. On any error it aborts if it
can and exits non-zero; the test restarts it (a new process with the same transactional.id
fences the old session and resumes from the committed offsets).

    eos_copy.py BOOTSTRAP INPUT OUTPUT TRANSACTIONAL_ID GROUP"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer


def main():
    bootstrap, tin, tout, txid, group = sys.argv[1:6]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([tin])
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txid})
    p.init_transactions(60)
    n = 0
    while True:
        msgs = [m for m in c.consume(200, 0.2) if m.error() is None]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce(tout, m.value(), partition=m.partition())
        # The records are written; the transaction stays open a moment (a test kills here).
        p.flush(60)
        n += 1
        print(f"transaction {n} open", flush=True)
        time.sleep(0.2)
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 60)
        try:
            p.commit_transaction(60)
        except KafkaException as e:
            print(f"commit failed: {e}", file=sys.stderr, flush=True)
            if e.args[0].txn_requires_abort():
                p.abort_transaction(60)
            sys.exit(3)


if __name__ == "__main__":
    main()
