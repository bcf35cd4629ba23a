#!/usr/bin/env bash
# PostgreSQL's CPU per history read of docs/CAPACITY.md: the read a `resume` (or a gap fill)
# makes, `messages_between` of shared/src/store/messages.rs, run by pgbench against a cluster
# whose `messages` a durable load test filled first. CPU is the postmaster's tree from /proc
# (scripts/bench_cpu.py), so pgbench's own CPU is not counted.
#
#   scripts/capacity-pg.sh BIN_DIR     # BIN_DIR holds cluster, edge-server, api-server, loadtest
#
# Environment: ROWS ("10 100 1000": rows a read returns), READS (20000 per size), FILL (how
# long the durable fill runs, 20s), CHANNELS (100), OUT (a new /tmp/capacity-pg.* directory).
set -euo pipefail
[[ $# -eq 1 ]] || { sed -n '2,10p' "$0" >&2; exit 2; }
BIN=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
OUT=${OUT:-$(mktemp -d /tmp/capacity-pg.XXXXXX)}
PGBENCH=${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}
CHANNELS=${CHANNELS:-100}; READS=${READS:-20000}
PB=18100
data=$(mktemp -d /tmp/bench-data.XXXXXX); chmod 711 "$data"
env DATA_DIR="$data" HTTP_PORT=$PB PG_PORT=$((PB + 1)) REDIS_PORT=$((PB + 2)) API_PORT=$((PB + 10)) \
  EDGE_PORT=$((PB + 20)) EDGES=2 ARGON2_MEMORY_KIB=1024 LOGIN_ATTEMPTS=1000000 \
  SEND_RATE_PER_SEC=1000000 SEND_BURST=1000000 RUST_LOG=warn "$BIN/cluster" run >"$OUT/cluster.log" 2>&1 &
cluster=$!
trap 'kill -INT $cluster 2>/dev/null; wait $cluster 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do
  [[ -s $data/cluster.json ]] && curl -fs "http://127.0.0.1:$PB/health" >/dev/null 2>&1 && break
  sleep 0.2
done
"$BIN/loadtest" --target "http://127.0.0.1:$PB" --scenario durable --users "$CHANNELS" \
  --channels "$CHANNELS" --duration "${FILL:-20s}" --no-progress >"$OUT/fill.txt" 2>&1
pg=(psql -h 127.0.0.1 -p $((PB + 1)) -U postgres -d chat -qtA)
rows=$("${pg[@]}" -c "SELECT count(*) FROM messages")
lo=$("${pg[@]}" -c "SELECT min(id) FROM channels WHERE last_seq > 0")
hi=$("${pg[@]}" -c "SELECT max(id) FROM channels WHERE last_seq > 0")
least=$("${pg[@]}" -c "SELECT min(last_seq) FROM channels WHERE last_seq > 0")
"${pg[@]}" -c "VACUUM ANALYZE"
echo "| rows per read | reads | reads/s (1 client) | postgres us/read | postgres us/row |"
echo "|---|---|---|---|---|"
for n in ${ROWS:-10 100 1000}; do
  span=$((least > n ? least - n : 1))
  cat >"$OUT/read-$n.sql" <<SQL
\set c random($lo, $hi)
\set a random(0, $span)
SELECT m.id, m.channel_id, m.seq, m.sender_id, u.username, m.content, m.reply_to, m.client_msg_id, m.created_at
  FROM messages m JOIN users u ON u.id = m.sender_id
 WHERE m.channel_id = :c AND m.seq > :a AND m.seq <= :a + $n ORDER BY m.seq LIMIT $((n + 1));
SQL
  c0=$(python3 "$HERE/bench_cpu.py" snap "$data/cluster.json")
  "$PGBENCH" -h 127.0.0.1 -p $((PB + 1)) -U postgres -n -M prepared -f "$OUT/read-$n.sql" \
    -t "$READS" chat >"$OUT/pgbench-$n.txt" 2>&1
  c1=$(python3 "$HERE/bench_cpu.py" snap "$data/cluster.json")
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/pgbench-$n.txt" | head -1)
  python3 - "$c0" "$c1" "$n" "$READS" "$tps" <<'PY'
import json, sys
c0, c1 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
n, reads, tps = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5] or 0)
us = (c1["postgres"] - c0["postgres"]) * 1e6 / reads
print(f"| {n} | {reads:,} | {tps:,.0f} | {us:.1f} | {us / n:.2f} |")
PY
done
echo "capacity-pg: $rows messages in channels $lo-$hi (each at least $least); runs in $OUT" >&2
