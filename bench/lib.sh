# The workload compare.sh and instructions.sh both measure, written once.
# Sourced (from the repository root), not run.

# hookgate's upstreams and routes, the same as nginx's and HAProxy's in
# compare.sh: the Telegram webhook POST to the backend, the rest to the
# frontend. Usage: hookgate_routes FRONT_PORT BACK_PORT (appended to a config).
hookgate_routes() {
    cat <<EOF_ROUTES
[upstreams.frontend]
url = "http://127.0.0.1:$1"
[upstreams.backend]
url = "http://127.0.0.1:$2"
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
