# hookgate container image: a static binary on an empty base.
#
#   docker build -t hookgate .
#   docker run -p 80:80 -v ./hookgate.toml:/etc/hookgate/hookgate.toml:ro hookgate
#
# The binary is linked statically (glibc, crt-static), so the runtime image is
# `scratch`: no shell, no package manager, nothing else to patch. It runs as
# an unprivileged user; binding 80/443 inside works because Docker and Podman
# set net.ipv4.ip_unprivileged_port_start=0 in a container's network
# namespace. PID 1 is hookgate itself, which drains on SIGTERM.

FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
# --target keeps build scripts and proc-macros dynamically linked.
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin hookgate \
 && mkdir -p /out/etc/hookgate /out/var/lib/hookgate \
 && cp target/x86_64-unknown-linux-gnu/release/hookgate /out/hookgate \
 && cp examples/xboard-compose-default.toml /out/etc/hookgate/hookgate.toml

FROM scratch
COPY --from=build /out/hookgate /usr/bin/hookgate
# The default config routes to XBoard's default compose template (service `xboard`,
# examples/xboard-compose-default.toml); mount your own over it.
COPY --from=build /out/etc/hookgate/hookgate.toml /etc/hookgate/hookgate.toml
# The default parent of [spool] dir (kept webhooks) and [listen.tls.acme]
# cache_dir, owned by the runtime user: a named volume here keeps both across
# container restarts and upgrades.
COPY --from=build --chown=65532:65532 /out/var/lib/hookgate /var/lib/hookgate
VOLUME ["/var/lib/hookgate"]
USER 65532:65532
EXPOSE 80 443
# `hookgate health` asks [admin]'s /healthz, and passes when no [admin] is set.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/bin/hookgate", "health", "-c", "/etc/hookgate/hookgate.toml"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/hookgate"]
CMD ["run", "-c", "/etc/hookgate/hookgate.toml"]
