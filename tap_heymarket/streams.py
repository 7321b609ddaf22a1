"""Heymarket streams."""

from __future__ import annotations

import datetime
import functools
import logging
import time
import typing as t
from dataclasses import dataclass, field

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_heymarket.client import HeymarketAPIError, HeymarketStream
from tap_heymarket.fetching import Answer, Page, PageSource
from tap_heymarket.fields import CONTACTS, MESSAGES
from tap_heymarket.normalize import (
    TIMESTAMP_FORMAT,
    NormalizeReport,
    decode_contacts,
    decode_records,
    normalize_timestamp,
)
from tap_heymarket.pagination import ContactsPaginator, PageRequest, PagingError
from tap_heymarket.sdk_internals import OwnBookmark, SortedStreamFastPath, fixed_width, utc_now
from tap_heymarket.walking import BackwardWalk, WalkStats

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: Pages between STATE messages: what an interrupted run reads again, at most.
STATE_EVERY_PAGES = 5

#: How far ahead of this machine's clock Heymarket's may run before a contact counts as
#: dated in the future.
_CLOCK_SKEW = datetime.timedelta(minutes=1)


@dataclass
class _Findings:
    """What a sync found wrong with the data, for the log lines at its end."""

    report: NormalizeReport = field(default_factory=NormalizeReport)
    #: Where in Heymarket's answers (request and index) each contact without an id stood.
    unkeyed: list[str] = field(default_factory=list)
    #: Ids of contacts without a usable ``updated``.
    undated: list[int] = field(default_factory=list)
    #: How many contacts were dated in the future, and the latest of them.
    future: int = 0
    latest_future: dict[str, t.Any] | None = None


class ContactsStream(SortedStreamFastPath, HeymarketStream):
    """Contacts, incrementally by ``updated``, from ``POST /v2/contacts/list``."""

    name = "contacts"
    path = "/v2/contacts/list"
    primary_keys = ("id",)
    replication_key = "updated"
    is_sorted = True
    #: The normaliser already makes every value match the schema, once per field.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    #: Declared once in ``fields``, where the typed decoder and the normaliser read it too.
    schema = CONTACTS.json_schema()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._paginator: ContactsPaginator | None = None

    def bookmark_may_move(self) -> bool:
        """Not before Heymarket has shown it sorts as asked (or the sync ended without it).

        Until an answer holds two different times, a server ignoring ``ascending`` would look
        the same as one honouring it, and a bookmark could pass every older contact.
        """
        paginator = self._paginator
        return paginator is None or paginator.order_shown or paginator.finished

    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """A bookmark wins over ``start_date``: it only applies to a first sync."""
        return value

    def sync_start(self, context: Context | None) -> str | None:
        """Fixed-width timestamp to sync from: the bookmark, else ``start_date``, else None.

        A bookmark that is not a date-time, or is in the future, ends the sync before any
        request: every rerun would fail on it the same way, or skip without a word every contact
        changed until then. An hour's grace allows for Heymarket's clock, which wrote it,
        running ahead of this machine's.
        """
        bookmark = self.get_starting_replication_key_value(context)
        if not bookmark:
            start_date = self.config.get("start_date")
            return normalize_timestamp(start_date) if start_date else None
        try:
            start = normalize_timestamp(bookmark)
        except ValueError as exc:  # the normaliser's InvalidTimestampError, quoting the value
            problem = str(exc)
        else:
            latest = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
            if start is None or start <= t.cast(str, normalize_timestamp(latest)):
                return start
            problem = f"{bookmark!r} is in the future"
        msg = f"state: the {self.name} bookmark {problem}; fix or clear the state"
        raise HeymarketAPIError(msg)

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Contacts in ascending ``updated`` order, each new contact once.

        When Heymarket answers in a way the paging cannot get through without risking a lost
        contact (see ``pagination``), the sync fails without a STATE past what was emitted;
        when it fails to answer, after a STATE for what was emitted (all of it in order).
        """
        since = self.sync_start(context)
        paginator = ContactsPaginator(
            page_size=self.config["page_size"], since=since, signpost=self.signpost
        )
        self._paginator = paginator
        self.bookmark_limit = paginator.next_run_reads_from
        # A STATE message every few pages: an interrupted run resumes from there. (Set here,
        # where the settings are surely checked: ``--discover`` builds streams without them.)
        self.STATE_MSG_FREQUENCY = self.config["page_size"] * STATE_EVERY_PAGES
        found = _Findings()
        self.logger.info("Syncing contacts updated since %s", since or "the beginning")
        # Made here, once: the fetching threads share them.
        _ = self.authenticator, self.pacer, self._idle_sessions, self.latency
        interval = 60.0 / self.config["max_requests_per_minute"]
        pages = PageSource(paginator, self._fetch, self.latency, interval)
        try:
            for page in pages:
                yield from self._emit(page, found)
        except PagingError as exc:
            # No STATE: the answers so far may not be what they seemed. A rerun starts from
            # the last STATE written, which the records before it fully back.
            raise HeymarketAPIError(str(exc)) from None
        except HeymarketAPIError:
            # Everything emitted so far is in order, so its bookmark is safe to keep: a rerun
            # then resumes here instead of up to a few pages back.
            self._write_state_message()
            raise
        self._log_summary(paginator, found, pages.unused)

    def _fetch(self, request: PageRequest) -> Answer:
        """One page of contacts, decoded, and what decoding it had to change."""
        report = NormalizeReport()
        page = self.post_json(request.body(), lambda content: decode_contacts(content, report))
        return page, report

    def _emit(self, page: Page, found: _Findings) -> t.Iterator[dict[str, t.Any]]:
        """The page's new contacts, noting what is wrong with any of the page's contacts."""
        self.extracted_at = page.received_at
        found.report.merge(page.report)
        request = page.request
        # Where in Heymarket's answer (request and index) a contact without an id stood.
        found.unkeyed.extend(
            f"{request} #{index}"
            for index, contact in enumerate(page.records)
            if contact.get("id") is None
        )
        # Later than the page's arrival (and a minute's clock skew): dated in the future.
        now = fixed_width(page.received_at + _CLOCK_SKEW)
        for contact in page.fresh:
            if contact.get("id") is None:
                continue  # listed in ``unkeyed`` above
            if contact.get("updated") is None:
                contact["updated"] = None  # the SDK's bookmarking needs the key present
                found.undated.append(contact["id"])
            elif contact["updated"] > now:
                found.future += 1
                found.latest_future = contact
            yield contact

    def _log_summary(self, paginator: ContactsPaginator, found: _Findings, unused: int) -> None:
        if found.latest_future is not None:
            self.logger.warning(
                "%d contacts were dated in the future (latest: contact %s, updated %s); they were "
                "synced, and the bookmark stays at the sync's start (%s) so that no edit made "
                "before them is skipped: every run reads them again until that date passes",
                found.future,
                found.latest_future["id"],
                found.latest_future["updated"],
                self.signpost,
            )
        stats = paginator.stats
        self.logger.info(
            "Contacts sync done: %d requests, %d contacts read, %d re-reads skipped, "
            "%d window slides, %d end-of-list probes, %d requests sent ahead and not needed, "
            "%d answers asked again alone",
            stats.requests,
            stats.contacts_read,
            stats.reread,
            stats.slid_back,
            stats.probes,
            unused,
            stats.asked_again,
        )
        if paginator.capped_at is not None:
            self.logger.warning(
                "Heymarket answered with at most %d contacts when asked for %d: paged with %d "
                "(more requests against the rate limit; lower page_size to match)",
                paginator.capped_at,
                self.config["page_size"],
                paginator.capped_at,
            )
        if stats.deferred:
            self.logger.info(
                "%d contacts dated during the sync, or stale answers to requests sent together, "
                "were listed out of order; the next run reads them (the bookmark stops a second "
                "before the sync's start)",
                stats.deferred,
            )
        _log_findings(self.logger, "contacts", "updated", found)


class MessagesStream(OwnBookmark, HeymarketStream):
    """Messages, by creation time, from ``POST /v1/messages/all``, walking back (``walking``).

    A run walks from its start back to its bookmark less ``messages_lookback_hours``, so it
    syncs every message created since the last run and every status or flag change made within
    the look-back after a message's creation. The state holds the bookmark (every message
    created before it was synced) and, while a walk is under way, the walk's top, floor and
    boundary: an interrupted run resumes that walk where it stopped, then walks from its own
    start down to the resumed walk's top less the look-back.
    """

    name = "messages"
    path = "/v1/messages/all"
    primary_keys = ("id",)
    replication_key = "date"
    is_sorted = False
    own_state_keys = ("walk",)
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    #: Declared once in ``fields``, where the typed decoder and the normaliser read it too.
    schema = MESSAGES.json_schema()

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Every message created since the bookmark less the look-back, newest first."""
        bookmark, walks = self._planned_walks()
        found = _Findings()
        stats = WalkStats()
        _ = self.authenticator, self.pacer, self._idle_sessions, self.latency
        for walk in walks:
            self.logger.info(
                "Syncing messages created from %s to %s",
                walk.floor or "the beginning",
                walk.top,
            )
            try:
                yield from self._walk(walk, bookmark, found)
            except PagingError as exc:
                # Every STATE so far is backed by answers that passed their checks.
                raise HeymarketAPIError(str(exc)) from None
            bookmark = walk.top
            self.save_state(
                {"replication_key": self.replication_key, "replication_key_value": bookmark}
            )
            _add_stats(stats, walk.stats)
        self._log_summary(stats, found)

    def _planned_walks(self) -> tuple[str | None, list[BackwardWalk]]:
        """The bookmark, and the walks this run makes: an interrupted one first, if any.

        A bookmark or walk in the state that is not what this stream wrote ends the sync
        before any request: every rerun would fail on it the same way.
        """
        state = self.stream_state
        bookmark = self._state_timestamp(state.get("replication_key_value"), "bookmark")
        start_date = self.config.get("start_date")
        since = normalize_timestamp(start_date) if start_date else None
        lookback = datetime.timedelta(hours=self.config["messages_lookback_hours"])
        limit = self.config["page_size"]
        walks = []
        reached = bookmark
        saved = state.get("walk")
        if saved is not None:
            if not isinstance(saved, dict):
                saved = {}
            top, boundary = (
                self._state_timestamp(saved.get(k), f"walk {k}") for k in ("top", "boundary")
            )
            floor = (
                self._state_timestamp(saved.get("floor"), "walk floor")
                if saved.get("floor")
                else None
            )
            if top is None or boundary is None:
                self._bad_state("walk", "lacks its top or boundary")
            walks.append(BackwardWalk(top=top, floor=floor, limit=limit, start=boundary))
            reached = top
        floor = _earlier(reached, lookback) if reached else None
        if since and (floor is None or since > floor):
            floor = since
        walks.append(BackwardWalk(top=self.signpost, floor=floor, limit=limit))
        return bookmark, walks

    def _state_timestamp(self, value: t.Any, what: str) -> str | None:
        """A fixed-width timestamp from the state, or the sync fails naming what is wrong."""
        if value is None:
            return None
        try:
            stamp = normalize_timestamp(value)
        except ValueError as exc:
            self._bad_state(what, str(exc))
        latest = fixed_width(utc_now() + datetime.timedelta(hours=1))
        if stamp is not None and stamp > latest:
            self._bad_state(what, f"{value!r} is in the future")
        return stamp

    def _bad_state(self, what: str, problem: str) -> t.NoReturn:
        msg = f"state: the {self.name} {what} {problem}; fix or clear the state"
        raise HeymarketAPIError(msg)

    def _walk(
        self, walk: BackwardWalk, bookmark: str | None, found: _Findings
    ) -> t.Iterator[dict[str, t.Any]]:
        """The walk's new messages; a STATE after each answer, to resume from its boundary."""
        while not walk.finished:
            request = walk.request()
            report = NormalizeReport()
            body: dict[str, t.Any] = {
                "created_at": request.cursor,
                "order": "created_at",
                "ascending": False,
                "limit": request.limit,
            }
            if request.page is not None:
                body["page"] = request.page
            answer = self.post_json(
                body, functools.partial(decode_records, MESSAGES, report=report)
            )
            self.extracted_at = utc_now()
            found.report.merge(report)
            for index, message in enumerate(walk.advance(request, answer)):
                if message.get("id") is None:
                    found.unkeyed.append(f"{request} #{index}")
                    continue
                _add_conversation_columns(message)
                if message.get("date") is None:
                    found.undated.append(message["id"])
                yield message
            walk_state = {"top": walk.top, "floor": walk.floor, "boundary": walk.resume_point}
            values: dict[str, t.Any] = {"walk": walk_state}
            if bookmark is not None:
                values.update(replication_key=self.replication_key, replication_key_value=bookmark)
            self.save_state(values)

    def _log_summary(self, stats: WalkStats, found: _Findings) -> None:
        self.logger.info(
            "Messages sync done: %d requests, %d messages read, %d re-reads skipped, "
            "%d ties read with a raised limit, %d tie pages",
            stats.requests,
            stats.records_read,
            stats.reread,
            stats.limit_raised,
            stats.tie_pages,
        )
        _log_findings(self.logger, "messages", "date", found)


def _log_findings(logger: logging.Logger, nouns: str, key: str, found: _Findings) -> None:
    """What was wrong with the data: fields unknown, values nulled, records without id or key."""
    report = found.report
    if report.unknown_fields:
        logger.info(
            "Heymarket sent %s fields the schema does not have (not synced): %s",
            nouns[:-1],
            ", ".join(sorted(report.unknown_fields)),
        )
    if report.nulled:
        logger.warning(
            "Values that could not be read as their schema type were synced as null: %s",
            ", ".join(f"{name}: {count}" for name, count in sorted(report.nulled.items())),
        )
    if found.unkeyed:
        logger.error(
            "%d %s had no usable id and could not be synced (positions: %s)",
            len(found.unkeyed),
            nouns,
            "; ".join(found.unkeyed[:20]),
        )
    if found.undated:
        logger.warning(
            "%d %s had no usable %s time; synced without one (ids: %s)",
            len(found.undated),
            nouns,
            key,
            ", ".join(map(str, found.undated[:20])),
        )


def _earlier(timestamp: str, delta: datetime.timedelta) -> str:
    instant = datetime.datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(
        tzinfo=datetime.timezone.utc
    )
    return fixed_width(instant - delta)


def _add_stats(total: WalkStats, more: WalkStats) -> None:
    for name, value in vars(more).items():
        setattr(total, name, getattr(total, name) + value)


def _add_conversation_columns(message: dict[str, t.Any]) -> None:
    """``conversation_id`` and ``inbox_id`` from the embedded conversation, as columns."""
    conversation = message.get("conversation")
    if isinstance(conversation, dict):
        for column, key in (("conversation_id", "id"), ("inbox_id", "inbox")):
            value = conversation.get(key)
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
                message[column] = value
