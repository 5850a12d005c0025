# hubsync — the two commands a newcomer needs:
#   make demo   the main job: a local end-to-end sync of a seeded portal
#   make test   every test (installs what it needs into ./.venv first)
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: help setup test test-rust lint audit fmt template-lint sim bench sizes demo clean

help:
	@echo "make demo           local end-to-end sync of a seeded portal (moto + hubspot-sim)"
	@echo "make test           every test, with the local stack started and stopped around it"
	@echo "make lint           cargo fmt --check + cargo clippy -D warnings"
	@echo "make template-lint  cfn-lint + sam validate --lint on template.yaml"
	@echo "make sim            run the HubSpot simulator on :8080 (seeded)"
	@echo "make bench          benchmarks, cold starts and arm64 sizes (figures printed, not asserted)"
	@echo "make sizes          arm64 release builds of the functions and their sizes (budget 8 MB)"

setup:
	@bash infra/local/setup.sh

# The test command (README, .ci/run): installs the local-stack tools, starts
# moto on a free loopback port for the duration, runs every Rust test and the
# template checks.
test: setup
	bash infra/local/with-stack.sh cargo test --workspace --locked
	$(MAKE) template-lint

template-lint: setup
	cfn-lint template.yaml
	sam validate --lint --template-file template.yaml --region us-east-1

# Cross-compiles the functions for arm64 (cargo-lambda with zig, both from
# ./.venv) into .aws-sam/build, as `sam deploy` needs. Not part of `make test`:
# release builds with fat LTO take about 14 minutes cold on 2 cores (8 for the
# aarch64 dependencies, 6 for the crates and the two links), more while other
# builds share the target directory.
.PHONY: sam-build
sam-build: setup
	rustup target add aarch64-unknown-linux-gnu
	sam build --beta-features

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

audit: setup
	bash infra/local/audit.sh

fmt:
	cargo fmt --all

sizes: setup
	bash infra/local/function-sizes.sh

sim:
	cargo run --release -p hubspot-sim -- --port 8080 --seed 42 --companies 1000 --contacts 5000 --deals 500 --print-tokens

bench:
	cargo bench -p hubspot-sim
	CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 cargo bench -p webhook-intake --bench intake
	CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 cargo bench -p hubsync-local --bench worker
	CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 cargo bench -p reconcile --bench reconcile
	CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 bash infra/local/with-stack.sh cargo bench -p hubsync-local --bench cold_init
	$(MAKE) sizes

# The main job: a local end-to-end sync of a portal (moto + simulator +
# the functions' handler code), with a summary.
demo: setup
	RUST_LOG=$${RUST_LOG:-warn} bash infra/local/with-stack.sh cargo run --quiet -p hubsync-local -- demo

clean:
	cargo clean
	rm -rf .local
