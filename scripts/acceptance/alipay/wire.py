"""Alipay OpenAPI v2 wire rules, written from the contract (docs/alipay.md, the shared spec), not
from payment-mcp's code: RSA keys, the request sign content, response signing the way Alipay does
it (over the exact raw text of the `..._response` value, with `\\/` escapes), the brace-counting
extraction a client must do, and notifications.

Everything here is plain functions over `cryptography` keys, so that the fake gateway, the checks
and the self-test (which holds these functions against Alipay's own Python SDK) share one copy.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HASHES = {"RSA2": hashes.SHA256, "RSA": hashes.SHA1}


@dataclass
class KeyPair:
    """One RSA key pair, with the encodings Alipay's tools hand out."""

    private: rsa.RSAPrivateKey

    @staticmethod
    def generate(bits: int = 2048) -> KeyPair:
        return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @property
    def public(self) -> rsa.RSAPublicKey:
        return self.private.public_key()

    def pkcs8_body(self) -> str:
        """The base64 body of the PKCS#8 DER (`MIIEv...`): what Alipay's key tool calls 应用私钥."""
        der = self.private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return base64.b64encode(der).decode()

    def pkcs1_body(self) -> str:
        """The base64 body of the PKCS#1 DER (`MIIEo/MIIEp...`), what Alipay's Python SDK loads."""
        der = self.private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return base64.b64encode(der).decode()

    def pkcs8_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def spki_body(self) -> str:
        """The base64 body of the SPKI DER (`MIIBIjAN...`): how Alipay hands out its public key."""
        der = self.public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def secrets(self) -> list[str]:
        """Every text form of the private key that must never be echoed."""
        return [self.pkcs8_body(), self.pkcs1_body(), self.pkcs8_pem()]


def sign(key: rsa.RSAPrivateKey, content: str, sign_type: str = "RSA2") -> str:
    """SHA256withRSA (RSA2) or SHA1withRSA (RSA), PKCS#1 v1.5, standard padded base64."""
    sig = key.sign(content.encode("utf-8"), padding.PKCS1v15(), HASHES[sign_type]())
    return base64.b64encode(sig).decode()


def verify(key: rsa.RSAPublicKey, content: str | bytes, signature: str, sign_type: str = "RSA2") -> bool:
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, TypeError):
        return False
    try:
        key.verify(raw, data, padding.PKCS1v15(), HASHES[sign_type]())
    except InvalidSignature:
        return False
    return True


def public_key_from_spki_body(body: str) -> rsa.RSAPublicKey:
    key = serialization.load_der_public_key(base64.b64decode(body))
    assert isinstance(key, rsa.RSAPublicKey)
    return key


# ------------------------------------------------------------------------------------------------
# Requests


def sign_content(params: dict[str, str]) -> str:
    """Every parameter except `sign` (`sign_type` included), empty values left out, sorted by key in
    byte order, `key=value` joined with `&`, raw values (docs/alipay.md section 2)."""
    items = [(k, v) for k, v in params.items() if k != "sign" and v is not None and v != ""]
    items.sort(key=lambda kv: kv[0].encode("utf-8"))
    return "&".join(f"{k}={v}" for k, v in items)


def signed_params(params: dict[str, str], key: rsa.RSAPrivateKey, sign_type: str = "RSA2") -> dict[str, str]:
    out = {k: v for k, v in params.items() if v not in (None, "")}
    out["sign_type"] = sign_type
    out["sign"] = sign(key, sign_content(out), sign_type)
    return out


# ------------------------------------------------------------------------------------------------
# Responses


def alipay_json(obj: object) -> str:
    """Compact JSON the way Alipay's gateway writes it: raw UTF-8, and `/` escaped as `\\/`.

    The `/` only ever occurs inside strings in JSON text, so escaping it in the serialised text is
    the same as escaping it in every string."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")


def response_key(method: str) -> str:
    return method.replace(".", "_") + "_response"


def signed_body(key_name: str, payload_text: str, signer: rsa.RSAPrivateKey | None, sign_type: str = "RSA2",
                colon: str = ":", sign_first: bool = False) -> str:
    """`{"<key>":<payload_text>,"sign":"..."}` signed over the exact payload text. `signer=None`
    leaves the sign out (unsigned replies). `colon` lets a reply put whitespace around the `:`s,
    `sign_first` puts the sign before the response object (both legal JSON a client must read)."""
    response = '"' + key_name + '"' + colon + payload_text
    if signer is None:
        return "{" + response + "}"
    signature = '"sign"' + colon + '"' + sign(signer, payload_text, sign_type) + '"'
    parts = [signature, response] if sign_first else [response, signature]
    return "{" + (" , " if colon != ":" else ",").join(parts) + "}"


def extract_signed_text(body: str, key_name: str) -> str | None:
    """The exact substring that is the value of `key_name`: from its `{` to the matching `}`,
    counting braces outside strings and honouring backslash escapes (docs/alipay.md section 3)."""
    at = body.find('"' + key_name + '"')
    if at < 0:
        return None
    start = body.find("{", at + len(key_name) + 2)
    if start < 0:
        return None
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(body)):
        c = body[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
            continue
        if c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return body[start:i + 1]
    return None


# ------------------------------------------------------------------------------------------------
# Notifications


def notification_form(fields: dict[str, str], key: rsa.RSAPrivateKey, sign_type: str = "RSA2") -> str:
    """A notification as Alipay posts it: form-encoded; signed over every field except `sign` and
    `sign_type`, values as decoded (docs/alipay.md section 5)."""
    content = sign_content({k: v for k, v in fields.items() if k != "sign_type"})
    all_fields = dict(fields)
    all_fields["sign_type"] = sign_type
    all_fields["sign"] = sign(key, content, sign_type)
    return urllib.parse.urlencode(all_fields, quote_via=urllib.parse.quote)


def notification_content(form: str) -> tuple[str, str, str]:
    """(sign content, sign, sign_type) of a form-encoded notification, values decoded once."""
    pairs = urllib.parse.parse_qsl(form, keep_blank_values=True)
    fields = dict(pairs)
    sig = fields.pop("sign", "")
    st = fields.pop("sign_type", "RSA2")
    return sign_content(fields), sig, st
