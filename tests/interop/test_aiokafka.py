"""aiokafka against a running `fjord server` (address in $BOOTSTRAP).

aiokafka joins a group with JoinGroup v5 and heartbeats and commits with
older versions (Heartbeat v1, OffsetCommit v3) that carry no instance id;
as a static member (group_instance_id) it must stay in its generation and
commit, as against Kafka. Transactions: committed records are read
read_committed, aborted ones are not, and a second producer with the same
transactional_id fences the first.
"""

import asyncio
import os
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced

BOOTSTRAP = os.environ.get("BOOTSTRAP", "127.0.0.1:9092")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def produce(topic, count):
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, f"r{i}".encode(), partition=0)
    finally:
        await producer.stop()


async def static_member_round(topic, group):
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        group_id=group,
        group_instance_id=f"{group}-instance-1",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10000,
        heartbeat_interval_ms=300,
    )
    await consumer.start()
    try:
        seen = []
        async with asyncio.timeout(30):
            while len(seen) < 20:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    seen.extend(r.value.decode() for r in records)
        assert seen == [f"r{i}" for i in range(20)]
        generation = consumer._coordinator.generation
        # Heartbeats (v1) for a few seconds: a fenced member would rejoin
        # under a new generation or stop.
        await asyncio.sleep(3)
        assert consumer._coordinator.generation == generation, "no rebalance"
        await consumer.commit()
        tp = TopicPartition(topic, 0)
        assert await consumer.committed(tp) == 20
    finally:
        await consumer.stop()


def test_a_static_member_consumes_heartbeats_and_commits():
    topic = unique("aio-static")
    asyncio.run(produce(topic, 20))
    asyncio.run(static_member_round(topic, unique("aio-group")))


async def read_to_end(topic, isolation):
    """The values before b"end" in partition 0, read with `isolation`: a
    record written without a transaction after the ones under test, which a
    read_committed consumer reaches only once their markers are written."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level=isolation,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        values = []
        async with asyncio.timeout(30):
            while True:
                record = await consumer.getone()
                if record.value == b"end":
                    return values
                values.append(record.value)
    finally:
        await consumer.stop()


async def transactions(topic, transactional_id):
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=transactional_id)
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"c1", partition=0)
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"a1", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"c2", partition=0)

        # A second producer with the same id fences this one.
        second = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=transactional_id)
        await second.start()
        try:
            with pytest.raises(ProducerFenced):
                async with asyncio.timeout(20):
                    async with producer.transaction():
                        await producer.send_and_wait(topic, b"zombie", partition=0)
            async with second.transaction():
                await second.send_and_wait(topic, b"c3", partition=0)
        finally:
            await second.stop()
    finally:
        await producer.stop()
    plain = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await plain.start()
    try:
        await plain.send_and_wait(topic, b"end", partition=0)
    finally:
        await plain.stop()
    return await read_to_end(topic, "read_committed"), await read_to_end(topic, "read_uncommitted")


def test_transactions_commit_abort_and_fence():
    committed, everything = asyncio.run(transactions(unique("aio-txn"), unique("aio-txn-id")))
    assert committed == [b"c1", b"c2", b"c3"]
    # The zombie's record never reached the log: its AddPartitionsToTxn,
    # sent before the record, was fenced.
    assert everything == [b"c1", b"a1", b"c2", b"c3"]
