"""A fake Alipay `gateway.do` on 127.0.0.1, written from the wire contract (docs/alipay.md and the
shared spec), not from payment-mcp's sandbox.

What it does, as Alipay does it:
- merges the query-string and form-body parameters, checks the public parameters, and verifies the
  request signature with the application's public key (RSA2 = SHA256withRSA or RSA = SHA1withRSA,
  over the sign content of docs/alipay.md section 2); a bad one gets Alipay's real answer
  (`40002` / `isv.invalid-signature`, with the gateway's sign content in `sub_msg`, signed);
- keeps trades and refunds: precreate (the trade exists for queries only once the payer scanned
  the code), wap/page links opened by the payer with a GET (signature checked, trade created),
  query, refund (idempotent per `out_request_no`, partial refunds, `refund_fee` = the trade's total
  refunded, a full refund closes the trade), refund query, close;
- signs every reply with "Alipay's" private key over the exact raw text of the `..._response`
  value, with `/` written as `\\/`, and serves it as `text/html;charset=utf-8` like the real one;
- misbehaves on demand (`Fault`): a business or gateway error with any sub_code, a tampered body,
  a reply signed with another key, an unsigned reply, a late reply (with or without the operation
  having happened), HTTP 500, or the trade being paid just before a close.

Every request is recorded (`requests`) so that checks can look at what the server sent.
"""

from __future__ import annotations

import html
import json
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import wire

BEIJING = timezone(timedelta(hours=8))
AMOUNT_RE = re.compile(r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,2})?$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
PUBLIC = ("app_id", "method", "format", "charset", "sign_type", "sign", "timestamp", "version")
API_METHODS = (
    "alipay.trade.precreate",
    "alipay.trade.query",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.trade.close",
)
PAGE_METHODS = {"alipay.trade.wap.pay": "QUICK_WAP_WAY", "alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY"}

# sub_code -> (code, msg, sub_msg), as Alipay answers them.
ERRORS: dict[str, tuple[str, str, str]] = {
    "isv.invalid-signature": ("40002", "Invalid Arguments", "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配"),
    "isv.missing-signature": ("40001", "Missing Required Arguments", "缺少签名参数"),
    "isv.missing-signature-config": ("40002", "Invalid Arguments", "应用未配置对应签名算法的公钥或者证书"),
    "isv.missing-signature-key": ("40002", "Invalid Arguments", "受限密钥未配置加签密钥"),
    "isv.invalid-app-id": ("40002", "Invalid Arguments", "无效的AppID参数"),
    "isv.invalid-timestamp": ("40002", "Invalid Arguments", "非法的时间戳参数"),
    "isv.invalid-signature-type": ("40002", "Invalid Arguments", "无效的签名类型"),
    "isv.invalid-method": ("40002", "Invalid Arguments", "不存在的方法名"),
    "isv.invalid-format": ("40002", "Invalid Arguments", "无效的数据格式"),
    "isv.invalid-charset": ("40002", "Invalid Arguments", "字符集错误"),
    "isv.invalid-parameter": ("40002", "Invalid Arguments", "参数无效"),
    "isv.insufficient-isv-permissions": ("40006", "Insufficient Permissions",
                                         "ISV权限不足，建议在开发者中心检查对应功能是否已经添加"),
    "isv.invalid-cloud-app-permission": ("40006", "Insufficient Permissions", "受限密钥未开启支付MCP权限"),
    "isv.invalid-open-scene-api-permission": ("40006", "Insufficient Permissions", "受限密钥未勾选该接口"),
    "ACQ.TRADE_NOT_EXIST": ("40004", "Business Failed", "交易不存在"),
    "ACQ.TRADE_HAS_SUCCESS": ("40004", "Business Failed", "交易已被支付"),
    "ACQ.TRADE_HAS_CLOSE": ("40004", "Business Failed", "交易已经关闭"),
    "ACQ.TRADE_STATUS_ERROR": ("40004", "Business Failed", "交易状态不合法"),
    "ACQ.CONTEXT_INCONSISTENT": ("40004", "Business Failed", "交易信息被篡改"),
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": ("40004", "Business Failed", "卖家余额不足"),
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": ("40004", "Business Failed", "退款金额超限"),
    "ACQ.ACCESS_FORBIDDEN": ("40004", "Business Failed", "无权限使用接口"),
    "ACQ.INVALID_PARAMETER": ("40004", "Business Failed", "参数无效"),
    "ACQ.SYSTEM_ERROR": ("20000", "Service Currently Unavailable", "系统繁忙"),
}


def fen(amount: str) -> int:
    return int((Decimal(amount) * 100).to_integral_exact())


def yuan(f: int) -> str:
    return f"{f // 100}.{f % 100:02d}"


def beijing_now() -> str:
    return datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Fault:
    """One misbehaviour for the next `count` calls of `method` ("*" = any API method).

    mode: "error" (sub_code), "error_response" (the same under `error_response`, signed only when
    `signed`), "quirks" (a correct, signed reply in a legal but unusual form: `spaced` colons,
    `sign_first`, a `nested_sign` member inside the response object, `braces` in a string value),
    "tamper" (replace `old` by `new` after signing), "wrong_key", "no_sign", "delay" (`seconds`;
    `apply` says whether the operation still happens), "http500", "pay_first" (the trade is paid
    just before this call is handled), "refund_hidden" (the refund happens, but the next `hide`
    refund queries do not list it yet)."""

    method: str
    mode: str
    sub_code: str = ""
    sub_msg: str = ""
    old: str = ""
    new: str = ""
    seconds: float = 0.0
    apply: bool = False
    hide: int = 0
    signed: bool = False
    quirks: tuple[str, ...] = ()
    count: int = 1


@dataclass
class Refund:
    out_request_no: str
    amount: int
    time: str
    hidden_queries: int = 0


@dataclass
class Trade:
    out_trade_no: str
    total: int
    subject: str
    product_code: str
    trade_no: str | None = None
    visible: bool = False  # a precreated trade exists for queries once scanned
    status: str = "WAIT_BUYER_PAY"
    buyer_logon_id: str = ""
    paid_at: str = ""
    qr_code: str = ""
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def refunded(self) -> int:
        return sum(r.amount for r in self.refunds.values())


@dataclass
class Request:
    """One HTTP request the gateway received, and what it answered."""

    http_method: str
    path: str
    query: str
    body: str
    params: dict[str, str]
    duplicates: list[str]
    content_type: str
    method: str = ""
    biz: dict[str, Any] | None = None
    sign_content: str = ""
    signature_ok: bool | None = None
    received_at: float = 0.0
    reply: str = ""
    fault: str = ""


class FakeAlipay:
    def __init__(self, app_id: str, app_public_key, alipay_key: wire.KeyPair, sign_type: str = "RSA2") -> None:
        self.app_id = app_id
        self.app_public_key = app_public_key
        self.alipay_key = alipay_key
        self.sign_type = sign_type
        self.other_key = wire.KeyPair.generate()  # the "wrong key" replies are signed with
        self.trades: dict[str, Trade] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._seq = 0
        self.server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle and control

    def start(self) -> str:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                gateway._handle(self, "POST")

            def do_GET(self) -> None:
                gateway._handle(self, "GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/gateway.do"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def mark(self) -> int:
        """The number of requests so far, to look at the ones after it with `since`."""
        with self.lock:
            return len(self.requests)

    def since(self, mark: int) -> list[Request]:
        with self.lock:
            return list(self.requests[mark:])

    def _next_trade_no(self) -> str:
        self._seq += 1
        return datetime.now(BEIJING).strftime("%Y%m%d") + f"22001{self._seq:06d}{random.randrange(10**6):06d}"

    def scan(self, out_trade_no: str, buyer: str = "15912345620") -> Trade:
        """The payer scans a precreated code: the trade now exists for queries."""
        with self.lock:
            t = self.trades[out_trade_no]
            if t.trade_no is None:
                t.trade_no = self._next_trade_no()
            t.visible = True
            t.buyer_logon_id = buyer
            return t

    def pay(self, out_trade_no: str, buyer: str = "15912345620") -> Trade:
        """The payer pays (scanning first when needed)."""
        with self.lock:
            t = self.scan(out_trade_no, buyer) if not self.trades[out_trade_no].visible else self.trades[out_trade_no]
            t.status = "TRADE_SUCCESS"
            t.buyer_logon_id = buyer
            t.paid_at = beijing_now()
            return t

    def open_link(self, url: str) -> tuple[int, str]:
        """The payer opens a wap/page pay link: a real GET to this gateway."""
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    # ------------------------------------------------------------------ HTTP

    def _handle(self, h: BaseHTTPRequestHandler, http_method: str) -> None:
        received = time.monotonic()
        split = urllib.parse.urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw_body = h.rfile.read(length) if length else b""
        content_type = h.headers.get("Content-Type") or ""
        body = raw_body.decode("utf-8", "replace")
        pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        if http_method == "POST" and body and "x-www-form-urlencoded" in content_type.lower():
            pairs += urllib.parse.parse_qsl(body, keep_blank_values=True)
        params: dict[str, str] = {}
        duplicates = []
        for k, v in pairs:
            if k in params:
                duplicates.append(k)
            params[k] = v
        req = Request(http_method, split.path, split.query, body, params, duplicates, content_type,
                      received_at=received)
        with self.lock:
            self.requests.append(req)
        if split.path != "/gateway.do":
            self._send(h, 404, "text/plain", "not found")
            return
        status, ctype, reply, delay = self._answer(req)
        req.reply = reply
        if delay:
            time.sleep(delay)
        self._send(h, status, ctype, reply)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, ctype: str, text: str) -> None:
        data = text.encode("utf-8")
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _take_fault(self, method: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.method in (method, "*") and f.count > 0:
                    f.count -= 1
                    if f.count == 0:
                        self.faults.remove(f)
                    return f
        return None

    # ------------------------------------------------------------------ replies

    def _reply(self, method: str, payload: dict[str, Any], signer=None, unsigned: bool = False,
               key_name: str | None = None) -> str:
        text = wire.alipay_json(payload)
        if unsigned:
            signer = None
        elif signer is None:
            signer = self.alipay_key.private
        return wire.signed_body(key_name or wire.response_key(method), text, signer, self.sign_type)

    def _error_payload(self, sub_code: str, sub_msg: str = "") -> dict[str, Any]:
        code, msg, default_sub_msg = ERRORS[sub_code]
        return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg or default_sub_msg}

    def _answer(self, req: Request) -> tuple[int, str, str, float]:
        p = req.params
        method = p.get("method", "")
        req.method = method
        json_type = "text/html;charset=utf-8"

        def error(sub_code: str, sub_msg: str = "") -> tuple[int, str, str, float]:
            return 200, json_type, self._reply(method or "error", self._error_payload(sub_code, sub_msg)), 0.0

        if req.duplicates:
            return error("isv.invalid-parameter", "重复的参数: " + ",".join(req.duplicates))
        # Public parameters and the signature, as the gateway checks them before any business.
        if "sign" not in p:
            return error("isv.missing-signature")
        if p.get("app_id") != self.app_id:
            return error("isv.invalid-app-id")
        if method not in API_METHODS and method not in PAGE_METHODS:
            return error("isv.invalid-method")
        if p.get("sign_type") != self.sign_type:
            return error("isv.invalid-signature-type")
        req.sign_content = wire.sign_content(p)
        req.signature_ok = wire.verify(self.app_public_key, req.sign_content, p["sign"], self.sign_type)
        if not req.signature_ok:
            said = ERRORS["isv.invalid-signature"][2] + "，网关生成的验签字符串为：" + html.escape(req.sign_content)
            if req.http_method == "GET":
                page = f"<html><body>错误代码 invalid-signature 错误原因: {said}</body></html>"
                return 200, "text/html;charset=utf-8", page, 0.0
            return error("isv.invalid-signature", said)
        if not TIMESTAMP_RE.match(p.get("timestamp", "")):
            return error("isv.invalid-timestamp")
        if p.get("charset", "").lower() != "utf-8":
            return error("isv.invalid-charset")
        if p.get("format", "JSON").upper() != "JSON":
            return error("isv.invalid-format")
        try:
            biz = json.loads(p.get("biz_content", ""))
            if not isinstance(biz, dict):
                raise ValueError
        except ValueError:
            return error("isv.invalid-parameter", "biz_content 不是 JSON 对象")
        req.biz = biz

        if method in PAGE_METHODS:
            if req.http_method != "GET":
                return 200, "text/html;charset=utf-8", "<html><body>page methods are opened by the payer</body></html>", 0.0
            return self._open_page(method, biz)

        fault = self._take_fault(method)
        req.fault = fault.mode if fault else ""
        if fault is None:
            return 200, json_type, self._reply(method, self._business(method, biz)), 0.0
        if fault.mode == "error":
            return 200, json_type, self._reply(method, self._error_payload(fault.sub_code, fault.sub_msg)), 0.0
        if fault.mode == "error_response":
            payload = self._error_payload(fault.sub_code, fault.sub_msg)
            return 200, json_type, self._reply(method, payload, unsigned=not fault.signed, key_name="error_response"), 0.0
        if fault.mode == "http500":
            return 500, "text/html;charset=utf-8", "<html><body>500 Internal Server Error</body></html>", 0.0
        if fault.mode == "delay":
            payload = self._business(method, biz) if fault.apply else {"code": "10000", "msg": "Success"}
            return 200, json_type, self._reply(method, payload), fault.seconds
        if fault.mode == "pay_first":
            t = self._find(biz)
            if t is not None:
                self.pay(t.out_trade_no)
            return 200, json_type, self._reply(method, self._business(method, biz)), 0.0
        if fault.mode == "refund_hidden":
            payload = self._business(method, biz)
            t = self._find(biz)
            r = t.refunds.get(biz.get("out_request_no") or t.out_trade_no) if t else None
            if r is not None:
                r.hidden_queries = fault.hide
            return 200, json_type, self._reply(method, payload), 0.0
        payload = self._business(method, biz)
        if fault.mode == "quirks":
            if "nested_sign" in fault.quirks:
                payload["sign"] = "bm90IHRoZSBzaWduYXR1cmU="
            if "braces" in fault.quirks:
                payload["store_name"] = '店}{"x\\ "sign":"{'
            text = wire.alipay_json(payload)
            colon = " : " if "spaced" in fault.quirks else ":"
            body = wire.signed_body(wire.response_key(method), text, self.alipay_key.private, self.sign_type,
                                    colon=colon, sign_first="sign_first" in fault.quirks)
            if fault.old:
                assert fault.old in body, f"tamper target {fault.old!r} not in {body}"
                body = body.replace(fault.old, fault.new, 1)
            return 200, json_type, body, 0.0
        if fault.mode == "wrong_key":
            return 200, json_type, self._reply(method, payload, signer=self.other_key.private), 0.0
        if fault.mode == "no_sign":
            return 200, json_type, self._reply(method, payload, unsigned=True), 0.0
        if fault.mode == "tamper":
            body = self._reply(method, payload)
            assert fault.old in body, f"tamper target {fault.old!r} not in {body}"
            return 200, json_type, body.replace(fault.old, fault.new, 1), 0.0
        raise ValueError(f"unknown fault mode {fault.mode}")

    # ------------------------------------------------------------------ business

    def _find(self, biz: dict[str, Any]) -> Trade | None:
        with self.lock:
            if biz.get("out_trade_no"):
                t = self.trades.get(biz["out_trade_no"])
                if t is not None and biz.get("trade_no") and t.trade_no != biz["trade_no"]:
                    return None
                return t
            if biz.get("trade_no"):
                return next((t for t in self.trades.values() if t.trade_no == biz["trade_no"]), None)
        return None

    def _open_page(self, method: str, biz: dict[str, Any]) -> tuple[int, str, str, float]:
        page = "text/html;charset=utf-8"
        product = PAGE_METHODS[method]
        bad = self._check_order(biz)
        if bad or biz.get("product_code") != product:
            return 200, page, f"<html><body>错误代码 invalid-parameter {bad or 'product_code'}</body></html>", 0.0
        with self.lock:
            t = self.trades.get(biz["out_trade_no"])
            if t is None:
                t = Trade(biz["out_trade_no"], fen(biz["total_amount"]), biz["subject"], product)
                self.trades[t.out_trade_no] = t
            elif t.total != fen(biz["total_amount"]):
                return 200, page, "<html><body>错误代码 ACQ.CONTEXT_INCONSISTENT</body></html>", 0.0
            t.visible = True
            if t.trade_no is None:
                t.trade_no = self._next_trade_no()
        return 200, page, f"<html><body>收银台 {html.escape(t.subject)} ¥{yuan(t.total)}</body></html>", 0.0

    @staticmethod
    def _check_order(biz: dict[str, Any]) -> str:
        for k in ("out_trade_no", "total_amount", "subject"):
            if not isinstance(biz.get(k), str) or not biz[k]:
                return f"missing {k}"
        if len(biz["out_trade_no"]) > 64 or len(biz["subject"]) > 256:
            return "too long"
        if not AMOUNT_RE.match(biz["total_amount"]) or not (1 <= fen(biz["total_amount"]) <= 10_000_000_000):
            return "total_amount"
        return ""

    def _business(self, method: str, biz: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return getattr(self, "_" + method.split(".", 2)[2].replace(".", "_"))(biz)

    def _precreate(self, biz: dict[str, Any]) -> dict[str, Any]:
        bad = self._check_order(biz)
        if bad:
            return self._error_payload("ACQ.INVALID_PARAMETER", bad)
        t = self.trades.get(biz["out_trade_no"])
        if t is not None:
            if t.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                return self._error_payload("ACQ.TRADE_HAS_SUCCESS")
            if t.status == "TRADE_CLOSED":
                return self._error_payload("ACQ.TRADE_HAS_CLOSE")
            if t.total != fen(biz["total_amount"]) or t.subject != biz["subject"]:
                return self._error_payload("ACQ.CONTEXT_INCONSISTENT")
        else:
            t = Trade(biz["out_trade_no"], fen(biz["total_amount"]), biz["subject"], "FACE_TO_FACE_PAYMENT")
            t.qr_code = "https://qr.alipay.com/bax0" + "".join(random.choices("0123456789abcdefghijklmnopqrstuvwxyz", k=20))
            self.trades[t.out_trade_no] = t
        return {"code": "10000", "msg": "Success", "out_trade_no": t.out_trade_no, "qr_code": t.qr_code}

    def _query(self, biz: dict[str, Any]) -> dict[str, Any]:
        t = self._find(biz)
        if t is None or not t.visible:
            return self._error_payload("ACQ.TRADE_NOT_EXIST")
        paid = t.status in ("TRADE_SUCCESS", "TRADE_FINISHED") or (t.status == "TRADE_CLOSED" and t.paid_at)
        out: dict[str, Any] = {
            "code": "10000",
            "msg": "Success",
            "buyer_logon_id": t.buyer_logon_id,
            "buyer_pay_amount": yuan(t.total) if paid else "0.00",
            "buyer_user_id": "2088102177846880" if t.buyer_logon_id else "",
            "invoice_amount": yuan(t.total) if paid else "0.00",
            "out_trade_no": t.out_trade_no,
            "point_amount": "0.00",
            "receipt_amount": yuan(t.total) if paid else "0.00",
            "total_amount": yuan(t.total),
            "trade_no": t.trade_no,
            "trade_status": t.status,
        }
        if paid:
            out["send_pay_date"] = t.paid_at
            out["fund_bill_list"] = [{"amount": yuan(t.total), "fund_channel": "ALIPAYACCOUNT"}]
        if not out["buyer_logon_id"]:
            del out["buyer_logon_id"], out["buyer_user_id"]
        return out

    def _refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        t = self._find(biz)
        if t is None or not t.visible:
            return self._error_payload("ACQ.TRADE_NOT_EXIST")
        amount_text = biz.get("refund_amount")
        if not isinstance(amount_text, str) or not AMOUNT_RE.match(amount_text) or fen(amount_text) < 1:
            return self._error_payload("ACQ.INVALID_PARAMETER", "refund_amount")
        amount = fen(amount_text)
        number = biz.get("out_request_no") or t.out_trade_no
        fund_change = "Y"
        existing = t.refunds.get(number)
        if existing is not None:
            if existing.amount != amount:
                return self._error_payload("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
            fund_change = "N"  # a repeat of the same refund: nothing moves again
        else:
            if t.status not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                return self._error_payload("ACQ.TRADE_STATUS_ERROR")
            if t.refunded + amount > t.total:
                return self._error_payload("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
            t.refunds[number] = Refund(number, amount, beijing_now())
            if t.refunded == t.total:
                t.status = "TRADE_CLOSED"
        return {
            "code": "10000",
            "msg": "Success",
            "buyer_logon_id": t.buyer_logon_id,
            "buyer_user_id": "2088102177846880",
            "fund_change": fund_change,
            "gmt_refund_pay": t.refunds[number].time,
            "out_trade_no": t.out_trade_no,
            "refund_fee": yuan(t.refunded),  # Alipay: the trade's total refunded so far
            "send_back_fee": yuan(amount),
            "trade_no": t.trade_no,
        }

    def _fastpay_refund_query(self, biz: dict[str, Any]) -> dict[str, Any]:
        t = self._find(biz)
        if t is None or not t.visible:
            return self._error_payload("ACQ.TRADE_NOT_EXIST")
        number = biz.get("out_request_no") or t.out_trade_no
        r = t.refunds.get(number)
        if r is None or r.hidden_queries > 0:
            if r is not None:
                r.hidden_queries -= 1
            return {"code": "10000", "msg": "Success", "out_request_no": number, "out_trade_no": t.out_trade_no,
                    "trade_no": t.trade_no}
        return {
            "code": "10000",
            "msg": "Success",
            "gmt_refund_pay": r.time,
            "out_request_no": number,
            "out_trade_no": t.out_trade_no,
            "refund_amount": yuan(r.amount),
            "refund_status": "REFUND_SUCCESS",
            "total_amount": yuan(t.total),
            "trade_no": t.trade_no,
        }

    def _close(self, biz: dict[str, Any]) -> dict[str, Any]:
        t = self._find(biz)
        if t is None or not t.visible:
            return self._error_payload("ACQ.TRADE_NOT_EXIST")
        if t.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            return self._error_payload("ACQ.TRADE_STATUS_ERROR")
        t.status = "TRADE_CLOSED"
        return {"code": "10000", "msg": "Success", "out_trade_no": t.out_trade_no, "trade_no": t.trade_no}
