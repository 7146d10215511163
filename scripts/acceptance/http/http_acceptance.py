"""Independent acceptance suite for issue 16's team deployment: two `payment-mcp serve --http`
instances on one real PostgreSQL ledger, driven only through HTTP by the official MCP Python SDK
(bearer tokens), against the independent fake Alipay gateway of ../alipay.

Usage: http_acceptance.py [BINARY] [-v] [--keep DIR] [--allow-skip]

PostgreSQL: PAYMENT_TEST_POSTGRES (a URL to an admin database; a fresh database is created on it
for the run and dropped after) or, when unset, a throwaway server started with
scripts/pg-test-server.sh. Without either the suite says so loudly and exits 3 (0 with
--allow-skip). The last line is `N passed, N failed (T s)`; exit 0 only when nothing failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.parse

import anyio
from jsonschema import Draft202012Validator

from cluster import REPO, Deployment, Instance, Postgres, Unavailable, redact_url
from clients import INITIALIZE, Checks, Result, call, call_once, list_tools, raw_get, raw_post, session
import wire  # ../alipay (cluster.py put it on the path)
from gateway import Fault

FULL_SCOPE = "payments:all"
# The narrow token: reads and refunds only, at most 1.00 a refund (a support agent).
NARROW_SCOPE = "payments:read payments:refund max_refund=1.00"
RACERS = 12  # concurrent callers per race, split over both instances and both MCP lifecycles
WAIT_S = 40  # wait_for_payment's timeout_seconds in the wake checks
REPLAYS = 12  # deliveries of one notification, split over both instances


class Suite:
    def __init__(self, dep: Deployment, check: Checks) -> None:
        self.dep = dep
        self.c = check
        self.gw = dep.gateway
        self.a, self.b = dep.instances
        self.full = dep.tokens["full"]
        self.narrow = dep.tokens["narrow"]
        self.run = time.strftime("%H%M%S")
        self.results: list[tuple[str, Result]] = []  # (instance label, result) for the schema check
        self.tools: dict[str, dict] = {}
        self.posted = {inst.label: {"accepted": 0, "rejected": 0} for inst in dep.instances}

    # ------------------------------------------------------------------ helpers

    async def call(self, inst: Instance, name: str, args: dict, token: str | None = None, modern: bool = False) -> Result:
        r = await call_once(inst.url, token or self.full, name, args, modern)
        self.results.append((inst.label, r))
        return r

    def sent(self, mark: int, method: str, key: str, value: str) -> list:
        return [r for r in self.gw.since(mark) if r.method == method and (r.biz or {}).get(key) == value]

    def notification(self, no: str, trade_no: str, amount: str, key=None, **over: str) -> str:
        """A payment notification as Alipay posts it (form body, signed with Alipay's key)."""
        fields = {
            "gmt_create": "2026-01-02 03:04:05", "gmt_payment": "2026-01-02 03:04:09",
            "notify_time": "2026-01-02 03:04:10", "charset": "utf-8", "version": "1.0",
            "notify_type": "trade_status_sync", "notify_id": f"2026010200222030409{no[-6:]}",
            "app_id": self.dep.app_id, "auth_app_id": self.dep.app_id, "seller_id": "2088102177649450",
            "buyer_id": "2088102177846880", "buyer_logon_id": "159****5620",
            "out_trade_no": no, "trade_no": trade_no, "trade_status": "TRADE_SUCCESS",
            "total_amount": amount, "receipt_amount": amount, "buyer_pay_amount": amount,
            "subject": "HTTP acceptance 测试", "fund_bill_list": json.dumps([{"amount": amount, "fundChannel": "ALIPAYACCOUNT"}]),
        }
        fields.update(over)
        return wire.notification_form(fields, key or self.dep.alipay.private, "RSA2")

    async def notify(self, inst: Instance, form: str, expect: str, provider: str = "alipay"):
        r = await raw_post(f"{inst.base}/notify/{provider}", form, form=True)
        if provider == "alipay":
            self.posted[inst.label]["accepted" if expect == "success" else "rejected"] += 1
        return r

    async def create(self, inst: Instance, no: str, amount: str) -> Result:
        r = await self.call(inst, "create_payment_order", {"merchant_order_no": no, "amount": amount})
        self.c("P", f"setup: create {no} on {inst.label}", r.ok and r.s.get("state") == "pending", r.brief())
        return r

    # ------------------------------------------------------------------ H: health

    async def health(self) -> None:
        for inst in (self.a, self.b):
            for path, body in (("/healthz", "ok"), ("/readyz", "ready")):
                r = await raw_get(inst.base + path)
                self.c("H", f"{inst.label} GET {path}: 200 {body}", r.status_code == 200 and r.text.strip() == body,
                       f"{r.status_code} {r.text[:200]!r}")

    # ------------------------------------------------------------------ T: tools/list

    async def tool_lists(self) -> None:
        lists = {}
        for inst in (self.a, self.b):
            for modern in (False, True):
                lists[(inst.label, modern)] = await list_tools(inst.url, self.full, modern)
        first = lists[(self.a.label, False)]
        self.tools = first
        self.c("T", f"full token: tools/list has the core tools ({len(first)} tools)",
               {"create_payment_order", "query_payment_order", "wait_for_payment", "refund_payment_order",
                "query_refund_status", "list_payment_orders", "verify_payment_notification"} <= set(first), sorted(first))
        for (label, modern), tools in lists.items():
            if (label, modern) == (self.a.label, False):
                continue
            life = "discover (2026-07-28)" if modern else "initialize (2025)"
            self.c("T", f"full token: tools/list on {label} over {life} is identical to {self.a.label}'s",
                   tools == first, {"only_here": sorted(set(tools) - set(first)),
                                    "missing": sorted(set(first) - set(tools)),
                                    "differ": sorted(n for n in set(tools) & set(first) if tools[n] != first[n])})
        na = await list_tools(self.a.url, self.narrow)
        nb = await list_tools(self.b.url, self.narrow, modern=True)
        self.c("T", "narrow token: the same tools/list on both instances", na == nb, [sorted(na), sorted(nb)])
        self.c("T", "narrow token: create_payment_order and close_payment_order hidden",
               not {"create_payment_order", "close_payment_order"} & set(na), sorted(na))
        self.c("T", "narrow token: refund_payment_order, query_payment_order, wait_for_payment listed",
               {"refund_payment_order", "query_payment_order", "wait_for_payment"} <= set(na), sorted(na))
        self.c("T", "narrow token: a subset of the full token's tools, with the same definitions",
               all(first.get(n) == d for n, d in na.items()), sorted(n for n, d in na.items() if first.get(n) != d))

    # ------------------------------------------------------------------ C: racing creates

    async def race_creates(self, rounds: int = 3) -> None:
        for i in range(rounds):
            no = f"RACE-C-{self.run}-{i}"
            args = {"merchant_order_no": no, "amount": "3.07"}
            # The gateway holds the one precreate 0.4 s, so every racer arrives while it is in flight.
            self.gw.inject(Fault("alipay.trade.precreate", "delay", seconds=0.4, apply=True))
            mark = self.gw.mark()
            results: list[Result | None] = [None] * RACERS

            async def one(k: int) -> None:
                inst = (self.a, self.b)[k % 2]
                results[k] = await self.call(inst, "create_payment_order", args, modern=(k // 2) % 2 == 0)

            async with anyio.create_task_group() as tg:
                for k in range(RACERS):
                    tg.start_soon(one, k)
            self.gw.clear_faults()
            rs = [r for r in results if r is not None]
            sent = self.sent(mark, "alipay.trade.precreate", "out_trade_no", no)
            self.c("C", f"{no}: {RACERS} concurrent creates over both instances send exactly one precreate",
                   len(sent) == 1, f"{len(sent)} precreates")
            oks = [r for r in rs if r.ok]
            urls = {r.s.get("pay_url") for r in oks}
            self.c("C", f"{no}: the callers that got an order all got the same one ({len(oks)} of {RACERS})",
                   oks and len(urls) == 1 and None not in urls
                   and all(r.s.get("merchant_order_no") == no and r.s.get("amount") == "3.07" for r in oks),
                   [r.brief() for r in rs][:4])
            others = [r for r in rs if not r.ok]
            self.c("C", f"{no}: the others ({len(others)}) were told it is in flight (outcome_unknown, retryable), "
                   "never a different order or another kind of error",
                   all(r.kind == "outcome_unknown" and "in flight" in " ".join(r.texts) for r in others),
                   [r.brief() for r in others][:3])
            # Every caller repeats (as the in-flight message says) and gets that same order.
            again = [await self.call((self.b, self.a)[k % 2], "create_payment_order", args) for k in range(len(others))]
            self.c("C", f"{no}: their repeats get the same order (replayed)",
                   all(r.ok and r.s.get("pay_url") in urls and r.s.get("replayed") is True for r in again),
                   [r.brief() for r in again][:3])
            sent = self.sent(mark, "alipay.trade.precreate", "out_trade_no", no)
            self.c("C", f"{no}: still exactly one precreate after the repeats", len(sent) == 1, f"{len(sent)}")

    # ------------------------------------------------------------------ R: racing refunds

    async def race_refunds(self, rounds: int = 2) -> None:
        for i in range(rounds):
            no = f"RACE-R-{self.run}-{i}"
            await self.create(self.a, no, "5.00")
            trade_no = self.gw.pay(no).trade_no
            number = f"RF-{self.run}-{i}"
            args = {"order_no": trade_no, "refund_amount": "2.00", "mch_refund_no": number, "reason": "race"}
            self.gw.inject(Fault("alipay.trade.refund", "delay", seconds=0.4, apply=True))
            mark = self.gw.mark()
            results: list[Result | None] = [None] * RACERS

            async def one(k: int) -> None:
                inst = (self.a, self.b)[k % 2]
                results[k] = await self.call(inst, "refund_payment_order", args, modern=(k // 2) % 2 == 1)

            async with anyio.create_task_group() as tg:
                for k in range(RACERS):
                    tg.start_soon(one, k)
            self.gw.clear_faults()
            rs = [r for r in results if r is not None]
            sent = self.sent(mark, "alipay.trade.refund", "out_request_no", number)
            self.c("R", f"{number}: {RACERS} concurrent refunds over both instances send exactly one refund",
                   len(sent) == 1, f"{len(sent)} refund requests")
            oks = [r for r in rs if r.ok]
            self.c("R", f"{number}: the callers that got an answer all got the one refund of 2.00 ({len(oks)} of {RACERS})",
                   oks and all(r.s.get("mch_refund_no") == number and r.s.get("refund_amount") == "2.00"
                               and r.s.get("state") in ("processing", "refunded") for r in oks),
                   [r.brief() for r in rs][:4])
            others = [r for r in rs if not r.ok]
            self.c("R", f"{number}: the others ({len(others)}) were told it is in flight (outcome_unknown)",
                   all(r.kind == "outcome_unknown" and "in flight" in " ".join(r.texts) for r in others),
                   [r.brief() for r in others][:3])
            trade = self.gw.trades[no]
            self.c("R", f"{number}: the gateway moved 2.00 once (refunded total 2.00)", trade.refunded == 200,
                   f"refunded {trade.refunded} fen")
            again = await self.call(self.b, "refund_payment_order", args)
            self.c("R", f"{number}: a later repeat on the other instance is a replay; nothing sent",
                   again.ok and again.s.get("replayed") is True
                   and len(self.sent(mark, "alipay.trade.refund", "out_request_no", number)) == 1, again.brief())

    # ------------------------------------------------------------------ N: notifications

    async def wake(self, waiter: Instance, receiver: Instance) -> None:
        """A wait_for_payment on `waiter`, the notification posted to `receiver`. Polls are an hour
        apart, so after its first query the wait looks again only when woken or at its deadline
        (where one last query would also see the payment): ending paid *before its deadline* is the
        wake's doing. The check is on that, not on how fast the wake is."""
        no = f"WAKE-{waiter.label}-{self.run}"
        await self.create(self.a, no, "2.34")
        mark = self.gw.mark()
        box: dict[str, Result] = {}
        started = time.monotonic()

        async def wait() -> None:
            box["r"] = await self.call(waiter, "wait_for_payment", {"merchant_order_no": no, "timeout_seconds": WAIT_S})

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            # The payer pays once the wait has made its first query (the trade did not exist yet).
            with anyio.fail_after(30):
                while not self.sent(mark, "alipay.trade.query", "out_trade_no", no):
                    await anyio.sleep(0.02)
            trade_no = self.gw.pay(no).trade_no
            r = await self.notify(receiver, self.notification(no, trade_no, "2.34"), "success")
            self.c("N", f"notification for {no} POSTed to {receiver.label}: 200, body exactly `success`",
                   r.status_code == 200 and r.text == "success", f"{r.status_code} {r.text[:200]!r}")
        w = box.get("r")
        elapsed = time.monotonic() - started
        self.c("N", f"wait_for_payment on {waiter.label} (next poll an hour away) ends paid before its "
               f"{WAIT_S} s deadline: woken by the notification on {receiver.label} (took {elapsed:.2f} s)",
               w is not None and w.ok and w.s.get("state") == "paid" and w.s.get("amount") == "2.34"
               and w.s.get("order_no") == trade_no and elapsed < WAIT_S,
               {"elapsed_s": round(elapsed, 2), "result": w.brief() if w else "no result"})

    async def replay(self) -> None:
        no = f"REPLAY-{self.run}"
        await self.create(self.b, no, "4.56")
        trade_no = self.gw.pay(no).trade_no
        form = self.notification(no, trade_no, "4.56")
        mark = self.gw.mark()
        replies: list = [None] * REPLAYS

        async def deliver(k: int) -> None:
            replies[k] = await self.notify((self.a, self.b)[k % 2], form, "success")

        async with anyio.create_task_group() as tg:
            for k in range(REPLAYS):
                tg.start_soon(deliver, k)
        self.c("N", f"the same notification delivered {REPLAYS} times at once over both instances: every reply 200 `success`",
               all(r is not None and r.status_code == 200 and r.text == "success" for r in replies),
               [(r.status_code, r.text[:50]) for r in replies if r is not None])
        lines = [ln for i in (self.a, self.b) for ln in i.stderr().splitlines()
                 if "order is now paid" in ln and no in ln]
        self.c("N", f"... recorded once: one 'order is now paid' log line over both instances for {REPLAYS} deliveries",
               len(lines) == 1, lines)
        listed = await self.call(self.a, "list_payment_orders", {"state": "paid", "limit": 100})
        row = next((o for o in listed.s.get("orders") or [] if o.get("merchant_order_no") == no), None)
        self.c("N", "... the ledger (list_payment_orders on the other instance) has the order paid, from the notification alone",
               row is not None and row.get("state") == "paid", listed.brief())
        self.c("N", "... and no query was sent to the gateway for it", not self.sent(mark, "alipay.trade.query", "out_trade_no", no),
               len(self.sent(mark, "alipay.trade.query", "out_trade_no", no)))

    async def refused_notifications(self) -> None:
        no = f"TAMPER-{self.run}"
        await self.create(self.a, no, "6.00")
        trade = self.gw.scan(no)  # scanned, not paid
        good = self.notification(no, trade.trade_no, "6.00")
        tampered = good.replace("total_amount=6.00", "total_amount=0.01")
        cases = [
            ("tampered (total_amount changed after signing)", tampered),
            ("signed with another key", self.notification(no, trade.trade_no, "6.00", key=wire.KeyPair.generate().private)),
            ("without its sign", "&".join(p for p in good.split("&") if not p.startswith("sign="))),
        ]
        for k, (what, form) in enumerate(cases):
            inst = (self.a, self.b)[k % 2]
            r = await self.notify(inst, form, "fail")
            self.c("N", f"{what}, POSTed to {inst.label}: refused with `fail`",
                   r.status_code >= 400 and r.text == "fail", f"{r.status_code} {r.text[:200]!r}")
        r = await raw_post(f"{self.b.base}/notify/lfwin", good, form=True)
        self.c("N", "a valid Alipay notification at /notify/lfwin (not this server's provider): 404 `fail`",
               r.status_code == 404 and r.text == "fail", f"{r.status_code} {r.text[:200]!r}")
        listed = await self.call(self.b, "list_payment_orders", {"limit": 100})
        row = next((o for o in listed.s.get("orders") or [] if o.get("merchant_order_no") == no), None)
        self.c("N", "... the order is still pending in the ledger", row is not None and row.get("state") == "pending",
               row or listed.brief())

    # ------------------------------------------------------------------ A: auth refusals

    async def auth(self) -> None:
        for inst in (self.a, self.b):
            r = await raw_post(inst.url, INITIALIZE)
            self.c("A", f"{inst.label}: no token: 401 with a Bearer WWW-Authenticate",
                   r.status_code == 401 and r.headers.get("www-authenticate", "").startswith("Bearer"),
                   f"{r.status_code} {dict(r.headers)}")
            wrong = "pmcp_" + "0" * 43
            for what, token in (("a wrong pmcp_ token", wrong), ("a token with one character changed", self.full[:-1] + ("A" if self.full[-1] != "A" else "B"))):
                r = await raw_post(inst.url, INITIALIZE, {"Authorization": f"Bearer {token}"})
                self.c("A", f"{inst.label}: {what}: 401 with a Bearer WWW-Authenticate",
                       r.status_code == 401 and r.headers.get("www-authenticate", "").startswith("Bearer"),
                       f"{r.status_code} {dict(r.headers)} {r.text[:200]!r}")
            r = await raw_post(inst.url, INITIALIZE, {"Authorization": f"Bearer {self.full}", "Origin": "https://evil.example"})
            self.c("A", f"{inst.label}: a valid token from a foreign Origin: 403", r.status_code == 403,
                   f"{r.status_code} {r.text[:200]!r}")
            r = await raw_post(inst.url, INITIALIZE, {"Authorization": f"Bearer {self.full}"})
            self.c("A", f"{inst.label}: the same request with the token and no Origin: 200", r.status_code == 200,
                   f"{r.status_code} {r.text[:200]!r}")
        await self.sessions()
        # A money-moving tool outside the narrow token's scope, called anyway, on both instances.
        for k, inst in enumerate((self.a, self.b)):
            no = f"SCOPE-{inst.label}-{self.run}"
            mark = self.gw.mark()
            r = await self.call(inst, "create_payment_order", {"merchant_order_no": no, "amount": "1.00"},
                                token=self.narrow, modern=k == 1)
            self.c("A", f"{inst.label}: narrow token calls create_payment_order anyway: refused (JSON-RPC error)",
                   r.protocol_error != "" and not r.ok, r.brief())
            self.c("A", f"{inst.label}: ... nothing sent to the gateway", not self.gw.since(mark),
                   [q.method for q in self.gw.since(mark)])
        # An over-cap refund: the narrow token may refund at most 1.00.
        no = f"CAP-{self.run}"
        await self.create(self.a, no, "9.00")
        trade_no = self.gw.pay(no).trade_no
        for k, inst in enumerate((self.a, self.b)):
            mark = self.gw.mark()
            number = f"CAP-RF-{inst.label}-{self.run}"
            r = await self.call(inst, "refund_payment_order",
                                {"order_no": trade_no, "refund_amount": "1.01", "mch_refund_no": number},
                                token=self.narrow, modern=k == 0)
            self.c("A", f"{inst.label}: narrow token (max_refund=1.00) refunds 1.01: invalid_input naming the cap",
                   r.is_error and r.kind == "invalid_input" and "1.00" in json.dumps(r.raw, ensure_ascii=False), r.brief())
            self.c("A", f"{inst.label}: ... nothing sent to the gateway", not self.gw.since(mark),
                   [q.method for q in self.gw.since(mark)])
        self.c("A", "... and the trade was not refunded", self.gw.trades[no].refunded == 0, self.gw.trades[no].refunded)
        number = f"CAP-OK-{self.run}"
        r = await self.call(self.b, "refund_payment_order",
                            {"order_no": trade_no, "refund_amount": "1.00", "mch_refund_no": number}, token=self.narrow)
        self.c("A", "narrow token refunds exactly its cap, 1.00: accepted", r.ok and r.s.get("refund_amount") == "1.00",
               r.brief())

    async def sessions(self) -> None:
        """A 2025 session (Mcp-Session-Id) opened on A with the full token: a call on it carrying the
        narrow token runs under the narrow scope (README: credentials are checked on every request);
        the session id means nothing to B (sessions are per instance: sticky sessions, README)."""
        full = {"Authorization": f"Bearer {self.full}"}
        r = await raw_post(self.a.url, INITIALIZE, full)
        sid = r.headers.get("mcp-session-id", "")
        self.c("A", "A: a 2025 initialize with the full token opens a session (Mcp-Session-Id)", r.status_code == 200 and sid,
               f"{r.status_code} {dict(r.headers)}")
        h = {**full, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"}
        await raw_post(self.a.url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, h)
        no = f"SESSION-{self.run}"
        create = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                  "params": {"name": "create_payment_order", "arguments": {"merchant_order_no": no, "amount": "1.00"}}}
        mark = self.gw.mark()
        r = await raw_post(self.a.url, create, {**h, "Authorization": f"Bearer {self.narrow}"})
        msg = _jsonrpc(r.text)
        self.c("A", "A: that session continued with the narrow token: create_payment_order is a JSON-RPC error, nothing sent",
               r.status_code in (200, 403) and (r.status_code == 403 or "error" in msg) and not self.gw.since(mark),
               f"{r.status_code} {r.text[:300]!r}")
        r = await raw_post(self.b.url, create, h)
        self.c("A", "B: A's session id with the full token: 404 (sessions live on the instance that made them), nothing sent",
               r.status_code == 404 and not self.gw.since(mark), f"{r.status_code} {r.text[:300]!r}")

    # ------------------------------------------------------------------ M: metrics, K: logs, S: schemas

    async def metrics(self) -> None:
        for inst in (self.a, self.b):
            r = await raw_get(inst.base + "/metrics")
            got = {v: _metric(r.text, "payment_mcp_notifications_total", {"provider": "alipay", "verdict": v})
                   for v in ("accepted", "rejected")}
            want = self.posted[inst.label]
            self.c("M", f"{inst.label} /metrics: payment_mcp_notifications_total accepted {want['accepted']}, "
                   f"rejected {want['rejected']} (what this suite posted there)",
                   r.status_code == 200 and got == {k: float(v) for k, v in want.items()},
                   {"status": r.status_code, "got": got, "want": want})
            refused = _metric(r.text, "payment_mcp_http_refusals_total", {"reason": "missing_token"})
            self.c("M", f"{inst.label} /metrics: the no-token refusal is counted", refused is not None and refused >= 1,
                   refused)

    def logs(self) -> None:
        for inst in (self.a, self.b):
            text = inst.stderr()
            leaked = [n for n, t in self.dep.tokens.items() if t in text]
            keys = [s[:12] + "..." for s in self.dep.app.secrets() if s in text]
            self.c("K", f"{inst.label}: no token and no key in its log", not leaked and not keys, [leaked, keys])
            self.c("K", f"{inst.label}: still running", inst.proc.poll() is None, inst.proc.poll())

    def schemas(self) -> None:
        bad, count = [], 0
        for label, r in self.results:
            schema = self.tools.get(r.tool, {}).get("outputSchema")
            if schema is None or r.protocol_error or r.structured is None:
                continue
            count += 1
            errors = list(Draft202012Validator(schema).iter_errors(r.structured))
            if errors:
                bad.append(f"{label} {r.tool}: {errors[0].message[:300]}")
        self.c("S", f"all {count} structuredContent of this run match their tool's outputSchema", not bad and count, bad[:5])

    async def run_all(self) -> None:
        await self.health()
        await self.tool_lists()
        await self.race_creates()
        await self.race_refunds()
        await self.wake(self.b, self.a)
        await self.wake(self.a, self.b)
        await self.replay()
        await self.refused_notifications()
        await self.auth()
        await self.metrics()
        self.logs()
        self.schemas()
        print(f"\n{len(self.results)} tool calls, each in its own MCP session over HTTP, to 2 instances on one PostgreSQL")


def _jsonrpc(text: str) -> dict:
    """The JSON-RPC message of a JSON or SSE (`data: {...}`) reply."""
    for chunk in [text] + [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:")]:
        try:
            msg = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("jsonrpc") == "2.0":
            return msg
    return {}


def _metric(text: str, name: str, labels: dict[str, str]) -> float | None:
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}}\s+(\S+)$", line)
        if not m:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(2))
    return None


async def main_async(args: argparse.Namespace, check: Checks) -> None:
    workdir = args.keep or tempfile.mkdtemp(prefix="http-acc-")
    os.makedirs(workdir, exist_ok=True)
    pg = Postgres.obtain()
    print(f"PostgreSQL: {redact_url(pg.admin_url)} -> fresh database {pg.database}"
          + (" (started for this run)" if pg.started_dir else ""), flush=True)
    dep = Deployment(args.binary, workdir, pg)
    try:
        dep.start_gateway()
        dep.add_token("full", FULL_SCOPE)
        dep.add_token("narrow", NARROW_SCOPE)
        a, b = dep.start_instance("A"), dep.start_instance("B")
        dep.wait_listening(a)
        dep.wait_listening(b)
        print(f"instances: A {a.url}, B {b.url}; gateway {dep.gateway.url}", flush=True)
        await Suite(dep, check).run_all()
    finally:
        dep.stop()
        pg.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept: {workdir}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary", nargs="?", default=os.path.join(REPO, "target", "debug", "payment-mcp"))
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--keep", metavar="DIR", help="keep the instances' logs and the tokens file in DIR")
    p.add_argument("--allow-skip", action="store_true",
                   help="exit 0 (still loudly) when PostgreSQL is unavailable; the default is exit 3")
    args = p.parse_args()
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        print(f"no payment-mcp binary at {args.binary} (cargo build --locked)", file=sys.stderr)
        return 2
    check = Checks(args.verbose)
    try:
        anyio.run(main_async, args, check)
    except Unavailable as e:
        print(f"\n!!! SKIPPED: the HTTP acceptance suite needs PostgreSQL: {e}\n"
              "!!! set PAYMENT_TEST_POSTGRES to a reachable server (eval \"$(scripts/pg-test-server.sh start)\"),\n"
              "!!! or install PostgreSQL (apt-get install postgresql) and leave it unset !!!\n",
              file=sys.stderr)
        return 0 if args.allow_skip else 3
    return check.report()


if __name__ == "__main__":
    sys.exit(main())
