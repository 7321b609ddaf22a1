"""A Singer message writer that makes one write per batch of records, not one per record.

The SDK's ``MsgSpecWriter`` writes and flushes stdout after every message: with an unbuffered
stdout (``PYTHONUNBUFFERED``, as Meltano and containers often set) that is a system call per
record, a large share of a CPU-bound sync. This writer serialises each message straight onto
the end of one in-memory buffer and hands the buffer to stdout when it is full and after every
message that is not a RECORD. A STATE message therefore leaves the process together with, and
after, every record it covers, the order on stdout is unchanged, and a target never waits on
records that a STATE has already vouched for.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import typing as t
from datetime import datetime

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder
from singer_sdk.singerlib import RecordMessage

if t.TYPE_CHECKING:
    from singer_sdk.singerlib import Message

#: Bytes of records held before they are written (some 250 typical contacts): enough to make
#: writes rare, too little to show in the memory profile.
BUFFER_BYTES = 256 * 1024


class TargetGoneError(BaseException):
    """Nobody reads the tap's output any more (a broken pipe): the target has stopped or died.

    A BaseException, like KeyboardInterrupt, because it stops the sync rather than being an
    error in it: the SDK's ``except Exception`` would otherwise report it as one.
    """

    def __init__(self) -> None:
        super().__init__(
            "The target stopped reading the tap's output (broken pipe), so the sync stopped; "
            "see the target's log for why, then rerun to resume from the last state it saved"
        )


class BufferedMsgSpecWriter(MsgSpecWriter):
    """``MsgSpecWriter`` output, byte for byte, written in batches and flushed at each STATE."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._flushing = False
        self._target_gone = False
        # Whatever ends the process (an error, a signal), records already made still go out.
        atexit.register(self._flush_at_exit)

    def write_message(self, message: Message) -> None:
        """Append the message; write out the buffer if it is full or the message is not a record."""
        buffer = self._buffer
        encoder.encode_into(message.to_dict(), buffer, -1)
        buffer.extend(b"\n")
        if type(message) is not RecordMessage or len(buffer) >= BUFFER_BYTES:
            self.flush()

    def write_record(
        self,
        stream: str,
        record: dict[str, t.Any],
        version: int | None,
        time_extracted: datetime,
    ) -> None:
        """What ``write_message`` writes for that ``RecordMessage``, without making the message.

        ``time_extracted`` must be an aware UTC datetime, as ``RecordMessage`` would make it.
        """
        message: dict[str, t.Any] = {"type": "RECORD", "stream": stream, "record": record}
        if version is not None:
            message["version"] = version
        message["time_extracted"] = time_extracted
        buffer = self._buffer
        encoder.encode_into(message, buffer, -1)
        buffer.extend(b"\n")
        if len(buffer) >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write every buffered message to stdout now.

        Raises ``TargetGoneError`` once nobody reads stdout; the messages held are dropped.
        """
        if not self._buffer:
            return
        if self._target_gone:
            self._buffer.clear()
            raise TargetGoneError
        stdout = sys.stdout
        try:
            stdout.flush()  # anything written to the text layer first stays first
            out = stdout.buffer
            self._flushing = True
            while self._buffer:  # an unbuffered stdout may take only part of it at a time
                del self._buffer[: out.write(self._buffer) or 0]
            out.flush()
        except BrokenPipeError:
            self._stop_writing(stdout)
            raise TargetGoneError from None
        self._flushing = False  # not when a signal's exit cut the write short: see _flush_at_exit

    def _stop_writing(self, stdout: t.TextIO) -> None:
        """Drop what is held and point stdout at /dev/null.

        Python flushes stdout as it exits; on the broken pipe that would print a second error
        and turn the exit code into 120.
        """
        self._target_gone = True
        self._buffer.clear()
        with contextlib.suppress(OSError, ValueError):  # stdout is not a file descriptor
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stdout.fileno())
            os.close(devnull)

    def _flush_at_exit(self) -> None:
        """Write the complete lines still held, unless the exit cut a write short.

        A signal can end the process inside ``flush`` (then what is left may already be partly
        out, and writing it again would garble a line) or between a message and its newline.
        """
        if self._flushing or self._target_gone:
            return
        del self._buffer[self._buffer.rfind(b"\n") + 1 :]
        with contextlib.suppress(OSError, ValueError):  # stdout closed or its reader gone
            self.flush()
