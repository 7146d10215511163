"""The core tools, close_payment_order and Alipay's own five tools, through MCP, against the fake
gateway: sections T (tool list), W (what goes on the wire), C (create), L (links), Q (query),
R (refund), X (close), P (compatibility tools)."""

from __future__ import annotations

import json
import re

import anyio

import wire
from context import Ctx, beijing_skew, contains_all, link_params, markdown_link, png_ok
from gateway import Fault
from harness import Server

CORE = {"create_payment_order", "query_payment_order", "wait_for_payment", "refund_payment_order",
        "query_refund_status", "list_payment_orders", "verify_payment_notification", "close_payment_order"}
COMPAT = {
    "create-mobile-alipay-payment": ({"outTradeNo", "totalAmount", "orderTitle"}, {"url"}),
    "create-web-page-alipay-payment": ({"outTradeNo", "totalAmount", "orderTitle"}, {"url"}),
    "query-alipay-payment": ({"outTradeNo"}, {"tradeStatus", "totalAmount", "tradeNo"}),
    "refund-alipay-payment": ({"outTradeNo", "refundAmount", "outRequestNo", "refundReason"}, {"tradeNo", "refundResult"}),
    "query-alipay-refund": ({"outRequestNo", "outTradeNo"}, {"tradeNo", "refundAmount", "refundStatus"}),
}


def tool_list(ctx: Ctx, s: Server) -> None:
    c = ctx.check
    names = set(s.tools)
    c("T", "tools/list: the core tools, close_payment_order and Alipay's five tools, nothing else",
      names == CORE | set(COMPAT), sorted(names ^ (CORE | set(COMPAT))))
    ann = s.tools.get("close_payment_order", {}).get("annotations", {})
    c("T", "close_payment_order is destructive and idempotent, not read-only",
      ann.get("destructiveHint") is True and ann.get("idempotentHint") is True and ann.get("readOnlyHint") is False, ann)
    for name, (inputs, outputs) in COMPAT.items():
        t = s.tools.get(name, {})
        props = set(t.get("inputSchema", {}).get("properties", {}))
        c("T", f"{name}: camelCase inputs {sorted(inputs)}", props == inputs, sorted(props))
        out_schema = json.dumps(t.get("outputSchema", {}))
        c("T", f"{name}: outputSchema documents {sorted(outputs)}",
          t.get("outputSchema") and all(f'"{o}"' in out_schema for o in outputs), t.get("outputSchema"))
    req = set(s.tools.get("refund-alipay-payment", {}).get("inputSchema", {}).get("required", []))
    c("T", "refund-alipay-payment: refundReason optional, the rest required",
      req == {"outTradeNo", "refundAmount", "outRequestNo"}, sorted(req))
    chan = s.tools.get("create_payment_order", {}).get("inputSchema", {}).get("properties", {}).get("channel", {})
    c("T", "create_payment_order takes channel precreate/wap/page",
      set(chan.get("enum", [])) >= {"precreate", "wap", "page"} or all(x in json.dumps(chan) for x in ("wap", "page")), chan)


def wire_checks(ctx: Ctx, label: str, mark: int = 0) -> None:
    """Every request the gateway received from payment-mcp, judged as Alipay would."""
    c = ctx.check
    reqs = [r for i, r in enumerate(ctx.gateway.since(mark), start=mark) if r.http_method == "POST"
            and not any(a <= i < b for a, b in ctx.misconfigured)]
    c("W", f"{label}: requests were made", reqs)
    bad_sig = [(r.method, r.sign_content[:300]) for r in reqs if r.signature_ok is not True]
    c("W", f"{label}: every request's {ctx.sign_type} signature verifies with the app public key ({len(reqs)})",
      not bad_sig, bad_sig[:3])
    bad_form = [(r.method, r.content_type) for r in reqs if "application/x-www-form-urlencoded" not in r.content_type.lower()]
    c("W", f"{label}: POST form requests", not bad_form, bad_form[:3])
    expected = {"app_id": ctx.gateway.app_id, "format": "JSON", "charset": "utf-8", "sign_type": ctx.sign_type,
                "version": "1.0"}
    bad_pub = [(r.method, {k: r.params.get(k) for k in expected}) for r in reqs
               if any(r.params.get(k) != v for k, v in expected.items())]
    c("W", f"{label}: public parameters app_id, format=JSON, charset=utf-8, sign_type={ctx.sign_type}, version=1.0",
      not bad_pub, bad_pub[:3])
    skews = [(r.method, r.params.get("timestamp"), beijing_skew(r.params.get("timestamp", ""))) for r in reqs]
    bad_ts = [s for s in skews if s[2] is None or s[2] > 120]
    c("W", f"{label}: every timestamp is Beijing time (UTC+8) within 2 min, whatever TZ says",
      not bad_ts, bad_ts[:3])
    bad_dup = [(r.method, r.duplicates) for r in reqs if r.duplicates]
    c("W", f"{label}: no parameter sent twice", not bad_dup, bad_dup[:3])
    bad_biz = [(r.method, r.params.get("biz_content")) for r in reqs
               if not isinstance(r.biz, dict) or any(k != k.lower() for k in r.biz)]
    c("W", f"{label}: biz_content is a JSON object with snake_case keys", not bad_biz, bad_biz[:3])
    amounts = [(r.method, k, r.biz[k]) for r in reqs if isinstance(r.biz, dict)
               for k in ("total_amount", "refund_amount") if k in r.biz]
    bad_amt = [a for a in amounts if not (isinstance(a[2], str) and re.fullmatch(r"\d+\.\d{2}", a[2]))]
    c("W", f"{label}: amounts in biz_content are strings with two decimals ({len(amounts)})", not bad_amt, bad_amt[:3])
    stray = [(r.method, sorted(set(r.params) - {"app_id", "method", "format", "charset", "sign_type", "sign",
                                                "timestamp", "version", "biz_content", "notify_url", "return_url",
                                                "app_auth_token"}))
             for r in reqs]
    stray = [s for s in stray if s[1]]
    c("W", f"{label}: only Alipay's public parameters and biz_content", not stray, stray[:3])


async def create_and_query(ctx: Ctx, s: Server, run: str) -> None:
    c, gw = ctx.check, ctx.gateway
    # -- C: precreate by default
    no = f"{run}-QR1"
    mark = gw.mark()
    r = await s.call("create_payment_order", {"merchant_order_no": no, "amount": "0.01", "subject": "测试/订单 & more"})
    ctx.expect_ok("C", "create (default channel)", r)
    sent = ctx.sent(mark)
    c("C", "create (default) sends exactly one alipay.trade.precreate",
      [x.method for x in sent] == ["alipay.trade.precreate"], [x.method for x in sent])
    biz = sent[0].biz if sent else {}
    c("C", "precreate biz_content: out_trade_no, total_amount 0.01, subject as given",
      biz.get("out_trade_no") == no and biz.get("total_amount") == "0.01" and biz.get("subject") == "测试/订单 & more", biz)
    qr = gw.trades.get(no).qr_code if no in gw.trades else None
    c("C", "pay_url and qrcode are Alipay's qr_code (unescaped)",
      qr and r.s.get("pay_url") == qr and r.s.get("qrcode", qr) == qr, {"qr_code": qr, "pay_url": r.s.get("pay_url")})
    c("C", "state pending, not final, order_no null until the payer scans",
      r.s.get("state") == "pending" and r.s.get("final") is False and r.s.get("order_no") is None, r.brief())
    c("C", "amount \"0.01\" and a PNG QR image block", r.s.get("amount") == "0.01" and png_ok(r), r.brief())
    c("C", "provider alipay, sandbox false", r.s.get("provider") == "alipay" and r.s.get("sandbox") is False, r.brief())
    c("C", "precreate carries notify_url from AP_NOTIFY_URL as a public parameter",
      sent and sent[0].params.get("notify_url") == "https://merchant.example.com/alipay/notify", sent[0].params if sent else None)
    mark = gw.mark()
    r = await s.call("create_payment_order", {"merchant_order_no": f"{run}-QR2", "amount": "0.02",
                                              "notify_url": "https://shop.example.com/n?id=7&x=a%2Fb"})
    sent = ctx.sent(mark, "alipay.trade.precreate")
    c("C", "an explicit notify_url argument wins over AP_NOTIFY_URL, sent as given",
      r.ok and sent and sent[0].params.get("notify_url") == "https://shop.example.com/n?id=7&x=a%2Fb" and sent[0].signature_ok,
      sent[0].params if sent else r.brief())

    # two identical creates at once: one precreate, never two
    gw.inject(Fault("alipay.trade.precreate", "delay", seconds=1.0, apply=True))
    mark = gw.mark()
    both: list = []

    async def one() -> None:
        both.append(await s.call("create_payment_order", {"merchant_order_no": f"{run}-CONC", "amount": "5.00"}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
    gw.clear_faults()
    kinds = sorted("ok" if x.ok else str(x.kind) for x in both)
    c("C", "two identical creates at once: exactly one precreate sent; the other is in flight (outcome_unknown) or a replay",
      len(ctx.sent(mark, "alipay.trade.precreate")) == 1 and "ok" in kinds and set(kinds) <= {"ok", "outcome_unknown"},
      {"sent": len(ctx.sent(mark, "alipay.trade.precreate")), "answers": [x.brief()[:300] for x in both]})

    mark = gw.mark()
    again = await s.call("create_payment_order", {"merchant_order_no": no, "amount": "0.01", "subject": "测试/订单 & more"})
    c("C", "repeat create: replayed, same pay_url",
      again.ok and again.s.get("replayed") is True and again.s.get("pay_url") == qr, again.brief())
    c("C", "repeat create: no second precreate", not ctx.sent(mark, "alipay.trade.precreate"), [x.method for x in ctx.sent(mark)])
    mark = gw.mark()
    other = await s.call("create_payment_order", {"merchant_order_no": no, "amount": "0.02"})
    ctx.expect_error("C", "same merchant_order_no, other amount", other, ("invalid_input", "refused"))
    ctx.nothing_sent("C", "same merchant_order_no, other amount", mark)

    # amounts exact to the fen, as strings and JSON numbers
    for i, (given, want) in enumerate([("99999.99", "99999.99"), (99999.99, "99999.99"), (12.3, "12.30"),
                                       ("100000000", "100000000.00"), (0.29, "0.29"), ("19.99", "19.99")]):
        mark = gw.mark()
        r = await s.call("create_payment_order", {"merchant_order_no": f"{run}-AMT{i}", "amount": given})
        sent = ctx.sent(mark, "alipay.trade.precreate")
        got = sent[0].biz.get("total_amount") if sent and sent[0].biz else None
        c("C", f"amount {given!r} ({type(given).__name__}) -> total_amount {want!r} and result amount {want!r}",
          r.ok and got == want and r.s.get("amount") == want, {"sent": got, "result": r.brief()[:300]})
    for bad in ("0.001", "0", "-1", "1e2", 0.001, "100000000.01", " 1.00", "１.00"):
        mark = gw.mark()
        r = await s.call("create_payment_order", {"merchant_order_no": f"{run}-BAD", "amount": bad})
        ctx.expect_error("C", f"amount {bad!r} refused", r, "invalid_input")
        ctx.nothing_sent("C", f"amount {bad!r}", mark)

    # -- Q: states
    r = await s.call("query_payment_order", {"merchant_order_no": no})
    c("Q", "query before the payer scans (ACQ.TRADE_NOT_EXIST, order we created): pending with pending_reason",
      r.ok and r.s.get("state") == "pending" and r.s.get("pending_reason"), r.brief())
    t = gw.scan(no, buyer="15912345620")
    r = await s.call("query_payment_order", {"merchant_order_no": no})
    c("Q", "scanned, WAIT_BUYER_PAY: pending, order_no = Alipay's trade_no",
      r.ok and r.s.get("state") == "pending" and r.s.get("order_no") == t.trade_no
      and r.s.get("platform_order_no") == t.trade_no, r.brief())
    gw.pay(no, buyer="15912345620")
    r = await s.call("query_payment_order", {"merchant_order_no": no})
    c("Q", "paid: state paid, final, status SUCCESS, paid_amount 0.01",
      r.ok and r.s.get("state") == "paid" and r.s.get("final") is True and r.s.get("status") == "SUCCESS"
      and r.s.get("paid_amount") == "0.01" and r.s.get("amount") == "0.01", r.brief())
    want_time = t.paid_at.replace(" ", "T") + "+08:00"
    c("Q", "paid_time is Alipay's send_pay_date in China time (RFC 3339 +08:00)",
      r.s.get("paid_time") == want_time, {"want": want_time, "got": r.s.get("paid_time")})
    whole = ctx.texts_of(r)
    c("Q", "buyer_logon_id is masked (the full 15912345620 appears nowhere in the result)",
      "15912345620" not in whole, whole[:600])
    r2 = await s.call("query_payment_order", {"order_no": t.trade_no})
    c("Q", "query by order_no (trade_no): paid, query_method order_no",
      r2.ok and r2.s.get("state") == "paid" and r2.s.get("query_method") == "order_no", r2.brief())
    sent = [x for x in gw.requests if x.method == "alipay.trade.query" and x.biz and x.biz.get("trade_no") == t.trade_no]
    c("Q", "query by order_no sends trade_no", sent, "no alipay.trade.query with trade_no seen")
    gw.pay(f"{run}-AMT2", buyer="buyer.name@example.com")
    r = await s.call("query_payment_order", {"merchant_order_no": f"{run}-AMT2"})
    c("Q", "an e-mail buyer_logon_id is masked too", r.ok and "buyer.name@example.com" not in ctx.texts_of(r), r.brief())
    gw.trades[f"{run}-AMT2"].status = "TRADE_FINISHED"
    r = await s.call("query_payment_order", {"merchant_order_no": f"{run}-AMT2"})
    c("Q", "TRADE_FINISHED: paid", r.ok and r.s.get("state") == "paid", r.brief())
    gw.scan(f"{run}-AMT3")
    gw.trades[f"{run}-AMT3"].status = "TRADE_CLOSED"
    r = await s.call("query_payment_order", {"merchant_order_no": f"{run}-AMT3"})
    c("Q", "TRADE_CLOSED (unpaid): closed, final", r.ok and r.s.get("state") == "closed" and r.s.get("final") is True, r.brief())
    r = await s.call("query_payment_order", {"merchant_order_no": f"{run}-NEVER-CREATED"})
    ctx.expect_error("Q", "query of an order neither Alipay nor the ledger knows", r, "not_found")
    c("Q", "... with Alipay's sub_code as code", r.error.get("code") == "ACQ.TRADE_NOT_EXIST", r.brief())

    gw.pay(f"{run}-AMT4")
    r = await s.call("wait_for_payment", {"merchant_order_no": f"{run}-AMT4", "timeout_seconds": 10})
    c("Q", "wait_for_payment on a paid order: paid", r.ok and r.s.get("state") == "paid", r.brief())


async def links(ctx: Ctx, s: Server, run: str) -> None:
    c, gw = ctx.check, ctx.gateway
    for channel, method, product in (("wap", "alipay.trade.wap.pay", "QUICK_WAP_WAY"),
                                     ("page", "alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY")):
        no = f"{run}-{channel.upper()}1"
        subject = "Café & 测试 100% a+b=c/d?"
        mark = gw.mark()
        r = await s.call("create_payment_order", {"merchant_order_no": no, "amount": "99999.99", "subject": subject,
                                                  "channel": channel})
        ctx.expect_ok("L", f"create channel={channel}", r)
        ctx.nothing_sent("L", f"create channel={channel} (a link, no server call)", mark)
        url = r.s.get("pay_url") or ""
        base, params = link_params(url)
        c("L", f"{channel}: pay_url is a GET link to the configured gateway.do", base == gw.url, url[:200])
        c("L", f"{channel}: the QR encodes the link", r.s.get("qrcode") == url and png_ok(r), r.brief())
        ok = wire.verify(ctx.app.public, wire.sign_content(params), params.get("sign", ""), ctx.sign_type)
        c("L", f"{channel}: the link's {ctx.sign_type} signature verifies over its decoded parameters", ok,
          wire.sign_content(params)[:400])
        try:
            biz = json.loads(params.get("biz_content", ""))
        except ValueError:
            biz = {}
        c("L", f"{channel}: method {method}, product_code {product}, total_amount 99999.99, subject and out_trade_no",
          params.get("method") == method and biz.get("product_code") == product and biz.get("total_amount") == "99999.99"
          and biz.get("subject") == subject and biz.get("out_trade_no") == no, {"params": params, "biz": biz})
        c("L", f"{channel}: notify_url / return_url from AP_NOTIFY_URL / AP_RETURN_URL",
          params.get("notify_url") == "https://merchant.example.com/alipay/notify"
          and params.get("return_url") == "https://merchant.example.com/alipay/return", params)
        skew = beijing_skew(params.get("timestamp", ""))
        c("L", f"{channel}: link timestamp is Beijing time", skew is not None and skew <= 120, params.get("timestamp"))
        mark = gw.mark()
        status, page = gw.open_link(url)
        opened = ctx.sent(mark)
        c("L", f"{channel}: the payer's browser opens it and Alipay accepts the signature",
          status == 200 and opened and opened[0].signature_ok is True and no in gw.trades, page[:300])
        gw.pay(no)
        q = await s.call("query_payment_order", {"merchant_order_no": no})
        c("L", f"{channel}: paid through the link, query says paid 99999.99",
          q.ok and q.s.get("state") == "paid" and q.s.get("paid_amount") == "99999.99", q.brief())


async def refunds(ctx: Ctx, s: Server, run: str) -> None:
    c, gw = ctx.check, ctx.gateway
    no = f"{run}-RF1"
    await s.call("create_payment_order", {"merchant_order_no": no, "amount": "0.03"})
    t = gw.pay(no)
    q = await s.call("query_payment_order", {"merchant_order_no": no})
    order_no = q.s.get("order_no")
    c("R", "paid order has Alipay's trade_no as order_no", order_no == t.trade_no, q.brief())

    mark = gw.mark()
    r = await s.call("refund_payment_order", {"order_no": order_no, "refund_amount": "0.01", "mch_refund_no": f"{run}-A",
                                              "reason": "部分退款"})
    ctx.expect_ok("R", "partial refund 0.01 of 0.03", r)
    sent = ctx.sent(mark, "alipay.trade.refund")
    biz = sent[0].biz if sent else {}
    c("R", "refund biz_content: trade_no or out_trade_no, refund_amount 0.01, out_request_no = mch_refund_no",
      len(sent) == 1 and (biz.get("trade_no") == t.trade_no or biz.get("out_trade_no") == no)
      and biz.get("refund_amount") == "0.01" and biz.get("out_request_no") == f"{run}-A", biz)
    c("R", "refund result: accepted (processing or refunded), refund_amount 0.01, mch_refund_no",
      r.s.get("state") in ("processing", "refunded") and r.s.get("refund_amount") == "0.01"
      and r.s.get("mch_refund_no") == f"{run}-A", r.brief())
    mark = gw.mark()
    again = await s.call("refund_payment_order", {"order_no": order_no, "refund_amount": "0.01", "mch_refund_no": f"{run}-A",
                                                  "reason": "部分退款"})
    c("R", "idempotent retry (same mch_refund_no): success, replayed", again.ok and again.s.get("replayed") is True,
      again.brief())
    c("R", "idempotent retry: no money moves twice (gateway refunded total stays 0.01)",
      t.refunded == 1 and len(t.refunds) == 1, {"refunded_fen": t.refunded, "sent": [x.biz for x in ctx.sent(mark)]})

    r = await s.call("refund_payment_order", {"order_no": order_no, "refund_amount": "0.01", "mch_refund_no": f"{run}-B"})
    c("R", "second partial refund: refund_amount is this refund's 0.01, not Alipay's cumulative refund_fee 0.02",
      r.ok and r.s.get("refund_amount") == "0.01", r.brief())
    for num in (f"{run}-A", f"{run}-B"):
        rq = await s.call("query_refund_status", {"order_no": order_no, "mch_refund_no": num})
        c("R", f"query_refund_status {num}: refunded, 0.01, final",
          rq.ok and rq.s.get("state") == "refunded" and rq.s.get("final") is True and rq.s.get("refund_amount") == "0.01",
          rq.brief())
    sent = [x for x in gw.requests if x.method == "alipay.trade.fastpay.refund.query"]
    c("R", "refund query sends out_request_no", sent and all(x.biz and x.biz.get("out_request_no") for x in sent),
      [x.biz for x in sent])
    rq = await s.call("query_refund_status", {"order_no": order_no, "mch_refund_no": f"{run}-NOPE"})
    ctx.expect_error("R", "query_refund_status of an unknown mch_refund_no", rq, "not_found")
    c("R", "... retryable (a refund may not be listed yet)", rq.error.get("retryable") is True, rq.brief())

    mark = gw.mark()
    over = await s.call("refund_payment_order", {"order_no": order_no, "refund_amount": "0.02", "mch_refund_no": f"{run}-C"})
    c("R", "refund beyond what is left (0.02 of 0.01): refused with ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
      over.is_error and over.kind in ("invalid_input", "refused") and over.error.get("code") == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
      over.brief())
    c("R", "... and no money moved", t.refunded == 2, t.refunded)
    mark = gw.mark()
    clash = await s.call("refund_payment_order", {"order_no": order_no, "refund_amount": "0.02", "mch_refund_no": f"{run}-A"})
    ctx.expect_error("R", "same mch_refund_no with another amount", clash, ("invalid_input", "refused"))
    ctx.nothing_sent("R", "same mch_refund_no with another amount", mark)

    r = await s.call("refund_payment_order", {"order_no": order_no, "refund_amount": "0.01"})
    c("R", "refund without mch_refund_no: a derived one, accepted", r.ok and r.s.get("mch_refund_no"), r.brief())
    mark = gw.mark()
    r2 = await s.call("refund_payment_order", {"order_no": order_no, "refund_amount": "0.01"})
    c("R", "... an identical repeat is the same refund (replayed), nothing refunded twice",
      r2.ok and r2.s.get("replayed") is True and r2.s.get("mch_refund_no") == r.s.get("mch_refund_no") and t.refunded == 3,
      {"second": r2.brief(), "refunded_fen": t.refunded})

    # an agent passing the merchant order number where Alipay's trade_no belongs
    mark = gw.mark()
    wrong = await s.call("refund_payment_order", {"order_no": no, "refund_amount": "0.01", "mch_refund_no": f"{run}-D"})
    c("R", "refund with merchant_order_no as order_no: not_found naming the trade_no to use, no refund",
      wrong.is_error and wrong.kind == "not_found" and t.trade_no in json.dumps(wrong.error) and t.refunded == 3,
      wrong.brief())

    # a refund of an unpaid order
    un = f"{run}-RF2"
    await s.call("create_payment_order", {"merchant_order_no": un, "amount": "1.00"})
    tu = gw.scan(un)
    r = await s.call("refund_payment_order", {"order_no": tu.trade_no, "refund_amount": "1.00", "mch_refund_no": f"{run}-E"})
    c("R", "refund of an unpaid trade (ACQ.TRADE_STATUS_ERROR): refused, nothing refunded",
      r.is_error and r.kind in ("refused", "invalid_input") and r.error.get("code") == "ACQ.TRADE_STATUS_ERROR"
      and tu.refunded == 0,
      r.brief())

    # a refund Alipay accepted but does not list yet
    hid = f"{run}-RF3"
    await s.call("create_payment_order", {"merchant_order_no": hid, "amount": "5.00"})
    th = gw.pay(hid)
    gw.inject(Fault("alipay.trade.refund", "refund_hidden", hide=1))
    r = await s.call("refund_payment_order", {"order_no": th.trade_no, "refund_amount": "2.50", "mch_refund_no": f"{run}-F"})
    ctx.expect_ok("R", "refund that Alipay lists only later", r)
    rq = await s.call("query_refund_status", {"order_no": th.trade_no, "mch_refund_no": f"{run}-F"})
    c("R", "refund query while Alipay has no refund_status yet: not refunded (processing/unknown/not_found)",
      rq.s.get("state") != "refunded" and (rq.s.get("state") in ("processing", "unknown") or rq.kind == "not_found"),
      rq.brief())
    rq = await s.call("query_refund_status", {"order_no": th.trade_no, "mch_refund_no": f"{run}-F"})
    c("R", "... and refunded (2.50) once REFUND_SUCCESS is listed",
      rq.ok and rq.s.get("state") == "refunded" and rq.s.get("refund_amount") == "2.50", rq.brief())
    c("R", "amounts exact to the fen: gateway holds 250 fen refunded of 500", th.refunded == 250 and th.total == 500,
      (th.refunded, th.total))


async def close(ctx: Ctx, s: Server, run: str) -> None:
    c, gw = ctx.check, ctx.gateway
    no = f"{run}-CL1"
    await s.call("create_payment_order", {"merchant_order_no": no, "amount": "8.88"})
    t = gw.scan(no)
    mark = gw.mark()
    r = await s.call("close_payment_order", {"merchant_order_no": no})
    c("X", "close an unpaid order: success, state closed, final",
      r.ok and r.s.get("state") == "closed" and r.s.get("final") is True and r.s.get("already_closed") is False, r.brief())
    closes = ctx.sent(mark, "alipay.trade.close")
    c("X", "... sends alipay.trade.close for it, and Alipay's trade is closed",
      len(closes) == 1 and closes[0].biz
      and (closes[0].biz.get("out_trade_no") == no or closes[0].biz.get("trade_no") == t.trade_no)
      and t.status == "TRADE_CLOSED", [x.biz for x in closes])
    mark = gw.mark()
    again = await s.call("close_payment_order", {"merchant_order_no": no})
    c("X", "close again: success, already_closed, no second alipay.trade.close",
      again.ok and again.s.get("already_closed") is True and not ctx.sent(mark, "alipay.trade.close"), again.brief())
    lst = await s.call("list_payment_orders", {})
    row = next((o for o in lst.s.get("orders", []) if o.get("merchant_order_no") == no), {})
    c("X", "the closing is recorded in the ledger (list_payment_orders shows closed)", row.get("state") == "closed", row)

    paid = f"{run}-CL2"
    await s.call("create_payment_order", {"merchant_order_no": paid, "amount": "1.00"})
    gw.pay(paid)
    mark = gw.mark()
    r = await s.call("close_payment_order", {"merchant_order_no": paid})
    c("X", "close a paid order: refused, code ACQ.TRADE_HAS_SUCCESS",
      r.is_error and r.kind == "refused" and r.error.get("code") == "ACQ.TRADE_HAS_SUCCESS", r.brief())
    c("X", "... message says already paid: refund it instead",
      contains_all(r.error.get("message", ""), ["paid", "refund it instead"]), r.error.get("message"))
    c("X", "... and no alipay.trade.close is sent", not ctx.sent(mark, "alipay.trade.close"),
      [x.method for x in ctx.sent(mark)])

    race = f"{run}-CL3"
    await s.call("create_payment_order", {"merchant_order_no": race, "amount": "2.00"})
    tr = gw.scan(race)
    gw.inject(Fault("alipay.trade.close", "pay_first"))
    r = await s.call("close_payment_order", {"order_no": tr.trade_no})
    c("X", "payer pays between the check and the close (ACQ.TRADE_STATUS_ERROR): refused, says refund it instead",
      r.is_error and r.kind == "refused" and contains_all(r.error.get("message", ""), ["refund"])
      and tr.status == "TRADE_SUCCESS",
      r.brief())

    un = f"{run}-CL4"
    await s.call("create_payment_order", {"merchant_order_no": un, "amount": "3.00"})
    r = await s.call("close_payment_order", {"merchant_order_no": un})
    tu = gw.trades[un]
    c("X", "close of a QR nobody scanned yet (Alipay: ACQ.TRADE_NOT_EXIST) never claims closed while the code stays payable",
      not (r.ok and r.s.get("state") == "closed") or tu.status == "TRADE_CLOSED",
      {"result": r.brief(), "alipay_status": tu.status})


async def compat(ctx: Ctx, s: Server, run: str) -> None:
    c, gw = ctx.check, ctx.gateway
    urls: dict[str, str] = {}
    for tool, method, product in (("create-mobile-alipay-payment", "alipay.trade.wap.pay", "QUICK_WAP_WAY"),
                                  ("create-web-page-alipay-payment", "alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY")):
        no = f"{run}-{'M' if 'mobile' in tool else 'W'}1"
        mark = gw.mark()
        r = await s.call(tool, {"outTradeNo": no, "totalAmount": 12.3, "orderTitle": "会员/月卡"})
        ctx.expect_ok("P", tool, r)
        ctx.nothing_sent("P", tool, mark)
        link = markdown_link(r.s.get("url", ""))
        c("P", f"{tool}: url is a Markdown link [..¥12.30..](gateway.do?...)",
          link is not None and "12.30" in link[0] and link_params(link[1])[0] == gw.url, r.s.get("url"))
        urls[no] = link[1] if link else ""
        params = link_params(urls[no])[1]
        biz = json.loads(params.get("biz_content", "{}") or "{}")
        c("P", f"{tool}: signed {method} link, product_code {product}, total_amount 12.30, subject = orderTitle",
          params.get("method") == method and biz.get("product_code") == product and biz.get("total_amount") == "12.30"
          and biz.get("subject") == "会员/月卡" and biz.get("out_trade_no") == no
          and wire.verify(ctx.app.public, wire.sign_content(params), params.get("sign", ""), ctx.sign_type), params)
        snake = await s.call(tool, {"out_trade_no": no, "total_amount": "12.30", "subject": "x"})
        ctx.expect_error("P", f"{tool} with snake_case names", snake, "invalid_input")

    no = f"{run}-M1"
    q = await s.call("query-alipay-payment", {"outTradeNo": no})
    c("P", "query-alipay-payment before the payer opened the link: tradeStatus WAIT_BUYER_PAY",
      q.ok and q.s.get("tradeStatus") == "WAIT_BUYER_PAY", q.brief())
    status, _ = gw.open_link(urls[no])
    c("P", "the payer opens the mobile link: Alipay accepts it", status == 200 and gw.trades[no].visible, status)
    t = gw.pay(no)
    q = await s.call("query-alipay-payment", {"outTradeNo": no})
    c("P", "query-alipay-payment after paying: tradeStatus TRADE_SUCCESS, totalAmount 12.30, tradeNo",
      q.ok and q.s.get("tradeStatus") == "TRADE_SUCCESS" and q.s.get("totalAmount") in ("12.30", "12.3")
      and q.s.get("tradeNo") == t.trade_no, q.brief())
    r = await s.call("refund-alipay-payment", {"outTradeNo": no, "refundAmount": "2.30", "outRequestNo": f"{run}-MR1",
                                               "refundReason": "退一部分"})
    c("P", "refund-alipay-payment: tradeNo and refundResult", r.ok and r.s.get("tradeNo") == t.trade_no
      and r.s.get("refundResult"), r.brief())
    mark = gw.mark()
    r2 = await s.call("refund-alipay-payment", {"outTradeNo": no, "refundAmount": "2.30", "outRequestNo": f"{run}-MR1",
                                                "refundReason": "退一部分"})
    c("P", "refund-alipay-payment retried with the same outRequestNo: no second refund",
      r2.ok and t.refunded == 230 and len(t.refunds) == 1, {"second": r2.brief(), "refunded_fen": t.refunded})
    rq = await s.call("query-alipay-refund", {"outTradeNo": no, "outRequestNo": f"{run}-MR1"})
    c("P", "query-alipay-refund: refundStatus REFUND_SUCCESS, refundAmount 2.30, tradeNo",
      rq.ok and rq.s.get("refundStatus") == "REFUND_SUCCESS" and rq.s.get("refundAmount") == "2.30"
      and rq.s.get("tradeNo") == t.trade_no, rq.brief())
    rq = await s.call("query-alipay-refund", {"outTradeNo": no, "outRequestNo": f"{run}-MR-NONE"})
    c("P", "query-alipay-refund of a refund Alipay does not list: refundStatus empty, not REFUND_SUCCESS",
      (rq.ok and not rq.s.get("refundStatus")) or rq.kind == "not_found", rq.brief())
    q = await s.call("query-alipay-payment", {"outTradeNo": f"{run}-NOT-OURS"})
    c("P", "query-alipay-payment of an order nobody created: an error (not_found), not WAIT_BUYER_PAY",
      q.is_error and q.kind == "not_found", q.brief())
    long_no = (f"{run}-L-" + "9" * 64)[:64]
    r = await s.call("create-web-page-alipay-payment", {"outTradeNo": long_no, "totalAmount": "0.01", "orderTitle": "标" * 256})
    link = markdown_link(r.s.get("url", ""))
    biz = json.loads(link_params(link[1])[1].get("biz_content", "{}")) if link else {}
    c("P", "a 64-character outTradeNo and a 256-character orderTitle (Alipay's limits) are accepted and sent whole",
      r.ok and biz.get("out_trade_no") == long_no and biz.get("subject") == "标" * 256, r.brief())
    r = await s.call("create-web-page-alipay-payment",
                     {"outTradeNo": f"{run}-L2", "totalAmount": "0.01", "orderTitle": "标" * 257})
    ctx.expect_error("P", "a 257-character orderTitle", r, "invalid_input")
    req_no = (f"{run}-RQ-" + "7" * 64)[:64]
    r = await s.call("refund-alipay-payment", {"outTradeNo": no, "refundAmount": "0.01", "outRequestNo": req_no})
    sent = [x for x in gw.requests if x.method == "alipay.trade.refund" and x.biz and x.biz.get("out_request_no") == req_no]
    c("P", "a 64-character outRequestNo (Alipay's limit) is accepted and sent whole as out_request_no",
      r.ok and len(sent) == 1, r.brief())
    r = await s.call("refund-alipay-payment", {"outTradeNo": no, "refundAmount": "0.001", "outRequestNo": f"{run}-MR2"})
    ctx.expect_error("P", "refund-alipay-payment with three decimals", r, "invalid_input")
    c("P", "amounts exact to the fen through the compatibility tools: 1230 total, 231 refunded",
      t.total == 1230 and t.refunded == 231, (t.total, t.refunded))
