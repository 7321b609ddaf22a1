"""Heymarket streams."""

from __future__ import annotations

import datetime
import time
import typing as t
from dataclasses import dataclass, field

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_heymarket.client import HeymarketAPIError, HeymarketStream
from tap_heymarket.fetching import Answer, Page, PageSource
from tap_heymarket.fields import CONTACTS
from tap_heymarket.normalize import (
    NormalizeReport,
    decode_contacts,
    normalize_timestamp,
)
from tap_heymarket.pagination import ContactsPaginator, PageRequest, PagingError
from tap_heymarket.sdk_internals import SortedStreamFastPath, fixed_width

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
        report, unkeyed, undated = found.report, found.unkeyed, found.undated
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
        if report.unknown_fields:
            self.logger.info(
                "Heymarket sent fields the schema does not have (not synced): %s",
                ", ".join(sorted(report.unknown_fields)),
            )
        if report.nulled:
            self.logger.warning(
                "Values that could not be read as their schema type were synced as null: %s",
                ", ".join(f"{name}: {count}" for name, count in sorted(report.nulled.items())),
            )
        if unkeyed:
            self.logger.error(
                "%d contacts had no usable id and could not be synced (positions: %s)",
                len(unkeyed),
                "; ".join(unkeyed[:20]),
            )
        if undated:
            self.logger.warning(
                "%d contacts had no usable updated time; synced without one (ids: %s)",
                len(undated),
                ", ".join(map(str, undated[:20])),
            )
