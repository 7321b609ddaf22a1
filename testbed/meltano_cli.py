"""Run this repository's Meltano project the way a user does, and read what each run did.

Shared by the demo and the end-to-end tests. Meltano logs as JSON (``--log-format=json``), so a
run's events, including the METRIC lines the tap and the target write, can be read reliably
instead of being scraped from console text.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: State ID of ``meltano run tap-heymarket target-postgres`` (and of the job) in ``dev``.
STATE_ID = "dev:tap-heymarket-to-target-postgres"
#: Variables that configure the plugins: not inherited, so only what the caller passes applies.
PLUGIN_ENV_PREFIXES = ("TAP_HEYMARKET_", "TARGET_POSTGRES_", "TARGET_JSONL_", "MELTANO_")
#: The fake Heymarket's credentials, as the tap reads them from the environment.
FAKE_API_ENV = {
    "TAP_HEYMARKET_API_SECRET_ID": "fake-secret-id",
    "TAP_HEYMARKET_API_SECRET_KEY": "fake-secret-key",
    # The fake has no rate limit; the tap's default pacing would only slow the run down.
    "TAP_HEYMARKET_MAX_REQUESTS_PER_MINUTE": "100000",
}


class MeltanoError(RuntimeError):
    """A Meltano command failed; the message ends with the tail of its log."""


@dataclass
class MeltanoRun:
    """One finished Meltano command: exit code, stdout and the log events it wrote."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    events: list[dict[str, Any]]

    def record_count(self, plugin: str, stream: str | None = None) -> int:
        """Records ``plugin`` reported in its ``record_count`` METRIC lines (of ``stream`` only)."""
        return sum(
            info["value"]
            for event in self.events
            if event.get("string_id") == plugin
            and (info := event.get("metric_info", {})).get("metric") == "record_count"
            and (stream is None or info.get("tags", {}).get("stream") == stream)
        )

    def record_counts(self, plugin: str) -> dict[str, int]:
        """Records ``plugin`` reported per stream, in the order the streams first reported."""
        counts: dict[str, int] = {}
        for event in self.events:
            info = event.get("metric_info", {})
            if event.get("string_id") == plugin and info.get("metric") == "record_count":
                stream = str(info.get("tags", {}).get("stream"))
                counts[stream] = counts.get(stream, 0) + info["value"]
        return counts

    def log_tail(self, lines: int = 30) -> str:
        """The last log lines, as text, to explain a failure."""
        return "\n".join(describe(event) for event in self.events[-lines:])


def describe(event: dict[str, Any]) -> str:
    """One log event as a readable line: ``[plugin] level: message``."""
    source = event.get("string_id") or "meltano"
    return f"[{source}] {event.get('level', 'info')}: {event.get('event', '')}"


def meltano_executable() -> Path:
    """Meltano installed beside the running interpreter: the version ``make`` pins."""
    path = Path(sys.executable).with_name("meltano")
    if not path.exists():
        msg = f"meltano is not installed beside {sys.executable}; run `make test` or `make demo`"
        raise MeltanoError(msg)
    return path


def plugin_executable(sys_dir: Path, plugin_type: str, name: str) -> Path:
    """Where ``meltano install`` put a plugin's executable (``plugin_type``: extractors, loaders)."""
    return sys_dir / plugin_type / name / "venv" / "bin" / name


class Meltano:
    """The Meltano CLI on this project, every command with the same environment on top of ours.

    ``isolated`` drops the caller's ``TAP_HEYMARKET_*``, ``TARGET_*`` and ``MELTANO_*``
    variables and the project's ``.env`` file, so that ``env`` is all the configuration there
    is and a developer's own credentials never reach a test run. Otherwise ``env_file``, if
    given, replaces the project's ``.env``.
    """

    def __init__(
        self, env: Mapping[str, str], *, isolated: bool = False, env_file: Path | None = None
    ) -> None:
        self.executable = meltano_executable()
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not (isolated and key.startswith(PLUGIN_ENV_PREFIXES))
        }
        self.env = {**inherited, **env}
        self.env_file = Path(os.devnull) if isolated else env_file

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_start: Callable[[subprocess.Popen[str]], None] | None = None,
    ) -> MeltanoRun:
        """Run ``meltano ARGS`` from the project root; raise MeltanoError if it fails and ``check``.

        ``on_event`` sees each log event as it is written, for live progress; ``on_start`` the
        Meltano process once started (its id is the session id of every plugin it runs).
        """
        argv = [str(self.executable), "--log-format=json"]
        if self.env_file is not None:
            argv += ["--env-file", str(self.env_file)]
        argv += args
        events: list[dict[str, Any]] = []
        with tempfile.TemporaryFile("w+", encoding="utf-8") as stdout:
            process = subprocess.Popen(
                argv,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                # Its own process group, so that the plugins it runs are stopped with it.
                start_new_session=True,
            )
            if on_start is not None:
                on_start(process)
            timed_out = threading.Event()
            timer = threading.Timer(timeout, lambda: (timed_out.set(), _kill_group(process)))
            timer.start()
            try:
                for line in process.stderr:  # type: ignore[union-attr]
                    event = _parse_event(line)
                    if event is None:
                        continue
                    events.append(event)
                    if on_event is not None:
                        on_event(event)
                returncode = process.wait()
            finally:
                timer.cancel()
                if process.poll() is None:
                    _kill_group(process)
                    process.wait()
            stdout.seek(0)
            run = MeltanoRun(tuple(args), returncode, stdout.read(), events)
        if check and returncode != 0:
            why = (
                f"was stopped after {timeout:g} s" if timed_out.is_set() else f"exited {returncode}"
            )
            msg = f"meltano {' '.join(args)} {why}:\n{run.log_tail()}"
            raise MeltanoError(msg)
        return run

    def config(self, plugin: str) -> dict[str, Any]:
        """``plugin``'s resolved settings, secrets masked (``meltano config print``)."""
        return json.loads(self("--environment=dev", "config", "print", plugin).stdout)

    def state(self, state_id: str = STATE_ID) -> dict[str, Any]:
        """The state Meltano stored for ``state_id`` (``meltano state get``)."""
        return json.loads(self("state", "get", state_id).stdout)


def _kill_group(process: subprocess.Popen[str]) -> None:
    """Stop Meltano and the plugins it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _parse_event(line: str) -> dict[str, Any] | None:
    """A JSON log line as a dict; any other non-blank line (a stray print) as a bare event."""
    line = line.strip()
    if not line:
        return None
    with contextlib.suppress(ValueError):
        event = json.loads(line)
        if isinstance(event, dict):
            return event
    return {"event": line}
