"""Authentication for the Heymarket API.

Heymarket accepts a short-lived HS256 JWT minted from the API Secret ID and Key, or (legacy,
planned for deprecation by the vendor) a team API key sent as the bearer token.

The JWT is signed with the standard library, byte for byte as PyJWT would sign it: importing
PyJWT (and the ``cryptography`` package it loads) took 0.05 to 0.08 s of every run's start-up,
for one HMAC a minute.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import typing as t

from singer_sdk.authenticators import APIAuthenticatorBase

if t.TYPE_CHECKING:
    import requests

#: Heymarket refuses a token 5 minutes after its ``iat``.
TOKEN_LIFETIME_SECONDS = 300
#: What a bearer token may consist of: printable ASCII without spaces.
_HEADER_SAFE = re.compile(r"[!-~]+")
#: Reuse a token for at most this long: far inside its lifetime, so a request that is paced,
#: retried or slow to answer never arrives with an expired token.
TOKEN_REUSE_SECONDS = 60


def _base64url(data: bytes) -> bytes:
    """Base64url without padding, as JWTs carry their parts."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


#: The JOSE header as PyJWT writes it (keys sorted, no spaces), encoded.
_JWT_HEADER = _base64url(b'{"alg":"HS256","typ":"JWT"}')


def hs256_jwt(claims: dict[str, t.Any], key: str) -> str:
    """A compact HS256 JWT of ``claims`` (in their order), as ``jwt.encode`` makes it."""
    payload = json.dumps(claims, separators=(",", ":")).encode()
    signing_input = _JWT_HEADER + b"." + _base64url(payload)
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _base64url(signature)).decode()


class CredentialsError(ValueError):
    """The configured credentials cannot be used; the message names the setting, never its value."""


class HeymarketJWTAuthenticator(APIAuthenticatorBase):
    """Signs requests with a JWT (``iss`` = secret id, key ``"<id>||<key>"``), renewed every minute."""

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._secret_id = secret_id
        self._signing_key = f"{secret_id}||{secret_key}"
        self._clock = clock
        self._token = ""
        self._issued_at = -1

    def __repr__(self) -> str:
        """Never show the signing key, even in a debugger or a traceback's locals."""
        return f"{type(self).__name__}(secret_id={self._secret_id!r})"

    def renew(self) -> None:
        """Mint a new token for the next request: a retry never reuses the token that failed."""
        self._issued_at = -1

    def token(self) -> str:
        """The current bearer token, minted again once it is a minute old."""
        now = int(self._clock())
        if self._issued_at < 0 or not 0 <= now - self._issued_at < TOKEN_REUSE_SECONDS:
            self._token = hs256_jwt({"iss": self._secret_id, "iat": now}, self._signing_key)
            self._issued_at = now
        return self._token

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Set ``Authorization: Bearer <jwt>`` on each request (and each retry) as it is sent."""
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


class HeymarketAPIKeyAuthenticator(APIAuthenticatorBase):
    """Legacy team API key, sent as ``Authorization: Bearer <key>``."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        api_key = api_key.strip()
        if not _HEADER_SAFE.fullmatch(api_key):
            # Checked here because the HTTP client's own error would quote the header, key and all.
            raise CredentialsError(
                "api_key: contains characters an API key cannot have (spaces, line breaks or "
                "non-ASCII); copy it again from Heymarket"
            )
        self._api_key = api_key

    def __repr__(self) -> str:
        """Never show the key."""
        return f"{type(self).__name__}(api_key=<redacted>)"

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Set the bearer header on each request as it is sent."""
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        return request


def authenticator_for(config: t.Mapping[str, t.Any]) -> APIAuthenticatorBase:
    """The authenticator the (already validated) config asks for."""
    if config.get("api_key"):
        return HeymarketAPIKeyAuthenticator(config["api_key"])
    return HeymarketJWTAuthenticator(config["api_secret_id"], config["api_secret_key"])
