#!/usr/bin/env bash
# 100,000 idle connections over six nodes of one cluster on this machine (PostgreSQL and
# Redis), with each node's memory (docs/benchmarks.md, "One node and three"). One process
# holds about 19,900 sockets here (its open-file limit): each node serves up to 19,000
# WebSockets beside 512 other HTTP connections, and six bench processes each open their
# share, spread over all six nodes, and hold them while this script reads every node's
# resident memory.
#
#   crates/banter-bench/scripts/cluster-connections.sh [OUT] [TOTAL]
#   (default OUT: ./bench-results/cluster-connections, TOTAL: 100000)
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${1:-bench-results/cluster-connections}
TOTAL=${2:-100000}
NODES=6
mkdir -p "$OUT"
cargo build --release -q -p banter-server -p banter-bench
BIN=target/release
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export BANTER_ADMIN_TOKEN=${BANTER_ADMIN_TOKEN:-$(head -c 24 /dev/urandom | base64)}
BASE_PORT=${BASE_PORT:-18280}
HOLD_SECS=${HOLD_SECS:-40}
DB="banter_conns_$$"
PIDS=(); DIRS=(); BENCHES=()

cleanup() {
  for pid in "${BENCHES[@]}" "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BENCHES[@]}" "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for dir in "${DIRS[@]}"; do rm -rf "$dir"; done
  psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null || true
  # What the nodes kept in Redis (presence, budgets) under their namespace.
  redis-cli -u "$REDIS_URL" --scan --pattern "$DB:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
}
trap cleanup EXIT

rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

psql -q "$PG_URL/postgres" -c "CREATE DATABASE $DB" >/dev/null
URLS=""
for i in $(seq "$NODES"); do
  port=$((BASE_PORT + i)); dir=$(mktemp -d); DIRS+=("$dir")
  env BANTER_DATA_DIR="$dir" BANTER_LISTEN=127.0.0.1:$port BANTER_DATABASE_URL="$PG_URL/$DB" \
    BANTER_BUS_URL="$REDIS_URL" BANTER_BUS_NAMESPACE="$DB" BANTER_MEDIA__LOCAL_FOLDER_IS_SHARED=true \
    BANTER_LIMITS__CONNECTIONS_MAX=19000 BANTER_LIMITS__HTTP_CONNECTIONS_MAX=512 BANTER_LOG=warn \
    $BIN/banter > "$OUT/node$i.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  URLS="${URLS:+$URLS,}http://127.0.0.1:$port"
done
echo "nodes up; idle RSS (MB): $(for p in "${PIDS[@]}"; do printf '%s ' "$(rss_mb "$p")"; done)"
for p in "${PIDS[@]}"; do rss_mb "$p"; echo; done > "$OUT/rss-idle.txt"

share=$((TOTAL / NODES))
for i in $(seq "$NODES"); do
  $BIN/banter-bench connections --connections "$share" --duration "$HOLD_SECS" --prefix "n$i" \
    --url "$URLS" --connect-concurrency "${CONCURRENCY:-48}" --no-fsync-probe --quiet --json "$OUT/bench$i.json" > "$OUT/bench$i.log" 2>&1 &
  BENCHES+=($!)
done

# Wait until every bench process holds its share (it says "holding" once all are open).
for _ in $(seq 300); do
  holding=$( (grep -l "^holding" "$OUT"/bench*.log 2>/dev/null || true) | wc -l)
  [ "$holding" -ge "$NODES" ] && break
  sleep 1
done
echo "bench processes holding their connections: $holding of $NODES"
sleep 5
echo "held RSS (MB): $(for p in "${PIDS[@]}"; do printf '%s ' "$(rss_mb "$p")"; done)"
for p in "${PIDS[@]}"; do rss_mb "$p"; echo; done > "$OUT/rss-held.txt"
status=0
for pid in "${BENCHES[@]}"; do wait "$pid" || status=1; done
BENCHES=()
echo "bench exit status: $status (reports in $OUT/)"
exit $status
