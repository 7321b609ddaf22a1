"""The paginator against an in-memory model of the list endpoint (no HTTP): nothing is ever lost.

The model changes contacts between every two requests, the way a live account does during a
sync; hypothesis varies the seed, the page size, the churn, ties and the API's ``date`` reading.
"""

from __future__ import annotations

import datetime
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tap_heymarket.normalize import TIMESTAMP_FORMAT
from tap_heymarket.pagination import ContactsPaginator, PageRequest, _overlapping_window

BASE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


class ListModel:
    """Contacts sorted by (updated, id); ``date`` inclusive or exclusive, at full or second precision."""

    def __init__(
        self, rng: random.Random, size: int, tie: int, *, exclusive: bool, by_second: bool
    ):
        self.rng = rng
        self.exclusive = exclusive
        self.by_second = by_second
        self.clock = BASE
        self.contacts: dict[int, str] = {}
        for contact_id in range(1, size + 1):
            if contact_id > tie:  # the first `tie` contacts share one updated (a bulk import)
                self.clock += datetime.timedelta(
                    microseconds=rng.choice([1, 250_000, 700_000, 3_000_000])
                )
            self.contacts[contact_id] = self.clock.strftime(TIMESTAMP_FORMAT)
        self.next_id = size + 1

    def answer(self, request: PageRequest) -> list[dict]:
        rows = sorted(((updated, cid) for cid, updated in self.contacts.items()))
        if request.date is not None:
            rows = [row for row in rows if self._after(row[0], request.date)]
        page = rows[request.offset : request.offset + request.limit]
        return [{"id": cid, "updated": updated} for updated, cid in page]

    def _after(self, updated: str, date: str) -> bool:
        left = updated[:19] if self.by_second else updated
        right = date[:19] if self.by_second else f"{date[:19]}.000000Z"
        return left > right if self.exclusive else left >= right

    def churn(self, updates: int, creates: int) -> None:
        for contact_id in self.rng.sample(sorted(self.contacts), min(updates, len(self.contacts))):
            self.clock += datetime.timedelta(microseconds=self.rng.choice([1, 400_000]))
            self.contacts[contact_id] = self.clock.strftime(TIMESTAMP_FORMAT)
        for _ in range(creates):
            self.clock += datetime.timedelta(microseconds=1)
            self.contacts[self.next_id] = self.clock.strftime(TIMESTAMP_FORMAT)
            self.next_id += 1


def sync(
    model: ListModel,
    page_size: int,
    since: str | None,
    updates: int,
    creates: int,
    in_flight: int = 1,
):
    """Page to the end; the account changes between requests for the first 300 of them.

    With ``in_flight`` above one, the requests ``upcoming()`` names are sent together and the
    model answers them in a random order, changing between any two answers; answers to
    requests the paginator stops naming are thrown away, as the stream does.

    (Churn has to stop at some point: a sync with one contact per page never outruns an
    account that gains two contacts per request.)
    """
    paginator = ContactsPaginator(page_size=page_size, since=since)
    paginator.windows_per_date = in_flight
    sent: dict[PageRequest, list[dict] | None] = {}  # None: not answered yet
    emitted: list[dict] = []
    answers = 0
    while not paginator.finished:
        wanted = paginator.upcoming(in_flight)
        sent = {request: sent.get(request) for request in wanted}
        while sent[paginator.current] is None:
            request = model.rng.choice([r for r, answer in sent.items() if answer is None])
            sent[request] = model.answer(request)
            answers += 1
            if answers < 300:
                model.churn(updates, creates)
        emitted.extend(paginator.advance(sent.pop(paginator.current)))
        assert paginator.stats.requests < 50_000, "paging does not terminate"
    return emitted, paginator


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    size=st.integers(0, 700),
    tie=st.sampled_from([0, 3, 250]),
    page_size=st.sampled_from([1, 7, 30, 100]),
    updates=st.integers(0, 6),
    creates=st.integers(0, 2),
    exclusive=st.booleans(),
    by_second=st.booleans(),
    in_flight=st.sampled_from([1, 2, 4]),
)
def test_every_contact_present_at_the_start_is_emitted_in_order_under_churn(
    seed, size, tie, page_size, updates, creates, exclusive, by_second, in_flight
):
    model = ListModel(
        random.Random(seed), size, min(tie, size), exclusive=exclusive, by_second=by_second
    )
    at_start = set(model.contacts)

    emitted, paginator = sync(model, page_size, None, updates, creates, in_flight)

    keys = [(c["updated"], c["id"]) for c in emitted]
    assert keys == sorted(keys), "contacts must leave in (updated, id) order"
    assert len(keys) == len(set(keys)), "a contact version is emitted once"
    assert at_start <= {c["id"] for c in emitted}, "a contact present at the start was lost"
    assert paginator.stats.behind_bookmark == 0


def test_a_250_contact_tie_is_read_whole_while_its_members_are_updated():
    model = ListModel(random.Random(7), 300, 250, exclusive=True, by_second=True)
    at_start = set(model.contacts)

    emitted, paginator = sync(model, 100, None, updates=5, creates=1)

    assert at_start <= {c["id"] for c in emitted}
    assert paginator.stats.slid_back >= 0 and paginator.stats.requests < 40


def test_a_resumed_sync_starts_at_the_bookmark_and_re_emits_only_its_ties():
    model = ListModel(random.Random(3), 500, 0, exclusive=False, by_second=False)
    first, _ = sync(model, 100, None, 0, 0)
    bookmark = first[-1]["updated"]

    again, paginator = sync(model, 100, bookmark, 0, 0)

    assert [c["updated"] for c in again] == [bookmark] * len(again)
    assert paginator.current.date is not None
    model.churn(10, 0)
    changed, _ = sync(model, 100, bookmark, 0, 0)
    assert len({c["id"] for c in changed} - {first[-1]["id"]}) == 10


def test_first_request_asks_a_whole_second_before_the_bookmark_in_ascending_order():
    paginator = ContactsPaginator(page_size=100, since="2024-05-06T07:08:09.500000Z")
    assert paginator.current.body() == {
        "limit": 100,
        "page": 0,
        "ascending": True,
        "date": "2024-05-06T07:08:08Z",
    }
    assert ContactsPaginator(page_size=25, since=None).current.body() == {
        "limit": 25,
        "page": 0,
        "ascending": True,
    }


def test_overlapping_windows_repeat_a_tenth_and_always_advance():
    for last_index in range(0, 5000, 13):
        limit, page = _overlapping_window(last_index, 10, 100)
        start, end = page * limit, page * limit + limit
        assert start <= max(0, last_index + 1 - 10)
        assert end > last_index + 1


def test_requests_sent_together_are_each_the_next_one_the_paginator_asks_for():
    model = ListModel(random.Random(5), 2000, 0, exclusive=False, by_second=False)
    paginator = ContactsPaginator(page_size=100, since=None)
    paginator.windows_per_date = 4
    paginator.advance(model.answer(paginator.current))  # the date moves: a round of 4 begins

    together = paginator.upcoming(4)
    assert len(together) == 4 and len({request.date for request in together}) == 1
    answers = [model.answer(request) for request in reversed(together)][::-1]
    for request, answer in zip(together, answers, strict=True):
        assert paginator.current == request
        assert len(paginator.advance(answer)) >= 90, "each window brings mostly new contacts"
    assert paginator.current.page == 0 and paginator.current.date > together[0].date

    emitted, sequential = sync(model, 100, None, 0, 0)
    emitted_together, in_rounds = sync(model, 100, None, 0, 0, in_flight=4)
    assert emitted_together == emitted
    assert in_rounds.stats.requests <= sequential.stats.requests * 1.05
