#!/usr/bin/env bash
# Slow-client attacks against hookgate and nginx, side by side (not in CI).
#
# Needs: nginx-light slowhttptest (apt-get install nginx-light slowhttptest).
# Run from the repository root: bench/slow_clients.sh
# Knobs: CONNS (4000 attacking connections), SECONDS_MEASURED (20).
#
# For each attack (slowloris: slow headers; slow body: R-U-Dead-Yet; slow read:
# a 1 MiB response read a few bytes at a time) and each proxy, slowhttptest
# opens CONNS connections at 1,000/s; once they are open, a legitimate client
# (examples/loadgen: 50 GETs/s on 2 keep-alive connections) runs for
# SECONDS_MEASURED seconds. Printed: its success rate and p99 per attack.
# Equivalent limits: hookgate's defaults (header_timeout 10s, body_timeout 10s,
# send_timeout 10s) and nginx's client_header_timeout / client_body_timeout /
# send_timeout 10s; both allow 20,000 connections. Every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CONNS=${CONNS:-4000}
SECONDS_MEASURED=${SECONDS_MEASURED:-20}
require_tools "apt-get install nginx-light slowhttptest" nginx slowhttptest
cargo build --release --quiet --bin hookgate --example loadgen
HOOKGATE=${CARGO_TARGET_DIR:-$PWD/target}/release/hookgate
LOADGEN=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/loadgen
# slowhttptest runs are not in PIDS (each is waited for), but one cut short may linger.
cleanup_more() { pkill -f "slowhttptest.*1928" 2>/dev/null || true; }
make_workdir slow
ulimit -n "$(ulimit -Hn)"

UP=19201
declare -A PORT=([nginx]=19281 [hookgate]=19283)
head -c $((1024 * 1024)) /dev/zero > "$WORK/big"
chmod 755 "$WORK"; chmod 644 "$WORK/big"
cat > "$WORK/upstream.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/upstream.pid;
error_log $WORK/upstream.err;
events { worker_connections 20000; }
http { access_log off; server { listen 127.0.0.1:$UP; root $WORK; location = / { return 200 "frontend\n"; } location = /big { } } }
CONF
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 40000;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 20000; }
http {
  access_log off;
  client_header_timeout 10s;
  client_body_timeout 10s;
  send_timeout 10s;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:${PORT[nginx]};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location / { proxy_pass http://app; }
  }
}
CONF
cat > "$WORK/hookgate.toml" <<CONF
[listen]
addrs = ["127.0.0.1:${PORT[hookgate]}"]
[limits]
max_connections = 20000
[log]
level = "error"
[upstreams.app]
url = "http://127.0.0.1:$UP"
[default]
upstream = "app"
CONF
nginx -c "$WORK/upstream.conf" & PIDS+=($!)
nginx -c "$WORK/nginx.conf" & PIDS+=($!)
"$HOOKGATE" run -c "$WORK/hookgate.toml" 2>"$WORK/hookgate.log" & PIDS+=($!)
sleep 1

attack() { # $1 = kind, $2 = port
    local url="http://127.0.0.1:$2"
    case $1 in
        slowloris) slowhttptest -H -c "$CONNS" -r 1000 -i 5 -x 24 -p 3 -l 60 -u "$url/" ;;
        slowbody) slowhttptest -B -c "$CONNS" -r 1000 -i 5 -x 10 -s 8192 -t POST -p 3 -l 60 -u "$url/" ;;
        slowread) slowhttptest -X -c "$CONNS" -r 1000 -w 512 -y 1024 -n 5 -z 32 -k 3 -p 3 -l 60 -u "$url/big" ;;
    esac
}

echo "| attack | proxy | attacking connections open | legitimate requests | success | p50 | p99 |"
echo "|---|---|---|---|---|---|---|"
for kind in slowloris slowbody slowread; do
    for proxy in nginx hookgate; do
        port=${PORT[$proxy]}
        attack "$kind" "$port" > "$WORK/$kind-$proxy.out" 2>&1 &
        attacker=$!
        sleep $(( CONNS / 1000 + 3 ))   # the attacking connections are open
        result=$(timeout $((SECONDS_MEASURED + 15)) "$LOADGEN" "http://127.0.0.1:$port/" 50 2 "$SECONDS_MEASURED" || echo "requests=0 errors=0 p50_us=0 p99_us=0")
        kill "$attacker" 2>/dev/null || true
        wait "$attacker" 2>/dev/null || true
        eval "$(echo "$result" | tr ' ' '\n' | grep -E '^(requests|errors|p50_us|p99_us)=')"
        total=$((requests + errors))
        success=$(python3 -c "print(f'{100*$requests/max($total,1):.2f}%')")
        # slowhttptest's status lines: the most connections it held open at once.
        open=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/$kind-$proxy.out" | grep -oE 'connected: +[0-9]+' \
            | grep -oE '[0-9]+' | sort -n | tail -1 || true)
        ms() { python3 -c "print(f'{$1/1000:.1f} ms')"; }
        echo "| $kind | $proxy | ${open:-?} | $total | $success | $(ms "$p50_us") | $(ms "$p99_us") |"
        sleep 12   # let both sides drop what the attack left
    done
done
