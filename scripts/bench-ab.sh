#!/usr/bin/env bash
# Before/after of two builds, alternated A/B/A/B: each run on its own fresh cluster started by
# that side's launcher, the same load for both, CPU per process read from /proc over the send
# phase, one table at the end (BENCHMARKS.md, "How a before/after is measured").
#
#   scripts/bench-ab.sh BIN_A BIN_B ROUNDS LABEL -- <loadtest flags, without --target/--json>
#
# BIN_A / BIN_B: directories holding `cluster`, `edge-server`, `api-server` (and `loadtest`;
# BIN_A's is used for both sides unless LOADTEST is set, so only the servers differ).
# Environment: EDGES (2), OUT (a new /tmp/bench-ab.* directory), PORT_BASE (18000), SIDES
# ("A B"; "B" alone measures one build), CLUSTER_ENV / CLUSTER_ENV_A / CLUSTER_ENV_B (extra
# environment of the launcher, both sides / one side, shell words, e.g.
# CLUSTER_ENV_B="TOKIO_WORKER_THREADS=1 HAPROXY_GLOBAL='nbthread 1'"), EXTRA_A / EXTRA_B
# (loadtest flags of one side: the same build twice with EXTRA_B=--batch compares plain and
# batched sockets), SETUP_A / SETUP_B (a shell command run once that side's cluster is up,
# before the load, with PG_PORT set: the same build twice with SETUP_A dropping an index
# compares with and without it).
set -euo pipefail

if [[ $# -lt 5 || $5 != -- ]]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
BIN_A=$(realpath "$1"); BIN_B=$(realpath "$2"); ROUNDS=$3; LABEL=$4; shift 5
LT_ARGS=("$@")
LOADTEST=${LOADTEST:-$BIN_A/loadtest}
EDGES=${EDGES:-2}
PORT_BASE=${PORT_BASE:-18000}
SIDES=${SIDES:-A B}
OUT=${OUT:-$(mktemp -d /tmp/bench-ab.XXXXXX)}
mkdir -p "$OUT"
HERE=$(dirname "$(realpath "$0")")

cluster_pid=""
stop_cluster() {
  if [[ -n $cluster_pid ]] && kill -0 "$cluster_pid" 2>/dev/null; then
    kill -INT "$cluster_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$cluster_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$cluster_pid" 2>/dev/null || true
  fi
  cluster_pid=""
}
trap 'stop_cluster; exit 130' INT TERM
trap stop_cluster EXIT

# Waits (at most QUIET_MAX s, 60) until the machine is nearly idle, so one run's tail is not the next
# one's noise.
quiet() {
  for _ in $(seq 1 "${QUIET_MAX:-60}"); do
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    local busy
    busy=$(echo "$a $b" | awk '{d=$4-$2; print (d>0 ? 100*($3-$1)/d : 0)}')
    if awk -v b="$busy" 'BEGIN{exit !(b < 10)}'; then return 0; fi
  done
  echo "bench-ab: the machine stayed busy; measuring anyway" >&2
}

run_one() { # side round
  local side=$1 round=$2 bin data name
  local extra=${EXTRA_A:-} cenv=${CLUSTER_ENV_A:-} setup=${SETUP_A:-}
  bin=$BIN_A
  [[ $side == B ]] && { bin=$BIN_B; extra=${EXTRA_B:-}; cenv=${CLUSTER_ENV_B:-}; setup=${SETUP_B:-}; }
  name="$LABEL-$side$round"
  data=$(mktemp -d /tmp/bench-data.XXXXXX); chmod 711 "$data"
  (
    if [[ -n "${CLUSTER_ENV:-}$cenv" ]]; then eval "export ${CLUSTER_ENV:-} $cenv"; fi
    exec env DATA_DIR="$data" HTTP_PORT="$PORT_BASE" PG_PORT=$((PORT_BASE + 1)) \
      REDIS_PORT=$((PORT_BASE + 2)) API_PORT=$((PORT_BASE + 10)) EDGE_PORT=$((PORT_BASE + 20)) \
      EDGES="$EDGES" ARGON2_MEMORY_KIB=1024 LOGIN_ATTEMPTS=1000000 SEND_RATE_PER_SEC=1000000 \
      SEND_BURST=1000000 RUST_LOG=warn "$bin/cluster" run
  ) >"$OUT/$name.cluster.log" 2>&1 &
  cluster_pid=$!
  for _ in $(seq 1 300); do
    [[ -s $data/cluster.json ]] && curl -fs "http://127.0.0.1:$PORT_BASE/health" >/dev/null 2>&1 && break
    kill -0 "$cluster_pid" 2>/dev/null || { echo "bench-ab: cluster $name did not start:" >&2; tail "$OUT/$name.cluster.log" >&2; exit 1; }
    sleep 0.2
  done
  if [[ -n $setup ]]; then
    PG_PORT=$((PORT_BASE + 1)) bash -c "$setup" >>"$OUT/$name.cluster.log" 2>&1 ||
      { echo "bench-ab: the setup of $name failed" >&2; exit 1; }
  fi
  quiet
  echo "bench-ab: $name ($(date -u +%H:%M:%S) UTC)" >&2
  # CPU is read when loadtest starts sending and again when it exits.
  # shellcheck disable=SC2086
  "$LOADTEST" --target "http://127.0.0.1:$PORT_BASE" "${LT_ARGS[@]}" $extra --no-progress \
    --json "$OUT/$name.json" 2> >(while IFS= read -r l; do
        [[ $l == *"sending for"* ]] && python3 "$HERE/bench_cpu.py" snap "$data/cluster.json" >"$OUT/$name.cpu0"
        echo "$l" >>"$OUT/$name.loadtest.log"
      done) >"$OUT/$name.stdout" || echo "bench-ab: $name: loadtest exited non-zero" >&2
  python3 "$HERE/bench_cpu.py" snap "$data/cluster.json" >"$OUT/$name.cpu1"
  stop_cluster
  rm -rf "$data"
}

for r in $(seq 1 "$ROUNDS"); do
  for side in $SIDES; do run_one "$side" "$r"; done
done
python3 "$HERE/bench_cpu.py" table "$OUT" "$LABEL" $SIDES
echo "bench-ab: runs in $OUT" >&2
