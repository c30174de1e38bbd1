#!/usr/bin/env bash
# A `dedupe` route shared through Redis (`[cluster]`, issue 34) beside the same
# route with the host's own table, and a plain route, on loopback.
#
# Needs (installs nothing): nginx-light wrk curl redis-server
#   apt-get install nginx-light wrk curl redis-server
# Run from the repository root:  bench/cluster.sh        (~2 minutes with the defaults)
# Knobs: ROUNDS (3) and DURATION (10 s) per row and round; WORKERS (1);
#   HOOKGATE (a hookgate binary to measure instead of target/release/hookgate).
# Every run is bounded: wrk -d, curl --max-time.
#
# One nginx is the backend (200 "ok" to any POST), one redis-server (no
# persistence) the cluster's store. Two hookgates run the same binary: `local`
# without [cluster] (routes /plain and /dedupe), `cluster` with [cluster] on
# that Redis (route /dedupe, whose claims and answers go to Redis: one script
# to claim, one to store the answer). wrk -t1 -c64 POSTs a 1 KiB Telegram
# update with a new update_id per request to one row at a time, alternating,
# DURATION seconds each. The table shows medians over the rounds: req/s, p50
# and p99 latency, and CPU per request (user and system time from
# /proc/PID/stat over the run, divided by the requests wrk completed) of
# hookgate and, for the cluster row, of redis-server beside it; each
# hookgate figure's ratio to the local table's.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WORKERS=${WORKERS:-1}
require_tools "apt-get install nginx-light wrk curl redis-server" nginx wrk curl redis-server
hookgate_binary

make_workdir cluster
BACK=19521; LOCAL=19593; CLUSTER=19594; REDIS=19579
require_free_ports "$BACK" "$LOCAL" "$CLUSTER" "$REDIS"

start_ok_backend "$BACK"
redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
    >"$WORK/redis.log" 2>&1 & REDIS_PID=$!
PIDS+=("$REDIS_PID")

route() { # NAME PATH [EXTRA]
    printf '[[routes]]\nname = "%s"\npath = "%s"\nmethods = ["POST"]\nupstream = "backend"\n%s\n' "$1" "$2" "${3:-}"
}
common() { # PORT
    printf '[listen]\naddrs = ["127.0.0.1:%s"]\n[runtime]\nworkers = %s\n[upstreams.backend]\nurl = "http://127.0.0.1:%s"\n' \
        "$1" "$WORKERS" "$BACK"
}
DEDUPE='dedupe = { key = "telegram_update_id", window = "10m" }'
{ common "$LOCAL"; route plain /plain; route dedupe /dedupe "$DEDUPE"; printf '[default]\nrespond = { status = 404 }\n'; } \
    > "$WORK/local.toml"
{ common "$CLUSTER"; printf '[cluster]\nredis = "redis://127.0.0.1:%s/0"\nnode = "bench"\n' "$REDIS"
  route dedupe /dedupe "$DEDUPE"; printf '[default]\nrespond = { status = 404 }\n'; } > "$WORK/cluster.toml"
"$HOOKGATE" run -c "$WORK/local.toml" >"$WORK/local.out" 2>"$WORK/local.log" & LOCAL_PID=$!
PIDS+=("$LOCAL_PID")
"$HOOKGATE" run -c "$WORK/cluster.toml" >"$WORK/cluster.out" 2>"$WORK/cluster.log" & CLUSTER_PID=$!
PIDS+=("$CLUSTER_PID")

cat > "$WORK/unique.lua" <<'EOF_LUA'
local base, n = 0, 0
local text = string.rep("x", 970)
local headers = { ["Content-Type"] = "application/json" }
init = function(args) base = tonumber(args[1]) end
request = function()
    n = n + 1
    local body = '{"update_id":' .. string.format("%d", base + n) .. ',"message":{"text":"' .. text .. '"}}'
    return wrk.format("POST", nil, headers, body)
end
EOF_LUA

# row -> "port path pid"
declare -A ROW=([plain]="$LOCAL /plain $LOCAL_PID" [local]="$LOCAL /dedupe $LOCAL_PID" [redis]="$CLUSTER /dedupe $CLUSTER_PID")
for row in plain local redis; do
    read -r port path _ <<<"${ROW[$row]}"
    for _ in $(seq 50); do
        curl -sf --max-time 2 -o /dev/null -X POST --data '{}' "http://127.0.0.1:$port$path" && break
        sleep 0.1
    done
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST --data '{"update_id":1}' \
        -H 'Content-Type: application/json' "http://127.0.0.1:$port$path")
    [ "$code" = 200 ] || { echo "POST $path on $port answered $code; see $WORK/*.log" >&2; cat "$WORK"/*.log >&2; exit 1; }
done
# The cluster host must be sharing before it is measured: its first calls
# connect (lazily) and may miss the deadline, and it then probes once a second.
# Answers are stored just after they are sent, so this asks until one is there.
shared=0
for i in $(seq 2 60); do
    curl -s --max-time 2 -o /dev/null -X POST --data "{\"update_id\":$i}" -H 'Content-Type: application/json' \
        "http://127.0.0.1:$CLUSTER/dedupe"
    sleep 0.1
    if [ "$(redis-cli -p "$REDIS" --scan --pattern 'hookgate:dedupe:*' | wc -l)" -ge 1 ]; then shared=1; break; fi
done
[ "$shared" = 1 ] || { echo "the cluster host stored nothing in Redis; see $WORK/cluster.log" >&2; exit 1; }

declare -A RESULT
record() { RESULT["$1|$2"]+="$3 "; }
last() { echo "${RESULT["$1|$2"]:-}" | awk '{print $NF}'; }
sum() { echo "${RESULT["$1|$2"]:-}" | awk '{ n = 0; for (i = 1; i <= NF; i++) n += $i; print n }'; }
m() { echo "${RESULT["$1|$2"]:-}" | tr ' ' '\n' | grep -v '^$' | median; }

BASE=$(( $(date +%s) * 1000000 ))
DEGRADED_BEFORE=$(grep -c 'cluster: degraded' "$WORK/cluster.log" || true)
round() { # row
    local row=$1 port path pid before after rbefore rafter out requests non2xx
    read -r port path pid <<<"${ROW[$row]}"
    before=$(pid_cpu_ticks "$pid"); rbefore=$(pid_cpu_ticks "$REDIS_PID")
    out=$(wrk -t1 -c64 -d"${DURATION}s" --latency -s "$WORK/unique.lua" "http://127.0.0.1:$port$path" -- "$BASE")
    after=$(pid_cpu_ticks "$pid"); rafter=$(pid_cpu_ticks "$REDIS_PID")
    requests=$(echo "$out" | awk '/requests in/{print $1}')
    BASE=$((BASE + requests + 100000))
    non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses/{print $NF}'); non2xx=${non2xx:-0}
    record "$row" rps "$(awk -v n="$requests" -v d="$DURATION" 'BEGIN { print n / d }')"
    record "$row" requests "$requests"
    record "$row" non2xx "$non2xx"
    record "$row" errors "$(echo "$out" | awk '/Socket errors/ { gsub(/[^0-9 ]/, " "); n = 0; for (i = 1; i <= NF; i++) n += $i; print n }')"
    record "$row" p50 "$(to_us "$(echo "$out" | awk '$1 == "50%" {print $2}')")"
    record "$row" p99 "$(to_us "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
    record "$row" cpu_us "$(per_request_us "$before" "$after" "$requests")"
    record "$row" redis_us "$(per_request_us "$rbefore" "$rafter" "$requests")"
}

echo "$ROUNDS rounds of ${DURATION}s per row (plain, local table, through Redis)" >&2
for i in $(seq "$ROUNDS"); do
    round plain; round local; round redis
    echo "  round $i: local $(last local rps) req/s ($(last local cpu_us) µs CPU), redis $(last redis rps) req/s ($(last redis cpu_us) µs CPU + $(last redis redis_us) µs in redis-server)" >&2
done

printf '\n%-7s %9s %9s %9s %7s %12s %7s %11s %8s %7s\n' row "req/s" "p50 µs" "p99 µs" "÷local" "CPU µs/req" "÷local" "redis µs/r" non-2xx errors
for r in plain local redis; do
    printf '%-7s %9.0f %9.0f %9.0f %7s %12.2f %7s %11s %8s %7s\n' "$r" "$(m "$r" rps)" "$(m "$r" p50)" "$(m "$r" p99)" \
        "$(ratio "$(m "$r" p99)" "$(m local p99)")" "$(m "$r" cpu_us)" "$(ratio "$(m "$r" cpu_us)" "$(m local cpu_us)")" \
        "$(if [ "$r" = redis ]; then printf '%.2f' "$(m "$r" redis_us)"; else echo -; fi)" "$(sum "$r" non2xx)" "$(sum "$r" errors)"
done
echo
echo "per round (CPU µs/req): plain ${RESULT["plain|cpu_us"]}; local ${RESULT["local|cpu_us"]}; redis ${RESULT["redis|cpu_us"]}"
echo "per round (p99 µs): plain ${RESULT["plain|p99"]}; local ${RESULT["local|p99"]}; redis ${RESULT["redis|p99"]}"
degraded=$(( $(grep -c 'cluster: degraded' "$WORK/cluster.log" || true) - DEGRADED_BEFORE ))
echo "the cluster host over the rounds: $degraded degradations (must be 0, or the redis row measured the local table in part);" \
    "$(redis-cli -p "$REDIS" DBSIZE) answers in Redis for $(sum redis requests) requests"
echo "hookgate: $HOOKGATE; $(redis-server --version | cut -d' ' -f1-3)"
echo "rounds=$ROUNDS duration=${DURATION}s workers=$WORKERS cores=$(nproc) $(uname -r)"
echo "load average at the end (other work on the machine shows here): $(cut -d' ' -f1-3 /proc/loadavg)"
