"""The vendor's endpoints: one handler function each, registered in :data:`ROUTES`.

The server does what all of them share (latency, the rate limit, auth, faults, the request log),
so a handler only turns a request body into a :class:`Reply`. Adding an endpoint is one function
and one row in ``ROUTES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from testbed.fake_heymarket.generator import INBOXES
from testbed.fake_heymarket.messages import MessageQuery
from testbed.fake_heymarket.reply import Reply, error_reply, json_reply
from testbed.fake_heymarket.wire import is_int, parse_ns

if TYPE_CHECKING:
    from testbed.fake_heymarket.fake import FakeHeymarket

LIST_PATH = "/v2/contacts/list"
INBOXES_PATH = "/v1/inboxes"
MESSAGES_PATH = "/v1/messages/all"
MESSAGES_COUNT_PATH = "/v1/messages/all/count"
#: The largest ``limit`` a messages body may ask for (the docs give none).
MESSAGES_MAX_LIMIT = 1000
#: The body a handler is given when the request's bytes are not JSON.
INVALID = object()


@dataclass(frozen=True)
class Endpoint:
    """A route's handler, and whether a sync pages through it."""

    handler: Callable[[FakeHeymarket, Any], Reply]
    #: Each request is logged in ``FakeHeymarket.requests`` and may be given a fault, as the
    #: requests of a sync are; lookups such as the inbox list are neither.
    sync: bool = False


def list_contacts(fake: FakeHeymarket, body: Any) -> Reply:
    """``POST /v2/contacts/list``: one page of contacts, then the data changes if so configured."""
    params = _list_params(body)
    if isinstance(params, str):
        return error_reply(400, "bad_data", params)
    knobs = fake.knobs
    page = fake.store.page(*params, knobs)
    fake.store.churn(knobs.changes_per_request, knobs.creates_per_request)
    return Reply(200, page)


def list_inboxes(fake: FakeHeymarket, body: Any) -> Reply:
    """``GET /v1/inboxes``: the account's inboxes."""
    return json_reply(200, list(INBOXES))


def list_messages(fake: FakeHeymarket, body: Any) -> Reply:
    """``POST /v1/messages/all``: one page of messages, then the data changes if so configured."""
    knobs = fake.knobs
    query = _message_query(body, knobs.messages_cursor_field)
    if isinstance(query, str):
        return error_reply(400, "bad_data", query)
    page = fake.message_store.page(query, knobs)
    fake.message_store.churn(knobs.message_changes_per_request, knobs.message_creates_per_request)
    return Reply(200, page)


def count_messages(fake: FakeHeymarket, body: Any) -> Reply:
    """``POST /v1/messages/all/count``: how many messages the cursor keeps, as a JSON string."""
    knobs = fake.knobs
    query = _message_query(body, knobs.messages_cursor_field)
    if isinstance(query, str):
        return error_reply(400, "bad_data", query)
    return json_reply(200, str(fake.message_store.count(query.cursor_ns, knobs)))


ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", LIST_PATH): Endpoint(list_contacts, sync=True),
    ("GET", INBOXES_PATH): Endpoint(list_inboxes),
    ("POST", MESSAGES_PATH): Endpoint(list_messages, sync=True),
    ("POST", MESSAGES_COUNT_PATH): Endpoint(count_messages),
}


def _list_params(body: Any) -> tuple[int, int, int | None, bool] | str:
    """``(limit, page, date_ns, ascending)`` from a list body, or the ``bad_data`` message."""
    if body is INVALID:
        return "body is not valid JSON"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    limit = body.get("limit", 30)
    if not is_int(limit) or not 1 <= limit <= 100:
        return f"limit must be an integer from 1 to 100, got {limit!r}"
    page = body.get("page", 0)
    if not is_int(page) or page < 0:
        return f"page must be a non-negative integer, got {page!r}"
    date_ns = None
    if "date" in body:
        date = body["date"]
        try:
            if not isinstance(date, str):
                raise TypeError
            date_ns = parse_ns(date)
        except (TypeError, ValueError, OverflowError):
            return f"date must be an RFC 3339 timestamp, got {date!r}"
    ascending = body.get("ascending", False)
    if not isinstance(ascending, bool):
        return f"ascending must be a boolean, got {ascending!r}"
    return limit, page, date_ns, ascending


def _message_query(body: Any, cursor_field: str) -> MessageQuery | str:
    """The query a messages body asks for, or the ``bad_data`` message.

    The cursor is read from ``cursor_field`` (``created_at`` or ``date``, a knob); the other field
    is ignored, as a server that does not know it would.
    """
    if body is INVALID:
        return "body is not valid JSON"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    limit = body.get("limit", 30)
    if not is_int(limit) or not 1 <= limit <= MESSAGES_MAX_LIMIT:
        return f"limit must be an integer from 1 to {MESSAGES_MAX_LIMIT}, got {limit!r}"
    page = body.get("page", 0)
    if not is_int(page) or page < 0:
        return f"page must be a non-negative integer, got {page!r}"
    cursor_ns = None
    if cursor_field in body:
        cursor = body[cursor_field]
        try:
            if not isinstance(cursor, str):
                raise TypeError
            cursor_ns = parse_ns(cursor)
        except (TypeError, ValueError, OverflowError):
            return f"{cursor_field} must be an RFC 3339 timestamp, got {cursor!r}"
    order = body.get("order", "created_at")
    if order not in ("created_at", "updated_at"):
        return f"order must be created_at or updated_at, got {order!r}"
    ascending = body.get("ascending", False)
    if not isinstance(ascending, bool):
        return f"ascending must be a boolean, got {ascending!r}"
    return MessageQuery(limit, page, cursor_ns, order, ascending)
