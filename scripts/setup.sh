#!/usr/bin/env bash
# Installs what building and testing the ledger needs on a fresh Debian machine.
# The Rust toolchain itself comes from rust-toolchain.toml (channel "stable").
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
# librocksdb-sys generates its bindings with bindgen, which loads libclang at build time.
if ! dpkg -s libclang-dev >/dev/null 2>&1; then
  need_apt+=(libclang-dev)
fi
# The API contract check (scripts/api-contract.sh) installs schemathesis into a virtualenv and
# polls the server with curl.
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)

if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update
  $sudo_cmd apt-get install -y --no-install-recommends "${need_apt[@]}"
fi
echo "setup: ok"
