#!/usr/bin/env bash
# Redis CPU per PUBLISH as a function of the number of subscribed connections (edges), for
# docs/CAPACITY.md: one fresh redis-server, K `redis-cli subscribe` connections on one channel
# (each stands for an edge with a member of that channel online), then redis-benchmark
# publishing 100-byte messages to it, pipelined (-P) as a busy edge's publisher does. Reports
# the time inside PUBLISH (INFO commandstats) and the whole process's CPU (INFO cpu) per publish.
# A run publishes PUBLISHES messages, at most 4,000,000 deliveries' worth (fewer with many
# subscribers, whose redis-cli processes must keep up), and fails if a subscriber was dropped.
#
#   scripts/capacity-redis.sh            # Environment: SUBSCRIBERS ("1 10 50 100 200"),
#                                        # PUBLISHES (200000), PIPELINE (16), PORT (18300)
set -euo pipefail
PORT=${PORT:-18300}; P=${PIPELINE:-16}
MSG=$(printf 'x%.0s' $(seq 1 100))
dir=$(mktemp -d /tmp/capacity-redis.XXXXXX)
cleanup() { pkill -f "redis-cli -p $PORT" 2>/dev/null || true; redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
echo "| subscribed connections | publishes | publishes/s | in PUBLISH us/call | redis CPU us/publish |"
echo "|---|---|---|---|---|"
for k in ${SUBSCRIBERS:-1 10 50 100 200}; do
  N=$((${PUBLISHES:-200000} < 4000000 / k ? ${PUBLISHES:-200000} : 4000000 / k))
  redis-server --port "$PORT" --save '' --appendonly no --dir "$dir" --daemonize yes \
    --logfile "$dir/redis.log" >/dev/null
  for _ in $(seq 1 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  for _ in $(seq 1 "$k"); do redis-cli -p "$PORT" subscribe channel-5 >/dev/null & done
  for _ in $(seq 1 100); do
    [[ $(redis-cli -p "$PORT" pubsub numsub channel-5 | tail -1) -ge $k ]] && break; sleep 0.1
  done
  redis-cli -p "$PORT" config resetstat >/dev/null
  c0=$(redis-cli -p "$PORT" info cpu | awk -F: '/^used_cpu_(sys|user):/{s+=$2} END{print s}')
  t0=$(date +%s.%N)
  redis-benchmark -p "$PORT" -n "$N" -P "$P" -c 4 -q publish channel-5 "$MSG" >/dev/null
  t1=$(date +%s.%N)
  c1=$(redis-cli -p "$PORT" info cpu | awk -F: '/^used_cpu_(sys|user):/{s+=$2} END{print s}')
  left=$(redis-cli -p "$PORT" pubsub numsub channel-5 | tail -1)
  [[ $left -eq $k ]] || { echo "capacity-redis: $((k - left)) subscribers were dropped" >&2; exit 1; }
  usec=$(redis-cli -p "$PORT" info commandstats | sed -n 's/^cmdstat_publish:.*usec_per_call=\([0-9.]*\).*/\1/p' | tr -d '\r')
  awk -v k="$k" -v n="$N" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v u="$usec" \
    'BEGIN{printf "| %d | %d | %.0f | %.2f | %.2f |\n", k, n, n/(t1-t0), u, (c1-c0)*1e6/n}'
  pkill -f "redis-cli -p $PORT subscribe" 2>/dev/null || true
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  sleep 0.5
done
