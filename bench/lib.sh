# What the bench scripts share, written once: the workload compare.sh and
# instructions.sh both measure (the routes of hookgate and nginx, the POST),
# and every script's checks and scratch-folder set-up.
# Sourced (from the repository root), not run.

# hookgate's upstreams and routes, the same as nginx's and HAProxy's in
# compare.sh: the Telegram webhook POST to the backend, the rest to the
# frontend. IDLE is each pool's idle connections kept (max_idle, 64 by
# default, as nginx_upstreams' keepalive).
# Usage: hookgate_routes FRONT_PORT BACK_PORT [IDLE] (appended to a config).
hookgate_routes() {
    cat <<EOF_ROUTES
[upstreams.frontend]
url = "http://127.0.0.1:$1"
max_idle = ${3:-64}
[upstreams.backend]
url = "http://127.0.0.1:$2"
max_idle = ${3:-64}
[[routes]]
name = "telegram-webhook"
path = "/api/v1/guest/telegram/webhook"
methods = ["POST"]
upstream = "backend"
[default]
upstream = "frontend"
EOF_ROUTES
}

# A wrk script that POSTs a 1 KiB Telegram update. Usage: write_post_lua FILE
write_post_lua() {
    cat > "$1" <<'EOF_LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"update_id":10000,"message":{"text":"' .. string.rep("x", 970) .. '"}}'
EOF_LUA
}

# nginx's side of the same routes, inside its http block: the two upstream
# pools (usage: nginx_upstreams FRONT_PORT BACK_PORT [IDLE], IDLE the idle
# connections each keeps, 64 by default), then, inside a server block after
# its listen lines, the forwarding rules (nginx_routes).
nginx_upstreams() {
    printf '  upstream frontend { server 127.0.0.1:%s; keepalive %s; }\n' "$1" "${3:-64}"
    printf '  upstream backend { server 127.0.0.1:%s; keepalive %s; }\n' "$2" "${3:-64}"
}

nginx_routes() {
    cat <<'EOF_NGINX'
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_buffering off;
    location = /api/v1/guest/telegram/webhook { proxy_pass http://backend; }
    location / { proxy_pass http://frontend; }
EOF_NGINX
}

# Stops the run when something already listens on one of the ports it needs:
# a proxy or upstream left from another run would answer in place of the one
# under test, and the table would measure it. Usage: require_free_ports PORT...
require_free_ports() {
    local port
    for port in "$@"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "port $port on 127.0.0.1 is taken; stop what listens there (ss -ltnp 'sport = :$port') and run again" >&2
            exit 1
        fi
    done
}

# Stops the run unless every TOOL is installed, naming the one missing and the
# install command. Usage: require_tools "apt-get install PACKAGES" TOOL...
require_tools() {
    local hint=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "missing $tool: $hint" >&2; exit 1; }
    done
}

# A scratch folder in $WORK and a list of started processes in $PIDS, both
# cleaned up however the script ends: each process in PIDS is stopped, then
# the script's own cleanup_more runs if it defines one, then the folder goes.
# Usage: make_workdir NAME (the folder is /tmp/hookgate-NAME.XXXXXX)
make_workdir() {
    WORK=$(mktemp -d "/tmp/hookgate-$1.XXXXXX")
    PIDS=()
    trap cleanup_workdir EXIT
}

cleanup_workdir() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if declare -F cleanup_more >/dev/null; then cleanup_more; fi
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

# User and system CPU time of process PID in clock ticks: "user sys" (fields
# 12 and 13 after "pid (comm) " in /proc/PID/stat). Usage: pid_cpu_ticks PID
pid_cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12, $13}'
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# Microseconds of user + system time per request between two pid_cpu_ticks
# readings. Usage: per_request_us BEFORE AFTER REQUESTS
per_request_us() {
    awk -v b="$1" -v a="$2" -v n="$3" -v t="$TICK_US" 'BEGIN {
        split(b, x, " "); split(a, y, " "); if (n == 0) print 0; else print ((y[1] - x[1]) + (y[2] - x[2])) * t / n }'
}

# wrk's latency figures (620.00us, 1.20ms, 1.01s) in microseconds. Usage: to_us FIGURE
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1000000 }'; }

# The median of the numbers on stdin, one per line.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else print a[int((NR + 1) / 2)] }'; }

# A / B to three places, "-" when B is 0. Usage: ratio A B
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.3f", a / b }'; }

# The hookgate binary to measure, in HOOKGATE: the one given, or else a fresh
# release build of this checkout. Usage: hookgate_binary
hookgate_binary() {
    if [ -z "${HOOKGATE:-}" ]; then
        cargo build --release --quiet --bin hookgate
        HOOKGATE=${CARGO_TARGET_DIR:-$PWD/target}/release/hookgate
    fi
}

# An nginx on 127.0.0.1:PORT answering 200 "ok" to any request, no access
# log, started into PIDS (after make_workdir). Usage: start_ok_backend PORT
start_ok_backend() {
    cat > "$WORK/backend.conf" <<EOF_BACKEND
worker_processes 1;
daemon off;
pid $WORK/backend.pid;
error_log $WORK/backend.err;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_buffer_size 16k;
  server { listen 127.0.0.1:$1; location / { return 200 "ok\n"; } }
}
EOF_BACKEND
    nginx -c "$WORK/backend.conf" & PIDS+=("$!")
}
