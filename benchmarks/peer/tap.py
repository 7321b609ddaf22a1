"""The SDK-defaults peer: the Heymarket tap a user gets from a quick singer-sdk cookiecutter.

Defaults throughout (JSON writer, recursive type conformance, SDK request loop and page-number
paginator, a JWT per request), the same schema and pages of 100. A benchmark reference only:
it pages by offset, which can lose contacts, and is not shipped.
"""

from __future__ import annotations

import time
import typing as t

import jwt
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.authenticators import APIAuthenticatorBase
from singer_sdk.pagination import BasePageNumberPaginator
from singer_sdk.streams import RESTStream

from tap_heymarket.streams import ContactsStream


class JWTAuth(APIAuthenticatorBase):
    def __init__(self, secret_id: str, secret_key: str) -> None:
        super().__init__()
        self.secret_id, self.secret_key = secret_id, secret_key

    def authenticate_request(self, request: t.Any) -> t.Any:
        claims = {"iss": self.secret_id, "iat": int(time.time())}
        token = jwt.encode(claims, f"{self.secret_id}||{self.secret_key}", algorithm="HS256")
        request.headers["Authorization"] = f"Bearer {token}"
        return request


class Paginator(BasePageNumberPaginator):
    def has_more(self, response: t.Any) -> bool:
        return len(response.json()) == 100


class Contacts(RESTStream):
    name = "contacts"
    path = "/v2/contacts/list"
    http_method = "POST"
    primary_keys = ("id",)
    replication_key = "updated"
    records_jsonpath = "$[*]"
    schema = ContactsStream.schema

    @property
    def url_base(self) -> str:
        return self.config["api_url"]

    @property
    def authenticator(self) -> JWTAuth:
        return JWTAuth(self.config["api_secret_id"], self.config["api_secret_key"])

    def get_new_paginator(self) -> Paginator:
        return Paginator(0)

    def prepare_request_payload(self, context: t.Any, next_page_token: t.Any) -> dict:
        return {"limit": 100, "page": next_page_token or 0, "ascending": True}


class TapHeymarketPeer(Tap):
    name = "tap-heymarket-peer"
    config_jsonschema = th.PropertiesList(
        th.Property("api_url", th.StringType, required=True),
        th.Property("api_secret_id", th.StringType, required=True),
        th.Property("api_secret_key", th.StringType, required=True),
    ).to_dict()

    def discover_streams(self) -> list[Contacts]:
        return [Contacts(tap=self)]


if __name__ == "__main__":
    TapHeymarketPeer.cli()
