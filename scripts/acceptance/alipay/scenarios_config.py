"""Notifications (N), tool selection (M), keys and their handling (K), the SHA1 `RSA` variant (A)
and `payment-mcp doctor` (D)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse

import wire
from context import Ctx, contains_all, link_params
from gateway import Fault
from harness import Server


def _notify_fields(ctx: Ctx, no: str, trade_no: str, amount: str, **over: str) -> dict[str, str]:
    fields = {
        "gmt_create": "2025-01-02 03:04:05", "gmt_payment": "2025-01-02 03:04:09", "notify_time": "2025-01-02 03:04:10",
        "charset": "utf-8", "version": "1.0", "notify_type": "trade_status_sync", "notify_id": "2025010200222030409abcdef",
        "app_id": ctx.gateway.app_id, "auth_app_id": ctx.gateway.app_id, "seller_id": "2088102177649450",
        "seller_email": "merchant@example.com", "buyer_id": "2088102177846880", "buyer_logon_id": "159****5620",
        "out_trade_no": no, "trade_no": trade_no, "trade_status": "TRADE_SUCCESS",
        "total_amount": amount, "receipt_amount": amount, "invoice_amount": amount, "buyer_pay_amount": amount,
        "point_amount": "0.00", "subject": "100% a+b=c 测试/x&y", "body": "literal %2B stays as written",
        "fund_bill_list": json.dumps([{"amount": amount, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")),
    }
    fields.update(over)
    return fields


def _form(fields: dict[str, str], key, sign_type: str, plus: bool = False) -> str:
    form = wire.notification_form(fields, key, sign_type)
    if plus:  # the same form with spaces as '+', as HTML forms send them
        pairs = urllib.parse.parse_qsl(form, keep_blank_values=True)
        form = urllib.parse.urlencode(pairs)
    return form


async def notifications(ctx: Ctx, s: Server, run: str) -> None:
    c, gw, st = ctx.check, ctx.gateway, ctx.sign_type
    no = f"{run}-N1"
    await s.call("create_payment_order", {"merchant_order_no": no, "amount": "0.03"})
    t = gw.pay(no)
    key = ctx.alipay.private
    good = _notify_fields(ctx, no, t.trade_no, "0.03")

    async def verify(raw: str):
        mark = gw.mark()
        r = await s.call("verify_payment_notification", {"raw": raw})
        ctx.nothing_sent("N", "verify_payment_notification", mark)
        return r

    r = await verify(_form(good, key, st))
    c("N", "a notification Alipay signed, for an order in the ledger: signature_valid, paid, 0.03",
      r.ok and r.s.get("signature_valid") is True and r.s.get("state") == "paid" and r.s.get("amount") == "0.03"
      and r.s.get("merchant_order_no") == no, r.brief())
    c("N", "... order_no is the trade_no; fields are decoded once (subject, %2B literal)",
      r.s.get("order_no") == t.trade_no and (r.s.get("fields") or {}).get("subject") == good["subject"]
      and (r.s.get("fields") or {}).get("body") == good["body"], r.brief())
    c("N", "... the sign is not among the fields", "sign" not in (r.s.get("fields") or {}), r.s.get("fields"))
    r = await verify(_form(good, key, st, plus=True))
    c("N", "the same with spaces encoded as '+': valid", r.ok and r.s.get("signature_valid") is True, r.brief())
    r = await verify("https://merchant.example.com/alipay/notify?" + _form(good, key, st))
    c("N", "the notify URL with the query string: valid", r.ok and r.s.get("signature_valid") is True, r.brief())

    tampered = _form(good, key, st).replace("total_amount=0.03", "total_amount=0.01")
    r = await verify(tampered)
    c("N", "tampered total_amount: signature_valid false, state not paid",
      r.s.get("signature_valid") is False and r.s.get("state") != "paid", r.brief())
    r = await verify(_form(good, wire.KeyPair.generate().private, st))
    c("N", "signed with another key: signature_valid false", r.s.get("signature_valid") is False and r.s.get("state") != "paid",
      r.brief())
    no_sign = "&".join(p for p in _form(good, key, st).split("&") if not p.startswith("sign="))
    r = await verify(no_sign)
    c("N", "no sign: signature_valid false", r.s.get("signature_valid") is False and r.s.get("state") != "paid", r.brief())
    other_app = _notify_fields(ctx, no, t.trade_no, "0.03", app_id="2021000000000666", auth_app_id="2021000000000666")
    r = await verify(_form(other_app, key, st))
    c("N", "validly signed for another app_id: signature_valid false, not paid",
      r.s.get("signature_valid") is False and r.s.get("state") != "paid", r.brief())
    wrong_amount = _notify_fields(ctx, no, t.trade_no, "0.02")
    r = await verify(_form(wrong_amount, key, st))
    c("N", "validly signed but total_amount 0.02 against the ledger's 0.03: not paid",
      r.s.get("state") != "paid", r.brief())
    c("N", "... and the result says why (amount)", "amount" in json.dumps(r.raw, ensure_ascii=False).lower()
      and ("0.02" in json.dumps(r.raw) or "0.03" in json.dumps(r.raw)), r.brief())
    waiting = _notify_fields(ctx, no, t.trade_no, "0.03", trade_status="WAIT_BUYER_PAY")
    r = await verify(_form(waiting, key, st))
    c("N", "WAIT_BUYER_PAY notification: valid, not paid", r.s.get("signature_valid") is True and r.s.get("state") != "paid",
      r.brief())
    stranger = _notify_fields(ctx, f"{run}-NOT-IN-LEDGER", "2025010222001000000000001", "7.77")
    r = await verify(_form(stranger, key, st))
    c("N", "an order the ledger does not know: signature still checked and valid",
      r.ok and r.s.get("signature_valid") is True and r.s.get("amount") == "7.77", r.brief())


async def tool_selection(ctx: Ctx) -> None:
    c = ctx.check
    cases = [
        ("queryPay,refund-alipay-payment,create_payment_order",
         {"query-alipay-payment", "refund-alipay-payment", "create_payment_order"}),
        ("mobilePay, webPagePay", {"create-mobile-alipay-payment", "create-web-page-alipay-payment"}),
        ("refundQuery,query_refund_status", {"query-alipay-refund", "query_refund_status"}),
    ]
    for value, want in cases:
        async with ctx.server("select-" + str(len(ctx.servers)), AP_SELECT_TOOLS=value) as s:
            c("M", f"AP_SELECT_TOOLS={value!r} lists exactly {sorted(want)}", set(s.tools) == want, sorted(s.tools))
            hidden = await s.call("query_payment_order" if "query_payment_order" not in want else "close_payment_order",
                                  {"merchant_order_no": "X-1"})
            c("M", f"AP_SELECT_TOOLS={value!r}: a hidden tool does not exist for the client (JSON-RPC error)",
              bool(hidden.protocol_error), hidden.brief())
    async with ctx.server("select-all", AP_SELECT_TOOLS="all") as s:
        c("M", "AP_SELECT_TOOLS=all lists every tool (13)", len(s.tools) == 13 and "close_payment_order" in s.tools,
          sorted(s.tools))
    async with ctx.server("read-only", PAYMENT_READ_ONLY="true") as s:
        movers = {"create_payment_order", "refund_payment_order", "close_payment_order", "create-mobile-alipay-payment",
                  "create-web-page-alipay-payment", "refund-alipay-payment"}
        c("M", "PAYMENT_READ_ONLY=true hides every tool that moves money or changes an order",
          not (set(s.tools) & movers) and {"query-alipay-payment", "query_payment_order"} <= set(s.tools), sorted(s.tools))
    async with ctx.server("select-unknown", AP_SELECT_TOOLS="queryPay,payEverything") as s:
        name = next(iter(s.tools), "query-alipay-payment")
        r = await s.call(name, {"outTradeNo": "X-1"} if "-" in name else {"merchant_order_no": "X-1"})
        c("M", "AP_SELECT_TOOLS naming an unknown tool: a config error naming AP_SELECT_TOOLS",
          r.is_error and r.kind == "config" and r.error.get("code") == "AP_SELECT_TOOLS", r.brief())


async def keys(ctx: Ctx, run: str) -> None:
    c, gw = ctx.check, ctx.gateway
    no = f"{run}-K1"
    gw.trades.pop(no, None)
    for label, value in (("PKCS#1 base64 body", ctx.app.pkcs1_body()), ("PKCS#8 PEM text", ctx.app.pkcs8_pem())):
        async with ctx.server("key-" + label.split()[0].replace("#", ""), AP_APP_KEY=value) as s:
            mark = gw.mark()
            r = await s.call("create_payment_order", {"merchant_order_no": f"{no}-{label[:6].replace('#', '')}",
                                                      "amount": "0.01"})
            sent = ctx.sent(mark)
            c("K", f"AP_APP_KEY as a {label}: requests verify, create succeeds",
              r.ok and sent and all(x.signature_ok for x in sent), r.brief())
        ctx.check_stdout_and_secrets(s)
    for label, over, var in (
        ("AP_PUB_KEY is the app's own public key", {"AP_PUB_KEY": ctx.app.spki_body()}, "AP_PUB_KEY"),
        ("AP_APP_KEY is not a key", {"AP_APP_KEY": "bm90IGEga2V5IGF0IGFsbA=="}, "AP_APP_KEY"),
        ("AP_APP_KEY holds a public key", {"AP_APP_KEY": ctx.alipay.spki_body()}, "AP_APP_KEY"),
    ):
        async with ctx.server("badkey-" + var, **over) as s:
            mark = gw.mark()
            r = await s.call("query_payment_order", {"merchant_order_no": f"{run}-K2"})
            c("K", f"{label}: a config error whose code is {var}",
              r.is_error and r.kind == "config" and r.error.get("code") == var, r.brief())
            ctx.nothing_sent("K", label, mark)
        ctx.check_stdout_and_secrets(s)
    log = os.path.join(ctx.env()["HOME"], "mcp-server-alipay.log")
    text = open(log, encoding="utf-8", errors="replace").read() if os.path.exists(log) else None
    c("K", "AP_LOG_ENABLED=true writes ~/mcp-server-alipay.log", text is not None and text.strip(), log)
    leaked = [x[:16] + "..." for x in ctx.secrets() if text and x in text]
    c("K", "... and no key material is in it (PAYMENT_LOG=debug)", text is not None and not leaked, leaked[:3])


async def rsa_sha1(binary: str, workdir: str, check, run: str) -> None:
    """AP_ENCRYPTION_ALGO=RSA (SHA1withRSA), a PKCS#1 key, TZ at UTC+14: a whole flow."""
    from scenarios_core import wire_checks
    ctx = Ctx(binary, os.path.join(workdir, "rsa"), check, sign_type="RSA", app_id="2016000000000777")
    os.makedirs(ctx.workdir, exist_ok=True)
    c, gw = check, ctx.gateway
    try:
        async with ctx.server("rsa", AP_APP_KEY=ctx.app.pkcs1_body(), TZ="Pacific/Kiritimati",
                              AP_NOTIFY_URL="https://merchant.example.com/n") as s:
            no = f"{run}-A1"
            r = await s.call("create_payment_order", {"merchant_order_no": no, "amount": "66.60"})
            ctx.expect_ok("A", "RSA: create", r)
            t = gw.pay(no)
            q = await s.call("query_payment_order", {"merchant_order_no": no})
            c("A", "RSA: query paid 66.60", q.ok and q.s.get("state") == "paid" and q.s.get("paid_amount") == "66.60", q.brief())
            rf = await s.call("refund_payment_order",
                              {"order_no": t.trade_no, "refund_amount": "6.66", "mch_refund_no": f"{run}-AR"})
            ctx.expect_ok("A", "RSA: refund", rf)
            rq = await s.call("query_refund_status", {"order_no": t.trade_no, "mch_refund_no": f"{run}-AR"})
            c("A", "RSA: refund query refunded 6.66",
              rq.ok and rq.s.get("state") == "refunded" and rq.s.get("refund_amount") == "6.66", rq.brief())
            w = await s.call("create_payment_order", {"merchant_order_no": f"{run}-A2", "amount": "1.00", "channel": "wap"})
            _, params = link_params(w.s.get("pay_url", ""))
            c("A", "RSA: the wap link is signed SHA1withRSA with sign_type=RSA",
              params.get("sign_type") == "RSA"
              and wire.verify(ctx.app.public, wire.sign_content(params), params.get("sign", ""), "RSA"),
              params)
            fields = _notify_fields(ctx, no, t.trade_no, "66.60")
            n = await s.call("verify_payment_notification", {"raw": _form(fields, ctx.alipay.private, "RSA")})
            c("A", "RSA: an RSA-signed notification is valid and paid",
              n.ok and n.s.get("signature_valid") is True and n.s.get("state") == "paid", n.brief())
            n = await s.call("verify_payment_notification",
                             {"raw": _form(fields, ctx.alipay.private, "RSA").replace("total_amount=66.60", "total_amount=0.66")})
            c("A", "RSA: a tampered one is not", n.s.get("signature_valid") is False, n.brief())
            gw.inject(Fault("alipay.trade.query", "wrong_key", count=5))
            q = await s.call("query_payment_order", {"merchant_order_no": no})
            gw.clear_faults()
            c("A", "RSA: a reply signed with another key is auth", q.is_error and q.kind == "auth", q.brief())
        wire_checks(ctx, "RSA run (TZ=Pacific/Kiritimati, UTC+14)")
        ctx.validate_outputs(s)
        ctx.check_stdout_and_secrets(s)
    finally:
        gw.stop()


def doctor(ctx: Ctx) -> None:
    c = ctx.check
    for label, over, rc_ok, words in (
        ("keys right", {}, True, []),
        ("AP_APP_KEY wrong", {"AP_APP_KEY": wire.KeyPair.generate().pkcs8_body()}, False, ["AP_APP_KEY"]),
        ("AP_PUB_KEY wrong", {"AP_PUB_KEY": wire.KeyPair.generate().spki_body()}, False, ["AP_PUB_KEY"]),
    ):
        env = ctx.env(**over)
        try:
            p = subprocess.run([ctx.binary, "doctor"], env=env, capture_output=True, text=True, timeout=60)
            out, rc = p.stdout + p.stderr, p.returncode
        except subprocess.TimeoutExpired:
            out, rc = "timeout", -1
        c("D", f"doctor with {label}: exit {'0' if rc_ok else 'non-zero'}" + (f", names {words[0]}" if words else ""),
          (rc == 0) == rc_ok and contains_all(out, words), f"rc={rc}\n{out[-1500:]}")
        leaked = [x[:16] + "..." for x in ctx.secrets() + [over.get("AP_APP_KEY", "-" * 80)] if x in out]
        c("D", f"doctor with {label}: no key material printed", not leaked, leaked[:3])
