# Burrow (Debian's `burrow`, LinkedIn's lag monitor) against the server,
# sourced by run.sh (which defines `check`, $BOOTSTRAP and $data).
#
# Burrow reads committed offsets by consuming `__consumer_offsets` and
# decoding Kafka's key and value schemas, and the partitions' end offsets
# with ListOffsets; its HTTP API then reports each group's lag. Burrow 1.2
# keeps its own state in ZooKeeper, so a ZooKeeper (Debian's `zookeeper`)
# runs beside it for the check.

burrow_zk_port="${FJORD_INTEROP_ZK_PORT:-19181}"
burrow_http_port="${FJORD_INTEROP_BURROW_PORT:-19800}"
burrow_pids=()

stop_burrow() {
  [ "${#burrow_pids[@]}" -gt 0 ] || return 0
  kill "${burrow_pids[@]}" 2>/dev/null
  wait "${burrow_pids[@]}" 2>/dev/null
  burrow_pids=()
}

# Waits up to 20 s for a TCP port on 127.0.0.1.
wait_for_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on port $1"; return 1
}

start_burrow() {
  local dir="$data/burrow"
  mkdir -p "$dir/zk"
  java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
    -Dzookeeper.admin.enableServer=false \
    org.apache.zookeeper.server.ZooKeeperServerMain "$burrow_zk_port" "$dir/zk" \
    >"$dir/zookeeper.log" 2>&1 &
  burrow_pids+=($!)
  # ZooKeeper listens before it serves: wait for its `srvr` answer.
  local zk_ready=""
  for _ in $(seq 1 200); do
    # (bounded: a ZooKeeper still starting may hold the connection open)
    zk_ready="$(timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && cat <&3' _ "$burrow_zk_port" 2>/dev/null)"
    case "$zk_ready" in *"Mode: standalone"*) break ;; esac
    sleep 0.1
  done
  case "$zk_ready" in *"Mode: standalone"*) ;; *) echo "ZooKeeper did not start: $zk_ready"; return 1 ;; esac
  # Refreshing every second keeps the check short; `kafka-version` picks
  # the request versions of Burrow's Sarama.
  cat >"$dir/burrow.toml" <<TOML
[general]
pidfile="$dir/burrow.pid"
[logging]
level="info"
[zookeeper]
servers=["127.0.0.1:$burrow_zk_port"]
timeout=6
root-path="/burrow"
[client-profile.fjord]
client-id="burrow-interop"
kafka-version="2.1.0"
[cluster.fjord]
class-name="kafka"
servers=["$BOOTSTRAP"]
client-profile="fjord"
topic-refresh=1
offset-refresh=1
[consumer.fjord]
class-name="kafka"
cluster="fjord"
servers=["$BOOTSTRAP"]
client-profile="fjord"
# Lag answers are cached for 10 s by default: 1 s keeps the check short.
[evaluator.default]
class-name="caching"
expire-cache=1
[httpserver.default]
address="127.0.0.1:$burrow_http_port"
[storage.default]
class-name="inmemory"
workers=2
intervals=10
min-distance=1
TOML
  Burrow --config-dir "$dir" >"$dir/burrow.log" 2>&1 &
  burrow_pids+=($!)
  wait_for_port "$burrow_http_port"
}

# Burrow's log without its once-per-poll "not found" lines (the check's
# own questions before Burrow has read the commit): what it read and any
# consume errors.
burrow_log_tail() {
  grep -v 'unknown consumer\|consumer not found' "$data/burrow/burrow.log" | tail -30
}

# Commits `offset` on partition 0 of `topic` for `group` (confluent-kafka).
commit_offset() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys
from confluent_kafka import Consumer, TopicPartition
group, topic, offset = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = Consumer({"bootstrap.servers": os.environ["BOOTSTRAP"], "group.id": group})
c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
c.close()
PY
}

# Polls Burrow's lag of `group` until its total lag is `want`, for up to
# `$3` seconds (default 20).
burrow_lag_is() {
  local group="$1" want="$2" body=""
  for _ in $(seq 1 $((${3:-20} * 5))); do
    body="$(curl -s -m 5 "127.0.0.1:$burrow_http_port/v3/kafka/fjord/consumer/$group/lag")"
    if python3 -c 'import json,sys; s=json.loads(sys.argv[1])["status"]; sys.exit(0 if s["totallag"]==int(sys.argv[2]) and s["partitions"] else 1)' \
      "$body" "$want" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "Burrow never reported a lag of $want for $group: $body"; return 1
}

# Waits up to `$2` seconds for Burrow to list `topic` with end offsets `$3`
# (a JSON list, e.g. `[10]`).
burrow_topic_offsets_are() {
  local topic="$1" want="$3" body=""
  for _ in $(seq 1 $(($2 * 5))); do
    body="$(curl -s -m 5 "127.0.0.1:$burrow_http_port/v3/kafka/fjord/topic/$topic")"
    case "$body" in *"\"offsets\":$want"*) return 0 ;; esac
    sleep 0.2
  done
  echo "Burrow never listed $topic with offsets $want: $body"; return 1
}

burrow_reports_group_lag() {
  local topic="burrow-lag-$RANDOM" group="burrow-group-$RANDOM"
  start_burrow || { burrow_log_tail; return 1; }
  seq 1 10 | kcat -b "$BOOTSTRAP" -P -t "$topic" -p 0 || return 1
  # Burrow drops, for good, a commit it reads for a topic its cluster
  # module has not listed yet (storage/inmemory.go: "no topic"): it counts
  # on consumers that commit again and again. This check commits once, so
  # it commits only after Burrow lists the topic with its end offset.
  burrow_topic_offsets_are "$topic" 60 '[10]' || { burrow_log_tail; return 1; }
  commit_offset "$group" "$topic" 4 || return 1
  # Its first sight of the commit can take long: Burrow starts one Sarama
  # consumer per partition of `__consumer_offsets` (50), one after the
  # other, and each start asks ListOffsets on the connection that also
  # carries the running Fetch, which waits its 250 ms max_wait on empty
  # partitions first (one request at a time per connection, as in Kafka).
  # The group's partition is read some 0.3 s × its number after Burrow
  # starts, longer on a busy machine; once reading, Burrow sees a commit at
  # once (the 20 s below).
  burrow_lag_is "$group" 6 90 || { burrow_log_tail; return 1; }
  curl -s -m 5 "127.0.0.1:$burrow_http_port/v3/kafka/fjord/consumer" | grep "\"$group\"" >/dev/null || return 1
  # A later commit and more records move the lag: 15 records, committed 13.
  seq 11 15 | kcat -b "$BOOTSTRAP" -P -t "$topic" -p 0 || return 1
  burrow_topic_offsets_are "$topic" 20 '[15]' || return 1
  commit_offset "$group" "$topic" 13 || return 1
  burrow_lag_is "$group" 2
}

run_burrow_checks() {
  echo "--- burrow"
  check "burrow reports a group's lag" burrow_reports_group_lag
  stop_burrow
}
