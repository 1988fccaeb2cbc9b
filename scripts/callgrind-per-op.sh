#!/usr/bin/env bash
# User-space instructions per command, exact (valgrind callgrind), for Ferrite or redis-server:
# the harness behind the instruction tables in docs/BENCHMARKS.md.
#
#   scripts/callgrind-per-op.sh ferrite -t get
#   scripts/callgrind-per-op.sh redis -t set
#   SETUP="return redis.call('get',KEYS[1])" scripts/callgrind-per-op.sh ferrite \
#       evalsha fd758d1589d044dd850a6f05d52f2eefd27f033f 1 key
#
# The server runs under `valgrind --tool=callgrind --instr-atstart=no` (Ferrite with
# `--threads 1`, both with `--save ""`); `SET key 7`, then SETUP (a script body to SCRIPT
# LOAD), 5000 warm-up requests, `callgrind_control -i on`, 20000 requests
# (`redis-benchmark -c 50 -P 16` with the arguments given), `-i off`, a dump; prints the dump's
# instruction total / 20000.
#
# Environment: FERRITE_BIN (target/release/ferrite), SERVER_ARGS (extra server arguments),
# SETUP, OUT (/tmp/callgrind-per-op).
set -euo pipefail
kind=${1:?ferrite or redis}
shift
[ $# -gt 0 ] || { echo "usage: $0 ferrite|redis <redis-benchmark arguments>" >&2; exit 2; }
for tool in valgrind callgrind_control redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done
port=$((20000 + RANDOM % 20000))
out=${OUT:-/tmp/callgrind-per-op}
mkdir -p "$out"
file="$out/$kind.$port.out"
case $kind in
    ferrite) cmd=("${FERRITE_BIN:-target/release/ferrite}" --port "$port" --threads 1 --save "") ;;
    redis) cmd=(redis-server --port "$port" --save "") ;;
    *) echo "ferrite or redis, not $kind" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$file" \
    "${cmd[@]}" ${SERVER_ARGS:-} >"$out/$kind.$port.log" 2>&1 &
vpid=$!
trap 'kill $vpid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    redis-cli -p "$port" PING >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$port" SET key 7 >/dev/null
if [ -n "${SETUP:-}" ]; then
    redis-cli -p "$port" SCRIPT LOAD "$SETUP" >/dev/null
fi
redis-benchmark -p "$port" -n 5000 -c 50 -P 16 -q "$@" >/dev/null
callgrind_control -i on "$vpid" >/dev/null
redis-benchmark -p "$port" -n 20000 -c 50 -P 16 -q "$@" >/dev/null
callgrind_control -i off "$vpid" >/dev/null
callgrind_control -d "$vpid" >/dev/null
sleep 1
kill "$vpid"
wait "$vpid" 2>/dev/null || true
total=$(grep -h '^totals:\|^summary:' "$file"* | awk '{print $2}' | sort -n | tail -1)
echo "$kind $* : $((total / 20000)) instructions per op"
