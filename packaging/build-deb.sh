#!/usr/bin/env bash
# Builds the Debian package: target/debian/hookgate_<version>-1_<arch>.deb.
#
# Needs cargo-deb (cargo install cargo-deb). The assets cargo-deb packs
# (Cargo.toml [package.metadata.deb]) are made here first:
#   - the man pages and shell completions, from the clap declaration
#     (examples/gen_docs.rs), so `hookgate --help` and the manual agree;
#   - the systemd units from config/, with the binary at /usr/bin/hookgate.
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS=target/deb-assets
rm -rf "$ASSETS"
mkdir -p "$ASSETS/units"
cargo run --quiet --release --example gen_docs -- "$ASSETS"
gzip -9n "$ASSETS"/man/*.1
for unit in hookgate.service hookgate.socket; do
    sed 's|/usr/local/bin/hookgate|/usr/bin/hookgate|g' "config/$unit" > "$ASSETS/units/$unit"
done
cargo deb "$@"
