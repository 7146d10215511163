"""The official MCP Python SDK against `payment-mcp serve --http`, with a bearer token.

Usage: python_client.py URL TOKEN READ_ONLY_TOKEN

Checks, through the SDK's streamable HTTP client (an httpx2 client carrying the Authorization
header): the 2025 initialize handshake and the 2026-07-28 discover lifecycle both list the tools and
run create -> sandbox payer -> query to `paid`; the read-only token sees no money-moving tool; a
request without a token is refused. Exits non-zero on the first surprise, printing what it saw.
"""

from __future__ import annotations

import sys

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def fail(message: str) -> None:
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


async def session_for(url: str, token: str | None, modern: bool, body) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                with anyio.fail_after(30):
                    if modern:
                        await session.discover()
                    else:
                        await session.initialize()
                    await body(session)


async def flow(session: ClientSession, order_no_prefix: str) -> None:
    names = {t.name for t in (await session.list_tools()).tools}
    for needed in ("create_payment_order", "query_payment_order", "sandbox_simulate_payment"):
        if needed not in names:
            fail(f"tools/list lacks {needed}: {sorted(names)}")
    created = await session.call_tool(
        "create_payment_order", {"merchant_order_no": f"{order_no_prefix}-1", "amount": "12.30"}
    )
    if created.is_error or not created.structured_content:
        fail(f"create failed: {created}")
    order_no = created.structured_content["order_no"]
    if not any(getattr(c, "type", "") == "image" for c in created.content):
        fail("the create result has no QR image block")
    paid = await session.call_tool("sandbox_simulate_payment", {"order_no": order_no, "outcome": "paid"})
    if paid.is_error:
        fail(f"sandbox payment failed: {paid}")
    queried = await session.call_tool("query_payment_order", {"order_no": order_no})
    state = (queried.structured_content or {}).get("state")
    if state != "paid":
        fail(f"query after paying says {state!r}: {queried}")
    print(f"  {order_no_prefix}: create -> pay -> query = paid ({len(names)} tools)")


async def read_only(session: ClientSession) -> None:
    names = {t.name for t in (await session.list_tools()).tools}
    if "query_payment_order" not in names or any(n.startswith(("create", "refund", "close")) for n in names):
        fail(f"the read-only token lists {sorted(names)}")
    print(f"  read-only token: {len(names)} tools, none moves money")


async def main() -> None:
    url, token, reader = sys.argv[1], sys.argv[2], sys.argv[3]
    await session_for(url, token, False, lambda s: flow(s, "PY-INIT"))
    await session_for(url, token, True, lambda s: flow(s, "PY-DISCOVER"))
    await session_for(url, reader, False, read_only)
    async with httpx2.AsyncClient(timeout=10) as http:
        r = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            headers={"accept": "application/json, text/event-stream"},
        )
        if r.status_code != 401 or not r.headers.get("www-authenticate", "").startswith("Bearer"):
            fail(f"no token: expected 401 with a Bearer challenge, got {r.status_code}")
    print("  no token: 401 with a Bearer challenge")
    print("python SDK over HTTP: ok")


if __name__ == "__main__":
    anyio.run(main)
