"""kafka-python against a running `fjord server` (address in $BOOTSTRAP)."""

import os
import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

BOOTSTRAP = os.environ.get("BOOTSTRAP", "127.0.0.1:9092")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin():
    client = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000)
    yield client
    client.close()


def produce(topic, records, **kwargs):
    # Idempotence (kafka-python's default) needs InitProducerId, which comes
    # with the consumer-groups work; these tests cover the plain producer.
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=False, **kwargs)
    metadata = [producer.send(topic, **r).get(timeout=10) for r in records]
    producer.close()
    return metadata


def consume_all(topic, partition=0, offset=None, expected=None):
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                             consumer_timeout_ms=3000)
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    if offset is None:
        consumer.seek_to_beginning(tp)
    else:
        consumer.seek(tp, offset)
    out = []
    for message in consumer:
        out.append(message)
        if expected is not None and len(out) >= expected:
            break
    consumer.close()
    return out


def test_metadata_lists_topics(admin):
    topic = unique("py-meta")
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    assert topic in admin.list_topics()
    described = admin.describe_topics([topic])
    assert len(described[0]["partitions"]) == 2


def test_produce_consume_from_beginning():
    topic = unique("py-roundtrip")
    records = [dict(key=f"k{i}".encode(), value=f"v{i}".encode(),
                    headers=[("h", str(i).encode())], partition=0) for i in range(50)]
    sent = produce(topic, records)
    assert [m.offset for m in sent] == list(range(50))
    got = consume_all(topic, expected=50)
    assert [(m.key, m.value, m.offset) for m in got] == [
        (r["key"], r["value"], i) for i, r in enumerate(records)]
    assert got[7].headers == [("h", b"7")]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_produce(codec):
    topic = unique(f"py-{codec}")
    produce(topic, [dict(value=b"x" * 100, partition=0) for _ in range(100)],
            compression_type=codec)
    assert len(consume_all(topic, expected=100)) == 100


def test_consume_by_offset():
    topic = unique("py-offset")
    produce(topic, [dict(value=str(i).encode(), partition=0) for i in range(10)])
    got = consume_all(topic, offset=6, expected=4)
    assert [m.value for m in got] == [b"6", b"7", b"8", b"9"]


def test_list_offsets_by_time():
    topic = unique("py-time")
    base = int(time.time() * 1000) - 60_000
    produce(topic, [dict(value=str(i).encode(), partition=0, timestamp_ms=base + i * 1000)
                    for i in range(10)])
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    tp = TopicPartition(topic, 0)
    found = consumer.offsets_for_times({tp: base + 4500})
    assert found[tp].offset == 5
    assert consumer.beginning_offsets([tp])[tp] == 0
    assert consumer.end_offsets([tp])[tp] == 10
    consumer.close()


def test_topic_admin(admin):
    topic = unique("py-admin")
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})])
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])
    text = str(configs)
    assert "retention.ms" in text and "3600000" in text
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                        configs={"retention.ms": "7200000"})])
    assert "7200000" in str(admin.describe_configs([resource]))
    admin.delete_topics([topic])
    deadline = time.time() + 5
    while topic in admin.list_topics() and time.time() < deadline:
        time.sleep(0.1)
    assert topic not in admin.list_topics()
