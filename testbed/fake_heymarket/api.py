"""The vendor's endpoints: one handler function each, registered in :data:`ROUTES`.

The server does what all of them share (latency, the rate limit, auth, faults, the request log),
so a handler only turns a request body into a :class:`Reply`. Adding an endpoint is one function
and one row in ``ROUTES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from testbed.fake_heymarket.messages import MessageQuery
from testbed.fake_heymarket.reply import Reply, error_reply, json_reply
from testbed.fake_heymarket.wire import is_int, parse_ns

if TYPE_CHECKING:
    from testbed.fake_heymarket.fake import FakeHeymarket

LIST_PATH = "/v2/contacts/list"
INBOXES_PATH = "/v1/inboxes"
MESSAGES_PATH = "/v1/messages/all"
MESSAGES_COUNT_PATH = "/v1/messages/all/count"
CONTACTS_COUNT_PATH = "/v1/contacts/count"
TEAM_PATH = "/v1/team"
TAGS_PATH = "/v1/tags"
TEMPLATES_PATH = "/v1/templates"
SURVEYS_PATH = "/v1/surveys"
CUSTOM_FIELDS_PATH = "/v1/contact-fields"
CONVERSATIONS_PATH = "/v1/conversations"
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
    """``GET /v1/inboxes``: the account's inboxes, whole (no paging documented)."""
    return json_reply(200, fake.account.inboxes(fake.knobs))


def get_team(fake: FakeHeymarket, body: Any) -> Reply:
    """``GET /v1/team``: one team object holding its members (or what ``team_answer`` says)."""
    answer = fake.knobs.team_answer
    if answer == "403":
        return error_reply(403, "forbidden", "this key may not read the team")
    team = fake.account.team()
    if answer == "no-id":
        del team["id"]
    return json_reply(200, team)


def list_tags(fake: FakeHeymarket, body: Any) -> Reply:
    """``POST /v1/tags``: up to ``list_page_size`` tags updated before ``date``, newest first."""
    cursor = _before_cursor(body)
    if isinstance(cursor, str):
        return error_reply(400, "bad_data", cursor)
    return json_reply(200, fake.account.tag_page(cursor, fake.knobs))


def list_templates(fake: FakeHeymarket, body: Any) -> Reply:
    """``POST /v1/templates``: like tags."""
    cursor = _before_cursor(body)
    if isinstance(cursor, str):
        return error_reply(400, "bad_data", cursor)
    return json_reply(200, fake.account.template_page(cursor, fake.knobs))


def list_surveys(fake: FakeHeymarket, body: Any) -> Reply:
    """``POST /v1/surveys``: page ``page`` (from 1; 0 is 1) of ``limit`` (default 30) surveys."""
    if body is INVALID:
        return error_reply(400, "bad_data", "body is not valid JSON")
    if not isinstance(body, dict):
        return error_reply(400, "bad_data", "body must be a JSON object")
    limit = body.get("limit", 30)
    if not is_int(limit) or limit < 1:
        return error_reply(400, "bad_data", f"limit must be a positive integer, got {limit!r}")
    page = body.get("page", 1)
    if not is_int(page) or page < 0:
        return error_reply(400, "bad_data", f"page must be an integer from 1, got {page!r}")
    if fake.knobs.max_limit is not None:
        limit = min(limit, fake.knobs.max_limit)
    return json_reply(200, fake.account.survey_page(limit, page))


def list_custom_fields(fake: FakeHeymarket, body: Any) -> Reply:
    """``POST /v1/contact-fields``: every custom field (undocumented: no paging, body unused)."""
    if body is INVALID:
        return error_reply(400, "bad_data", "body is not valid JSON")
    return json_reply(200, fake.account.custom_field_list(fake.knobs))


def list_conversations(fake: FakeHeymarket, body: Any) -> Reply:
    """``POST /v1/conversations``: a page of a member's conversations in some inboxes.

    ``id`` (a member's user id) and ``filters`` (``inboxes`` required; ``closed`` and ``unread``
    booleans, false when left out) are required; ``date`` is the "updated before" cursor. Then
    the conversations of those inboxes change if so configured.
    """
    query = _conversation_query(body)
    if isinstance(query, str):
        return error_reply(400, "bad_data", query)
    user_id, inboxes, closed, unread, cursor = query
    knobs = fake.knobs
    status, message = fake.account.check_inboxes(user_id, inboxes, knobs)
    if status:
        return error_reply(status, "denied" if status == 403 else "not_found", message)
    page, visible = fake.account.conversation_page(user_id, inboxes, closed, unread, cursor, knobs)
    fake.account.churn_conversations(knobs.conversation_changes_per_request, visible)
    return json_reply(200, page)


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


def count_contacts(fake: FakeHeymarket, body: Any) -> Reply:
    """``POST /v1/contacts/count``: every contact, as a JSON string (as messages are counted).

    The docs only name this endpoint: the body is not read.
    """
    return json_reply(200, str(len(fake.store)))


ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", CONTACTS_COUNT_PATH): Endpoint(count_contacts),
    ("POST", LIST_PATH): Endpoint(list_contacts, sync=True),
    ("GET", INBOXES_PATH): Endpoint(list_inboxes, sync=True),
    ("GET", TEAM_PATH): Endpoint(get_team, sync=True),
    ("POST", TAGS_PATH): Endpoint(list_tags, sync=True),
    ("POST", TEMPLATES_PATH): Endpoint(list_templates, sync=True),
    ("POST", SURVEYS_PATH): Endpoint(list_surveys, sync=True),
    ("POST", CUSTOM_FIELDS_PATH): Endpoint(list_custom_fields, sync=True),
    ("POST", CONVERSATIONS_PATH): Endpoint(list_conversations, sync=True),
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


def _rfc3339(body: dict[str, Any], name: str) -> int | str | None:
    """The ns since the epoch of ``body[name]`` (None when absent), or the ``bad_data`` message."""
    if name not in body:
        return None
    value = body[name]
    try:
        if not isinstance(value, str):
            raise TypeError
        return parse_ns(value)
    except (TypeError, ValueError, OverflowError):
        return f"{name} must be an RFC 3339 timestamp, got {value!r}"


def _before_cursor(body: Any) -> int | str | None:
    """The ``date`` cursor of a tags or templates body (other fields, ``limit`` too, ignored)."""
    if body is INVALID:
        return "body is not valid JSON"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    return _rfc3339(body, "date")


def _conversation_query(body: Any) -> tuple[int, list[int], bool, bool, int | None] | str:
    """``(id, inboxes, closed, unread, date_ns)`` of a conversations body, or the ``bad_data``."""
    if body is INVALID:
        return "body is not valid JSON"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if "id" not in body:
        return "id is required: the user ID of a member of the inbox"
    user_id = body["id"]
    if not is_int(user_id):
        return f"id must be an integer user ID, got {user_id!r}"
    if "filters" not in body:
        return "filters is required"
    filters = body["filters"]
    if not isinstance(filters, dict):
        return f"filters must be an object, got {filters!r}"
    inboxes = filters.get("inboxes")
    if not isinstance(inboxes, list) or not inboxes or not all(is_int(i) for i in inboxes):
        return f"filters.inboxes must be a non-empty array of inbox IDs, got {inboxes!r}"
    flags = []
    for name in ("closed", "unread"):
        value = filters.get(name, False)
        if not isinstance(value, bool):
            return f"filters.{name} must be a boolean, got {value!r}"
        flags.append(value)
    cursor = _rfc3339(body, "date")
    if isinstance(cursor, str):
        return cursor
    return user_id, inboxes, flags[0], flags[1], cursor
