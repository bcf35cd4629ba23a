# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# Where cargo puts what it builds: $CARGO_TARGET_DIR when set (in the environment or on the
# make command line, which make passes on to cargo), ./target otherwise.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
RELEASE := $(TARGET_DIR)/release

.PHONY: run test deps build fmt lint unit

## run: install what is missing, build release, start the whole cluster in the foreground
run: deps build
	$(RELEASE)/cluster run

## test: install what is missing, then formatting, lints and the whole test suite
test: deps fmt lint unit

deps:
	@./scripts/install-deps.sh

build:
	$(CARGO) build --release --workspace --bins

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --all-targets
