# The targets README.md and .ci/run call. CARGO_TARGET_DIR may point outside the clone so
# builds of RocksDB/librdkafka-sized dependencies are reused between fresh clones.
CARGO ?= cargo
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: setup broker test fmt-check clippy unit api-contract run fold-sample bench bench-e2e bench-kafka

## setup: install what a fresh machine lacks (a C/C++ compiler, libclang for the RocksDB bindings)
setup:
	@./scripts/setup.sh

## broker: build (once; cached in ~/.cache/ledger-tools) the Tansu Kafka-protocol broker the
## Kafka-mode tests start on a loopback port
broker:
	@./scripts/tansu.sh >/dev/null

## test: formatting, lints with warnings denied, every test (Kafka mode's against Tansu), and the
## served API checked against its description by schemathesis
test: setup broker fmt-check clippy unit api-contract

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --locked --no-fail-fast
else
	$(CARGO) test --workspace --locked --no-fail-fast
endif

## api-contract: schemathesis (PyPI, installed once into ~/.cache/ledger-tools) against the
## /openapi.json of a server holding the bundled sample; any failure fails
api-contract:
	@./scripts/api-contract.sh

## run: serve the embedded ledger on 127.0.0.1:8080 with its data in ./data
run: setup
	$(CARGO) run --release --locked -p ledger-cli -- serve $(SERVE_ARGS)

## fold-sample: fold the bundled sample and print its entries and a per-category summary
fold-sample: setup
	$(CARGO) run --release --locked -p ledger-cli -- fold examples/sample-events.jsonl --summary

## bench: the fold throughput benchmark (figures go to BENCHMARKS.md)
bench:
	$(CARGO) bench --locked -p ledger-core --bench fold

## bench-e2e: projector, replay, HTTP ingest and eligibility latency (BENCHMARKS.md)
bench-e2e: setup
	$(CARGO) run --release --locked -p ledger-bench -- pipeline
	$(CARGO) run --release --locked -p ledger-bench -- http

## bench-kafka: Kafka mode end to end against a Tansu broker (BENCHMARKS.md)
bench-kafka: setup broker
	$(CARGO) run --release --locked -p ledger-bench -- kafka
