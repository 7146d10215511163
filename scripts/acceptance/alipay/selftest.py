"""The fake gateway held against the contract and against Alipay's official Python SDK
(`alipay-sdk-python`), before payment-mcp is tested against it. If the gateway were wrong, every
later verdict would be worthless, so these run first and count as checks ("G*").

- G1 the spec's two sign-content vectors, exactly;
- G2 the spec's known-answer response vector verifies with `wire.extract_signed_text` + the
  spec's public key, and fails with any other sign;
- G3 a request the SDK signs (RSA2 and RSA) is accepted by the gateway, and the gateway's signed
  reply (with `\\/` escapes) passes the SDK's own response verification, which extracts the same
  text that `wire.extract_signed_text` does;
- G4 a wap.pay link the SDK builds (`page_execute(..., "GET")`) opens on the gateway;
- G5 a request signed with another key gets Alipay's `isv.invalid-signature` (signed, as Alipay
  does); a reply signed with another key, or tampered with, fails the SDK's verification;
- G6 a notification built by `wire.notification_form` verifies under the SDK's sign-content and
  RSA functions, and a tampered one does not.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable

from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest
from alipay.aop.api.request.AlipayTradeWapPayRequest import AlipayTradeWapPayRequest
from alipay.aop.api.util import SignatureUtils

import wire
from gateway import FakeAlipay, Fault

SPEC_QUERY = (
    "app_id=2021000122671080&biz_content={\"out_trade_no\":\"ORDER-20250102-0001\"}&charset=utf-8&format=JSON"
    "&method=alipay.trade.query&sign_type=RSA2&timestamp=2025-01-02 03:04:05&version=1.0"
)
SPEC_WAP = (
    "app_id=2021000122671080&biz_content={\"out_trade_no\":\"ORDER-20250102-0001\",\"total_amount\":\"0.01\","
    "\"subject\":\"测试订单\",\"product_code\":\"QUICK_WAP_WAY\"}&charset=utf-8&format=JSON"
    "&method=alipay.trade.wap.pay&notify_url=https://example.com/notify&return_url=https://example.com/return"
    "&sign_type=RSA2&timestamp=2025-01-02 03:04:05&version=1.0"
)
SPEC_BODY = (
    '{"alipay_open_file_upload_response":{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"},'
    '"sign":"F+LDzpTNiavn7xVZPGuPCSSVRSmWzJGgtuji6tVELGEaqMaNj0jRKXUEr5nloZJBBmwEnddOyCjjepMmrTKTvoOqQ0Efxpr/R1iEeHTHVbb/'
    "Q8TTh6Up5gHJDkILdaWS2q1cWeQ6VT+HQY9P3WRXS7uhILHuDODIhpAyCu5KhWGt0rMCIG+Im6NODJP2oohtSCtmTFXg58HH587Z2y2bdbjzOxLvzD9IrU1"
    "imghXQ2S/Q+wMIvRk9on6cWnBLkrNvJKapA2ReNGWOwyuASvB9zDVzhMPbR+3mfRGkVDxsq5HYLjBKGskJMXHw0HuugZij6ScRuaLPODhmHwr/pJ9yw==\"}"
)
SPEC_PUB = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAk7LzhmMa2c4qQd4fqAqenfbuFoA7stPKvoS1LrZEsVnOOGUUjwoa1oU9xsSPjcOWhIerU/VAN4"
    "J95GIAXx59ipcleIyfLn2FhHXPgLJpvo+b2jJFyn/1/DbeJDh+0yDVAOf50Z7HhI0mdUhFMkXlT7BU0ZMtJf/TmISFEfhDU/w6qFd6D42L97byAkq0K6Lr"
    "oglSVF24GqJEa7hSeUIkZWj7RasykXrc2uVJ1+ejkXE0LyPxa2AHykMGbJLf5SiZvaNzUZgnKIR36mLOHpQ/2JCXxhXZYUWHzy0kMH54JcUEeksFWBYLGv"
    "LjV1phbcUIc3Q76tIuqApY6E222OoZZQIDAQAB"
)


def _sdk_client(gateway: FakeAlipay, app_key: wire.KeyPair, sign_type: str) -> DefaultAlipayClient:
    config = AlipayClientConfig()
    config.server_url = gateway.url
    config.app_id = gateway.app_id
    config.app_private_key = app_key.pkcs1_body()  # the SDK loads PKCS#1
    config.alipay_public_key = gateway.alipay_key.spki_body()
    config.sign_type = sign_type
    config.format = "JSON"
    return DefaultAlipayClient(config)


def _sdk_execute(client: DefaultAlipayClient, gateway: FakeAlipay, request) -> str:
    """The SDK's own signing and its own response verification, with the HTTP in between done here
    (the SDK's `do_post` ignores the port of an http:// URL, so it cannot reach a local gateway)."""
    query, params = client._DefaultAlipayClient__prepare_request(request)
    body = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(gateway.url + "?" + query, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded;charset=utf-8"})
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
    return client._DefaultAlipayClient__parse_response(raw)


def run(check: Callable[..., bool]) -> None:
    # G1: sign-content vectors
    query = {"app_id": "2021000122671080", "method": "alipay.trade.query", "format": "JSON", "charset": "utf-8",
             "sign_type": "RSA2", "timestamp": "2025-01-02 03:04:05", "version": "1.0",
             "biz_content": '{"out_trade_no":"ORDER-20250102-0001"}', "sign": "x", "app_auth_token": ""}
    check("G1", "spec sign content (query)", wire.sign_content(query) == SPEC_QUERY, wire.sign_content(query))
    wap = dict(query, method="alipay.trade.wap.pay", notify_url="https://example.com/notify",
               return_url="https://example.com/return",
               biz_content='{"out_trade_no":"ORDER-20250102-0001","total_amount":"0.01","subject":"测试订单","product_code":"QUICK_WAP_WAY"}')
    check("G1", "spec sign content (wap.pay)", wire.sign_content(wap) == SPEC_WAP, wire.sign_content(wap))
    sdk_content = SignatureUtils.get_sign_content({k: v for k, v in wap.items() if k != "sign" and v})
    check("G1", "the SDK's sign content agrees", sdk_content == SPEC_WAP, sdk_content)

    # G2: the known-answer response vector
    text = wire.extract_signed_text(SPEC_BODY, "alipay_open_file_upload_response")
    spec_sign = json.loads(SPEC_BODY)["sign"]
    pub = wire.public_key_from_spki_body(SPEC_PUB)
    check("G2", "extraction of the spec vector",
          text == '{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"}', text)
    check("G2", "the spec vector verifies", wire.verify(pub, text or "", spec_sign))
    check("G2", "the spec vector with another sign fails",
          not wire.verify(pub, text or "", spec_sign.replace("F+LD", "F+LE", 1)))
    # the unusual reply forms the gateway can produce still follow the contract's extraction
    key = wire.KeyPair.generate()
    payload = wire.alipay_json({"code": "10000", "msg": "Success", "sign": "inner", "store_name": '店}{"x\\ "sign":"{',
                                "url": "https://a/b"})
    for colon, first in ((":", False), (" : ", False), (":", True), (" : ", True)):
        body = wire.signed_body("alipay_trade_query_response", payload, key.private, colon=colon, sign_first=first)
        got = wire.extract_signed_text(body, "alipay_trade_query_response")
        outer = json.loads(body)
        check("G2", f"an unusual reply form (colon {colon!r}, sign first {first}) is well-formed and verifies",
              got == payload and outer["alipay_trade_query_response"]["sign"] == "inner"
              and wire.verify(key.public, got, outer["sign"]), body[:300])

    for sign_type in ("RSA2", "RSA"):
        app_key, alipay_key, stranger = wire.KeyPair.generate(), wire.KeyPair.generate(), wire.KeyPair.generate()
        gateway = FakeAlipay("2021000000000001", app_key.public, alipay_key, sign_type)
        gateway.start()
        try:
            _against_sdk(check, gateway, app_key, stranger, sign_type)
        finally:
            gateway.stop()


def _against_sdk(check, gateway: FakeAlipay, app_key: wire.KeyPair, stranger: wire.KeyPair, sign_type: str) -> None:
    client = _sdk_client(gateway, app_key, sign_type)
    gateway.trades.clear()
    # G4 first, so that the query below finds a trade
    wap = AlipayTradeWapPayRequest()
    wap.biz_content = {"out_trade_no": "SELFTEST-1", "total_amount": "0.01", "subject": "自测/订单 a+b",
                       "product_code": "QUICK_WAP_WAY"}
    link = client.page_execute(wap, http_method="GET")
    mark = gateway.mark()
    status, page = gateway.open_link(link)
    seen = gateway.since(mark)
    check("G4", f"an SDK-built wap.pay link opens ({sign_type})",
          status == 200 and len(seen) == 1 and seen[0].signature_ok is True and "SELFTEST-1" in gateway.trades,
          page[:200])
    gateway.pay("SELFTEST-1", buyer="selftest/buyer@example.com")

    # G3: SDK request -> gateway; gateway reply -> SDK verification
    q = AlipayTradeQueryRequest()
    q.biz_content = {"out_trade_no": "SELFTEST-1"}
    mark = gateway.mark()
    try:
        content = _sdk_execute(client, gateway, q)
        ok, detail = True, content
    except Exception as e:  # noqa: BLE001 - the SDK's refusal is the detail
        ok, detail = False, f"{type(e).__name__}: {e}"
    req = gateway.since(mark)[0]
    check("G3", f"an SDK-signed query verifies at the gateway ({sign_type})", req.signature_ok is True,
          req.sign_content)
    check("G3", f"the gateway's signed reply passes the SDK's verification ({sign_type})", ok, detail)
    check("G3", f"the reply carries \\/ escapes and the SDK's signed text is ours ({sign_type})",
          "\\/" in req.reply and ok and detail == wire.extract_signed_text(req.reply, "alipay_trade_query_response"),
          req.reply[:300])

    # G5: a stranger's signature; replies signed with another key or altered
    bad = _sdk_client(gateway, stranger, sign_type)
    try:
        content = _sdk_execute(bad, gateway, q)
        answer = json.loads(content)
    except Exception as e:  # noqa: BLE001
        answer = {"exception": str(e)}
    check("G5", f"a request signed with another key gets a signed isv.invalid-signature ({sign_type})",
          answer.get("code") == "40002" and answer.get("sub_code") == "isv.invalid-signature", answer)
    for fault in (Fault("alipay.trade.query", "wrong_key"),
                  Fault("alipay.trade.query", "tamper", old='"TRADE_SUCCESS"', new='"TRADE_FINISHED"')):
        gateway.inject(fault)
        try:
            _sdk_execute(client, gateway, q)
            refused = False
        except Exception:  # noqa: BLE001
            refused = True
        check("G5", f"the SDK refuses a {fault.mode} reply ({sign_type})", refused)

    # G6: notifications
    fields = {"app_id": gateway.app_id, "out_trade_no": "SELFTEST-1", "total_amount": "0.01",
              "trade_status": "TRADE_SUCCESS", "subject": "100% a+b=c 测试/x", "notify_time": "2025-01-02 03:04:05"}
    form = wire.notification_form(fields, gateway.alipay_key.private, sign_type)
    decoded = dict(urllib.parse.parse_qsl(form))
    sig = decoded.pop("sign")
    decoded.pop("sign_type")
    content = SignatureUtils.get_sign_content(decoded)
    check("G6", f"a notification verifies under the SDK's rules ({sign_type})",
          SignatureUtils.verify_with_rsa(gateway.alipay_key.spki_body(), content.encode(), sig) is True)
    decoded["total_amount"] = "0.02"
    try:
        tampered_ok = SignatureUtils.verify_with_rsa(gateway.alipay_key.spki_body(),
                                                     SignatureUtils.get_sign_content(decoded).encode(), sig)
    except Exception:  # noqa: BLE001 - rsa raises VerificationError
        tampered_ok = False
    check("G6", f"a tampered notification does not ({sign_type})", not tampered_ok)
