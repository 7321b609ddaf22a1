"""A faithful, fast fake of Heymarket's API on a real loopback HTTP server.

Acceptance tests, the demo and the benchmarks talk to it over real sockets, so it reproduces what a
client can observe of the vendor: JWT / API-key auth, body validation with ``bad_data`` errors,
date filtering and paging, Go-style timestamps, rate limiting, faults (5xx, HTML pages, cut
connections, hangs, truncated JSON) and data that changes between requests. Where the vendor's
behaviour is unknown, or misbehaves in ways a client must catch, it is a knob (``knobs.py``).

One module per concern: ``wire`` (Go's time and JSON formats), ``generator`` (contacts and
messages), ``store`` (the contacts), ``messages`` (the messages), ``account`` (inboxes, the
team, tags, templates, surveys, custom fields and conversations), ``auth``, ``limits``,
``faults``, ``knobs``, ``api`` and ``admin`` (the endpoints, one handler each in a routing table),
``server`` (HTTP) and ``fake`` (``FakeHeymarket``). Run it alone with
``python -m testbed.fake_heymarket``.
"""

from testbed.fake_heymarket.api import (
    CONVERSATIONS_PATH,
    CUSTOM_FIELDS_PATH,
    INBOXES_PATH,
    LIST_PATH,
    MESSAGES_COUNT_PATH,
    MESSAGES_PATH,
    SURVEYS_PATH,
    TAGS_PATH,
    TEAM_PATH,
    TEMPLATES_PATH,
)
from testbed.fake_heymarket.auth import IAT_SKEW, TOKEN_LIFETIME, make_jwt
from testbed.fake_heymarket.fake import FakeHeymarket
from testbed.fake_heymarket.faults import FAULT_KINDS
from testbed.fake_heymarket.knobs import MESSAGES_PAGES, ORDERS, TIE_ORDERS, Knobs
from testbed.fake_heymarket.wire import format_go_time, parse_time

__all__ = [
    "CONVERSATIONS_PATH",
    "CUSTOM_FIELDS_PATH",
    "FAULT_KINDS",
    "IAT_SKEW",
    "INBOXES_PATH",
    "LIST_PATH",
    "MESSAGES_COUNT_PATH",
    "MESSAGES_PAGES",
    "MESSAGES_PATH",
    "ORDERS",
    "SURVEYS_PATH",
    "TAGS_PATH",
    "TEAM_PATH",
    "TEMPLATES_PATH",
    "TIE_ORDERS",
    "TOKEN_LIFETIME",
    "FakeHeymarket",
    "Knobs",
    "format_go_time",
    "make_jwt",
    "parse_time",
]
