#!/usr/bin/env bash
# The capacity series of docs/CAPACITY.md: CPU per publish of Redis (one Redis, then a 3-master
# Redis Cluster) as the number of edges subscribed to every channel grows, with the edges' CPU
# per delivery and PostgreSQL's per durable send beside it. Each point is one fresh cluster
# (scripts/bench-ab.sh, one side) and one fanout run whose users each hold one socket on EVERY
# edge (sockets go to the edges round-robin, straight to their ports), so every publish has
# exactly EDGES subscribers.
#
#   scripts/capacity.sh BIN_DIR            # BIN_DIR holds cluster, edge-server, api-server, loadtest
#
# Each point runs at every rate of RATES, so the table can give the marginal cost per operation
# between the lowest and the highest rate beside the cost at the highest.
#
# Environment: EDGE_COUNTS ("1 2 4 8"), MODES ("single cluster"), RATES ("200 2000" messages/s),
# CHANNELS (100), DURATION (30s), ROUNDS (1), OUT (a new /tmp/capacity.* directory).
set -euo pipefail
[[ $# -eq 1 ]] || { sed -n '2,12p' "$0" >&2; exit 2; }
BIN=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
OUT=${OUT:-$(mktemp -d /tmp/capacity.XXXXXX)}
RATES=${RATES:-200 2000}; CHANNELS=${CHANNELS:-100}; DURATION=${DURATION:-30s}; ROUNDS=${ROUNDS:-1}
PORT_BASE=18000
for mode in ${MODES:-single cluster}; do
  for n in ${EDGE_COUNTS:-1 2 4 8}; do for rate in $RATES; do
    targets=$(seq -s, -f "ws://127.0.0.1:%g" $((PORT_BASE + 20)) $((PORT_BASE + 19 + n)))
    shards=0; [[ $mode == cluster ]] && shards=3
    OUT="$OUT" SIDES=B EDGES=$n PORT_BASE=$PORT_BASE CLUSTER_ENV="REDIS_SHARDS=$shards" \
      "$HERE/bench-ab.sh" "$BIN" "$BIN" "$ROUNDS" "$mode-e$n-r$rate" -- --scenario fanout \
      --users $((2 * CHANNELS)) --channels "$CHANNELS" --sockets-per-user "$n" --rate "$rate" \
      --duration "$DURATION" --grace 5s --ws-targets "$targets" >/dev/null
  done; done
done
python3 "$HERE/bench_cpu.py" capacity "$OUT"
echo "capacity: runs in $OUT" >&2
