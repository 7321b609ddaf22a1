"""Progress a person can follow in a scheduled run's log: a line every ``interval`` seconds.

A first sync of a large account runs for tens of minutes at the rate limit, and the log is all an
operator has. Each stream logs, at a steady interval, the records so far, its requests per minute
and, when Heymarket gave a count of what there is to read, the share done and the time left at
the current pace. No line holds a setting, let alone a secret.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t

#: Seconds between progress lines.
PROGRESS_INTERVAL = 30.0


class Progress:
    """One stream's sync: counts, and a progress line when ``interval`` has passed."""

    def __init__(
        self,
        logger: logging.Logger,
        noun: str,
        *,
        interval: float | None = None,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._noun = noun
        self._interval = PROGRESS_INTERVAL if interval is None else interval
        self._clock = clock
        self._started = clock()
        self._next_line = self._started + self._interval
        self._lock = threading.Lock()
        #: What the sync has to read, when Heymarket counted it.
        self.total: int | None = None
        self.records = 0
        self.requests = 0

    def request_sent(self) -> None:
        """Count one request (from any thread)."""
        with self._lock:
            self.requests += 1

    def records_written(self, count: int) -> None:
        """Count ``count`` records written, and log a progress line if one is due."""
        self.records += count
        now = self._clock()
        if now >= self._next_line:
            self._next_line = now + self._interval
            self._logger.info(self.line(now))

    @property
    def elapsed(self) -> float:
        """Seconds since the sync began."""
        return self._clock() - self._started

    def line(self, now: float) -> str:
        """The progress line: records, requests a minute, and share done and time left if known."""
        minutes = max(now - self._started, 1e-9) / 60
        line = (
            f"{self._noun}: {self.records:,} so far, {self.requests:,} requests "
            f"({self.requests / minutes:.0f}/min)"
        )
        if self.total and self.records:
            share = min(self.records / self.total, 1.0)
            left = (now - self._started) * (1 - share) / share
            line += f", about {share:.0%} of {self.total:,}, {_duration(left)} left"
        return line


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min`` or ``2 h 05 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
