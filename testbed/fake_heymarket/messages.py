"""The message store: each message's JSON text, in two lists kept sorted by ``date`` and ``updated``.

``POST /v1/messages/all`` pages newest first by ``date`` (``order: created_at``) or by ``updated``
(``order: updated_at``), under a cursor that keeps only messages *created* before it. By ``date``
a page is a bisect and a slice. By ``updated`` it is a bisect too: a message dated before the
cursor but updated at or after it is either updated less than :data:`WINDOW_US` after the cursor
(a short scan) or was edited long after it was sent (a small set kept aside), since generated
messages are updated at most ``UPDATE_LAG_US`` after their date. Writes re-serialise one message
and move it; nothing is re-sorted, so a page costs a small fraction of a millisecond even with
200,000 messages.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from testbed.fake_heymarket.generator import UPDATE_LAG_US, MessageGenerator, next_status
from testbed.fake_heymarket.store import UNPARSEABLE_US, _id_key, fitting
from testbed.fake_heymarket.wire import before_threshold_us, format_us, go_json, is_int, parse_ns

if TYPE_CHECKING:
    from testbed.fake_heymarket.knobs import Knobs

#: A message updated more than this after its ``date`` is kept in the edited-late set as well.
WINDOW_US = 60 * 60 * 1_000_000
assert WINDOW_US > UPDATE_LAG_US  # so generated messages never land in that set
#: Generated messages end this long before the day the fake was made began (UTC), so that the
#: data is the same all day long for one seed, and every generated ``updated`` is in the past.
_END_MARGIN_US = 60 * 60 * 1_000_000
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class MessageQuery:
    """A checked ``/v1/messages/all`` body."""

    limit: int = 30
    page: int = 0
    #: The cursor in ns since the epoch, or None for none.
    cursor_ns: int | None = None
    #: ``"created_at"`` (sort by ``date``) or ``"updated_at"`` (sort by ``updated``).
    order: str = "created_at"
    ascending: bool = False


def _time_us(value: Any) -> int | None:
    """µs since the epoch of an RFC 3339 string, or None."""
    if not isinstance(value, str):
        return None
    try:
        return parse_ns(value) // 1000
    except (ValueError, OverflowError):
        return None


class MessageStore:
    """Messages as served, sorted two ways, plus an id index; thread-safe.

    ``_dkeys`` (by date) and ``_ukeys`` (by updated) are ``(us, id_kind, id, seq)`` tuples, like
    ``ContactStore``'s keys; ``_djson`` and ``_ujson`` hold the same strings in those orders, and
    ``_udate`` each ``_ukeys`` entry's date in µs.
    """

    def __init__(
        self,
        *,
        messages: int,
        seed: int,
        start: str,
        broadcasts: int,
        broadcast_size: int,
        conversations: int | None = None,
        conversation_tie_size: int = 0,
    ) -> None:
        """``conversations`` in the pool (default one per ten messages, at least one).

        The first ``conversation_tie_size`` of them share one ``updated`` (see
        ``MessageGenerator.conversations``).
        """
        if broadcasts < 0 or broadcast_size < 0 or messages < 0:
            raise ValueError("messages, broadcasts and broadcast_size must not be negative")
        if broadcasts * broadcast_size > messages:
            raise ValueError("broadcasts * broadcast_size messages must fit in messages")
        if conversations is None:
            conversations = max(1, messages // 10)
        if conversations < 1:
            raise ValueError("conversations must be at least 1")
        if not 0 <= conversation_tie_size <= conversations:
            raise ValueError("list_tie_size conversations must fit in conversations")
        self._lock = threading.RLock()
        self._dkeys: list[tuple[Any, ...]] = []
        self._djson: list[str] = []
        self._ukeys: list[tuple[Any, ...]] = []
        self._ujson: list[str] = []
        self._udate: list[int] = []
        #: Messages updated more than WINDOW_US after their date: updated key -> date µs.
        self._late: dict[tuple[Any, ...], int] = {}
        self._keys_of: dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        self._ids: list[int] = []  # registered ids, for O(1) random picks
        self._id_pos: dict[int, int] = {}
        self._seq = itertools.count()
        self._last_clock = UNPARSEABLE_US
        self._next_id = 50_000_001
        self._next_broadcast = 900_001
        self._rng = random.Random(seed + 10)
        self._order_rng = random.Random(seed + 12)
        self._gen = MessageGenerator(self._rng)
        self._generate(
            messages,
            parse_ns(start) // 1000,
            broadcasts,
            broadcast_size,
            conversations,
            conversation_tie_size,
        )

    def __len__(self) -> int:
        """How many messages are stored."""
        return len(self._dkeys)

    # ---- reads

    def all_json(self) -> str:
        """Every message as one JSON array, sorted by (date, id) ascending."""
        with self._lock:
            return "[" + ",".join(self._djson) + "]"

    def message(self, id: Any) -> dict[str, Any]:
        """Return a deep copy of one message, as served; KeyError if unknown."""
        with self._lock:
            return json.loads(self._djson[bisect_left(self._dkeys, self._keys_of[id][0])])

    def count(self, cursor_ns: int | None, knobs: Knobs) -> int:
        """How many messages the cursor keeps (all of them without one)."""
        with self._lock:
            if cursor_ns is None:
                return len(self._dkeys)
            return bisect_left(self._dkeys, (_threshold(cursor_ns, knobs),))

    def page(self, query: MessageQuery, knobs: Knobs) -> bytes:
        """One page as bytes: bisect on the cursor, pick the rows, join their stored JSON."""
        limit = query.limit if knobs.max_limit is None else min(query.limit, knobs.max_limit)
        ascending = query.ascending and knobs.order != "newest-first"
        if knobs.messages_page == "from-0":
            skip = query.page * limit
        elif knobs.messages_page == "from-1":
            skip = max(query.page - 1, 0) * limit
        else:
            skip = 0
        with self._lock:
            if query.order == "updated_at":
                keys, texts = self._ukeys, self._ujson
                rows: Sequence[int] = self._by_updated(query.cursor_ns, knobs)
            else:
                keys, texts = self._dkeys, self._djson
                end = len(keys)
                if query.cursor_ns is not None:
                    end = bisect_left(keys, (_threshold(query.cursor_ns, knobs),))
                rows = range(end)
            n = len(rows)
            if ascending:
                lo, hi = min(skip, n), min(skip + limit, n)
            else:
                hi = max(n - skip, 0)
                lo = max(hi - limit, 0)
            chosen = _tie_ordered(rows, keys, lo, hi, knobs, self._order_rng)
            if not ascending:
                chosen.reverse()
            chunk = [texts[index] for index in chosen]
        if knobs.max_bytes is not None:
            chunk = fitting(chunk, knobs.max_bytes)
        if knobs.order == "shuffled":
            self._order_rng.shuffle(chunk)
        return ("[" + ",".join(chunk) + "]").encode("utf-8", "surrogatepass")

    def conversation_pool(self) -> list[str]:
        """The JSON text of each conversation messages embed (new messages too), in pool order."""
        with self._lock:
            return list(self._gen.conversation_json)

    def set_conversation(self, index: int, text: str) -> None:
        """Replace pool conversation ``index``: messages created from now on embed ``text``."""
        with self._lock:
            self._gen.conversation_json[index] = text

    # ---- writes

    def create(self, fields: dict[str, Any] | None = None, *, date_us: int | None = None) -> str:
        """Store a new message dated ``date_us`` (else now), with ``fields`` over generated ones.

        Returns its JSON text; ``updated`` is its date unless ``fields`` says otherwise. An ``id``
        already in use is refused (ValueError).
        """
        with self._lock:
            if fields and fields.get("id") in self._keys_of:
                raise ValueError(f"message id {fields['id']!r} exists already")
            mid = self._next_id
            when = self._clock() if date_us is None else date_us
            conversation = self._gen.pick(len(self._gen.meta))
            text, _ = self._gen.message(mid, when, conversation)
            record = json.loads(text)
            record["updated"] = record["date"]
            record.update(fields or {})
            text = go_json(record)
            self._insert_record(text, record)
            return text

    def broadcast(self, size: int, at_us: int | None = None) -> list[str]:
        """``size`` outbound messages sharing one ``date`` (``at_us``, else now) and broadcast_id."""
        with self._lock:
            when = self._clock() if at_us is None else at_us
            bid = self._next_broadcast
            self._next_broadcast += 1
            out = []
            for _ in range(size):
                mid = self._next_id
                conversation = self._gen.pick(len(self._gen.meta))
                text, updated_us = self._gen.message(mid, when, conversation, bid)
                self._insert(text, when, updated_us, 0, mid)
                out.append(text)
            return out

    def change(self, id: int, fields: dict[str, Any] | None = None) -> str:
        """Edit message ``id``: ``fields``, else a new status and flag; ``updated`` now unless given.

        Returns its new JSON text; KeyError if ``id`` is unknown.
        """
        with self._lock:
            if id not in self._keys_of:
                raise KeyError(f"unknown message id {id!r}")
            record = json.loads(self._remove(id))
            if fields:
                record.update(fields)
            else:
                record["status"] = next_status(record.get("status"))
                record["flagged"] = not record.get("flagged")
            if not fields or "updated" not in fields:
                record["updated"] = format_us(self._clock())
            text = go_json(record)
            self._insert_record(text, record)
            return text

    def churn(self, changes: int, creates: int) -> None:
        """Make the data change between requests: ``changes`` edits, then ``creates`` messages."""
        if changes <= 0 and creates <= 0:
            return
        with self._lock:
            for mid in self._rng.sample(self._ids, min(changes, len(self._ids))):
                self.change(mid)
            for _ in range(creates):
                self.create()

    def add_raw_json(self, text: str) -> None:
        """Insert one message's exact JSON ``text``; an unparseable ``date`` sorts it first.

        Its ``updated`` (when it parses) places it in the ``updated_at`` order, else its date.
        """
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            record = {}
        self._insert_record(text, record)

    # ---- internals

    def _insert_record(self, text: str, record: dict[str, Any]) -> None:
        date_us = _time_us(record.get("date"))
        date_us = UNPARSEABLE_US if date_us is None else date_us
        updated_us = _time_us(record.get("updated"))
        self._insert(text, date_us, date_us if updated_us is None else updated_us, *_id_key(record))

    def _insert(self, text: str, date_us: int, updated_us: int, id_kind: int, mid: Any) -> None:
        """Insert ``text`` at its place in both orders; register a new int id."""
        with self._lock:
            seq = next(self._seq)
            dkey = (date_us, id_kind, mid, seq)
            ukey = (updated_us, id_kind, mid, seq)
            index = bisect_left(self._dkeys, dkey)
            self._dkeys.insert(index, dkey)
            self._djson.insert(index, text)
            index = bisect_left(self._ukeys, ukey)
            self._ukeys.insert(index, ukey)
            self._ujson.insert(index, text)
            self._udate.insert(index, date_us)
            if updated_us - date_us > WINDOW_US:
                self._late[ukey] = date_us
            if id_kind == 0 and mid not in self._keys_of:
                self._register(mid, (dkey, ukey))
                self._next_id = max(self._next_id, mid + 1)

    def _remove(self, mid: int) -> str:
        """Unlink message ``mid`` from both orders and the id index; returns its JSON."""
        dkey, ukey = self._keys_of.pop(mid)
        pos = self._id_pos.pop(mid)
        last = self._ids.pop()
        if last != mid:
            self._ids[pos] = last
            self._id_pos[last] = pos
        self._late.pop(ukey, None)
        index = bisect_left(self._ukeys, ukey)
        del self._ukeys[index], self._ujson[index], self._udate[index]
        index = bisect_left(self._dkeys, dkey)
        del self._dkeys[index]
        return self._djson.pop(index)

    def _register(self, mid: int, keys: tuple[tuple[Any, ...], tuple[Any, ...]]) -> None:
        self._keys_of[mid] = keys
        self._id_pos[mid] = len(self._ids)
        self._ids.append(mid)

    def _clock(self) -> int:
        """Monotone wall clock in µs (UTC): now, or 1 µs after the last time it gave."""
        self._last_clock = max(time.time_ns() // 1000, self._last_clock + 1)
        return self._last_clock

    def _by_updated(self, cursor_ns: int | None, knobs: Knobs) -> Sequence[int]:
        """Indexes into the ``updated`` order of the messages the cursor keeps, in that order."""
        keys = self._ukeys
        if cursor_ns is None:
            return range(len(keys))
        threshold = _threshold(cursor_ns, knobs)
        low = bisect_left(keys, (threshold,))
        high = bisect_left(keys, (threshold + WINDOW_US,))
        udate = self._udate
        late = [i for i in range(low, high) if udate[i] < threshold]
        late += [
            bisect_left(keys, key)
            for key, date_us in self._late.items()
            if date_us < threshold and key[0] >= threshold + WINDOW_US
        ]
        if not late:
            return range(low)
        late.sort()
        return _Joined(low, late)

    def _generate(
        self, n: int, start_us: int, broadcasts: int, size: int, conversations: int, tie_size: int
    ) -> None:
        gen = self._gen
        today_us = time.time_ns() // 1000 // _DAY_US * _DAY_US
        end_us = today_us - _END_MARGIN_US
        if end_us - start_us < max(n, conversations) * 60_000_000:  # a start too recent
            end_us = start_us + max(n, conversations) * 60_000_000
        groups = gen.timeline(n, start_us, end_us, broadcasts, size)
        assigned = [gen.pick(conversations) for _ in groups]
        spans: list[list[int]] = [[start_us, start_us] for _ in range(conversations)]
        seen = [False] * conversations
        for (dates, _), conversation in zip(groups, assigned, strict=True):
            span = spans[conversation]
            if not seen[conversation]:
                span[0], seen[conversation] = dates[0], True
            span[1] = dates[-1]
        for span, was_seen in zip(spans, seen, strict=True):
            if not was_seen:  # no message yet: last active some time in the period
                span[0] = span[1] = start_us + gen.pick(end_us - start_us)
        gen.conversations(conversations, 70_000_001, [(a, b) for a, b in spans], tie_size)
        drows: list[tuple[tuple[Any, ...], str]] = []
        urows: list[tuple[tuple[Any, ...], str, int]] = []
        mid = self._next_id
        for (dates, is_broadcast), conversation in zip(groups, assigned, strict=True):
            bid = 0
            if is_broadcast:
                bid, self._next_broadcast = self._next_broadcast, self._next_broadcast + 1
            for date_us in dates:
                # a broadcast goes to many conversations; others stay in one
                where = gen.pick(conversations) if bid else conversation
                text, updated_us = gen.message(mid, date_us, where, bid)
                seq = next(self._seq)
                drows.append(((date_us, 0, mid, seq), text))
                urows.append(((updated_us, 0, mid, seq), text, date_us))
                mid += 1 if gen.random() < 0.93 else 2 + gen.pick(4)
        urows.sort(key=lambda row: row[0])
        self._dkeys = [key for key, _ in drows]  # generated in date order already
        self._djson = [text for _, text in drows]
        self._ukeys = [key for key, _, _ in urows]
        self._ujson = [text for _, text, _ in urows]
        self._udate = [date_us for _, _, date_us in urows]
        ukey_of = {key[2]: key for key in self._ukeys}
        for dkey in self._dkeys:
            self._register(dkey[2], (dkey, ukey_of[dkey[2]]))
        self._next_id = mid


class _Joined(Sequence[int]):
    """``range(low)`` followed by ``tail``: the rows of the ``updated`` order a cursor keeps."""

    def __init__(self, low: int, tail: list[int]) -> None:
        self._low = low
        self._tail = tail

    def __len__(self) -> int:
        return self._low + len(self._tail)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return i if i < self._low else self._tail[i - self._low]


def _threshold(cursor_ns: int, knobs: Knobs) -> int:
    """The µs bound ``T`` such that the cursor keeps exactly the messages dated before ``T``."""
    inclusive = knobs.messages_cursor == "inclusive"
    return before_threshold_us(cursor_ns, inclusive, knobs.date_precision == "second")


def _tie_ordered(
    rows: Sequence[int],
    keys: list[tuple[Any, ...]],
    lo: int,
    hi: int,
    knobs: Knobs,
    rng: random.Random,
) -> list[int]:
    """``rows[lo:hi]`` once the messages sharing a timestamp are put in the tie order.

    Only the tie groups the slice touches are sorted, so a page costs what it holds.
    """
    if knobs.tie_order == "id" or lo >= hi:
        return list(rows[lo:hi])
    start, stop = lo, hi
    while start > 0 and keys[rows[start - 1]][0] == keys[rows[lo]][0]:
        start -= 1
    while stop < len(rows) and keys[rows[stop]][0] == keys[rows[hi - 1]][0]:
        stop += 1
    tie_key: Callable[[Any], Any]
    if knobs.tie_order == "unstable":
        tie_key = lambda _: rng.random()  # noqa: E731
    else:
        tie_key = {
            "id-desc": lambda mid: -mid if is_int(mid) else 0,
            "id-text": str,
            "hash": lambda mid: hashlib.sha256(str(mid).encode()).digest(),
        }[knobs.tie_order]
    span = sorted(rows[start:stop], key=lambda i: (keys[i][0], tie_key(keys[i][2])))
    return span[lo - start : hi - start]
