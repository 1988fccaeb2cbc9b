#!/usr/bin/env bash
# Ferrite's disk tier under load: GET throughput and latency with 10x more data than
# `--memory-size`, against the same data all in memory and against the disk's own random-read
# IOPS; then memory overhead per key against redis-server.
#
#   scripts/bench-tiering.sh                                   # defaults: about 6-8 minutes
#   MEMORY_SIZE=1gb DURATION=60 scripts/bench-tiering.sh       # bigger
#   PHASES="overhead" scripts/bench-tiering.sh                 # one part only
#
# Phases (PHASES, default "tiered memory fio overhead"):
# - tiered: ferrite `--threads 1 --memory-size $MEMORY_SIZE --dir $WORK/tiered` on core
#   SERVER_CPU; KEYS keys (default RATIO x memory-size / VALUE_SIZE) of VALUE_SIZE bytes are
#   preloaded with `ferrite-load load`, then `ferrite-load run` (on core CLIENT_CPU, CLIENTS
#   connections, pipeline PIPELINE, WARMUP s unmeasured, then DURATION s) reads them with
#   uniform and zipf:$THETA key choice. Every GET reply is checked against the preloaded value.
#   Around each step: the kernel's `Cached:` (/proc/meminfo; machine-wide, so other activity
#   shows), the page-cache residency of the log's own files (`fincore <dir>/hlog/*`), INFO
#   tiering (async/sync disk reads, pages flushed) and the server's CPU time.
# - memory: the same keys and reads with `--memory-size` large enough for everything.
#   Both run with `--save ""`: the default schedule (`60 10000`) would start a BGSAVE of the
#   preloaded keys about a minute in, in the middle of the Zipf phase.
# - fio: 4 KiB random reads, `--direct=1 --ioengine=io_uring --iodepth=32` for FIO_RUNTIME s,
#   on a FIO_SIZE file (default: the size of the data) in the same file system: the physical
#   limit for the uniform phase.
# - overhead: OVERHEAD_KEYS keys of OVERHEAD_VALUE bytes into ferrite (once with the default
#   index-size, once with an index sized to the keys: OVERHEAD_INDEX_SIZE, default one 64-byte
#   bucket per 4 keys rounded up to a power of two) and into redis-server (`--save ''
#   --appendonly no`); RSS and INFO used_memory against the raw key+value bytes.
#
# Environment: MEMORY_SIZE (256mb), VALUE_SIZE (1024), RATIO (10), KEYS (derived), CLIENTS (50),
# PIPELINE (1), THETA (0.99), WARMUP (5), DURATION (30), FIO_RUNTIME (20), FIO_SIZE (data
# size), OVERHEAD_KEYS (1000000), OVERHEAD_VALUE (100), OVERHEAD_INDEX_SIZE (derived),
# IO_BACKEND (auto), SERVER_CPU (0), CLIENT_CPU (1), WORK_PARENT (a directory on a real disk:
# /var/tmp if /tmp is tmpfs, else /tmp), FERRITE_BIN and LOAD_BIN (default: build release),
# REDIS_SERVER (redis-server), TIERED_ARGS (extra ferrite arguments for the tiered phase, e.g.
# "--copy-reads-to-tail yes"), KEEP=1 keeps the work directory.
#
# A phase whose load generator reports errors, misses (nil for a preloaded key), wrong values or
# a hang stops the script with the generator's messages and the tail of the server's log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MEMORY_SIZE=${MEMORY_SIZE:-256mb}
VALUE_SIZE=${VALUE_SIZE:-1024}
RATIO=${RATIO:-10}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-1}
THETA=${THETA:-0.99}
WARMUP=${WARMUP:-5}
DURATION=${DURATION:-30}
FIO_RUNTIME=${FIO_RUNTIME:-20}
OVERHEAD_KEYS=${OVERHEAD_KEYS:-1000000}
OVERHEAD_VALUE=${OVERHEAD_VALUE:-100}
IO_BACKEND=${IO_BACKEND:-auto}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
PHASES=${PHASES:-"tiered memory fio overhead"}
KEY_LEN=14 # ferrite-load's keys: "key:" and ten digits

# Redis's memtoll: k/m/g are powers of 1000, kb/mb/gb powers of 1024.
to_bytes() {
    local s=${1,,}
    [[ "$s" =~ ^([0-9]+)(k|kb|m|mb|g|gb)?$ ]] || { echo "not a memory size: $1" >&2; exit 1; }
    local n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]:-}
    case $unit in
        k) echo $((n * 1000)) ;; kb) echo $((n << 10)) ;;
        m) echo $((n * 1000000)) ;; mb) echo $((n << 20)) ;;
        g) echo $((n * 1000000000)) ;; gb) echo $((n << 30)) ;;
        *) echo "$n" ;;
    esac
}
MEMORY_BYTES=$(to_bytes "$MEMORY_SIZE")
KEYS=${KEYS:-$((RATIO * MEMORY_BYTES / VALUE_SIZE))}
DATA_BYTES=$((KEYS * (KEY_LEN + VALUE_SIZE)))
# All in memory: twice the raw data covers record headers and alignment, in whole MiB.
BASELINE_MEMORY=${BASELINE_MEMORY:-$(((2 * DATA_BYTES >> 20) + 64))mb}
FIO_SIZE=${FIO_SIZE:-$(((KEYS * VALUE_SIZE >> 20) + 1))m}
if [[ -z "${OVERHEAD_INDEX_SIZE:-}" ]]; then
    buckets=1
    while ((buckets * 4 < OVERHEAD_KEYS)); do buckets=$((buckets * 2)); done
    OVERHEAD_INDEX_SIZE=$((buckets * 64))
fi

for tool in "$REDIS_SERVER" redis-cli taskset python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
if [[ " $PHASES " == *" fio "* ]] && ! command -v fio >/dev/null; then
    echo "installing fio..." >&2
    apt-get install -y fio >&2 || { apt-get update >&2 && apt-get install -y fio >&2; }
fi

if [[ -z "${FERRITE_BIN:-}" || -z "${LOAD_BIN:-}" ]]; then
    echo "building release ferrite and ferrite-load..." >&2
    cargo build --release --bin ferrite --bin ferrite-load --package ferrite --package ferrite-bench >&2
    FERRITE_BIN=${FERRITE_BIN:-$PWD/target/release/ferrite}
    LOAD_BIN=${LOAD_BIN:-$PWD/target/release/ferrite-load}
fi
# Servers start in their own directories.
FERRITE_BIN=$(realpath "$FERRITE_BIN")
LOAD_BIN=$(realpath "$LOAD_BIN")

if [[ -z "${WORK_PARENT:-}" ]]; then
    if [[ "$(stat -f -c %T /tmp)" == tmpfs ]]; then WORK_PARENT=/var/tmp; else WORK_PARENT=/tmp; fi
fi
if [[ "$(stat -f -c %T "$WORK_PARENT")" == tmpfs ]]; then
    echo "WORK_PARENT=$WORK_PARENT is tmpfs: the disk tier would not touch a disk" >&2
    exit 1
fi
WORK=$(mktemp -d "$WORK_PARENT/bench-tiering.XXXXXX")
SERVER_PID=""
cleanup() {
    stop_server
    if [[ -z "${KEEP:-}" ]]; then rm -rf "$WORK"; else echo "work directory kept: $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
quote() { printf '%q ' "$@" | sed 's/ $//'; }
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_bytes() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"; }
cached_kib() { awk '/^Cached:/ { print $2 }' /proc/meminfo; }
info_field() { # port section field
    redis-cli -p "$1" INFO "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'
}
hlog_cached_bytes() { # dir: page-cache bytes of the log's segment files
    local files=("$1"/hlog/*)
    [[ -e "${files[0]}" ]] || { echo 0; return; }
    fincore -b -n -o RES "${files[@]}" | awk '{ s += $1 } END { print s + 0 }'
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

SERVER_NAME=""
SERVER_PORT=""
SERVER_CWD=""
start_server() { # name, then the command line (PORT in it is replaced by the port); run in SERVER_CWD
    SERVER_NAME=$1
    shift
    SERVER_PORT=$(free_port)
    local cmd=()
    for a in "$@"; do cmd+=("${a//PORT/$SERVER_PORT}"); done
    echo "start $SERVER_NAME: $(quote "${cmd[@]}")" >&2
    # Started from inside its directory as well as with --dir: this build of ferrite takes the
    # value of `dir` from getcwd() (CONFIG GET's answer) at start-up, so `--dir` alone is ignored
    # and the disk tier's hlog/ lands in the current directory.
    (cd "$SERVER_CWD" && exec "${cmd[@]}") >"$WORK/$SERVER_NAME.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 200); do
        if redis-cli -p "$SERVER_PORT" PING 2>/dev/null | grep -q PONG; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "$SERVER_NAME exited during start-up" >&2; cat "$WORK/$SERVER_NAME.log" >&2; exit 1; }
        sleep 0.05
    done
    echo "$SERVER_NAME not answering on port $SERVER_PORT" >&2
    exit 1
}
stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# A failed load or run is a finding about the server: report it and stop.
server_failed() { # what, generator stderr file
    echo >&2
    echo "FAILED: $1" >&2
    echo "--- ferrite-load said:" >&2
    cat "$2" >&2
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "--- $SERVER_NAME is still running (pid $SERVER_PID)" >&2
    else
        echo "--- $SERVER_NAME has exited" >&2
    fi
    echo "--- tail of $SERVER_NAME's log:" >&2
    tail -n 30 "$WORK/$SERVER_NAME.log" >&2
    exit 1
}

preload() { # keys value_size -> prints ferrite-load's line
    local cmd=(taskset -c "$CLIENT_CPU" "$LOAD_BIN" load -p "$SERVER_PORT" -n "$1" -d "$2" -c 4 -P 64)
    echo "  $(quote "${cmd[@]}")" >&2
    local out
    out=$("${cmd[@]}" 2>"$WORK/load.err") || server_failed "preload of $1 keys into $SERVER_NAME: $(quote "${cmd[@]}")" "$WORK/load.err"
    echo "  $out" >&2
    local dbsize
    dbsize=$(redis-cli -p "$SERVER_PORT" DBSIZE)
    [[ "$dbsize" == "$1" ]] || { echo "FAILED: $SERVER_NAME has DBSIZE $dbsize after loading $1 keys" >&2; exit 1; }
    echo "$out"
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
RUN_EXAMPLE=""
# One read phase against the running server: one TSV row (label ops p50 p99 p999 max
# disk-reads-per-GET sync-reads cache-growth-MiB hlog-cached-MiB cpu-s-per-Mops).
read_phase() { # label dist dir
    local label=$1 dist=$2 dir=$3
    local cmd=(taskset -c "$CLIENT_CPU" "$LOAD_BIN" run -p "$SERVER_PORT" -n "$KEYS" -d "$VALUE_SIZE"
        --dist "$dist" -c "$CLIENTS" -P "$PIPELINE" --warmup "$WARMUP" --duration "$DURATION")
    [[ -n "$RUN_EXAMPLE" ]] || RUN_EXAMPLE=$(quote "${cmd[@]}" | sed "s/-p $SERVER_PORT /-p PORT /")
    local async0 sync0 cached0 ticks0 out
    async0=$(info_field "$SERVER_PORT" tiering tier_async_reads)
    sync0=$(info_field "$SERVER_PORT" tiering tier_sync_reads)
    cached0=$(cached_kib)
    ticks0=$(cpu_ticks "$SERVER_PID")
    out=$("${cmd[@]}" 2>"$WORK/run.err") || server_failed "$label: $(quote "${cmd[@]}")" "$WORK/run.err"
    local ticks1 cached1 async1 sync1
    ticks1=$(cpu_ticks "$SERVER_PID")
    cached1=$(cached_kib)
    async1=$(info_field "$SERVER_PORT" tiering tier_async_reads)
    sync1=$(info_field "$SERVER_PORT" tiering tier_sync_reads)
    # Disk reads and CPU cover warm-up and measurement; divide by the requests of both, which
    # the measured rate estimates.
    local ops total
    ops=$(field ops_per_sec "$out")
    total=$(awk -v r="$ops" -v t="$((WARMUP + DURATION))" 'BEGIN { print r * t }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$ops" \
        "$(field p50_ms "$out")" "$(field p99_ms "$out")" "$(field p999_ms "$out")" "$(field max_ms "$out")" \
        "$(awk -v a=$((async1 - async0)) -v n="$total" 'BEGIN { printf "%.2f", (n > 0 ? a / n : 0) }')" \
        "$((sync1 - sync0))" \
        "$(awk -v k=$((cached1 - cached0)) 'BEGIN { printf "%.1f", k / 1024 }')" \
        "$(mib "$(hlog_cached_bytes "$dir")")" \
        "$(awk -v t=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" -v n="$total" 'BEGIN { printf "%.2f", (n > 0 ? t / hz / n * 1e6 : 0) }')" \
        >>"$RESULTS"
    echo "  $label: $out" >&2
    echo "- $label: load average after the phase $(cut -d' ' -f1-3 /proc/loadavg)" >>"$NOTES"
}

tier_summary() { # -> one line of INFO tiering
    redis-cli -p "$SERVER_PORT" INFO tiering | tr -d '\r' | grep -E '^tier_(log_memory_bytes|head_address|tail_address|pages_flushed|async_reads|sync_reads|io_errors):' | tr '\n' ' '
}

NOTES=$WORK/notes.txt
: >"$NOTES"
FERRITE_TIERED_CMD=""
FERRITE_MEMORY_CMD=""

tier_phases() { # name memory-size
    local name=$1 mem=$2 dir="$WORK/$1"
    mkdir -p "$dir"
    local cmd=(taskset -c "$SERVER_CPU" "$FERRITE_BIN" --port PORT --bind 127.0.0.1 --threads 1
        --io-backend "$IO_BACKEND" --memory-size "$mem" --dir "$dir" --loglevel notice --save "")
    if [[ $name == tiered && -n ${TIERED_ARGS:-} ]]; then
        # shellcheck disable=SC2206 # word splitting of the extra arguments is the point
        cmd+=($TIERED_ARGS)
    fi
    if [[ $name == tiered ]]; then FERRITE_TIERED_CMD=$(quote "${cmd[@]}"); else FERRITE_MEMORY_CMD=$(quote "${cmd[@]}"); fi
    SERVER_CWD=$dir
    start_server "ferrite-$name" "${cmd[@]}"
    [[ "$(redis-cli -p "$SERVER_PORT" CONFIG GET dir | tail -n1)" == "$dir" ]] || { echo "ferrite is not running in $dir" >&2; exit 1; }
    echo "$name: preload $KEYS keys of $VALUE_SIZE B" >&2
    local cached0 cached1 line
    cached0=$(cached_kib)
    line=$(preload "$KEYS" "$VALUE_SIZE")
    cached1=$(cached_kib)
    {
        echo "- $name preload: $line; Cached: $(awk -v k=$((cached1 - cached0)) 'BEGIN { printf "%+.1f", k / 1024 }') MiB;"
        echo "  log on disk $(mib "$(du -sb "$dir/hlog" | cut -f1)") MiB, of it in the page cache $(mib "$(hlog_cached_bytes "$dir")") MiB; RSS $(mib "$(rss_bytes "$SERVER_PID")") MiB"
        echo "  after preload: $(tier_summary)"
    } >>"$NOTES"
    read_phase "$name uniform" uniform "$dir"
    read_phase "$name zipf:$THETA" "zipf:$THETA" "$dir"
    echo "  after reads: $(tier_summary)" >>"$NOTES"
    grep -iE 'disk tier|warn|error' "$WORK/ferrite-$name.log" | head -n 5 | sed 's/^/  log: /' >>"$NOTES" || true
    stop_server
    rm -rf "$dir"
}

FIO_CMD=""
fio_phase() {
    local file="$WORK/fio.dat" json="$WORK/fio.json"
    local cmd=(taskset -c "$SERVER_CPU" fio --name=randread --filename="$file" --size="$FIO_SIZE"
        --rw=randread --bs=4k --direct=1 --ioengine=io_uring --iodepth=32 --numjobs=1
        --runtime="$FIO_RUNTIME" --time_based --group_reporting --output-format=json)
    FIO_CMD=$(quote "${cmd[@]}")
    echo "fio: $FIO_CMD" >&2
    if ! "${cmd[@]}" >"$json" 2>"$WORK/fio.err"; then
        echo "fio failed:" >&2
        cat "$WORK/fio.err" >&2
        printf 'fio 4 KiB randread (IOPS)\tn/a\t\t\t\t\t\t\t\t\t\n' >>"$RESULTS"
        rm -f "$file"
        return 0
    fi
    python3 - "$json" >>"$RESULTS" <<'EOF'
import json, sys
# fio prints warnings before the JSON document on some versions.
text = open(sys.argv[1]).read()
job = json.loads(text[text.index("{"):])["jobs"][0]["read"]
pct = job["clat_ns"].get("percentile", {})
ms = lambda k: "%.3f" % (pct[k] / 1e6) if k in pct else ""
print("\t".join(["fio 4 KiB randread (IOPS)", "%.0f" % job["iops"], ms("50.000000"), ms("99.000000"),
                 ms("99.900000"), "%.3f" % (job["clat_ns"]["max"] / 1e6), "1.00", "", "", "", ""]))
EOF
    echo "  fio: $(tail -n1 "$RESULTS" | cut -f2) IOPS" >&2
    rm -f "$file"
}

OVERHEAD=$WORK/overhead.tsv
: >"$OVERHEAD"
OVERHEAD_CMDS=()
overhead_one() { # label, command line
    local label=$1
    shift
    OVERHEAD_CMDS+=("$label: \`$(quote "$@")\`")
    start_server "overhead-$label" "$@"
    local rss0 rss1 used
    rss0=$(rss_bytes "$SERVER_PID")
    preload "$OVERHEAD_KEYS" "$OVERHEAD_VALUE" >/dev/null
    sleep 1
    rss1=$(rss_bytes "$SERVER_PID")
    used=$(info_field "$SERVER_PORT" memory used_memory)
    printf '%s\t%s\t%s\t%s\n' "$label" "$rss0" "$rss1" "$used" >>"$OVERHEAD"
    echo "  $label: RSS $(mib "$rss0") -> $(mib "$rss1") MiB, used_memory $(mib "$used") MiB" >&2
    stop_server
}
overhead_phase() {
    local dir="$WORK/overhead"
    mkdir -p "$dir"
    echo "overhead: $OVERHEAD_KEYS keys of $OVERHEAD_VALUE B" >&2
    SERVER_CWD=$dir
    local base=(taskset -c "$SERVER_CPU" "$FERRITE_BIN" --port PORT --bind 127.0.0.1 --threads 1
        --io-backend "$IO_BACKEND" --memory-size 1gb --dir "$dir" --loglevel warning --save "")
    overhead_one "ferrite (index-size 64mb, the default)" "${base[@]}"
    overhead_one "ferrite (index-size $((OVERHEAD_INDEX_SIZE >> 20))mb)" "${base[@]}" --index-size "$OVERHEAD_INDEX_SIZE"
    overhead_one "redis-server" taskset -c "$SERVER_CPU" "$REDIS_SERVER" --port PORT --bind 127.0.0.1 \
        --save "" --appendonly no --daemonize no --dir "$dir" --loglevel warning
}

echo "keys $KEYS x $VALUE_SIZE B = $(mib "$DATA_BYTES") MiB raw; memory-size $MEMORY_SIZE; work dir $WORK" >&2
for phase in $PHASES; do
    case $phase in
        tiered) tier_phases tiered "$MEMORY_SIZE" ;;
        memory) tier_phases memory "$BASELINE_MEMORY" ;;
        fio) fio_phase ;;
        overhead) overhead_phase ;;
        *) echo "unknown phase '$phase' (tiered memory fio overhead)" >&2; exit 1 ;;
    esac
done

# --- Report ---------------------------------------------------------------------------------
row() { awk -F'\t' -v l="$1" -v c="$2" '$1 == l { print $c }' "$RESULTS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "not measured"; else if (r + 0 >= t + 0) print "met"; else print "not met" }'; }

echo
echo "## Tiered storage: $KEYS keys x $VALUE_SIZE B with \`--memory-size $MEMORY_SIZE\` ($(date -u +%F))"
echo
echo "- machine: $(nproc) cores, $(uname -srm), $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; work dir on $(df -P "$WORK" | awk 'NR == 2 { print $1 }') ($(stat -f -c %T "$WORK")); load average before the run $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -z "$FERRITE_TIERED_CMD" ]] || echo "- tiered: \`$FERRITE_TIERED_CMD\`"
[[ -z "$FERRITE_MEMORY_CMD" ]] || echo "- all in memory: \`$FERRITE_MEMORY_CMD\`"
[[ -z "$RUN_EXAMPLE" ]] || echo "- reads: \`$RUN_EXAMPLE\` (and \`--dist zipf:$THETA\`); every reply checked against the preloaded value"
[[ -z "$FIO_CMD" ]] || echo "- disk: \`$FIO_CMD\`"
echo "- disk reads/GET: INFO tiering \`tier_async_reads\` over the phase's requests (warm-up included);"
echo "  Cached: growth of /proc/meminfo \`Cached:\` over the phase (machine-wide); hlog cached: page-cache"
echo "  bytes of the log's segment files at the end of the phase (\`fincore\`)"
echo
echo "| phase | ops/s | p50 ms | p99 ms | p99.9 ms | max ms | disk reads/GET | sync reads | Cached: growth MiB | hlog cached MiB | server CPU s/M ops |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '{ printf "| %s |", $1; for (i = 2; i <= 11; i++) printf " %s |", ($i == "" ? "" : $i); printf "\n" }' "$RESULTS"
echo
cat "$NOTES"
echo
zr=$(ratio "$(row "tiered zipf:$THETA" 2)" "$(row "memory zipf:$THETA" 2)")
ur=$(ratio "$(row "tiered uniform" 2)" "$(row "fio 4 KiB randread (IOPS)" 2)")
echo "Targets: Zipfian tiered / all in memory = $zr (target >= 0.50: $(verdict "$zr" 0.50)); uniform tiered / disk IOPS = $ur (target >= 0.70: $(verdict "$ur" 0.70))."

if [[ -s "$OVERHEAD" ]]; then
    raw=$((OVERHEAD_KEYS * (KEY_LEN + OVERHEAD_VALUE)))
    echo
    echo "### Memory overhead: $OVERHEAD_KEYS keys x $OVERHEAD_VALUE B (raw key+value bytes: $(mib "$raw") MiB)"
    echo
    for c in "${OVERHEAD_CMDS[@]}"; do echo "- $c"; done
    echo
    echo "| server | RSS empty MiB | RSS loaded MiB | used_memory MiB | RSS overhead | used_memory overhead |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    awk -F'\t' -v raw="$raw" '{
        printf "| %s | %.1f | %.1f | %.1f | %+.0f%% | %+.0f%% |\n", $1, $2 / 1048576, $3 / 1048576, $4 / 1048576,
            ($3 - raw) * 100 / raw, ($4 - raw) * 100 / raw
    }' "$OVERHEAD"
    echo
    echo "Overhead is (bytes - raw) / raw; target under 20% of the data size."
fi
