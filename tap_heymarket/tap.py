"""The Heymarket tap: its settings, their validation and the way it fails."""

from __future__ import annotations

import ipaddress
import math
import os
import signal
import sys
import typing as t
import urllib.parse

from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import SingerCommand
from typing_extensions import override

from tap_heymarket.client import HeymarketAPIError, ca_bundle_error
from tap_heymarket.normalize import InvalidTimestampError, normalize_timestamp
from tap_heymarket.streams import (
    ContactsStream,
    ConversationsStream,
    CustomFieldsStream,
    InboxesStream,
    MessagesStream,
    SurveysStream,
    TagsStream,
    TeamMembersStream,
    TemplatesStream,
)
from tap_heymarket.writer import BufferedMsgSpecWriter, TargetGoneError

if t.TYPE_CHECKING:
    from types import FrameType, TracebackType

    import click

DEFAULT_API_URL = "https://api.heymarket.com"
#: Heymarket allows 500 requests a minute; staying a little under leaves room for clock skew
#: between our pacing and their window, and for other clients of the same key.
DEFAULT_MAX_REQUESTS_PER_MINUTE = 480
#: A day: carriers report nearly every delivery within minutes, the slowest within a day.
DEFAULT_MESSAGES_LOOKBACK_HOURS = 24
_LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain"))
#: What ``--config ENV`` puts before a setting's upper-cased name.
ENV_PREFIX = "TAP_HEYMARKET_"
#: Whole-number settings and the range each must fall in.
_WHOLE_NUMBER_RANGES = {
    "page_size": (1, 100),
    "max_requests_per_minute": (1, 1_000_000),
    "max_retries": (0, 100),
    "messages_lookback_hours": (1, 8760),
}
#: Settings in seconds and the least each may be.
_SECONDS_MINIMUM = {"request_timeout": 0.001, "backoff_factor": 0.0}


class _HeymarketCommand(SingerCommand):
    """The SDK's command, but an API failure ends in one clear line rather than a traceback."""

    def excepthook(
        self,
        exc_type: type[BaseException],
        exc_value: BaseException,
        exc_traceback: TracebackType | None,
    ) -> None:
        """Log an API failure's, a gone target's or a bad setting's message alone; else the SDK's.

        Bad settings reach here from ``--test``, whose option callback builds the tap outside
        the command's own handling of them.
        """
        if issubclass(exc_type, HeymarketAPIError):
            self.logger.error("Sync failed: %s", exc_value)
            return
        if issubclass(exc_type, TargetGoneError):
            self.logger.error("%s", exc_value)
            return
        if isinstance(exc_value, ConfigValidationError):
            for error in exc_value.errors:
                self.logger.error("%s", error)
            self.logger.error("Config validation failed")
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
            description="RFC 3339 date-time: sync contacts updated and messages created since "
            "then. Only used when there is no bookmark yet. Absent: all history.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            title="API URL",
            description="Base URL of the Heymarket API. Plain http is only allowed to loopback hosts.",
        ),
        th.Property(
            "ca_bundle",
            th.StringType,
            title="CA bundle",
            description="Path to a PEM file of the CA certificates that verify Heymarket's TLS "
            "certificate instead of the public CAs: a TLS-inspecting proxy's, for instance. Unset: "
            "REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or SSL_CERT_FILE, the first set. Verification "
            "itself cannot be turned off.",
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
            "messages_lookback_hours",
            th.IntegerType,
            default=DEFAULT_MESSAGES_LOOKBACK_HOURS,
            title="Messages look-back (hours)",
            description="Each run reads again the messages created this many hours before its "
            "bookmark, to sync their later status and flag changes (carriers report most "
            "deliveries within minutes and the last within a day). 1 to 8760; each hour costs "
            "about an hour's messages / 100 requests per run.",
        ),
        th.Property(
            "contacts_deletion_sweep",
            th.BooleanType,
            default=False,
            title="Contacts deletion sweep",
            description="Read every contact, whatever the bookmark, then have the target mark "
            "the rows of contacts deleted in Heymarket as deleted (ACTIVATE_VERSION; "
            "target-postgres sets _sdc_deleted_at). For a separate, less frequent job: a sweep "
            "costs contacts / page_size requests.",
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

    def __init__(self, *, parse_env_config: bool = False, **kwargs: t.Any) -> None:
        """The SDK's constructor, but a bad whole number in the environment is named, not a crash.

        The SDK reads an integer setting's variable with ``int()`` before any validation, so
        ``TAP_HEYMARKET_PAGE_SIZE=fifty`` would end in a ValueError naming neither. It has
        loaded a ``.env`` file into the environment by then, so that is checked too.
        """
        try:
            super().__init__(parse_env_config=parse_env_config, **kwargs)
        except ValueError:
            if not parse_env_config:
                raise
            errors = environment_errors(self.config_jsonschema, os.environ)
            if not errors:
                raise
            raise ConfigValidationError(errors[0], errors=errors) from None

    def discover_streams(self) -> list[Stream]:
        """The tap's streams."""
        return [
            stream(tap=self)
            for stream in (
                ContactsStream,
                MessagesStream,
                ConversationsStream,
                InboxesStream,
                TeamMembersStream,
                TagsStream,
                TemplatesStream,
                SurveysStream,
                CustomFieldsStream,
            )
        ]

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Check the settings the way the API will need them, before any request is made.

        Each error names the setting and never echoes a secret's value. Numbers given as text
        (the SDK passes a ``number`` setting from the environment on as the variable's string)
        are read as numbers first, so the schema check and the streams both see numbers.
        """
        numbers = numbers_from_text(self.config)
        if numbers:
            self._config = {**self._config, **numbers}
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

    @override
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


def _as_whole_number(value: object) -> int | None:
    """An int, also from the string an environment variable gives; None if it is not one."""
    if _is_int(value):
        return t.cast("int", value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _as_number(value: object) -> float | None:
    """A finite number, also from a string (an int when whole, so 30 stays 30); else None.

    A config file's fractions arrive as ``Decimal``: the SDK reads JSON that way.
    """
    if isinstance(value, bool):
        return None
    whole = _as_whole_number(value)
    if whole is not None:
        return whole
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def numbers_from_text(config: t.Mapping[str, t.Any]) -> dict[str, float]:
    """The numeric settings ``config`` gives as text that reads as a number, as numbers."""
    read = dict.fromkeys(_WHOLE_NUMBER_RANGES, _as_whole_number) | dict.fromkeys(
        _SECONDS_MINIMUM, _as_number
    )
    numbers = {}
    for name, as_number in read.items():
        value = config.get(name)
        if isinstance(value, str) and (number := as_number(value)) is not None:
            numbers[name] = number
    return numbers


def _whole_number_error(name: str, value: object) -> str:
    low, high = _WHOLE_NUMBER_RANGES.get(name, (None, None))
    bounds = f" from {low} to {high}" if low is not None else ""
    return f"{name}: must be a whole number{bounds} (got {value!r})"


def environment_errors(schema: t.Mapping[str, t.Any], environ: t.Mapping[str, str]) -> list[str]:
    """Integer settings whose environment variable ``int()`` cannot read, one line each."""
    errors = []
    for name, prop in schema.get("properties", {}).items():
        value = environ.get(ENV_PREFIX + name.upper().replace("-", "_"))
        types = prop.get("type", [])
        if value is None or "integer" not in ([types] if isinstance(types, str) else types):
            continue
        try:
            int(value)
        except ValueError:
            errors.append(_whole_number_error(name, value))
    return errors


def settings_errors(
    config: t.Mapping[str, t.Any], environ: t.Mapping[str, str] = os.environ
) -> list[str]:
    """Everything wrong with ``config``, one line per problem, each naming the setting.

    ``environ`` is where a CA bundle may be named when the ``ca_bundle`` setting is not.
    """
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
                raise InvalidTimestampError(f"{str(start_date)[:40]!r} is Go's zero time")
        except InvalidTimestampError as exc:
            errors.append(f"start_date: {exc}; use a date-time such as 2024-01-01T00:00:00Z")

    for name, (low, high) in _WHOLE_NUMBER_RANGES.items():
        value = config.get(name)
        whole = _as_whole_number(value)
        if value is not None and (whole is None or not low <= whole <= high):
            errors.append(_whole_number_error(name, value))
    for name, lowest in _SECONDS_MINIMUM.items():
        value = config.get(name)
        number = _as_number(value)
        if value is not None and (number is None or number < lowest):
            errors.append(f"{name}: must be a positive number of seconds (got {value!r})")
    trust_error = ca_bundle_error(config, environ)
    if trust_error:
        errors.append(trust_error)
    return errors
