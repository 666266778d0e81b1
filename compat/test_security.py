"""TLS and SASL with real clients (librdkafka through confluent-kafka, kafka-python), at their
default settings but for the security ones: SSL, mTLS, SASL_PLAINTEXT and SASL_SSL with PLAIN
and SCRAM; bad credentials, untrusted and expired certificates and a PLAINTEXT client on a TLS
port are refused, and the broker keeps serving everyone else."""

import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition

from certs import Certs
from conftest import BIN_DIR, Node

PLAIN_JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    work = tmp_path_factory.mktemp("secure")
    certs = Certs(work / "certs")
    listeners = {"SSL": "SSL", "MTLS": "SSL", "SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL"}
    overrides = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certs.broker),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certs.ca),
        "listener.name.mtls.ssl.client.auth": "required",
        "listener.name.mtls.ssl.principal.mapping.rules": "RULE:^CN=([^,]+),OU=.*$/$1/L,DEFAULT",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        # KIP-368: sessions on this listener last 3 s; clients re-authenticate in place.
        "listener.name.sasl_plaintext.connections.max.reauth.ms": "3000",
        # The inline PEM form for one listener: certificate chain and key as values.
        "listener.name.sasl_ssl.ssl.keystore.certificate.chain": certs.broker_cert.read_text().replace("\n", "\\n"),
        "listener.name.sasl_ssl.ssl.keystore.key": certs.broker_key.read_text().replace("\n", "\\n"),
    }
    node = Node(work, overrides, extra_listeners=listeners, format_args=["--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret]"])
    node.certs = certs
    yield node
    node.stop()


def rd_config(node, listener, **extra):
    c = {"bootstrap.servers": node.bootstrap_of(listener)}
    if listener in ("SSL", "MTLS", "SASL_SSL"):
        c["ssl.ca.location"] = str(node.certs.ca)
    c["security.protocol"] = {"MTLS": "SSL"}.get(listener, listener)
    c.update(extra)
    return c


def rd_round_trip(config, topic, n=200):
    p = Producer(config)
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode(), partition=0)
    assert p.flush(30) == 0
    c = Consumer({**config, "group.id": f"g-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got.append(m.value().decode())
    c.close()
    assert got == [f"v{i}" for i in range(n)]


def kp_round_trip(config, topic, n=100):
    p = KafkaProducer(**config)
    for i in range(n):
        p.send(topic, value=f"k{i}".encode(), partition=0)
    p.flush(timeout=30)
    p.close()
    c = KafkaConsumer(**config, consumer_timeout_ms=5000, enable_auto_commit=False)
    tp = KTopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = [m.value.decode() for m in c]
    c.close()
    assert got == [f"k{i}" for i in range(n)]


def rd_refused(config):
    """librdkafka cannot get metadata with this config; returns the errors it reported."""
    errors = []
    admin = AdminClient({**config, "error_cb": lambda e: errors.append(e)})
    with pytest.raises(Exception):
        admin.list_topics(timeout=6)
    admin.poll(1)  # error callbacks are served by poll
    return errors


def plaintext_still_served(node):
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    assert admin.list_topics(timeout=10).brokers


def test_ssl_with_both_clients(secure):
    rd_round_trip(rd_config(secure, "SSL"), "tls-rd")
    kp_round_trip({"bootstrap_servers": secure.bootstrap_of("SSL"), "security_protocol": "SSL", "ssl_cafile": str(secure.certs.ca)}, "tls-kp")


def test_mtls_needs_a_trusted_valid_certificate(secure):
    cert, key = secure.certs.clients["alice"]
    rd_round_trip(rd_config(secure, "MTLS", **{"ssl.certificate.location": str(cert), "ssl.key.location": str(key)}), "mtls-rd")
    kp_round_trip(
        {"bootstrap_servers": secure.bootstrap_of("MTLS"), "security_protocol": "SSL", "ssl_cafile": str(secure.certs.ca), "ssl_certfile": str(cert), "ssl_keyfile": str(key)},
        "mtls-kp",
    )
    # No certificate, a certificate of an untrusted CA, an expired one: refused.
    rd_refused(rd_config(secure, "MTLS"))
    for label in ("rogue", "expired"):
        c, k = secure.certs.clients[label]
        rd_refused(rd_config(secure, "MTLS", **{"ssl.certificate.location": str(c), "ssl.key.location": str(k)}))
        with pytest.raises(Exception):
            KafkaAdminClient(bootstrap_servers=secure.bootstrap_of("MTLS"), security_protocol="SSL", ssl_cafile=str(secure.certs.ca), ssl_certfile=str(c), ssl_keyfile=str(k), request_timeout_ms=5000, api_version_auto_timeout_ms=5000)
    plaintext_still_served(secure)


def test_client_that_does_not_trust_the_broker_refuses(secure):
    # The rogue client's own certificate is not a CA the broker chains to.
    rogue_cert, _ = secure.certs.clients["rogue"]
    rd_refused(rd_config(secure, "SSL", **{"ssl.ca.location": str(rogue_cert)}))


def test_plaintext_client_on_a_tls_port_is_refused_and_the_broker_serves_on(secure):
    rd_refused({"bootstrap.servers": secure.bootstrap_of("SSL")})
    with pytest.raises(Exception):
        KafkaAdminClient(bootstrap_servers=secure.bootstrap_of("SSL"), request_timeout_ms=5000, api_version_auto_timeout_ms=5000)
    plaintext_still_served(secure)
    rd_round_trip(rd_config(secure, "SSL"), "tls-after-garbage", n=10)


def test_sasl_plain_over_plaintext_and_tls(secure):
    for listener in ("SASL_PLAINTEXT", "SASL_SSL"):
        cfg = rd_config(secure, listener, **{"sasl.mechanisms": "PLAIN", "sasl.username": "alice", "sasl.password": "alice-secret"})
        rd_round_trip(cfg, f"plain-rd-{listener.lower()}")
        kp = {"bootstrap_servers": secure.bootstrap_of(listener), "security_protocol": listener, "sasl_mechanism": "PLAIN", "sasl_plain_username": "alice", "sasl_plain_password": "alice-secret"}
        if listener == "SASL_SSL":
            kp["ssl_cafile"] = str(secure.certs.ca)
        kp_round_trip(kp, f"plain-kp-{listener.lower()}")


def test_wrong_password_is_refused_with_sasl_authentication_failed(secure):
    cfg = rd_config(secure, "SASL_PLAINTEXT", **{"sasl.mechanisms": "PLAIN", "sasl.username": "alice", "sasl.password": "wrong"})
    errors = rd_refused(cfg)
    assert any("Authentication failed" in str(e) for e in errors), errors
    from kafka.errors import KafkaError

    with pytest.raises(KafkaError) as e:
        KafkaAdminClient(bootstrap_servers=secure.bootstrap_of("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="wrong", request_timeout_ms=5000)
    plaintext_still_served(secure)


def test_scram_credentials_from_format_and_from_the_admin_api(secure):
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    admin_cfg = rd_config(secure, "SASL_SSL", **{"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "admin", "sasl.password": "admin-secret"})
    admin = AdminClient(admin_cfg)
    # The admin's credential came from `odradek-storage format --add-scram`.
    described = admin.describe_user_scram_credentials(["admin"])
    info = described["admin"].result(timeout=20)
    assert [(i.mechanism, i.iterations) for i in info.scram_credential_infos] == [(ScramMechanism.SCRAM_SHA_512, 4096)]
    # KRaft Kafka alters a user at most once per request: one call per mechanism.
    for upsertion in [
        UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"alice-scram"),
        UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"alice-scram-256"),
    ]:
        for f in admin.alter_user_scram_credentials([upsertion]).values():
            f.result(timeout=20)
    rd_round_trip(rd_config(secure, "SASL_SSL", **{"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": "alice-scram"}), "scram-rd-512")
    rd_round_trip(rd_config(secure, "SASL_PLAINTEXT", **{"sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "alice", "sasl.password": "alice-scram-256"}), "scram-rd-256")
    kp_round_trip(
        {"bootstrap_servers": secure.bootstrap_of("SASL_SSL"), "security_protocol": "SASL_SSL", "ssl_cafile": str(secure.certs.ca), "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "alice", "sasl_plain_password": "alice-scram"},
        "scram-kp-512",
    )
    errors = rd_refused(rd_config(secure, "SASL_SSL", **{"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": "nope"}))
    assert any("Authentication failed" in str(e) for e in errors), errors
    # A mechanism the user has no credential for, and a user that does not exist.
    rd_refused(rd_config(secure, "SASL_PLAINTEXT", **{"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "nobody", "sasl.password": "x"}))
    plaintext_still_served(secure)


def test_sessions_expire_and_librdkafka_reauthenticates_in_place(secure):
    """KIP-368: with connections.max.reauth.ms the broker tells the client its session
    lifetime; librdkafka re-authenticates on the same connection before it ends, so a
    producer keeps going and the broker never has to close an expired session."""
    log = secure.workdir / "node.log"
    before = log.stat().st_size
    cfg = rd_config(secure, "SASL_PLAINTEXT", **{"sasl.mechanisms": "PLAIN", "sasl.username": "alice", "sasl.password": "alice-secret"})
    p = Producer(cfg)
    errors = []
    for i in range(40):
        p.produce("reauth-topic", value=b"%d" % i, on_delivery=lambda e, m: errors.append(e) if e else None)
        p.poll(0.2)
    assert p.flush(20) == 0
    assert errors == []
    with open(log, "rb") as f:
        f.seek(before)
        during = f.read().decode(errors="replace")
    assert "expired without re-authentication" not in during, during[-2000:]


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path):
    """Kafka's dynamic listener config path: altering the listener's key store location (here
    to a certificate from another CA) makes new handshakes use it; the broker never restarts."""
    old, new = Certs(tmp_path / "old"), Certs(tmp_path / "new")
    (tmp_path / "node").mkdir()
    node = Node(tmp_path / "node", {"ssl.keystore.location": str(old.broker), "ssl.truststore.location": str(old.ca)}, extra_listeners={"SSL": "SSL"})
    try:
        trusts_old = {"bootstrap.servers": node.bootstrap_of("SSL"), "security.protocol": "SSL", "ssl.ca.location": str(old.ca)}
        trusts_new = {**trusts_old, "ssl.ca.location": str(new.ca)}
        rd_round_trip(trusts_old, "before-reload", n=10)
        rd_refused(trusts_new)
        out = subprocess.run(
            [BIN_DIR / "odradek", "--bootstrap-server", node.bootstrap, "configs", "alter", "--entity", "broker", "--name", "1",
             "--add-config", f"listener.name.ssl.ssl.keystore.location={new.broker}"],
            capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, out.stderr
        deadline = time.time() + 10
        while "TLS key store and trust store reloaded" not in (tmp_path / "node" / "node.log").read_text():
            assert time.time() < deadline, "no reload"
            time.sleep(0.1)
        rd_round_trip(trusts_new, "after-reload", n=10)
        rd_refused(trusts_old)
        assert node.proc.poll() is None
    finally:
        node.stop()
