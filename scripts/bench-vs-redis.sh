#!/usr/bin/env bash
# Ferrite vs redis-server under redis-benchmark, side by side on the same machine.
#
# Both servers run on core 0 (ferrite with one reactor thread); redis-benchmark runs on core 1.
# The servers alternate within each round. For every combination of GET/SET, pipeline -P 1 and
# -P 16, and value size -d 3 and -d 1024 (-c 50 clients), it records ops/sec, p50/p99/p99.9
# latency and the servers' CPU time per million operations, and prints the medians across
# rounds as markdown tables with the ratio Ferrite/Redis.
#
#   scripts/bench-vs-redis.sh                      # defaults
#   ROUNDS=5 N_P1=300000 N_P16=1000000 scripts/bench-vs-redis.sh
#   TESTS=datatypes scripts/bench-vs-redis.sh      # the data-type workloads (see below)
#   TESTS="lpush lpop lrange_100" SIZES=3 scripts/bench-vs-redis.sh
#   TESTS=streams scripts/bench-vs-redis.sh         # XADD and XRANGE (see below)
#   TESTS=scripting scripts/bench-vs-redis.sh       # EVAL, EVALSHA and FCALL (see below)
#
# Environment: ROUNDS (3), N_P1 (300000), N_P16 (1000000), CLIENTS (50), SIZES ("3 1024"; "3"
# with TESTS=datatypes), PIPELINES ("1 16"), TESTS ("set get"), IO_BACKEND (auto),
# SERVER_CPU (0), CLIENT_CPU (1), FERRITE_BIN (default: build target/release/ferrite),
# REDIS_SERVER (redis-server), KEEP_RAW=1 keeps redis-benchmark's raw output in the work
# directory.
#
# TESTS takes redis-benchmark test names, run one `-t NAME` at a time in the order given (so
# put lpush/rpush before lpop/rpop, sadd before spop, zadd before zpopmin: the pops then find
# elements). TESTS=datatypes means
#   "lpush rpush lpop rpop sadd hset spop zadd zpopmin lrange_100 lrange_300 lrange_600".
# lrange_K is not run with `-t lrange_K`, whose built-in LPUSH fill (-n requests) would be
# counted in the server CPU and grow the list every round; instead `mylist` is reset to 600
# elements of -d bytes with redis-cli, then `LRANGE mylist 0 K-1` (redis-benchmark's own
# command for that test) is sent as a custom command with -n N/4 (lrange_100), N/10
# (lrange_300) or N/20 (lrange_600), since every reply carries K elements.
# TESTS=streams means "xadd xrange_10 xrange_100": `xadd` sends
# `XADD stream:__rand_int__ * field <d bytes>` with -r 1000 (a thousand streams, IDs from each
# server's clock); `xrange_K` resets `xs` to 1000 entries of d bytes with redis-cli, then sends
# `XRANGE xs - + COUNT K` with -n N/4 (K <= 10) or N/20.
# TESTS=scripting means "eval_get evalsha_get evalsha_incr fcall_get fcall_incr": `EVAL
# "return redis.call('get',KEYS[1])" 1 key:__rand_int__` (-r 1000), EVALSHA of that script and
# of `return redis.call('incr',KEYS[1])`, loaded first with SCRIPT LOAD, and FCALL of functions
# with the same bodies, loaded first with FUNCTION LOAD REPLACE.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-3}
N_P1=${N_P1:-300000}
N_P16=${N_P16:-1000000}
CLIENTS=${CLIENTS:-50}
SIZES_DEFAULT="3 1024"
PIPELINES=${PIPELINES:-"1 16"}
TESTS=${TESTS:-"set get"}
DATATYPE_TESTS="lpush rpush lpop rpop sadd hset spop zadd zpopmin lrange_100 lrange_300 lrange_600"
if [[ "$TESTS" == datatypes ]]; then
    TESTS=$DATATYPE_TESTS
    SIZES=${SIZES:-3}
elif [[ "$TESTS" == streams ]]; then
    TESTS="xadd xrange_10 xrange_100"
    SIZES=${SIZES:-3}
elif [[ "$TESTS" == scripting ]]; then
    TESTS="eval_get evalsha_get evalsha_incr fcall_get fcall_incr"
    SIZES=${SIZES:-3}
fi
GET_SCRIPT="return redis.call('get',KEYS[1])"
INCR_SCRIPT="return redis.call('incr',KEYS[1])"
FUNCTIONS="#!lua name=bench
redis.register_function('fget', function(keys) return redis.call('get', keys[1]) end)
redis.register_function('fincr', function(keys) return redis.call('incr', keys[1]) end)"
SIZES=${SIZES:-$SIZES_DEFAULT}
IO_BACKEND=${IO_BACKEND:-auto}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REDIS_SERVER=${REDIS_SERVER:-redis-server}

for tool in "$REDIS_SERVER" redis-benchmark redis-cli taskset; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install redis-server redis-tools util-linux)" >&2; exit 1; }
done

if [[ -z "${FERRITE_BIN:-}" ]]; then
    echo "building release ferrite..." >&2
    cargo build --release --bin ferrite >&2
    FERRITE_BIN="$PWD/target/release/ferrite"
fi

WORK=$(mktemp -d /tmp/bench-vs-redis.XXXXXX)
FERRITE_PID=""
REDIS_PID=""
cleanup() {
    for pid in $FERRITE_PID $REDIS_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $FERRITE_PID $REDIS_PID; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ -z "${KEEP_RAW:-}" ]]; then rm -rf "$WORK"; else echo "raw output kept in $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000))
}

wait_port() { # port pid name
    for _ in $(seq 200); do
        if redis-cli -p "$1" PING 2>/dev/null | grep -q PONG; then return 0; fi
        kill -0 "$2" 2>/dev/null || { echo "$3 exited during start-up" >&2; cat "$WORK/$3.log" >&2; exit 1; }
        sleep 0.05
    done
    echo "$3 not answering on port $1" >&2
    cat "$WORK/$3.log" >&2
    exit 1
}

FERRITE_PORT=$(free_port)
mkdir -p "$WORK/ferrite-dir" "$WORK/redis-dir"
FERRITE_CMD=(taskset -c "$SERVER_CPU" "$FERRITE_BIN" --port "$FERRITE_PORT" --bind 127.0.0.1
    --threads 1 --io-backend "$IO_BACKEND" --dir "$WORK/ferrite-dir" --loglevel warning --save "")
"${FERRITE_CMD[@]}" >"$WORK/ferrite.log" 2>&1 &
FERRITE_PID=$!
wait_port "$FERRITE_PORT" "$FERRITE_PID" ferrite

REDIS_PORT=$(free_port)
while [[ "$REDIS_PORT" == "$FERRITE_PORT" ]]; do REDIS_PORT=$(free_port); done
REDIS_CMD=(taskset -c "$SERVER_CPU" "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1
    --save "" --appendonly no --daemonize no --dir "$WORK/redis-dir" --loglevel warning)
"${REDIS_CMD[@]}" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
wait_port "$REDIS_PORT" "$REDIS_PID" redis

CLK_TCK=$(getconf CLK_TCK)
quote() { printf '%q ' "$@" | sed 's/ $//'; }
cpu_ticks() { # pid -> utime+stime in ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
BENCH_CMD_EXAMPLE=""

prefill_list() { # port d: `mylist` holds exactly 600 elements of d bytes (as LRANGE_600 needs)
    local value
    value=$(head -c "$2" /dev/zero | tr '\0' x)
    redis-cli -p "$1" DEL mylist >/dev/null
    local args=()
    for _ in $(seq 600); do args+=("$value"); done
    local len
    len=$(redis-cli -p "$1" RPUSH mylist "${args[@]}")
    [[ "$len" == 600 ]] || { echo "prefill of mylist on port $1 returned '$len'" >&2; exit 1; }
}

prefill_stream() { # port d: `xs` holds exactly 1000 entries with one field of d bytes
    local value
    value=$(head -c "$2" /dev/zero | tr '\0' x)
    redis-cli -p "$1" DEL xs >/dev/null
    for i in $(seq 1000); do echo "XADD xs $i-1 field $value"; done | redis-cli -p "$1" >/dev/null
    local len
    len=$(redis-cli -p "$1" XLEN xs)
    [[ "$len" == 1000 ]] || { echo "prefill of xs on port $1 returned '$len'" >&2; exit 1; }
}

run_one() { # server port pid test P d n round
    local server=$1 port=$2 pid=$3 test=$4 p=$5 d=$6 n=$7 round=$8
    local out="$WORK/raw-$server-$test-P$p-d$d-r$round.txt"
    local cmd=(taskset -c "$CLIENT_CPU" redis-benchmark -h 127.0.0.1 -p "$port")
    if [[ "$test" =~ ^lrange_([0-9]+)$ ]]; then
        local k=${BASH_REMATCH[1]} div
        case $k in 100) div=4 ;; 300) div=10 ;; *) div=20 ;; esac
        n=$((n / div))
        prefill_list "$port" "$d"
        cmd+=(-P "$p" -c "$CLIENTS" -n "$n" -d "$d" --precision 3 LRANGE mylist 0 $((k - 1)))
    elif [[ "$test" =~ ^xrange_([0-9]+)$ ]]; then
        local k=${BASH_REMATCH[1]}
        if ((k <= 10)); then n=$((n / 4)); else n=$((n / 20)); fi
        prefill_stream "$port" "$d"
        cmd+=(-P "$p" -c "$CLIENTS" -n "$n" --precision 3 XRANGE xs - + COUNT "$k")
    elif [[ "$test" == eval_get ]]; then
        cmd+=(-P "$p" -c "$CLIENTS" -n "$n" -r 1000 --precision 3 EVAL "$GET_SCRIPT" 1 'key:__rand_int__')
    elif [[ "$test" =~ ^evalsha_(get|incr)$ ]]; then
        local script=$GET_SCRIPT sha
        [[ ${BASH_REMATCH[1]} == incr ]] && script=$INCR_SCRIPT
        sha=$(redis-cli -p "$port" SCRIPT LOAD "$script")
        cmd+=(-P "$p" -c "$CLIENTS" -n "$n" -r 1000 --precision 3 EVALSHA "$sha" 1 'key:__rand_int__')
    elif [[ "$test" =~ ^fcall_(get|incr)$ ]]; then
        redis-cli -p "$port" FUNCTION LOAD REPLACE "$FUNCTIONS" >/dev/null
        cmd+=(-P "$p" -c "$CLIENTS" -n "$n" -r 1000 --precision 3 FCALL "f${BASH_REMATCH[1]}" 1 'key:__rand_int__')
    elif [[ "$test" == xadd ]]; then
        local value
        value=$(head -c "$d" /dev/zero | tr '\0' x)
        cmd+=(-P "$p" -c "$CLIENTS" -n "$n" -r 1000 --precision 3 XADD 'stream:__rand_int__' '*' field "$value")
    else
        cmd+=(-t "$test" -P "$p" -c "$CLIENTS" -n "$n" -d "$d" --precision 3)
    fi
    [[ -n "$BENCH_CMD_EXAMPLE" ]] || BENCH_CMD_EXAMPLE=$(quote "${cmd[@]}")
    local before after
    before=$(cpu_ticks "$pid")
    "${cmd[@]}" 2>&1 | tr '\r' '\n' >"$out"
    after=$(cpu_ticks "$pid")
    # Summary: "throughput summary: X requests per second" and the latency summary row
    # (avg min p50 p95 p99 max); p99.9 from the percentile distribution (first >= 99.9%).
    awk -v server="$server" -v test="$test" -v p="$p" -v d="$d" -v n="$n" \
        -v cpu=$((after - before)) -v hz="$CLK_TCK" '
        /throughput summary:/ { ops = $3 }
        /avg +min +p50 +p95 +p99 +max/ { getline; p50 = $3; p99 = $5 }
        /^Latency by percentile distribution/ { inpct = 1; next }
        inpct && /^$/ { inpct = 0 }
        inpct && p999 == "" {
            pct = $1; sub(/%/, "", pct)
            if (pct + 0 >= 99.9) p999 = $3
        }
        END {
            if (ops == "") { print "no throughput in redis-benchmark output" > "/dev/stderr"; exit 1 }
            printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.4f\n", server, toupper(test), p, d, ops, p50, p99, p999,
                (cpu / hz) / n * 1000000
        }' "$out" >>"$RESULTS"
    tail -n1 "$RESULTS" | awk -F'\t' '{ printf "  %-8s %-4s P%-3s d%-5s %12s ops/s  p50 %s  p99 %s  p99.9 %s ms  cpu %s s/Mops\n", $1,$2,$3,$4,$5,$6,$7,$8,$9 }' >&2
}

echo "ferrite: $(quote "${FERRITE_CMD[@]}")" >&2
echo "redis:   $(quote "${REDIS_CMD[@]}")" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    for d in $SIZES; do
        for p in $PIPELINES; do
            if [[ "$p" == 1 ]]; then n=$N_P1; else n=$N_P16; fi
            if ((round % 2)); then order="ferrite redis"; else order="redis ferrite"; fi
            for server in $order; do
                if [[ $server == ferrite ]]; then port=$FERRITE_PORT pid=$FERRITE_PID; else port=$REDIS_PORT pid=$REDIS_PID; fi
                for test in $TESTS; do
                    run_one "$server" "$port" "$pid" "$test" "$p" "$d" "$n" "$round"
                done
            done
        done
    done
done

# Medians across rounds, then one table per metric with the ratio Ferrite/Redis.
report() {
    awk -F'\t' '
        function median(key,   n, i, j, t, a) {
            n = split(vals[key], a, " ")
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
            if (n == 0 || a[1] == "") return ""
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        {
            row = $2 "\t" $3 "\t" $4
            if (!(row in seen)) { seen[row] = 1; rows[++nrows] = row }
            for (m = 5; m <= 9; m++) if ($m != "") vals[$1 SUBSEP row SUBSEP m] = vals[$1 SUBSEP row SUBSEP m] " " $m
        }
        END {
            split("ops/sec (higher is better)|p50 latency, ms|p99 latency, ms|p99.9 latency, ms (upper bound: the first percentile >= 99.9% that redis-benchmark reports)|server CPU seconds per million ops", title, "|")
            for (m = 5; m <= 9; m++) {
                printf "\n### %s\n\n| test | -P | -d | Ferrite | Redis | Ferrite/Redis |\n| --- | --- | --- | ---: | ---: | ---: |\n", title[m - 4]
                for (r = 1; r <= nrows; r++) {
                    split(rows[r], k, "\t")
                    f = median("ferrite" SUBSEP rows[r] SUBSEP m); g = median("redis" SUBSEP rows[r] SUBSEP m)
                    ratio = (f != "" && g != "" && g + 0 > 0) ? sprintf("%.2f", f / g) : "n/a"
                    printf "| %s | %s | %s | %s | %s | %s |\n", k[1], k[2], k[3], (f == "" ? "n/a" : f), (g == "" ? "n/a" : g), ratio
                }
            }
        }' "$RESULTS"
}

echo
echo "## Ferrite vs Redis: redis-benchmark, medians of $ROUNDS rounds"
echo
echo "- machine: $(nproc) cores, $(uname -srm); $("$REDIS_SERVER" --version | cut -d' ' -f1-3)"
echo "- ferrite: \`$(quote "${FERRITE_CMD[@]}")\`"
echo "- redis:   \`$(quote "${REDIS_CMD[@]}")\`"
echo "- load, e.g.: \`$BENCH_CMD_EXAMPLE\` (with -t $TESTS; -P $PIPELINES, -d $SIZES; -n $N_P1 at -P 1, $N_P16 at -P 16)"
if [[ "$TESTS" == *lrange_* ]]; then
    echo "- lrange_K: \`mylist\` reset to 600 elements, then \`LRANGE mylist 0 K-1\` as a custom command, -n divided by 4/10/20 for K=100/300/600"
fi
echo "- latency percentiles are redis-benchmark's (HdrHistogram, per request, including the client's time);"
echo "  redis-benchmark 7.0 reports p50/p95/p99 in its summary; p99.9 is read off its percentile distribution"
echo "- CPU: the server's user+sys time from /proc/PID/stat across each run (includes connection setup)"
report
