#!/usr/bin/env bash
# User-space instructions per request, hookgate beside nginx, under callgrind.
#
# Needs (installs nothing): nginx-light wrk curl valgrind
#   apt-get install nginx-light wrk curl valgrind
# Run from the repository root:  bench/instructions.sh
# Knobs: DURATION seconds of load per measurement (8); HOOKGATE (a hookgate
#   binary to measure instead of target/release/hookgate, e.g. another commit's build).
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
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

DURATION=${DURATION:-8}
require_tools "apt-get install nginx-light wrk curl valgrind" nginx wrk curl valgrind callgrind_control
if [ -z "${HOOKGATE:-}" ]; then
    cargo build --release --quiet --bin hookgate
    HOOKGATE=${CARGO_TARGET_DIR:-$PWD/target}/release/hookgate
fi

make_workdir instr

# Ports: upstreams 19201/19202, the proxy under test 19283.
PORT=19283
require_free_ports 19201 19202 "$PORT"
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
$(nginx_routes)
  }
}
EOF
cat > "$WORK/hookgate.toml" <<EOF
[listen]
addrs = ["127.0.0.1:$PORT"]
[runtime]
workers = 1
$(hookgate_routes 19201 19202)
EOF
write_post_lua "$WORK/post.lua"

measure() { # proxy workload -> instructions per request
    local proxy=$1 workload=$2 path=/ script=() pid out requests
    [ "$workload" = post ] && { path=/api/v1/guest/telegram/webhook; script=(-s "$WORK/post.lua"); }
    rm -f "$WORK"/callgrind.out.*
    case $proxy in
        hookgate) valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out.%p" \
            "$HOOKGATE" run -c "$WORK/hookgate.toml" 2>"$WORK/hookgate.log" >/dev/null & pid=$! ;;
        nginx) valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out.%p" \
            nginx -c "$WORK/nginx.conf" 2>"$WORK/nginx.log" >/dev/null & pid=$! ;;
    esac
    for _ in $(seq 60); do curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/" && break; sleep 0.5; done
    wrk -t1 -c16 -d2 "${script[@]}" "http://127.0.0.1:$PORT$path" >/dev/null # warm-up, not counted
    callgrind_control -i on "$pid" >/dev/null 2>&1
    out=$(wrk -t1 -c16 -d"${DURATION}s" "${script[@]}" "http://127.0.0.1:$PORT$path")
    callgrind_control -i off "$pid" >/dev/null 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"; wait "$pid" 2>/dev/null || true
    requests=$(echo "$out" | awk '/requests in/{print $1}')
    cat "$WORK"/callgrind.out.* | awk -v n="$requests" '/^(summary|totals):/ { if ($2 + 0 > max + 0) max = $2 } END { printf "%.0f", max / n }'
}

printf '%-10s %12s %12s %8s\n' workload "nginx Ir/req" "hookgate" "÷nginx"
for workload in get post; do
    n=$(measure nginx "$workload"); h=$(measure hookgate "$workload")
    printf '%-10s %12s %12s %8s\n' "$workload" "$n" "$h" "$(awk -v a="$h" -v b="$n" 'BEGIN { printf "%.2f", a / b }')"
done
