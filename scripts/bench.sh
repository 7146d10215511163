#!/usr/bin/env bash
# Benchmarks for payment-mcp (GitHub issue 8): builds the release binary and the floor reference
# (examples/bare.rs), measures start-up, round trips, throughput, result sizes, QR, memory and
# binary size, prints a table and writes BENCHMARKS.md. Takes a few minutes; run by hand (and by a
# non-gating CI job). Timings never run in `cargo test`.
#
#   scripts/bench.sh                      # everything but the clean build
#   scripts/bench.sh --with-build-time    # also time a clean release build (several minutes)
#   BENCH_BUILD_TIME=1 scripts/bench.sh   # same
#
# Other arguments are passed to scripts/bench.py (see `python3 scripts/bench.py --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
build_time="${BENCH_BUILD_TIME:-0}"
for a in "$@"; do
  case "$a" in
    --with-build-time) build_time=1 ;;
    *) args+=("$a") ;;
  esac
done
if [[ "$build_time" == 1 ]]; then
  args+=(--with-build-time)
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "bench.sh needs Python 3.11+ ($python)" >&2; exit 2; }

echo "[bench] cargo build --release --locked --bin payment-mcp --example bare --example qr_bench" >&2
cargo build --release --locked --bin payment-mcp --example bare --example qr_bench

"$python" scripts/bench.py \
  --bin target/release/payment-mcp \
  --floor target/release/examples/bare \
  --qr target/release/examples/qr_bench \
  ${args[@]+"${args[@]}"}

# serve --http (issue 16): queries/s with 64 clients and memory per idle session. Printed only; the
# figures are kept in BENCHMARKS.md's findings. BENCH_HTTP=0 skips it (it needs wrk, installed by
# apt when missing).
if [[ "${BENCH_HTTP:-1}" != 0 ]]; then
  echo "[bench] scripts/bench-http/run.sh" >&2
  bash scripts/bench-http/run.sh target/release/payment-mcp
fi
