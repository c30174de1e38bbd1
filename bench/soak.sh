#!/usr/bin/env bash
# The 30-minute soak (not in CI; CI runs the same test for 60 s at 500 req/s):
# 2,000 req/s of mixed traffic (keep-alive GETs, 1 KiB webhook POSTs, 5%
# WebSocket sessions, 1% clients that vanish mid-request) with a reload every
# 60 s, against the release build. It fails if a legitimate request failed, if
# RSS grew by 2 MiB or descriptors by 16 between minute 5 and the end, or if the
# open-connections gauge does not return to 0 after the load. Prints one sample
# per 10 s. Knobs: SOAK_SECONDS (1800), SOAK_RATE (2000).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
HOOKGATE_SOAK=1 SOAK_SECONDS=${SOAK_SECONDS:-1800} SOAK_RATE=${SOAK_RATE:-2000} \
    cargo test --release --test soak -- --nocapture
