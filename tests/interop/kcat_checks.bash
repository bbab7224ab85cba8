# kcat checks, sourced by run.sh (which defines `check`, $BOOTSTRAP, and the
# SSL listener's $SSL_BOOTSTRAP with its CA, $SSL_CA).

kcat_metadata_lists_broker() {
  kcat -b "$BOOTSTRAP" -L -m 5 | grep "broker 0 at 127.0.0.1" >/dev/null
}

kcat_produce_then_consume_from_beginning() {
  local topic="kcat-roundtrip"
  printf 'k1:v1\nk2:v2\nk3:v3\n' | kcat -b "$BOOTSTRAP" -P -t "$topic" -K: -p 0 || return 1
  local got
  got="$(kcat -b "$BOOTSTRAP" -C -t "$topic" -o beginning -e -q -f '%k=%s@%o\n')" || return 1
  [ "$got" = "$(printf 'k1=v1@0\nk2=v2@1\nk3=v3@2')" ] || { echo "got: $got"; return 1; }
}

kcat_consume_by_offset() {
  local got
  got="$(kcat -b "$BOOTSTRAP" -C -t kcat-roundtrip -p 0 -o 1 -e -q -f '%s\n')" || return 1
  [ "$got" = "$(printf 'v2\nv3')" ] || { echo "got: $got"; return 1; }
}

kcat_compressed_produce() {
  local topic="kcat-compressed" codec
  for codec in gzip snappy lz4 zstd; do
    seq 1 1000 | kcat -b "$BOOTSTRAP" -P -t "$topic" -p 0 -z "$codec" || return 1
  done
  local count
  count="$(kcat -b "$BOOTSTRAP" -C -t "$topic" -o beginning -e -q | wc -l)"
  [ "$count" -eq 4000 ] || { echo "consumed $count records"; return 1; }
  # The batches are stored compressed: Debian's kcat (librdkafka 2.0.2)
  # sends gzip, snappy and lz4 uncompressed ("not compressing batch") to a
  # broker whose lowest advertised Produce version is above 0.
  local plain size
  compressible() { for i in $(seq 1 1000); do echo "log line $i: the same words again and again and again"; done; }
  compressible | kcat -b "$BOOTSTRAP" -P -t "kcat-codec-none" -p 0 || return 1
  plain="$(stat -c %s "$data"/kcat-codec-none-0/*.log)"
  for codec in gzip snappy lz4 zstd; do
    compressible | kcat -b "$BOOTSTRAP" -P -t "kcat-codec-$codec" -p 0 -z "$codec" || return 1
    size="$(stat -c %s "$data"/kcat-codec-"$codec"-0/*.log)"
    [ $((size * 2)) -lt "$plain" ] || { echo "$codec: $size bytes stored, uncompressed $plain"; return 1; }
  done
}

kcat_headers_roundtrip() {
  local topic="kcat-headers"
  echo "payload" | kcat -b "$BOOTSTRAP" -P -t "$topic" -H "trace=abc" -H "env=ci" || return 1
  local got
  got="$(kcat -b "$BOOTSTRAP" -C -t "$topic" -o beginning -e -q -f '%h %s\n')" || return 1
  [ "$got" = "trace=abc,env=ci payload" ] || { echo "got: $got"; return 1; }
}

fjord_cli_roundtrip() {
  local topic="cli-roundtrip"
  "$fjord" topic create "$topic" --partitions 3 -b "$BOOTSTRAP" >/dev/null || return 1
  "$fjord" topic list -b "$BOOTSTRAP" | grep -x "$topic" >/dev/null || return 1
  printf 'a:1\nb:2\n' | "$fjord" produce "$topic" --key-separator : --partition 1 -b "$BOOTSTRAP" 2>/dev/null || return 1
  local got
  got="$("$fjord" consume "$topic" --from-beginning --format '{partition}/{offset} {key}={value}' -b "$BOOTSTRAP" 2>/dev/null)" || return 1
  [ "$got" = "$(printf '1/0 a=1\n1/1 b=2')" ] || { echo "got: $got"; return 1; }
  "$fjord" topic describe "$topic" -b "$BOOTSTRAP" | grep "partitions: 3" >/dev/null || return 1
  "$fjord" topic delete "$topic" -b "$BOOTSTRAP" >/dev/null || return 1
}

fjord_cli_groups() {
  local topic="cli-groups" group="cli-g" got
  "$fjord" topic create "$topic" --partitions 2 -b "$BOOTSTRAP" >/dev/null || return 1
  seq 1 20 | "$fjord" produce "$topic" --partition 0 -b "$BOOTSTRAP" 2>/dev/null || return 1
  seq 21 30 | "$fjord" produce "$topic" --partition 1 -b "$BOOTSTRAP" 2>/dev/null || return 1
  # A group member reads 12 records and commits; the next one reads the rest.
  got="$("$fjord" consume "$topic" --group "$group" -n 12 -b "$BOOTSTRAP" 2>/dev/null | wc -l)"
  [ "$got" -eq 12 ] || { echo "first member read $got"; return 1; }
  got="$("$fjord" consume "$topic" --group "$group" -b "$BOOTSTRAP" 2>/dev/null | wc -l)"
  [ "$got" -eq 18 ] || { echo "second member read $got"; return 1; }
  "$fjord" group list -b "$BOOTSTRAP" | grep -E "^$group +Empty" >/dev/null || return 1
  got="$("$fjord" group describe "$group" -b "$BOOTSTRAP")" || return 1
  echo "$got" | grep -E "^$topic +0 +20 +20 +0 " >/dev/null || { echo "$got"; return 1; }
  "$fjord" group reset-offsets "$group" --topic "$topic" --to-offset 15 -b "$BOOTSTRAP" >/dev/null || return 1
  got="$("$fjord" group describe "$group" -b "$BOOTSTRAP")"
  echo "$got" | grep -E "^$topic +0 +15 +20 +5 " >/dev/null || { echo "$got"; return 1; }
  "$fjord" group reset-offsets "$group" --topic "$topic" --to-earliest -b "$BOOTSTRAP" >/dev/null || return 1
  got="$("$fjord" consume "$topic" --group "$group" -b "$BOOTSTRAP" 2>/dev/null | wc -l)"
  [ "$got" -eq 30 ] || { echo "after reset read $got"; return 1; }
  "$fjord" group reset-offsets "$group" --topic "$topic" --to-latest -b "$BOOTSTRAP" >/dev/null || return 1
  "$fjord" group reset-offsets "$group" --topic "$topic" --to-datetime 2000-01-01T00:00:00Z -b "$BOOTSTRAP" >/dev/null || return 1
  "$fjord" group describe "$group" -b "$BOOTSTRAP" | grep -E "^$topic +1 +0 +10 +10 " >/dev/null || return 1
  "$fjord" group delete "$group" -b "$BOOTSTRAP" >/dev/null || return 1
  ! "$fjord" group list -b "$BOOTSTRAP" | grep -E "^$group " >/dev/null
}

fjord_cli_trim() {
  local topic="cli-trim"
  seq 0 99 | "$fjord" produce "$topic" --partition 0 -b "$BOOTSTRAP" 2>/dev/null || return 1
  "$fjord" topic trim "$topic" --partition 0 --before 40 -b "$BOOTSTRAP" >/dev/null || return 1
  local first
  first="$(kcat -b "$BOOTSTRAP" -C -t "$topic" -p 0 -o beginning -e -q -f '%o %s\n' | head -1)"
  [ "$first" = "40 40" ] || { echo "first record after trim: $first"; return 1; }
  # Trimming past the end is refused with a clear error.
  if "$fjord" topic trim "$topic" --partition 0 --before 1000 -b "$BOOTSTRAP" >/dev/null 2>&1; then
    echo "trim past the end succeeded"; return 1
  fi
}

kcat_over_ssl() {
  local topic="kcat-ssl" got
  local ssl=(-X security.protocol=ssl -X "ssl.ca.location=$SSL_CA")
  # The SSL listener advertises itself, not the PLAINTEXT port.
  kcat -b "$SSL_BOOTSTRAP" "${ssl[@]}" -L -m 5 | grep "broker 0 at $SSL_BOOTSTRAP" >/dev/null \
    || { echo "metadata over SSL does not name the SSL listener"; return 1; }
  printf 'k1:v1\nk2:v2\n' | kcat -b "$SSL_BOOTSTRAP" "${ssl[@]}" -P -t "$topic" -K: -p 0 || return 1
  got="$(kcat -b "$SSL_BOOTSTRAP" "${ssl[@]}" -C -t "$topic" -o beginning -e -q -f '%k=%s\n')" || return 1
  [ "$got" = "$(printf 'k1=v1\nk2=v2')" ] || { echo "got: $got"; return 1; }
  # kcat speaking plaintext to the SSL port gets nothing, and the broker
  # serves on.
  if kcat -b "$SSL_BOOTSTRAP" -L -m 2 >/dev/null 2>&1; then
    echo "plaintext metadata on the SSL port succeeded"; return 1
  fi
  kcat -b "$SSL_BOOTSTRAP" "${ssl[@]}" -L -m 5 >/dev/null || return 1
}

run_kcat_checks() {
  echo "--- kcat"
  check "kcat over SSL: metadata, produce, consume; plaintext refused" kcat_over_ssl
  check "kcat metadata lists the broker" kcat_metadata_lists_broker
  check "kcat produce, consume from beginning" kcat_produce_then_consume_from_beginning
  check "kcat consume by offset" kcat_consume_by_offset
  check "kcat compressed produce (gzip, snappy, lz4, zstd)" kcat_compressed_produce
  check "kcat headers round trip" kcat_headers_roundtrip
  echo "--- fjord CLI"
  check "fjord topic create/list/describe/delete, produce, consume" fjord_cli_roundtrip
  check "fjord consume --group, group list/describe/reset-offsets/delete" fjord_cli_groups
  check "fjord topic trim (DeleteRecords), kcat sees the new start" fjord_cli_trim
}
