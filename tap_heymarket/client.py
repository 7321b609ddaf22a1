"""HTTP side of the tap: one request to Heymarket, paced, retried and explained when it fails."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import email.utils
import logging
import os
import queue
import random
import ssl
import sys
import threading
import time
import typing as t
import urllib.parse
import weakref
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import version

import msgspec
import requests
from singer_sdk import Tap
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.streams import Stream

from tap_heymarket import __version__
from tap_heymarket.auth import CredentialsError, HeymarketJWTAuthenticator, authenticator_for
from tap_heymarket.fetching import MovingAverage
from tap_heymarket.progress import Progress

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.authenticators import APIAuthenticatorBase
    from singer_sdk.helpers.types import Context

#: Named in the User-Agent, beside the tap's own version.
SDK_VERSION = version("singer-sdk")
_RETRIED_STATUSES = frozenset((429, 500, 502, 503, 504))
#: Longest ``Retry-After`` honoured: a far-off (or skewed) date must not park a scheduled run.
MAX_RETRY_AFTER_SECONDS = 300.0
_CREDENTIAL_HINT = (
    "check api_secret_id and api_secret_key (Heymarket: Settings > Integrations > API), "
    "or api_key for a legacy team key"
)
_decode = msgspec.json.Decoder().decode
#: Environment variables naming a CA bundle, in the order they count: the two requests reads
#: (a TLS-inspecting proxy's setup usually sets one), then OpenSSL's own, which requests ignores.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
#: The two requests reads may also name a directory of hashed certificates, as requests allows.
_DIRECTORY_VARIABLES = frozenset(CA_BUNDLE_VARIABLES[:2])


def decode_json_array(content: bytes) -> list[dict[str, t.Any]] | None:
    """The JSON array of objects ``content`` holds, or None if it holds anything else."""
    try:
        records = _decode(content)
    except msgspec.DecodeError:
        return None
    if isinstance(records, list) and all(isinstance(item, dict) for item in records):
        return records
    return None


def ca_bundle(
    config: t.Mapping[str, t.Any], environ: t.Mapping[str, str]
) -> tuple[str, str] | None:
    """The CA bundle to verify Heymarket's certificate with instead of certifi's, and what named it.

    The ``ca_bundle`` setting first, then ``CA_BUNDLE_VARIABLES``. An empty value counts as unset:
    passed on, it would be ``verify=""``, which requests takes for "do not verify".
    """
    if config.get("ca_bundle"):
        return config["ca_bundle"], "ca_bundle"
    for name in CA_BUNDLE_VARIABLES:
        if environ.get(name):
            return environ[name], name
    return None


def ca_bundle_error(config: t.Mapping[str, t.Any], environ: t.Mapping[str, str]) -> str | None:
    """Why the CA bundle ``ca_bundle`` picks cannot be used, in one line naming where it was set.

    Checked before any request, so a wrong path fails once and clearly, not on every request.
    """
    value = config.get("ca_bundle")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        return "ca_bundle: must be the path of a PEM file of CA certificates"
    trusted = ca_bundle(config, environ)
    if trusted is None:
        return None
    path, source = trusted
    problem = _ca_bundle_problem(path, directory_ok=source in _DIRECTORY_VARIABLES)
    return f"{source}: {path!r} {problem}" if problem else None


def _ca_bundle_problem(path: str, *, directory_ok: bool) -> str | None:
    if directory_ok and os.path.isdir(path):
        return None
    if not os.path.isfile(path):
        return "is not a file" if os.path.exists(path) else "does not exist"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError:
        return "holds no PEM certificate"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None


def _certificate_refusal(exc: BaseException) -> str | None:
    """OpenSSL's reason for refusing the server's certificate, if ``exc`` comes from that."""
    cause: BaseException | None = exc
    for _ in range(10):  # requests wraps urllib3's error, which wraps the ssl module's
        if cause is None:
            return None
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or "certificate verify failed"
        cause = cause.__cause__ or cause.__context__
    return None


_Answer = t.TypeVar("_Answer")


def _decode_count(content: bytes) -> int | None:
    """A count endpoint's answer: a number, or a number in a JSON string (as documented)."""
    try:
        value = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, dict):
        found = value.get("count")
        return found if isinstance(found, int) and not isinstance(found, bool) else None
    return None


#: The team object: its ``id`` is the account's, on every row (``team_id``).
TEAM_PATH = "/v1/team"


@dataclass(frozen=True)
class Team:
    """The account's team (``GET /v1/team``), asked once per run and shared by every stream."""

    id: int
    #: Its members, as Heymarket lists them (the ``team_members`` stream).
    members: list[t.Any]
    #: When the answer arrived (the members' ``time_extracted``).
    received_at: datetime.datetime


def _decode_team(content: bytes) -> dict[str, t.Any] | None:
    """The team object with its ``members`` list, or None if the answer is anything else."""
    try:
        team = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return None
    if isinstance(team, dict) and isinstance(team.get("members"), list):
        return team
    return None


class HeymarketAPIError(FatalAPIError):
    """Heymarket could not give us what we asked for; the message says what and what to check.

    ``status`` is the HTTP status Heymarket answered with, when it answered at all.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _RetryableError(Exception):
    """A failed attempt worth repeating: ``wait`` is the server's Retry-After, if it gave one."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class RequestPacer:
    """Spaces request starts evenly so a sync stays under Heymarket's per-minute limit.

    Spacing rather than bursting means no 60-second window ever holds more than the allowed
    number of requests, however the API counts its window. Each request takes the next free
    start under the lock and waits for it outside: requests start in the order they asked
    (the paginator needs the first it named first), and ``hold`` takes effect at once.
    """

    def __init__(
        self,
        max_per_minute: int,
        clock: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 60.0 / max_per_minute
        self._clock = clock
        self._sleep = sleep
        self._next_start = 0.0
        self._held_until = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may start."""
        with self._lock:
            start = max(self._clock(), self._next_start)
            self._next_start = start + self._interval
        while True:
            delay = start - self._clock()
            if delay > 0:
                self._sleep(delay)
            with self._lock:
                if start >= self._held_until:
                    return
                # A hold came while this request waited: its start is taken after the hold.
                start = max(self._clock(), self._next_start)
                self._next_start = start + self._interval

    def hold(self, seconds: float) -> None:
        """Start no request for ``seconds``: Heymarket said when to come back (``Retry-After``).

        Its limit is per API key, so every stream and request in flight of the run waits, not
        only the one refused.
        """
        with self._lock:
            until = self._clock() + seconds
            self._held_until = max(self._held_until, until)
            self._next_start = max(self._next_start, until)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), if usable.

    Capped at ``MAX_RETRY_AFTER_SECONDS``.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    wait = when.timestamp() - (time.time() if now is None else now)
    return min(max(0.0, wait), MAX_RETRY_AFTER_SECONDS)


def _describe_body(response: requests.Response) -> str:
    """A short, safe account of an error body: the API's message, or what kind of body it was."""
    content_type = response.headers.get("Content-Type", "")
    text = response.text.strip()
    if "json" in content_type or text.startswith("{"):
        try:
            body = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return "an unreadable JSON body"
        if isinstance(body, dict):
            parts = [str(body[key]) for key in ("error", "message") if body.get(key)]
            return ": ".join(parts)[:300] or "a JSON object without a message"
    if text.lower().startswith(("<!doctype", "<html")) or "html" in content_type:
        return "an HTML page (a proxy or maintenance page, not the API)"
    return f"{text[:120]!r}" if text else "an empty body"


class _OneLineFailures(logging.Filter):
    """Drops the SDK's generic "unhandled error" line for a failure that explains itself.

    The SDK logs it from inside its ``except`` block, so the exception being handled tells
    whether the tap's own one-line message (logged by the CLI) is on its way.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg == _SDK_UNHANDLED_ERROR and isinstance(sys.exc_info()[1], HeymarketAPIError)
        )


#: Each tap's pacer, made by its first stream that asks.
_PACERS: weakref.WeakKeyDictionary[Tap, RequestPacer] = weakref.WeakKeyDictionary()
_PACERS_LOCK = threading.Lock()
#: Each tap's team, asked by its first stream that needs it (its first record, team members, or
#: ahead, as a stream whose records lack a ``team_id`` starts); a failed ask fails them all.
_TEAMS: weakref.WeakKeyDictionary[Tap, concurrent.futures.Future[Team]] = (
    weakref.WeakKeyDictionary()
)
_TEAMS_LOCK = threading.Lock()

_SDK_UNHANDLED_ERROR = "An unhandled error occurred while syncing '%s'"
_ONE_LINE_FAILURES = _OneLineFailures()


class HeymarketStream(Stream):
    """Base for Heymarket streams: JSON POST endpoints, JWT auth, pacing and retries.

    A plain ``Stream``, not the SDK's ``RESTStream``: that one sends one request at a time
    from its own loop, while these streams keep several requests in flight on threads
    (``fetching``), each paced, retried with a fresh token and explained in one line here;
    none of ``RESTStream``'s hooks would be used.
    """

    #: The endpoint, under ``api_url``, and how it is asked (``GET`` sends no body).
    path: str
    http_method = "POST"
    #: What a good answer holds, for the error when a 200 holds something else.
    expected_answer: str = "a JSON array of objects"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # A failure the tap explains is one line: "Sync failed: <what Heymarket did>".
        self.logger.addFilter(_ONE_LINE_FAILURES)

    @property
    def url_base(self) -> str:
        """From ``api_url``, so tests and proxies can point the tap elsewhere."""
        api_url: str = self.config["api_url"]  # a string: the tap's settings check saw to it
        return api_url.rstrip("/")

    @cached_property
    def authenticator(self) -> APIAuthenticatorBase:
        """One authenticator per stream, so a JWT can be reused for its short safe period."""
        try:
            return authenticator_for(self.config)
        except CredentialsError as exc:
            raise HeymarketAPIError(str(exc)) from None

    @cached_property
    def latency(self) -> MovingAverage:
        """Seconds from sending a request to having its whole answer, averaged over recent ones."""
        return MovingAverage()

    @property
    def pacer(self) -> RequestPacer:
        """The tap's one pacer, shared by all its streams: Heymarket's limit is per API key."""
        with _PACERS_LOCK:
            pacer = _PACERS.get(self._tap)
            if pacer is None:
                pacer = _PACERS[self._tap] = RequestPacer(self.config["max_requests_per_minute"])
        return pacer

    @property
    def team(self) -> Team:
        """The account's team: one ``GET /v1/team`` per run, shared by all the tap's streams.

        Asked through the same paced, retried path as every request. Refused or unusable (no
        integer ``id``), the sync fails in one line: rows without their account's id could not
        be told apart from another account's.
        """
        return self._team(ahead=False).result()

    def ask_team_ahead(self) -> None:
        """Have the team asked on a daemon thread now, unless it was asked already.

        For a stream whose records lack a ``team_id``: its first record needs the team, and
        asked only then, the request's round trip would stall the requests in flight behind it.
        What the ask raises is raised where the team is needed.
        """
        self._team(ahead=True)

    def _team(self, *, ahead: bool) -> concurrent.futures.Future[Team]:
        with _TEAMS_LOCK:
            asked = _TEAMS.get(self._tap)
            if asked is not None:
                return asked
            asked = _TEAMS[self._tap] = concurrent.futures.Future()
        if ahead:
            threading.Thread(target=self._answer_team, args=(asked,), daemon=True).start()
        else:
            self._answer_team(asked)
        return asked

    def _answer_team(self, asked: concurrent.futures.Future[Team]) -> None:
        try:
            asked.set_result(self._ask_team())
        except BaseException as exc:  # raised to every stream that needs the team
            asked.set_exception(exc)

    @property
    def team_id(self) -> int:
        """The account's team id: every record's ``team_id`` where Heymarket gives none."""
        return self.team.id

    def _ask_team(self) -> Team:
        what = f"the account's team id (GET {TEAM_PATH}, every row's team_id)"
        try:
            team = self.post_json(
                {},
                _decode_team,
                TEAM_PATH,
                method="GET",
                expected="a team object with its members",
            )
        except HeymarketAPIError as exc:
            raise HeymarketAPIError(f"{what}: {exc}", exc.status) from None
        team_id = team.get("id")
        if not isinstance(team_id, int) or isinstance(team_id, bool) or not 0 < team_id < 2**63:
            msg = (
                f"{what}: Heymarket's team object has no usable id (got {team_id!r}), so its "
                "rows could not be told apart from another account's"
            )
            raise HeymarketAPIError(msg)
        self.logger.info("Syncing the account of team %d (%s)", team_id, team.get("name"))
        return Team(team_id, team["members"], datetime.datetime.now(datetime.timezone.utc))

    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        """Every record carries its account's ``team_id``: its own if it has one, else the run's.

        A Go zero (0) is no team. A dictionary lookup per record; the team is asked once.
        """
        if not row.get("team_id"):
            row["team_id"] = self.team_id
        return row

    @cached_property
    def progress(self) -> Progress:
        """The stream's sync so far, logged at a steady interval."""
        return Progress(self.logger, self.name)

    def count(self, path: str, body: dict[str, t.Any]) -> int | None:
        """What a count endpoint says there is, for progress lines; None if it gives no number.

        Only an estimate is at stake, so a count Heymarket does not give is not reported, but
        refused credentials fail the sync at once, as any request would.
        """
        try:
            # Never None from the decoder: an answer without a number is not worth a retry.
            (counted,) = self.post_json(body, lambda content: (_decode_count(content),), path)
        except HeymarketAPIError as exc:
            if exc.status in (401, 403):
                raise
            return None
        return counted

    @cached_property
    def trusted_cas(self) -> tuple[str, str] | None:
        """The CA bundle verifying Heymarket's certificate and what named it; None for certifi's."""
        return ca_bundle(self.config, os.environ)

    @cached_property
    def _idle_sessions(self) -> queue.SimpleQueue[requests.Session]:
        """Keep-alive sessions not in use: a request takes one, so no two threads share one."""
        return queue.SimpleQueue()

    @contextlib.contextmanager
    def _session(self) -> Iterator[requests.Session]:
        """An idle session (a new one if all are busy), given back when the request is done.

        requests does not promise that a session is safe to share between threads, and the
        requests in flight each run on a thread of their own.
        """
        try:
            session = self._idle_sessions.get_nowait()
        except queue.Empty:
            session = self._new_session()
        try:
            yield session
        finally:
            self._idle_sessions.put(session)

    def _new_session(self) -> requests.Session:
        """A keep-alive session with TLS verification that no environment setting turns off.

        It verifies against ``trusted_cas`` when set (the ``ca_bundle`` setting, or the
        variables requests users set for a TLS-inspecting proxy), else certifi's public CAs.
        """
        session = requests.Session()
        session.verify = self.trusted_cas[0] if self.trusted_cas else True
        # Proxy and CA bundle settings are read from the environment once, here: with
        # ``trust_env`` on, requests re-reads the whole environment (and ~/.netrc) on every
        # request, which was a third of the tap's CPU per page.
        session.trust_env = False
        session.proxies = requests.utils.get_environ_proxies(self.url_base)
        return session

    @cached_property
    def _templates(self) -> dict[tuple[str, str], requests.PreparedRequest]:
        """Each endpoint's request without body, cookies or token, prepared once."""
        return {}

    def _prepare(
        self, session: requests.Session, method: str, path: str, data: bytes | None
    ) -> requests.PreparedRequest:
        """What ``session.prepare_request`` made of the request, from the endpoint's template.

        Only the body and the session's cookies differ between requests: preparing the whole
        request each time (parsing the URL, merging the session's settings) was a third of
        the CPU requests spent on one.
        """
        template = self._templates.get((method, path))
        if template is None:
            headers = requests.utils.default_headers()  # keep-alive, gzip
            headers.update(
                {
                    "User-Agent": f"{self.tap_name}/{__version__} (singer-sdk/{SDK_VERSION})",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                }
            )
            template = requests.PreparedRequest()
            template.prepare(method, self.url_base + path, headers=headers)
            self._templates[method, path] = template
        prepared = template.copy()
        prepared.prepare_body(data, None)
        if session.cookies:  # a keep-alive session sends back the cookies it was given
            prepared.prepare_cookies(session.cookies.copy())
        return prepared

    def _untrusted(self, reason: str) -> HeymarketAPIError:
        """The error for a certificate that failed verification: retrying cannot change that."""
        url = urllib.parse.urlsplit(self.url_base)  # host and port only: never a URL's userinfo
        host = f"{url.hostname}:{url.port}" if url.port else url.hostname
        trusted = (
            f"the CA bundle {self.trusted_cas[0]} (from {self.trusted_cas[1]})"
            if self.trusted_cas
            else "the public CAs (certifi)"
        )
        return HeymarketAPIError(
            f"the TLS certificate of {host} could not be verified against {trusted}: {reason}. "
            "Behind a TLS-inspecting proxy, set ca_bundle (or REQUESTS_CA_BUNDLE) to the PEM "
            "file of its CA."
        )

    def post_json(
        self,
        body: dict[str, t.Any],
        decode: t.Callable[[bytes], _Answer | None] = decode_json_array,  # type: ignore[assignment]
        path: str | None = None,
        *,
        method: str | None = None,
        expected: str | None = None,
    ) -> _Answer:
        """POST ``body`` to the stream's path (or ``path``) and return what it answers with.

        ``decode`` turns the response's bytes into the answer (a JSON array of objects by
        default), or None if they are not what was expected (``expected``, else the stream's
        ``expected_answer``, in the error). ``method`` replaces the stream's ``http_method``.

        Retries what may pass (429, 5xx, cut connections, timeouts, a 200 that is not a JSON
        array) with exponential backoff and jitter, honouring ``Retry-After``, each attempt with
        a fresh token; fails at once, with what to check, on what will not (400, 401, 403, 404).
        """
        max_retries: int = self.config["max_retries"]
        backoff = float(self.config["backoff_factor"])
        encoded = msgspec.json.encode(body)
        for attempt in range(max_retries + 1):
            try:
                return self._attempt(
                    encoded,
                    body,
                    decode,
                    path or self.path,
                    method=method or self.http_method,
                    expected=expected or self.expected_answer,
                )
            except _RetryableError as exc:
                if attempt == max_retries:
                    msg = f"Heymarket kept failing after {max_retries + 1} attempts; last: {exc}"
                    raise HeymarketAPIError(msg) from None
                delay = min(60.0, backoff * 2**attempt) * random.uniform(0.5, 1.0)
                if exc.wait is not None:
                    delay = max(delay, exc.wait)
                    self.pacer.hold(exc.wait)
                self.logger.warning(
                    "%s; retry %d of %d in %.1f s", exc, attempt + 1, max_retries, delay
                )
                time.sleep(delay)
                if isinstance(self.authenticator, HeymarketJWTAuthenticator):
                    self.authenticator.renew()
        raise AssertionError  # pragma: no cover - the loop always returns or raises

    def _attempt(
        self,
        encoded: bytes,
        body: dict[str, t.Any],
        decode: t.Callable[[bytes], _Answer | None],
        path: str,
        *,
        method: str,
        expected: str,
    ) -> _Answer:
        self.pacer.wait()
        self.progress.request_sent()
        data = None if method == "GET" else encoded
        sent = time.monotonic()
        try:
            with self._session() as session:
                prepared = self.authenticator(self._prepare(session, method, path, data))
                response = session.send(
                    prepared, timeout=float(self.config["request_timeout"]), allow_redirects=False
                )
                content = response.content
            self.latency.observe(time.monotonic() - sent)
        except requests.Timeout:
            msg = f"no answer from Heymarket within request_timeout ({self.config['request_timeout']} s)"
            raise _RetryableError(msg) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            refusal = _certificate_refusal(exc)
            if refusal is not None:
                raise self._untrusted(refusal) from None
            msg = f"connection to Heymarket failed ({type(exc).__name__})"
            raise _RetryableError(msg) from None
        request_id = response.headers.get("X-Request-Id", "none")
        status = response.status_code
        if status == 200:
            records = decode(content)
            if records is not None:
                return records
            msg = (
                f"Heymarket answered 200 with {_describe_body(response)} instead of "
                f"{expected} (X-Request-Id: {request_id})"
            )
            raise _RetryableError(msg)
        what = f"Heymarket answered {status} with {_describe_body(response)} (X-Request-Id: {request_id})"
        if status in _RETRIED_STATUSES:
            raise _RetryableError(what, retry_after_seconds(response.headers.get("Retry-After")))
        if status in (401, 403):
            msg = f"{what}: the credentials were refused; {_CREDENTIAL_HINT}."
        elif status == 400:
            msg = f"{what}: the request {body} was rejected; check start_date and page_size."
        elif status == 404:
            msg = f"{what}: no such endpoint; check api_url ({self.url_base})."
        else:
            msg = f"{what}."
        raise HeymarketAPIError(msg, status)
