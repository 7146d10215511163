"""The client side: the official MCP Python SDK's streamable HTTP client carrying an
`Authorization: Bearer` header (each simulated agent its own HTTP connection and MCP session), raw
HTTP for what an MCP client cannot show (status codes, headers, the notify endpoint, /metrics),
and the check ledger.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "alipay"))
import harness  # noqa: E402  (../alipay: the check ledger)
from harness import Result, _Session  # noqa: E402  (../alipay: one tools/call answer; SDK session)

CALL_TIMEOUT_S = 45


class _TerminationNotes(logging.Filter):
    """The SDK warns "Session termination failed: 202" when a session's DELETE is answered 202
    Accepted (rmcp's answer; the SDK expects 200 or 204, the spec names no code). The session is
    closed either way: counted once for the report instead of printed for every session."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Session termination failed"):
            self.seen[message] = self.seen.get(message, 0) + 1
            return False
        return True


TERMINATION_NOTES = _TerminationNotes()
logging.getLogger("mcp.client.streamable_http").addFilter(TERMINATION_NOTES)
ACCEPT = "application/json, text/event-stream"


@contextlib.asynccontextmanager
async def session(url: str, token: str | None, modern: bool = False) -> AsyncIterator[_Session]:
    """An MCP session over streamable HTTP: `modern` = the 2026-07-28 stateless `discover`
    lifecycle, else the 2025 `initialize` handshake (a server-side session)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT_S) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *_):
            async with _Session(read, write) as s:
                with anyio.fail_after(30):
                    if modern:
                        await s.discover()
                    else:
                        await s.initialize()
                yield s


async def call(s: _Session, name: str, arguments: dict[str, Any]) -> Result:
    out = Result(name, arguments)
    try:
        with anyio.fail_after(CALL_TIMEOUT_S):
            result = await s.call_tool(name, arguments)
        raw = result.model_dump(mode="json", by_alias=True)
        out.raw = raw
        out.is_error = bool(raw.get("isError"))
        out.structured = raw.get("structuredContent")
        out.texts = [c.get("text", "") for c in raw.get("content") or [] if c.get("type") == "text"]
    except MCPError as e:
        out.protocol_error = f"{e.error.code}: {e.error.message}"
    except TimeoutError:
        out.protocol_error = f"no answer within {CALL_TIMEOUT_S} s"
    return out


async def call_once(url: str, token: str, name: str, arguments: dict[str, Any], modern: bool = False) -> Result:
    """One agent: its own connection and session, one call."""
    try:
        async with session(url, token, modern) as s:
            return await call(s, name, arguments)
    except Exception as e:  # the session itself failed: a finding, reported with the call
        r = Result(name, arguments)
        r.protocol_error = f"session failed: {type(e).__name__}: {e}"
        return r


async def list_tools(url: str, token: str, modern: bool = False) -> dict[str, dict[str, Any]]:
    async with session(url, token, modern) as s:
        listed = await s.list_tools()
    return {t.name: t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools}


async def raw_post(url: str, body: Any, headers: dict[str, str] | None = None, form: bool = False) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        if form:
            h = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", **(headers or {})}
            return await http.post(url, content=body.encode("utf-8"), headers=h)
        h = {"Accept": ACCEPT, "Content-Type": "application/json", **(headers or {})}
        return await http.post(url, content=json.dumps(body).encode("utf-8"), headers=h)


async def raw_get(url: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.get(url)


INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "http-acceptance", "version": "1"}},
}


class Checks(harness.Checks):
    """The Alipay suite's check ledger (../alipay/harness.py), with this suite's notes."""

    def notes(self) -> list[str]:
        return [f"note: the SDK logged \"{message}\" for {n} session DELETE(s) (not a check; see README)"
                for message, n in TERMINATION_NOTES.seen.items()]
