"""kafka-python: produce and consume by assignment, admin create, offsets for times."""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic


def test_round_trip(node):
    admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
    admin.create_topics([NewTopic("kp-topic", num_partitions=2, replication_factor=1)])
    # Idempotence (on by default in kafka-python 3) needs InitProducerId, not served yet.
    producer = KafkaProducer(bootstrap_servers=node.bootstrap, compression_type="gzip", enable_idempotence=False)
    for i in range(100):
        producer.send("kp-topic", key=f"k{i % 5}".encode(), value=f"v{i}".encode(), partition=i % 2)
    producer.flush(timeout=20)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=node.bootstrap, group_id=None, enable_auto_commit=False, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition("kp-topic", 0), TopicPartition("kp-topic", 1)])
    consumer.seek_to_beginning()
    got = [m.value.decode() for m in consumer]
    assert sorted(got) == sorted(f"v{i}" for i in range(100))
    end = consumer.end_offsets([TopicPartition("kp-topic", 0)])
    assert end[TopicPartition("kp-topic", 0)] == 50
    consumer.close()
    admin.close()
