#!/usr/bin/env bash
# Reproduces the figures in docs/benchmarks.md: each scenario against a fresh release
# server on the default SQLite configuration (fresh data folder, durability = full),
# JSON reports in $OUT. Server and bench share the machine's cores, unpinned; each
# report says how much CPU each used.
#
#   crates/banter-bench/scripts/figures.sh [OUT]   (default OUT: ./bench-results)
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${1:-bench-results}
mkdir -p "$OUT"
cargo build --release -q -p banter-server -p banter-bench
BIN=target/release
export BANTER_ADMIN_TOKEN=${BANTER_ADMIN_TOKEN:-$(head -c 24 /dev/urandom | base64)}
PORT=${PORT:-18080}
URL=http://127.0.0.1:$PORT
DATA=""
SERVER=""

stop_server() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ -n "$DATA" ]; then rm -rf "$DATA"; fi
  SERVER=""
}
trap stop_server EXIT

# A fresh server per scenario: default configuration except the admin API, room for
# 19,000+ connections, and no frame or message rate limits (the bench's senders are
# machines; with the defaults of 100 frames/s per connection and 100 messages/s per user
# the server would refuse most sends, which the bench counts as `refused` and fails).
# Extra settings come as arguments.
start_server() {
  stop_server
  DATA=$(mktemp -d)
  env BANTER_DATA_DIR="$DATA" BANTER_LISTEN=127.0.0.1:$PORT \
    BANTER_LIMITS__CONNECTIONS_MAX=20000 BANTER_LIMITS__FRAMES_PER_SECOND_MAX=1000000 \
    BANTER_LIMITS__MESSAGES_PER_USER_PER_SECOND_MAX=1000000 \
    BANTER_LOG=warn "$@" $BIN/banter > "$OUT/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 50); do curl -sf "$URL/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}

bench() {
  local name=$1; shift
  echo "== $name: banter-bench $*"
  $BIN/banter-bench "$@" --url "$URL" --server-pid "$SERVER" --quiet --json "$OUT/$name.json"
}

# 15,000: with connections_max raised to 20,000 and a 20,000-file limit, a node serves
# 15,816 WebSockets beside its 4,096 other HTTP connections (docs/security.md, "Open
# files").
start_server; bench connections connections --connections 15000 --duration 10
start_server; bench direct direct --pairs 100 --duration 10
start_server; bench direct-w16 direct --pairs 100 --window 16 --duration 10
start_server; bench direct-10k direct --pairs 100 --rate 10000 --duration 10
start_server BANTER_DURABILITY=relaxed; bench direct-relaxed direct --pairs 100 --duration 10
start_server BANTER_DURABILITY=relaxed; bench direct-relaxed-w16 direct --pairs 100 --window 16 --duration 10
start_server; bench group-w4 group --members 1000 --window 4 --duration 10
start_server; bench group-w8 group --members 1000 --window 8 --duration 10
start_server; bench group-w16 group --members 1000 --window 16 --duration 10
start_server; bench group-200 group --members 200 --window 16 --duration 10
start_server; bench reconnect-storm reconnect-storm --clients 19000 --missed 20
echo "reports in $OUT/"
