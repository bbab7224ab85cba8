"""aiokafka against a running `fjord server` (address in $BOOTSTRAP).

aiokafka joins a group with JoinGroup v5 and heartbeats and commits with
older versions (Heartbeat v1, OffsetCommit v3) that carry no instance id;
as a static member (group_instance_id) it must stay in its generation and
commit, as against Kafka. A transactional producer is refused at start.
"""

import asyncio
import os
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import TransactionalIdAuthorizationFailed

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


async def start_transactional(transactional_id):
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=transactional_id)
    try:
        await producer.start()
    finally:
        await producer.stop()


def test_a_transactional_producer_is_refused_at_start():
    # No transaction coordinator yet: FindCoordinator answers the fatal
    # TRANSACTIONAL_ID_AUTHORIZATION_FAILED. aiokafka retried the earlier
    # COORDINATOR_NOT_AVAILABLE forever; the 30 s bound only keeps a
    # regression from hanging the suite.
    transactional_id = unique("aio-txn")
    started = time.monotonic()
    with pytest.raises(TransactionalIdAuthorizationFailed) as refused:
        asyncio.run(asyncio.wait_for(start_transactional(transactional_id), 30))
    assert time.monotonic() - started < 5
    assert transactional_id in str(refused.value)
