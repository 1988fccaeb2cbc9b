#!/usr/bin/env bash
# CPU a replica spends applying its master's stream, Ferrite against redis-server in one run:
# a redis-server master (core 1) takes `redis-benchmark -t set` (core 1); the replica under
# test (core 0, Ferrite with --threads 1) follows it, optionally with a redis-server replica of
# its own (SUB=1, core 1), which it then relays the stream to. Prints, per round and server,
# the replica's CPU seconds (user+sys from /proc) per million writes applied, and the ratio.
#
#   scripts/bench-replica.sh                 # 3 rounds of 1,000,000 SETs, 16-byte values
#   N=2000000 ROUNDS=5 SUB=1 scripts/bench-replica.sh
#
# Environment: FERRITE_BIN (target/release/ferrite), N, ROUNDS, SUB, DATA (value bytes).
set -euo pipefail
bin=${FERRITE_BIN:-target/release/ferrite}
n=${N:-1000000}
rounds=${ROUNDS:-3}
sub=${SUB:-0}
data=${DATA:-16}
for tool in redis-server redis-cli redis-benchmark taskset; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done
work=$(mktemp -d /tmp/bench-replica.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port() { echo $((20000 + RANDOM % 30000)); }
wait_up() { for _ in $(seq 200); do redis-cli -p "$1" PING >/dev/null 2>&1 && return; sleep 0.05; done; exit 1; }
field() { redis-cli -p "$1" INFO replication | tr -d '\r' | sed -n "s/^$2://p"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)

run() { # kind round
    local kind=$1 mp rp sp rpid
    mp=$(port); rp=$(port); sp=$(port)
    mkdir -p "$work/$kind.$2"
    taskset -c 1 redis-server --port "$mp" --save '' --appendonly no --dir "$work/$kind.$2" \
        --logfile "$work/$kind.$2/master.log" &
    pids+=($!)
    wait_up "$mp"
    if [ "$kind" = ferrite ]; then
        taskset -c 0 "$bin" --port "$rp" --threads 1 --save '' --dir "$work/$kind.$2" \
            >"$work/$kind.$2/replica.log" 2>&1 &
    else
        taskset -c 0 redis-server --port "$rp" --save '' --appendonly no \
            --dir "$work/$kind.$2" --logfile "$work/$kind.$2/replica.log" &
    fi
    rpid=$!
    pids+=("$rpid")
    wait_up "$rp"
    redis-cli -p "$rp" REPLICAOF 127.0.0.1 "$mp" >/dev/null
    until [ "$(field "$rp" master_link_status)" = up ]; do sleep 0.05; done
    if [ "$sub" = 1 ]; then
        taskset -c 1 redis-server --port "$sp" --save '' --appendonly no \
            --dir "$work/$kind.$2" --dbfilename sub.rdb --logfile "$work/$kind.$2/sub.log" &
        pids+=($!)
        wait_up "$sp"
        redis-cli -p "$sp" REPLICAOF 127.0.0.1 "$rp" >/dev/null
        until [ "$(field "$sp" master_link_status)" = up ]; do sleep 0.05; done
    fi
    local before after
    before=$(cpu "$rpid")
    taskset -c 1 redis-benchmark -p "$mp" -t set -n "$n" -r 100000 -d "$data" -c 50 -P 16 -q \
        >/dev/null
    local want
    want=$(field "$mp" master_repl_offset)
    until [ "$(field "$rp" slave_repl_offset)" = "$want" ]; do sleep 0.02; done
    if [ "$sub" = 1 ]; then
        until [ "$(field "$sp" slave_repl_offset)" = "$want" ]; do sleep 0.02; done
    fi
    after=$(cpu "$rpid")
    awk -v a="$after" -v b="$before" -v t="$ticks" -v n="$n" \
        'BEGIN { printf "%.3f", (a - b) / t / (n / 1e6) }'
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

echo "replica CPU seconds per million SETs applied (N=$n, ${data}-byte values, SUB=$sub)"
printf '%-6s %10s %10s %8s\n' round ferrite redis ratio
for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then f=$(run ferrite "$r"); s=$(run redis "$r");
    else s=$(run redis "$r"); f=$(run ferrite "$r"); fi
    printf '%-6s %10s %10s %8s\n' "$r" "$f" "$s" "$(awk -v f="$f" -v s="$s" 'BEGIN { printf "%.2f", f / s }')"
done
