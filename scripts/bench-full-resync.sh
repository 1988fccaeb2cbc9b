#!/usr/bin/env bash
# Full-resync time of a redis-server replica from a Ferrite master and from a redis-server master
# (both diskless with no delay, pinned to core 0), on the same dataset: 1M SETs of 100-byte
# values over 1M random keys (about 632k keys). Three alternating rounds of
# REPLICAOF NO ONE + FLUSHALL + REPLICAOF, each timed until the replica's link is up.
# Usage: FERRITE_BIN=target/release/ferrite scripts/bench-full-resync.sh
set -euo pipefail
F=${FERRITE_BIN:-target/release/ferrite}
F=$(realpath "$F")
WORK=$(mktemp -d /tmp/bench-resync.XXXXXX)
trap 'for p in 7301 7302 7303; do redis-cli -p $p shutdown nosave >/dev/null 2>&1 || true; done; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/f" "$WORK/r" "$WORK/rep"
(cd "$WORK/f" && taskset -c 0 "$F" --port 7301 --threads 1 --repl-diskless-sync-delay 0 --save "" > log 2>&1 &)
sleep 0.5
redis-benchmark -p 7301 -t set -n 1000000 -r 1000000 -d 100 -P 32 -q > /dev/null
redis-cli -p 7301 SAVE > /dev/null
cp "$WORK/f/dump.rdb" "$WORK/r/dump.rdb"
(cd "$WORK/r" && taskset -c 0 redis-server --port 7302 --save '' --repl-diskless-sync-delay 0 --dir . > log 2>&1 &)
(cd "$WORK/rep" && redis-server --port 7303 --save '' > log 2>&1 &)
sleep 2
echo "keys: ferrite $(redis-cli -p 7301 dbsize), redis-server $(redis-cli -p 7302 dbsize)"
sync_time() {
  redis-cli -p 7303 REPLICAOF NO ONE > /dev/null
  redis-cli -p 7303 FLUSHALL > /dev/null
  local t0 t1
  t0=$(date +%s.%N)
  redis-cli -p 7303 REPLICAOF 127.0.0.1 "$1" > /dev/null
  sleep 0.05
  until redis-cli -p 7303 info replication | grep -q master_link_status:up; do sleep 0.01; done
  t1=$(date +%s.%N)
  echo "$2 $(echo "$t1 - $t0" | bc) s"
}
for _ in 1 2 3; do
  sync_time 7301 ferrite
  sync_time 7302 redis-server
done
