"""confluent-kafka AdminClient: describe and alter configs, create partitions, describe cluster,
delete records."""

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)


@pytest.fixture
def admin(node):
    return AdminClient({"bootstrap.servers": node.bootstrap})


def test_describe_and_alter_topic_configs(admin):
    admin.create_topics([NewTopic("cfg-topic", num_partitions=1, replication_factor=1, config={"retention.ms": "3600000"})])["cfg-topic"].result(10)
    res = ConfigResource(ResourceType.TOPIC, "cfg-topic")
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["retention.ms"].value == "3600000"
    assert configs["segment.bytes"].value == "1073741824", "broker default shown"
    alter = ConfigResource(
        ResourceType.TOPIC,
        "cfg-topic",
        incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
        ],
    )
    admin.incremental_alter_configs([alter])[alter].result(10)
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["retention.ms"].value == "1000"
    assert configs["cleanup.policy"].value == "compact"
    bad = ConfigResource(ResourceType.TOPIC, "cfg-topic", incremental_configs=[ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        admin.incremental_alter_configs([bad])[bad].result(10)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
    missing = ConfigResource(ResourceType.TOPIC, "no-such-topic")
    with pytest.raises(KafkaException) as e:
        admin.describe_configs([missing])[missing].result(10)
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker_configs(admin):
    res = ConfigResource(ResourceType.BROKER, "1")
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["num.partitions"].value == "1"
    # Each entry's real source and type, as Kafka reports them.
    assert configs["node.id"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert configs["node.id"].is_read_only
    assert configs["log.retention.check.interval.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["leader.replication.throttled.rate"].value == "9223372036854775807"
    assert not configs["leader.replication.throttled.rate"].is_read_only


def test_dynamic_broker_configs_are_checked_and_applied(admin, node):
    import subprocess
    from conftest import BIN_DIR

    def cluster_default(op, entry):
        # confluent-kafka cannot name the cluster-wide default (the empty broker name).
        out = subprocess.run([BIN_DIR / "odradek", "--bootstrap-server", node.bootstrap, "configs", "alter",
                              "--entity", "broker", "--name", "", op, entry], capture_output=True, text=True)
        return out
    def alter(name, *entries):
        r = ConfigResource(ResourceType.BROKER, name, incremental_configs=[
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in entries])
        return admin.incremental_alter_configs([r])[r]

    def code_of(future):
        with pytest.raises(KafkaException) as e:
            future.result(10)
        return e.value.args[0].code()

    # Per broker and cluster-wide; both are DYNAMIC sources, and a topic inherits the default.
    alter("1", ("leader.replication.throttled.rate", "5000000")).result(10)
    assert cluster_default("--add-config", "log.retention.ms=7200000").returncode == 0
    res = ConfigResource(ResourceType.BROKER, "1")
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["leader.replication.throttled.rate"].value == "5000000"
    assert configs["leader.replication.throttled.rate"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert configs["log.retention.ms"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    admin.create_topics([NewTopic("inherits", num_partitions=1, replication_factor=1)])["inherits"].result(10)
    t = ConfigResource(ResourceType.TOPIC, "inherits")
    tc = admin.describe_configs([t])[t].result(10)
    assert tc["retention.ms"].value == "7200000"
    assert tc["retention.ms"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    # Unknown and read-only keys are INVALID_REQUEST; bad values INVALID_CONFIG, as in Kafka.
    assert code_of(alter("1", ("no.such.config", "1"))) == KafkaError.INVALID_REQUEST
    assert code_of(alter("1", ("node.id", "7"))) == KafkaError.INVALID_REQUEST
    assert code_of(alter("1", ("leader.replication.throttled.rate", "fast"))) == KafkaError.INVALID_CONFIG
    bad = cluster_default("--add-config", "log.cleanup.policy=shred")
    assert bad.returncode == 1 and "INVALID_CONFIG" in bad.stderr and "log.cleanup.policy" in bad.stderr, bad.stderr
    r = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("leader.replication.throttled.rate", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([r])[r].result(10)
    assert cluster_default("--delete-config", "log.retention.ms").returncode == 0


def test_create_partitions(admin):
    admin.create_topics([NewTopic("grow", num_partitions=1, replication_factor=1)])["grow"].result(10)
    admin.create_partitions([NewPartitions("grow", 4)])["grow"].result(10)
    assert len(admin.list_topics("grow", timeout=10).topics["grow"].partitions) == 4
    with pytest.raises(KafkaException) as e:
        admin.create_partitions([NewPartitions("grow", 2)])["grow"].result(10)
    assert e.value.args[0].code() == KafkaError.INVALID_PARTITIONS


def test_describe_cluster(admin, node):
    desc = admin.describe_cluster().result(10)
    assert [n.id for n in desc.nodes] == [1]
    assert desc.cluster_id


def test_delete_records(admin, node):
    admin.create_topics([NewTopic("trim", num_partitions=1, replication_factor=1)])["trim"].result(10)
    p = Producer({"bootstrap.servers": node.bootstrap, "enable.idempotence": False})
    for i in range(20):
        p.produce("trim", value=f"r{i}")
    p.flush(10)
    result = admin.delete_records([TopicPartition("trim", 0, 15)])[TopicPartition("trim", 0, 15)].result(10)
    assert result.low_watermark == 15
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "unused"})
    assert c.get_watermark_offsets(TopicPartition("trim", 0), timeout=10) == (15, 20)
    c.close()
