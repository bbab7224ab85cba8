"""KIP-848 with confluent-kafka (librdkafka inside) against a running
`fjord server` (run.sh): consumers with group.protocol=consumer share a
topic's partitions without ever owning one twice, a member leaving hands
its partitions on, committed offsets are kept across a member restart, and
a group moves between the classic and the consumer protocol while empty,
keeping its offsets, and a live classic group is upgraded member by member
and downgraded back (group.consumer.migration.policy, default
bidirectional)."""

import os
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = os.environ.get("BOOTSTRAP", "127.0.0.1:9092")
PARTITIONS = 6

pytestmark = pytest.mark.skipif(
    "BOOTSTRAP" not in os.environ, reason="run.sh starts the server")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def topic_with_records(n):
    topic = unique("kip848")
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(20)
    produce(topic, 0, n)
    return topic


def produce(topic, start, end):
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    for i in range(start, end):
        producer.produce(topic, value=f"v{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(20) == 0


class Member:
    """A consumer that records its assignment changes in a shared timeline,
    assignments before it takes them and revocations before it gives them
    up (callbacks run inside poll, one consumer at a time here)."""

    def __init__(self, name, group, timeline, protocol="consumer", strategy=None):
        self.name = name
        self.timeline = timeline
        self.seen = set()
        config = {
            "bootstrap.servers": BOOTSTRAP, "group.id": group,
            "group.protocol": protocol, "client.id": name,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
        }
        if strategy:
            config["partition.assignment.strategy"] = strategy
        self.consumer = Consumer(config)

    def subscribe(self, topic):
        self.consumer.subscribe(
            [topic],
            on_assign=lambda c, ps: self.timeline.append(
                (self.name, True, [p.partition for p in ps])),
            on_revoke=lambda c, ps: self.timeline.append(
                (self.name, False, [p.partition for p in ps])))

    def poll(self):
        msg = self.consumer.poll(0.05)
        if msg is not None and msg.error() is None:
            self.seen.add(int(msg.value().decode()[1:]))


def replay(timeline):
    """Who owns what after the timeline; fails if a partition was ever
    assigned while another member owned it."""
    owner = {}
    for name, assigned, partitions in timeline:
        for p in partitions:
            if assigned:
                other = owner.get(p)
                assert other in (None, name), f"partition {p} given to {name} while {other} owned it"
                owner[p] = name
            elif owner.get(p) == name:
                del owner[p]
    owned = {}
    for p, name in owner.items():
        owned.setdefault(name, set()).add(p)
    return owned


def poll_until(members, done, limit=45, what="condition"):
    deadline = time.time() + limit
    while not done():
        assert time.time() < deadline, f"timed out waiting for {what}"
        for m in members:
            m.poll()


def test_three_members_share_and_one_leaves():
    topic = topic_with_records(60)
    group = unique("kip848-g")
    timeline = []
    members = [Member(f"m{i}", group, timeline) for i in range(3)]
    for m in members:
        m.subscribe(topic)

    def shares(sizes):
        return sorted(len(s) for s in replay(timeline).values()) == sizes

    poll_until(members, lambda: shares([2, 2, 2])
               and set().union(*(m.seen for m in members)) == set(range(60)),
               what="three members sharing six partitions")
    leaver = members.pop()
    leaver.consumer.close()
    poll_until(members, lambda: shares([3, 3]), what="the leaver's partitions to move")
    for m in members:
        m.consumer.close()
    replay(timeline)


def test_committed_offsets_are_kept_across_a_member_restart():
    topic = topic_with_records(30)
    group = unique("kip848-c")
    first = Member("first", group, [])
    first.subscribe(topic)
    poll_until([first], lambda: first.seen == set(range(30)), what="30 records")
    first.consumer.commit(asynchronous=False)
    first.consumer.close()

    produce(topic, 30, 45)
    second = Member("second", group, [])
    second.subscribe(topic)
    poll_until([second], lambda: set(range(30, 45)) <= second.seen, what="the new records")
    assert min(second.seen) >= 30, sorted(second.seen)
    second.consumer.close()


def test_an_empty_group_moves_between_protocols_keeping_its_offsets():
    topic = topic_with_records(20)
    group = unique("kip848-conv")
    classic = Member("classic", group, [], protocol="classic")
    classic.subscribe(topic)
    poll_until([classic], lambda: classic.seen == set(range(20)), what="classic reads")
    classic.consumer.commit(asynchronous=False)
    classic.consumer.close()

    produce(topic, 20, 30)
    modern = Member("modern", group, [])
    modern.subscribe(topic)
    poll_until([modern], lambda: set(range(20, 30)) <= modern.seen, what="consumer protocol reads")
    assert min(modern.seen) >= 20, sorted(modern.seen)
    modern.consumer.commit(asynchronous=False)
    modern.consumer.close()

    produce(topic, 30, 40)
    back = Member("back", group, [], protocol="classic")
    back.subscribe(topic)
    poll_until([back], lambda: set(range(30, 40)) <= back.seen, what="classic reads again")
    assert min(back.seen) >= 30, sorted(back.seen)
    committed = back.consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 10)
    assert sum(tp.offset for tp in committed) == 30
    back.consumer.close()


def group_type(group):
    """The group's type as ListGroups v5 reports it."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    listed = admin.list_consumer_groups(request_timeout=10).result()
    for g in listed.valid:
        if g.group_id == group:
            return str(getattr(g, "type", None)).split(".")[-1].lower()
    return None


def positioned(member, count, end=None):
    """Whether the member has `count` partitions, each with a position to
    commit (after an eager rebalance positions come back a poll later), at
    `end` records in all when given (it may read again what it read before
    the rebalance)."""
    assignment = member.consumer.assignment()
    positions = [tp.offset for tp in member.consumer.position(assignment)]
    return len(assignment) == count and all(p >= 0 for p in positions) and (
        end is None or sum(positions) == end)


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_a_live_classic_group_is_upgraded_and_downgraded_member_by_member(strategy):
    """Eager (range) and cooperative classic members alike."""
    topic = topic_with_records(60)
    group = unique("kip848-roll")
    timeline = []
    first = Member("first", group, timeline, protocol="classic", strategy=strategy)
    second = Member("second", group, timeline, protocol="classic", strategy=strategy)
    for m in (first, second):
        m.subscribe(topic)
    poll_until([first, second], lambda: first.seen | second.seen == set(range(60))
               and sorted(len(s) for s in replay(timeline).values()) == [3, 3],
               what="two classic members sharing the partitions")
    for m in (first, second):
        m.consumer.commit(asynchronous=False)
    assert group_type(group) == "classic"

    # Rolling upgrade: `second` restarts with the consumer protocol while
    # `first` stays classic. Once `first` owns everything, the newcomer
    # turns the live group into a consumer group and gets its share only
    # as `first` gives it up (replay fails on a partition owned twice).
    second.consumer.close()
    poll_until([first], lambda: len(replay(timeline).get("first", ())) == PARTITIONS,
               what="the remaining classic member taking every partition")
    produce(topic, 60, 120)
    upgraded = Member("upgraded", group, timeline)
    upgraded.subscribe(topic)
    both = [first, upgraded]
    poll_until(both, lambda: set(range(60, 120)) <= first.seen | upgraded.seen
               and sorted(len(s) for s in replay(timeline).values()) == [3, 3]
               and all(positioned(m, 3) for m in both),
               what="a classic and a consumer-protocol member sharing the partitions")
    assert group_type(group) == "consumer"
    # The committed offsets were kept: nothing before 60 is read again.
    assert min(upgraded.seen) >= 60, sorted(upgraded.seen)
    for m in both:
        m.consumer.commit(asynchronous=False)

    # The consumer-protocol member leaves: the group is classic again and
    # its classic member keeps consuming everything.
    upgraded.consumer.close()
    produce(topic, 120, 180)
    poll_until([first], lambda: set(range(120, 180)) <= first.seen
               and positioned(first, PARTITIONS, 180),
               what="the classic member reading alone")
    assert group_type(group) == "classic"
    first.consumer.commit(asynchronous=False)
    committed = first.consumer.committed(
        [TopicPartition(topic, p) for p in range(PARTITIONS)], 10)
    assert sum(tp.offset for tp in committed) == 180, committed
    first.consumer.close()
    replay(timeline)
