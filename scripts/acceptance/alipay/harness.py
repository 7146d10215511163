"""The client side: payment-mcp started over stdio by the official MCP Python SDK (through tee.py,
so that the raw stdout is kept), tool calls, and the check ledger with its report.

A check that fails is a finding: it is printed with what was called, what came back and what the
gateway received, so that it can be reproduced by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

HERE = os.path.dirname(os.path.abspath(__file__))
CALL_TIMEOUT_S = 30


@dataclass
class Result:
    """One tools/call answer."""

    tool: str
    arguments: dict[str, Any]
    is_error: bool = False
    structured: Any = None
    texts: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    protocol_error: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def s(self) -> dict[str, Any]:
        return self.structured if isinstance(self.structured, dict) else {}

    @property
    def error(self) -> dict[str, Any]:
        e = self.s.get("error")
        return e if isinstance(e, dict) else {}

    @property
    def kind(self) -> str | None:
        return self.error.get("kind")

    @property
    def ok(self) -> bool:
        return not self.is_error and not self.protocol_error and self.s.get("success") is True

    def brief(self) -> str:
        if self.protocol_error:
            return f"protocol error: {self.protocol_error}"
        return json.dumps({"isError": self.is_error, "structuredContent": _clip(self.structured)},
                          ensure_ascii=False)[:1500]


def _clip(v: Any) -> Any:
    """Long values (QR base64) shortened for reports."""
    if isinstance(v, dict):
        return {k: _clip(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clip(x) for x in v]
    if isinstance(v, str) and len(v) > 160:
        return v[:100] + f"...({len(v)} chars)"
    return v


class _Session(ClientSession):
    """The SDK session with its own output-schema check off: schemas are checked (and reported)
    by the suite instead of raised."""

    async def validate_tool_result(self, name, result):  # SDK 2.x
        return None

    async def _validate_tool_result(self, name, result):  # SDK 1.x
        return None


class Server:
    """One payment-mcp process."""

    started = 0  # processes started, for the summary
    calls = 0  # tools/call requests made, for the summary

    def __init__(self, binary: str, env: dict[str, str], workdir: str, label: str) -> None:
        self.binary = binary
        self.env = env
        self.prefix = os.path.join(workdir, label)
        self.stack = contextlib.AsyncExitStack()
        self.session: ClientSession | None = None
        self.tools: dict[str, dict[str, Any]] = {}
        self.instructions = ""
        self.results: list[Result] = []

    async def __aenter__(self) -> Server:
        Server.started += 1
        params = StdioServerParameters(
            command=sys.executable,
            args=[os.path.join(HERE, "tee.py"), self.prefix, "--", self.binary],
            env=self.env,
        )
        errlog = self.stack.enter_context(open(self.prefix + ".stderr", "w"))
        read, write = await self.stack.enter_async_context(stdio_client(params, errlog=errlog))
        self.session = await self.stack.enter_async_context(_Session(read, write))
        with anyio.fail_after(30):
            init = await self.session.initialize()
            listed = await self.session.list_tools()
        self.instructions = getattr(init, "instructions", "") or ""
        for tool in listed.tools:
            raw = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
            self.tools[raw["name"]] = raw
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stack.aclose()

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> Result:
        assert self.session is not None
        arguments = arguments or {}
        Server.calls += 1
        out = Result(name, arguments)
        try:
            with anyio.fail_after(CALL_TIMEOUT_S):
                result = await self.session.call_tool(name, arguments)
            raw = result.model_dump(mode="json", by_alias=True)
            out.raw = raw
            out.is_error = bool(raw.get("isError"))
            out.structured = raw.get("structuredContent")
            for c in raw.get("content") or []:
                if c.get("type") == "text":
                    out.texts.append(c.get("text", ""))
                elif c.get("type") == "image":
                    out.images.append(c)
        except MCPError as e:
            out.protocol_error = f"{e.error.code}: {e.error.message}"
        except TimeoutError:
            out.protocol_error = f"no answer within {CALL_TIMEOUT_S} s"
        self.results.append(out)
        return out

    def stdout_bytes(self) -> bytes:
        try:
            with open(self.prefix + ".out", "rb") as f:
                return f.read()
        except OSError:
            return b""

    def stderr_text(self) -> str:
        try:
            with open(self.prefix + ".stderr", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Checks:
    """The ledger of checks: each has an id (its section), a name, a verdict and, when it failed,
    the evidence. The HTTP suite (../http) uses it too, with its own notes before the totals."""

    def __init__(self, verbose: bool = False) -> None:
        self.passed = 0
        self.failed: list[tuple[str, str, str]] = []
        self.verbose = verbose
        self.started = time.monotonic()
        self.sections: dict[str, list[int]] = {}

    def __call__(self, cid: str, name: str, ok: Any, detail: Any = None) -> bool:
        ok = bool(ok)
        counts = self.sections.setdefault(cid, [0, 0])
        counts[0 if ok else 1] += 1
        if ok:
            self.passed += 1
            if self.verbose:
                print(f"  ok   {cid} {name}", flush=True)
        else:
            text = detail if isinstance(detail, str) else json.dumps(_clip(detail), ensure_ascii=False, default=str)
            self.failed.append((cid, name, text[:4000]))
            print(f"  FAIL {cid} {name}\n       {text[:1500]}", flush=True)
        return ok

    def notes(self) -> list[str]:
        """Lines printed before the totals."""
        return [f"{Server.calls} tool calls to {Server.started} payment-mcp processes"]

    def report(self) -> int:
        print()
        print("per section (passed/failed): " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(self.sections.items())))
        if self.failed:
            print(f"\n{len(self.failed)} finding(s):")
            for cid, name, detail in self.failed:
                print(f"- [{cid}] {name}\n    {detail}")
        print()
        for line in self.notes():
            print(line)
        print(f"{self.passed} passed, {len(self.failed)} failed ({time.monotonic() - self.started:.1f} s)")
        return 0 if not self.failed else 1
