#!/usr/bin/env python3
"""Independent acceptance suite for payment-mcp's Alipay provider (issue 13).

The client is the official MCP Python SDK over stdio; the gateway is this suite's own fake Alipay
(gateway.py), written from the wire contract and first held against Alipay's official Python SDK
(selftest.py). Keys are generated at start. Nothing here reads payment-mcp's Rust code.

Usage: python3 scripts/acceptance/alipay/alipay_acceptance.py [BINARY] [-v] [--keep DIR]
Exit status 0 when every check passed, 1 when any failed, 2 when BINARY is not executable.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anyio  # noqa: E402

import scenarios_config  # noqa: E402
import scenarios_core  # noqa: E402
import scenarios_faults  # noqa: E402
import selftest  # noqa: E402
from context import Ctx  # noqa: E402
from harness import Checks  # noqa: E402


async def main_async(binary: str, workdir: str, check: Checks) -> None:
    run = "ACC" + time.strftime("%H%M%S")
    print("== G: the fake gateway against the spec vectors and Alipay's Python SDK")
    selftest.run(check)

    ctx = Ctx(binary, workdir, check)
    try:
        print(f"== main server (RSA2, PKCS#8 body, TZ=America/Los_Angeles) against {ctx.gateway.url}")
        async with ctx.server("main", AP_NOTIFY_URL="https://merchant.example.com/alipay/notify",
                              AP_RETURN_URL="https://merchant.example.com/alipay/return",
                              AP_LOG_ENABLED="true", PAYMENT_LOG="debug") as s:
            scenarios_core.tool_list(ctx, s)
            await scenarios_core.create_and_query(ctx, s, run)
            await scenarios_core.links(ctx, s, run)
            await scenarios_core.refunds(ctx, s, run)
            await scenarios_core.close(ctx, s, run)
            await scenarios_core.compat(ctx, s, run)
            await scenarios_config.notifications(ctx, s, run)
            await scenarios_faults.sub_codes(ctx, s, run)
            await scenarios_faults.untrusted(ctx, s, run)
        scenarios_core.wire_checks(ctx, "all requests")
        ctx.validate_outputs(s)
        ctx.check_stdout_and_secrets(s)
        print("== timeouts (PAYMENT_REQUEST_TIMEOUT_MS=1000)")
        await scenarios_faults.timeouts(ctx, run)
        print("== tool selection, keys, log file")
        await scenarios_config.tool_selection(ctx)
        await scenarios_config.keys(ctx, run)
        print("== doctor")
        await anyio.to_thread.run_sync(scenarios_config.doctor, ctx)
    finally:
        ctx.gateway.stop()
    print("== AP_ENCRYPTION_ALGO=RSA (SHA1withRSA), PKCS#1 key, TZ=Pacific/Kiritimati")
    await scenarios_config.rsa_sha1(binary, workdir, check, run)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", nargs="?", default="target/debug/payment-mcp")
    parser.add_argument("-v", "--verbose", action="store_true", help="print passing checks too")
    parser.add_argument("--keep", metavar="DIR", help="keep logs (stdout/stderr per server, ledgers) in DIR")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"{binary} is not executable (cargo build --locked first)", file=sys.stderr)
        return 2
    workdir = args.keep or tempfile.mkdtemp(prefix="alipay-acceptance-")
    os.makedirs(workdir, exist_ok=True)
    check = Checks(verbose=args.verbose)
    try:
        anyio.run(main_async, binary, workdir, check)
    except Exception as e:  # noqa: BLE001 - a crash of the suite is a failure, with its trace
        import traceback
        check("H", "the suite ran to the end", False, "".join(traceback.format_exception(e))[-3000:])
    status = check.report()
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs kept in {workdir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
