"""Kafka transactions with confluent-kafka (librdkafka inside) against a
running `fjord server` (address in $BOOTSTRAP): committed records are seen
by read_committed consumers and aborted ones are not; a second producer
with the same transactional.id fences the first; a transaction left open
is aborted at its transaction.timeout.ms; consumed offsets sent to a
transaction reach the group only when it commits; and a
consume-transform-produce loop killed with SIGKILL again and again
(txn_loop.py) writes each input's result exactly once.

TXN_KILLS sets how many times the loop is killed (default 10; run
`TXN_KILLS=50 python3 -m pytest -q tests/interop/test_confluent_transactions.py
-k killed` against a server for the long run), TXN_KILL_SEED replays the
kill points of an earlier run (each run prints its seed)."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions,
                             KafkaError, KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = os.environ.get("BOOTSTRAP", "127.0.0.1:9092")
HERE = os.path.dirname(os.path.abspath(__file__))
# A record that closes a partition for the readers below: written without a
# transaction after the transactions under test, it is visible to a
# read_committed consumer only once the last stable offset has passed every
# one of them, i.e. once their markers are written (EndTxn answers before
# that, in Kafka as in any broker that writes markers asynchronously).
END = b"end"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(topic, partitions):
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=10)


def transactional(transactional_id, **settings):
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": transactional_id,
                         **settings})
    producer.init_transactions(30)
    return producer


def end_partitions(topic, partitions, bootstrap=None):
    """Writes END to each partition with a plain (idempotent) producer."""
    producer = Producer({"bootstrap.servers": bootstrap or BOOTSTRAP, "enable.idempotence": True})
    for p in partitions:
        producer.produce(topic, value=END, partition=p)
    assert producer.flush(20) == 0


def read_to_end(topic, partitions, isolation, timeout=30, bootstrap=None):
    """The values before END in each partition, read with `isolation`."""
    consumer = Consumer({"bootstrap.servers": bootstrap or BOOTSTRAP, "group.id": unique("ck-reader"),
                         "isolation.level": isolation, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    values, ended = [], set()
    deadline = time.monotonic() + timeout
    try:
        while ended != set(partitions):
            assert time.monotonic() < deadline, \
                f"{isolation}: END not reached in {set(partitions) - ended}; read {values}"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            if msg.value() == END:
                ended.add(msg.partition())
            else:
                assert msg.partition() not in ended, "a record after END"
                values.append(msg.value())
    finally:
        consumer.close()
    return values


def produce_all(producer, topic, values, partition=None):
    for v in values:
        if partition is None:
            producer.produce(topic, value=v)
        else:
            producer.produce(topic, value=v, partition=partition)
    assert producer.flush(20) == 0


def test_committed_records_are_read_and_aborted_ones_are_not():
    topic = unique("ck-txn")
    create_topic(topic, 2)
    producer = transactional(unique("ck-txn-id"))
    committed = [f"c{i}".encode() for i in range(10)]
    aborted = [f"a{i}".encode() for i in range(10)]
    # Committed, aborted, committed again: a read_committed reader must skip
    # the aborted transaction in the middle of the log, not only at its end.
    producer.begin_transaction()
    produce_all(producer, topic, committed[:5])
    producer.commit_transaction(30)
    producer.begin_transaction()
    produce_all(producer, topic, aborted)
    producer.abort_transaction(30)
    producer.begin_transaction()
    produce_all(producer, topic, committed[5:])
    producer.commit_transaction(30)
    end_partitions(topic, [0, 1])

    assert sorted(read_to_end(topic, [0, 1], "read_committed")) == sorted(committed)
    assert sorted(read_to_end(topic, [0, 1], "read_uncommitted")) == sorted(committed + aborted)


def test_a_second_producer_with_the_same_transactional_id_fences_the_first():
    topic = unique("ck-fence")
    create_topic(topic, 1)
    transactional_id = unique("ck-fence-id")
    first = transactional(transactional_id)
    first.begin_transaction()
    produce_all(first, topic, [b"first-1"], partition=0)
    first.commit_transaction(30)

    # The second's InitProducerId bumps the epoch: the first is a zombie.
    second = transactional(transactional_id)
    first.begin_transaction()
    first.produce(topic, value=b"zombie", partition=0)
    with pytest.raises(KafkaException) as fenced:
        first.flush(10)
        first.commit_transaction(10)
    error = fenced.value.args[0]
    assert error.code() == KafkaError._FENCED, error
    assert error.fatal(), error

    second.begin_transaction()
    produce_all(second, topic, [b"second-1"], partition=0)
    second.commit_transaction(30)
    end_partitions(topic, [0])
    assert read_to_end(topic, [0], "read_committed") == [b"first-1", b"second-1"]


def test_a_transaction_left_open_is_aborted_at_its_timeout():
    topic = unique("ck-timeout")
    create_topic(topic, 1)
    # librdkafka lowers socket.timeout.ms and message.timeout.ms to fit.
    stuck = transactional(unique("ck-timeout-id"), **{"transaction.timeout.ms": 2000})
    # The transaction starts after this (at its first AddPartitionsToTxn),
    # so it cannot be aborted before 2 s from here.
    started = time.monotonic()
    stuck.begin_transaction()
    produce_all(stuck, topic, [b"open-1", b"open-2"], partition=0)
    # The producer stays alive and silent, as a hung application would.
    end_partitions(topic, [0])
    # END sits behind the open transaction: a read_committed reader gets to
    # it only once the coordinator has aborted the transaction.
    assert read_to_end(topic, [0], "read_committed", timeout=40) == []
    waited = time.monotonic() - started
    assert waited >= 2.0, f"read past an open transaction after {waited:.1f} s"
    assert read_to_end(topic, [0], "read_uncommitted") == [b"open-1", b"open-2"]
    # The coordinator bumped the epoch when it aborted: the late commit fails.
    with pytest.raises(KafkaException):
        stuck.commit_transaction(10)


def committed_offsets(group, topic, partitions, bootstrap=None):
    admin = AdminClient({"bootstrap.servers": bootstrap or BOOTSTRAP})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    answer = admin.list_consumer_group_offsets([request])[group].result(timeout=10)
    return {tp.partition: tp.offset for tp in answer.topic_partitions}


def test_offsets_sent_to_a_transaction_reach_the_group_only_when_it_commits():
    source, sink = unique("ck-src"), unique("ck-sink")
    create_topic(source, 2)
    create_topic(sink, 1)
    inputs = Producer({"bootstrap.servers": BOOTSTRAP})
    for i in range(20):
        inputs.produce(source, value=f"in{i}".encode(), partition=i % 2)
    assert inputs.flush(20) == 0
    group = unique("ck-txn-group")
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group,
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([source])
    producer = transactional(unique("ck-ctp-id"))
    nothing = {0: -1001, 1: -1001}  # OFFSET_INVALID: nothing committed

    def consume(n):
        got = []
        deadline = time.monotonic() + 30
        while len(got) < n:
            assert time.monotonic() < deadline, f"consumed {got}"
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg)
        return got

    def transform(messages, then):
        producer.begin_transaction()
        for m in messages:
            producer.produce(sink, value=b"out-" + m.value(), partition=0)
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        # Sent but not committed: the group shows none of it.
        assert committed_offsets(group, source, [0, 1]) == nothing
        then(30)

    first = consume(20)
    transform(first, producer.abort_transaction)
    assert committed_offsets(group, source, [0, 1]) == nothing
    # After an abort the application rewinds to the committed offsets
    # (here: the beginning) and processes the same records again.
    for tp in consumer.assignment():
        consumer.seek(TopicPartition(source, tp.partition, OFFSET_BEGINNING))
    again = consume(20)
    assert sorted(m.value() for m in again) == sorted(m.value() for m in first)
    transform(again, producer.commit_transaction)
    assert committed_offsets(group, source, [0, 1]) == {0: 10, 1: 10}
    consumer.close()

    end_partitions(sink, [0])
    assert sorted(read_to_end(sink, [0], "read_committed")) == sorted(
        f"out-in{i}".encode() for i in range(20))
    # The aborted transaction's output is in the log, not read committed.
    assert len(read_to_end(sink, [0], "read_uncommitted")) == 40


def test_a_loop_killed_again_and_again_writes_each_result_exactly_once():
    kills = int(os.environ.get("TXN_KILLS", "10"))
    seed = int(os.environ.get("TXN_KILL_SEED", str(random.randrange(1 << 30))))
    print(f"TXN_KILLS={kills} TXN_KILL_SEED={seed}")
    rng = random.Random(seed)
    source, sink = unique("ck-loop-in"), unique("ck-loop-out")
    create_topic(source, 3)
    create_topic(sink, 3)
    group, transactional_id = unique("ck-loop-group"), unique("ck-loop-id")

    # Inputs arrive all through the kills, so that every run has work.
    produced, stop = [], threading.Event()

    def feed():
        producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
        i = 0
        while not stop.is_set():
            value = f"in{i}".encode()
            producer.produce(source, value=value, partition=i % 3)
            produced.append(value)
            i += 1
            producer.poll(0)
            time.sleep(0.01)
        assert producer.flush(20) == 0

    feeder = threading.Thread(target=feed)
    feeder.start()
    loop = [sys.executable, os.path.join(HERE, "txn_loop.py"), BOOTSTRAP, source, sink,
            group, transactional_id]
    try:
        for _ in range(kills):
            process = subprocess.Popen(loop)
            time.sleep(rng.uniform(0.5, 2.0))
            assert process.poll() is None, f"the loop exited with {process.returncode}"
            process.send_signal(signal.SIGKILL)
            process.wait()
    finally:
        stop.set()
        feeder.join()

    # A last run drains the inputs and is stopped once the group's offsets
    # reach the end of every input partition (nothing left in a
    # transaction: it commits before it reads on).
    ends = {}
    probe = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("ck-probe")})
    for p in range(3):
        ends[p] = probe.get_watermark_offsets(TopicPartition(source, p), timeout=10)[1]
    probe.close()
    process = subprocess.Popen(loop)
    try:
        deadline = time.monotonic() + 60
        while committed_offsets(group, source, [0, 1, 2]) != ends:
            assert process.poll() is None, f"the loop exited with {process.returncode}"
            assert time.monotonic() < deadline, \
                f"committed {committed_offsets(group, source, [0, 1, 2])}, ends {ends}"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    end_partitions(sink, [0, 1, 2])
    results = read_to_end(sink, [0, 1, 2], "read_committed", timeout=60)
    everything = read_to_end(sink, [0, 1, 2], "read_uncommitted", timeout=60)
    aborted = len(everything) - len(results)
    print(f"{len(produced)} inputs, {aborted} aborted outputs in the log")
    # Most kills land inside a transaction whose results are written (the
    # loop flushes, then works for up to 0.3 s): with several kills, some
    # aborted results must be in the log, or the test did not test.
    assert kills < 5 or aborted > 0, "no kill landed inside a transaction"
    expected = sorted(b"out-" + v for v in produced)
    missing = set(expected) - set(results)
    duplicated = len(results) - len(set(results))
    assert sorted(results) == expected, \
        f"missing {len(missing)} (e.g. {sorted(missing)[:5]}), {duplicated} duplicates"
