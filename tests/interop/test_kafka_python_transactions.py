"""Kafka transactions with kafka-python (its own protocol code) against a
running `fjord server` (address in $BOOTSTRAP): committed records are read
by read_committed consumers and aborted ones are not; a second producer
with the same transactional_id fences the first; a transaction left open
is aborted at its transaction_timeout_ms (seen through DescribeTransactions
and DescribeProducers too); consumed offsets sent to a transaction reach
the group only when it commits."""

import os
import time
import uuid

import kafka.errors
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

BOOTSTRAP = os.environ.get("BOOTSTRAP", "127.0.0.1:9092")
# Written without a transaction after the ones under test: a read_committed
# consumer reaches it only once the last stable offset has passed them all
# (their markers are written; EndTxn may answer before that).
END = b"end"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin():
    client = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000)
    yield client
    client.close()


def transactional(transactional_id, **settings):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=transactional_id,
                             max_block_ms=30000, **settings)
    producer.init_transactions()
    return producer


def send_all(producer, topic, values, partition=0):
    for v in values:
        producer.send(topic, value=v, partition=partition)
    producer.flush(timeout=20)


def end_partitions(topic, partitions):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for p in partitions:
        producer.send(topic, value=END, partition=p).get(timeout=10)
    producer.close()


def read_to_end(topic, partitions, isolation, timeout=30):
    """The values before END in each partition, read with `isolation`."""
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                             isolation_level=isolation)
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    values, ended = [], set()
    deadline = time.monotonic() + timeout
    try:
        while ended != set(partitions):
            assert time.monotonic() < deadline, \
                f"{isolation}: END not reached in {set(partitions) - ended}; read {values}"
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    if r.value == END:
                        ended.add(tp.partition)
                    else:
                        assert tp.partition not in ended, "a record after END"
                        values.append(r.value)
    finally:
        consumer.close()
    return values


def test_committed_records_are_read_and_aborted_ones_are_not(admin):
    topic = unique("py-txn")
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    producer = transactional(unique("py-txn-id"))
    committed = [f"c{i}".encode() for i in range(10)]
    aborted = [f"a{i}".encode() for i in range(10)]
    # Committed, aborted, committed: the aborted one sits mid-log.
    for values, commit in ((committed[:5], True), (aborted, False), (committed[5:], True)):
        producer.begin_transaction()
        send_all(producer, topic, values[::2], partition=0)
        send_all(producer, topic, values[1::2], partition=1)
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close(timeout=5)
    end_partitions(topic, [0, 1])
    assert sorted(read_to_end(topic, [0, 1], "read_committed")) == sorted(committed)
    assert sorted(read_to_end(topic, [0, 1], "read_uncommitted")) == sorted(committed + aborted)


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(admin):
    topic = unique("py-fence")
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    transactional_id = unique("py-fence-id")
    first = transactional(transactional_id)
    first.begin_transaction()
    send_all(first, topic, [b"first-1"])
    first.commit_transaction()

    second = transactional(transactional_id)
    with pytest.raises(kafka.errors.ProducerFencedError):
        first.begin_transaction()
        first.send(topic, value=b"zombie", partition=0).get(timeout=10)
        first.commit_transaction()
    first.close(timeout=5)

    second.begin_transaction()
    send_all(second, topic, [b"second-1"])
    second.commit_transaction()
    second.close(timeout=5)
    end_partitions(topic, [0])
    assert read_to_end(topic, [0], "read_committed") == [b"first-1", b"second-1"]


def test_a_transaction_left_open_is_aborted_at_its_timeout(admin):
    from kafka.admin._transactions import TransactionState

    topic = unique("py-timeout")
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    transactional_id = unique("py-timeout-id")
    stuck = transactional(transactional_id, transaction_timeout_ms=2000)
    started = time.monotonic()  # before the transaction's start
    stuck.begin_transaction()
    send_all(stuck, topic, [b"open-1", b"open-2"])
    tp = TopicPartition(topic, 0)

    described = admin.describe_transactions([transactional_id])[transactional_id]
    if time.monotonic() - started < 1.5:  # (a slow machine may be past it)
        assert described.state == TransactionState.ONGOING, described
        assert described.topic_partitions == {tp}, described
        assert described.transaction_timeout_ms == 2000, described
        producers = admin.describe_producers([tp])[tp].active_producers
        assert [p.current_transaction_start_offset for p in producers] == [0], producers

    end_partitions(topic, [0])
    assert read_to_end(topic, [0], "read_committed", timeout=40) == []
    waited = time.monotonic() - started
    assert waited >= 2.0, f"read past an open transaction after {waited:.1f} s"
    assert read_to_end(topic, [0], "read_uncommitted") == [b"open-1", b"open-2"]
    described = admin.describe_transactions([transactional_id])[transactional_id]
    assert described.state == TransactionState.COMPLETE_ABORT, described
    producers = admin.describe_producers([tp])[tp].active_producers
    assert all(p.current_transaction_start_offset == -1 for p in producers), producers
    # The coordinator bumped the epoch when it aborted: the late commit fails.
    with pytest.raises(kafka.errors.KafkaError):
        stuck.commit_transaction()
    stuck.close(timeout=5)


def committed_offsets(admin, group, topic, partitions):
    tps = [TopicPartition(topic, p) for p in partitions]
    answer = admin.list_group_offsets({group: tps})[group]
    return {tp.partition: answer[tp].offset for tp in tps if tp in answer}


def test_offsets_sent_to_a_transaction_reach_the_group_only_when_it_commits(admin):
    source, sink = unique("py-src"), unique("py-sink")
    admin.create_topics([NewTopic(source, num_partitions=2, replication_factor=1),
                         NewTopic(sink, num_partitions=1, replication_factor=1)])
    inputs = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for i in range(20):
        inputs.send(source, value=f"in{i}".encode(), partition=i % 2)
    inputs.flush(timeout=20)
    inputs.close()
    group = unique("py-txn-group")
    consumer = KafkaConsumer(source, bootstrap_servers=BOOTSTRAP, group_id=group,
                             isolation_level="read_committed", enable_auto_commit=False,
                             auto_offset_reset="earliest")
    producer = transactional(unique("py-ctp-id"))
    before = committed_offsets(admin, group, source, [0, 1])
    assert all(o == -1 for o in before.values()), before

    def consume(n):
        got = []
        deadline = time.monotonic() + 30
        while len(got) < n:
            assert time.monotonic() < deadline, f"consumed {got}"
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(records)
        return got

    def transform(records, commit):
        producer.begin_transaction()
        send_all(producer, sink, [b"out-" + r.value for r in records])
        positions = {tp: kafka.OffsetAndMetadata(consumer.position(tp), "", -1)
                     for tp in consumer.assignment()}
        producer.send_offsets_to_transaction(positions, consumer.group_metadata())
        # Sent but not committed: the group shows none of it.
        assert committed_offsets(admin, group, source, [0, 1]) == before
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()

    first = consume(20)
    transform(first, commit=False)
    assert committed_offsets(admin, group, source, [0, 1]) == before
    consumer.seek_to_beginning()
    again = consume(20)
    assert sorted(r.value for r in again) == sorted(r.value for r in first)
    transform(again, commit=True)
    assert committed_offsets(admin, group, source, [0, 1]) == {0: 10, 1: 10}
    consumer.close()
    producer.close(timeout=5)

    end_partitions(sink, [0])
    assert sorted(read_to_end(sink, [0], "read_committed")) == sorted(
        f"out-in{i}".encode() for i in range(20))
    assert len(read_to_end(sink, [0], "read_uncommitted")) == 40
