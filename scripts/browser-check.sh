#!/usr/bin/env bash
# Headless-browser checks, through the real MCP stdio interface:
# - scripts/browser-check.mjs, the sandbox pay page: create_payment_order → open pay_url in
#   Chromium → click "Pay" → query_payment_order says paid;
# - scripts/card-check.mjs (node's test runner), the MCP Apps pay card hosted by the ext-apps
#   AppBridge and the refund confirmation page (issue 15; see docs/pay-card.md).
#
# Needs: Node 20+, npm, and either Debian's chromium or root to apt-get install it. The first run
# installs chromium (apt) and scripts/node_modules (npm registry); later runs need no network.
# The check itself (scripts/browser-check.mjs) is limited to 60 s (BROWSER_CHECK_TIMEOUT_MS).
#
# Environment:
#   PAYMENT_MCP_BIN   payment-mcp binary to test (default target/debug/payment-mcp, built by
#                     `cargo build` if missing; an existing binary is NOT rebuilt)
# Screenshots: target/browser-check/pay-page.png and target/browser-check/paid.png.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

die() { echo "browser-check: $*" >&2; exit 1; }

echo "== chromium"
if ! command -v chromium >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "chromium is not installed and we are not root; run: apt-get install -y chromium"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
command -v chromium >/dev/null 2>&1 || die "chromium is still not on PATH after installing it"
# The Debian wrapper script prints a harmless shell warning on some hosts; keep the version line only.
chromium --version 2>/dev/null | head -n 1

echo "== node"
command -v node >/dev/null 2>&1 || die "node is not installed (Node 20 or newer is needed)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node $(node --version) is too old; playwright-core needs Node 20 or newer"
node --version

echo "== npm packages (scripts/node_modules, from scripts/package-lock.json)"
marker="scripts/node_modules/.package-lock.json"
if [ ! -f "$marker" ] || [ scripts/package.json -nt "$marker" ] || [ scripts/package-lock.json -nt "$marker" ]; then
  npm ci --prefix scripts --no-audit --no-fund --loglevel=error
else
  echo "up to date"
fi

echo "== payment-mcp binary"
if [ -n "${PAYMENT_MCP_BIN:-}" ]; then
  bin="$PAYMENT_MCP_BIN"
  [ -x "$bin" ] || die "PAYMENT_MCP_BIN=$bin is not an executable file"
else
  bin="$ROOT/target/debug/payment-mcp"
  if [ ! -x "$bin" ]; then
    cargo build
  fi
  [ -x "$bin" ] || die "cargo build did not produce $bin"
fi
echo "$bin ($(date -r "$bin" '+built %Y-%m-%d %H:%M:%S'))"

echo "== browser check: the sandbox pay page"
# `timeout` is a backstop only; the Node script enforces its own 60 s limit and cleans up.
PAYMENT_MCP_BIN="$bin" timeout --kill-after=5 90 node scripts/browser-check.mjs

echo "== card check: the MCP Apps pay card and the refund confirmation page"
# Screenshots: target/card-check/. CARD_CHECK_UPDATE_DOCS=1 also refreshes docs/pay-card.png.
PAYMENT_MCP_BIN="$bin" exec timeout --kill-after=5 300 node --test --test-timeout=120000 scripts/card-check.mjs
