"""Progress lines: at a steady interval, with the share done and the time left when counted."""

from __future__ import annotations

import logging

from tap_heymarket.progress import Progress
from tap_heymarket.tap import TapHeymarket
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import tap_config


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_line_comes_once_per_interval_with_rate_share_and_time_left(caplog):
    clock = Clock()
    progress = Progress(logging.getLogger("t"), "messages", interval=30, clock=clock)
    progress.total = 10_000
    with caplog.at_level(logging.INFO):
        for _ in range(20):
            progress.request_sent()
        clock.now += 10
        progress.records_written(1_000)
        assert caplog.messages == []  # not yet 30 s
        clock.now += 50
        progress.records_written(1_500)
        progress.records_written(10)
    assert caplog.messages == [
        "messages: 2,500 so far, 20 requests (20/min), about 25% of 10,000, 3 min left"
    ]


def test_without_a_count_the_line_has_no_share_and_no_secret_setting(caplog):
    clock = Clock()
    progress = Progress(logging.getLogger("t"), "contacts", interval=5, clock=clock)
    with caplog.at_level(logging.INFO):
        progress.request_sent()
        clock.now += 6
        progress.records_written(100)
    assert caplog.messages == ["contacts: 100 so far, 1 requests (10/min)"]
    assert progress.elapsed == 6


def test_a_first_messages_sync_logs_its_share_of_heymarkets_count(monkeypatch, caplog, capsys):
    monkeypatch.setattr("tap_heymarket.progress.PROGRESS_INTERVAL", 0.0)
    with FakeHeymarket(messages=450, seed=3) as fake:
        tap = TapHeymarket(config=tap_config(fake, page_size=100), setup_mapper=True)
        with caplog.at_level(logging.INFO):
            tap.streams["messages"].sync()
    capsys.readouterr()
    lines = [m for m in caplog.messages if m.startswith("messages: ")]
    assert lines and lines[-1].startswith("messages: 450 so far")
    assert "of 450" in lines[0] and "left" in lines[0]
    done = [m for m in caplog.messages if m.startswith("Messages sync done in ")]
    assert len(done) == 1 and ": 450 messages, " in done[0]
