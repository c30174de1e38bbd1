#!/usr/bin/env bash
# The spool (issue 30) beside live forwarding to the same backend, on loopback.
#
# Needs (installs nothing): nginx-light wrk curl sqlite3
#   apt-get install nginx-light wrk curl sqlite3
# Run from the repository root:  bench/spool.sh        (~2-3 minutes with the defaults)
# Knobs: ROUNDS (3) and DURATION (4 s) for the throughput rounds;
#   SUSTAIN_RATE (5000 req/s) and SUSTAIN_DURATION (6 s) for the sustained run;
#   LAT_ROUNDS (5), LAT_DURATION (4 s), RATE (1000 req/s), CONNS (16) for the
#   latency rounds; DRAIN_MAX (60 s) for the spool to empty after a round;
#   ROUNDS=0 runs the latency rounds only;
#   ALWAYS_ORDER ("none", or "telegram_chat": the bodies carry no chat, so
#   every request then waits in one line and is delivered one at a time);
#   HOOKGATE (a hookgate binary to measure instead of target/release/hookgate,
#   e.g. another commit's build, to compare two builds in turn).
# Every run is bounded: wrk -d, loadgen's duration, curl --max-time, DRAIN_MAX.
#
# One nginx is the backend (200 "ok" to any POST, access log buffered) and
# hookgate has three routes to it: /live (no store), /fallback
# (store = fallback) and /always (store = always), order "none", the spool in
# the scratch folder (the same disk as /var/lib here: fsync is real).
#
# Workloads:
#   throughput  wrk -t1 -c64 POSTing a 1 KiB JSON body, alternately to
#               /always and /live, DURATION seconds each. Acknowledged req/s
#               counts 2xx answers only (wrk's "Non-2xx or 3xx responses" are
#               taken off; a 503 "spool full" is not an acknowledgement). After
#               each /always run the script waits until the spool file holds
#               nothing waiting (bounded by DRAIN_MAX), so the live round
#               after it does not share the cores with the deliveries, and
#               records: the deliveries made during the run (acknowledged
#               minus still waiting at its end), the time the rest took, and
#               hookgate's CPU over run + drain. The backend's access log
#               must then hold at least as many /always requests as were
#               acknowledged (checked once at the end).
#   sustained   examples/loadgen at SUSTAIN_RATE on 64 connections to /always
#               for SUSTAIN_DURATION seconds, once per round after the two
#               above: the acknowledgement target as a steady rate. If the
#               deliveries keep up, what waits at the end stays near the
#               route's concurrency (8); if not, it grows by the difference
#               every second, and a long enough run ends in 503 (max_bytes).
#   latency     examples/loadgen at a fixed RATE on CONNS keep-alive
#               connections POSTing the same body, rounds rotating direct
#               (the backend itself), /live, /fallback. The fixed rate keeps
#               the machine far from saturation (about 1/50 of what wrk -c64
#               gets through here) so what is measured is the path's latency,
#               not queueing; a closed-loop wrk -c4 would send back to back
#               and load both cores, and wrk2 (fixed rate) is not packaged.
#               loadgen times each request from its write (see its header).
#               Each round then runs /live and /fallback at the same time
#               (two loadgens at RATE/2 on CONNS/2 connections each), so that
#               the neighbours' noise on a shared VM hits both alike: on this
#               machine the sequential p50 ratio of one build moved between
#               0.84 and 1.32 in seven runs, which hides a 5% target; the
#               together ratio stayed within 1.05-1.09.
# The table shows medians over the rounds, ratios, and CPU per request: user
# and system time of hookgate (/proc/PID/stat deltas) divided by requests.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4}
LAT_ROUNDS=${LAT_ROUNDS:-5}
LAT_DURATION=${LAT_DURATION:-4}
SUSTAIN_RATE=${SUSTAIN_RATE:-5000}
SUSTAIN_DURATION=${SUSTAIN_DURATION:-6}
RATE=${RATE:-1000}
CONNS=${CONNS:-16}
DRAIN_MAX=${DRAIN_MAX:-60}
ALWAYS_ORDER=${ALWAYS_ORDER:-none}
require_tools "apt-get install nginx-light wrk curl sqlite3" nginx wrk curl sqlite3
if [ -n "${HOOKGATE:-}" ]; then
    cargo build --release --quiet --example loadgen
else
    cargo build --release --quiet --bin hookgate --example loadgen
    HOOKGATE=${CARGO_TARGET_DIR:-$PWD/target}/release/hookgate
fi
LOADGEN=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/loadgen

make_workdir spool
BACK=19401; PROXY=19483
require_free_ports "$BACK" "$PROXY"

cat > "$WORK/backend.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/backend.pid;
error_log $WORK/backend.err;
events { worker_connections 4096; }
http {
  log_format path '\$request_uri \$status';
  access_log $WORK/backend.access path buffer=64k flush=1s;
  client_body_buffer_size 16k;
  server { listen 127.0.0.1:$BACK; location / { return 200 "ok\n"; } }
}
EOF
nginx -c "$WORK/backend.conf" & BACKEND_PID=$!; PIDS+=("$BACKEND_PID")

mkdir "$WORK/spool"
cat > "$WORK/hookgate.toml" <<EOF
[listen]
addrs = ["127.0.0.1:$PROXY"]
[spool]
dir = "spool"
max_bytes = "8GiB"
[upstreams.backend]
url = "http://127.0.0.1:$BACK"
[[routes]]
name = "live"
path = "/live"
methods = ["POST"]
upstream = "backend"
[[routes]]
name = "fallback"
path = "/fallback"
methods = ["POST"]
upstream = "backend"
store = { mode = "fallback", ack = 200, order = "none" }
[[routes]]
name = "always"
path = "/always"
methods = ["POST"]
upstream = "backend"
store = { mode = "always", ack = 200, order = "$ALWAYS_ORDER" }
[default]
upstream = "backend"
EOF
"$HOOKGATE" run -c "$WORK/hookgate.toml" >"$WORK/hookgate.out" 2>"$WORK/hookgate.log" & HOOKGATE_PID=$!
PIDS+=("$HOOKGATE_PID")
SPOOL_FILE=$WORK/spool/spool.sqlite3

write_post_lua "$WORK/post.lua"
# The same 1 KiB body for loadgen.
lua_body=$(sed -n "s/^wrk.body = //p" "$WORK/post.lua")
printf '%s' '{"update_id":10000,"message":{"text":"' > "$WORK/body.json"
head -c 970 /dev/zero | tr '\0' x >> "$WORK/body.json"
printf '%s' '"}}' >> "$WORK/body.json"
[[ $lua_body == *'string.rep("x", 970)'* ]] || { echo "bench/lib.sh's POST body changed; update body.json here" >&2; exit 1; }

for _ in $(seq 50); do
    curl -sf --max-time 2 -o /dev/null -X POST --data '{}' "http://127.0.0.1:$PROXY/live" && break
    sleep 0.1
done
for route in live fallback always; do
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST --data-binary @"$WORK/body.json" \
        -H 'Content-Type: application/json' "http://127.0.0.1:$PROXY/$route")
    [ "$code" = 200 ] || { echo "POST /$route answered $code; see $WORK/hookgate.log" >&2; cat "$WORK/hookgate.log" >&2; exit 1; }
done

# hookgate's user and system CPU time in clock ticks: "user sys".
cpu_ticks() { pid_cpu_ticks "$HOOKGATE_PID"; }
declare -A RESULT
record() { RESULT["$1|$2"]+="$3 "; } # target metric value
last() { echo "${RESULT["$1|$2"]:-}" | awk '{print $NF}'; }
sum() { echo "${RESULT["$1|$2"]:-}" | awk '{ n = 0; for (i = 1; i <= NF; i++) n += $i; print n }'; }
m() { echo "${RESULT["$1|$2"]:-}" | tr ' ' '\n' | grep -v '^$' | median; }
waiting() { sqlite3 -cmd ".timeout 2000" "$SPOOL_FILE" "SELECT count(*) FROM requests WHERE dead = 0"; }
dead() { sqlite3 -cmd ".timeout 2000" "$SPOOL_FILE" "SELECT count(*) FROM requests WHERE dead = 1"; }

# Waits until the spool holds nothing waiting (at most DRAIN_MAX); prints the seconds it took.
drain() {
    local start
    start=$(date +%s.%N)
    while [ "$(waiting)" -gt 0 ]; do
        awk -v s="$start" -v now="$(date +%s.%N)" -v max="$DRAIN_MAX" 'BEGIN { exit !(now - s > max) }' && {
            echo "the spool still holds $(waiting) requests ${DRAIN_MAX}s after the run; see $WORK/hookgate.log" >&2
            break
        }
        sleep 0.1
    done
    awk -v s="$start" -v now="$(date +%s.%N)" 'BEGIN { print now - s }'
}

ACKED_ALWAYS=0
throughput() { # route
    local route=$1 before after out requests non2xx acked left start drained end_ticks
    before=$(cpu_ticks)
    out=$(wrk -t1 -c64 -d"${DURATION}s" --latency -s "$WORK/post.lua" "http://127.0.0.1:$PROXY/$route")
    after=$(cpu_ticks)
    requests=$(echo "$out" | awk '/requests in/{print $1}')
    non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses/{print $NF}'); non2xx=${non2xx:-0}
    acked=$((requests - non2xx))
    record "$route" acked_rps "$(awk -v n="$acked" -v d="$DURATION" 'BEGIN { print n / d }')"
    record "$route" non2xx "$non2xx"
    record "$route" errors "$(echo "$out" | awk '/Socket errors/ { gsub(/[^0-9 ]/, " "); n = 0; for (i = 1; i <= NF; i++) n += $i; print n }')"
    record "$route" p50 "$(to_us "$(echo "$out" | awk '$1 == "50%" {print $2}')")"
    record "$route" p99 "$(to_us "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
    record "$route" cpu_us "$(per_request_us "$before" "$after" "$acked")"
    [ "$route" = always ] || return 0
    ACKED_ALWAYS=$((ACKED_ALWAYS + acked))
    left=$(waiting)
    record always delivered_rps "$(awk -v n="$acked" -v l="$left" -v d="$DURATION" 'BEGIN { print (n - l) / d }')"
    drained=$(drain)
    end_ticks=$(cpu_ticks)
    record always left_at_end "$left"
    record always drain_s "$drained"
    record always overall_delivery_rps "$(awk -v n="$acked" -v d="$DURATION" -v x="$drained" 'BEGIN { print n / (d + x) }')"
    record always cpu_with_delivery_us "$(per_request_us "$before" "$end_ticks" "$acked")"
}

sustained() {
    local before after line n errors left
    before=$(cpu_ticks)
    line=$("$LOADGEN" "http://127.0.0.1:$PROXY/always" "$SUSTAIN_RATE" 64 "$SUSTAIN_DURATION" "$WORK/body.json")
    left=$(waiting)
    after=$(cpu_ticks)
    n=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')
    errors=$(echo "$line" | sed 's/.*errors=\([0-9]*\).*/\1/')
    ACKED_ALWAYS=$((ACKED_ALWAYS + n))
    record sustained acked_rps "$(awk -v n="$n" -v d="$SUSTAIN_DURATION" 'BEGIN { print n / d }')"
    record sustained errors "$errors"
    record sustained left_at_end "$left"
    record sustained p50 "$(echo "$line" | sed 's/.*p50_us=\([0-9]*\).*/\1/')"
    record sustained p99 "$(echo "$line" | sed 's/.*p99_us=\([0-9]*\).*/\1/')"
    record sustained cpu_us "$(per_request_us "$before" "$after" "$n")"
    record sustained drain_s "$(drain)"
}

# /live and /fallback at the same time, each at RATE/2 on CONNS/2 connections
# (two loadgens): whatever else runs on the machine then hits both alike.
latency_together() {
    local live fallback
    "$LOADGEN" "http://127.0.0.1:$PROXY/live" "$((RATE / 2))" "$((CONNS / 2))" "$LAT_DURATION" "$WORK/body.json" > "$WORK/lat-live" &
    live=$!
    "$LOADGEN" "http://127.0.0.1:$PROXY/fallback" "$((RATE / 2))" "$((CONNS / 2))" "$LAT_DURATION" "$WORK/body.json" > "$WORK/lat-fallback" &
    fallback=$!
    wait "$live" "$fallback"
    for t in live fallback; do
        record "tog-$t" p50 "$(sed 's/.*p50_us=\([0-9]*\).*/\1/' "$WORK/lat-$t")"
        record "tog-$t" p99 "$(sed 's/.*p99_us=\([0-9]*\).*/\1/' "$WORK/lat-$t")"
        record "tog-$t" errors "$(sed 's/.*errors=\([0-9]*\).*/\1/' "$WORK/lat-$t")"
    done
}

latency() { # target: direct | live | fallback
    local url="http://127.0.0.1:$PROXY/$1" before after line n
    [ "$1" = direct ] && url="http://127.0.0.1:$BACK/live"
    before=$(cpu_ticks)
    line=$("$LOADGEN" "$url" "$RATE" "$CONNS" "$LAT_DURATION" "$WORK/body.json")
    after=$(cpu_ticks)
    n=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')
    record "lat-$1" p50 "$(echo "$line" | sed 's/.*p50_us=\([0-9]*\).*/\1/')"
    record "lat-$1" p99 "$(echo "$line" | sed 's/.*p99_us=\([0-9]*\).*/\1/')"
    record "lat-$1" errors "$(echo "$line" | sed 's/.*errors=\([0-9]*\).*/\1/')"
    [ "$1" = direct ] || record "lat-$1" cpu_us "$(per_request_us "$before" "$after" "$n")"
}

echo "throughput: $ROUNDS rounds of ${DURATION}s (always, live); latency: $LAT_ROUNDS rounds of ${LAT_DURATION}s at $RATE req/s" >&2
for i in $(seq "$ROUNDS"); do
    throughput always; throughput live; sustained
    echo "  throughput round $i: always $(last always acked_rps) acked/s, live $(last live acked_rps) req/s;" \
        "sustained $(last sustained acked_rps)/s left $(last sustained left_at_end) waiting" >&2
done
for i in $(seq "$LAT_ROUNDS"); do
    for t in direct live fallback; do latency "$t"; done
    latency_together
    echo "  latency round $i: p50 µs direct $(last lat-direct p50), live $(last lat-live p50), fallback $(last lat-fallback p50);" \
        "together: live $(last tog-live p50), fallback $(last tog-fallback p50)" >&2
done

if [ "$ROUNDS" -gt 0 ]; then
# Did the backend get every acknowledged request? (its access log is buffered for 1 s)
kill -USR1 "$BACKEND_PID" 2>/dev/null || true; sleep 1.5
got=$(awk '$1 == "/always" && $2 == 200' "$WORK/backend.access" 2>/dev/null | wc -l)
# The three set-up POSTs above reached the backend too.
got=$((got - 1))

printf '\n%-12s %12s %9s %9s %9s %12s %10s\n' throughput "req/s (2xx)" "÷live" "p50 µs" "p99 µs" "CPU µs/req" "non-2xx"
for r in live always; do
    printf '%-12s %12.0f %9s %9.0f %9.0f %12.2f %10s\n' "$r" "$(m "$r" acked_rps)" "$(ratio "$(m "$r" acked_rps)" "$(m live acked_rps)")" \
        "$(m "$r" p50)" "$(m "$r" p99)" "$(m "$r" cpu_us)" "$(sum "$r" non2xx)"
done
printf '\n%-12s %14s %14s %10s %20s\n' delivery "during run /s" "incl. drain /s" "drain s" "CPU µs/req w/ drain"
printf '%-12s %14.0f %14.0f %10.1f %20.2f\n' always "$(m always delivered_rps)" "$(m always overall_delivery_rps)" \
    "$(m always drain_s)" "$(m always cpu_with_delivery_us)"
printf '%-12s %14s %10s %9s %9s %12s %16s %10s\n' sustained "acked/s" errors "p50 µs" "p99 µs" "CPU µs/req" "waiting at end" "drain s"
printf '%-12s %14.0f %10s %9s %9s %12.2f %16s %10.1f\n' "$SUSTAIN_RATE/s" "$(m sustained acked_rps)" "$(sum sustained errors)" \
    "$(m sustained p50)" "$(m sustained p99)" "$(m sustained cpu_us)" "$(m sustained left_at_end)" "$(m sustained drain_s)"
echo "acknowledged on /always: $ACKED_ALWAYS; the backend's log has $got; still waiting: $(waiting); dead letters: $(dead)"
[ "$got" -ge "$ACKED_ALWAYS" ] || echo "WARNING: fewer deliveries than acknowledgements" >&2
fi

printf '\n%-12s %9s %9s %9s %9s %14s %14s %12s %7s\n' latency "p50 µs" "p99 µs" "p50÷live" "p99÷live" "added p50 µs" "added p99 µs" "CPU µs/req" errors
for t in direct live fallback; do
    p50=$(m "lat-$t" p50); p99=$(m "lat-$t" p99)
    printf '%-12s %9s %9s %9s %9s %14s %14s %12s %7s\n' "$t" "$p50" "$p99" "$(ratio "$p50" "$(m lat-live p50)")" \
        "$(ratio "$p99" "$(m lat-live p99)")" "$((p50 - $(m lat-direct p50)))" "$((p99 - $(m lat-direct p99)))" \
        "$([ "$t" = direct ] && echo - || printf '%.2f' "$(m "lat-$t" cpu_us)")" \
        "$(sum "lat-$t" errors)"
done
# Rounds run in pairs (live, then fallback, a few seconds apart): the median of
# the per-round ratios cancels the drift between rounds that both medians carry.
paired() { # prefix metric
    paste -d' ' <(echo "${RESULT["$1-fallback|$2"]}" | tr ' ' '\n' | grep -v '^$') \
        <(echo "${RESULT["$1-live|$2"]}" | tr ' ' '\n' | grep -v '^$') | awk '$2 > 0 { print $1 / $2 }' | median
}
printf 'fallback÷live, median of the per-round ratios: p50 %.3f, p99 %.3f\n' "$(paired lat p50)" "$(paired lat p99)"
printf '\n%-22s %9s %9s %9s %9s %7s\n' "together (each $((RATE / 2))/s)" "p50 µs" "p99 µs" "p50÷live" "p99÷live" errors
for t in live fallback; do
    printf '%-22s %9s %9s %9s %9s %7s\n' "$t" "$(m "tog-$t" p50)" "$(m "tog-$t" p99)" "$(ratio "$(m "tog-$t" p50)" "$(m tog-live p50)")" \
        "$(ratio "$(m "tog-$t" p99)" "$(m tog-live p99)")" "$(sum "tog-$t" errors)"
done
printf 'fallback÷live together, median of the per-round ratios: p50 %.3f, p99 %.3f\n' "$(paired tog p50)" "$(paired tog p99)"
echo
echo "per round (latency p50 / p99 µs):"
for t in direct live fallback; do echo "  $t: p50 ${RESULT["lat-$t|p50"]}/ p99 ${RESULT["lat-$t|p99"]}"; done
for t in live fallback; do echo "  together $t: p50 ${RESULT["tog-$t|p50"]}/ p99 ${RESULT["tog-$t|p99"]}"; done
if [ "$ROUNDS" -gt 0 ]; then
    echo "per round (throughput req/s): always ${RESULT["always|acked_rps"]}; live ${RESULT["live|acked_rps"]}"
    echo "per round (sustained): waiting at end ${RESULT["sustained|left_at_end"]}; drain s ${RESULT["sustained|drain_s"]}"
fi
echo
echo "hookgate: $HOOKGATE"
echo "rounds=$ROUNDS duration=${DURATION}s lat_rounds=$LAT_ROUNDS lat_duration=${LAT_DURATION}s rate=$RATE conns=$CONNS order=$ALWAYS_ORDER cores=$(nproc) $(uname -r)"
echo "load average at the end (other work on the machine shows here): $(cut -d' ' -f1-3 /proc/loadavg)"
