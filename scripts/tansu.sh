#!/usr/bin/env bash
# Installs the Tansu broker (Apache-2.0, Kafka protocol) the Kafka-path tests run against, and
# prints the path of its binary. The build is cached outside the clone (LEDGER_TOOLS, default
# ~/.cache/ledger-tools) and skipped when the pinned version is already there.
set -euo pipefail

version="${TANSU_VERSION:-0.6.0}"
tools="${LEDGER_TOOLS:-$HOME/.cache/ledger-tools}"
root="$tools/tansu-$version"
bin="$root/bin/tansu"

if [ ! -x "$bin" ]; then
  echo "tansu: building $version with the libsql storage engine into $root (once; takes minutes)" >&2
  # Its own target dir, kept so an interrupted build resumes instead of starting over.
  CARGO_TARGET_DIR="$tools/tansu-build" cargo install tansu --version "$version" \
    --features libsql --locked --root "$root" >&2
fi
echo "$bin"
