#!/usr/bin/env bash
# A `dedupe` route beside the same route without it, on loopback (issue 31).
#
# Needs (installs nothing): nginx-light wrk curl
#   apt-get install nginx-light wrk curl
# Run from the repository root:  bench/dedupe.sh        (~2 minutes with the defaults)
# Knobs: ROUNDS (3) and DURATION (20 s) per route and round, so the dedupe
#   route gets ROUNDS × DURATION seconds of unique ids (60 s by default);
#   MAX_KEYS (100000, the default table size: full after a few seconds);
#   WORKERS (1); KEY ("telegram_update_id", or e.g. "json:/update_id");
#   HOOKGATE (a hookgate binary to measure instead of target/release/hookgate,
#   e.g. another commit's build).
# Every run is bounded: wrk -d, curl --max-time.
#
# One nginx is the backend (200 "ok" to any POST) and hookgate has two routes
# to it: /plain (no dedupe) and /dedupe (dedupe = { key = KEY, window = "10m",
# max_keys = MAX_KEYS }). wrk -t1 -c64 POSTs a 1 KiB Telegram update to one
# route at a time, alternating, DURATION seconds each; its Lua script gives
# every request a new update_id (the same script for both routes, so wrk's own
# cost is the same). No id repeats across rounds: the window is 10 minutes, so
# the table stays full from the first round's first seconds to the end.
# The table shows medians over the rounds: req/s, latency, and CPU per request
# (user and system time of hookgate from /proc/PID/stat over the run, divided
# by the requests wrk completed), and each figure's ratio to /plain.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
MAX_KEYS=${MAX_KEYS:-100000}
WORKERS=${WORKERS:-1}
KEY=${KEY:-telegram_update_id}
require_tools "apt-get install nginx-light wrk curl" nginx wrk curl
hookgate_binary

make_workdir dedupe
BACK=19501; PROXY=19583
require_free_ports "$BACK" "$PROXY"

start_ok_backend "$BACK"

cat > "$WORK/hookgate.toml" <<EOF
[listen]
addrs = ["127.0.0.1:$PROXY"]
[runtime]
workers = $WORKERS
[upstreams.backend]
url = "http://127.0.0.1:$BACK"
[[routes]]
name = "plain"
path = "/plain"
methods = ["POST"]
upstream = "backend"
[[routes]]
name = "dedupe"
path = "/dedupe"
methods = ["POST"]
upstream = "backend"
dedupe = { key = "$KEY", window = "10m", max_keys = $MAX_KEYS }
[default]
respond = { status = 404 }
EOF
"$HOOKGATE" run -c "$WORK/hookgate.toml" >"$WORK/hookgate.out" 2>"$WORK/hookgate.log" & HOOKGATE_PID=$!
PIDS+=("$HOOKGATE_PID")

# The 1 KiB update of bench/lib.sh's POST, with a new update_id per request:
# `base` (the script's argument) keeps ids unique across runs.
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

for _ in $(seq 50); do
    curl -sf --max-time 2 -o /dev/null -X POST --data '{}' "http://127.0.0.1:$PROXY/plain" && break
    sleep 0.1
done
for route in plain dedupe; do
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST --data '{"update_id":1}' \
        -H 'Content-Type: application/json' "http://127.0.0.1:$PROXY/$route")
    [ "$code" = 200 ] || { echo "POST /$route answered $code; see $WORK/hookgate.log" >&2; cat "$WORK/hookgate.log" >&2; exit 1; }
done

cpu_ticks() { sed 's/.*) //' "/proc/$HOOKGATE_PID/stat" | awk '{print $12, $13}'; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
per_request_us() { # before after requests -> µs of user+sys per request
    awk -v b="$1" -v a="$2" -v n="$3" -v t="$TICK_US" 'BEGIN {
        split(b, x, " "); split(a, y, " "); if (n == 0) print 0; else print ((y[1] - x[1]) + (y[2] - x[2])) * t / n }'
}
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1000000 }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else print a[int((NR + 1) / 2)] }'; }
declare -A RESULT
record() { RESULT["$1|$2"]+="$3 "; }
last() { echo "${RESULT["$1|$2"]:-}" | awk '{print $NF}'; }
sum() { echo "${RESULT["$1|$2"]:-}" | awk '{ n = 0; for (i = 1; i <= NF; i++) n += $i; print n }'; }
m() { echo "${RESULT["$1|$2"]:-}" | tr ' ' '\n' | grep -v '^$' | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.3f", a / b }'; }

BASE=$(( $(date +%s) * 1000000 ))
round() { # route
    local route=$1 before after out requests non2xx
    before=$(cpu_ticks)
    out=$(wrk -t1 -c64 -d"${DURATION}s" --latency -s "$WORK/unique.lua" "http://127.0.0.1:$PROXY/$route" -- "$BASE")
    after=$(cpu_ticks)
    requests=$(echo "$out" | awk '/requests in/{print $1}')
    BASE=$((BASE + requests + 100000))
    non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses/{print $NF}'); non2xx=${non2xx:-0}
    record "$route" rps "$(awk -v n="$requests" -v d="$DURATION" 'BEGIN { print n / d }')"
    record "$route" requests "$requests"
    record "$route" non2xx "$non2xx"
    record "$route" errors "$(echo "$out" | awk '/Socket errors/ { gsub(/[^0-9 ]/, " "); n = 0; for (i = 1; i <= NF; i++) n += $i; print n }')"
    record "$route" p50 "$(to_us "$(echo "$out" | awk '$1 == "50%" {print $2}')")"
    record "$route" p99 "$(to_us "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
    record "$route" cpu_us "$(per_request_us "$before" "$after" "$requests")"
}

echo "$ROUNDS rounds of ${DURATION}s per route (plain, dedupe), key $KEY, max_keys $MAX_KEYS" >&2
for i in $(seq "$ROUNDS"); do
    round plain; round dedupe
    echo "  round $i: plain $(last plain rps) req/s ($(last plain cpu_us) µs CPU), dedupe $(last dedupe rps) req/s ($(last dedupe cpu_us) µs CPU)" >&2
done

printf '\n%-8s %10s %7s %9s %9s %12s %7s %9s %9s\n' route "req/s" "÷plain" "p50 µs" "p99 µs" "CPU µs/req" "÷plain" "non-2xx" errors
for r in plain dedupe; do
    printf '%-8s %10.0f %7s %9.0f %9.0f %12.2f %7s %9s %9s\n' "$r" "$(m "$r" rps)" "$(ratio "$(m "$r" rps)" "$(m plain rps)")" \
        "$(m "$r" p50)" "$(m "$r" p99)" "$(m "$r" cpu_us)" "$(ratio "$(m "$r" cpu_us)" "$(m plain cpu_us)")" \
        "$(sum "$r" non2xx)" "$(sum "$r" errors)"
done
echo
echo "per round (req/s): plain ${RESULT["plain|rps"]}; dedupe ${RESULT["dedupe|rps"]}"
echo "per round (CPU µs/req): plain ${RESULT["plain|cpu_us"]}; dedupe ${RESULT["dedupe|cpu_us"]}"
echo "dedupe requests over the run: $(sum dedupe requests) unique ids (max_keys $MAX_KEYS)"
echo "hookgate: $HOOKGATE"
echo "rounds=$ROUNDS duration=${DURATION}s workers=$WORKERS key=$KEY cores=$(nproc) $(uname -r)"
echo "load average at the end (other work on the machine shows here): $(cut -d' ' -f1-3 /proc/loadavg)"
