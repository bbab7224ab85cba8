# syslog-ng's Kafka destination (`kafka-c`, librdkafka inside; Debian's
# `syslog-ng-mod-rdkafka`) feeding the log-aggregation sample, sourced by
# run.sh (which defines `check`, $fjord, $BOOTSTRAP, $ADMIN and $data).
#
# syslog-ng receives RFC 3164 lines over TCP and writes each as one record
# to `logs.raw`, formatted as a syslog line again (`<PRI>` included, which
# the sample's `parse` step needs for `level`). The sample pipeline
# (pipelines/log-aggregation.yaml) parses the records into JSON and routes
# them: everything to `logs.all`, errors also to `alerts`.

syslog_ng_port="${FJORD_INTEROP_SYSLOG_NG_PORT:-19514}"
syslog_ng_pid=""

stop_syslog_ng() {
  [ -n "$syslog_ng_pid" ] || return 0
  kill "$syslog_ng_pid" 2>/dev/null
  wait "$syslog_ng_pid" 2>/dev/null
  syslog_ng_pid=""
}

start_syslog_ng() {
  local dir="$data/syslog-ng"
  mkdir -p "$dir"
  cat >"$dir/syslog-ng.conf" <<CONF
@version: 3.38
options { chain-hostnames(no); keep-hostname(yes); stats_freq(0); };
source s_tcp { network(ip("127.0.0.1") port($syslog_ng_port) transport("tcp")); };
destination d_fjord {
  kafka-c(
    bootstrap-servers("$BOOTSTRAP")
    topic("logs.raw")
    key("\${HOST}")
    message("<\${PRI}>\${DATE} \${HOST} \${MSGHDR}\${MSG}")
    config("linger.ms" => "5")
  );
};
log { source(s_tcp); destination(d_fjord); };
CONF
  syslog-ng -F --no-caps -f "$dir/syslog-ng.conf" --persist-file="$dir/persist" \
    --pidfile="$dir/pid" --control="$dir/ctl" >"$dir/syslog-ng.log" 2>&1 &
  syslog_ng_pid=$!
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$syslog_ng_port") 2>/dev/null; then return 0; fi
    kill -0 "$syslog_ng_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "syslog-ng did not start:"; cat "$dir/syslog-ng.log"; return 1
}

# Reads `topic` from the beginning until it holds `n` records (20 s),
# printing them.
consume_n() {
  local topic="$1" n="$2" out=""
  for _ in $(seq 1 100); do
    out="$(kcat -b "$BOOTSTRAP" -C -t "$topic" -o beginning -e -q 2>/dev/null)"
    if [ -n "$out" ] && [ "$(printf '%s\n' "$out" | wc -l)" -ge "$n" ]; then
      printf '%s\n' "$out"; return 0
    fi
    sleep 0.2
  done
  echo "$topic has not $n records: $out" >&2; return 1
}

syslog_ng_feeds_the_log_aggregation_sample() {
  # The sample's topics and pipeline, deployed over the admin API.
  "$fjord" topic create logs.raw --partitions 2 -b "$BOOTSTRAP" >/dev/null || return 1
  curl -sf -m 10 -XPOST "http://$ADMIN/api/v1/pipelines" -H 'Content-Type: application/yaml' \
    --data-binary @pipelines/log-aggregation.yaml >/dev/null || { echo "deploying the pipeline failed"; return 1; }
  start_syslog_ng || return 1
  # user.info (14), user.notice (13), user.err (11); newline-framed TCP.
  {
    printf '<14>Dec  7 10:00:01 web01 nginx[101]: GET /index.html done\n'
    printf '<13>Dec  7 10:00:02 web01 cron[202]: job started\n'
    printf '<11>Dec  7 10:00:03 db01 postgres[303]: disk full\n'
  } >"/dev/tcp/127.0.0.1/$syslog_ng_port" || return 1

  local raw all alerts
  raw="$(consume_n logs.raw 3)" || { cat "$data/syslog-ng/syslog-ng.log"; return 1; }
  printf '%s\n' "$raw" | grep -x '<11>Dec  7 10:00:03 db01 postgres\[303\]: disk full' >/dev/null \
    || { echo "logs.raw: $raw"; return 1; }
  all="$(consume_n logs.all 3)" || return 1
  alerts="$(consume_n alerts 1)" || return 1
  python3 - "$all" "$alerts" <<'PY'
import json, sys
all_ = sorted((json.loads(l) for l in sys.argv[1].splitlines()), key=lambda r: r["app"])
alerts = [json.loads(l) for l in sys.argv[2].splitlines()]
got = [(r["hostname"], r["app"], r["procid"], r["level"], r["message"]) for r in all_]
want = [
    ("web01", "cron", "202", "notice", "job started"),
    ("web01", "nginx", "101", "info", "GET /index.html done"),
    ("db01", "postgres", "303", "error", "disk full"),
]
assert got == want, got
assert [(r["app"], r["message"]) for r in alerts] == [("postgres", "disk full")], alerts
PY
}

run_syslog_ng_checks() {
  echo "--- syslog-ng (kafka-c destination) into the log-aggregation sample"
  check "syslog-ng feeds logs.raw and the log-aggregation sample" syslog_ng_feeds_the_log_aggregation_sample
  stop_syslog_ng
  # The later suites (the console's) see no sample pipeline.
  curl -s -m 10 -XDELETE -H "Content-Type: application/json" "http://$ADMIN/api/v1/pipelines/log-aggregation" >/dev/null
}
