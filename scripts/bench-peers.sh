#!/usr/bin/env bash
# `make bench-peers`: this cluster and the Socket.IO 4 + redis-adapter peer (bench/peers/socketio)
# side by side on one machine, driven by the same `loadtest` (BENCHMARKS.md, section "Peer").
#
# Builds release, starts our cluster with the launcher (fresh DATA_DIR, 2 edges, fsync on), then
# the peer on that cluster's PostgreSQL (its own database) and Redis: PEER_NODES Node processes
# behind their own HAProxy. Then ROUNDS rounds, each: fanout at every rate of RATES (1,000
# sockets in one channel), ours and the peer's back to back, then durable, ours and the peer's;
# which side goes first alternates from round to round. Prints a line per run and, at the end,
# the medians side by side and CPU per operation. Stops everything on exit and on Ctrl-C.
#
# Settings (environment): ROUNDS (2), RATES ("5 20 50"), DURATION (10s), GRACE (10s),
# DURABLE_USERS (16), DURABLE_PIPELINE (8), WARMUP (1: one uncounted short fanout per side first),
# PEER_NODES (2), ports HTTP_PORT (18480), PG_PORT (15833), REDIS_PORT (16780), EDGE_PORT (19501),
# API_PORT (19401), PEER_PORT (18490), NODE_PORT (19601 and up), RESULTS_DIR
# ($TARGET_DIR/bench-peers/<UTC time>), KEEP_DATA (0: the data dir is removed at the end),
# CARGO_TARGET_DIR (as `make`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-target}
RELEASE=$TARGET_DIR/release
PEER_SRC=$ROOT/bench/peers/socketio

ROUNDS=${ROUNDS:-2}
RATES=${RATES:-"5 20 50"}
DURATION=${DURATION:-10s}
GRACE=${GRACE:-10s}
DURABLE_USERS=${DURABLE_USERS:-16}
DURABLE_PIPELINE=${DURABLE_PIPELINE:-8}
WARMUP=${WARMUP:-1}
PEER_NODES=${PEER_NODES:-2}
HTTP_PORT=${HTTP_PORT:-18480}
PG_PORT=${PG_PORT:-15833}
REDIS_PORT=${REDIS_PORT:-16780}
EDGE_PORT=${EDGE_PORT:-19501}
API_PORT=${API_PORT:-19401}
PEER_PORT=${PEER_PORT:-18490}
NODE_PORT=${NODE_PORT:-19601}
KEEP_DATA=${KEEP_DATA:-0}
RESULTS_DIR=${RESULTS_DIR:-$TARGET_DIR/bench-peers/$(date -u +%Y%m%d-%H%M%S)}
CLK_TCK=$(getconf CLK_TCK)
export CLK_TCK

say() { printf '[bench-peers %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { say "error: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is missing (Node 18+ runs the peer)"
command -v npm >/dev/null || die "npm is missing"
command -v haproxy >/dev/null || die "haproxy is missing (make deps)"
command -v curl >/dev/null || die "curl is missing"
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "ROUNDS must be 1-99"

# Seconds in a loadtest duration (`10s`, `500ms`, `2m`, or a number of seconds), rounded up.
secs() {
  case $1 in
    *ms) echo $(( (${1%ms} + 999) / 1000 )) ;;
    *s) echo "${1%s}" ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *) echo "$1" ;;
  esac
}
RUN_LIMIT=$(( $(secs "$DURATION") + $(secs "$GRACE") + 120 ))

for port in "$HTTP_PORT" "$PG_PORT" "$REDIS_PORT" "$PEER_PORT" \
  $(seq "$EDGE_PORT" $((EDGE_PORT + 1))) "$API_PORT" \
  $(seq "$NODE_PORT" $((NODE_PORT + PEER_NODES - 1))); do
  if ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
    die "port $port is taken (set HTTP_PORT, PG_PORT, ... to free ones)"
  fi
done

# Everything started below, stopped in reverse order on any exit.
DATA_DIR=""
CLUSTER_PID=""
PEER_HAPROXY_PID=""
NODE_PIDS=()
LT_PID=""
stop_pid() { # pid name seconds: SIGTERM (SIGINT for the launcher), then SIGKILL after `seconds`
  local pid=$1 name=$2 limit=$3 sig=${4:-TERM} i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "$name ($pid) still running after ${limit}s: SIGKILL"
  kill -s KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  [ -n "$LT_PID" ] && stop_pid "$LT_PID" loadtest 5 INT
  [ -n "$PEER_HAPROXY_PID" ] && stop_pid "$PEER_HAPROXY_PID" "peer haproxy" 5
  for pid in "${NODE_PIDS[@]}"; do stop_pid "$pid" "peer node" 8; done
  if [ -n "$CLUSTER_PID" ]; then
    say "stopping the cluster"
    stop_pid "$CLUSTER_PID" cluster 40 INT
  fi
  if [ -n "$DATA_DIR" ] && [ "$KEEP_DATA" != 1 ]; then
    rm -rf "$DATA_DIR"
  elif [ -n "$DATA_DIR" ]; then
    say "data kept in $DATA_DIR"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# --- build --------------------------------------------------------------------------------
say "building release (cargo build --release --workspace --bins)"
"${CARGO:-cargo}" build --release --workspace --bins
LT=$RELEASE/loadtest
say "npm ci in bench/peers/socketio"
(cd "$PEER_SRC" && npm ci --no-audit --no-fund --loglevel=error)
mkdir -p "$RESULTS_DIR"
RESULTS_DIR=$(cd "$RESULTS_DIR" && pwd)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- our cluster ----------------------------------------------------------------------------
DATA_DIR=$(mktemp -d /tmp/bench-peers.XXXXXXXX)
chmod 711 "$DATA_DIR"
mkdir -p "$DATA_DIR/logs"
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg); data dir $DATA_DIR"
say "starting the cluster (EDGES=2, HAProxy :$HTTP_PORT, PostgreSQL :$PG_PORT, Redis :$REDIS_PORT)"
DATA_DIR=$DATA_DIR HTTP_PORT=$HTTP_PORT PG_PORT=$PG_PORT REDIS_PORT=$REDIS_PORT \
EDGE_PORT=$EDGE_PORT API_PORT=$API_PORT EDGES=2 \
ARGON2_MEMORY_KIB=1024 LOGIN_ATTEMPTS=1000000 SEND_RATE_PER_SEC=1000000 SEND_BURST=1000000 \
RUST_LOG=warn "$RELEASE/cluster" run >"$DATA_DIR/cluster.out" 2>&1 &
CLUSTER_PID=$!
for ((i = 0; i < 1800; i++)); do
  grep -q 'Ctrl-C stops everything' "$DATA_DIR/cluster.out" 2>/dev/null && break
  kill -0 "$CLUSTER_PID" 2>/dev/null || { cat "$DATA_DIR/cluster.out" >&2; die "the launcher exited"; }
  sleep 0.1
done
grep -q 'Ctrl-C stops everything' "$DATA_DIR/cluster.out" || die "the cluster did not start in 180 s"
pids_of() { # role -> pids from cluster.json
  node -e 'for (const p of require(process.argv[1]).processes) if (p.role === process.argv[2]) console.log(p.pid)' \
    "$DATA_DIR/cluster.json" "$1"
}
PG_PID=$(pids_of postgres)
REDIS_PID=$(pids_of redis)
EDGE_PIDS=$(pids_of edge | tr '\n' ' ')
API_PIDS=$(pids_of api | tr '\n' ' ')
HAPROXY_PID=$(pids_of haproxy)
[ -n "$PG_PID" ] && [ -n "$REDIS_PID" ] && [ -n "$EDGE_PIDS" ] || die "cluster.json lacks processes"
PSQL="$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | tail -1)"
PSQL=${PSQL:-psql}
if command -v "$PSQL" >/dev/null 2>&1; then
  fsync=$("$PSQL" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atc \
    "SELECT current_setting('fsync') || ' ' || current_setting('synchronous_commit')" 2>/dev/null || echo "?")
  say "PostgreSQL fsync / synchronous_commit: $fsync"
fi

# --- the peer -------------------------------------------------------------------------------
PEER_DB=postgres://postgres@127.0.0.1:$PG_PORT/peer_socketio
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
say "starting the peer: $PEER_NODES Node processes (:$NODE_PORT..) behind HAProxy :$PEER_PORT"
(cd "$PEER_SRC" && DATABASE_URL=$PEER_DB node init.js)
servers=""
for ((n = 1; n <= PEER_NODES; n++)); do
  port=$((NODE_PORT + n - 1))
  log=$DATA_DIR/logs/peer-node-$n.log
  (cd "$PEER_SRC" && exec env PORT="$port" DATABASE_URL="$PEER_DB" REDIS_URL="$REDIS_URL" \
    node server.js) >"$log" 2>&1 &
  NODE_PIDS+=($!)
  servers+="    server node-$n 127.0.0.1:$port check"$'\n'
done
for ((n = 1; n <= PEER_NODES; n++)); do
  log=$DATA_DIR/logs/peer-node-$n.log
  for ((i = 0; i < 300; i++)); do
    grep -q 'listening on' "$log" 2>/dev/null && break
    kill -0 "${NODE_PIDS[n - 1]}" 2>/dev/null || { cat "$log" >&2; die "peer node $n exited"; }
    sleep 0.1
  done
  grep -q 'listening on' "$log" || die "peer node $n did not start in 30 s"
done
tmpl=$(<"$ROOT/bench/peers/haproxy-socketio.cfg.tmpl")
cfg=${tmpl//'{{HTTP_BIND}}'/127.0.0.1:$PEER_PORT}
cfg=${cfg//'{{MAXCONN}}'/9000}
cfg=${cfg//'{{SERVERS}}'/${servers%$'\n'}}
printf '%s\n' "$cfg" >"$DATA_DIR/peer-haproxy.cfg"
haproxy -c -q -f "$DATA_DIR/peer-haproxy.cfg" || die "bad peer HAProxy config: $DATA_DIR/peer-haproxy.cfg"
haproxy -db -f "$DATA_DIR/peer-haproxy.cfg" >"$DATA_DIR/logs/peer-haproxy.log" 2>&1 &
PEER_HAPROXY_PID=$!
for ((i = 0; i < 300; i++)); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PEER_PORT/health" 2>/dev/null && break
  kill -0 "$PEER_HAPROXY_PID" 2>/dev/null || { cat "$DATA_DIR/logs/peer-haproxy.log" >&2; die "peer HAProxy exited"; }
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PEER_PORT/health" || die "the peer is not healthy after 30 s"
# HAProxy may run more than one process (master/worker): count all of its pids.
PEER_HAPROXY_PIDS="$PEER_HAPROXY_PID $( (pgrep -P "$PEER_HAPROXY_PID" || true) | tr '\n' ' ')"
HAPROXY_PIDS="$HAPROXY_PID $( (pgrep -P "$HAPROXY_PID" || true) | tr '\n' ' ')"

# --- CPU accounting -------------------------------------------------------------------------
# Without forks (one pgrep aside), so a snapshot takes milliseconds even on a busy machine.
# TICKS += utime+stime of a pid in clock ticks (with `all`: plus its reaped children's).
add_ticks() {
  local s f
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 0
  s=${s##*) }
  read -r -a f <<<"$s"
  TICKS=$((TICKS + f[11] + f[12]))
  if [ "${2:-}" = all ]; then TICKS=$((TICKS + f[13] + f[14])); fi
  return 0
}
group_ticks() { # pids... -> TICKS
  local p
  TICKS=0
  for p in "$@"; do add_ticks "$p"; done
}
BUSY=0
busy_ticks() { # the machine: user nice system irq softirq steal -> BUSY
  local cpu u n s idle io irq sirq steal rest
  read -r cpu u n s idle io irq sirq steal rest </proc/stat
  BUSY=$((u + n + s + irq + sirq + steal))
}
SNAP=""
snapshot() { # side -> SNAP="group:ticks,..."
  local c
  # PostgreSQL: the postmaster, its reaped backends, its live backends.
  TICKS=0
  add_ticks "$PG_PID" all
  for c in $(pgrep -P "$PG_PID" || true); do add_ticks "$c"; done
  SNAP="postgres:$TICKS"
  group_ticks "$REDIS_PID"
  SNAP+=",redis:$TICKS"
  if [ "$1" = ours ]; then
    # shellcheck disable=SC2086
    group_ticks $EDGE_PIDS
    SNAP+=",edges:$TICKS"
    # shellcheck disable=SC2086
    group_ticks $HAPROXY_PIDS
    SNAP+=",haproxy:$TICKS"
    # shellcheck disable=SC2086
    group_ticks $API_PIDS
    SNAP+=",api:$TICKS"
  else
    group_ticks "${NODE_PIDS[@]}"
    SNAP+=",node:$TICKS"
    # shellcheck disable=SC2086
    group_ticks $PEER_HAPROXY_PIDS
    SNAP+=",haproxy:$TICKS"
  fi
}
diff_snapshots() { # before after -> "group:delta,..."
  local -A b
  local kv out=""
  for kv in ${1//,/ }; do b[${kv%%:*}]=${kv#*:}; done
  for kv in ${2//,/ }; do out+="${out:+,}${kv%%:*}:$(( ${kv#*:} - ${b[${kv%%:*}]:-0} ))"; done
  echo "$out"
}

# --- the runs -------------------------------------------------------------------------------
RUNS=$RESULTS_DIR/runs.tsv
printf 'round\tside\tworkload\trate\texit\tjson\twindow_s\tbusy_ticks\tcpu\n' >"$RUNS"
TOTAL_RUNS=$(( ROUNDS * 2 * ($(wc -w <<<"$RATES") + 1) ))
RUN_NO=0

# run ROUND SIDE WORKLOAD RATE [record]: one loadtest, CPU read from "sending for" to its exit.
run() {
  local round=$1 side=$2 workload=$3 rate=$4 record=${5:-record}
  local name="$side-$workload${rate:+-r$rate}-$round" target args
  local json=$RESULTS_DIR/$name.json err=$RESULTS_DIR/$name.log
  if [ "$side" = ours ]; then
    target=(--target "http://127.0.0.1:$HTTP_PORT")
  else
    target=(--target "http://127.0.0.1:$PEER_PORT" --protocol socketio)
  fi
  if [ "$workload" = fanout ]; then
    args=(--scenario fanout --users 100 --sockets-per-user 10 --channels 1 --rate "$rate"
      --duration "$DURATION" --grace "$GRACE")
  else
    args=(--scenario durable --users "$DURABLE_USERS" --channels "$DURABLE_USERS"
      --pipeline "$DURABLE_PIPELINE" --duration "$DURATION" --grace 5s)
  fi
  if [ "$record" = record ]; then
    RUN_NO=$((RUN_NO + 1))
    say "round $round/$ROUNDS, run $RUN_NO/$TOTAL_RUNS: $side $workload${rate:+ R=$rate}"
  else
    say "warm-up: $side $workload${rate:+ R=$rate} (not counted)"
  fi
  timeout -s INT -k 10 "$RUN_LIMIT" "$LT" "${target[@]}" "${args[@]}" --no-progress \
    --json "$json" >"$RESULTS_DIR/$name.out" 2>"$err" &
  LT_PID=$!
  local i before="" busy0=0 t0
  t0=$(date +%s.%N)
  for ((i = 0; i < RUN_LIMIT * 10; i++)); do
    if grep -q 'sending for' "$err" 2>/dev/null; then
      t0=$(date +%s.%N)
      snapshot "$side"
      before=$SNAP
      busy_ticks
      busy0=$BUSY
      break
    fi
    kill -0 "$LT_PID" 2>/dev/null || break
    sleep 0.1
  done
  local code=0
  wait "$LT_PID" || code=$?
  LT_PID=""
  local after busy1 t1
  snapshot "$side"
  after=$SNAP
  busy_ticks
  busy1=$BUSY
  t1=$(date +%s.%N)
  if [ -z "$before" ]; then
    say "  (the run never reached its send phase; see $err)"
    busy0=$busy1
  fi
  say "  exit $code: $(node "$ROOT/bench/peers/summarize.js" line "$json")"
  if [ "$code" -ne 0 ] && [ "$code" -ne 1 ]; then
    tail -5 "$err" | sed 's/^/    /'
  fi
  if [ "$record" = record ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$side" "$workload" "$rate" "$code" \
      "$json" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
      "$((busy1 - busy0))" "$(diff_snapshots "${before:-$after}" "$after")" >>"$RUNS"
  fi
}

if [ "$WARMUP" = 1 ]; then
  first_rate=${RATES%% *}
  run 0 ours fanout "$first_rate" warmup
  run 0 peer fanout "$first_rate" warmup
fi
for ((round = 1; round <= ROUNDS; round++)); do
  if ((round % 2)); then order=(ours peer); else order=(peer ours); fi
  for rate in $RATES; do
    for side in "${order[@]}"; do run "$round" "$side" fanout "$rate"; done
  done
  for side in "${order[@]}"; do run "$round" "$side" durable ""; done
done

say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
say "results in $RESULTS_DIR"
echo
node "$ROOT/bench/peers/summarize.js" table "$RUNS" | tee "$RESULTS_DIR/table.md"
