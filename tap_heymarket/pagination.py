"""Page through ``/v2/contacts/list`` without ever losing a contact.

The endpoint pages by number (``page`` = 0, 1, 2, ... of ``limit`` contacts) over the list of
contacts updated since ``date``, sorted by ``updated``. Plain offset paging over that list loses
contacts: when a contact on an earlier page is updated it moves to the end, every later contact
shifts one place forward, and the contact that slid onto the page already read is never seen,
and never will be, once the bookmark has moved past it.

So the offset is kept short-lived. After each page the paginator moves ``date`` up to just
below the newest ``updated`` it has read (one whole second below, so the next answer includes
every contact at or after it whether the API's ``date`` is inclusive or exclusive) and starts
again at page 0. A fresh query from ``date`` is correct by construction: everything before it
has been read, and everything at or after it is in the answer.

Only when a whole page falls within that second (bulk imports put hundreds of contacts on one
``updated``) can ``date`` not move. Then the paginator pages by offset, but with overlapping
windows: each request repeats the last tenth of what was just read (``limit`` and ``page`` are
chosen so that ``page * limit`` lands inside it). Contacts only ever leave this part of the
list (an update moves a contact to the end), so positions only shift towards the start; as long
as a contact already read reappears in the new window, the contacts after it are exactly the
next ones, and nothing was skipped. If none reappears, the window slides back until one does
(offset 0 always qualifies).

The same windows let several requests be in flight at once when the API's latency, not the
rate limit, is what a sync waits for. With ``windows_per_date`` above one, a fresh ``date`` is
followed by that many windows in all before ``date`` moves again, and as a window's place
depends only on the one before it coming back full, ``upcoming()`` can name them all before any
answer is in. Each answer is still taken in order and must join the one before it, whatever
order the API evaluated them in: the argument above never relied on that order, only on
contacts leaving and never entering the part of the list already read. A window that does not
join makes the paginator look further back on its own, and the requests sent ahead for it
are simply not asked for (``upcoming()`` no longer names them). Out-of-order answers have two
consequences, both handled: an answer evaluated before one already taken can hold an older
version of a contact whose newer version is further on (it is skipped as a re-read), and a
short answer evaluated early can end before contacts updated meanwhile, so after requests were
sent together only a short answer to a request sent alone ends the sync.

Contacts read twice are passed on once (targets upsert on ``id`` anyway); every contact is
passed on in ascending (``updated``, ``id``) order, so the bookmark can be saved at any point
and a restart from it re-reads at most the contacts sharing the bookmark's ``updated``.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from tap_heymarket.normalize import query_date, widen

#: (updated, id) of a contact: the order the API sorts by and the tap emits in.
Key = tuple[str, int]


@dataclass(frozen=True)
class PageRequest:
    """One request for a page of contacts."""

    date: str | None
    page: int
    limit: int

    def body(self) -> dict[str, t.Any]:
        """The JSON body ``/v2/contacts/list`` expects (``date`` omitted for all history)."""
        body: dict[str, t.Any] = {"limit": self.limit, "page": self.page, "ascending": True}
        if self.date is not None:
            body["date"] = self.date
        return body

    @property
    def offset(self) -> int:
        """Position of the first contact of this page in the list for ``date``."""
        return self.page * self.limit


@dataclass
class PagingStats:
    """What paging cost, for the end-of-sync log line."""

    requests: int = 0
    contacts_read: int = 0
    reread: int = 0
    slid_back: int = 0
    behind_bookmark: int = 0


#: Overlapping windows need room to both repeat and advance; below this many contacts a
#: window cannot always do both, so tie windows may be larger than a small ``page_size``.
MIN_WINDOW = 20
#: Contacts a window sent ahead repeats of the one before it. Requests sent together are
#: evaluated within moments of each other, so few contacts can leave in between; when more
#: do, the window does not join and the paginator slides back (correct, one request dearer).
AHEAD_OVERLAP = 2


def _overlapping_window(last_index: int, overlap: int, max_limit: int) -> tuple[int, int]:
    """(limit, page) whose window repeats at least ``overlap`` contacts up to ``last_index`` and reaches furthest."""
    latest_start = max(0, last_index + 1 - overlap)
    best_limit, best_page, best_end = max_limit, 0, -1
    for limit in range(max_limit, 0, -1):
        page = latest_start // limit
        end = page * limit + limit
        if end > best_end:
            best_limit, best_page, best_end = limit, page, end
    return best_limit, best_page


class ContactsPaginator:
    """Page-number paginator over contacts sorted by ``updated`` that never skips one.

    ``current`` is the request to send; ``advance()`` takes the page it returned (normalised
    contacts, as the API sorted them) and returns the contacts not passed on before.
    """

    def __init__(self, *, page_size: int, since: str | None) -> None:
        """``since``: fixed-width timestamp of the bookmark (or start date); None for all history."""
        self._page_size = page_size
        self._window = max(page_size, MIN_WINDOW)
        self._overlap = self._window // 10
        self._since = since
        self.current = PageRequest(
            date=query_date(since) if since else None, page=0, limit=page_size
        )
        self.finished = False
        self.stats = PagingStats()
        # Keys of the contacts read in the last window, to find where the next one joins it.
        self._last_window: list[Key] = []
        # Keys passed on since the current ``date``: re-reads of them are dropped.
        self._passed_on: set[Key] = set()
        self._newest: Key | None = None
        #: Windows per ``date`` (1: move ``date`` after every page); read when ``date`` moves.
        self.windows_per_date = 1
        # Windows still to come on the current ``date`` before it moves again.
        self._windows_left = 0
        # Whether this ``date``'s windows may have been sent (and answered) together.
        self._sent_ahead = False

    def upcoming(self, count: int) -> list[PageRequest]:
        """``current`` and the requests that follow it if every page comes back full: ``count`` at most.

        Only windows already planned on the current ``date`` are named (never a new ``date``,
        which depends on the answers), so each is exactly what ``current`` becomes in turn.
        """
        requests = [self.current]
        request = self.current
        for _ in range(min(count - 1, self._windows_left)):
            limit, page = _overlapping_window(
                request.offset + request.limit - 1, AHEAD_OVERLAP, self._window
            )
            request = PageRequest(date=request.date, page=page, limit=limit)
            requests.append(request)
        return requests

    def advance(self, page: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """Take the answer to ``current``; return the contacts to emit, and set the next request."""
        request = self.current
        self.stats.requests += 1
        self.stats.contacts_read += len(page)
        keys = [_key(contact) for contact in page]

        start = 0
        if request.offset > 0 and self._last_window:
            joined = self._join_point(keys)
            if joined is None:
                self._slide_back(request)
                return []
            start = joined + 1

        fresh: list[dict[str, t.Any]] = []
        for contact, key in zip(page[start:], keys[start:], strict=True):
            if key is None:
                fresh.append(contact)  # no usable (updated, id): the stream reports it
            elif key in self._passed_on or (self._since is not None and key[0] < self._since):
                self.stats.reread += 1
            elif self._newest is not None and key < self._newest:
                if self._sent_ahead:
                    # Answers to requests sent together can cross: this one was evaluated
                    # before one already taken, and the contact has since been updated (its
                    # new version is further on) or deleted.
                    self.stats.reread += 1
                else:
                    # Only a contact written with an ``updated`` older than ones already synced
                    # can land here; emitting it would break the order the bookmark relies on.
                    self.stats.behind_bookmark += 1
            else:
                fresh.append(contact)
                self._passed_on.add(key)
                self._newest = key

        self._plan_next(request, page, keys)
        return fresh

    def _join_point(self, keys: list[Key | None]) -> int | None:
        """Index in the new page of the last contact the previous window also had."""
        previous = set(self._last_window)
        for index in range(len(keys) - 1, -1, -1):
            if keys[index] in previous:
                return index
        return None

    def _slide_back(self, request: PageRequest) -> None:
        """The window no longer meets the last one: contacts left before it; look further back."""
        self.stats.slid_back += 1
        limit, page = _overlapping_window(request.offset - 1, self._overlap, self._window)
        self.current = PageRequest(date=request.date, page=page, limit=limit)

    def _plan_next(
        self, request: PageRequest, page: list[dict[str, t.Any]], keys: list[Key | None]
    ) -> None:
        if len(page) < request.limit:
            if self._sent_ahead:
                # The API may have answered this request before one already taken, so contacts
                # updated in between could be past its end: ask it again, alone, to finish.
                self._sent_ahead = False
                self._windows_left = 0
                return
            self.finished = True
            return
        placed = [key for key in keys if key is not None]
        if not placed:
            # A full page with nothing sortable in it: step over it by offset.
            self._last_window = []
            self.current = PageRequest(request.date, request.page + 1, request.limit)
            return
        self._last_window = placed
        if self._windows_left > 0:
            # The next of the windows planned on this ``date`` (``upcoming()`` named it).
            self._windows_left -= 1
            limit, page_number = _overlapping_window(
                request.offset + len(page) - 1, AHEAD_OVERLAP, self._window
            )
            self.current = PageRequest(date=request.date, page=page_number, limit=limit)
            return
        next_date = query_date(placed[-1][0])
        if request.date is None or next_date > request.date:
            floor = widen(next_date)
            self._passed_on = {key for key in self._passed_on if key[0] >= floor}
            self._last_window = []
            self._windows_left = self.windows_per_date - 1
            self._sent_ahead = self._windows_left > 0
            self.current = PageRequest(date=next_date, page=0, limit=self._page_size)
            return
        limit, page_number = _overlapping_window(
            request.offset + len(page) - 1, self._overlap, self._window
        )
        self.current = PageRequest(date=request.date, page=page_number, limit=limit)


def _key(contact: dict[str, t.Any]) -> Key | None:
    updated, contact_id = contact.get("updated"), contact.get("id")
    if updated is None or contact_id is None:
        return None
    return updated, contact_id
