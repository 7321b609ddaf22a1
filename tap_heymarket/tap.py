"""The Heymarket tap: its settings, their validation and the way it fails."""

from __future__ import annotations

import ipaddress
import signal
import sys
import typing as t
import urllib.parse

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import SingerCommand

from tap_heymarket.client import HeymarketAPIError
from tap_heymarket.normalize import InvalidTimestampError, normalize_timestamp
from tap_heymarket.streams import ContactsStream
from tap_heymarket.writer import BufferedMsgSpecWriter

if t.TYPE_CHECKING:
    from types import FrameType, TracebackType

    import click

DEFAULT_API_URL = "https://api.heymarket.com"
#: Heymarket allows 500 requests a minute; staying a little under leaves room for clock skew
#: between our pacing and their window, and for other clients of the same key.
DEFAULT_MAX_REQUESTS_PER_MINUTE = 480
_LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain"))


class _HeymarketCommand(SingerCommand):
    """The SDK's command, but an API failure ends in one clear line rather than a traceback."""

    def excepthook(
        self,
        exc_type: type[BaseException],
        exc_value: BaseException,
        exc_traceback: TracebackType | None,
    ) -> None:
        """Log a Heymarket API failure's message alone; leave anything else to the SDK."""
        if issubclass(exc_type, HeymarketAPIError):
            self.logger.error("Sync failed: %s", exc_value)
            return
        super().excepthook(exc_type, exc_value, exc_traceback)

    def main(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Install the hook before option callbacks run: ``--test`` syncs from one of them."""
        sys.excepthook = self.excepthook
        return super().main(*args, **kwargs)


class TapHeymarket(Tap):
    """Singer tap for Heymarket contacts."""

    name = "tap-heymarket"
    message_writer_class = BufferedMsgSpecWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_secret_id",
            th.StringType,
            title="API Secret ID",
            description="API Secret ID (the JWT issuer), from Settings > Integrations > API in Heymarket.",
        ),
        th.Property(
            "api_secret_key",
            th.StringType,
            secret=True,
            title="API Secret Key",
            description="API Secret Key that signs the JWT. Shown once by Heymarket when generated.",
        ),
        th.Property(
            "api_key",
            th.StringType,
            secret=True,
            title="Legacy API key",
            description="Legacy team API key, for accounts not yet on API secrets. "
            "Use either this or api_secret_id + api_secret_key.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description="RFC 3339 date-time: sync contacts updated since then. Only used when "
            "there is no bookmark yet. Absent: all history.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            title="API URL",
            description="Base URL of the Heymarket API. Plain http is only allowed to loopback hosts.",
        ),
        th.Property(
            "page_size",
            th.IntegerType,
            default=100,
            title="Page size",
            description="Contacts per request, 1 to 100. The maximum means fewer requests "
            "against the rate limit.",
        ),
        th.Property(
            "max_requests_per_minute",
            th.IntegerType,
            default=DEFAULT_MAX_REQUESTS_PER_MINUTE,
            title="Max requests per minute",
            description="Client-side pacing, just under Heymarket's documented limit of 500 "
            "a minute, so a sync never meets a 429. Lower it if other clients share the key.",
        ),
        th.Property(
            "request_timeout",
            th.NumberType,
            default=60,
            title="Request timeout",
            description="Seconds to wait for one response before retrying it.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=8,
            title="Max retries",
            description="Retries of one request after a 429, a 5xx, a timeout or a cut connection, "
            "with exponential backoff and jitter, before the sync fails.",
        ),
        th.Property(
            "backoff_factor",
            th.NumberType,
            default=1.0,
            title="Backoff factor",
            description="Seconds before the first retry; doubles with each retry (capped at 60 s).",
        ),
    ).to_dict()

    def discover_streams(self) -> list[ContactsStream]:
        """The tap's one stream."""
        return [ContactsStream(tap=self)]

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Check the settings the way the API will need them, before any request is made.

        Each error names the setting and never echoes a secret's value.
        """
        errors = settings_errors(self.config)
        if errors:
            if raise_errors:
                raise ConfigValidationError(errors[0], errors=errors)
            return errors
        return super()._validate_config(raise_errors=raise_errors)

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """The SDK's CLI (sync, --test, --discover, ...) with API failures reported in one line."""
        command = super().get_singer_command()
        return _HeymarketCommand(
            name=command.name,
            callback=command.callback,
            params=command.params,
            help=command.help,
            context_settings=command.context_settings,
            logger=cls.logger,
        )

    def sync_all(self) -> None:
        """Sync, then hand the last buffered messages to stdout (the SDK may skip a final STATE)."""
        try:
            super().sync_all()
        finally:
            self.message_writer.flush()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Stop at once on SIGTERM/SIGINT, exiting non-zero: the run did not finish.

        Nothing more is written, so the last STATE out is still the last bookmark reached.
        """
        self.logger.warning(
            "Stopped by %s; rerun to resume from the last state", signal.Signals(signum).name
        )
        sys.exit(128 + signum)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_number(value: object) -> float | None:
    """A number, also from the string an environment variable gives; None if it is not one."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def settings_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """Everything wrong with ``config``, one line per problem, each naming the setting."""
    errors: list[str] = []
    has_id = config.get("api_secret_id") not in (None, "")
    has_key = config.get("api_secret_key") not in (None, "")
    has_api_key = config.get("api_key") not in (None, "")
    for name in ("api_secret_id", "api_secret_key", "api_key"):
        value = config.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(f"{name}: must be a string")
        elif value == "" or (isinstance(value, str) and not value.strip()):
            errors.append(f"{name}: is set but empty")
    if not errors:
        if has_api_key and (has_id or has_key):
            errors.append("api_key: set either api_key or api_secret_id + api_secret_key, not both")
        elif has_id != has_key:
            missing = "api_secret_key" if has_id else "api_secret_id"
            errors.append(
                f"{missing}: required with {'api_secret_id' if has_id else 'api_secret_key'}"
            )
        elif not has_api_key and not has_id:
            errors.append(
                "api_secret_id: no credentials; set api_secret_id and api_secret_key "
                "(or the legacy api_key)"
            )

    api_url = config.get("api_url", DEFAULT_API_URL)
    parsed = urllib.parse.urlsplit(api_url) if isinstance(api_url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        errors.append("api_url: must be an http(s) URL such as https://api.heymarket.com")
    elif parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        errors.append(
            "api_url: credentials are only sent over https (http is allowed for loopback hosts)"
        )

    start_date = config.get("start_date")
    if start_date is not None:
        try:
            if normalize_timestamp(start_date) is None:
                raise InvalidTimestampError(start_date)
        except InvalidTimestampError:
            errors.append(
                f"start_date: {str(start_date)[:40]!r} is not an RFC 3339 date-time "
                "such as 2024-01-01T00:00:00Z"
            )

    limits = {
        "page_size": (1, 100),
        "max_requests_per_minute": (1, 1_000_000),
        "max_retries": (0, 100),
    }
    for name, (low, high) in limits.items():
        value = config.get(name)
        if value is not None and (not _is_int(value) or not low <= value <= high):
            errors.append(f"{name}: must be a whole number from {low} to {high} (got {value!r})")
    for name, lowest in (("request_timeout", 0.001), ("backoff_factor", 0.0)):
        value = config.get(name)
        number = _as_number(value)
        if value is not None and (number is None or number < lowest):
            errors.append(f"{name}: must be a positive number of seconds (got {value!r})")
    return errors
