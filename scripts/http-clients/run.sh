#!/usr/bin/env bash
# Third-party MCP clients against `payment-mcp serve --http` with bearer tokens: the official Python
# SDK (python_client.py) and the MCP Inspector CLI. Run by .ci/run after the Rust tests.
#
# Usage: scripts/http-clients/run.sh BINARY PYTHON
#   BINARY  the payment-mcp binary (target/debug/payment-mcp)
#   PYTHON  a python with mcp==2.3.0 installed (the acceptance venv's)
# Needs node and npm (npx fetches @modelcontextprotocol/inspector@1.0.3, the last release that runs
# on Node 20). The server runs on the embedded sandbox on a free loopback port; nothing leaves the
# machine.
set -euo pipefail

bin=$(realpath "$1")
py=$2
here=$(dirname "$0")
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export PAYMENT_TOKENS_FILE="$work/tokens" PAYMENT_LEDGER=off
token=$("$bin" token add ci-agent --scope payments:all 2>/dev/null)
reader=$("$bin" token add ci-reader --scope payments:read 2>/dev/null)

"$bin" serve --http 127.0.0.1:0 2>"$work/serve.log" &
pid=$!
url=
for _ in $(seq 1 200); do
  url=$(grep -o 'listening on http://[^ ]*' "$work/serve.log" | head -n 1 | sed 's/listening on //') || true
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "serve --http did not start:"; cat "$work/serve.log"; exit 1
fi
echo "server: $url"

echo "== official MCP Python SDK (streamable HTTP, bearer token)"
"$py" "$here/python_client.py" "$url" "$token" "$reader"

echo "== MCP Inspector CLI 1.0.3 (--transport http --header Authorization)"
inspector() {
  npx -y --loglevel=error @modelcontextprotocol/inspector@1.0.3 --cli "$url" --transport http "$@" 2>"$work/inspector.err"
}
listed=$(inspector --header "Authorization: Bearer $token" --method tools/list)
echo "$listed" | python3 -c 'import json,sys; names=[t["name"] for t in json.load(sys.stdin)["tools"]]; assert "create_payment_order" in names, names; print("  tools/list:", len(names), "tools")'
created=$(inspector --header "Authorization: Bearer $token" --method tools/call --tool-name create_payment_order \
  --tool-arg merchant_order_no=INSPECTOR-1 amount=1.50)
echo "$created" | python3 -c 'import json,sys; r=json.load(sys.stdin); s=r["structuredContent"]; assert not r.get("isError") and s["state"]=="pending" and s["amount"]=="1.50", r; print("  tools/call create_payment_order: pending", s["order_no"])'
listed=$(inspector --header "Authorization: Bearer $reader" --method tools/list)
echo "$listed" | python3 -c 'import json,sys; names=[t["name"] for t in json.load(sys.stdin)["tools"]]; assert "create_payment_order" not in names and "query_payment_order" in names, names; print("  read-only token: no money-moving tool listed")'
if inspector --method tools/list >/dev/null; then
  echo "FAIL: the Inspector listed tools without a token"; exit 1
fi
echo "  no token: refused"
if grep -q "$token" "$work/serve.log"; then
  echo "FAIL: a token reached the server log"; exit 1
fi
echo "third-party HTTP clients: ok"
