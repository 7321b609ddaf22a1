"""``FakeHeymarket``: one fake account (contacts, knobs, faults, limits) and its server's lifecycle.

Tests and scripts drive it in-process through these methods; a harness in another process uses
the ``/_admin/`` endpoints, which call the same ones.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
import threading
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from testbed.fake_heymarket.account import AccountStore
from testbed.fake_heymarket.faults import FaultQueue
from testbed.fake_heymarket.generator import TEAM_ID
from testbed.fake_heymarket.knobs import Knobs
from testbed.fake_heymarket.limits import RateLimiter
from testbed.fake_heymarket.messages import MessageStore
from testbed.fake_heymarket.server import Server, Traffic
from testbed.fake_heymarket.store import ContactStore
from testbed.fake_heymarket.wire import parse_ns

_T = TypeVar("_T")


def _with_knob_attributes(cls: type[_T]) -> type[_T]:
    """Make each knob an attribute too (``fake.latency = 0.3``), checked like ``configure()``."""

    def knob(field: dataclasses.Field[Any]) -> property:
        def get(fake: Any) -> Any:
            return getattr(fake.knobs, field.name)

        def set(fake: Any, value: Any) -> None:
            fake.configure(**{field.name: value})

        return property(get, set, doc=field.metadata["help"])

    for field in dataclasses.fields(Knobs):
        setattr(cls, field.name, knob(field))
    return cls


@_with_knob_attributes
class FakeHeymarket:
    """The fake API: contact and message stores plus behaviour knobs, served over HTTP."""

    def __init__(
        self,
        *,
        secret_id: str = "fake-secret-id",
        secret_key: str = "fake-secret-key",
        api_key: str | None = None,
        contacts: int = 0,
        seed: int = 0,
        start: str = "2024-01-01T00:00:00Z",
        tie_groups: int = 0,
        tie_size: int = 0,
        messages: int = 0,
        broadcasts: int = 0,
        broadcast_size: int = 0,
        conversations: int | None = None,
        tags: int = 40,
        templates: int = 35,
        surveys: int = 12,
        custom_fields: int = 6,
        list_tie_size: int = 0,
        team_id: int = TEAM_ID,
        port: int = 0,
        knobs: Knobs | None = None,
    ) -> None:
        """Make the account: ``contacts`` contacts and ``messages`` messages, dated from ``start``.

        ``tie_groups`` of ``tie_size`` contacts share one ``updated``. Of the ``messages``
        (dated from ``start`` to shortly before today began, UTC), ``broadcasts`` are broadcasts
        of ``broadcast_size`` messages sharing one ``broadcast_id`` and, for the first, third and
        so on, one ``date`` to the µs; the others are sent over one second (fractions differ).

        The messages' ``conversations`` (default one per ten messages, at least one) are those
        ``POST /v1/conversations`` lists; the account also has ``tags``, ``templates``,
        ``surveys`` and ``custom_fields`` (the first 12 tags are those contacts carry, the first
        6 custom fields the keys of contacts' ``custom``). ``list_tie_size`` tags, templates and
        conversations (closed ones of inbox 1201) share one ``updated``, so that a tie can be
        larger than a page.

        ``team_id`` is the account's team (``GET /v1/team``), which its contacts, tags,
        templates, custom fields and inboxes carry. Two fakes with the same ``seed`` and
        different team ids are two accounts whose objects share their ids, as Heymarket does not
        say ids are unique across accounts.
        """
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.api_key = api_key
        self.port = port
        #: The behaviour knobs; replaced as a whole by configure(), so a request sees one set.
        self.knobs = Knobs() if knobs is None else knobs
        self._knobs_lock = threading.Lock()
        self.team_id = team_id
        self.store = ContactStore(
            contacts=contacts,
            seed=seed,
            start=start,
            tie_groups=tie_groups,
            tie_size=tie_size,
            team_id=team_id,
        )
        self.message_store = MessageStore(
            messages=messages,
            seed=seed,
            start=start,
            broadcasts=broadcasts,
            broadcast_size=broadcast_size,
            conversations=conversations,
            conversation_tie_size=list_tie_size,
        )
        self.account = AccountStore(
            seed=seed,
            messages=self.message_store,
            tags=tags,
            templates=templates,
            surveys=surveys,
            custom_fields=custom_fields,
            list_tie_size=list_tie_size,
            team_id=team_id,
        )
        self.faults = FaultQueue(random.Random(seed + 1))
        self.limiter = RateLimiter()
        self.traffic = Traffic()
        self._server: Server | None = None

    # ---- what the server saw

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Each sync request (path, body, status, auth, time, request_id, fault), oldest first."""
        return self.traffic.requests

    @property
    def status_counts(self) -> collections.Counter[int]:
        """How many API answers had each status."""
        return self.traffic.status_counts

    @property
    def rate_limited(self) -> int:
        """How many API answers were 429s."""
        return self.traffic.rate_limited

    @property
    def max_in_flight(self) -> int:
        """The most API requests handled at once."""
        return self.traffic.max_in_flight

    # ---- lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("FakeHeymarket is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHeymarket:
        """Bind 127.0.0.1 (a free port unless ``port`` was given) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("FakeHeymarket is already started")
        self._server = Server(self, self.port)
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections, then wake sleeping handlers (to fail unanswered)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> FakeHeymarket:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- behaviour

    def configure(self, **knobs: Any) -> None:
        """Set behaviour knobs by name; all are checked (see ``Knobs``) before any applies."""
        with self._knobs_lock:
            self.knobs = self.knobs.changed(**knobs)

    def queue_faults(self, *kinds: str) -> None:
        """Give the next sync requests these faults, in order, before ``fail_rate`` applies."""
        self.faults.queue(kinds)

    # ---- data

    def contacts(self) -> list[dict[str, Any]]:
        """Deep copies of every contact, sorted by (updated, id), exactly as served."""
        return json.loads(self.store.all_json())

    def contact(self, id: Any) -> dict[str, Any]:
        """Return a deep copy of one contact, as served; KeyError if unknown."""
        return self.store.contact(id)

    def update_contacts(
        self, n: int | None = None, ids: Sequence[int] | None = None, *, same_time: bool = False
    ) -> list[int]:
        """Write to ``ids`` (or ``n`` random contacts): rev+1, new name/custom, newest ``updated``.

        ``same_time`` gives the whole batch one ``updated`` (a bulk edit), else each its own.
        """
        return self.store.update(n, ids, same_time=same_time)

    def create_contacts(self, n: int, *, same_time: bool = False) -> list[int]:
        """Create ``n`` contacts with ids above all others, rev 1, created = updated = now."""
        return self.store.create(n, same_time=same_time)

    def delete_contacts(self, ids: Iterable[int]) -> None:
        """Delete for good (the vendor says deletion is permanent); KeyError if unknown."""
        self.store.delete(ids)

    def add_raw(self, record: dict[str, Any]) -> None:
        """Insert ``record`` as-is (bad-data tests); an unparseable ``updated`` sorts it first."""
        self.store.add_raw(record)

    def add_raw_json(self, text: str, updated: str | None, id: int | None) -> None:
        r"""Insert one contact's exact JSON ``text``, sorted by ``updated`` and ``id``.

        For what ``add_raw`` cannot write: a lone ``\ud800`` JSON escape, or a lone surrogate
        character, which goes out as the invalid UTF-8 bytes ED A0 80.
        """
        self.store.add_raw_json(text, updated, id)

    # ---- messages

    def all_messages(self) -> list[dict[str, Any]]:
        """Deep copies of every message, sorted by (date, id), exactly as served."""
        return json.loads(self.message_store.all_json())

    def message(self, id: Any) -> dict[str, Any]:
        """Return a deep copy of one message, as served; KeyError if unknown."""
        return self.message_store.message(id)

    def message_count(self) -> int:
        """How many messages the account holds."""
        return len(self.message_store)

    def create_message(self, **fields: Any) -> dict[str, Any]:
        """Create a message dated now (or ``date``), generated then overridden by ``fields``.

        Its ``updated`` is its ``date`` unless given; its id is above all others unless given.
        """
        date_us = parse_ns(fields["date"]) // 1000 if "date" in fields else None
        return json.loads(self.message_store.create(fields, date_us=date_us))

    def broadcast(self, size: int, at: str | None = None) -> list[dict[str, Any]]:
        """Send a broadcast: ``size`` messages sharing one ``broadcast_id`` and ``date`` (``at``)."""
        at_us = None if at is None else parse_ns(at) // 1000
        return [json.loads(text) for text in self.message_store.broadcast(size, at_us)]

    def change_message(self, id: int, **fields: Any) -> dict[str, Any]:
        """Edit a message: set ``fields`` (else a new status and flag), ``updated`` now unless given.

        Its ``date`` stays; KeyError if ``id`` is unknown.
        """
        return json.loads(self.message_store.change(id, fields))

    def add_raw_message_json(self, text: str) -> None:
        """Insert one message's exact JSON ``text`` (bad-data tests), sorted by its ``date``.

        A ``date`` that does not parse sorts it before all others; ``updated`` places it in the
        ``updated_at`` order when it parses, else ``date`` does.
        """
        self.message_store.add_raw_json(text)

    # ---- the rest of the account

    def inboxes(self) -> list[dict[str, Any]]:
        """Every inbox, as stored (``invited`` a boolean whatever ``inbox_invited`` says)."""
        return self.account.inbox_list()

    def team(self) -> dict[str, Any]:
        """The team object, as ``GET /v1/team`` serves it."""
        return self.account.team()

    def tags(self) -> list[dict[str, Any]]:
        """Every tag, sorted by ``(updated, id)``."""
        return self.account.tags()

    def templates(self) -> list[dict[str, Any]]:
        """Every template (archived ones too), sorted by ``(updated, id)``."""
        return self.account.templates()

    def surveys(self) -> list[dict[str, Any]]:
        """Every survey, by id, as served."""
        return self.account.surveys()

    def custom_fields(self) -> list[dict[str, Any]]:
        """Every custom field, by id (its name under ``name``)."""
        return self.account.custom_fields()

    def conversations(self) -> list[dict[str, Any]]:
        """Every conversation (those of removed inboxes too), sorted by ``(updated, id)``."""
        return self.account.conversations()

    def objects(self) -> dict[str, list[dict[str, Any]]]:
        """Everything a sync of this account should bring, by the tap's stream name."""
        return {
            "contacts": self.contacts(),
            "messages": self.all_messages(),
            "conversations": self.conversations(),
            "inboxes": self.inboxes(),
            "team_members": self.team()["members"],
            "tags": self.tags(),
            "templates": self.templates(),
            "surveys": self.surveys(),
            "custom_fields": self.custom_fields(),
        }

    def create_tag(self, **fields: Any) -> dict[str, Any]:
        """Create a tag: id above all others, rev 1, created = updated = now, then ``fields``."""
        return self.account.create_tag(fields)

    def delete_tag(self, id: int) -> None:
        """Delete tag ``id`` (contacts keep the copy they carry); KeyError if unknown."""
        self.account.delete_tag(id)

    def change_conversation(self, id: int, **fields: Any) -> dict[str, Any]:
        """Edit a conversation: set ``fields`` (else toggle ``replied``), ``updated`` now unless given.

        Messages created afterwards embed the new version; KeyError if ``id`` is unknown.
        """
        return self.account.change_conversation(id, fields)

    def delete_inbox(self, id: int) -> None:
        """Remove inbox ``id``: unlisted, and asking for its conversations is an unknown inbox."""
        self.account.delete_inbox(id)

    def remove_member_from_inbox(self, user_id: int, inbox_id: int) -> None:
        """Take ``user_id`` out of inbox ``inbox_id``'s members (still a team member)."""
        self.account.remove_member_from_inbox(user_id, inbox_id)
