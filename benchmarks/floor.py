"""The floor: the least a client must do to copy every contact out of Heymarket.

Stdlib HTTP with one keep-alive connection, a freshly signed JWT per request, pages of 100 by
page number, and one Singer RECORD line per contact on stdout. No paging safety, no state, no
type work: every tap figure in the benchmark is a ratio to this.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import sys
import time
import urllib.parse

PAGE_SIZE = 100


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def jwt(secret_id: str, secret_key: str) -> str:
    header = _b64(b'{"alg":"HS256","typ":"JWT"}')
    claims = _b64(json.dumps({"iss": secret_id, "iat": int(time.time())}).encode())
    signing_input = header + b"." + claims
    key = f"{secret_id}||{secret_key}".encode()
    signature = _b64(hmac.new(key, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret-id", default="fake-secret-id")
    parser.add_argument("--secret-key", default="fake-secret-key")
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.url)
    connection = http.client.HTTPConnection(url.hostname, url.port)
    out = sys.stdout.buffer
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    page = 0
    while True:
        body = json.dumps({"limit": PAGE_SIZE, "page": page, "ascending": True})
        headers = {
            "Authorization": f"Bearer {jwt(args.secret_id, args.secret_key)}",
            "Content-Type": "application/json",
        }
        connection.request("POST", "/v2/contacts/list", body, headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            sys.exit(f"HTTP {response.status}: {payload[:200]!r}")
        contacts = json.loads(payload)
        for contact in contacts:
            message = {"type": "RECORD", "stream": "contacts", "record": contact}
            message["time_extracted"] = stamp
            out.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")
        if len(contacts) < PAGE_SIZE:
            break
        page += 1
    out.flush()


if __name__ == "__main__":
    main()
