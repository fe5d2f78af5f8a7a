#!/usr/bin/env bash
# Failover while a node dies (docs/benchmarks.md, "A node killed mid-run"): three release
# nodes on one fresh PostgreSQL database with a Redis bus; `banter-bench direct --failover`,
# then `group --failover`, spread over the three; in the middle of each run one node is
# killed with SIGKILL and started again on the same port a few seconds later. The devices
# on it reconnect to the next node, resend what was unacked and sync from the last seq they
# hold. Fails unless every report shows 0 lost, 0 duplicated, 0 reordered (the bench exits
# with status 1 otherwise) and at least one reconnect (else the kill missed the run).
#
#   crates/banter-bench/scripts/cluster-kill.sh [OUT]   (default OUT: ./bench-results/cluster-kill)
#
# Needs PostgreSQL that takes `CREATE DATABASE` from this user (PG_URL, default
# postgres://root@127.0.0.1:5432; the script creates its own database and drops it at the
# end) and Redis (REDIS_URL, default redis://127.0.0.1:6379). Also: BASE_PORT (default
# 18280: nodes on BASE_PORT+1 … +3), DURATION (seconds of sending, default 20), KILL_AT
# (seconds into sending when the node dies, default 8), DOWN (seconds it stays dead,
# default 3), VICTIM (which node dies, 1-3, default 2).
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${1:-bench-results/cluster-kill}
mkdir -p "$OUT"
cargo build --release -q -p banter-server -p banter-bench
BIN=${CARGO_TARGET_DIR:-target}/release
PG_URL=${PG_URL:-postgres://root@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
BASE_PORT=${BASE_PORT:-18280}
DURATION=${DURATION:-20}
KILL_AT=${KILL_AT:-8}
DOWN=${DOWN:-3}
VICTIM=${VICTIM:-2}
NODES=3
export BANTER_ADMIN_TOKEN=${BANTER_ADMIN_TOKEN:-$(head -c 24 /dev/urandom | base64)}
DB="banter_kill_$$_$RANDOM"
PIDS=()
DIRS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for dir in "${DIRS[@]}"; do rm -rf "$dir"; done
  psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null || true
  # What the nodes kept in Redis (presence, budgets) under their namespace.
  redis-cli -u "$REDIS_URL" --scan --pattern "$DB:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
}
trap cleanup EXIT

# start_node I: node I on BASE_PORT+I, on the shared database and bus, with its own data
# folder (kept across a restart); returns once it answers /healthz.
start_node() {
  local i=$1 port=$((BASE_PORT + $1))
  env BANTER_DATA_DIR="${DIRS[$i]}" BANTER_LISTEN=127.0.0.1:$port BANTER_DATABASE_URL="$PG_URL/$DB" \
    BANTER_BUS_URL="$REDIS_URL" BANTER_BUS_NAMESPACE="$DB" BANTER_MEDIA__LOCAL_FOLDER_IS_SHARED=true \
    BANTER_LIMITS__CONNECTIONS_MAX=20000 BANTER_LIMITS__FRAMES_PER_SECOND_MAX=1000000 \
    BANTER_LIMITS__MESSAGES_PER_USER_PER_SECOND_MAX=1000000 BANTER_LOG=warn \
    "$BIN/banter" >> "$OUT/node$i.log" 2>&1 &
  PIDS[$i]=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "node $i did not come up; see $OUT/node$i.log" >&2
  exit 2
}

# run NAME ARGS…: the bench over the three nodes in the background; once it is sending,
# KILL_AT seconds later the victim gets SIGKILL, and DOWN seconds after that it starts
# again on its port. Then checks the report.
run() {
  local name=$1; shift
  echo "== $name: banter-bench $* --failover --url $URLS (node $VICTIM killed ${KILL_AT}s into sending)"
  "$BIN/banter-bench" "$@" --failover --url "$URLS" --duration "$DURATION" --no-fsync-probe \
    --quiet --json "$OUT/$name.json" > "$OUT/$name.txt" 2> "$OUT/$name.log" &
  local bench=$!
  until grep -qs "^sending for" "$OUT/$name.log"; do
    kill -0 "$bench" 2>/dev/null || { cat "$OUT/$name.log" >&2; exit 2; }
    sleep 0.1
  done
  sleep "$KILL_AT"
  kill -9 "${PIDS[$VICTIM]}"
  wait "${PIDS[$VICTIM]}" 2>/dev/null || true
  echo "   node $VICTIM killed; restarting it in ${DOWN}s"
  sleep "$DOWN"
  start_node "$VICTIM"
  echo "   node $VICTIM is back"
  local status=0
  wait "$bench" || status=$?
  cat "$OUT/$name.txt"
  if [ "$status" -ne 0 ]; then
    echo "FAIL: $name: the bench exited with $status (see $OUT/$name.txt)" >&2
    exit 1
  fi
  if ! grep -Eq '"reconnects": [1-9]' "$OUT/$name.json"; then
    echo "FAIL: $name: no device reconnected, so the kill did not hit the run" >&2
    exit 1
  fi
}

psql -q "$PG_URL/postgres" -c "CREATE DATABASE $DB" >/dev/null
URLS=""
for i in $(seq "$NODES"); do
  DIRS[$i]=$(mktemp -d)
  start_node "$i"
  URLS="${URLS:+$URLS,}http://127.0.0.1:$((BASE_PORT + i))"
done
run direct-kill direct --pairs 100
# Four senders, so that one of them is likely on the victim and has sends to resend.
run group-kill group --members 200 --senders 4 --window 8
echo "PASS: nothing lost, duplicated or reordered while node $VICTIM was killed; reports in $OUT/"
