"""kafka-python against a running `fjord server` (address in $BOOTSTRAP).
Transactions: test_kafka_python_transactions.py."""

import os
import threading
import time
import uuid

import kafka
import kafka.errors
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
    # kafka-python's defaults: idempotence on, acks=all.
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, **kwargs)
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


def test_describe_log_dirs_lists_partition_sizes(admin):
    """KafkaAdminClient.describe_log_dirs (DescribeLogDirs v4): the one log
    directory, the topic's partitions with their sizes, the disk's space."""
    topic = unique("py-logdirs")
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    produce(topic, [{"value": b"x" * 100, "partition": 0} for _ in range(10)])
    answers = admin.describe_log_dirs()
    assert len(answers) == 1, answers
    log_dirs = answers[0]["log_dirs"]
    assert len(log_dirs) == 1, log_dirs
    log_dir = log_dirs[0]
    assert log_dir["error_code"] == 0 and log_dir["log_dir"].startswith("/")
    assert log_dir["total_bytes"] >= log_dir["usable_bytes"] > 0
    topics = [t for t in log_dir["topics"] if t["name"] == topic]
    assert len(topics) == 1, log_dir["topics"]
    sizes = {p["partition_index"]: p for p in topics[0]["partitions"]}
    assert set(sizes) == {0, 1}
    assert sizes[0]["partition_size"] > 1000 > sizes[1]["partition_size"] >= 0
    assert all(p["offset_lag"] == 0 and not p["is_future_key"] for p in sizes.values())
    # Asked for one partition, only that one comes back.
    only = admin.describe_log_dirs({topic: [1]})[0]["log_dirs"][0]["topics"]
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in only] \
        == [(topic, [1])]


def test_idempotent_producer_is_the_default():
    topic = unique("py-idem")
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True, acks="all")
    sent = [producer.send(topic, value=str(i).encode(), partition=0) for i in range(200)]
    producer.flush()
    offsets = [f.get(timeout=10).offset for f in sent]
    producer.close()
    assert offsets == list(range(200))
    got = consume_all(topic, expected=200)
    assert [m.value for m in got] == [str(i).encode() for i in range(200)]


def group_consumer(topic, group):
    return KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, group_id=group,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         session_timeout_ms=6000, heartbeat_interval_ms=200,
                         max_poll_interval_ms=10000)


def poll_values(consumers, seen, until, timeout=30):
    # One thread per consumer: kafka-python 3.0.12 drops a JoinGroup that
    # completed while its consumer was not inside poll() and joins again
    # (base.py join_group_async: `_join_task.is_done` schedules a new one),
    # so consumers polled in turn from one thread rebalance over and over.
    deadline = time.time() + timeout
    lock = threading.Lock()

    def run(consumer):
        while not until() and time.time() < deadline:
            for records in consumer.poll(timeout_ms=100).values():
                with lock:
                    seen.extend(r.value for r in records)

    threads = [threading.Thread(target=run, args=(c,)) for c in consumers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert until(), f"timed out; seen {len(seen)}"


def test_group_consumers_share_partitions_and_resume_from_commits(admin):
    topic = unique("py-group")
    group = unique("py-g")
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    produce(topic, [dict(value=f"a{i}".encode(), partition=i % 4) for i in range(40)])
    a, b = group_consumer(topic, group), group_consumer(topic, group)
    seen = []
    poll_values([a, b], seen, lambda: len(a.assignment()) == 2 and len(b.assignment()) == 2
                and len(set(seen)) == 40)
    assert not (a.assignment() & b.assignment())
    a.commit()
    b.commit()
    a.close()
    b.close()
    produce(topic, [dict(value=f"b{i}".encode(), partition=i % 4) for i in range(10)])
    c = group_consumer(topic, group)
    later = []
    poll_values([c], later, lambda: len(later) >= 10)
    c.close()
    assert sorted(later) == sorted(f"b{i}".encode() for i in range(10))
    listed = admin.list_groups()
    assert group in str(listed)
    admin.delete_groups([group])
    assert group not in str(admin.list_groups())


ACL_BOOTSTRAP = os.environ.get("ACL_BOOTSTRAP")


def test_acl_calls_create_describe_and_delete():
    """KafkaAdminClient's ACL calls against the server with ACLs on (run.sh
    starts it; anonymous clients are its super users)."""
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, ResourcePattern,
                             ResourcePatternFilter, ResourceType)
    assert ACL_BOOTSTRAP, "run.sh exports ACL_BOOTSTRAP"
    client = KafkaAdminClient(bootstrap_servers=ACL_BOOTSTRAP, request_timeout_ms=10000)
    try:
        topic = unique("acl")

        def acl(principal, name, pattern, operation, permission):
            return ACL(principal=principal, host="*", operation=operation,
                       permission_type=permission,
                       resource_pattern=ResourcePattern(ResourceType.TOPIC, name, pattern))

        wanted = [
            acl("User:alice", topic, ACLResourcePatternType.LITERAL, ACLOperation.READ,
                ACLPermissionType.ALLOW),
            acl("User:bob", topic[:4], ACLResourcePatternType.PREFIXED, ACLOperation.WRITE,
                ACLPermissionType.DENY),
        ]
        created = client.create_acls(wanted)
        assert len(created["succeeded"]) == 2 and not created["failed"], created
        bad = ACL(principal="alice", host="*", operation=ACLOperation.READ,
                  permission_type=ACLPermissionType.ALLOW,
                  resource_pattern=ResourcePattern(ResourceType.TOPIC, topic,
                                                   ACLResourcePatternType.LITERAL))
        assert client.create_acls([bad])["failed"], "a principal without its type is refused"

        # MATCH: every binding that applies to the topic.
        match = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                          permission_type=ACLPermissionType.ANY,
                          resource_pattern=ResourcePatternFilter(
                              ResourceType.TOPIC, topic, ACLResourcePatternType.MATCH))
        found, error = client.describe_acls(match)
        assert error is kafka.errors.NoError
        assert sorted(a.principal for a in found) == ["User:alice", "User:bob"], found

        deleted = client.delete_acls([ACLFilter(
            principal="User:bob", host=None, operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                   ACLResourcePatternType.ANY))])
        (_, matched, error), = deleted
        assert error is kafka.errors.NoError
        assert [a.principal for a in matched] == ["User:bob"], matched
        found, _ = client.describe_acls(match)
        assert [a.principal for a in found] == ["User:alice"], found
    finally:
        client.close()


def test_acl_calls_without_an_authorizer_are_security_disabled(admin):
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, ResourcePatternFilter, ResourceType)
    any_acl = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                        permission_type=ACLPermissionType.ANY,
                        resource_pattern=ResourcePatternFilter(
                            ResourceType.ANY, None, ACLResourcePatternType.ANY))
    with pytest.raises(kafka.errors.SecurityDisabledError):
        admin.describe_acls(any_acl)
ADMIN_USER = os.environ.get("FJORD_ADMIN_USER")
ADMIN_PASSWORD = os.environ.get("FJORD_ADMIN_PASSWORD")
needs_admin = pytest.mark.skipif(ADMIN_USER is None, reason="no FJORD_ADMIN_USER (run.sh sets it)")


def sasl(mechanism, user, password):
    return dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                sasl_plain_username=user, sasl_plain_password=password)


@needs_admin
def test_scram_users_produce_and_consume():
    from kafka.admin import UserScramCredentialUpsertion
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000,
                             **sasl("SCRAM-SHA-512", ADMIN_USER, ADMIN_PASSWORD))
    user = unique("py-user")
    errors = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion(user, "SCRAM-SHA-256", "py-secret", iterations=4096),
        UserScramCredentialUpsertion(user, "SCRAM-SHA-512", "py-secret", iterations=8192)])
    assert errors[user] is None, errors
    described = admin.describe_user_scram_credentials([user])[user]
    assert described["error"] is None
    assert sorted(c["iterations"] for c in described["credential_infos"]) == [4096, 8192]
    admin.close()

    topic = unique("py-scram")
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]:
        produce(topic, [dict(value=mechanism.encode(), partition=0)],
                **sasl(mechanism, user, "py-secret"))
    consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, group_id=unique("py-g"),
                             auto_offset_reset="earliest", consumer_timeout_ms=10000,
                             **sasl("SCRAM-SHA-512", user, "py-secret"))
    values = []
    for message in consumer:
        values.append(message.value)
        if len(values) == 3:
            break
    consumer.close()
    assert sorted(values) == [b"PLAIN", b"SCRAM-SHA-256", b"SCRAM-SHA-512"]


@needs_admin
def test_scram_wrong_password_is_refused(caplog):
    from kafka.errors import KafkaError
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_servers=BOOTSTRAP, bootstrap_timeout_ms=5000,
                      **sasl("SCRAM-SHA-512", ADMIN_USER, "wrong"))
    # kafka-python gives up bootstrapping with a timeout, having logged the
    # broker's message (before the broker waited for the client to close
    # first, kafka-python 3.0.12 dropped the answer that came with the end
    # of the stream and logged a lost connection).
    assert "Authentication failed: invalid credentials" in caplog.text
    # The broker serves on.
    assert produce(unique("py-after"), [dict(value=b"x", partition=0)])[0].offset == 0


SSL_BOOTSTRAP = os.environ.get("SSL_BOOTSTRAP")
SSL_CA = os.environ.get("SSL_CA")


@pytest.mark.skipif(not SSL_BOOTSTRAP, reason="run.sh starts the server with an SSL listener")
def test_ssl_produce_and_group_consume():
    # kafka-python over the SSL listener: an idempotent produce, then a
    # group consumer (FindCoordinator must name the SSL endpoint).
    ssl = dict(bootstrap_servers=SSL_BOOTSTRAP, security_protocol="SSL", ssl_cafile=SSL_CA)
    topic = unique("py-ssl")
    producer = KafkaProducer(**ssl)
    for i in range(20):
        producer.send(topic, value=f"v{i}".encode()).get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=unique("py-ssl-g"), auto_offset_reset="earliest",
                             consumer_timeout_ms=10000, **ssl)
    values = [m.value for m in consumer]
    consumer.commit()
    consumer.close()
    assert values == [f"v{i}".encode() for i in range(20)]
    admin = KafkaAdminClient(**ssl)
    host, port = SSL_BOOTSTRAP.rsplit(":", 1)
    brokers = admin.describe_cluster()["brokers"]
    admin.close()
    assert [(b["host"], b["port"]) for b in brokers] == [(host, int(port))]
SASL_BOOTSTRAP = os.environ.get("SASL_BOOTSTRAP")


@pytest.mark.skipif(not (SASL_BOOTSTRAP and os.environ.get("OAUTH_KEY")),
                    reason="run.sh starts the server with a SASL listener and an issuer key")
def test_oauthbearer_produce_group_consume_and_admin():
    try:
        from kafka.net.sasl.oauth import AbstractTokenProvider  # kafka-python 3
    except ImportError:
        from kafka.sasl.oauth import AbstractTokenProvider  # kafka-python 2

    import tokens

    class Provider(AbstractTokenProvider):
        def token(self):
            return tokens.make_token("svc-py", 300)

    settings = dict(bootstrap_servers=SASL_BOOTSTRAP, security_protocol="SASL_PLAINTEXT",
                    sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=Provider())
    topic = unique("py-oauth")
    producer = KafkaProducer(**settings)
    for i in range(10):
        producer.send(topic, value=f"t{i}".encode()).get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=unique("py-oauth-g"), auto_offset_reset="earliest",
                             consumer_timeout_ms=10000, **settings)
    values = [m.value for m in consumer]
    consumer.commit()
    consumer.close()
    assert values == [f"t{i}".encode() for i in range(10)]
    admin = KafkaAdminClient(**settings)
    assert topic in admin.list_topics()
    admin.close()


@needs_admin
def test_a_user_with_a_non_ascii_password_logs_in():
    # kafka-python salts the password as the UTF-8 bytes it is given, and
    # logs in the same way; the broker applies no SASLprep that would change
    # them ("ﬁ" and the no-break space are what SASLprep rewrites).
    from kafka.admin import UserScramCredentialUpsertion
    user, password = unique("py-ünï"), "pässwörd ﬁ\u00a0€"
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000,
                             **sasl("SCRAM-SHA-512", ADMIN_USER, ADMIN_PASSWORD))
    errors = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion(user, "SCRAM-SHA-256", password, iterations=4096),
        UserScramCredentialUpsertion(user, "SCRAM-SHA-512", password, iterations=8192)])
    admin.close()
    assert errors[user] is None, errors
    topic = unique("py-utf8")
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]:
        produce(topic, [dict(value=mechanism.encode(), partition=0)],
                **sasl(mechanism, user, password))
    assert len(consume_all(topic, expected=3)) == 3
