"""Serve the fake Heymarket API in its own process for one benchmark case.

Its own process, so the fake's CPU never shares a GIL with the client being measured. Prints
``READY <url>`` once listening; for each line read from stdin, prints what the server saw since
the last one as one JSON line (request count, requests per path, statuses, when the first and
last request arrived, the most requests in flight at once and within one rate window) and starts
counting afresh; stops when stdin closes.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

from testbed.fake_heymarket import FakeHeymarket


def _most_in_window(times: list[float], window: float) -> int:
    """The most requests that arrived within any ``window`` seconds (``times`` sorted)."""
    most, first = 0, 0
    for last, time in enumerate(times):
        while time - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=0)
    parser.add_argument("--messages", type=int, default=0)
    parser.add_argument("--broadcasts", type=int, default=0)
    parser.add_argument("--broadcast-size", type=int, default=0)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=None)
    parser.add_argument("--rate-window", type=float, default=60.0)
    args = parser.parse_args()
    fake = FakeHeymarket(
        contacts=args.contacts,
        messages=args.messages,
        broadcasts=args.broadcasts,
        broadcast_size=args.broadcast_size,
        seed=args.seed,
    )
    fake.configure(latency=args.latency, rate_limit=args.rate_limit, rate_window=args.rate_window)
    fake.start()
    print(f"READY {fake.url}", flush=True)
    for _ in sys.stdin:
        seen = fake.traffic.take()
        times = [entry["time"] for entry in seen.requests]
        summary = {
            "requests": len(times),
            "paths": dict(collections.Counter(entry["path"] for entry in seen.requests)),
            "status_counts": {str(k): v for k, v in seen.status_counts.items()},
            "first": min(times, default=0.0),
            "last": max(times, default=0.0),
            "max_in_flight": seen.max_in_flight,
            "max_in_window": _most_in_window(sorted(times), args.rate_window),
        }
        print(json.dumps(summary), flush=True)
    fake.stop()


if __name__ == "__main__":
    main()
