"""The contact store: each contact's JSON text, in a list kept sorted by ``(updated, id)``.

A write re-serialises one contact and moves it (nothing is ever re-sorted), so a page is a bisect
on the date plus a join of a slice: a small fraction of a millisecond even with 100,000 contacts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from testbed.fake_heymarket.generator import TEAM_ID, ContactGenerator
from testbed.fake_heymarket.wire import format_us, go_json, is_int, parse_ns

if TYPE_CHECKING:
    from testbed.fake_heymarket.knobs import Knobs

#: Sort position of a raw record whose ``updated`` does not parse: before everything.
UNPARSEABLE_US = -(1 << 63)


def _id_key(record: dict[str, Any]) -> tuple[int, Any]:
    """Sort key for a record's id that never compares an int with a str."""
    if "id" not in record:
        return (2, "")
    cid = record["id"]
    if is_int(cid):
        return (0, cid)
    return (1, cid if isinstance(cid, str) else json.dumps(cid))


class ContactStore:
    """Contacts as served, plus an id index; thread-safe, as every request thread reads it.

    ``_keys`` parallels ``_json``: ``(updated_us, id_kind, id, seq)``, where ``id_kind`` keeps int,
    str and missing ids apart and ``seq`` keeps equal keys in insertion order.
    """

    def __init__(
        self,
        *,
        contacts: int,
        seed: int,
        start: str,
        tie_groups: int,
        tie_size: int,
        team_id: int = TEAM_ID,
    ) -> None:
        if tie_groups * tie_size > contacts:
            raise ValueError("tie_groups * tie_size contacts must fit in contacts")
        self._lock = threading.RLock()
        self._keys: list[tuple[Any, ...]] = []
        self._json: list[str] = []
        self._key_of: dict[int, tuple[Any, ...]] = {}
        self._ids: list[int] = []  # registered ids, for O(1) random picks
        self._id_pos: dict[int, int] = {}
        self._seq = itertools.count()
        self._newest_us = UNPARSEABLE_US
        self._next_id = 10_000_001
        self._rng = random.Random(seed)
        self._order_rng = random.Random(seed + 2)
        self._gen = ContactGenerator(self._rng, team_id)
        self._generate(contacts, parse_ns(start) // 1000, tie_groups, tie_size)

    def __len__(self) -> int:
        """How many contacts are stored."""
        return len(self._keys)

    # ---- reads

    def all_json(self) -> str:
        """Every contact as one JSON array, sorted by (updated, id)."""
        with self._lock:
            return "[" + ",".join(self._json) + "]"

    def contact(self, id: Any) -> dict[str, Any]:
        """Return a deep copy of one contact, as served; KeyError if unknown."""
        with self._lock:
            return json.loads(self._json[bisect_left(self._keys, self._key_of[id])])

    def page(
        self, limit: int, page: int, date_ns: int | None, ascending: bool, knobs: Knobs
    ) -> bytes:
        """One page as bytes: bisect on the date threshold, slice, join the stored JSON."""
        if knobs.max_limit is not None:
            limit = min(limit, knobs.max_limit)
        if knobs.order == "newest-first":
            ascending = False
        with self._lock:
            n = len(self._keys)
            low = 0
            if date_ns is not None:
                if knobs.date_precision == "second":
                    seconds = date_ns // 1_000_000_000 + (1 if knobs.date_exclusive else 0)
                    threshold = seconds * 1_000_000
                elif knobs.date_exclusive:
                    threshold = date_ns // 1000 + 1
                else:
                    threshold = -(-date_ns // 1000)
                low = bisect_left(self._keys, (threshold,))
            rows = range(low, n) if knobs.tie_order == "id" else self._tie_ordered(low, knobs)
            skip = page * limit
            if ascending:
                chosen = rows[skip : skip + limit]
            else:
                stop = len(rows) - skip
                chosen = rows[max(stop - limit, 0) : max(stop, 0)][::-1]
            chunk = [self._json[index] for index in chosen]
        if knobs.max_bytes is not None:
            chunk = fitting(chunk, knobs.max_bytes)
        if knobs.order == "shuffled":
            self._order_rng.shuffle(chunk)
        return ("[" + ",".join(chunk) + "]").encode("utf-8", "surrogatepass")

    # ---- writes

    def update(
        self, n: int | None = None, ids: Sequence[int] | None = None, *, same_time: bool = False
    ) -> list[int]:
        """Edit ``ids`` (or ``n`` random contacts), each moving to the newest ``updated``.

        ``same_time`` gives the whole batch one ``updated`` (a bulk edit), else each its own.
        """
        with self._lock:
            if ids is None:
                if n is None:
                    raise ValueError("give n or ids")
                ids = self._rng.sample(self._ids, min(n, len(self._ids)))
            ids = list(ids)
            self._check_known(ids)
            stamp = self._clock() if same_time else None
            for cid in ids:
                record = json.loads(self._remove(cid))
                self._gen.edit(record)
                updated_us = stamp if stamp is not None else self._clock()
                record["updated"] = format_us(updated_us)
                self._insert(go_json(record), updated_us, 0, cid)
            return ids

    def create(self, n: int, *, same_time: bool = False) -> list[int]:
        """Create ``n`` contacts with ids above all others, rev 1, created = updated = now."""
        with self._lock:
            stamp = self._clock() if same_time else None
            ids = []
            for _ in range(n):
                cid = self._next_id
                updated_us = stamp if stamp is not None else self._clock()
                self._insert(self._gen.contact(cid, updated_us, "create", 1), updated_us, 0, cid)
                ids.append(cid)
            return ids

    def churn(self, changes: int, creates: int) -> None:
        """Make the data change between requests: ``changes`` updates, then ``creates``."""
        if changes > 0:
            self.update(changes)
        if creates > 0:
            self.create(creates)

    def delete(self, ids: Iterable[int]) -> None:
        """Delete for good (the vendor says deletion is permanent); KeyError if unknown."""
        with self._lock:
            ids = list(ids)
            self._check_known(ids)
            for cid in ids:
                self._remove(cid)

    def add_raw(self, record: dict[str, Any]) -> None:
        """Insert ``record`` as-is (bad-data tests); an unparseable ``updated`` sorts it first."""
        text = go_json(record)  # fail here, not mid-response, if it cannot be served
        updated = record.get("updated")
        try:
            updated_us = parse_ns(updated) // 1000 if isinstance(updated, str) else None
        except (ValueError, OverflowError):
            updated_us = None
        self._insert(text, UNPARSEABLE_US if updated_us is None else updated_us, *_id_key(record))

    def add_raw_json(self, text: str, updated: str | None, id: int | None) -> None:
        """Insert one contact's exact JSON ``text`` (which add_raw could not write), sorted."""
        updated_us = parse_ns(updated) // 1000 if updated is not None else UNPARSEABLE_US
        self._insert(text, updated_us, *_id_key({} if id is None else {"id": id}))

    def _insert(self, text: str, updated_us: int, id_kind: int, id_value: Any) -> None:
        """Insert serialised contact ``text`` at its sorted place; register a new int id."""
        with self._lock:
            key = (updated_us, id_kind, id_value, next(self._seq))
            index = bisect_left(self._keys, key)
            self._keys.insert(index, key)
            self._json.insert(index, text)
            if id_kind == 0 and id_value not in self._key_of:
                self._register(id_value, key)
                self._next_id = max(self._next_id, id_value + 1)

    # ---- internals (call with self._lock held)

    def _generate(self, n: int, start_us: int, tie_groups: int, tie_size: int) -> None:
        gen = self._gen
        stamps = gen.timeline(n, start_us, tie_groups, tie_size)
        ids = gen.ids(n, self._next_id)
        rows = [
            ((updated_us, 0, cid, next(self._seq)), gen.initial(cid, updated_us))
            for cid, updated_us in zip(ids, stamps, strict=True)
        ]
        rows.sort(key=lambda row: row[0])
        self._keys = [key for key, _ in rows]
        self._json = [text for _, text in rows]
        for key in self._keys:
            self._register(key[2], key)
        if n:
            self._newest_us = stamps[-1]
            self._next_id = max(ids) + 1

    def _check_known(self, ids: list[int]) -> None:
        missing = [cid for cid in ids if cid not in self._key_of]
        if missing:
            raise KeyError(f"unknown contact ids {missing}")

    def _register(self, cid: int, key: tuple[Any, ...]) -> None:
        self._key_of[cid] = key
        self._id_pos[cid] = len(self._ids)
        self._ids.append(cid)

    def _remove(self, cid: int) -> str:
        """Unlink contact ``cid`` from the store and the id index; returns its JSON."""
        index = bisect_left(self._keys, self._key_of.pop(cid))
        pos = self._id_pos.pop(cid)
        last = self._ids.pop()
        if last != cid:
            self._ids[pos] = last
            self._id_pos[last] = pos
        del self._keys[index]
        return self._json.pop(index)

    def _clock(self) -> int:
        """Monotone server clock in µs: now, or 1 µs after the newest ``updated``."""
        self._newest_us = max(time.time_ns() // 1000, self._newest_us + 1)
        return self._newest_us

    def _tie_ordered(self, low: int, knobs: Knobs) -> list[int]:
        """Store indexes from ``low`` on, sorted by ``updated`` and then by the tie order."""
        keys = self._keys
        if knobs.tie_order == "unstable":
            rng = self._order_rng
            return sorted(range(low, len(keys)), key=lambda i: (keys[i][0], rng.random()))
        tie_key: Callable[[Any], Any] = {
            "id-desc": lambda cid: -cid if is_int(cid) else 0,
            "id-text": str,
            "hash": lambda cid: hashlib.sha256(str(cid).encode()).digest(),
        }[knobs.tie_order]
        return sorted(range(low, len(keys)), key=lambda i: (keys[i][0], tie_key(keys[i][2])))


def fitting(chunk: list[str], max_bytes: int) -> list[str]:
    """The leading records of ``chunk`` whose JSON fits in ``max_bytes`` (at least one)."""
    used = 0
    for count, text in enumerate(chunk):
        used += len(text) + 1
        if used > max_bytes and count:
            return chunk[:count]
    return chunk
