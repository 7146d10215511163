"""What every scenario shares: the keys, the fake gateway, how a payment-mcp process is started
with the Alipay variables, and small helpers over results and recorded requests."""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from datetime import datetime

from jsonschema import Draft202012Validator

import wire
from gateway import BEIJING, FakeAlipay, Request
from harness import Checks, Result, Server

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Ctx:
    def __init__(self, binary: str, workdir: str, check: Checks, sign_type: str = "RSA2",
                 app_id: str = "2021000122671080") -> None:
        self.binary = binary
        self.workdir = workdir
        self.check = check
        self.sign_type = sign_type
        self.app = wire.KeyPair.generate()  # the merchant's application key (AP_APP_KEY)
        self.alipay = wire.KeyPair.generate()  # "Alipay's" key (AP_PUB_KEY is its public half)
        self.gateway = FakeAlipay(app_id, self.app.public, self.alipay, sign_type)
        self.gateway.start()
        self.servers: list[Server] = []
        self.misconfigured: list[tuple[int, int]] = []  # request ranges sent with wrong keys on purpose

    def secrets(self) -> list[str]:
        """Key material that must never appear in any output: the private key in every encoding,
        AP_PUB_KEY (documented as scrubbed like a secret), and 64-character slices of each body so
        that a partial or re-wrapped echo is caught too."""
        out = self.app.secrets()
        for body in (self.app.pkcs8_body(), self.app.pkcs1_body(), self.alipay.spki_body()):
            out += _slices(body)
        return out

    def env(self, **over: str | None) -> dict[str, str]:
        home = os.path.join(self.workdir, "home")
        os.makedirs(home, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "TZ": "America/Los_Angeles",  # far from UTC+8: timestamps must still be Beijing time
            "AP_APP_ID": self.gateway.app_id,
            "AP_APP_KEY": self.app.pkcs8_body(),
            "AP_PUB_KEY": self.alipay.spki_body(),
            "PAYMENT_API_BASE_URL": self.gateway.url,
        }
        if self.sign_type != "RSA2":
            env["AP_ENCRYPTION_ALGO"] = self.sign_type
        for k, v in over.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        env.setdefault("PAYMENT_LEDGER", os.path.join(self.workdir, f"ledger-{len(self.servers)}.sqlite3"))
        return env

    def server(self, label: str, **over: str | None) -> Server:
        s = Server(self.binary, self.env(**over), self.workdir, label)
        self.servers.append(s)
        return s

    # ---------------------------------------------------------------- requests

    def sent(self, mark: int, method: str | None = None) -> list[Request]:
        return [r for r in self.gateway.since(mark) if method is None or r.method == method]

    def nothing_sent(self, cid: str, what: str, mark: int) -> bool:
        reqs = self.gateway.since(mark)
        return self.check(cid, f"{what}: nothing sent to the gateway", not reqs,
                          [f"{r.http_method} {r.method} {r.biz}" for r in reqs])

    # ---------------------------------------------------------------- results

    def expect_error(self, cid: str, what: str, r: Result, kinds: str | tuple[str, ...]) -> bool:
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        return self.check(cid, f"{what}: error kind {'/'.join(kinds)}",
                          r.is_error and r.kind in kinds and r.s.get("success") is False, r.brief())

    def expect_ok(self, cid: str, what: str, r: Result) -> bool:
        return self.check(cid, f"{what}: succeeds", r.ok, r.brief())

    def texts_of(self, r: Result) -> str:
        return json.dumps(r.raw, ensure_ascii=False)

    def validate_outputs(self, server: Server) -> None:
        """Every structuredContent matches its tool's published outputSchema (Draft 2020-12)."""
        bad = []
        count = 0
        for r in server.results:
            schema = server.tools.get(r.tool, {}).get("outputSchema")
            if schema is None or r.protocol_error:
                continue
            count += 1
            errors = sorted(Draft202012Validator(schema).iter_errors(r.structured), key=str)
            if errors:
                bad.append(f"{r.tool}: {errors[0].message[:300]} at {list(errors[0].absolute_path)}")
        self.check("S", f"{server.prefix.rsplit('/', 1)[-1]}: all {count} structuredContent match outputSchema",
                   not bad, bad[:5])

    def check_stdout_and_secrets(self, server: Server) -> None:
        label = server.prefix.rsplit("/", 1)[-1]
        raw = server.stdout_bytes()
        bad_lines = []
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
                if not (isinstance(msg, dict) and msg.get("jsonrpc") == "2.0"):
                    bad_lines.append(line[:200])
            except ValueError:
                bad_lines.append(line[:200])
        self.check("K", f"{label}: stdout carries only JSON-RPC 2.0 lines", not bad_lines and raw, bad_lines[:3])
        # JSON text escapes "/" only optionally; compare on both the raw text and its unescaped form.
        out_text = raw.decode("utf-8", "replace")
        haystacks = {"stdout": out_text + out_text.replace("\\/", "/"), "stderr": server.stderr_text()}
        secrets = self.secrets() + _slices(server.env.get("AP_APP_KEY", "")) + _slices(server.env.get("AP_PUB_KEY", ""))
        for where, text in haystacks.items():
            leaked = [s[:16] + "..." for s in secrets if s in text]
            self.check("K", f"{label}: no key material in {where}", not leaked, leaked[:3])


# -------------------------------------------------------------------- parsing helpers


def beijing_skew(timestamp: str) -> float | None:
    """Seconds between a `yyyy-MM-dd HH:mm:ss` read as Beijing time and now; None if malformed."""
    try:
        t = datetime.strptime(timestamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except (TypeError, ValueError):
        return None
    return abs((datetime.now(BEIJING) - t).total_seconds())


def link_params(url: str) -> tuple[str, dict[str, str]]:
    split = urllib.parse.urlsplit(url)
    base = urllib.parse.urlunsplit((split.scheme, split.netloc, split.path, "", ""))
    return base, dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))


def markdown_link(text: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"\[(.+)\]\((\S+)\)", text or "")
    return (m.group(1), m.group(2)) if m else None


def png_ok(r: Result) -> bool:
    for img in r.images:
        if img.get("mimeType") == "image/png":
            try:
                return base64.b64decode(img.get("data", "")).startswith(PNG_MAGIC)
            except ValueError:
                return False
    return False


def contains_all(text: str, words: list[str]) -> bool:
    low = text.lower()
    return all(any(alt.lower() in low for alt in w.split("|")) for w in words)


def _slices(key_text: str) -> list[str]:
    """A key as given, its bare base64 body, and 64-character slices of that body."""
    body = "".join(line.strip() for line in key_text.splitlines() if not line.startswith("-----"))
    if len(body) < 128:
        return []
    return [key_text, body] + [body[i:i + 64] for i in range(64, len(body) - 64, 64)]
