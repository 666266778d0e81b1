"""A three-node cluster with every listener on TLS: clients, inter-broker replication and the
controller quorum (gRPC over TLS, with client certificates required). librdkafka produces with
acks=all and reads everything back; replication keeps every ISR full."""

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from certs import Certs
from conftest import Cluster


def test_every_listener_on_tls(tmp_path):
    certs = Certs(tmp_path / "certs")
    extra = {
        "listener.security.protocol.map": "SSL:SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "SSL",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certs.broker),
        "ssl.truststore.location": str(certs.ca),
        # Controllers check their callers' (brokers' and other controllers') certificates.
        "listener.name.controller.ssl.client.auth": "required",
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "offsets.topic.replication.factor": "3",
    }
    c = Cluster(tmp_path, brokers=3, controllers=3, extra=extra, broker_listener="SSL")
    try:
        config = {"bootstrap.servers": c.bootstrap, "security.protocol": "SSL", "ssl.ca.location": str(certs.ca)}
        admin = AdminClient(config)
        admin.create_topics([NewTopic("tls-rf3", 3, 3)])["tls-rf3"].result(timeout=60)
        p = Producer({**config, "acks": "all"})
        n = 3000
        for i in range(n):
            p.produce("tls-rf3", key=str(i).encode(), value=f"v{i}".encode(), partition=i % 3)
        assert p.flush(60) == 0
        # Followers replicate over TLS: every ISR holds all three replicas.
        deadline = time.time() + 30
        while True:
            md = admin.list_topics("tls-rf3", timeout=10).topics["tls-rf3"]
            isrs = [sorted(pm.isrs) for pm in md.partitions.values()]
            if all(len(i) == 3 for i in isrs) or time.time() > deadline:
                break
            time.sleep(0.5)
        assert all(len(i) == 3 for i in isrs), isrs
        consumer = Consumer({**config, "group.id": "tls-group", "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.assign([TopicPartition("tls-rf3", p, 0) for p in range(3)])
        got = set()
        deadline = time.time() + 60
        while len(got) < n and time.time() < deadline:
            m = consumer.poll(1.0)
            if m is not None and m.error() is None:
                got.add(m.value().decode())
        consumer.close()
        assert got == {f"v{i}" for i in range(n)}
        # A broker killed and restarted rejoins over TLS (the quorum and fetchers reconnect).
        c.kill9("broker-2")
        c.restart("broker-2")
        c.wait_ready("broker-2", timeout=60)
        deadline = time.time() + 60
        while time.time() < deadline:
            md = admin.list_topics("tls-rf3", timeout=10).topics["tls-rf3"]
            if all(len(pm.isrs) == 3 for pm in md.partitions.values()):
                break
            time.sleep(0.5)
        assert all(len(pm.isrs) == 3 for pm in md.partitions.values())
    finally:
        c.stop()
