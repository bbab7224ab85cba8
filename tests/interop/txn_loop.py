"""A consume-transform-produce loop with confluent-kafka, the process
test_confluent_transactions.py kills with SIGKILL at random points and
restarts (test_confluent_transactions_cluster.py too, in a three-node
cluster whose brokers it also kills): it reads inputs read_committed from
the group's committed offsets, writes `out-<input>` for each to the same partition of the output
topic and sends the consumed offsets in the same transaction, so that each
input's result is committed exactly once however often it is killed.

Usage: txn_loop.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID"""

import random
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def main(bootstrap, source, sink, group, transactional_id):
    # Transactions a killed run left open are aborted by the next
    # init_transactions; the timeout only bounds the wait if it were not.
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "transaction.timeout.ms": 10000})
    # Before the consumer reads its committed offsets: init_transactions
    # completes the previous run's transaction, whose offsets the group
    # holds as pending until then.
    retried(lambda: producer.init_transactions(60))
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    # Assigned, not subscribed: a restarted run need not wait for the
    # killed one's membership to expire.
    partitions = [TopicPartition(source, p)
                  for p in consumer.list_topics(source, timeout=10).topics[source].partitions]
    consumer.assign(partitions)
    while True:
        messages = [m for m in consumer.consume(num_messages=20, timeout=0.1)
                    if m.error() is None]
        if not messages:
            continue
        try:
            transaction(producer, consumer, sink, messages)
        except KafkaException as e:
            # In a cluster a broker may die mid-transaction (test_confluent_
            # transactions_cluster.py): an abortable error is aborted and the
            # inputs read again from the group's committed offsets, as a
            # real loop does; a fatal one (fenced) ends the process.
            if not e.args[0].txn_requires_abort():
                raise
            print(f"txn_loop: aborting after {e}", file=sys.stderr, flush=True)
            producer.abort_transaction(60)
            consumer.unassign()
            consumer.assign(partitions)


def transaction(producer, consumer, sink, messages):
    producer.begin_transaction()
    for m in messages:
        producer.produce(sink, value=b"out-" + m.value(), partition=m.partition())
    # The results are in the log, and the transformation is slow: many
    # kills land here, inside a transaction with written results.
    producer.flush(30)
    time.sleep(random.uniform(0, 0.3))
    positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
    metadata = consumer.consumer_group_metadata()
    retried(lambda: producer.send_offsets_to_transaction(positions, metadata, 60))
    retried(lambda: producer.commit_transaction(60))


def retried(call):
    """`call` again while it fails with a retriable error (the coordinator
    moved, a timeout): librdkafka allows that for these calls, and the
    outcome is the coordinator's to decide."""
    while True:
        try:
            return call()
        except KafkaException as e:
            if not e.args[0].retriable():
                raise
            print(f"txn_loop: retrying after {e}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
