"""The gateway misbehaving: Alipay's refusals with each sub_code issue 13 lists (E), replies that
must not be trusted (V), and replies that never arrive (O)."""

from __future__ import annotations

import json

import wire

from context import Ctx, contains_all
from gateway import ERRORS, Fault
from harness import Server

# sub_code -> (method to fail, error kinds accepted, words the fix must contain; "a|b" = either).
# The words paraphrase issue 13: "app private key paired with the wrong public key is the usual
# cause"; "app not online, sandbox and production mixed up, product not signed"; restricted keys.
HINTS: dict[str, tuple[str, tuple[str, ...], list[str]]] = {
    "isv.invalid-signature": ("alipay.trade.query", ("auth",), ["AP_APP_KEY", "public key|公钥"]),
    "isv.missing-signature-config": ("alipay.trade.query", ("auth", "config"), ["key|密钥"]),
    "isv.invalid-app-id": ("alipay.trade.query", ("auth", "config"), ["AP_APP_ID", "sandbox"]),
    "isv.insufficient-isv-permissions": ("alipay.trade.query", ("auth", "config"),
                                         ["online|上线", "sandbox", "sign|签约"]),
    "isv.invalid-cloud-app-permission": ("alipay.trade.query", ("auth", "config"), ["restricted|受限", "MCP"]),
    "isv.invalid-open-scene-api-permission": ("alipay.trade.query", ("auth", "config"), ["restricted|受限", "API"]),
    "isv.missing-signature-key": ("alipay.trade.query", ("auth", "config"), ["key|密钥"]),
    "ACQ.TRADE_NOT_EXIST": ("alipay.trade.query", ("not_found",), ["trade|order"]),
    "ACQ.TRADE_HAS_SUCCESS": ("alipay.trade.precreate", ("refused", "invalid_input"), ["paid"]),
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": ("alipay.trade.refund", ("refused",), ["balance"]),
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": ("alipay.trade.refund", ("refused", "invalid_input"), ["refund", "amount"]),
    "ACQ.ACCESS_FORBIDDEN": ("alipay.trade.query", ("auth", "refused"), ["forbid|permission|not allowed"]),
}


async def sub_codes(ctx: Ctx, s: Server, run: str) -> None:
    c, gw = ctx.check, ctx.gateway
    # one paid order for the refund-side errors
    paid = f"{run}-E0"
    await s.call("create_payment_order", {"merchant_order_no": paid, "amount": "10.00"})
    t = gw.pay(paid)
    for i, (sub, (method, kinds, words)) in enumerate(HINTS.items()):
        code, msg, sub_msg = ERRORS[sub]
        sub_msg = f"{sub_msg} (case {i})"
        gw.inject(Fault(method, "error", sub_code=sub, sub_msg=sub_msg))
        if method == "alipay.trade.query":
            r = await s.call("query_payment_order", {"order_no": t.trade_no})
        elif method == "alipay.trade.precreate":
            r = await s.call("create_payment_order", {"merchant_order_no": f"{run}-E{i}", "amount": "1.00"})
        else:
            r = await s.call("refund_payment_order", {"order_no": t.trade_no, "refund_amount": "1.00",
                                                      "mch_refund_no": f"{run}-ER{i}"})
        gw.clear_faults()
        err = r.error
        blob = json.dumps(err, ensure_ascii=False)
        c("E", f"{sub}: error kind {'/'.join(kinds)}, code = sub_code", r.is_error and r.kind in kinds and err.get("code") == sub,
          r.brief())
        c("E", f"{sub}: Alipay's sub_msg is in the error", sub_msg in blob, blob)
        c("E", f"{sub}: Alipay's code {code} and msg '{msg}' are in the error object (issue 13: code, msg, sub_code, sub_msg)",
          code in blob and msg in blob, blob)
        c("E", f"{sub}: a fix in plain words ({' + '.join(words)})", contains_all(err.get("message", ""), words),
          err.get("message"))
        c("E", f"{sub}: not retryable", err.get("retryable") is False, blob)

    # the gateway-level shape: the same refusals under `error_response` (signed, as the body form
    # of docs/alipay.md section 3 has it)
    for sub, (_, kinds, words) in HINTS.items():
        if not sub.startswith("isv."):
            continue
        gw.inject(Fault("alipay.trade.query", "error_response", sub_code=sub, signed=True))
        r = await s.call("query_payment_order", {"order_no": t.trade_no})
        gw.clear_faults()
        c("E", f"{sub} as a signed error_response: kind {'/'.join(kinds)}, code = sub_code, the same fix",
          r.is_error and r.kind in kinds and r.error.get("code") == sub and contains_all(r.error.get("message", ""), words),
          r.brief())

    # a refund refused for the balance is not recorded as done: topping up and repeating the same
    # mch_refund_no (what the hint says) refunds once
    gw.inject(Fault("alipay.trade.refund", "error", sub_code="ACQ.SELLER_BALANCE_NOT_ENOUGH"))
    r = await s.call("refund_payment_order", {"order_no": t.trade_no, "refund_amount": "4.00", "mch_refund_no": f"{run}-BAL"})
    gw.clear_faults()
    again = await s.call("refund_payment_order", {"order_no": t.trade_no, "refund_amount": "4.00", "mch_refund_no": f"{run}-BAL"})
    c("E", "after ACQ.SELLER_BALANCE_NOT_ENOUGH, the same mch_refund_no repeated refunds once",
      r.is_error and again.ok and t.refunded == 400, {"first": r.brief(), "again": again.brief(), "refunded_fen": t.refunded})

    # Alipay's system error on a create: the outcome is unknown, not a refusal
    gw.inject(Fault("alipay.trade.precreate", "error", sub_code="ACQ.SYSTEM_ERROR"))
    r = await s.call("create_payment_order", {"merchant_order_no": f"{run}-ESYS", "amount": "1.00"})
    gw.clear_faults()
    c("E", "ACQ.SYSTEM_ERROR on create: outcome_unknown (retryable), not a refusal",
      r.is_error and r.kind == "outcome_unknown" and r.error.get("retryable") is True, r.brief())

    # the real invalid-signature: payment-mcp holds a key Alipay does not have for this app
    stranger = wire.KeyPair.generate()
    start = gw.mark()
    async with ctx.server("wrong-app-key", AP_APP_KEY=stranger.pkcs8_body()) as bad:
        mark = gw.mark()
        r = await bad.call("query_payment_order", {"order_no": t.trade_no})
        sent = ctx.sent(mark)
        c("E", "AP_APP_KEY not the app's key: Alipay answers isv.invalid-signature",
          sent and sent[0].signature_ok is False and "isv.invalid-signature" in sent[0].reply, [x.reply[:200] for x in sent])
        c("E", "... and payment-mcp says auth, isv.invalid-signature, with the key-pairing hint",
          r.is_error and r.kind == "auth" and r.error.get("code") == "isv.invalid-signature"
          and contains_all(r.error.get("message", ""), ["AP_APP_KEY", "public key|公钥"]), r.brief())
    ctx.validate_outputs(bad)
    ctx.check_stdout_and_secrets(bad)
    async with ctx.server("wrong-app-id", AP_APP_ID="2021009999999999") as bad:
        r = await bad.call("query_payment_order", {"order_no": t.trade_no})
        ctx.misconfigured.append((start, gw.mark()))  # these requests are wrong on purpose
        c("E", "AP_APP_ID Alipay does not know: auth, isv.invalid-app-id, hint names AP_APP_ID",
          r.is_error and r.kind in ("auth", "config") and r.error.get("code") == "isv.invalid-app-id"
          and "AP_APP_ID" in r.error.get("message", ""), r.brief())


async def untrusted(ctx: Ctx, s: Server, run: str) -> None:
    c, gw = ctx.check, ctx.gateway
    no = f"{run}-V1"
    await s.call("create_payment_order", {"merchant_order_no": no, "amount": "0.01"})
    t = gw.scan(no)
    # a tampered reply claiming the unpaid order is paid
    gw.inject(Fault("alipay.trade.query", "tamper", old='"WAIT_BUYER_PAY"', new='"TRADE_SUCCESS"'))
    r = await s.call("query_payment_order", {"merchant_order_no": no})
    c("V", "tampered query reply (WAIT_BUYER_PAY -> TRADE_SUCCESS): rejected, never paid",
      r.is_error and r.s.get("state") != "paid" and r.kind in ("gateway", "auth"), r.brief())
    gw.clear_faults()
    gw.inject(Fault("alipay.trade.query", "tamper", old='"total_amount":"0.01"', new='"total_amount":"9.99"'))
    r = await s.call("query_payment_order", {"merchant_order_no": no})
    c("V", "tampered amount in a query reply: rejected", r.is_error and "9.99" not in json.dumps(r.s), r.brief())
    gw.clear_faults()
    # a tampered precreate reply pointing the payer at another QR
    gw.inject(Fault("alipay.trade.precreate", "tamper", old="https:\\/\\/qr.alipay.com\\/", new="https:\\/\\/evil.example\\/"))
    r = await s.call("create_payment_order", {"merchant_order_no": f"{run}-V2", "amount": "0.01"})
    c("V", "tampered precreate reply (qr_code swapped): rejected, the swapped URL shown nowhere",
      r.is_error and "evil.example" not in json.dumps(r.raw), r.brief())
    gw.clear_faults()
    # signed with another key: AP_PUB_KEY does not match
    gw.inject(Fault("alipay.trade.query", "wrong_key", count=5))
    r = await s.call("query_payment_order", {"merchant_order_no": no})
    c("V", "reply signed with another key: error kind auth", r.is_error and r.kind == "auth", r.brief())
    c("V", "... with the public-key hint (names AP_PUB_KEY)", "AP_PUB_KEY" in r.error.get("message", ""), r.error.get("message"))
    gw.clear_faults()
    gw.inject(Fault("alipay.trade.query", "no_sign", count=5))
    r = await s.call("query_payment_order", {"merchant_order_no": no})
    c("V", "unsigned success reply: not trusted", r.is_error and r.s.get("state") != "pending", r.brief())
    gw.clear_faults()
    gw.inject(Fault("alipay.trade.refund", "wrong_key"))
    gw.pay(no)
    r = await s.call("refund_payment_order", {"order_no": t.trade_no, "refund_amount": "0.01", "mch_refund_no": f"{run}-VR"})
    gw.clear_faults()
    c("V", "refund whose reply is signed with another key: not reported as accepted",
      r.is_error and r.s.get("state") not in ("processing", "refunded"), r.brief())
    # an unsigned gateway-level error_response
    gw.inject(Fault("alipay.trade.query", "error_response", sub_code="isv.invalid-app-id", count=5))
    r = await s.call("query_payment_order", {"merchant_order_no": no})
    gw.clear_faults()
    c("V", "unsigned error_response: an error, never a state", r.is_error and not r.s.get("state"), r.brief())
    # legal but unusual reply forms: still read (and still checked)
    gw.pay(f"{run}-V1")
    everything = ("spaced", "sign_first", "nested_sign", "braces")
    for quirks in (("spaced",), ("sign_first",), ("nested_sign",), ("braces",), everything):
        gw.inject(Fault("alipay.trade.query", "quirks", quirks=quirks))
        r = await s.call("query_payment_order", {"merchant_order_no": no})
        gw.clear_faults()
        c("V", f"a signed reply with {'+'.join(quirks)}: read correctly (paid 0.01)",
          r.ok and r.s.get("state") == "paid" and r.s.get("paid_amount") == "0.01", r.brief())
    gw.inject(Fault("alipay.trade.query", "quirks", quirks=everything,
                    old='"total_amount":"0.01"', new='"total_amount":"0.02"'))
    r = await s.call("query_payment_order", {"merchant_order_no": no})
    gw.clear_faults()
    c("V", "... and tampered in that form: still rejected", r.is_error and "0.02" not in json.dumps(r.s), r.brief())

    # HTTP 500
    gw.inject(Fault("alipay.trade.query", "http500", count=5))
    r = await s.call("query_payment_order", {"merchant_order_no": no})
    gw.clear_faults()
    c("V", "HTTP 500 on a query: transport/gateway, retryable", r.is_error and r.kind in ("transport", "gateway")
      and r.error.get("retryable") is True, r.brief())


async def timeouts(ctx: Ctx, run: str) -> None:
    """A separate server with a 1 s request timeout; the gateway answers after 2.5 s."""
    c, gw = ctx.check, ctx.gateway
    async with ctx.server("timeouts", PAYMENT_REQUEST_TIMEOUT_MS="1000") as s:
        no = f"{run}-O1"
        gw.inject(Fault("alipay.trade.precreate", "delay", seconds=2.5, apply=False))
        r = await s.call("create_payment_order", {"merchant_order_no": no, "amount": "0.50"})
        c("O", "create whose reply never arrives: outcome_unknown, retryable",
          r.is_error and r.kind == "outcome_unknown" and r.error.get("retryable") is True, r.brief())
        gw.clear_faults()
        r = await s.call("create_payment_order", {"merchant_order_no": no, "amount": "0.50"})
        c("O", "... repeated with the same number: created once", r.ok and no in gw.trades and r.s.get("pay_url"), r.brief())

        paid = f"{run}-O2"
        await s.call("create_payment_order", {"merchant_order_no": paid, "amount": "3.00"})
        t = gw.pay(paid)
        gw.inject(Fault("alipay.trade.refund", "delay", seconds=2.5, apply=False))
        r = await s.call("refund_payment_order", {"order_no": t.trade_no, "refund_amount": "1.00", "mch_refund_no": f"{run}-OR1"})
        c("O", "refund whose reply never arrives (and did not happen): outcome_unknown, retryable",
          r.is_error and r.kind == "outcome_unknown" and r.error.get("retryable") is True and t.refunded == 0, r.brief())
        gw.clear_faults()
        r = await s.call("refund_payment_order", {"order_no": t.trade_no, "refund_amount": "1.00", "mch_refund_no": f"{run}-OR1"})
        c("O", "... repeated with the same mch_refund_no: refunded once", r.ok and t.refunded == 100,
          {"result": r.brief(), "refunded_fen": t.refunded})

        gw.inject(Fault("alipay.trade.refund", "delay", seconds=2.5, apply=True))
        r = await s.call("refund_payment_order", {"order_no": t.trade_no, "refund_amount": "1.00", "mch_refund_no": f"{run}-OR2"})
        c("O", "refund that happened but whose reply was lost: recovered (accepted) or outcome_unknown, never a failure",
          (r.ok and r.s.get("state") in ("processing", "refunded")) or r.kind == "outcome_unknown", r.brief())
        gw.clear_faults()
        r = await s.call("refund_payment_order", {"order_no": t.trade_no, "refund_amount": "1.00", "mch_refund_no": f"{run}-OR2"})
        c("O", "... repeated: success, and the money moved once", r.ok and t.refunded == 200,
          {"result": r.brief(), "refunded_fen": t.refunded})

        gw.inject(Fault("alipay.trade.query", "delay", seconds=2.5, count=10))
        r = await s.call("query_payment_order", {"order_no": t.trade_no})
        gw.clear_faults()
        c("O", "query without a reply: transport, retryable (nothing changed)",
          r.is_error and r.kind == "transport" and r.error.get("retryable") is True, r.brief())
        gw.inject(Fault("alipay.trade.close", "delay", seconds=2.5, apply=False))
        open_no = f"{run}-O3"
        await s.call("create_payment_order", {"merchant_order_no": open_no, "amount": "1.00"})
        gw.scan(open_no)
        r = await s.call("close_payment_order", {"merchant_order_no": open_no})
        gw.clear_faults()
        c("O", "close without a reply: an error (not 'closed')", r.is_error and r.s.get("state") != "closed", r.brief())
    ctx.validate_outputs(s)
    ctx.check_stdout_and_secrets(s)
