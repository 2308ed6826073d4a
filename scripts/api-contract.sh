#!/usr/bin/env bash
# Checks the served API against its own description: imports the bundled sample into a fresh
# data directory, serves it on a loopback port, and runs schemathesis (PyPI, pinned, installed
# once into LEDGER_TOOLS) against /openapi.json with every check. Any failure fails `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${SCHEMATHESIS_VERSION:-4.32.5}"
tools="${LEDGER_TOOLS:-$HOME/.cache/ledger-tools}"
venv="$tools/schemathesis-$version"
if [ ! -x "$venv/bin/st" ]; then
  echo "api-contract: installing schemathesis $version into $venv (once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$version"
fi

cargo build --locked -p ledger-cli --bin ledger >&2
target="${CARGO_TARGET_DIR:-target}"
ledger="$target/debug/ledger"

work="$(mktemp -d)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$ledger" import examples/sample-events.jsonl --data-dir "$work/data" >/dev/null
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
RUST_LOG=error "$ledger" serve --listen "127.0.0.1:$port" --data-dir "$work/data" &
server=$!
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

# Every check (scripts/schemathesis.toml says which are off for which operation, and why).
"$venv/bin/st" --config-file scripts/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-40}" \
  --seed "${SCHEMATHESIS_SEED:-20261201}" \
  --workers 1 \
  --no-color
