"""Heymarket streams."""

from __future__ import annotations

import threading
import typing as t
from functools import cached_property

from singer_sdk import singerlib as singer
from singer_sdk import typing as th
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_heymarket.client import HeymarketAPIError, HeymarketStream
from tap_heymarket.normalize import NormalizeReport, normalize_contact, normalize_timestamp
from tap_heymarket.pagination import ContactsPaginator

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


class _Prefetch:
    """One page fetched on a daemon thread while the previous page is being written out.

    A daemon thread, so that a tap told to stop is not held up by a request in flight.
    """

    def __init__(self, fetch: t.Callable[[dict], list[dict]], body: dict) -> None:
        self._done = threading.Event()
        self._value: list[dict] = []
        self._error: BaseException | None = None
        threading.Thread(target=self._run, args=(fetch, body), daemon=True).start()

    def _run(self, fetch: t.Callable[[dict], list[dict]], body: dict) -> None:
        try:
            self._value = fetch(body)
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> list[dict]:
        """The page, or the exception fetching it raised."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class ContactsStream(HeymarketStream):
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
            th.ObjectType(additional_properties=True),
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

    @cached_property
    def _records_pass_through(self) -> bool:
        """Nothing deselected, no stream map, no flattening: the SDK's per-record walk is a no-op."""
        maps = self.stream_maps
        return (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and all(self.mask.values())
        )

    def _generate_record_messages(self, record: dict) -> t.Iterator[singer.RecordMessage]:
        """Skip the SDK's per-record selection walk when it would change nothing (a third of the CPU)."""
        if not self._records_pass_through:
            yield from super()._generate_record_messages(record)
            return
        yield singer.RecordMessage(
            stream=self.stream_maps[0].stream_alias,
            record=record,
            version=self._stream_version,
            time_extracted=utc_now(),
        )

    def get_replication_key_signpost(self, context: Context | None) -> None:
        """No signpost: the stream is sorted, so the bookmark is always the last emitted ``updated``."""
        return

    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """A bookmark wins over ``start_date``: it only applies to a first sync."""
        return value

    def sync_start(self, context: Context | None) -> str | None:
        """Fixed-width timestamp to sync from: the bookmark, else ``start_date``, else None."""
        bookmark = self.get_starting_replication_key_value(context)
        if bookmark:
            return normalize_timestamp(bookmark)
        start_date = self.config.get("start_date")
        return normalize_timestamp(start_date) if start_date else None

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Contacts in ascending (``updated``, ``id``) order, each new contact once.

        The next page is requested as soon as the current one is parsed, so the wait for it
        overlaps the writing of the current page's records.
        """
        since = self.sync_start(context)
        paginator = ContactsPaginator(page_size=self.config["page_size"], since=since)
        report = NormalizeReport()
        unkeyed: list[str] = []
        undated: list[int] = []
        self.logger.info("Syncing contacts updated since %s", since or "the beginning")
        pending = _Prefetch(self.post_json, paginator.current.body())
        while True:
            request = paginator.current
            try:
                raw_page = pending.result()
            except HeymarketAPIError:
                # Everything emitted so far is in order, so its bookmark is safe to keep: a rerun
                # then resumes here instead of up to a few pages back.
                self._write_state_message()
                raise
            page = [normalize_contact(raw, report) for raw in raw_page]
            # Where in Heymarket's answer (request and index) a contact without an id stood.
            unkeyed.extend(
                f"date={request.date} page={request.page} limit={request.limit} #{index}"
                for index, contact in enumerate(page)
                if contact.get("id") is None
            )
            fresh = paginator.advance(page)
            if not paginator.finished:
                pending = _Prefetch(self.post_json, paginator.current.body())
            for contact in fresh:
                if contact.get("id") is None:
                    continue  # listed in ``unkeyed`` above
                if contact.get("updated") is None:
                    contact["updated"] = None  # the SDK's bookmarking needs the key present
                    undated.append(contact["id"])
                yield contact
            if paginator.finished:
                break
        self._log_summary(paginator, report, unkeyed, undated)

    def _log_summary(
        self,
        paginator: ContactsPaginator,
        report: NormalizeReport,
        unkeyed: list[str],
        undated: list[int],
    ) -> None:
        stats = paginator.stats
        self.logger.info(
            "Contacts sync done: %d requests, %d contacts read, %d re-reads skipped, "
            "%d window slides",
            stats.requests,
            stats.contacts_read,
            stats.reread,
            stats.slid_back,
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
        if stats.behind_bookmark:
            self.logger.error(
                "%d contacts arrived with an updated time older than contacts already synced "
                "in this run and were not synced; a full refresh picks them up",
                stats.behind_bookmark,
            )
