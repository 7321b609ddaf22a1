"""``FakeHeymarket``: one fake account (contacts, knobs, faults, limits) and its server's lifecycle.

Tests and scripts drive it in-process through these methods; a harness in another process uses
the ``/_admin/`` endpoints, which call the same ones.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
import threading
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from testbed.fake_heymarket.faults import FaultQueue
from testbed.fake_heymarket.knobs import Knobs
from testbed.fake_heymarket.limits import RateLimiter
from testbed.fake_heymarket.server import Server, Traffic
from testbed.fake_heymarket.store import ContactStore

_T = TypeVar("_T")


def _with_knob_attributes(cls: type[_T]) -> type[_T]:
    """Make each knob an attribute too (``fake.latency = 0.3``), checked like ``configure()``."""

    def knob(field: dataclasses.Field[Any]) -> property:
        def get(fake: Any) -> Any:
            return getattr(fake.knobs, field.name)

        def set(fake: Any, value: Any) -> None:
            fake.configure(**{field.name: value})

        return property(get, set, doc=field.metadata["help"])

    for field in dataclasses.fields(Knobs):
        setattr(cls, field.name, knob(field))
    return cls


@_with_knob_attributes
class FakeHeymarket:
    """The fake API: a contact store plus behaviour knobs, served by a background HTTP server."""

    def __init__(
        self,
        *,
        secret_id: str = "fake-secret-id",
        secret_key: str = "fake-secret-key",
        api_key: str | None = None,
        contacts: int = 0,
        seed: int = 0,
        start: str = "2024-01-01T00:00:00Z",
        tie_groups: int = 0,
        tie_size: int = 0,
        port: int = 0,
        knobs: Knobs | None = None,
    ) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.api_key = api_key
        self.port = port
        #: The behaviour knobs; replaced as a whole by configure(), so a request sees one set.
        self.knobs = Knobs() if knobs is None else knobs
        self._knobs_lock = threading.Lock()
        self.store = ContactStore(
            contacts=contacts, seed=seed, start=start, tie_groups=tie_groups, tie_size=tie_size
        )
        self.faults = FaultQueue(random.Random(seed + 1))
        self.limiter = RateLimiter()
        self.traffic = Traffic()
        self._server: Server | None = None

    # ---- what the server saw

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Each sync request (body, status, auth, time, request_id, fault), oldest first."""
        return self.traffic.requests

    @property
    def status_counts(self) -> collections.Counter[int]:
        """How many API answers had each status."""
        return self.traffic.status_counts

    @property
    def rate_limited(self) -> int:
        """How many API answers were 429s."""
        return self.traffic.rate_limited

    @property
    def max_in_flight(self) -> int:
        """The most API requests handled at once."""
        return self.traffic.max_in_flight

    # ---- lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("FakeHeymarket is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHeymarket:
        """Bind 127.0.0.1 (a free port unless ``port`` was given) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("FakeHeymarket is already started")
        self._server = Server(self, self.port)
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections, then wake sleeping handlers (to fail unanswered)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> FakeHeymarket:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- behaviour

    def configure(self, **knobs: Any) -> None:
        """Set behaviour knobs by name; all are checked (see ``Knobs``) before any applies."""
        with self._knobs_lock:
            self.knobs = self.knobs.changed(**knobs)

    def queue_faults(self, *kinds: str) -> None:
        """Give the next sync requests these faults, in order, before ``fail_rate`` applies."""
        self.faults.queue(kinds)

    # ---- data

    def contacts(self) -> list[dict[str, Any]]:
        """Deep copies of every contact, sorted by (updated, id), exactly as served."""
        return json.loads(self.store.all_json())

    def contact(self, id: Any) -> dict[str, Any]:
        """Return a deep copy of one contact, as served; KeyError if unknown."""
        return self.store.contact(id)

    def update_contacts(
        self, n: int | None = None, ids: Sequence[int] | None = None, *, same_time: bool = False
    ) -> list[int]:
        """Write to ``ids`` (or ``n`` random contacts): rev+1, new name/custom, newest ``updated``.

        ``same_time`` gives the whole batch one ``updated`` (a bulk edit), else each its own.
        """
        return self.store.update(n, ids, same_time=same_time)

    def create_contacts(self, n: int, *, same_time: bool = False) -> list[int]:
        """Create ``n`` contacts with ids above all others, rev 1, created = updated = now."""
        return self.store.create(n, same_time=same_time)

    def delete_contacts(self, ids: Iterable[int]) -> None:
        """Delete for good (the vendor says deletion is permanent); KeyError if unknown."""
        self.store.delete(ids)

    def add_raw(self, record: dict[str, Any]) -> None:
        """Insert ``record`` as-is (bad-data tests); an unparseable ``updated`` sorts it first."""
        self.store.add_raw(record)

    def add_raw_json(self, text: str, updated: str | None, id: int | None) -> None:
        r"""Insert one contact's exact JSON ``text``, sorted by ``updated`` and ``id``.

        For what ``add_raw`` cannot write: a lone ``\ud800`` JSON escape, or a lone surrogate
        character, which goes out as the invalid UTF-8 bytes ED A0 80.
        """
        self.store.add_raw_json(text, updated, id)
