#!/usr/bin/env bash
# Direct and group figures for one node against three nodes of a cluster, on PostgreSQL
# with a Redis bus, in one sitting (docs/benchmarks.md, "One node and three"). Each run
# gets a fresh database and fresh nodes; every node runs the default configuration but
# for the bench's raised limits; the bench spreads its connections over the nodes and
# sums their CPU.
#
#   crates/banter-bench/scripts/cluster.sh [OUT]   (default OUT: ./bench-results/cluster)
#
# Needs: psql and a PostgreSQL server that takes `createdb` from this user
# (PG_URL, default postgres://postgres@127.0.0.1:5432), and Redis (REDIS_URL, default
# redis://127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${1:-bench-results/cluster}
mkdir -p "$OUT"
cargo build --release -q -p banter-server -p banter-bench
BIN=target/release
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export BANTER_ADMIN_TOKEN=${BANTER_ADMIN_TOKEN:-$(head -c 24 /dev/urandom | base64)}
BASE_PORT=${BASE_PORT:-18180}
PIDS=()
DIRS=()
DB=""

stop_nodes() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for dir in "${DIRS[@]}"; do rm -rf "$dir"; done
  PIDS=(); DIRS=()
  if [ -n "$DB" ]; then
    psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null
    # What the nodes kept in Redis (presence, budgets) under their namespace.
    redis-cli -u "$REDIS_URL" --scan --pattern "$DB:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
    DB=""
  fi
}
trap stop_nodes EXIT

# start_nodes N: a fresh database and N nodes on ports BASE_PORT+1 … BASE_PORT+N; a
# single node runs without a bus, as one would.
start_nodes() {
  stop_nodes
  local n=$1
  DB="banter_bench_$$_$RANDOM"
  psql -q "$PG_URL/postgres" -c "CREATE DATABASE $DB" >/dev/null
  local bus=()
  if [ "$n" -gt 1 ]; then
    bus=(BANTER_BUS_URL="$REDIS_URL" BANTER_BUS_NAMESPACE="$DB" BANTER_MEDIA__LOCAL_FOLDER_IS_SHARED=true)
  fi
  URLS=""
  for i in $(seq "$n"); do
    local port=$((BASE_PORT + i)) dir
    dir=$(mktemp -d); DIRS+=("$dir")
    env BANTER_DATA_DIR="$dir" BANTER_LISTEN=127.0.0.1:$port BANTER_DATABASE_URL="$PG_URL/$DB" \
      "${bus[@]}" BANTER_LIMITS__CONNECTIONS_MAX=20000 BANTER_LIMITS__FRAMES_PER_SECOND_MAX=1000000 \
      BANTER_LIMITS__MESSAGES_PER_USER_PER_SECOND_MAX=1000000 BANTER_LOG=warn \
      $BIN/banter > "$OUT/node$i.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    URLS="${URLS:+$URLS,}http://127.0.0.1:$port"
  done
}

bench() {
  local name=$1; shift
  local pids
  pids=$(IFS=,; echo "${PIDS[*]}")
  echo "== $name: banter-bench $* --url $URLS"
  $BIN/banter-bench "$@" --url "$URLS" --server-pid "$pids" --quiet --json "$OUT/$name.json"
}

for round in 1 2; do
  for n in 1 3; do
    start_nodes "$n"; bench "direct-n$n-r$round" direct --pairs 100 --duration 10
    start_nodes "$n"; bench "group-n$n-r$round" group --members 200 --window 16 --duration 10
  done
done
echo "reports in $OUT/"
