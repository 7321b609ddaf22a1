"""Shared fixtures: the fake Heymarket API over real HTTP."""

from __future__ import annotations

import pytest

from testbed.fake_heymarket import FakeHeymarket


@pytest.fixture
def fake() -> FakeHeymarket:
    """A fresh fake account of 1,000 contacts, served over real HTTP on loopback."""
    with FakeHeymarket(contacts=1000, seed=11) as server:
        yield server
