#!/usr/bin/env bash
# Message search at scale (BENCHMARKS.md, "Search at 5M messages"): a cluster of its own, 5M
# messages in 1,000 channels loaded with COPY (words drawn from a Zipf-distributed vocabulary),
# then typical queries through `GET /api/search` (one channel, and all 50 channels of the
# searching user), p50/p99 each; then, unless AB_ROUNDS=0, the write cost of the search column
# and index on durable sends: scripts/bench-ab.sh on fresh clusters, A without them (dropped
# after start-up), B as shipped, alternated A B A B.
#
#   scripts/bench-search.sh BIN_DIR     # BIN_DIR holds cluster, edge-server, api-server, loadtest
#
# Environment: MESSAGES (5000000), CHANNELS (1000), MINE (50: the searcher's channels), RUNS
# (200 requests per query, fewer past 30 s), AB_ROUNDS (2), OUT (a new /tmp/bench-search.* dir).
set -euo pipefail
[[ $# -eq 1 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
BIN=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
OUT=${OUT:-$(mktemp -d /tmp/bench-search.XXXXXX)}
mkdir -p "$OUT"
MESSAGES=${MESSAGES:-5000000}; CHANNELS=${CHANNELS:-1000}; MINE=${MINE:-50}; RUNS=${RUNS:-200}
PB=18200
data=$(mktemp -d /tmp/bench-data.XXXXXX); chmod 711 "$data"
env DATA_DIR="$data" HTTP_PORT=$PB PG_PORT=$((PB + 1)) REDIS_PORT=$((PB + 2)) API_PORT=$((PB + 10)) \
  EDGE_PORT=$((PB + 20)) EDGES=1 ARGON2_MEMORY_KIB=1024 RUST_LOG=warn "$BIN/cluster" run \
  >"$OUT/cluster.log" 2>&1 &
cluster=$!
trap 'kill -INT $cluster 2>/dev/null || true; wait $cluster 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do
  [[ -s $data/cluster.json ]] && curl -fs "http://127.0.0.1:$PB/health" >/dev/null 2>&1 && break
  sleep 0.2
done
pg=(psql -h 127.0.0.1 -p $((PB + 1)) -U postgres -d chat -v ON_ERROR_STOP=1 -qtA)
api="http://127.0.0.1:$PB/api"
curl -fs -H 'content-type: application/json' -d '{"username":"searcher","password":"password-123"}' \
  "$api/register" >/dev/null
token=$(curl -fs -H 'content-type: application/json' \
  -d '{"username":"searcher","password":"password-123"}' "$api/login" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# Senders, channels (the searcher owns them all and is a member of the first MINE), then the
# messages without the search column (COPY stores plain rows), then the column and its index
# as the migration makes them: set_search_language() computes every row's tsvector.
"${pg[@]}" <<SQL
INSERT INTO users (username, password_hash) SELECT 'sender' || g, 'x' FROM generate_series(1, 200) g;
INSERT INTO channels (kind, name, created_by, last_seq)
SELECT 'group', 'bench-' || g, (SELECT id FROM users WHERE username = 'searcher'),
       $MESSAGES / $CHANNELS + (CASE WHEN g <= $MESSAGES % $CHANNELS THEN 1 ELSE 0 END)
  FROM generate_series(1, $CHANNELS) g;
INSERT INTO channel_members (channel_id, user_id, role)
SELECT c.id, u.id, 'owner' FROM channels c, users u
 WHERE u.username = 'searcher' AND c.name LIKE 'bench-%' ORDER BY c.id LIMIT $MINE;
ALTER TABLE messages DROP COLUMN search;
SQL
ch_lo=$("${pg[@]}" -c "SELECT min(id) FROM channels WHERE name LIKE 'bench-%'")
snd_lo=$("${pg[@]}" -c "SELECT min(id) FROM users WHERE username LIKE 'sender%'")
t0=$(date +%s)
MESSAGES=$MESSAGES CHANNELS=$CHANNELS CH_LO=$ch_lo SND_LO=$snd_lo python3 - <<'PY' |
import os, random, sys, time
# A vocabulary: common chat words first (the head of the Zipf curve), then made-up words from
# syllables (its long tail), weighted 1/rank.
head = """the to and a i you it is of in that for on we this be have with are not do so
just can at but was if will what me my all get like no up out now think one know about
there yes ok good time how they go your see as or from would make when then need want
today meeting code review deploy release bug fix test build team work thanks please
tomorrow week issue branch merge server database query update call lunch back done
check looks great sounds sure later morning project plan client design data error
""".split()
syl = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["qu", "ch", "sh", "th"]
rng = random.Random(16)
tail, seen = [], set(head)
while len(tail) < 30000:
    w = "".join(rng.choice(syl) for _ in range(rng.randint(2, 4)))
    if w not in seen:
        seen.add(w); tail.append(w)
vocab = head + tail
cum, acc = [], 0.0
for r in range(1, len(vocab) + 1):
    acc += 1.0 / r
    cum.append(acc)
n, chans = int(os.environ["MESSAGES"]), int(os.environ["CHANNELS"])
ch_lo, snd_lo = int(os.environ["CH_LO"]), int(os.environ["SND_LO"])
epoch = 1735689600000                          # ids: ms since 2025-01-01 << 22 | n
start = int(time.time() * 1000) - 365 * 86400000
step = 365 * 86400000 // n
out = sys.stdout
for lo in range(0, n, 100000):
    hi = min(n, lo + 100000)
    lens = [rng.randint(3, 25) for _ in range(hi - lo)]
    words = rng.choices(vocab, cum_weights=cum, k=sum(lens))
    lines, at = [], 0
    for i, k in zip(range(lo, hi), lens):
        t = start + i * step
        mid = ((t - epoch) << 22) | (i & 0x3FFFFF)
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t / 1000))
        lines.append(f"{mid}\t{ch_lo + i % chans}\t{i // chans + 1}\t{snd_lo + rng.randrange(200)}"
                     f"\t{' '.join(words[at:at + k])}\t{ts}+00\n")
        at += k
    out.write("".join(lines))
PY
  "${pg[@]}" -c "COPY messages (id, channel_id, seq, sender_id, content, created_at) FROM STDIN"
t1=$(date +%s)
PGOPTIONS="-c maintenance_work_mem=1GB" "${pg[@]}" -c "SELECT set_search_language('simple')" >/dev/null
t2=$(date +%s)
"${pg[@]}" -c "VACUUM ANALYZE messages"
size=$("${pg[@]}" -c "SELECT pg_size_pretty(sum(pg_relation_size(i.indexrelid))) FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'messages_p%_channel_id_search_idx'")
tbl=$("${pg[@]}" -c "SELECT pg_size_pretty(sum(pg_table_size(c.oid))) FROM pg_class c
  WHERE c.relname ~ '^messages_p[0-9]+$'")
echo "bench-search: $MESSAGES messages in $CHANNELS channels: COPY $((t1 - t0)) s, search column and GIN index $((t2 - t1)) s; table $tbl, GIN indexes $size" | tee "$OUT/load.txt" >&2

# The queries: (label, q). Counts of matches per scope come from SQL, for the table.
one=$ch_lo
mine="ARRAY(SELECT channel_id FROM channel_members cm JOIN users u ON u.id = cm.user_id WHERE u.username = 'searcher')"
queries=("very common word|the" "common word|meeting"
  "rare word|$("${pg[@]}" -c "SELECT w FROM (SELECT unnest(tsvector_to_array(search)) w FROM messages WHERE channel_id = $one) x GROUP BY w HAVING count(*) = 1 ORDER BY w LIMIT 1")"
  "phrase|\"the meeting\"" "two words (AND)|deploy error")
echo "| query | q | scope | matches | p50 ms | p99 ms | requests |"
echo "|---|---|---|---|---|---|---|"
for entry in "${queries[@]}"; do
  label=${entry%%|*}; q=${entry#*|}
  for scope in one all; do
    if [[ $scope == one ]]; then chans="ARRAY[$one]::int8[]"; param="&channel_id=$one"; name="1 channel"
    else chans=$mine; param=""; name="$MINE channels"; fi
    qs=${q//\'/\'\'}
    matches=$("${pg[@]}" -c "SELECT count(*) FROM messages WHERE channel_id = ANY ($chans) AND search @@ websearch_to_tsquery('simple', '$qs')")
    python3 - "$api" "$token" "$q" "$param" "$RUNS" "$label" "$name" "$matches" <<'PY'
import http.client, json, statistics, sys, time, urllib.parse
api, token, q, param, runs, label, scope, matches = sys.argv[1:]
u = urllib.parse.urlparse(api)
conn = http.client.HTTPConnection(u.hostname, u.port)
path = f"{u.path}/search?q={urllib.parse.quote(q)}&limit=20{param}"
hdr = {"authorization": f"Bearer {token}"}
lat = []
start = time.perf_counter()
for i in range(int(runs) + 5):
    if i >= 25 and time.perf_counter() - start > 30:   # slow queries: 30 s of them
        break
    t = time.perf_counter()
    conn.request("GET", path, headers=hdr)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"bench-search: {path}: {r.status} {body[:200]!r}")
    if i >= 5:                                 # the first few warm the caches
        lat.append((time.perf_counter() - t) * 1000)
lat.sort()
p = lambda x: lat[min(len(lat) - 1, int(x * len(lat)))]
print(f"| {label} | `{q}` | {scope} | {int(matches):,} | {p(0.50):.1f} | {p(0.99):.1f} | {len(lat)} |")
PY
  done
done | tee "$OUT/queries.md"
kill -INT $cluster 2>/dev/null; wait $cluster 2>/dev/null || true

if [[ ${AB_ROUNDS:-2} -gt 0 ]]; then
  # The write cost: the same build, A with the search column (and so its index) dropped once
  # the cluster is up, B as shipped.
  SETUP_A="psql -h 127.0.0.1 -p \$PG_PORT -U postgres -d chat -qc 'ALTER TABLE messages DROP COLUMN search'" \
    PORT_BASE=${AB_PORT_BASE:-18300} LOADTEST="$BIN/loadtest" OUT="$OUT/ab" "$HERE/bench-ab.sh" "$BIN" "$BIN" "${AB_ROUNDS:-2}" search-index -- \
    --scenario durable --users 100 --channels 100 --pipeline 16 --duration 10s | tee "$OUT/ab.md"
fi
echo "bench-search: runs in $OUT" >&2
