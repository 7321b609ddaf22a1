"""Every place the tap relies on singer-sdk internals, and why each one pays.

Supported: singer-sdk 0.54.x. ``tests/test_sdk_internals.py`` pins that range and checks that
each internal named here still exists with the signature used, so an SDK upgrade that changes
one fails loudly there instead of quietly in a sync.

``SortedStreamFastPath``, a base for streams whose records come sorted by their replication key,
a page at a time (contacts). Figures: the CPU-bound benchmark case (50,000 contacts), the tap with and
without each piece in the same rounds (``docs/benchmarks.md``, "Private SDK seams"):

- ``Stream._write_record_message``: a record goes straight to the tap's buffered writer, with no
  ``RecordMessage`` and no per-record mapping walk, when no stream map, flattening, deselected
  or left-out property applies (else the SDK's own path). Without it a sync takes 1.24x as long
  (rounds 1.22 to 1.47x).
- ``Stream._increment_stream_state``, ``_write_state_message`` and ``_finalize_state``: the
  SDK has no public seam to cap a sorted stream's bookmark, which must never pass
  ``bookmark_limit`` (the SDK's own signpost caps only unsorted streams, whose interim states
  are not resumable) and must wait while the stream says the order of what it wrote is not yet
  shown (``bookmark_may_move``). The bookmark moves when a STATE is due rather than per record:
  the SDK's per-record bookkeeping costs 0.10 s per 50,000 records (about 4% of the case;
  the A/B above it, 0.995x, was within its noise).
- Reads ``Stream._tap`` (for its message writer) and ``Stream._stream_version``, and clears
  ``state_manager.is_flushed`` after writing a record, as the SDK's record path does.
- Skipping ``Stream._process_record`` (a per-record walk that does nothing without child
  streams) measured 1.000x and was dropped.

``OwnBookmark``, a base for streams that walk back in time (messages), so their records do not
come in bookmark order: ``Stream._increment_stream_state`` does nothing there (the SDK's would
mark the state "not resumable" and promote the newest record at the end), and ``save_state``
replaces the stream's bookmark and writes it with ``Stream._write_state_message`` after each
answer. ``DirectRecordOutput``, the record fast path above, is shared by both.

``FullPass``: sets ``Stream._stream_version`` (the version RECORD messages carry) itself and sends
ACTIVATE_VERSION with ``Stream._write_activate_version_message`` after a complete pass rather
than before it (the SDK's only public switch, ``emit_activate_version_messages``, sends it
first, which marks every row deleted until it is read again).

Elsewhere:

- ``ContactsStream.get_records`` calls ``Stream._write_state_message`` when Heymarket gives up,
  so that a rerun resumes from the last record written instead of up to five pages back.

- ``client._OneLineFailures`` drops the SDK's "An unhandled error occurred while syncing" line,
  matched by its text, when the tap's own one-line message explains the failure.
- ``TapHeymarket._handle_termination``: the SDK exits 0 on SIGTERM and SIGINT; a stopped sync
  exits 128 + the signal, so that a scheduler sees it did not finish.
- ``TapHeymarket._validate_config`` (and ``_config``): the settings are checked in the tap's own
  words before any request, and numbers the environment gives as text are read as numbers; the
  SDK has no public seam to do either.
- ``writer`` encodes with ``singer_sdk.contrib.msgspec.encoder``, the SDK's own msgspec encoder,
  so that its output is byte for byte the SDK writer's.
"""

from __future__ import annotations

import datetime
import time
import typing as t
from functools import cached_property

from singer_sdk.mapper import SameRecordTransform
from singer_sdk.streams import Stream
from typing_extensions import override

from tap_heymarket.normalize import TIMESTAMP_FORMAT
from tap_heymarket.writer import BufferedMsgSpecWriter

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record

#: The singer-sdk releases whose internals this module was checked against.
SUPPORTED_SDK = (0, 54)


def fixed_width(instant: datetime.datetime) -> str:
    """An aware datetime in the tap's fixed-width UTC form, comparable with record timestamps."""
    return instant.astimezone(datetime.timezone.utc).strftime(TIMESTAMP_FORMAT)


def utc_now() -> datetime.datetime:
    """Now, as an aware UTC datetime (what the SDK stamps ``time_extracted`` with)."""
    return datetime.datetime.now(datetime.timezone.utc)


class DirectRecordOutput(Stream):
    """A stream whose records go straight to the tap's writer when nothing would change them.

    The subclass sets ``extracted_at`` to the time each page arrived before yielding its
    records.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: ``time_extracted`` of the records being written: when their page arrived.
        self.extracted_at = utc_now()
        #: When this sync began, fixed-width.
        self.signpost = fixed_width(self.extracted_at)

    @cached_property
    def _left_out(self) -> frozenset[str]:
        """Properties the input catalog's schema does not have: records must go without them.

        The SDK drops them while conforming types, which a stream with its own normaliser
        skips, so ``_write_record_message`` drops them itself.
        """
        declared = self.effective_schema.get("properties", {})
        return frozenset(self.schema["properties"]) - frozenset(declared)

    @cached_property
    def _direct_record_output(self) -> tuple[BufferedMsgSpecWriter, str] | None:
        """The tap's writer and the stream's name, if records can go to it as they are.

        They can when nothing is deselected or left out of the catalog's schema, no stream map
        or flattening applies and the writer is this tap's own: the SDK's per-record mapping
        walk would change nothing. Decided once, at the first record.
        """
        maps = self.stream_maps
        writer = self._tap.message_writer
        if (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and all(self.mask.values())
            and not self._left_out
            and isinstance(writer, BufferedMsgSpecWriter)
        ):
            return writer, maps[0].stream_alias
        return None

    @override
    def _write_record_message(self, record: Record) -> None:
        """Write the record as it is when the SDK's per-record mapping would change nothing."""
        output = self._direct_record_output
        if output is None:
            if left_out := self._left_out:
                # A copy: the bookmark still reads its key if the catalog left it out.
                record = {name: value for name, value in record.items() if name not in left_out}
            super()._write_record_message(record)
            return
        writer, stream = output
        writer.write_record(stream, record, self._stream_version, self.extracted_at)
        self.state_manager.is_flushed = False


class FullPass(DirectRecordOutput):
    """A stream that can read everything there is, and then tell the target what is gone.

    ``begin_full_pass`` gives the records written from then on a table version;
    ``end_full_pass``, called only once every record has been read, sends ACTIVATE_VERSION:
    a target then marks deleted (target-postgres: ``_sdc_deleted_at``) every row without that
    version. The SDK sends it before the records instead, so a run that failed midway would
    leave every row not yet read again marked deleted until the next one; at the end, a failed
    run marks nothing.
    """

    def begin_full_pass(self) -> None:
        """Records written from now on carry this pass's version (``Stream._stream_version``)."""
        self._stream_version = int(time.time() * 1000)

    def end_full_pass(self) -> None:
        """Every record was read: rows without this pass's version are gone from Heymarket."""
        version = self._stream_version
        if version is not None:
            self._write_activate_version_message(version)

    @property
    def emit_activate_version_messages(self) -> bool:
        """False: the SDK's message, sent before any record, is replaced by ``end_full_pass``."""
        return False


class OwnBookmark(DirectRecordOutput):
    """A stream that keeps its own resumable state, written with ``save_state``.

    Its records do not come in bookmark order (a walk back in time), so the SDK's bookkeeping,
    which would mark such a stream's progress as not resumable, is left out.
    """

    @override
    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        """Nothing: ``save_state`` says what is safe to resume from."""

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """None: the stream never bookmarks past what it read."""
        return

    def save_state(self, values: dict[str, t.Any], context: Context | None = None) -> None:
        """Replace the stream's (or partition's) bookmark with ``values``; write a STATE now."""
        state = self.get_context_state(context)
        for key in ("replication_key", "replication_key_value", *self.own_state_keys):
            state.pop(key, None)
        state.update(values)
        self.state_manager.is_flushed = False
        if not self.get_batch_config(self.config):
            # In batch mode the SDK writes STATE after each BATCH message, once the records
            # this state covers are in a batch file the target was told of.
            self._write_state_message()

    #: The stream's keys in its state besides the SDK's two.
    own_state_keys: tuple[str, ...] = ()


class SortedStreamFastPath(DirectRecordOutput):
    """A stream whose records arrive sorted by a timestamp replication key, a page at a time.

    The subclass sets ``extracted_at`` before yielding each page's records, and reads
    ``signpost``: the bookmark never passes it.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: The latest bookmark this sync may leave (the signpost, or earlier where the next run
        #: would otherwise skip records dated just before it).
        self.bookmark_limit = self.signpost
        # The newest dated record written since the bookmark last moved (and its context).
        self._unbooked: tuple[Record, Context | None] | None = None

    @override
    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        """Note the record; the bookmark moves to the newest dated one when a STATE is due.

        Records come sorted, so that is the same bookmark the SDK's per-record bookkeeping
        would reach. A record without a replication key value cannot move a bookmark (the
        SDK would skip it too).
        """
        if latest_record.get(t.cast("str", self.replication_key)) is not None:
            self._unbooked = (latest_record, context)

    def bookmark_may_move(self) -> bool:
        """Whether what was written so far may be bookmarked (a stream can say not yet)."""
        return True

    def _advance_bookmark(self) -> None:
        """Move the bookmark to the last dated record written, never past ``bookmark_limit``.

        A record dated after the sync began (changed during it, or dated in the future by a
        bad import or a skewed clock) must not carry the bookmark past edits made before it.
        While ``bookmark_may_move`` says no, the record waits for the next STATE, or the end.
        """
        if self._unbooked is not None and self.bookmark_may_move():
            record, context = self._unbooked
            self._unbooked = None
            key = t.cast("str", self.replication_key)
            if record[key] > self.bookmark_limit:
                record = {**record, key: self.bookmark_limit}
            current = self.get_context_state(context).get("replication_key_value")
            if current is not None and record[key] < current:
                return  # a full pass from before the bookmark: it stays until passed
            super()._increment_stream_state(record, context=context)

    @override
    def _write_state_message(self) -> None:
        """Move the bookmark to the last record written, then write STATE as the SDK does."""
        self._advance_bookmark()
        super()._write_state_message()

    @override
    def _finalize_state(self, state: dict[str, t.Any] | None = None) -> None:
        """Move the bookmark to the last record written before the SDK finalises the state."""
        self._advance_bookmark()
        super()._finalize_state(state)

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """None for the SDK, whose signpost caps only unsorted streams: this one caps its own."""
        return
