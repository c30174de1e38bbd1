#!/usr/bin/env bash
# Side-by-side benchmark of hookgate, nginx and HAProxy on loopback.
#
# Needs (installs nothing): nginx-light haproxy wrk nghttp2-client (h2load) curl python3 openssl
#   apt-get install nginx-light haproxy wrk nghttp2-client curl python3 openssl
# Run from the repository root:  bench/compare.sh
# Knobs: ROUNDS (5), DURATION seconds per wrk or h2load run (5), WORKERS ("1 2"),
#   STREAM_ROUNDS (7: one 100 MiB stream moves the most between rounds here),
#   WORKLOADS (all of "get post tls stream latency memory h2 idle-tls"; the get
#   rows run per worker count, the others at 1 worker), IDLE_CONNS (10000).
#   The h2 and idle-tls rows alone: WORKLOADS="h2 idle-tls" WORKERS=1 bench/compare.sh
# hookgate is built into $CARGO_TARGET_DIR (default ./target).
# Every run is bounded: wrk -d, h2load -D, curl --max-time, loadgen's duration,
# bench/idle_conns.py's 120 s budgets.
#
# Workloads, each in interleaved rounds (nginx, haproxy, hookgate, nginx, ...):
#   get      GET through the default route (64 connections), per worker count
#   post     POST of a 1 KiB JSON body to the webhook route (1 worker)
#   tls      keep-alive GET over HTTPS (TLS 1.3, ECDSA P-256), 1 worker
#   stream   a 100 MiB response, throughput vs direct and peak RSS growth (1 worker)
#   latency  1,000 req/s on 16 connections: p50/p99 in µs, and added over direct
#   memory   idle RSS at start; then 10,000 idle keep-alive HTTP/1.1 clients
#            (one GET answered each): RSS before, with them, growth per
#            connection, and 12 s after they left; each kind of idle
#            connection (this and idle-tls) on freshly started proxies
#   h2-c16m10, h2-c64m1  h2load over TLS (ALPN h2) GET / through the default
#            route: 16 connections of 10 streams, 64 connections of 1 stream (1 worker)
#   h2-local h2load -c16 -m10 on /local, which each proxy answers itself (200
#            "ok"), so the HTTP/2 server's own cost shows apart from forwarding
#   idle-tls 10,000 idle TLS connections, HTTP/1.1 (one GET answered each) and
#            HTTP/2 (preface and SETTINGS exchanged), RSS growth per connection
#            beside the same for plain HTTP/1.1 (bench/idle_conns.py opens them)
# The TLS listeners offer h2 and http/1.1 by ALPN; wrk sends no ALPN, so its
# tls row is HTTP/1.1 as before.
# The table shows medians over the rounds and each proxy's ratio to nginx, and
# CPU per request: user and system time of all the proxy's processes over the
# run (/proc/PID/stat deltas), divided by the requests wrk completed (h2load:
# the requests answered 2xx; any other answer or failure is counted). On 2 cores
# wrk and the upstream compete with the proxy, so req/s is compressed; CPU per
# request is the figure that separates the proxies.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
WORKERS=${WORKERS:-"1 2"}
STREAM_ROUNDS=${STREAM_ROUNDS:-7}
WORKLOADS=${WORKLOADS:-"get post tls stream latency memory h2 idle-tls"}
IDLE_CONNS=${IDLE_CONNS:-10000}
require_tools "apt-get install nginx-light haproxy wrk nghttp2-client curl python3 openssl" \
    nginx haproxy wrk h2load curl python3 openssl
cargo build --release --quiet --bin hookgate --example loadgen
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
HOOKGATE=$TARGET/release/hookgate
LOADGEN=$TARGET/release/examples/loadgen
want() { [[ " $WORKLOADS " == *" $1 "* ]]; }

make_workdir bench
ulimit -n "$(ulimit -Hn)"  # 10,000 idle connections need the room
if want memory || want idle-tls; then
    [ "$(ulimit -n)" -ge $((IDLE_CONNS + 1000)) ] || {
        echo "ulimit -n is $(ulimit -n): $IDLE_CONNS idle connections need $((IDLE_CONNS + 1000)) (raise the hard limit, or set IDLE_CONNS)" >&2; exit 1; }
fi

# Ports: upstreams 19001/19002, proxies nginx 19081, haproxy 19082, hookgate 19083;
# the same proxies over TLS on 19091, 19092, 19093.
UP_FRONT=19001; UP_BACK=19002
declare -A PORT=([nginx]=19081 [haproxy]=19082 [hookgate]=19083)
declare -A TLS_PORT=([nginx]=19091 [haproxy]=19092 [hookgate]=19093)
PROXIES="nginx haproxy hookgate"
# Idle upstream connections each pool keeps (nginx keepalive, hookgate
# max_idle; HAProxy keeps any number): above h2load -c16 -m10's 160 requests
# in flight, so that row measures forwarding, not connections opened and
# closed past a pool of 64 (which every HTTP/1.1 row, 64 connections, fits).
UP_IDLE=256
require_free_ports "$UP_FRONT" "$UP_BACK" "${PORT[@]}" "${TLS_PORT[@]}"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat "$WORK/cert.pem" "$WORK/key.pem" > "$WORK/haproxy.pem"

head -c $((100 * 1024 * 1024)) /dev/zero > "$WORK/big"
chmod 755 "$WORK"; chmod 644 "$WORK/big"  # nginx workers run as www-data
cat > "$WORK/upstream.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/upstream.pid;
error_log $WORK/upstream.err;
events { worker_connections 20000; }
http {
  access_log off;
  server { listen 127.0.0.1:$UP_FRONT; root $WORK; location = / { return 200 "frontend\n"; } location = /big { } }
  server { listen 127.0.0.1:$UP_BACK; location / { return 200 "backend\n"; } }
}
EOF
nginx -c "$WORK/upstream.conf" & UPSTREAM_PID=$!; PIDS+=("$UPSTREAM_PID")

start_proxies() { # $1 = workers
    local w=$1
    cat > "$WORK/nginx.conf" <<EOF
worker_processes $w;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 20000; }
http {
  access_log $WORK/nginx.access;
$(nginx_upstreams "$UP_FRONT" "$UP_BACK" "$UP_IDLE")
  server {
    listen 127.0.0.1:${PORT[nginx]};
    listen 127.0.0.1:${TLS_PORT[nginx]} ssl http2;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    # nginx closes a connection after 1,000 requests by default; h2load does
    # not reconnect, so its rows would stop there. hookgate and HAProxy have no
    # such limit, so it is lifted for every row (wrk reconnects: its rows paid
    # one new connection per 1,000 requests before, not measurably).
    keepalive_requests 100000000;
    location = /local { return 200 "ok\n"; }
$(nginx_routes)
  }
}
EOF
    cat > "$WORK/haproxy.cfg" <<EOF
global
  nbthread $w
  # 2 descriptors per connection must fit the 20,000 hard limit here.
  maxconn 9990
  ulimit-n 20000
defaults
  mode http
  timeout connect 3s
  timeout client 60s
  timeout server 60s
  option forwardfor
frontend web
  bind 127.0.0.1:${PORT[haproxy]}
  bind 127.0.0.1:${TLS_PORT[haproxy]} ssl crt $WORK/haproxy.pem alpn h2,http/1.1
  http-request return status 200 content-type text/plain string "ok\n" if { path /local }
  acl webhook path /api/v1/guest/telegram/webhook
  acl post method POST
  use_backend backend if webhook post
  default_backend frontend
backend frontend
  server f 127.0.0.1:$UP_FRONT
backend backend
  server b 127.0.0.1:$UP_BACK
EOF
    cat > "$WORK/hookgate.toml" <<EOF
[listen]
addrs = ["127.0.0.1:${PORT[hookgate]}"]
[listen.tls]
addrs = ["127.0.0.1:${TLS_PORT[hookgate]}"]
certificates = [{ cert_file = "$WORK/cert.pem", key_file = "$WORK/key.pem" }]
http2 = true
[runtime]
workers = $w
[limits]
max_connections = 20000
$(hookgate_routes "$UP_FRONT" "$UP_BACK" "$UP_IDLE")
[[routes]]
name = "local"
path = "/local"
respond = { status = 200, body = "ok\n" }
EOF
    nginx -c "$WORK/nginx.conf" & NGINX_PID=$!
    haproxy -f "$WORK/haproxy.cfg" -q & HAPROXY_PID=$!
    "$HOOKGATE" run -c "$WORK/hookgate.toml" 2>"$WORK/hookgate.log" & HOOKGATE_PID=$!
    PIDS+=("$NGINX_PID" "$HAPROXY_PID" "$HOOKGATE_PID")
    sleep 1
    for p in $PROXIES; do curl -sf --max-time 5 "http://127.0.0.1:${PORT[$p]}/" >/dev/null || { echo "$p did not start" >&2; exit 1; }; done
}

stop_proxies() {
    kill "$NGINX_PID" "$HAPROXY_PID" "$HOOKGATE_PID" 2>/dev/null || true
    wait "$NGINX_PID" "$HAPROXY_PID" "$HOOKGATE_PID" 2>/dev/null || true
}

# Every process of a proxy (nginx master + workers); "direct" is the upstream.
proxy_pids() {
    case $1 in
        nginx) echo "$NGINX_PID $(pgrep -P "$NGINX_PID" || true)" ;;
        haproxy) echo "$HAPROXY_PID $(pgrep -P "$HAPROXY_PID" || true)" ;;
        hookgate) echo "$HOOKGATE_PID" ;;
        direct) echo "$UPSTREAM_PID $(pgrep -P "$UPSTREAM_PID" || true)" ;;
    esac
}

# RSS of a proxy in KiB, all its processes.
rss_kib() {
    local total=0
    for pid in $(proxy_pids "$1"); do
        total=$((total + $(awk '/VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# User and system CPU time of a proxy's processes, in clock ticks: "user sys".
cpu_ticks() {
    local user=0 sys=0 u s
    for pid in $(proxy_pids "$1"); do
        read -r u s < <(pid_cpu_ticks "$pid") || continue
        user=$((user + u)); sys=$((sys + s))
    done
    echo "$user $sys"
}

declare -A RESULT
record() { RESULT["$1|$2|$3"]+="$4 "; } # workload proxy metric value

run_wrk() { # workload proxy extra-args...
    local workload=$1 p=$2; shift 2
    local out before after requests url="http://127.0.0.1:${PORT[$p]}${URL_PATH}"
    [ "$workload" = tls ] && url="https://localhost:${TLS_PORT[$p]}${URL_PATH}"
    before=$(cpu_ticks "$p")
    out=$(wrk -t1 -c64 -d"${DURATION}s" --latency "$@" "$url")
    after=$(cpu_ticks "$p")
    requests=$(echo "$out" | awk '/requests in/{print $1}')
    record "$workload" "$p" user_us "$(awk -v b="${before% *}" -v a="${after% *}" -v n="$requests" -v t="$TICK_US" 'BEGIN { print (a - b) * t / n }')"
    record "$workload" "$p" sys_us "$(awk -v b="${before#* }" -v a="${after#* }" -v n="$requests" -v t="$TICK_US" 'BEGIN { print (a - b) * t / n }')"
    record "$workload" "$p" rps "$(echo "$out" | awk '/Requests\/sec/{print $2}')"
    record "$workload" "$p" p50 "$(to_us "$(echo "$out" | awk '$1 == "50%" {print $2}')")"
    record "$workload" "$p" p99 "$(to_us "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
    record "$workload" "$p" rss "$(rss_kib "$p")"
}

# One h2load run over TLS (ALPN h2, 1 thread) against proxy $2's TLS port:
# req/s as h2load reports it, CPU per completed request, and the requests
# that failed or were answered other than 2xx (summed over rounds, and said
# on stderr when there are any). Usage: run_h2load WORKLOAD PROXY PATH CLIENTS STREAMS
run_h2load() {
    local workload=$1 p=$2 path=$3 clients=$4 streams=$5 out before after completed ok bad
    before=$(cpu_ticks "$p")
    out=$(h2load -t1 -c"$clients" -m"$streams" -D"$DURATION" "https://localhost:${TLS_PORT[$p]}$path" 2>&1) || true
    after=$(cpu_ticks "$p")
    completed=$(echo "$out" | awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($i ~ /^done/) print $(i - 1) }')
    ok=$(echo "$out" | awk '/^status codes:/ { print $3 }')
    # Failed, errored and timed-out requests, and answers other than 2xx (not
    # done - 2xx: an answer that lands as the run stops is counted in the
    # status codes and not in done, which made -1).
    bad=$(echo "$out" | awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($i ~ /^(failed|errored|timeout)/) n += $(i - 1) }
        /^status codes:/ { n += $5 + $7 + $9 } END { print n + 0 }')
    [ "$bad" = 0 ] || echo "h2load $workload $p: $bad of ${completed:-0} requests failed or not 2xx" >&2
    record "$workload" "$p" rps "$(echo "$out" | awk '/^finished in/ { print $4 }')"
    record "$workload" "$p" user_us "$(awk -v b="${before% *}" -v a="${after% *}" -v n="${ok:-0}" -v t="$TICK_US" 'BEGIN { print n ? (a - b) * t / n : 0 }')"
    record "$workload" "$p" sys_us "$(awk -v b="${before#* }" -v a="${after#* }" -v n="${ok:-0}" -v t="$TICK_US" 'BEGIN { print n ? (a - b) * t / n : 0 }')"
    record "$workload" "$p" bad "$bad"
}

# IDLE_CONNS idle connections of MODE (plain, tls-h1, tls-h2: see
# bench/idle_conns.py) to proxy $2, held while its RSS is read, then closed;
# records RSS before, with them and 12 s after they left, and the growth per
# connection served. Usage: idle_once MODE PROXY
idle_once() {
    local mode=$1 p=$2 port before with served hold
    port=${TLS_PORT[$p]}; [ "$mode" = plain ] && port=${PORT[$p]}
    rm -f "$WORK/ready" "$WORK/release"
    before=$(rss_kib "$p")
    python3 bench/idle_conns.py "$mode" "$port" "$IDLE_CONNS" "$WORK/ready" "$WORK/release" & hold=$!
    while [ ! -s "$WORK/ready" ] && kill -0 "$hold" 2>/dev/null; do sleep 0.2; done
    sleep 2  # what the proxy does just after the last connection (a handshake's buffers freed)
    with=$(rss_kib "$p"); served=$(cat "$WORK/ready" 2>/dev/null || echo 0)
    touch "$WORK/release"; wait "$hold" || true
    record "idle-$mode" "$p" before "$before"
    record "idle-$mode" "$p" with "$with"
    record "idle-$mode" "$p" served "$served"
    record "idle-$mode" "$p" per_conn "$(awk -v b="$before" -v w="$with" -v n="$served" 'BEGIN { print n ? (w - b) / n : 0 }')"
    # hookgate hands freed memory back every 10 s (malloc_trim); give all three as long.
    sleep 12
    record "idle-$mode" "$p" after "$(rss_kib "$p")"
}

# One 100 MiB download from $1 (direct: the upstream itself), recording its
# throughput and the peak growth of $1's RSS. The RSS is sampled every 50 ms
# while the download runs, for direct too (the upstream's), so the sampler's
# own CPU weighs on both sides of the ratio alike.
stream_once() {
    local target=$1 port before peak now cpid
    port=$UP_FRONT; [ "$target" = direct ] || port=${PORT[$target]}
    before=$(rss_kib "$target"); peak=$before
    curl -s -o /dev/null --max-time 60 -w '%{speed_download}' "http://127.0.0.1:$port/big" > "$WORK/speed" &
    cpid=$!
    while kill -0 "$cpid" 2>/dev/null; do
        now=$(rss_kib "$target"); [ "$now" -gt "$peak" ] && peak=$now; sleep 0.05
    done
    wait "$cpid" || true
    record stream "$target" mbps "$(awk '{print $1 / 1048576}' "$WORK/speed")"
    [ "$target" = direct ] || record stream "$target" rss_growth "$((peak - before))"
}

write_post_lua "$WORK/post.lua"

for w in $WORKERS; do
    start_proxies "$w"
    # Idle means freshly started, before any load has grown buffers and caches.
    [ "$w" = 1 ] && want memory && for p in $PROXIES; do record memory "$p" idle_rss "$(rss_kib "$p")"; done
    URL_PATH=/
    if want get; then for _ in $(seq "$ROUNDS"); do for p in $PROXIES; do run_wrk "get-w$w" "$p"; done; done; fi
    if [ "$w" = 1 ]; then
        if want post; then
            URL_PATH=/api/v1/guest/telegram/webhook
            for _ in $(seq "$ROUNDS"); do for p in $PROXIES; do run_wrk post "$p" -s "$WORK/post.lua"; done; done
            URL_PATH=/
        fi
        if want tls; then for _ in $(seq "$ROUNDS"); do for p in $PROXIES; do run_wrk tls "$p"; done; done; fi

        if want h2; then
            for _ in $(seq "$ROUNDS"); do for p in $PROXIES; do
                run_h2load h2-c16m10 "$p" / 16 10
                run_h2load h2-c64m1 "$p" / 64 1
                run_h2load h2-local "$p" /local 16 10
            done; done
        fi

        if want stream; then
            for _ in $(seq "$STREAM_ROUNDS"); do for target in direct $PROXIES; do stream_once "$target"; done; done
        fi

        if want latency; then
            record latency direct p50 0; record latency direct p99 0
            for target in direct $PROXIES; do
                port=$UP_FRONT; [ "$target" = direct ] || port=${PORT[$target]}
                line=$("$LOADGEN" "http://127.0.0.1:$port/" 1000 16 10)
                RESULT["latency|$target|p50"]=$(echo "$line" | sed 's/.*p50_us=\([0-9]*\).*/\1/')
                RESULT["latency|$target|p99"]=$(echo "$line" | sed 's/.*p99_us=\([0-9]*\).*/\1/')
            done
        fi

        # Each kind of idle connection is measured on freshly started proxies:
        # nginx and HAProxy keep the memory of connections that left, and the
        # next kind would move into it and seem to cost nothing.
        modes=""; want memory && modes=plain; want idle-tls && modes="$modes tls-h1 tls-h2"
        for mode in $modes; do
            stop_proxies; start_proxies "$w"
            for p in $PROXIES; do idle_once "$mode" "$p"; done
        done
    fi
    stop_proxies
done

# The table.
m() { echo "${RESULT["$1|$2|$3"]:-}" | tr ' ' '\n' | grep -v '^$' | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
cpu() { awk -v u="$(m "$1" "$2" user_us)" -v s="$(m "$1" "$2" sys_us)" 'BEGIN { print u + s }'; }
[ -z "${RESULT["get-w1|nginx|rps"]:-}${RESULT["tls|nginx|rps"]:-}${RESULT["post|nginx|rps"]:-}" ] ||
    printf '\n%-10s %-9s %10s %9s %9s %10s %8s %8s %8s %9s\n' workload proxy "req/s" "p50 µs" "p99 µs" "RSS KiB" "÷nginx" \
        "user µs" "sys µs" "CPU÷ngx"
for w in $WORKERS post tls; do
    workload=$w; case $w in post|tls) ;; *) workload="get-w$w" ;; esac
    [ -n "${RESULT["$workload|nginx|rps"]:-}" ] || continue
    base=$(m "$workload" nginx rps)
    for p in $PROXIES; do
        rps=$(m "$workload" "$p" rps)
        printf '%-10s %-9s %10.0f %9.0f %9.0f %10s %8s %8.2f %8.2f %9s\n' "$workload" "$p" "$rps" "$(m "$workload" "$p" p50)" \
            "$(m "$workload" "$p" p99)" "$(m "$workload" "$p" rss)" "$(ratio "$rps" "$base")" \
            "$(m "$workload" "$p" user_us)" "$(m "$workload" "$p" sys_us)" "$(ratio "$(cpu "$workload" "$p")" "$(cpu "$workload" nginx)")"
    done
done
if [ -n "${RESULT["h2-c16m10|nginx|rps"]:-}" ]; then
    printf '\n%-10s %-9s %10s %8s %8s %8s %8s %9s %7s\n' workload proxy "req/s" "÷nginx" "user µs" "sys µs" "CPU µs" "CPU÷ngx" errors
    for workload in h2-c16m10 h2-c64m1 h2-local; do
        base=$(m "$workload" nginx rps)
        for p in $PROXIES; do
            rps=$(m "$workload" "$p" rps)
            printf '%-10s %-9s %10.0f %8s %8.2f %8.2f %8.2f %9s %7s\n' "$workload" "$p" "$rps" "$(ratio "$rps" "$base")" \
                "$(m "$workload" "$p" user_us)" "$(m "$workload" "$p" sys_us)" "$(cpu "$workload" "$p")" \
                "$(ratio "$(cpu "$workload" "$p")" "$(cpu "$workload" nginx)")" \
                "$(echo "${RESULT["$workload|$p|bad"]:-}" | tr ' ' '\n' | awk '{ n += $1 } END { print n + 0 }')"
        done
    done
fi
if [ -n "${RESULT["stream|direct|mbps"]:-}" ]; then
    direct=$(m stream direct mbps)
    printf '\n%-10s %-9s %10s %14s %10s\n' workload proxy "MiB/s" "RSS growth KiB" "÷direct"
    printf '%-10s %-9s %10.0f %14s %10s\n' stream direct "$direct" - 1.00
    for p in $PROXIES; do
        printf '%-10s %-9s %10.0f %14s %10s\n' stream "$p" "$(m stream "$p" mbps)" "$(m stream "$p" rss_growth)" "$(ratio "$(m stream "$p" mbps)" "$direct")"
    done
fi
if [ -n "${RESULT["latency|direct|p50"]:-}" ]; then
    printf '\n%-10s %-9s %9s %9s %14s %14s\n' latency target "p50 µs" "p99 µs" "added p50 µs" "added p99 µs"
    for t in direct $PROXIES; do
        p50=${RESULT["latency|$t|p50"]}; p99=${RESULT["latency|$t|p99"]}
        printf '%-10s %-9s %9s %9s %14s %14s\n' latency "$t" "$p50" "$p99" \
            "$((p50 - ${RESULT["latency|direct|p50"]}))" "$((p99 - ${RESULT["latency|direct|p99"]}))"
    done
fi
if [ -n "${RESULT["memory|nginx|idle_rss"]:-}" ]; then
    printf '\n%-10s %-9s %12s\n' memory proxy "idle KiB"
    for p in $PROXIES; do printf '%-10s %-9s %12s\n' memory "$p" "$(m memory "$p" idle_rss)"; done
fi
if [ -n "${RESULT["idle-plain|nginx|with"]:-}${RESULT["idle-tls-h1|nginx|with"]:-}" ]; then
    printf '\n%-15s %-9s %7s %11s %11s %9s %8s %10s\n' "idle conns" proxy served "before KiB" "with KiB" "KiB/conn" "÷nginx" "after KiB"
    for mode in plain tls-h1 tls-h2; do
        [ -n "${RESULT["idle-$mode|nginx|with"]:-}" ] || continue
        for p in $PROXIES; do
            printf '%-15s %-9s %7s %11s %11s %9.2f %8s %10s\n' "idle-$mode" "$p" "$(m "idle-$mode" "$p" served)" \
                "$(m "idle-$mode" "$p" before)" "$(m "idle-$mode" "$p" with)" "$(m "idle-$mode" "$p" per_conn)" \
                "$(ratio "$(m "idle-$mode" "$p" per_conn)" "$(m "idle-$mode" nginx per_conn)")" "$(m "idle-$mode" "$p" after)"
        done
    done
fi
echo
echo "rounds=$ROUNDS duration=${DURATION}s workers=\"$WORKERS\" workloads=\"$WORKLOADS\" idle_conns=$IDLE_CONNS cores=$(nproc) $(uname -r)"
echo "route selection: cargo bench --bench routing (select/last-route/10 vs /10000)"
