# The targets README.md and .ci/run call. CARGO_TARGET_DIR may point outside the clone so
# builds of RocksDB/librdkafka-sized dependencies are reused between fresh clones.
CARGO ?= cargo
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: setup test fmt-check clippy unit run bench

## setup: install what a fresh machine lacks (nothing beyond the Rust toolchain so far)
setup:
	@./scripts/setup.sh

## test: formatting, lints with warnings denied, and every test
test: setup fmt-check clippy unit

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

## run: fold the bundled sample and print its entries and a per-category summary
run: setup
	$(CARGO) run --release --locked -p ledger-cli -- fold examples/sample-events.jsonl --summary

## bench: the fold throughput benchmark (figures go to BENCHMARKS.md)
bench:
	$(CARGO) bench --locked -p ledger-core --bench fold
