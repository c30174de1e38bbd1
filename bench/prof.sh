#!/usr/bin/env bash
# User-space instructions per request, hookgate beside nginx, under callgrind.
#
# Needs (installs nothing): nginx-light wrk curl valgrind (and for the h2 row
#   nghttp2-client openssl)
#   apt-get install nginx-light wrk curl valgrind nghttp2-client openssl
# Run from the repository root:  bench/instructions.sh
# Knobs: DURATION seconds of load per measurement (8); HOOKGATE (a hookgate
#   binary to measure instead of target/release/hookgate, e.g. another commit's build);
#   WORKLOADS ("get post"; add h2 for HTTP/2 over TLS, about 4 more minutes);
#   H2_REQUESTS (20000).
#
# Why: on a shared 2-core VM the CPU time per request moves by 10-30% between
# rounds, which hides any change smaller than that. Instructions counted by
# callgrind do not depend on the neighbours: the same binary and load give the
# same count within about 1%. Kernel time is not counted (callgrind sees user
# space only), and a count is not a time (cache misses, clock reads and atomics
# cost more than their instruction count), so compare.sh stays the judge;
# this is the steering wheel. Each proxy runs alone, one worker, under
# callgrind with instrumentation off until warmed up, then wrk runs for
# DURATION seconds (16 connections); instructions / requests is printed.
#
# The h2 row (h2load -t1 -c64 -m1 over TLS, ALPN h2, 1 worker, as compare.sh's
# h2-c64m1): h2load opens new connections for every run, and a TLS handshake
# costs millions of instructions, so each proxy serves H2_REQUESTS and then,
# freshly started, three times as many; the difference over the difference in
# requests is the cost of one request with the handshakes taken out.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

DURATION=${DURATION:-8}
WORKLOADS=${WORKLOADS:-get post}
H2_REQUESTS=${H2_REQUESTS:-20000}
require_tools "apt-get install nginx-light wrk curl valgrind" nginx wrk curl valgrind callgrind_control
case " $WORKLOADS " in *" h2 "*) require_tools "apt-get install nghttp2-client openssl" h2load openssl ;; esac
if [ -z "${HOOKGATE:-}" ]; then
    cargo build --release --quiet --bin hookgate
    HOOKGATE=${CARGO_TARGET_DIR:-$PWD/target}/release/hookgate
fi

make_workdir instr

# Ports: upstreams 19201/19202, the proxy under test 19283 (TLS: 19284).
PORT=19283
TLS_PORT=19284
require_free_ports 19201 19202 "$PORT" "$TLS_PORT"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat > "$WORK/upstream.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/upstream.pid;
error_log $WORK/upstream.err;
events { worker_connections 2000; }
http {
  access_log off;
  server { listen 127.0.0.1:19201; location = / { return 200 "frontend\n"; } }
  server { listen 127.0.0.1:19202; location / { return 200 "backend\n"; } }
}
EOF
nginx -c "$WORK/upstream.conf" & PIDS+=($!)

# The same routes as compare.sh; nginx without a master process, so one process is measured.
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 2000; }
http {
  access_log $WORK/nginx.access;
$(nginx_upstreams 19201 19202)
  server {
    listen 127.0.0.1:$PORT;
    listen 127.0.0.1:$TLS_PORT ssl http2;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    keepalive_requests 100000000;
$(nginx_routes)
  }
}
EOF
cat > "$WORK/hookgate.toml" <<EOF
[listen]
addrs = ["127.0.0.1:$PORT"]
[listen.tls]
addrs = ["127.0.0.1:$TLS_PORT"]
certificates = [{ cert_file = "$WORK/cert.pem", key_file = "$WORK/key.pem" }]
[runtime]
workers = 1
$(hookgate_routes 19201 19202)
EOF
write_post_lua "$WORK/post.lua"

# Starts proxy $1 under callgrind (instrumentation off); sets PID.
start_under_callgrind() {
    rm -f "$WORK"/callgrind.out.*
    case $1 in
        hookgate) valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out.%p" \
            "$HOOKGATE" run -c "$WORK/hookgate.toml" 2>"$WORK/hookgate.log" >/dev/null & PID=$! ;;
        nginx) valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out.%p" \
            nginx -c "$WORK/nginx.conf" 2>"$WORK/nginx.log" >/dev/null & PID=$! ;;
    esac
    for _ in $(seq 60); do curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/" && break; sleep 0.5; done
}

# Stops the proxy started last; COUNT is the instructions it counted.
stop_counting() {
    callgrind_control -i off "$PID" >/dev/null 2>&1
    callgrind_control -d "$PID" >/dev/null 2>&1
    kill "$PID"; wait "$PID" 2>/dev/null || true
    COUNT=$(cat "$WORK"/callgrind.out.* | awk '/^(summary|totals):/ { if ($2 + 0 > max + 0) max = $2 } END { print max + 0 }')
}

measure() { # proxy workload -> instructions per request
    local proxy=$1 workload=$2 path=/ script=() out requests
    [ "$workload" = post ] && { path=/api/v1/guest/telegram/webhook; script=(-s "$WORK/post.lua"); }
    start_under_callgrind "$proxy"
    wrk -t1 -c16 -d2 "${script[@]}" "http://127.0.0.1:$PORT$path" >/dev/null # warm-up, not counted
    callgrind_control -i on "$PID" >/dev/null 2>&1
    out=$(wrk -t1 -c16 -d"${DURATION}s" "${script[@]}" "http://127.0.0.1:$PORT$path")
    requests=$(echo "$out" | awk '/requests in/{print $1}')
    stop_counting
    awk -v i="$COUNT" -v n="$requests" 'BEGIN { printf "%.0f", i / n }'
}

# Instructions counted over `h2load -n $2` (warmed up first), handshakes included.
h2_run() {
    local proxy=$1 requests=$2 out
    start_under_callgrind "$proxy"
    h2load -t1 -c64 -m1 -n 3000 "https://localhost:$TLS_PORT/" >/dev/null 2>&1 # warm-up, not counted
    callgrind_control -i on "$PID" >/dev/null 2>&1
    out=$(h2load -t1 -c64 -m1 -n "$requests" "https://localhost:$TLS_PORT/" 2>&1)
    echo "$out" | grep -q "$requests succeeded" || echo "h2load $proxy: not every request succeeded: $out" >&2
    stop_counting
    mkdir -p /tmp/prof-h2-$proxy-$requests && cp "$WORK"/callgrind.out.* /tmp/prof-h2-$proxy-$requests/
    echo "$COUNT"
}

measure_h2() { # proxy -> instructions per request, handshakes taken out
    local proxy=$1 once thrice
    once=$(h2_run "$proxy" "$H2_REQUESTS")
    thrice=$(h2_run "$proxy" $((3 * H2_REQUESTS)))
    awk -v a="$once" -v b="$thrice" -v n="$H2_REQUESTS" 'BEGIN { printf "%.0f", (b - a) / (2 * n) }'
}

printf '%-10s %12s %12s %8s\n' workload "nginx Ir/req" "hookgate" "÷nginx"
for workload in $WORKLOADS; do
    if [ "$workload" = h2 ]; then
        n=1; h=$(measure_h2 hookgate)
    else
        n=$(measure nginx "$workload"); h=$(measure hookgate "$workload")
    fi
    printf '%-10s %12s %12s %8s\n' "$workload" "$n" "$h" "$(awk -v a="$h" -v b="$n" 'BEGIN { printf "%.2f", a / b }')"
done
