"""ACLs with the StandardAuthorizer's semantics, driven by librdkafka (confluent-kafka): with no
ACLs a non-super user can do nothing; each ACL grants exactly its operation (produce, consume
with a group, admin, idempotent and transactional writes); DENY beats ALLOW; prefixed patterns
match; kafka-python sees the same refusals."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from conftest import Node

JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";'


@pytest.fixture(scope="module")
def authz(tmp_path_factory):
    work = tmp_path_factory.mktemp("authz")
    node = Node(
        work,
        {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        },
        extra_listeners={"SASL_PLAINTEXT": "SASL_PLAINTEXT"},
    )
    node.admin = AdminClient(cfg(node, "admin"))
    for f in node.admin.create_topics([NewTopic(t, 1, 1) for t in ("orders", "other", "pay-in", "pay-secret")]).values():
        f.result(timeout=30)
    yield node
    node.stop()


def cfg(node, user, **extra):
    return {
        "bootstrap.servers": node.bootstrap_of("SASL_PLAINTEXT"),
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": user,
        "sasl.password": f"{user}-secret",
        **extra,
    }


def grant(node, *bindings):
    for f in node.admin.create_acls(list(bindings)).values():
        f.result(timeout=20)


def acl(rt, name, op, principal="User:alice", pattern=ResourcePatternType.LITERAL, perm=AclPermissionType.ALLOW):
    return AclBinding(rt, name, pattern, principal, "*", op, perm)


def produce_error(config, topic, n=3):
    """None if every record was acknowledged, else the first delivery error's code."""
    errors = []
    p = Producer({**config, "message.timeout.ms": 8000})
    for i in range(n):
        p.produce(topic, value=b"x%d" % i, on_delivery=lambda e, m: errors.append(e) if e else None)
    p.flush(15)
    if errors:
        return errors[0].code()
    return None


def consume_error(config, topic, group, want=1, timeout=15):
    """None if `want` records came, else the first error code the consumer reported."""
    c = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = 0
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() in (KafkaError._PARTITION_EOF,):
                    continue
                return m.error().code()
            got += 1
            if got >= want:
                c.commit(asynchronous=False)
                return None
        return "timeout"
    finally:
        c.close()


def test_no_acl_means_nothing_for_a_non_super_user(authz):
    alice = cfg(authz, "alice")
    assert produce_error(alice, "orders") == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Metadata hides what alice may not describe.
    a = AdminClient(alice)
    md = a.list_topics(timeout=10)
    assert "orders" not in md.topics or md.topics["orders"].error is not None
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic("alice-new", 1, 1)])["alice-new"].result(timeout=20)
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # The super user may.
    assert produce_error(cfg(authz, "admin"), "orders") is None


def test_write_grants_produce_only_on_its_topic(authz):
    grant(authz, acl(ResourceType.TOPIC, "orders", AclOperation.WRITE))
    alice = cfg(authz, "alice")
    assert produce_error(alice, "orders") is None
    assert produce_error(alice, "other") == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # WRITE does not grant READ (the group alone is not enough).
    assert consume_error(alice, "orders", "g-alice") == KafkaError.GROUP_AUTHORIZATION_FAILED
    grant(authz, acl(ResourceType.GROUP, "g-alice", AclOperation.READ))
    assert consume_error(alice, "orders", "g-alice") == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_consume_with_a_group_needs_read_on_topic_and_group(authz):
    bob = cfg(authz, "bob")
    assert produce_error(cfg(authz, "admin"), "other") is None
    grant(authz, acl(ResourceType.TOPIC, "other", AclOperation.READ, "User:bob"))
    # READ on the topic, none on the group: the group is refused.
    assert consume_error(bob, "other", "bob-group") == KafkaError.GROUP_AUTHORIZATION_FAILED
    grant(authz, acl(ResourceType.GROUP, "bob-", AclOperation.READ, "User:bob", pattern=ResourcePatternType.PREFIXED))
    assert consume_error(bob, "other", "bob-group") is None
    assert consume_error(bob, "other", "not-bobs") == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_deny_beats_allow_and_prefixes_match(authz):
    admin = cfg(authz, "admin")
    for t in ("pay-in", "pay-secret"):
        assert produce_error(admin, t) is None
    grant(
        authz,
        acl(ResourceType.TOPIC, "pay-", AclOperation.READ, pattern=ResourcePatternType.PREFIXED),
        acl(ResourceType.GROUP, "*", AclOperation.READ),
        acl(ResourceType.TOPIC, "pay-secret", AclOperation.READ, perm=AclPermissionType.DENY),
    )
    alice = cfg(authz, "alice")
    assert consume_error(alice, "pay-in", f"g-{uuid.uuid4().hex[:6]}") is None
    assert consume_error(alice, "pay-secret", f"g-{uuid.uuid4().hex[:6]}") == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_admin_family_create_and_delete_by_prefix(authz):
    grant(
        authz,
        acl(ResourceType.TOPIC, "alice-", AclOperation.CREATE, pattern=ResourcePatternType.PREFIXED),
        acl(ResourceType.TOPIC, "alice-", AclOperation.DELETE, pattern=ResourcePatternType.PREFIXED),
    )
    a = AdminClient(cfg(authz, "alice"))
    a.create_topics([NewTopic("alice-t1", 1, 1)])["alice-t1"].result(timeout=20)
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic("bob-t1", 1, 1)])["bob-t1"].result(timeout=20)
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    with pytest.raises(KafkaException) as e:
        a.delete_topics(["orders"])["orders"].result(timeout=20)
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    a.delete_topics(["alice-t1"])["alice-t1"].result(timeout=20)
    # Describing ACLs needs DESCRIBE on the cluster (kafka-python reports the top-level error;
    # librdkafka 2.16 answers an empty list).
    from kafka import KafkaAdminClient
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePatternFilter
    from kafka.admin import ResourceType as KResourceType
    from kafka.errors import ClusterAuthorizationFailedError

    k = KafkaAdminClient(bootstrap_servers=authz.bootstrap_of("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="alice-secret")
    with pytest.raises(ClusterAuthorizationFailedError):
        k.describe_acls(ACLFilter(principal=None, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY, resource_pattern=ResourcePatternFilter(KResourceType.ANY, None, ACLResourcePatternType.ANY)))
    k.close()
    listed = authz.admin.describe_acls(AclBindingFilter(ResourceType.TOPIC, "alice-", ResourcePatternType.PREFIXED, None, None, AclOperation.ANY, AclPermissionType.ANY)).result(timeout=20)
    assert sorted(b.operation for b in listed) == sorted([AclOperation.CREATE, AclOperation.DELETE])


def test_idempotent_and_transactional_writes(authz):
    # Idempotence: InitProducerId needs IDEMPOTENT_WRITE on the cluster or WRITE on a topic
    # (alice has WRITE on orders; bob has none).
    assert produce_error(cfg(authz, "alice", **{"enable.idempotence": True}), "orders") is None
    with pytest.raises(KafkaException) as e:
        produce_error(cfg(authz, "bob", **{"enable.idempotence": True}), "other")
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # Transactions need WRITE on the transactional id.
    p = Producer(cfg(authz, "alice", **{"transactional.id": "alice-tx"}))
    with pytest.raises(KafkaException) as e:
        p.init_transactions(10)
    assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    grant(authz, acl(ResourceType.TRANSACTIONAL_ID, "alice-tx", AclOperation.WRITE))
    p = Producer(cfg(authz, "alice", **{"transactional.id": "alice-tx"}))
    p.init_transactions(20)
    p.begin_transaction()
    p.produce("orders", value=b"in-txn")
    p.commit_transaction(20)
    # DeleteAcls removes what it matches: alice loses WRITE on orders.
    deleted = authz.admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", None, AclOperation.WRITE, AclPermissionType.ALLOW)])
    for f in deleted.values():
        assert len(f.result(timeout=20)) == 1
    assert produce_error(cfg(authz, "alice"), "orders") == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_kafka_python_sees_the_same_refusals(authz):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KPError

    p = KafkaProducer(bootstrap_servers=authz.bootstrap_of("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_plain_username="bob", sasl_plain_password="bob-secret", enable_idempotence=False, max_block_ms=8000)
    with pytest.raises(KPError):
        p.send("orders", b"x").get(timeout=10)
    p.close()


def test_consumer_protocol_subscription_needs_describe_on_its_topics(authz):
    # KIP-848: a ConsumerGroupHeartbeat naming a topic its principal may not DESCRIBE is refused
    # with TOPIC_AUTHORIZATION_FAILED; with READ (which implies DESCRIBE) the member consumes.
    grant(
        authz,
        acl(ResourceType.TOPIC, "other", AclOperation.READ, "User:bob"),
        acl(ResourceType.GROUP, "bob-", AclOperation.READ, "User:bob", pattern=ResourcePatternType.PREFIXED),
    )
    assert produce_error(cfg(authz, "admin"), "other") is None
    bob = cfg(authz, "bob", **{"group.protocol": "consumer"})
    assert consume_error(bob, "other", f"bob-848-{uuid.uuid4().hex[:6]}") is None
    assert consume_error(bob, "pay-secret", f"bob-848-{uuid.uuid4().hex[:6]}") == KafkaError.TOPIC_AUTHORIZATION_FAILED
