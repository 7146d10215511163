#!/usr/bin/env bash
# HTTP benchmark for `payment-mcp serve --http` (issue 16): queries per second with 64 concurrent
# clients against the loopback sandbox (target >= 3,000/s, p99 <= 20 ms), and memory per idle
# session. Prints one line per measurement; results go into BENCHMARKS.md's findings by hand.
#
#   scripts/bench-http/run.sh [BINARY] [SECONDS]    # default target/release/payment-mcp, 20 s
#
# Load: wrk (apt-get install wrk; installed here when missing), 64 connections, each request one
# stateless MCP 2026-07-28 tools/call of query_payment_order on an order created first (query.lua).
# The server runs on the embedded sandbox (each query is also one signed HTTP request to the
# sandbox gateway in the same process), with its default logging (one access line and one
# tool-call line per request) written to a file. Only loopback traffic; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${1:-target/release/payment-mcp}
seconds=${2:-20}
connections=64
sessions=${BENCH_SESSIONS:-1000}
if ! command -v wrk >/dev/null 2>&1; then
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  env -i PATH="$PATH" HOME="$work" PAYMENT_LEDGER=off PAYMENT_TOKENS_FILE="$work/no-tokens" "$@" \
    "$bin" serve --http 127.0.0.1:0 2>"$work/serve.log" &
  pid=$!
  url=
  for _ in $(seq 1 200); do
    url=$(grep -o 'listening on http://[^ ]*' "$work/serve.log" | head -n 1 | sed 's/listening on //') || true
    [ -n "$url" ] && break
    sleep 0.05
  done
  [ -n "$url" ] || { cat "$work/serve.log"; exit 1; }
}

stop_server() {
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

call() { # a stateless 2026-07-28 tools/call; prints the JSON-RPC reply
  curl -s -X POST "$url" -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H "mcp-name: $1" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"$1\",\"arguments\":$2,\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}"
}

echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1 /proc/loadavg); binary $bin ($(stat -c %s "$bin") bytes)"

# Three runs: flat out with default logging, flat out with logging off, and paced to about 3,000
# queries/s (the target rate) with default logging, where p99 is the latency a client sees at that load.
for run in default quiet paced; do
  if [ "$run" = quiet ]; then start_server PAYMENT_LOG=warn; else start_server; fi
  if [ "$run" = paced ]; then export BENCH_PACE_MS=${BENCH_PACE_MS:-18}; else unset BENCH_PACE_MS; fi
  logging=$run
  order_no=$(call create_payment_order '{"merchant_order_no":"BENCH-1","amount":"12.30"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["structuredContent"]["order_no"])')
  state=$(call query_payment_order "{\"order_no\":\"$order_no\"}" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]; assert not r.get("isError"), r; print(r["structuredContent"]["state"])')
  [ "$state" = pending ] || { echo "unexpected state $state"; exit 1; }
  ORDER_NO=$order_no wrk -t1 -c$connections -d3s -s scripts/bench-http/query.lua "$url" >/dev/null # warm-up
  line=$(ORDER_NO=$order_no wrk -t1 -c$connections -d"${seconds}s" -s scripts/bench-http/query.lua "$url" | grep '^BENCH')
  python3 - "$line" "$logging" "$seconds" <<'EOF'
import sys
fields = dict(kv.split("=") for kv in sys.argv[1].split()[1:])
qps = int(fields["requests"]) / float(fields["seconds"])
print(f"queries/s, 64 clients, {sys.argv[2]}: {qps:,.0f}/s over {sys.argv[3]} s; "
      f"p50 {float(fields['p50_ms']):.2f} ms, p90 {float(fields['p90_ms']):.2f} ms, p99 {float(fields['p99_ms']):.2f} ms, "
      f"max {float(fields['max_ms']):.1f} ms; {fields['good']} good query results, {fields['bad']} other replies, "
      f"non-2xx {fields['non2xx']}, socket errors {fields['errors']}")
if int(fields["bad"]) or int(fields["good"]) == 0:
    sys.exit("some replies were not query results")
EOF
  stop_server
done
unset BENCH_PACE_MS

# Memory per idle session: RSS before and after opening sessions that then sit idle (2025-06-18
# initialize + notifications/initialized each, no GET stream), after a settle.
start_server
call query_payment_order '{"order_no":"warm-up"}' >/dev/null
sleep 1
before=$(rss_kib)
python3 - "$url" "$sessions" <<'EOF'
import json, sys, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}).encode()
note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
hdr = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
for _ in range(n):
    with urllib.request.urlopen(urllib.request.Request(url, init, hdr)) as r:
        sid = r.headers["mcp-session-id"]
        r.read()
    h = dict(hdr, **{"mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"})
    with urllib.request.urlopen(urllib.request.Request(url, note, h)) as r:
        r.read()
EOF
sleep 2
after=$(rss_kib)
python3 -c "b,a,n=$before,$after,$sessions; print(f'memory per idle session: {(a-b)*1024/n:,.0f} bytes ({n} sessions: RSS {b/1024:.1f} -> {a/1024:.1f} MiB)')"
stop_server
