"""The buffered Singer writer: MsgSpecWriter's bytes, fewer writes, STATE never behind its records.

And when the target stops reading (a broken pipe), one clear line and a prompt exit.
"""

from __future__ import annotations

import datetime
import io
import subprocess
import sys
import time

import pytest
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage, SchemaMessage, StateMessage

from tap_heymarket.writer import BUFFER_BYTES, BufferedMsgSpecWriter
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import tap_command, tap_config, tap_env, write_json

WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)


class _Stdout(io.TextIOWrapper):
    """A stdout whose binary layer counts the writes that reach it."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8")
        self.writes = 0
        raw_write = self.buffer.write

        def write(data: bytes) -> int:
            self.writes += 1
            return raw_write(data)

        self.buffer.write = write  # type: ignore[method-assign]

    def output(self) -> bytes:
        return self.buffer.getvalue()


def capture(monkeypatch) -> _Stdout:
    """Swap stdout inside the test itself: pytest resets it between fixture setup and the call."""
    stdout = _Stdout()
    monkeypatch.setattr(sys, "stdout", stdout)
    return stdout


def messages(n: int) -> list:
    schema = SchemaMessage("contacts", {"type": "object"}, ["id"])
    records = [
        RecordMessage(
            "contacts",
            {"id": i, "first": "Zoë\x01", "custom": {"12": [1.5, None]}},
            time_extracted=WHEN,
        )
        for i in range(n)
    ]
    return [
        schema,
        *records,
        StateMessage({"bookmarks": {"contacts": {"replication_key_value": "x"}}}),
    ]


def test_output_is_byte_for_byte_msgspecwriters(monkeypatch):
    stdout = capture(monkeypatch)
    reference = io.BytesIO()
    sdk = MsgSpecWriter()
    for message in messages(50):
        reference.write(sdk.format_message(message))
    writer = BufferedMsgSpecWriter()
    for message in messages(50):
        writer.write_message(message)
    assert stdout.output() == reference.getvalue()


@pytest.mark.parametrize("version", [None, 1716970089])
def test_write_record_writes_the_bytes_write_message_writes_for_that_record(monkeypatch, version):
    stdout = capture(monkeypatch)
    record = messages(1)[1].record
    writer = BufferedMsgSpecWriter()

    writer.write_message(RecordMessage("contacts", record, version=version, time_extracted=WHEN))
    writer.write_record("contacts", record, version, WHEN)
    writer.flush()

    first, second = stdout.output().splitlines()
    assert first == second and b'"time_extracted":"2024-05-06T07:08:09.123456Z"' in first


def test_records_wait_for_the_state_that_covers_them_then_leave_in_one_write(monkeypatch):
    stdout = capture(monkeypatch)
    writer = BufferedMsgSpecWriter()
    *head, state = messages(100)
    for message in head:
        writer.write_message(message)
    assert stdout.output().count(b"\n") == 1, "only the SCHEMA goes out at once"
    writes = stdout.writes
    writer.write_message(state)
    lines = stdout.output().splitlines()
    assert len(lines) == 102 and lines[-1].startswith(b'{"type":"STATE"')
    assert stdout.writes == writes + 1


def test_a_full_buffer_is_written_without_waiting_for_a_state(monkeypatch):
    stdout = capture(monkeypatch)
    writer = BufferedMsgSpecWriter()
    for message in messages(BUFFER_BYTES // 50)[:-1]:
        writer.write_message(message)
    assert len(stdout.output()) >= BUFFER_BYTES
    assert stdout.output().endswith(b"\n")
    writer._buffer.clear()  # not for the real stdout at exit


def test_at_exit_only_complete_lines_go_out_and_never_twice(monkeypatch):
    stdout = capture(monkeypatch)
    writer = BufferedMsgSpecWriter()
    writer.write_message(messages(1)[1])
    writer._buffer.extend(b'{"type":"RECORD","str')  # a signal between a message and its newline
    writer._flush_at_exit()
    assert stdout.output().count(b"\n") == 1 and stdout.output().endswith(b"}\n")
    writer.write_message(messages(1)[1])
    writer._flushing = True  # the exit came in the middle of a write
    writer._flush_at_exit()
    assert stdout.output().count(b"\n") == 1
    writer._buffer.clear()


def test_a_target_that_stops_reading_ends_the_tap_with_one_line_saying_so(tmp_path):
    with FakeHeymarket(contacts=3000, seed=8) as fake:
        config = write_json(tmp_path, "config.json", tap_config(fake, page_size=50))
        with (tmp_path / "stderr.txt").open("w+") as errors:
            tap = subprocess.Popen(
                [*tap_command(), "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=errors,
                env=tap_env(),
            )
            try:
                first = tap.stdout.readline()
                tap.stdout.close()  # the target died: nobody reads the tap's output any more
                closed = time.monotonic()
                returncode = tap.wait(60)
                seconds = time.monotonic() - closed
            finally:
                if tap.poll() is None:
                    tap.kill()
                    tap.wait()
            errors.seek(0)
            stderr = errors.read()

    assert first.startswith(b'{"type":"SCHEMA"')
    assert returncode == 1
    assert seconds < 5
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    [line] = [line.split("| ")[-1] for line in stderr.splitlines() if "| ERROR" in line]
    assert "stopped reading" in line and "broken pipe" in line, line
