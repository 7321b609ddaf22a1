"""The rest of the account: inboxes, the team, tags, templates, surveys, custom fields, conversations.

Tags, templates and conversations are listed newest first by ``updated``, a page at a time, under
an "updated before" cursor (:class:`BeforeList`, one walker for the three). The conversations are
the pool messages embed (``MessageStore.conversation_pool``): a message's ``conversation.id`` and
``conversation.inbox`` are listed here, and a changed conversation is embedded by the messages
created after the change (those sent before keep the copy they were sent with).

The data ties together: conversations' ``inbox`` and contacts' ``inbox_id`` are inboxes; inboxes'
``members``, conversations' ``members``, ``assigned`` and ``creator``, and messages' ``user`` are
team members; contacts' ``tags`` objects are the first tags listed here (ids 500-511), and the keys
of contacts' ``custom`` objects are the first custom fields' ids.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import threading
import time
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from testbed.fake_heymarket.generator import INBOXES, ROLES, TEAM_ID, USERS
from testbed.fake_heymarket.wire import before_threshold_us, format_us, go_json, is_int, parse_ns

if TYPE_CHECKING:
    from testbed.fake_heymarket.knobs import Knobs
    from testbed.fake_heymarket.messages import MessageStore

TEAM_NAME = "Acme Dental Group"
#: ``list_size`` of the team object: "Maximum number of contacts allowed per list".
TEAM_LIST_SIZE = 10_000
#: The contacts' tag objects (``ContactGenerator.tags``): the first tags of the list.
_CONTACT_TAGS = (
    "vip", "lead", "customer", "churn-risk", "newsletter", "Événement 2024", "🔥 hot",
    "wholesale", "partner", "do-not-call", "support", "beta",
)  # fmt: skip
_MORE_TAGS = (
    "follow-up", "spanish", "appointment", "no-show", "referral", "review-requested",
    "insurance", "new-patient", "billing", "<urgent> & escalated", "ortho", "hygiene", "🦷",
)  # fmt: skip
_TEMPLATES = (
    ("Welcome message", "Hey {{first_name}} {{last_name}}, welcome to our service!"),
    ("Appointment reminder", "Hi {{first_name}}, a reminder of your visit tomorrow at {{12}}."),
    ("Review request", "Thanks for visiting! Would you leave us a review? https://heym.kt/r"),
    ("Out of office", "We are closed today 🎄 and will reply on Monday."),
    ("Payment link", "Your balance is due: https://heym.kt/pay <secure> & fast"),
    ("Recall", "It has been 6 months, {{first_name}}: time for a cleaning?\nReply YES to book."),
    ("Bienvenida", "¡Hola {{first_name}}! Gracias por escribirnos."),
)
#: The first surveys are the docs' examples (ids 10 and 11).
_SURVEYS = (
    ("Post-purchase NPS", "nps", "How likely are you to recommend us to a friend? Reply with a "
     "number from 0 to 10."),
    ("Support CSAT", "csat", "How satisfied were you with your support experience? Reply 1 "
     "(very unsatisfied) to 5 (very satisfied)."),
    ("Visit NPS", "nps", "How likely are you to recommend our clinic? Reply 0-10."),
    ("Billing CSAT", "csat", "How easy was paying your bill? Reply 1 to 5."),
)  # fmt: skip
#: The first custom fields are the keys contacts' ``custom`` objects use, in that order.
_CUSTOM_FIELDS = (
    (12, "Tier", "select", ["Enterprise", "SMB", "Mid-Market"]),
    (47, "Renewal date", "date", []),
    (53, "Score", "number", []),
    (88, "Attribution", "text", []),
    (91, "Labels", "multiselect", ["a", "b", "🦄", "🌮", "⭐", "🚀"]),
    (102, "Notes ✎", "text", []),
)
_DAY_US = 86_400_000_000


def _us(value: Any) -> int:
    """µs since the epoch of a record's ``updated`` (the fake's own records always have one)."""
    return parse_ns(value) // 1000


def _tie_key(tie_order: str, rng: random.Random) -> Callable[[Any], Any]:
    """The sort key of an id inside a tie, for the ``tie_order`` knob."""
    if tie_order == "unstable":
        return lambda _: rng.random()
    return {
        "id": lambda rid: rid,
        "id-desc": lambda rid: -rid,
        "id-text": str,
        "hash": lambda rid: hashlib.sha256(str(rid).encode()).digest(),
    }[tie_order]


class BeforeList:
    """Objects with an int ``id`` and an ``updated``, listed newest first under a "before" cursor.

    Kept sorted by ``(updated µs, id)``; a page is a bisect on the cursor, then a walk back that
    takes the objects ``keep`` accepts, completing the tie at the page's end so that the tie
    order applies to all of it. Newest first is the reverse of ascending ``(updated, tie order)``,
    as for messages. Not locked: :class:`AccountStore` holds its lock around every call.
    """

    def __init__(self, order_rng: random.Random) -> None:
        self._keys: list[tuple[int, int]] = []
        self._items: dict[int, dict[str, Any]] = {}
        self._order_rng = order_rng

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, id: object) -> bool:
        return id in self._items

    def ids(self) -> list[int]:
        """Every id, oldest ``updated`` first."""
        return [key[1] for key in self._keys]

    def get(self, id: int) -> dict[str, Any]:
        """The stored object itself (callers copy); KeyError if unknown."""
        return self._items[id]

    def records(self) -> list[dict[str, Any]]:
        """Deep copies of every object, sorted by ``(updated, id)``."""
        return [copy.deepcopy(self._items[key[1]]) for key in self._keys]

    def put(self, record: dict[str, Any]) -> None:
        """Store ``record`` (replacing the object with its id) at its place by ``updated``."""
        rid = record["id"]
        if rid in self._items:
            self.remove(rid)
        self._items[rid] = record
        insort(self._keys, (_us(record["updated"]), rid))

    def remove(self, id: int) -> dict[str, Any]:
        """Unlink and return object ``id``; KeyError if unknown."""
        record = self._items.pop(id)
        del self._keys[bisect_left(self._keys, (_us(record["updated"]), id))]
        return record

    def page(
        self,
        cursor_ns: int | None,
        size: int,
        knobs: Knobs,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``size`` objects ``keep`` accepts, updated before the cursor, newest first.

        ``before_cursor`` (exclusive or inclusive), ``date_precision`` and ``tie_order`` apply.
        """
        keys, items = self._keys, self._items
        hi = len(keys)
        if cursor_ns is not None:
            inclusive = knobs.before_cursor == "inclusive"
            whole_seconds = knobs.date_precision == "second"
            hi = bisect_left(keys, (before_threshold_us(cursor_ns, inclusive, whole_seconds),))
        picked: list[tuple[int, int]] = []
        for i in range(hi - 1, -1, -1):
            key = keys[i]
            if len(picked) >= size and key[0] != picked[-1][0]:
                break
            if keep is None or keep(items[key[1]]):
                picked.append(key)
        tie_key = _tie_key(knobs.tie_order, self._order_rng)
        picked.sort(key=lambda key: (key[0], tie_key(key[1])), reverse=True)
        return [copy.deepcopy(items[key[1]]) for key in picked[:size]]


class AccountStore:
    """Everything of the account besides contacts and messages; thread-safe."""

    def __init__(
        self,
        *,
        seed: int,
        messages: MessageStore,
        tags: int,
        templates: int,
        surveys: int,
        custom_fields: int,
        list_tie_size: int,
        team_id: int = TEAM_ID,
    ) -> None:
        """The account of team ``team_id``: its inboxes, tags, templates and custom fields carry it."""
        for name, n in (
            ("tags", tags),
            ("templates", templates),
            ("surveys", surveys),
            ("custom_fields", custom_fields),
        ):
            if n < 0:
                raise ValueError(f"{name} must not be negative")
        if list_tie_size < 0 or list_tie_size > min(tags, templates):
            raise ValueError("list_tie_size tags and templates must fit in tags and templates")
        self._lock = threading.RLock()
        self._rng = random.Random(seed + 20)
        order_rng = random.Random(seed + 22)
        self._messages = messages
        self._last_clock = 0
        self.team_id = team_id
        self._inboxes = [{**copy.deepcopy(inbox), "team": team_id} for inbox in INBOXES]
        self._tags = BeforeList(order_rng)
        self._templates = BeforeList(order_rng)
        self._conversations = BeforeList(order_rng)
        #: A conversation's place in the messages' pool, to keep what new messages embed current.
        self._pool_index: dict[int, int] = {}
        self._surveys: list[dict[str, Any]] = []
        self._custom_fields: list[dict[str, Any]] = []
        self._next_tag = 500
        self._generate_tags(tags, list_tie_size)
        self._generate_templates(templates, list_tie_size)
        self._generate_surveys(surveys)
        self._generate_custom_fields(custom_fields)
        for index, text in enumerate(messages.conversation_pool()):
            conversation = json.loads(text)
            self._conversations.put(conversation)
            self._pool_index[conversation["id"]] = index

    # ---- reads, as served

    def inboxes(self, knobs: Knobs) -> list[dict[str, Any]]:
        """``GET /v1/inboxes``: every inbox, ``invited`` in the form the knob says."""
        with self._lock:
            inboxes = copy.deepcopy(self._inboxes)
        if knobs.inbox_invited == "strings":
            for inbox in inboxes:
                inbox["invited"] = [f"invite-{inbox['id']}-1"] if inbox["invited"] else []
        return inboxes

    def team(self) -> dict[str, Any]:
        """``GET /v1/team``: the team object, with its members."""
        members = [{"id": uid, "name": name, "role": ROLES[uid]} for uid, name in USERS]
        return {
            "id": self.team_id,
            "name": TEAM_NAME,
            "list_size": TEAM_LIST_SIZE,
            "members": members,
        }

    def tag_page(self, cursor_ns: int | None, knobs: Knobs) -> list[dict[str, Any]]:
        """``POST /v1/tags``: a page of tags updated before the cursor, newest first.

        Then ``list_changes_per_request`` tags are updated (now).
        """
        with self._lock:
            page = self._tags.page(cursor_ns, knobs.list_page_size, knobs)
            self._churn_list(self._tags, knobs.list_changes_per_request)
            return page

    def template_page(self, cursor_ns: int | None, knobs: Knobs) -> list[dict[str, Any]]:
        """``POST /v1/templates``: a page of templates updated before the cursor, newest first."""
        keep = None
        if knobs.archived_templates == "hidden":
            keep = lambda template: not template["archived"]  # noqa: E731
        with self._lock:
            page = self._templates.page(cursor_ns, knobs.list_page_size, knobs, keep)
            self._churn_list(self._templates, knobs.list_changes_per_request)
            return page

    def _churn_list(self, records: BeforeList, n: int) -> None:
        """``n`` of ``records`` updated now (``rev`` up by one), one after the other."""
        for rid in self._rng.sample(records.ids(), min(n, len(records))):
            record = copy.deepcopy(records.get(rid))
            record["updated"] = format_us(self._clock())
            record["rev"] = record.get("rev", 0) + 1
            records.put(record)

    def survey_page(self, limit: int, page: int) -> list[dict[str, Any]]:
        """``POST /v1/surveys``: page ``page`` (from 1) of ``limit`` surveys, by id."""
        skip = (max(page, 1) - 1) * limit
        with self._lock:
            return copy.deepcopy(self._surveys[skip : skip + limit])

    def custom_field_list(self, knobs: Knobs) -> list[dict[str, Any]]:
        """``POST /v1/contact-fields``: every custom field, its name under the knob's key."""
        with self._lock:
            fields = copy.deepcopy(self._custom_fields)
        if knobs.custom_field_name == "title":
            for field in fields:
                field["title"] = field.pop("name")
        return fields

    def check_inboxes(self, user_id: int, inbox_ids: list[int], knobs: Knobs) -> tuple[int, str]:
        """Whether member ``user_id`` may list ``inbox_ids``: ``(0, "")``, or an error status.

        Under the ``unknown_inbox`` / ``foreign_inbox`` knobs' "empty" readings such inboxes are
        no error: :meth:`conversation_page` leaves them out.
        """
        with self._lock:
            members = {inbox["id"]: inbox["members"] for inbox in self._inboxes}
        for inbox in inbox_ids:
            if inbox not in members and knobs.unknown_inbox == "404":
                return 404, f"inbox {inbox} not found"
        for inbox in inbox_ids:
            if inbox in members and user_id not in members[inbox] and knobs.foreign_inbox == "403":
                return 403, f"user {user_id} is not a member of inbox {inbox}"
        return 0, ""

    def conversation_page(
        self,
        user_id: int,
        inbox_ids: list[int],
        closed: bool,
        unread: bool,
        cursor_ns: int | None,
        knobs: Knobs,
    ) -> tuple[list[dict[str, Any]], set[int]]:
        """``POST /v1/conversations``: a page, and the inboxes it could show (for churn).

        Only inboxes that exist and ``user_id`` belongs to are shown. ``closed`` keeps closed or
        open ones; ``unread`` keeps unread ones (``last_inbound`` after ``read``), and false
        keeps all, or only read ones if ``unread_filter`` is "selects".
        """
        with self._lock:
            members = {inbox["id"]: inbox["members"] for inbox in self._inboxes}
            visible = {i for i in inbox_ids if i in members and user_id in members[i]}
            selects = knobs.unread_filter == "selects"

            def keep(c: dict[str, Any]) -> bool:
                if c["inbox"] not in visible or (c["status"] == "closed") != closed:
                    return False
                if unread or selects:
                    return is_unread(c) == unread
                return True

            return self._conversations.page(cursor_ns, knobs.list_page_size, knobs, keep), visible

    # ---- reads, for tests

    def inbox_list(self) -> list[dict[str, Any]]:
        """The inboxes as stored (``invited`` a boolean)."""
        with self._lock:
            return copy.deepcopy(self._inboxes)

    def tags(self) -> list[dict[str, Any]]:
        """Every tag, sorted by ``(updated, id)``."""
        with self._lock:
            return self._tags.records()

    def templates(self) -> list[dict[str, Any]]:
        """Every template (archived ones too), sorted by ``(updated, id)``."""
        with self._lock:
            return self._templates.records()

    def surveys(self) -> list[dict[str, Any]]:
        """Every survey, by id."""
        with self._lock:
            return copy.deepcopy(self._surveys)

    def custom_fields(self) -> list[dict[str, Any]]:
        """Every custom field, by id, its name under ``name``."""
        with self._lock:
            return copy.deepcopy(self._custom_fields)

    def conversations(self) -> list[dict[str, Any]]:
        """Every conversation (those of removed inboxes too), sorted by ``(updated, id)``."""
        with self._lock:
            return self._conversations.records()

    # ---- writes

    def create_tag(self, fields: dict[str, Any]) -> dict[str, Any]:
        """A new tag: id above all others, rev 1, created = updated = now, then ``fields``."""
        with self._lock:
            if "id" in fields and fields["id"] in self._tags:
                raise ValueError(f"tag id {fields['id']!r} exists already")
            now = format_us(self._clock())
            tag = self._tag(self._next_tag, f"tag {self._next_tag}", now, now, 1)
            tag.update(fields)
            self._check_record(tag)
            self._tags.put(tag)
            self._next_tag = max(self._next_tag, tag["id"] + 1)
            return copy.deepcopy(tag)

    def delete_tag(self, id: int) -> None:
        """Delete tag ``id`` (contacts keep the copy they hold); KeyError if unknown."""
        with self._lock:
            if id not in self._tags:
                raise KeyError(f"unknown tag id {id!r}")
            self._tags.remove(id)

    def change_conversation(self, id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Edit conversation ``id``: ``fields``, else replied toggled; ``updated`` now unless given.

        Messages created from now on embed the new version; KeyError if ``id`` is unknown.
        """
        with self._lock:
            if id not in self._conversations:
                raise KeyError(f"unknown conversation id {id!r}")
            conversation = copy.deepcopy(self._conversations.get(id))
            if fields:
                conversation.update(fields)
            else:
                conversation["replied"] = not conversation["replied"]
                conversation["op"] = "update"
            if "updated" not in fields:
                conversation["updated"] = format_us(self._clock())
            conversation["id"] = id
            self._check_record(conversation)
            self._conversations.put(conversation)
            self._messages.set_conversation(self._pool_index[id], go_json(conversation))
            return copy.deepcopy(conversation)

    def churn_conversations(self, n: int, inboxes: Iterable[int]) -> None:
        """``n`` conversations of ``inboxes`` (else of all) updated now, one after the other."""
        if n <= 0:
            return
        with self._lock:
            wanted = set(inboxes)
            ids = [
                i
                for i in self._conversations.ids()
                if self._conversations.get(i)["inbox"] in wanted
            ]
            ids = ids or self._conversations.ids()
            for cid in self._rng.sample(ids, min(n, len(ids))):
                self.change_conversation(cid, {})

    def delete_inbox(self, id: int) -> None:
        """Remove inbox ``id``: no longer listed, its conversations no longer served; KeyError."""
        with self._lock:
            for index, inbox in enumerate(self._inboxes):
                if inbox["id"] == id:
                    del self._inboxes[index]
                    return
            raise KeyError(f"unknown inbox id {id!r}")

    def remove_member_from_inbox(self, user_id: int, inbox_id: int) -> None:
        """Take member ``user_id`` out of inbox ``inbox_id``; KeyError if either is unknown."""
        with self._lock:
            for inbox in self._inboxes:
                if inbox["id"] == inbox_id:
                    if user_id not in inbox["members"]:
                        raise KeyError(f"user {user_id!r} is not a member of inbox {inbox_id}")
                    inbox["members"].remove(user_id)
                    return
            raise KeyError(f"unknown inbox id {inbox_id!r}")

    # ---- generation and internals

    def _clock(self) -> int:
        """Monotone wall clock in µs (UTC): now, or 1 µs after the last time it gave."""
        self._last_clock = max(time.time_ns() // 1000, self._last_clock + 1)
        return self._last_clock

    @staticmethod
    def _check_record(record: dict[str, Any]) -> None:
        if not is_int(record.get("id")):
            raise ValueError(f"id must be an integer, got {record.get('id')!r}")
        updated = record.get("updated")
        try:
            if not isinstance(updated, str):
                raise TypeError
            parse_ns(updated)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"updated must be an RFC 3339 timestamp, got {updated!r}") from None

    def _timeline(self, n: int, start_us: int, tie_size: int) -> list[int]:
        """``n`` ascending times from ``start_us``, up to 20 days apart, all before yesterday.

        ``tie_size`` of them in the middle share the latest of those.
        """
        pick = self._pick
        room = time.time_ns() // 1000 - _DAY_US - start_us
        gap = max(1, min(20 * _DAY_US, room // max(n, 1)))
        out, us = [], start_us
        for _ in range(n):
            us += 1 + pick(gap)
            if pick(3) == 0:
                us -= us % 1_000_000  # whole seconds now and then
            out.append(us)
        if tie_size:
            lo = (n - tie_size) // 2
            out[lo : lo + tie_size] = [out[lo + tie_size - 1]] * tie_size
        return out

    def _pick(self, n: int) -> int:
        return int(self._rng.random() * n)

    def _tag(self, tid: int, name: str, created: str, updated: str, rev: int) -> dict[str, Any]:
        color = f"#{((tid - 500) * 2654435761) % 0xFFFFFF:06x}"
        return {
            "id": tid,
            "tag": name,
            "color": color,
            "team_id": self.team_id,
            "created": created,
            "updated": updated,
            "rev": rev,
        }

    def _generate_tags(self, n: int, tie_size: int) -> None:
        # The contacts' tags first, exactly as contacts embed them (ContactGenerator.tags).
        tag_time = format_us(1_600_000_000_000_000)
        made = []
        for i, name in enumerate(_CONTACT_TAGS[:n]):
            updated = tag_time if i % 3 else format_us(1_650_000_000_500_000)
            made.append(self._tag(500 + i, name, tag_time, updated, 1 + i % 3))
        extra = n - len(made)
        stamps = self._timeline(extra, 1_650_000_000_500_000, 0)
        for j, us in enumerate(stamps):
            tid = 500 + len(_CONTACT_TAGS) + j
            name = _MORE_TAGS[j % len(_MORE_TAGS)]
            if j >= len(_MORE_TAGS):
                name += f" {j // len(_MORE_TAGS) + 1}"
            created = format_us(us - self._pick(90 * _DAY_US))
            made.append(self._tag(tid, name, created, format_us(us), 1 + self._pick(4)))
        if tie_size:  # the middle of the list by updated shares its latest updated
            made.sort(key=lambda tag: (_us(tag["updated"]), tag["id"]))
            lo = (n - tie_size) // 2
            for tag in made[lo : lo + tie_size]:
                tag["updated"] = made[lo + tie_size - 1]["updated"]
        for tag in made:
            self._tags.put(tag)
        self._next_tag = 500 + max(n, len(_CONTACT_TAGS))

    def _generate_templates(self, n: int, tie_size: int) -> None:
        stamps = self._timeline(n, 1_640_000_000_000_000, tie_size)
        for i, us in enumerate(stamps):
            name, text = _TEMPLATES[i % len(_TEMPLATES)]
            if i >= len(_TEMPLATES):
                name += f" ({i // len(_TEMPLATES) + 1})"
            tid = 801 + i
            gallery = []
            if self._pick(4) == 0:
                gallery = [{"url": f"https://media.heymarket.com/t/{tid}.jpg"}]
            rev = 1 + self._pick(6)
            local_id = "" if self._pick(3) else f"{self._rng.getrandbits(64):016x}"
            self._templates.put(
                {
                    "id": tid,
                    "name": name,
                    "local_id": local_id,
                    "content": {"text": text, "gallery": gallery},
                    "team_id": self.team_id,
                    "creator_id": USERS[self._pick(len(USERS))][0],
                    "shared": self._pick(4) != 0,
                    "created": format_us(us if rev == 1 else us - self._pick(200 * _DAY_US)),
                    "updated": format_us(us),
                    "rev": rev,
                    "archived": self._pick(6) == 0,
                }
            )

    def _generate_surveys(self, n: int) -> None:
        stamps = self._timeline(n, 1_680_000_000_000_000, 0)
        for i, us in enumerate(stamps):
            name, kind, question = _SURVEYS[i % len(_SURVEYS)]
            if i >= len(_SURVEYS):
                name += f" {i // len(_SURVEYS) + 1}"
            self._surveys.append(
                {
                    "id": 10 + i,
                    "name": name,
                    "type": kind,
                    "question": question,
                    "created": format_us(us - self._pick(100 * _DAY_US)),
                    "updated": format_us(us),
                }
            )

    def _generate_custom_fields(self, n: int) -> None:
        for i in range(n):
            if i < len(_CUSTOM_FIELDS):
                fid, name, kind, options = _CUSTOM_FIELDS[i]
            else:
                fid, name, kind, options = (
                    103 + i - len(_CUSTOM_FIELDS),
                    f"Field {i + 1}",
                    "text",
                    [],
                )
            created_us = 1_600_000_000_000_000 + self._pick(900 * _DAY_US)
            self._custom_fields.append(
                {
                    "id": fid,
                    "name": name,
                    "type": kind,
                    "options": list(options),
                    "team_id": self.team_id,
                    "created": format_us(created_us),
                    "updated": format_us(created_us + self._pick(300 * _DAY_US)),
                }
            )


def is_unread(conversation: dict[str, Any]) -> bool:
    """Whether a conversation is unread: an inbound message came after it was last read."""
    last_inbound, read = conversation.get("last_inbound"), conversation.get("read")
    return is_int(last_inbound) and is_int(read) and last_inbound > read
