"""Run the real tap as a subprocess against a fake Heymarket and read back what it emitted.

Shared by the reliability tests and ``scripts/reliability_report.py``, so the published figures
come from the same runs the tests make.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from testbed.fake_heymarket import FakeHeymarket

#: Settings that keep fault runs fast: retries within milliseconds, a hang noticed in a second.
FAST_SETTINGS: dict[str, Any] = {
    "backoff_factor": 0.01,
    "request_timeout": 1,
    "max_retries": 8,
    "max_requests_per_minute": 10_000,
}


@dataclass
class TapRun:
    """What one run of the tap wrote: its Singer messages, its log and its exit code."""

    returncode: int
    messages: list[dict[str, Any]]
    stderr: str
    stdout: str = field(repr=False)

    @property
    def records(self) -> list[dict[str, Any]]:
        """Contacts' RECORD payloads, in the order emitted (``stream_records`` for the others)."""
        return self.stream_records("contacts")

    def stream_records(self, stream: str) -> list[dict[str, Any]]:
        """One stream's RECORD payloads, in the order emitted."""
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    @property
    def states(self) -> list[dict[str, Any]]:
        """STATE values, in the order emitted."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def ids(self) -> set[Any]:
        """Distinct ``id`` values emitted."""
        return {record.get("id") for record in self.records}

    @property
    def bookmark(self) -> str | None:
        """The contacts bookmark of the last STATE, if any."""
        if not self.states:
            return None
        return self.states[-1]["bookmarks"]["contacts"].get("replication_key_value")

    def records_before_last_state(self, stream: str = "contacts") -> list[dict[str, Any]]:
        """A stream's records a target had committed by the last STATE: what a restart may rely on."""
        last = max((i for i, m in enumerate(self.messages) if m["type"] == "STATE"), default=-1)
        return [
            m["record"]
            for m in self.messages[:last]
            if m["type"] == "RECORD" and m["stream"] == stream
        ]


def tap_command() -> list[str]:
    """The tap's CLI, run with the same interpreter as the caller."""
    return [sys.executable, "-m", "tap_heymarket"]


def tap_config(fake: FakeHeymarket, **overrides: Any) -> dict[str, Any]:
    """Credentials and URL of ``fake`` plus the fast fault settings, then ``overrides``."""
    config: dict[str, Any] = {"api_url": fake.url, **FAST_SETTINGS}
    if fake.api_key is not None:
        config["api_key"] = fake.api_key
    else:
        config["api_secret_id"] = fake.secret_id
        config["api_secret_key"] = fake.secret_key
    config.update(overrides)
    return config


def tap_env(log_level: str | None = None) -> dict[str, str]:
    """The caller's environment, with the tap's log level set if asked."""
    env = dict(os.environ)
    if log_level is not None:
        env["TAP_HEYMARKET_LOGLEVEL"] = log_level
    return env


def write_json(directory: Path, name: str, value: Any) -> Path:
    """Write ``value`` as ``directory/name`` and return the path."""
    path = directory / name
    path.write_text(json.dumps(value))
    return path


def parse_messages(stdout: str) -> list[dict[str, Any]]:
    """Singer messages from complete lines of ``stdout``; a line cut by a kill is ignored.

    Other output (``--discover``'s catalog, ``--about``) is not a message and is passed over.
    """
    # Split on newlines only: str.splitlines() would also split inside strings holding U+2028.
    *complete, _cut = stdout.split("\n")
    return [json.loads(line) for line in complete if line.startswith('{"type":')]


def run_tap(
    config: dict[str, Any],
    *args: str,
    state: dict[str, Any] | None = None,
    log_level: str | None = None,
    timeout: float = 120,
) -> TapRun:
    """Run the tap to its end with ``config`` (and ``state``); ``args`` are extra CLI flags."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*tap_command(), "--config", str(write_json(Path(tmp), "config.json", config))]
        if state is not None:
            argv += ["--state", str(write_json(Path(tmp), "state.json", state))]
        result = subprocess.run(
            [*argv, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=tap_env(log_level),
            check=False,
        )
    messages = parse_messages(result.stdout)
    return TapRun(result.returncode, messages, result.stderr, result.stdout)


def interrupt_tap(
    config: dict[str, Any],
    records: int,
    interrupt: Callable[[subprocess.Popen[bytes]], None],
    *,
    state: dict[str, Any] | None = None,
    timeout: float = 120,
) -> tuple[TapRun, float]:
    """Start a sync, call ``interrupt(process)`` once ``records`` RECORD lines have come out.

    Returns the run (what reached stdout, as a target would have seen it) and the seconds
    from the interruption to the tap's exit.
    """
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*tap_command(), "--config", str(write_json(Path(tmp), "config.json", config))]
        if state is not None:
            argv += ["--state", str(write_json(Path(tmp), "state.json", state))]
        with Path(tmp, "stderr.txt").open("w+") as errors:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=tap_env())
            try:
                stdout = _read_until(process, records, timeout)
                rest: list[bytes] = []
                # Keep draining stdout, as a target would, so the tap never blocks on the pipe.
                reader = threading.Thread(target=lambda: rest.append(process.stdout.read()))  # type: ignore[union-attr]
                reader.start()
                interrupt(process)
                interrupted = time.monotonic()
                process.wait(timeout)
                exited = time.monotonic() - interrupted
                reader.join(timeout)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            errors.seek(0)
            stderr = errors.read()
    # A SIGKILL can cut the last line mid-character: that line is incomplete whatever it holds.
    text = (stdout + b"".join(rest)).decode(errors="replace")
    return TapRun(process.returncode, parse_messages(text), stderr, text), exited


def send(sig: int) -> Callable[[subprocess.Popen[bytes]], None]:
    """An ``interrupt`` that sends ``sig`` to the tap."""
    return lambda process: process.send_signal(sig)


def _read_until(process: subprocess.Popen[bytes], records: int, timeout: float) -> bytes:
    """Read the tap's stdout line by line until ``records`` RECORD lines have been seen."""
    out: IO[bytes] = process.stdout  # type: ignore[assignment]
    seen = 0
    chunks = []
    deadline = time.monotonic() + timeout
    while seen < records:
        line = out.readline()
        if not line:
            msg = f"the tap ended after {seen} records, before the {records} to interrupt at"
            raise RuntimeError(msg)
        chunks.append(line)
        seen += line.startswith(b'{"type":"RECORD"')
        if time.monotonic() > deadline:
            raise TimeoutError("the tap did not reach the interruption point in time")
    return b"".join(chunks)


def is_bookmark_after_edits(bookmark: str | None, newest: str) -> bool:
    """Whether ``bookmark`` is what a run leaves whose newest contact is dated ``newest``.

    The newest ``updated`` itself, or, when that is within a second of the run's start (the
    contacts were edited just before it), a whole second before the start: at most two seconds
    before ``newest``, and never after it.
    """
    if bookmark is None or bookmark > newest:
        return False
    if bookmark == newest:
        return True
    at = datetime.datetime.strptime
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    gap = at(newest, fmt) - at(bookmark, fmt)
    return bookmark.endswith(".000000Z") and gap < datetime.timedelta(seconds=2)
