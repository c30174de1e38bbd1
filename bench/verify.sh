#!/usr/bin/env bash
# A verified POST beside an unverified one (issue 31): the cost of `verify`.
#
# Needs (installs nothing): nginx-light wrk curl python3
#   apt-get install nginx-light wrk curl python3
# Run from the repository root:  bench/verify.sh   (~1 minute with the defaults)
# Knobs: ROUNDS (5) and DURATION (5 s); HOOKGATE (a hookgate binary to
#   measure instead of target/release/hookgate).
#
# One nginx is the backend (200 "ok" to any POST). hookgate has two routes to
# it: /plain, and /signed with verify = { scheme = "github" }. wrk -t1 -c64
# POSTs the same 1 KiB JSON body with its X-Hub-Signature-256 to each in turn,
# DURATION seconds a round. Every answer must be 200 (a 401 would mean the
# signature was refused, and the row would measure refusals). The table shows
# medians over the rounds: req/s and hookgate's user + system CPU per request
# (/proc/PID/stat deltas over the run, divided by requests), and the ratios
# /signed : /plain. /signed reads the body whole before forwarding it (the
# check needs all of it); /plain streams it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
require_tools "apt-get install nginx-light wrk curl python3" nginx wrk curl python3
hookgate_binary

make_workdir verify
BACK=19501; PROXY=19583
require_free_ports "$BACK" "$PROXY"

start_ok_backend "$BACK"

printf 'bench-secret' > "$WORK/github.key"
chmod 600 "$WORK/github.key"
cat > "$WORK/hookgate.toml" <<EOF
[listen]
addrs = ["127.0.0.1:$PROXY"]
[upstreams.backend]
url = "http://127.0.0.1:$BACK"
[[routes]]
name = "plain"
path = "/plain"
methods = ["POST"]
upstream = "backend"
[[routes]]
name = "signed"
path = "/signed"
methods = ["POST"]
upstream = "backend"
verify = { scheme = "github", secret_file = "github.key" }
[default]
upstream = "backend"
EOF
"$HOOKGATE" run -c "$WORK/hookgate.toml" >"$WORK/hookgate.out" 2>"$WORK/hookgate.log" & HOOKGATE_PID=$!
PIDS+=("$HOOKGATE_PID")

# The 1 KiB body of bench/lib.sh's POST, and its GitHub signature.
write_post_lua "$WORK/post.lua"
body=$(python3 -c 'print("{\"update_id\":10000,\"message\":{\"text\":\"" + "x" * 970 + "\"}}", end="")')
signature=$(BODY="$body" python3 -c 'import hmac, hashlib, os
print(hmac.new(b"bench-secret", os.environ["BODY"].encode(), hashlib.sha256).hexdigest(), end="")')
echo "wrk.headers[\"X-Hub-Signature-256\"] = \"sha256=$signature\"" >> "$WORK/post.lua"

for _ in $(seq 50); do
    curl -sf --max-time 2 -o /dev/null -X POST --data '{}' "http://127.0.0.1:$PROXY/plain" && break
    sleep 0.1
done
for route in plain signed; do
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST --data-binary "$body" \
        -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$signature" "http://127.0.0.1:$PROXY/$route")
    [ "$code" = 200 ] || { echo "POST /$route answered $code; see $WORK/hookgate.log" >&2; exit 1; }
done

declare -A RESULT
record() { RESULT["$1|$2"]+="$3 "; } # route metric value
m() { echo "${RESULT["$1|$2"]:-}" | tr ' ' '\n' | grep -v '^$' | median; }

round() { # route
    local before after out requests non2xx
    before=$(pid_cpu_ticks "$HOOKGATE_PID")
    out=$(wrk -t1 -c64 -d"${DURATION}s" -s "$WORK/post.lua" "http://127.0.0.1:$PROXY/$1")
    after=$(pid_cpu_ticks "$HOOKGATE_PID")
    requests=$(echo "$out" | awk '/requests in/{print $1}')
    non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses/{print $NF}')
    [ -z "$non2xx" ] || { echo "/$1: $non2xx answers were not 200; see $WORK/hookgate.log" >&2; exit 1; }
    record "$1" rps "$(echo "$out" | awk '/Requests\/sec/{print $2}')"
    record "$1" cpu_us "$(per_request_us "$before" "$after" "$requests")"
}

for r in $(seq "$ROUNDS"); do
    round plain
    round signed
    echo "round $r: plain $(m plain rps) req/s, signed $(m signed rps) req/s (medians so far)" >&2
done

printf '\n%-8s %10s %12s %12s %14s\n' route "req/s" "req/s ratio" "CPU µs/req" "CPU ratio"
for route in plain signed; do
    printf '%-8s %10.0f %12s %12.2f %14s\n' "$route" "$(m "$route" rps)" "$(ratio "$(m "$route" rps)" "$(m plain rps)")" \
        "$(m "$route" cpu_us)" "$(ratio "$(m "$route" cpu_us)" "$(m plain cpu_us)")"
done
echo "($ROUNDS rounds of ${DURATION}s each, medians; wrk -t1 -c64, 1 KiB POST body, github scheme)"
