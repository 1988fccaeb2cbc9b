#!/usr/bin/env bash
# Profile a release ferrite under a redis-benchmark load with `perf record -e cpu-clock -g`,
# and render a flamegraph with inferno (cargo install inferno) if it is installed, else print
# the top of `perf report --stdio`.
#
#   scripts/flamegraph.sh                       # GET/SET load, writes target/flamegraph/
#   BENCH_ARGS="-t set -P 16 -d 1024" scripts/flamegraph.sh
#
# Environment: THREADS (1), IO_BACKEND (auto), N (1000000), CLIENTS (50),
# BENCH_ARGS ("-t set,get -P 16"), OUT (target/flamegraph), FERRITE_BIN (default: build
# target/release/ferrite), CALL_GRAPH (fp; "dwarf" for deeper but heavier stacks).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

THREADS=${THREADS:-1}
IO_BACKEND=${IO_BACKEND:-auto}
N=${N:-1000000}
CLIENTS=${CLIENTS:-50}
BENCH_ARGS=${BENCH_ARGS:-"-t set,get -P 16"}
OUT=${OUT:-target/flamegraph}
CALL_GRAPH=${CALL_GRAPH:-fp}

for tool in perf redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install linux-perf redis-tools)" >&2; exit 1; }
done
if [[ -z "${FERRITE_BIN:-}" ]]; then
    cargo build --release --bin ferrite >&2
    FERRITE_BIN="$PWD/target/release/ferrite"
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/ferrite-flame.XXXXXX)

FERRITE_PID=""
PERF_PID=""
cleanup() {
    [[ -n "$PERF_PID" ]] && kill -INT "$PERF_PID" 2>/dev/null || true
    if [[ -n "$FERRITE_PID" ]]; then
        kill -TERM "$FERRITE_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$FERRITE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$FERRITE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000)))
"$FERRITE_BIN" --port "$PORT" --bind 127.0.0.1 --threads "$THREADS" --io-backend "$IO_BACKEND" \
    --dir "$WORK" --loglevel warning --save "" >"$WORK/ferrite.log" 2>&1 &
FERRITE_PID=$!
for _ in $(seq 200); do
    redis-cli -p "$PORT" PING 2>/dev/null | grep -q PONG && break
    kill -0 "$FERRITE_PID" 2>/dev/null || { cat "$WORK/ferrite.log" >&2; exit 1; }
    sleep 0.05
done

# Some kernels restrict perf for non-root users.
if [[ $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 0) -gt 1 && $EUID -ne 0 ]]; then
    echo "note: kernel.perf_event_paranoid > 1; perf may need root or 'sysctl kernel.perf_event_paranoid=1'" >&2
fi

perf record -e cpu-clock -F 999 --call-graph "$CALL_GRAPH" -p "$FERRITE_PID" -o "$OUT/perf.data" \
    >"$WORK/perf.log" 2>&1 &
PERF_PID=$!
sleep 0.5
# shellcheck disable=SC2086
echo "load: redis-benchmark -p $PORT -c $CLIENTS -n $N $BENCH_ARGS -q" >&2
redis-benchmark -p "$PORT" -c "$CLIENTS" -n "$N" $BENCH_ARGS -q 2>&1 | tr '\r' '\n' | grep -v 'rps=' >&2 || true
kill -INT "$PERF_PID"
wait "$PERF_PID" || true
PERF_PID=""
cat "$WORK/perf.log" >&2

if command -v inferno-collapse-perf >/dev/null && command -v inferno-flamegraph >/dev/null; then
    perf script -i "$OUT/perf.data" 2>/dev/null | inferno-collapse-perf >"$OUT/stacks.folded"
    inferno-flamegraph --title "ferrite: redis-benchmark $BENCH_ARGS" <"$OUT/stacks.folded" >"$OUT/flamegraph.svg"
    echo "flamegraph: $OUT/flamegraph.svg (folded stacks: $OUT/stacks.folded, data: $OUT/perf.data)"
else
    echo "inferno is not installed (cargo install inferno): the top of perf report instead" >&2
    perf report -i "$OUT/perf.data" --stdio --no-children -g none --percent-limit 0.5 2>/dev/null | grep -v "^#" | grep -v "^$" | head -60
    echo "data: $OUT/perf.data"
fi
