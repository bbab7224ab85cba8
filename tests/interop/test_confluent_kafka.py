"""confluent-kafka against a running `fjord server` (run.sh): SASL_SSL with
SCRAM-SHA-512, SASL_PLAINTEXT with PLAIN, SSL with a client certificate and
OAUTHBEARER (tokens from tokens.py), each producing, consuming in a group
and making admin calls; a user with a non-ASCII password (no SASLprep, see
docs/security.md); a bad token refused with its reason. Transactions:
test_confluent_transactions.py."""

import os
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, ConfigResource, ScramCredentialInfo,
                                   ScramMechanism, UserScramCredentialUpsertion)

import tokens

ADMIN_USER = os.environ.get("FJORD_ADMIN_USER")
ADMIN_PASSWORD = os.environ.get("FJORD_ADMIN_PASSWORD")
BOOTSTRAP = os.environ.get("BOOTSTRAP", "127.0.0.1:9092")
SASL_BOOTSTRAP = os.environ.get("SASL_BOOTSTRAP")
SASL_SSL_BOOTSTRAP = os.environ.get("SASL_SSL_BOOTSTRAP")
SSL_BOOTSTRAP = os.environ.get("SSL_BOOTSTRAP")
SSL_CA = os.environ.get("SSL_CA")

pytestmark = pytest.mark.skipif(
    not (SASL_BOOTSTRAP and SASL_SSL_BOOTSTRAP and os.environ.get("OAUTH_KEY")),
    reason="run.sh starts the server with SASL listeners and an issuer key")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def scram_ssl(user=ADMIN_USER, password=ADMIN_PASSWORD):
    return {"bootstrap.servers": SASL_SSL_BOOTSTRAP, "security.protocol": "SASL_SSL",
            "ssl.ca.location": SSL_CA, "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user, "sasl.password": password}


def plain(user=ADMIN_USER, password=ADMIN_PASSWORD):
    return {"bootstrap.servers": SASL_BOOTSTRAP, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": password}


def client_cert():
    return {"bootstrap.servers": SSL_BOOTSTRAP, "security.protocol": "SSL",
            "ssl.ca.location": SSL_CA,
            "ssl.certificate.location": os.environ["SSL_CLIENT_CERT"],
            "ssl.key.location": os.environ["SSL_CLIENT_KEY"]}


def oauth(sub="svc-orders", make=None):
    make = make or (lambda: tokens.make_token(sub, 300))

    def oauth_cb(_config):
        # (token, expiry in seconds since the epoch)
        return make(), time.time() + 300

    return {"bootstrap.servers": SASL_BOOTSTRAP, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER", "oauth_cb": oauth_cb}


def round_trip(settings, n=20):
    """Produce n records, read them in a group, commit, and make admin calls."""
    topic = unique("ck")
    producer = Producer({**settings, "message.timeout.ms": 15000})
    delivered = []
    for i in range(n):
        producer.produce(topic, value=f"v{i}".encode(),
                         on_delivery=lambda err, msg: delivered.append(err))
        producer.poll(0)
    assert producer.flush(20) == 0
    assert delivered == [None] * n, delivered

    consumer = Consumer({**settings, "group.id": unique("ck-g"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    values = []
    deadline = time.time() + 30
    while len(values) < n and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            values.append(msg.value())
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(n))
    consumer.commit(asynchronous=False)
    consumer.close()

    admin = AdminClient(settings)
    admin.poll(0)  # serves oauth_cb, when there is one
    metadata = admin.list_topics(timeout=10)
    assert topic in metadata.topics
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert "cleanup.policy" in configs


def test_sasl_ssl_scram_sha_512():
    round_trip(scram_ssl())


def test_sasl_plaintext_plain():
    round_trip(plain())


def test_ssl_with_a_client_certificate():
    round_trip(client_cert())


def test_oauthbearer():
    round_trip(oauth())


def test_a_non_ascii_password_logs_in():
    # No SASLprep on either side: the password's bytes are what the client
    # salts and what the broker checks. "ﬁ" and the no-break space are what
    # SASLprep would have rewritten.
    user, password = unique("ck-ünï"), "pässwörd ﬁ\u00a0€"
    admin = AdminClient(scram_ssl())
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion(
            user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
            password.encode())])
    for future in futures.values():
        future.result(timeout=10)
    round_trip(scram_ssl(user, password), n=5)
    round_trip(plain(user, password), n=5)


def test_a_bad_token_is_refused_with_its_reason():
    errors = []
    settings = oauth(make=lambda: tokens.make_token("svc-orders", -120))
    producer = Producer({**settings, "error_cb": lambda e: errors.append(str(e))})
    deadline = time.time() + 20
    while time.time() < deadline and not any("expired" in e for e in errors):
        producer.poll(0.2)
    assert any("the token has expired" in e for e in errors), errors
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=2)
    # The broker serves on.
    round_trip(oauth(), n=3)

