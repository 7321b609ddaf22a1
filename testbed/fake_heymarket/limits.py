"""Heymarket's rate limit as a client sees it: a sliding window, then 429s, maybe a Retry-After."""

from __future__ import annotations

import collections
import math
import threading
import time
from email.utils import formatdate
from typing import TYPE_CHECKING

from testbed.fake_heymarket.reply import Reply, gateway_error

if TYPE_CHECKING:
    from testbed.fake_heymarket.knobs import Knobs


class RateLimiter:
    """The API requests admitted in the last ``rate_window`` seconds (refused ones take no slot)."""

    def __init__(self) -> None:
        self._hits: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def admit(self, limit: int | None, window: float) -> float | None:
        """Count a request in the sliding window; seconds until a slot frees if it is full."""
        if limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return hits[len(hits) - limit] + window - now if limit else 1.0
            hits.append(now)
            return None

    def retry_wait(self, limit: int | None, window: float) -> float:
        """For a ``429`` fault: when the oldest counted request leaves the window (else 1 s)."""
        with self._lock:
            if limit is None or not self._hits:
                return 1.0
            return self._hits[0] + window - time.monotonic()


def rate_limited(wait: float, knobs: Knobs) -> Reply:
    """The 429 for a request ``wait`` seconds too early, with the configured Retry-After form."""
    headers = []
    seconds = max(1, math.ceil(wait))
    if knobs.retry_after == "seconds":
        headers.append(("Retry-After", str(seconds)))
    elif knobs.retry_after == "http-date":
        headers.append(("Retry-After", formatdate(time.time() + seconds, usegmt=True)))
    message = "rate limit exceeded"
    if knobs.rate_limit is not None:
        message += f": {knobs.rate_limit} requests per {knobs.rate_window:g} s"
    return Reply(429, gateway_error("rate_limited", message), headers=tuple(headers))
