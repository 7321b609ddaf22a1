"""Shared fixtures: the fake Heymarket API and a way to run the real ``tap-heymarket`` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.fake_heymarket import FakeHeymarket

FAKE_CREDENTIALS = {"api_secret_id": "fake-secret-id", "api_secret_key": "fake-secret-key"}


@dataclass
class TapRun:
    """What one run of the tap printed."""

    returncode: int
    messages: list[dict]
    stderr: str

    @property
    def records(self) -> list[dict]:
        return [m["record"] for m in self.messages if m["type"] == "RECORD"]

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def bookmark(self) -> str | None:
        states = self.states
        if not states:
            return None
        return states[-1]["bookmarks"]["contacts"].get("replication_key_value")


def tap_config(fake: FakeHeymarket, **overrides: object) -> dict:
    """Config for a tap that talks to ``fake`` at full speed (no client pacing, quick retries)."""
    return {
        **FAKE_CREDENTIALS,
        "api_url": fake.url,
        "max_requests_per_minute": 100_000,
        "backoff_factor": 0.01,
        "request_timeout": 5,
        **overrides,
    }


def run_tap(
    config: dict,
    tmp_path: Path,
    *,
    state: dict | None = None,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> TapRun:
    """Run ``tap-heymarket --config ... [--state ...]`` as users do and parse its stdout."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    command = [sys.executable, "-m", "tap_heymarket", "--config", str(config_file), *args]
    if state is not None:
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        command += ["--state", str(state_file)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return TapRun(done.returncode, messages, done.stderr)


@pytest.fixture
def fake() -> FakeHeymarket:
    """A fresh fake account of 1,000 contacts, served over real HTTP on loopback."""
    with FakeHeymarket(contacts=1000, seed=11) as server:
        yield server
