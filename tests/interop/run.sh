#!/usr/bin/env bash
# Interop tests: a real `fjord server` process driven by unmodified clients,
# kcat (librdkafka's CLI), kafka-python, aiokafka, confluent-kafka (also
# with KIP-848), @platformatic/kafka and kafkajs (node), Sarama and kafka-go
# (Debian's Go packages), Burrow, syslog-ng's Kafka destination, and the
# web console in headless Chromium (over the admin listener). Prints
# "N passed, N failed".
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

# scripts/test passes the binary `cargo test --workspace` just built: a
# `cargo build -p fjord-cli` resolves other features, so it would compile
# the binary and much of its dependency graph a second time.
fjord="${FJORD_BIN:-}"
if [ -z "$fjord" ]; then
  cargo build --quiet --locked -p fjord-cli || exit 1
  fjord="${CARGO_TARGET_DIR:-$root/target}/debug/fjord"
fi
[ -x "$fjord" ] || { echo "no fjord binary at $fjord"; exit 1; }
data="$(mktemp -d)"
port="${FJORD_INTEROP_PORT:-19092}"
ssl_port="${FJORD_INTEROP_SSL_PORT:-19093}"
admin_port="${FJORD_INTEROP_ADMIN_PORT:-19644}"
sasl_port="${FJORD_INTEROP_SASL_PORT:-19095}"
sasl_ssl_port="${FJORD_INTEROP_SASL_SSL_PORT:-19096}"
export BOOTSTRAP="127.0.0.1:$port"
export SSL_BOOTSTRAP="127.0.0.1:$ssl_port"
export ADMIN="127.0.0.1:$admin_port"
export SASL_BOOTSTRAP="127.0.0.1:$sasl_port"
export SASL_SSL_BOOTSTRAP="127.0.0.1:$sasl_ssl_port"

# The first admin user (SCRAM and PLAIN logins in test_kafka_python.py).
export FJORD_ADMIN_USER=interop-admin FJORD_ADMIN_PASSWORD="interop-$RANDOM$RANDOM"
# An SSL listener beside the PLAINTEXT one: a CA and a broker certificate
# for 127.0.0.1, made here with openssl (docs/security.md, step by step).
export SSL_CA="$data/ca.pem"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=interop-ca \
  -keyout "$data/ca.key" -out "$SSL_CA" 2>/dev/null || exit 1
openssl req -newkey rsa:2048 -nodes -subj /CN=interop-broker \
  -keyout "$data/broker.key" -out "$data/broker.csr" 2>/dev/null || exit 1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$data/san.ext"
openssl x509 -req -in "$data/broker.csr" -CA "$SSL_CA" -CAkey "$data/ca.key" \
  -CAcreateserial -days 2 -extfile "$data/san.ext" -out "$data/broker.crt" 2>/dev/null || exit 1
cat "$data/broker.crt" "$data/broker.key" >"$data/broker.pem"
# A client certificate for the SSL listener, which asks for one
# (ssl.client.auth: requested; clients without one are served too).
export SSL_CLIENT_CERT="$data/client.crt" SSL_CLIENT_KEY="$data/client.key"
openssl req -newkey rsa:2048 -nodes -subj /CN=interop-client \
  -keyout "$SSL_CLIENT_KEY" -out "$data/client.csr" 2>/dev/null || exit 1
# (an extension makes it X.509 v3, which rustls's verifier requires)
printf 'extendedKeyUsage=clientAuth\n' >"$data/client.ext"
openssl x509 -req -in "$data/client.csr" -CA "$SSL_CA" -CAkey "$data/ca.key" \
  -CAcreateserial -days 2 -extfile "$data/client.ext" -out "$SSL_CLIENT_CERT" 2>/dev/null || exit 1
# OAUTHBEARER: an issuer's key, and the JWKS the broker trusts; tokens.py
# signs tokens with the key (openssl).
export OAUTH_KEY="$data/issuer.key"
openssl genrsa -out "$OAUTH_KEY" 2048 2>/dev/null || exit 1
python3 "$here/tokens.py" jwks "$OAUTH_KEY" "$data/jwks.json" || exit 1
cat >"$data/fjord.yaml" <<YAML
ssl.keystore.location: $data/broker.pem
listener.name.ssl.ssl.client.auth: requested
listener.name.ssl.ssl.truststore.location: $SSL_CA
sasl.oauthbearer.jwks.endpoint.url: file://$data/jwks.json
sasl.oauthbearer.expected.audience: fjord
sasl.oauthbearer.expected.issuer: https://idp.interop.test/realms/kafka
# The admin user makes the admin API require a login by default; this
# server's console and API suites run without one (the login is tested on
# the ACL server below).
admin.api.require.auth: false
# KIP-848 members (test_kip848.py) heartbeat this often (Kafka: 5000), so
# reconciliations take a fraction of a second.
group.consumer.heartbeat.interval.ms: 500
# (below Kafka's lowest allowed interval, 5000, so the bound comes down too)
group.consumer.min.heartbeat.interval.ms: 500
# Transactions left open past their transaction.timeout.ms (2 s in the
# tests) are looked for this often (Kafka: 10000), so they are aborted
# within a fraction of a second of it.
transaction.abort.timed.out.transaction.cleanup.interval.ms: 500
YAML

"$fjord" server --config "$data/fjord.yaml" --data-dir "$data" \
  --listeners "PLAINTEXT://$BOOTSTRAP,SSL://$SSL_BOOTSTRAP,SASL_PLAINTEXT://$SASL_BOOTSTRAP,SASL_SSL://$SASL_SSL_BOOTSTRAP" \
  --admin-listen "$ADMIN" \
  >"$data/server.log" 2>&1 &
server=$!
# A second server with ACLs on, for the clients' ACL calls; anonymous
# clients are its super users (docs/security.md, "Creating the first
# bindings").
# Its admin API is HTTPS with the same certificate and, with the
# authorizer on, requires a login: the console's login form is tested there
# (test_console_login.py).
acl_port="${FJORD_INTEROP_ACL_PORT:-19094}"
secure_admin_port="${FJORD_INTEROP_SECURE_ADMIN_PORT:-19645}"
export ACL_BOOTSTRAP="127.0.0.1:$acl_port"
export SECURE_ADMIN="127.0.0.1:$secure_admin_port"
mkdir -p "$data/acl"
printf 'authorizer.class.name: acl\nsuper.users: User:ANONYMOUS\nadmin.ssl.keystore.location: %s\n' \
  "$data/broker.pem" >"$data/acl.yaml"
"$fjord" server --config "$data/acl.yaml" --data-dir "$data/acl" --listen "$ACL_BOOTSTRAP" \
  --admin-listen "$SECURE_ADMIN" >"$data/acl-server.log" 2>&1 &
acl_server=$!
# shellcheck source=burrow_checks.bash
source "$here/burrow_checks.bash"
# shellcheck source=syslog_ng_checks.bash
source "$here/syslog_ng_checks.bash"
cleanup() {
  stop_burrow
  stop_syslog_ng
  kill "$server" "$acl_server" 2>/dev/null
  wait "$server" "$acl_server" 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT

for p in "$port" "$ssl_port" "$admin_port" "$acl_port" "$secure_admin_port" "$sasl_port" "$sasl_ssl_port"; do
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then break; fi
    sleep 0.1
  done
done

passed=0
failed=0
check() {
  local name="$1"; shift
  if "$@"; then
    echo "ok     $name"; passed=$((passed + 1))
  else
    echo "FAILED $name"; failed=$((failed + 1))
  fi
}

# shellcheck source=kcat_checks.bash
source "$here/kcat_checks.bash"
run_kcat_checks

echo "--- kafka-python"
if python3 -m pytest -q "$here/test_kafka_python.py"; then
  passed=$((passed + 1)); echo "ok     kafka-python suite"
else
  failed=$((failed + 1)); echo "FAILED kafka-python suite"
fi

echo "--- kafka-python transactions"
if python3 -m pytest -q "$here/test_kafka_python_transactions.py"; then
  passed=$((passed + 1)); echo "ok     kafka-python transactions suite"
else
  failed=$((failed + 1)); echo "FAILED kafka-python transactions suite"
fi

# aiokafka: static membership on the older request versions it sends, and
# transactions.
echo "--- aiokafka"
if python3 -m pytest -q "$here/test_aiokafka.py"; then
  passed=$((passed + 1)); echo "ok     aiokafka suite"
else
  failed=$((failed + 1)); echo "FAILED aiokafka suite"
fi

# confluent-kafka (librdkafka inside): every security protocol, OAUTHBEARER
# included.
echo "--- confluent-kafka"
if python3 -m pytest -q "$here/test_confluent_kafka.py"; then
  passed=$((passed + 1)); echo "ok     confluent-kafka suite"
else
  failed=$((failed + 1)); echo "FAILED confluent-kafka suite"
fi

# Transactions with confluent-kafka, and a consume-transform-produce loop
# killed with SIGKILL $TXN_KILLS times (default 10) that must still write
# each result once (txn_loop.py).
echo "--- confluent-kafka transactions"
if python3 -m pytest -q "$here/test_confluent_transactions.py"; then
  passed=$((passed + 1)); echo "ok     confluent-kafka transactions suite"
else
  failed=$((failed + 1)); echo "FAILED confluent-kafka transactions suite"
fi

# The same loop in a three-node cluster that the test starts itself from
# this binary (ports from $FJORD_INTEROP_CLUSTER_PORT, default 19110, six
# of them): killed $TXN_CLUSTER_KILLS times (default 5, about 60 s) while
# each time a broker (the transaction coordinator's, the group
# coordinator's, a partition leader) is killed with SIGKILL and restarted.
echo "--- confluent-kafka transactions, three-node cluster"
if FJORD_BIN="$fjord" python3 -m pytest -q "$here/test_confluent_transactions_cluster.py"; then
  passed=$((passed + 1)); echo "ok     confluent-kafka cluster transactions suite"
else
  failed=$((failed + 1)); echo "FAILED confluent-kafka cluster transactions suite"
fi

# @platformatic/kafka (npm; node's test runner): admin, producer and a
# consumer group; it fetches by topic id (Fetch v13+; offered only Fetch
# v12 it reads nothing). Pinned at 1.35.0, the last release for Node.js 20
# (2.x needs 22). `.ci/run` installs it with
# `npm ci --prefix tests/interop/platformatic`; not installed is a failure.
echo "--- @platformatic/kafka"
if [ ! -d "$here/platformatic/node_modules/@platformatic/kafka" ]; then
  failed=$((failed + 1)); echo "FAILED @platformatic/kafka suite (run: npm ci --prefix tests/interop/platformatic)"
elif (cd "$here/platformatic" && node --test); then
  passed=$((passed + 1)); echo "ok     @platformatic/kafka suite"
else
  failed=$((failed + 1)); echo "FAILED @platformatic/kafka suite"
fi

# KIP-848: confluent-kafka with group.protocol=consumer.
echo "--- confluent-kafka, group.protocol=consumer"
if python3 -m pytest -q "$here/test_kip848.py"; then
  passed=$((passed + 1)); echo "ok     KIP-848 suite"
else
  failed=$((failed + 1)); echo "FAILED KIP-848 suite"
fi

# kafkajs (npm, the version pinned in kafkajs/package-lock.json): `npm ci`
# installs it into tests/interop/kafkajs/node_modules (not committed).
echo "--- kafkajs"
if (cd "$here/kafkajs" && npm ci --silent --no-audit --no-fund && npm test --silent); then
  passed=$((passed + 1)); echo "ok     kafkajs suite"
else
  failed=$((failed + 1)); echo "FAILED kafkajs suite"
fi

# Sarama and kafka-go from Debian's packages (golang-github-shopify-sarama-dev,
# golang-github-segmentio-kafka-go-dev), built in GOPATH mode against their
# sources in /usr/share/gocode.
echo "--- Go: Sarama and kafka-go"
gopath="$data/gopath"
mkdir -p "$gopath/src/fjord-interop"
cp -r "$here/go/." "$gopath/src/fjord-interop/"
if (cd "$gopath/src/fjord-interop" && GO111MODULE=off GOFLAGS= GOPATH="$gopath:/usr/share/gocode" \
  CGO_CFLAGS="-O2 -Wno-deprecated-declarations" go test -count=1 -timeout 120s ./...); then
  passed=$((passed + 1)); echo "ok     go suite"
else
  failed=$((failed + 1)); echo "FAILED go suite"
fi

run_burrow_checks
run_syslog_ng_checks

# The web console in headless Chromium (needs `apt-get install chromium` and
# `pip install 'playwright==1.*'`); screenshots go to $SCREENSHOTS.
echo "--- console (playwright)"
if python3 -m pytest -q "$here/test_console.py"; then
  passed=$((passed + 1)); echo "ok     console suite"
else
  failed=$((failed + 1)); echo "FAILED console suite"
fi

echo "--- console login (playwright, HTTPS)"
if python3 -m pytest -q "$here/test_console_login.py"; then
  passed=$((passed + 1)); echo "ok     console login suite"
else
  failed=$((failed + 1)); echo "FAILED console login suite"
fi

if [ "$failed" -gt 0 ]; then
  echo "--- server log (tail)"; tail -50 "$data/server.log"
fi
echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
