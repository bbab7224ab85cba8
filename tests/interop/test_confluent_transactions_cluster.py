"""The consume-transform-produce loop of test_confluent_transactions.py
(txn_loop.py, confluent-kafka) in a three-node Fjord cluster that this test
starts itself ($FJORD_BIN; run.sh passes the binary it built): input and
output topics with three replicas (min.insync.replicas 2) and three
partitions, `__transaction_state` and `__consumer_offsets` replicated three
times. The loop is killed with SIGKILL at random points and restarted;
while it runs, a broker is killed with SIGKILL and restarted — in turn the
transactional id's coordinator, the group's coordinator and the leader of
an input or output partition — so leaders and coordinators fail over
under it. At the end the output topic, read read_committed, holds every
input's result exactly once.

TXN_CLUSTER_KILLS sets how many times (default 5: CI; run
`FJORD_BIN=... TXN_CLUSTER_KILLS=50 python3 -m pytest -q -s
tests/interop/test_confluent_transactions_cluster.py` for the long run),
TXN_KILL_SEED replays an earlier run's kill points (each run prints its
seed), FJORD_INTEROP_CLUSTER_PORT is the first of the six ports the
nodes take (default 19110)."""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from test_confluent_transactions import (committed_offsets, end_partitions, read_to_end,
                                         unique)

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = int(os.environ.get("FJORD_INTEROP_CLUSTER_PORT", "19110"))
NODES = (1, 2, 3)
# Few partitions of the internal topics: fewer logs to replicate and
# elect; the placement rule is Kafka's whatever the count.
STATE_PARTITIONS = 3


def kafka_port(node):
    return BASE + node - 1


BOOTSTRAP = ",".join(f"127.0.0.1:{kafka_port(n)}" for n in NODES)


def java_hash_partition(key, partitions):
    """Kafka's placement of a transactional id or group on its internal
    topic (Java's String.hashCode over UTF-16 units, sign bit masked)."""
    data, h = key.encode("utf-16-be"), 0
    for i in range(0, len(data), 2):
        h = (h * 31 + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) % partitions


class Cluster:
    """Three `fjord server` processes, each a broker and a controller voter
    (docs/cluster.md), on fixed ports so that a restarted node comes back
    where the others know it."""

    def __init__(self, fjord):
        self.fjord = fjord
        self.dir = tempfile.mkdtemp(prefix="fjord-txn-cluster-")
        self.voters = ",".join(f"{n}@127.0.0.1:{BASE + 2 + n}" for n in NODES)
        self.processes = {}
        for n in NODES:
            os.makedirs(self.data(n))
            with open(self.config(n), "w") as f:
                f.write("broker.session.timeout.ms: 2000\n"
                        f"transaction.state.log.num.partitions: {STATE_PARTITIONS}\n"
                        f"offsets.topic.num.partitions: {STATE_PARTITIONS}\n"
                        "transaction.abort.timed.out.transaction.cleanup.interval.ms: 1000\n")
            self.start(n)

    def data(self, n):
        return os.path.join(self.dir, f"node-{n}")

    def config(self, n):
        return os.path.join(self.dir, f"node-{n}.yaml")

    def log(self, n):
        return os.path.join(self.dir, f"node-{n}.log")

    def start(self, n):
        # A port in the ephemeral range (a manual run's
        # FJORD_INTEROP_CLUSTER_PORT) may be some client's for a moment:
        # tried again then.
        for attempt in range(30):
            try:
                return self.start_once(n)
            except AssertionError:
                if "(os error 98)" not in self.tail(n, 10) or attempt == 29:
                    raise
                print(f"node {n}: a port is taken, starting again")
                time.sleep(1)

    def start_once(self, n):
        with open(self.log(n), "a") as log:
            self.processes[n] = subprocess.Popen(
                [self.fjord, "server", "--config", self.config(n), "--data-dir", self.data(n),
                 "--node-id", str(n), "--controller-voters", self.voters,
                 "--controller-listen", f"127.0.0.1:{BASE + 2 + n}",
                 "--listen", f"127.0.0.1:{kafka_port(n)}",
                 "--admin-listen", "off", "--log", "warn"],
                stdout=subprocess.DEVNULL, stderr=log)
        # Listening, or why not (a port taken, say) in the failure.
        deadline = time.monotonic() + 30
        while True:
            self.check_alive()
            try:
                socket.create_connection(("127.0.0.1", kafka_port(n)), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"node {n} does not listen"
                time.sleep(0.1)

    def kill(self, n):
        self.processes[n].send_signal(signal.SIGKILL)
        self.processes[n].wait()

    def check_alive(self):
        for n, p in self.processes.items():
            assert p.poll() is None, f"node {n} exited with {p.returncode}:\n{self.tail(n)}"

    def tail(self, n, lines=30):
        # (an error's backtrace left out: its message is above it)
        kept, backtrace = [], False
        with open(self.log(n), errors="replace") as f:
            for line in f:
                backtrace = line.startswith("Stack backtrace:") or \
                    (backtrace and line.startswith(" "))
                if not backtrace:
                    kept.append(line)
        return "".join(kept[-lines:])

    def stop(self, failed):
        for n, p in self.processes.items():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
            if failed:
                print(f"---- node {n} log (tail) ----\n{self.tail(n)}")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster(request):
    fjord = os.environ.get("FJORD_BIN")
    assert fjord and os.access(fjord, os.X_OK), "FJORD_BIN names no fjord binary"
    c = Cluster(fjord)
    failed = request.session.testsfailed
    try:
        yield c
    finally:
        # (the test's report is in by teardown: its nodes' logs if it failed)
        c.stop(request.session.testsfailed > failed)


def wait_for(what, check, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001 - a broker on its way back
            found = None
            last = e
        else:
            last = None
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what} ({last})"
        time.sleep(0.2)


_admin = []


def admin_client():
    """One AdminClient for the whole run, not one per question: the waits
    ask several times a second. (One run of this test died of SIGSEGV in
    the test process itself, cause not found; making and destroying
    hundreds of librdkafka clients beside the feeder's thread was the
    likeliest suspect.)"""
    if not _admin:
        _admin.append(AdminClient({"bootstrap.servers": BOOTSTRAP}))
    return _admin[0]


def topic_metadata(topic):
    return admin_client().list_topics(topic, timeout=5).topics[topic]


def fully_replicated(topics):
    """True once every partition of `topics` has a leader and all three
    replicas in sync: the next broker may die without data loss."""
    for topic in topics:
        t = topic_metadata(topic)
        if t.error is not None or not t.partitions:
            return False
        for p in t.partitions.values():
            if p.leader < 0 or sorted(p.isrs) != list(NODES):
                return False
    return True


def leader(topic, partition, not_=None):
    """The partition's leader, once it has one other than `not_`."""
    def check():
        found = topic_metadata(topic).partitions[partition].leader
        return found if found > 0 and found != not_ else None
    return wait_for(f"a leader of {topic}-{partition} other than {not_}", check)


def stable_offsets(topic):
    """Every broker's (last stable offset, high watermark) of each partition
    it leads, asked read_committed and read_uncommitted: where a loop that
    stopped reading stands."""
    views = {}
    for isolation in ("read_committed", "read_uncommitted"):
        for n in NODES:
            c = Consumer({"bootstrap.servers": f"127.0.0.1:{kafka_port(n)}",
                          "group.id": unique("ck-probe"), "isolation.level": isolation})
            for p in range(3):
                try:
                    end = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                except Exception as e:  # noqa: BLE001 - a diagnosis
                    end = str(e)
                views.setdefault(f"{topic}-{p} via {n}", []).append(end)
            c.close()
    return views


def stuck(group, topic):
    """Why a loop reads no further: the group's offsets asked with
    require_stable (UNSTABLE_OFFSET_COMMIT while a transaction holds
    them), and what a read_committed consumer gets at each of them."""
    admin = admin_client()
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(3)])
    try:
        answer = admin.list_consumer_group_offsets([request], require_stable=True)[group] \
            .result(timeout=10)
        stable = [(tp.partition, tp.offset, str(tp.error)) for tp in answer.topic_partitions]
    except Exception as e:  # noqa: BLE001 - a diagnosis
        stable = str(e)
    read = {}
    offsets = committed_offsets(group, topic, [0, 1, 2], bootstrap=BOOTSTRAP)
    for p, offset in offsets.items():
        c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("ck-probe"),
                      "isolation.level": "read_committed"})
        c.assign([TopicPartition(topic, p, offset)])
        msg, deadline = None, time.monotonic() + 10
        while msg is None and time.monotonic() < deadline:
            msg = c.poll(0.5)
        read[p] = None if msg is None else (msg.offset(), str(msg.error()), msg.value())
        c.close()
    return f"require_stable: {stable}; read at the committed offsets: {read}"


def create_topic(topic, partitions):
    admin = admin_client()
    new = NewTopic(topic, partitions, 3, config={"min.insync.replicas": "2"})
    try:
        admin.create_topics([new])[topic].result(timeout=30)
    except KafkaException as e:
        # A retry after an answer that was lost.
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    return True


def test_a_loop_killed_again_and_again_through_broker_failovers_writes_each_result_once(
        cluster):
    kills = int(os.environ.get("TXN_CLUSTER_KILLS", "5"))
    seed = int(os.environ.get("TXN_KILL_SEED", str(random.randrange(1 << 30))))
    print(f"TXN_CLUSTER_KILLS={kills} TXN_KILL_SEED={seed}")
    rng = random.Random(seed)
    started = time.monotonic()
    admin = admin_client()
    wait_for("three brokers in the metadata",
             lambda: cluster.check_alive() or len(admin.list_topics(timeout=5).brokers) == 3)
    source, sink = unique("ck-loop-in"), unique("ck-loop-out")
    wait_for("the input topic created", lambda: create_topic(source, 3))
    wait_for("the output topic created", lambda: create_topic(sink, 3))
    group, transactional_id = unique("ck-loop-group"), unique("ck-loop-id")
    # The internal topics are created on first use: before the kills, so
    # that every kill finds them replicated.
    Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": transactional_id}) \
        .init_transactions(60)
    committed_offsets(group, source, [0, 1, 2], bootstrap=BOOTSTRAP)
    topics = [source, sink, "__transaction_state", "__consumer_offsets"]
    wait_for("every partition replicated three times", lambda: fully_replicated(topics))

    # Inputs arrive all through the kills; only those acknowledged count.
    produced, stop = [], threading.Event()

    def feed():
        def delivered(err, msg):
            if err is None:
                produced.append(msg.value())
        producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5,
                             "enable.idempotence": True, "message.timeout.ms": 120000})
        i = 0
        while not stop.is_set():
            producer.produce(source, value=f"in{i}".encode(), partition=i % 3,
                             on_delivery=delivered)
            i += 1
            producer.poll(0)
            time.sleep(0.01)
        assert producer.flush(120) == 0

    feeder = threading.Thread(target=feed)
    feeder.start()
    loop = [sys.executable, os.path.join(HERE, "txn_loop.py"), BOOTSTRAP, source, sink,
            group, transactional_id]
    victims = []
    try:
        for round in range(kills):
            process = subprocess.Popen(loop)
            time.sleep(rng.uniform(0.5, 2.0))
            # A broker dies under the running loop: in turn the id's
            # coordinator, the group's coordinator, a partition's leader;
            # the loop goes on through the failover, then is killed too.
            kind = round % 3
            if kind == 0:
                partition = ("__transaction_state",
                             java_hash_partition(transactional_id, STATE_PARTITIONS))
            elif kind == 1:
                partition = ("__consumer_offsets", java_hash_partition(group, STATE_PARTITIONS))
            else:
                partition = (rng.choice([source, sink]), rng.randrange(3))
            victim = leader(*partition)
            victims.append(victim)
            cluster.kill(victim)
            leader(*partition, not_=victim)
            time.sleep(rng.uniform(0, 1.5))
            assert process.poll() is None, f"the loop exited with {process.returncode}"
            process.send_signal(signal.SIGKILL)
            process.wait()
            cluster.start(victim)
            cluster.check_alive()
            wait_for(f"broker {victim} back in every ISR",
                     lambda: cluster.check_alive() or fully_replicated(topics))
    finally:
        stop.set()
        feeder.join()
    cluster.check_alive()

    # A last run drains the inputs and is stopped once the group's offsets
    # reach the end of every input partition.
    probe = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("ck-probe")})
    ends = {p: probe.get_watermark_offsets(TopicPartition(source, p), timeout=10)[1]
            for p in range(3)}
    probe.close()
    process = subprocess.Popen(loop)
    try:
        deadline = time.monotonic() + 60
        while committed_offsets(group, source, [0, 1, 2], bootstrap=BOOTSTRAP) != ends:
            assert process.poll() is None, f"the loop exited with {process.returncode}"
            assert time.monotonic() < deadline, \
                f"committed {committed_offsets(group, source, [0, 1, 2], bootstrap=BOOTSTRAP)}" \
                f", ends {ends}; {stable_offsets(source)}; {stuck(group, source)}"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    end_partitions(sink, [0, 1, 2], bootstrap=BOOTSTRAP)
    results = read_to_end(sink, [0, 1, 2], "read_committed", timeout=60, bootstrap=BOOTSTRAP)
    everything = read_to_end(sink, [0, 1, 2], "read_uncommitted", timeout=60,
                             bootstrap=BOOTSTRAP)
    aborted = len(everything) - len(results)
    print(f"{kills} loop kills, brokers killed {victims}, {len(produced)} inputs, "
          f"{aborted} aborted outputs in the log, {time.monotonic() - started:.0f} s")
    assert kills < 5 or aborted > 0, "no kill landed inside a transaction"
    expected = sorted(b"out-" + v for v in produced)
    missing = set(expected) - set(results)
    duplicated = len(results) - len(set(results))
    assert sorted(results) == expected, \
        f"missing {len(missing)} (e.g. {sorted(missing)[:5]}), {duplicated} duplicates"
