# The two commands of the README, `make run` and `make test`, `make loadtest` against the
# cluster `make run` started, and `make bench-peers` (this cluster and a Socket.IO peer side by side).
SHELL := /bin/bash
CARGO ?= cargo
# Where cargo puts what it builds: $CARGO_TARGET_DIR when set (in the environment or on the
# make command line, which make passes on to cargo), ./target otherwise.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
RELEASE := $(TARGET_DIR)/release

.PHONY: run test deps build fmt lint unit loadtest bench-peers chaos soak deny fuzz

## run: install what is missing, build release, start the whole cluster in the foreground;
## settings in the environment or on the command line (make passes them on), e.g.
## make run EDGES=4 REDIS_SHARDS=3 REDIS_REPLICAS=1
run: deps build
	$(RELEASE)/cluster run

## test: install what is missing, then formatting, lints and the whole test suite
test: deps fmt lint deny unit

## loadtest: the load generator `make build` (so `make run`) built, flags in ARGS, e.g.
## make loadtest ARGS='--scenario chat --duration 30s'. No cargo: a `cargo run -p loadtest`
## would build the dependencies again with another feature set.
loadtest:
	@test -x $(RELEASE)/loadtest || { echo "$(RELEASE)/loadtest is missing: run 'make build' (or 'make run') first, with the same CARGO_TARGET_DIR" >&2; exit 1; }
	$(RELEASE)/loadtest $(ARGS)

## bench-peers: this cluster and the Socket.IO peer (bench/peers/socketio) side by side under the
## same loadtest, interleaved; prints the medians and their ratios (needs node and npm). Settings
## by environment: ROUNDS, RATES, DURATION, ... (see scripts/bench-peers.sh).
bench-peers: deps
	CARGO="$(CARGO)" ./scripts/bench-peers.sh

## chaos: the chaos runs at full length (single Redis, then a Redis Cluster): mixed load with
## --resume while an edge is killed, Redis restarted, pub/sub clients killed, PostgreSQL
## stopped, an edge drained, an edge frozen 20 s and the api-server killed, 15 s apart; prints
## each fault's latency and recovery and the history check (`make test` runs a short form).
chaos: deps
	$(CARGO) build -p api-server -p edge-server
	CHAOS_LONG=1 $(CARGO) test -p loadtest --test chaos -- --nocapture --test-threads 1

## soak: 30 minutes (SOAK_MINUTES) of fanout to 2,000 sockets on 2 edges with a fault every
## 4 minutes (SOAK_FAULT_SECS); samples RSS, open files and connections of every process each
## minute and plots them (soak.csv, soak.svg in SOAK_OUT, default $(TARGET_DIR)/soak)
soak: deps
	$(CARGO) build -p api-server -p edge-server
	$(CARGO) test -p loadtest --test soak -- --ignored --nocapture

## bench-search: 5M messages in 1,000 channels loaded with COPY, p50/p99 of typical searches,
## and the search index's cost on durable sends (A/B); settings by environment: MESSAGES,
## CHANNELS, RUNS, AB_ROUNDS (see scripts/bench-search.sh). Takes 15-30 minutes.
.PHONY: bench-search
bench-search: deps build
	./scripts/bench-search.sh $(RELEASE)

deps:
	@./scripts/install-deps.sh

## deny: dependency checks by cargo-deny (deny.toml): licenses, sources, bans (two versions of
## one crate are warnings), and RustSec advisories when a copy of the advisory database is in
## $(ADVISORY_DBS) (this machine cannot fetch it: docs/FUZZING.md, "Dependency checks").
ADVISORY_DBS := $(or $(CARGO_HOME),$(HOME)/.cargo)/advisory-dbs
# Not --offline here: cargo metadata must see every crate of the lock file (Windows-only ones
# too), which a fresh machine has not downloaded yet.
deny:
	$(CARGO) deny --locked check licenses bans sources
	@if ls -d $(ADVISORY_DBS)/advisory-db-*/.git >/dev/null 2>&1; then \
		$(CARGO) deny --offline check advisories; \
	else \
		echo "deny: advisories NOT checked: no RustSec advisory database in $(ADVISORY_DBS)"; \
	fi

## fuzz: each fuzz target (fuzz/, cargo-fuzz on nightly) for FUZZ_SECONDS (default 600) in turn,
## one after another at low priority, e.g. make fuzz FUZZ_SECONDS=60 FUZZ_TARGETS=client_frame
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= client_frame channel_order history_cursor
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		nice -n 19 $(CARGO) +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

build:
	$(CARGO) build --release --workspace --bins

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --all-targets
