"""The singer-sdk internals ``tap_heymarket.sdk_internals`` lists are still there, as used.

An SDK release that renames or reshapes one of them fails here, by name, rather than in a sync.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pytest
from singer_sdk import Stream, Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter

from tap_heymarket import client, sdk_internals
from tap_heymarket.normalize import query_date, widen
from tap_heymarket.sdk_internals import DirectRecordOutput, OwnBookmark, SortedStreamFastPath
from tap_heymarket.tap import TapHeymarket
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import tap_config


def test_the_installed_singer_sdk_is_the_release_these_internals_were_checked_against():
    installed = tuple(int(part) for part in version("singer-sdk").split(".")[:2])
    assert installed == sdk_internals.SUPPORTED_SDK, (
        f"singer-sdk {version('singer-sdk')} is installed; tap_heymarket/sdk_internals.py was "
        f"checked against {sdk_internals.SUPPORTED_SDK}: re-check every internal it lists"
    )


@pytest.mark.parametrize(
    ("method", "parameters", "overridden_in"),
    [
        ("_write_record_message", ["self", "record"], DirectRecordOutput),
        ("_increment_stream_state", ["self", "latest_record", "context"], SortedStreamFastPath),
        ("_increment_stream_state", ["self", "latest_record", "context"], OwnBookmark),
        ("_finalize_state", ["self", "state"], SortedStreamFastPath),
        ("_write_state_message", ["self"], SortedStreamFastPath),
    ],
)
def test_each_stream_method_the_tap_overrides_or_calls_keeps_its_signature(
    method, parameters, overridden_in
):
    assert list(inspect.signature(getattr(Stream, method)).parameters) == parameters
    assert method in vars(overridden_in)


def test_the_tap_methods_it_overrides_keep_their_signatures():
    assert list(inspect.signature(Tap._handle_termination).parameters) == [
        "self",
        "signum",
        "frame",
    ]
    assert list(inspect.signature(Tap._validate_config).parameters) == ["self", "raise_errors"]


def test_the_sdk_still_logs_the_unhandled_error_line_the_tap_replaces_with_its_own():
    assert repr(client._SDK_UNHANDLED_ERROR) in inspect.getsource(Stream.sync)


def test_the_attributes_the_fast_path_reads_and_sets_exist_on_a_live_stream():
    with FakeHeymarket(contacts=0) as fake:
        tap = TapHeymarket(config=tap_config(fake), setup_mapper=True)
    stream = tap.streams["contacts"]

    assert stream._tap is tap
    assert isinstance(tap.message_writer, MsgSpecWriter)
    assert stream._stream_version is None
    assert isinstance(stream.state_manager.is_flushed, bool)
    assert callable(sdk_internals.BufferedMsgSpecWriter.write_record)


def test_the_bookmark_never_passes_the_limit_the_stream_sets_nor_moves_while_held():
    with FakeHeymarket(contacts=300, seed=3) as fake:
        tap = TapHeymarket(config=tap_config(fake), setup_mapper=False)
        stream = tap.streams["contacts"]
        stream._write_starting_replication_value(None)  # what the SDK does as a sync starts
        records = list(stream.get_records(None))
        held = TapHeymarket(config=tap_config(fake), setup_mapper=False).streams["contacts"]

    # A second before the sync began: the next run reads again whatever is dated from there.
    assert stream.bookmark_limit == widen(query_date(stream.signpost))
    assert records, "the sync emitted contacts"
    later = {"id": 1, "updated": "2999-01-01T00:00:00.000000Z"}
    stream._increment_stream_state(later)
    stream._finalize_state(stream.stream_state)
    assert stream.stream_state["replication_key_value"] == stream.bookmark_limit

    held._write_starting_replication_value(None)
    held.bookmark_may_move = lambda: False  # type: ignore[method-assign]
    held._increment_stream_state({"id": 2, "updated": "2024-01-01T00:00:00.000000Z"})
    held._write_state_message()
    assert held.stream_state.get("replication_key_value") is None
    held.bookmark_may_move = lambda: True  # type: ignore[method-assign]
    held._write_state_message()
    assert held.stream_state["replication_key_value"] == "2024-01-01T00:00:00.000000Z"
