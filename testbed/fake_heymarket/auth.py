"""Heymarket's two credentials: a JWT signed with ``secret_id||secret_key`` (HS256), or an API key.

Tokens are checked the way the vendor does (signature, issuer, an integer ``iat`` at most
``TOKEN_LIFETIME`` old), so a client that mints or renews them wrongly is refused here too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time

#: Heymarket refuses a JWT this many seconds after its ``iat``.
TOKEN_LIFETIME = 300
#: Clock skew tolerated for an ``iat`` in the future.
IAT_SKEW = 30


def _b64url(segment: str) -> bytes:
    return base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)


def make_jwt(secret_id: str, secret_key: str, iat: int | None = None) -> str:
    """Mint a token the way the vendor documents, with stdlib only (no key-length warnings)."""
    claims = {"iss": secret_id, "iat": int(time.time()) if iat is None else iat}
    segments = [
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in ({"alg": "HS256", "typ": "JWT"}, claims)
    ]
    signing_input = ".".join(segments).encode()
    key = f"{secret_id}||{secret_key}".encode()
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return ".".join([*segments, base64.urlsafe_b64encode(signature).rstrip(b"=").decode()])


def check_jwt(token: str, secret_id: str, secret_key: str, now: float) -> str | None:
    """Why ``token`` is refused, or None if it is a valid Heymarket JWT right now."""
    parts = token.split(".")
    if len(parts) != 3:
        return "malformed token: not a JWT"
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error):
        return "malformed token: bad base64url or JSON"
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return "malformed token: header and claims must be JSON objects"
    if header.get("alg") != "HS256":
        return f"unsupported alg {header.get('alg')!r}: expected HS256"
    key = f"{secret_id}||{secret_key}".encode()
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        return "bad signature"
    if claims.get("iss") != secret_id:
        return f"wrong issuer {claims.get('iss')!r}"
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        return "iat missing or not an integer"
    if now - iat > TOKEN_LIFETIME:
        return f"token expired: iat is {int(now - iat)} s old, tokens live {TOKEN_LIFETIME} s"
    if iat - now > IAT_SKEW:
        return f"iat is {int(iat - now)} s in the future"
    return None


def authenticate(
    header: str | None, secret_id: str, secret_key: str, api_key: str | None
) -> tuple[str | None, str]:
    """``("jwt" | "api_key", "")`` for a good ``Authorization`` header, else ``(None, why)``."""
    if not header:
        return None, "missing Authorization header"
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None, "Authorization header must be 'Bearer <token>'"
    if api_key is not None and hmac.compare_digest(token, api_key):
        return "api_key", ""
    why = check_jwt(token, secret_id, secret_key, time.time())
    return ("jwt", "") if why is None else (None, why)
