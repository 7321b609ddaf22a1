"""Heymarket streams."""

from __future__ import annotations

import datetime
import threading
import time
import typing as t
from dataclasses import dataclass, field

from singer_sdk import typing as th
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_heymarket.client import (
    HeymarketAPIError,
    HeymarketStream,
    MovingAverage,
    in_flight_target,
)
from tap_heymarket.normalize import (
    NormalizeReport,
    decode_contacts,
    normalize_timestamp,
)
from tap_heymarket.pagination import ContactsPaginator, PageRequest, PagingError
from tap_heymarket.sdk_internals import SortedStreamFastPath, fixed_width, utc_now

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: Pages between STATE messages: what an interrupted run reads again, at most.
STATE_EVERY_PAGES = 5

_TIMESTAMP = th.DateTimeType
#: A JSON array with free-form items. Item schemas are left out on purpose: warehouse loaders
#: (target-postgres among them) then store the list as one JSON value (``jsonb``), which JSON
#: operators can query, instead of a SQL array of JSON values. The normaliser still types the
#: items (note dates are fixed-width UTC, note ids strings, user ids integers).
_JSON_ARRAY = th.CustomType({"type": ["array", "null"]})


_Page = tuple[list[dict[str, t.Any]], NormalizeReport]
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
    #: Contacts dated in the future.
    future: list[dict[str, t.Any]] = field(default_factory=list)


class _Prefetch:
    """One request for a page, answered on a daemon thread while earlier pages are written out.

    A daemon thread, so that a tap told to stop is not held up by a request in flight.
    """

    def __init__(
        self, fetch: t.Callable[[dict[str, t.Any]], _Page], body: dict[str, t.Any]
    ) -> None:
        self._done = threading.Event()
        self._value: _Page = ([], NormalizeReport())
        self._error: BaseException | None = None
        #: When the page arrived: the ``time_extracted`` of its records.
        self.received_at = utc_now()
        threading.Thread(target=self._run, args=(fetch, body), daemon=True).start()

    def _run(self, fetch: t.Callable[[dict[str, t.Any]], _Page], body: dict[str, t.Any]) -> None:
        try:
            self._value = fetch(body)
            self.received_at = utc_now()
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> _Page:
        """The page and its normaliser report, or the exception fetching it raised."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class _InFlight:
    """The requests sent and not yet taken, each answered on its own thread."""

    def __init__(self, fetch: t.Callable[[dict[str, t.Any]], _Page]) -> None:
        self._fetch = fetch
        self._sent: dict[PageRequest, _Prefetch] = {}
        self._dropped = 0

    def keep(self, wanted: list[PageRequest]) -> None:
        """Have exactly ``wanted`` in flight: send those not sent yet, drop the rest."""
        for request in [request for request in self._sent if request not in wanted]:
            del self._sent[request]  # its answer is no longer needed; its thread ends alone
            self._dropped += 1
        for request in wanted:
            if request not in self._sent:
                self._sent[request] = _Prefetch(self._fetch, request.body())

    def take(self, request: PageRequest) -> _Prefetch:
        """The request sent for ``request``, no longer in flight once taken."""
        return self._sent.pop(request)

    @property
    def unused(self) -> int:
        """Requests sent whose answers were, or will be, never taken."""
        return self._dropped + len(self._sent)


class ContactsStream(SortedStreamFastPath, HeymarketStream):
    """Contacts, incrementally by ``updated``, from ``POST /v2/contacts/list``."""

    name = "contacts"
    path = "/v2/contacts/list"
    primary_keys = ("id",)
    replication_key = "updated"
    is_sorted = True
    #: The normaliser already makes every value match the schema, once per field.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    schema = th.PropertiesList(
        th.Property("id", th.IntegerType, required=True, description="Contact ID"),
        # Nullable, so that a target loads the rare contact without a usable time.
        th.Property(
            "updated", _TIMESTAMP, required=True, nullable=True, description="Last change (UTC)"
        ),
        th.Property("created", _TIMESTAMP, description="Creation time (UTC)"),
        th.Property("first", th.StringType),
        th.Property("last", th.StringType),
        th.Property("display_name", th.StringType),
        th.Property("phone", th.StringType, description="E.164 digits without the plus"),
        th.Property("email", th.StringType),
        th.Property("avatar", th.StringType),
        th.Property("external_id", th.StringType),
        th.Property("external_ref", th.StringType),
        th.Property("type", th.StringType),
        th.Property("op", th.StringType, description="Last operation performed"),
        th.Property("rev", th.IntegerType, description="Incremented on every write"),
        th.Property("shared", th.BooleanType),
        th.Property("is_opted_out", th.BooleanType),
        th.Property("creator_id", th.IntegerType),
        th.Property("inbox_id", th.IntegerType),
        th.Property("parent_id", th.IntegerType),
        th.Property("team_id", th.IntegerType),
        th.Property("assigned_user_id", th.IntegerType),
        th.Property(
            "custom",
            # Without a ``properties`` key (``ObjectType`` adds an empty one), so that flattening
            # keeps the object whole as one JSON column: an empty ``properties`` makes the SDK
            # spread it into ``custom__<id>`` keys that no schema declares, and targets drop them.
            th.CustomType({"type": ["object", "null"], "additionalProperties": True}),
            description="Custom fields keyed by custom-field id",
        ),
        th.Property(
            "note",
            _JSON_ARRAY,
            description="Notes: objects {date (UTC date-time), id, name, text, user_id}",
        ),
        th.Property(
            "tags",
            _JSON_ARRAY,
            description="Tags: objects {id, tag, color, team_id, created, updated, rev} or plain values",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # A STATE message every few pages: an interrupted run resumes from there.
        self.STATE_MSG_FREQUENCY = self.config["page_size"] * STATE_EVERY_PAGES

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
        contact (see ``pagination``), the sync fails without a STATE past what was emitted.

        The next page is requested as soon as the current one is parsed, so the wait for it
        overlaps the writing of the current page's records; when the API's latency is longer
        than that writing and the pacing, the paginator's next windows are requested together
        (see ``pagination``), up to ``MAX_IN_FLIGHT`` at once.
        """
        since = self.sync_start(context)
        paginator = ContactsPaginator(
            page_size=self.config["page_size"], since=since, signpost=self.signpost
        )
        found = _Findings()
        self.logger.info("Syncing contacts updated since %s", since or "the beginning")
        # Made here, once: the fetching threads share them.
        _ = self.authenticator, self.pacer, self._session, self.latency
        interval = 60.0 / self.config["max_requests_per_minute"]
        busy = MovingAverage()  # seconds spent writing out one page

        def fetch(body: dict[str, t.Any]) -> _Page:
            page_report = NormalizeReport()
            page = self.post_json(body, lambda content: decode_contacts(content, page_report))
            return page, page_report

        in_flight = _InFlight(fetch)

        def send_ahead() -> None:
            target = in_flight_target(self.latency.value, interval, busy.value)
            paginator.windows_per_date = target
            in_flight.keep(paginator.upcoming(target))

        send_ahead()
        while True:
            request = paginator.current
            pending = in_flight.take(request)
            try:
                page, page_report = pending.result()
            except HeymarketAPIError:
                # Everything emitted so far is in order, so its bookmark is safe to keep: a rerun
                # then resumes here instead of up to a few pages back.
                self._write_state_message()
                raise
            started = time.monotonic()
            self.extracted_at = pending.received_at
            found.report.merge(page_report)
            # Where in Heymarket's answer (request and index) a contact without an id stood.
            found.unkeyed.extend(
                f"date={request.date} page={request.page} limit={request.limit} #{index}"
                for index, contact in enumerate(page)
                if contact.get("id") is None
            )
            try:
                fresh = paginator.advance(page)
            except PagingError as exc:
                # No STATE: the answers so far may not be what they seemed. A rerun starts from
                # the last STATE written, which the records before it fully back.
                raise HeymarketAPIError(str(exc)) from None
            if not paginator.finished:
                send_ahead()
            # Later than the page's arrival (and a minute's clock skew): dated in the future.
            now = fixed_width(pending.received_at + _CLOCK_SKEW)
            for contact in fresh:
                if contact.get("id") is None:
                    continue  # listed in ``unkeyed`` above
                if contact.get("updated") is None:
                    contact["updated"] = None  # the SDK's bookmarking needs the key present
                    found.undated.append(contact["id"])
                elif contact["updated"] > now:
                    found.future.append(contact)
                yield contact
            if paginator.finished:
                break
            busy.observe(time.monotonic() - started)
        self._log_summary(paginator, found, in_flight.unused)

    def _log_summary(self, paginator: ContactsPaginator, found: _Findings, unused: int) -> None:
        report, unkeyed, undated, future = found.report, found.unkeyed, found.undated, found.future
        if future:
            self.logger.warning(
                "%d contacts were dated in the future (latest: contact %s, updated %s); they were "
                "synced, and the bookmark stays at the sync's start (%s) so that no edit made "
                "before them is skipped: every run reads them again until that date passes",
                len(future),
                future[-1]["id"],
                future[-1]["updated"],
                self.signpost,
            )
        stats = paginator.stats
        self.logger.info(
            "Contacts sync done: %d requests, %d contacts read, %d re-reads skipped, "
            "%d window slides, %d end-of-list probes, %d requests sent ahead and not needed",
            stats.requests,
            stats.contacts_read,
            stats.reread,
            stats.slid_back,
            stats.probes,
            unused,
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
                "%d contacts changed during the sync were listed out of order; the next run "
                "reads them (the bookmark stops at the sync's start)",
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
