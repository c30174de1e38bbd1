#!/usr/bin/env bash
# Checks the container image as far as a machine without a registry allows.
#
# No base image can be pulled here, so the Dockerfile's build stage cannot run.
# This builds the same runtime stage (FROM scratch, the static binary, the
# compose config, a non-root user, the health check) from a binary built on
# this machine, then:
#   1. the image builds with podman;
#   2. the binary in it is static and runs outside the container: `check` on
#      the config the compose file mounts, and a request routed through it;
#   3. `podman run` is tried; where the sandbox forbids it, that is reported.
# Needs: podman, curl, python3, readelf (binutils). Run from anywhere: packaging/container-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/hookgate-container.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --locked \
    --target x86_64-unknown-linux-gnu --bin hookgate
BIN=target/x86_64-unknown-linux-gnu/release/hookgate
mkdir -p "$WORK/ctx/out/etc/hookgate" "$WORK/ctx/out/var/lib/hookgate"
cp "$BIN" "$WORK/ctx/out/hookgate"
cp examples/xboard-compose-default.toml "$WORK/ctx/out/etc/hookgate/hookgate.toml"
# The Dockerfile's runtime stage, copying from the local build instead of the build stage.
sed -n '/^FROM scratch/,$p' Dockerfile | sed 's|--from=build ||; s| /out/| out/|' > "$WORK/ctx/Containerfile"

echo "== 1. podman build (runtime stage of Dockerfile)"
podman build --quiet --format docker -t hookgate:check -f "$WORK/ctx/Containerfile" "$WORK/ctx"
podman image inspect hookgate:check --format 'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} healthcheck={{.Config.Healthcheck.Test}}'

echo "== 2. the binary in the image, outside the container"
podman save --quiet hookgate:check -o "$WORK/image.tar"
mkdir "$WORK/image" && tar -xf "$WORK/image.tar" -C "$WORK/image"
mkdir "$WORK/rootfs"
for layer in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "$WORK/image/manifest.json"); do
    tar -xf "$WORK/image/$layer" -C "$WORK/rootfs"
done
if readelf -d "$WORK/rootfs/usr/bin/hookgate" | grep -q NEEDED; then
    echo "the binary in the image needs shared libraries" >&2; exit 1
fi
echo "static binary: yes (no shared libraries needed)"
"$WORK/rootfs/usr/bin/hookgate" check -c "$WORK/rootfs/etc/hookgate/hookgate.toml" | tail -1
# The compose config with a loopback stand-in for `xboard`.
python3 -m http.server 17001 --bind 127.0.0.1 --directory "$WORK" >/dev/null 2>&1 &
sed -e 's|0.0.0.0:80|127.0.0.1:17080|' -e 's|127.0.0.1:9901|127.0.0.1:17901|' -e 's|xboard:7001|127.0.0.1:17001|' \
    -e "s|/var/lib/hookgate/spool|$WORK/spool|" \
    "$WORK/rootfs/etc/hookgate/hookgate.toml" > "$WORK/local.toml"
"$WORK/rootfs/usr/bin/hookgate" run -c "$WORK/local.toml" 2>/dev/null &
sleep 1
curl -sS -o /dev/null -w 'GET / through the image binary: %{http_code}\n' --max-time 5 http://127.0.0.1:17080/
"$WORK/rootfs/usr/bin/hookgate" health -c "$WORK/local.toml"

echo "== 3. podman run"
if podman run --rm hookgate:check --version 2>"$WORK/run.err"; then
    echo "podman run: works"
else
    echo "podman run: not possible here: $(tail -1 "$WORK/run.err")"
fi
podman rmi -f hookgate:check >/dev/null
