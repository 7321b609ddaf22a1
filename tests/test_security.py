"""Secrets stay secret and credentials only travel over verified TLS (or to loopback)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import TapRun, run_tap, tap_config

SECRET_KEY = "sk-Sup3rS3cretSigningMaterial"
API_KEY = "ak-T3amKeyThatMustNeverLeak"


def assert_nothing_secret(run: TapRun, *secrets: str) -> None:
    output = run.stdout + run.stderr
    for secret in secrets:
        assert secret not in output
    assert "eyJ" not in output, "a bearer JWT (base64 of '{\"') was printed"


@pytest.fixture
def jwt_fake() -> Iterator[FakeHeymarket]:
    with FakeHeymarket(contacts=120, seed=31, secret_key=SECRET_KEY) as fake:
        yield fake


@pytest.mark.parametrize(
    ("faults", "args", "returncode"),
    [
        ((), (), 0),
        (("500", "cut", "html-200"), (), 0),
        (("503",) * 4, (), 1),
        (("401",), (), 1),
        ((), ("--about",), 0),
        ((), ("--about", "--format", "json"), 0),
        ((), ("--discover",), 0),
    ],
    ids=[
        "sync",
        "sync-with-retries",
        "retries-exhausted",
        "refused",
        "about",
        "about-json",
        "discover",
    ],
)
def test_the_secret_key_and_tokens_never_appear_in_any_output_at_debug_level(
    jwt_fake, faults, args, returncode
):
    jwt_fake.queue_faults(*faults)
    run = run_tap(tap_config(jwt_fake, max_retries=3), *args, log_level="DEBUG")

    assert run.returncode == returncode, run.stderr
    if "--about" not in args:  # --about prints and exits before any logging
        assert "DEBUG" in run.stderr, "the run must really log at DEBUG"
    signing_key = f"{jwt_fake.secret_id}||{SECRET_KEY}"
    assert_nothing_secret(run, SECRET_KEY, signing_key)


@pytest.mark.parametrize(
    "api_key",
    [API_KEY, f"{API_KEY}\n", f"{API_KEY}\u2019x", "wrong-key"],
    ids=["good", "trailing-newline", "non-ascii", "refused"],
)
def test_the_legacy_api_key_never_appears_even_when_it_cannot_be_sent(api_key):
    with FakeHeymarket(contacts=60, seed=32, api_key=API_KEY) as fake:
        run = run_tap(tap_config(fake, api_key=api_key), log_level="DEBUG")

    assert_nothing_secret(run, API_KEY, "wrong-key")
    assert "Traceback" not in run.stderr
    if api_key.strip() == API_KEY:
        assert run.returncode == 0, "surrounding whitespace from a copy-paste is not the key"
    else:
        assert run.returncode == 1 and "api_key" in run.stderr


def test_config_errors_name_the_setting_without_echoing_its_secret(jwt_fake):
    config = tap_config(jwt_fake)
    del config["api_secret_id"]
    run = run_tap(config, log_level="DEBUG")

    assert run.returncode != 0 and "api_secret_id" in run.stderr
    assert_nothing_secret(run, SECRET_KEY)


@pytest.fixture
def self_signed_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that nobody trusts, and its key, as PEM files."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def self_signed_https(
    self_signed_cert: tuple[Path, Path], serve_empty_pages
) -> tuple[str, list[str]]:
    """An HTTPS server on loopback with the self-signed certificate; yields (url, paths asked)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed_cert)
    return serve_empty_pages(context)


CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.fixture
def no_ca_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any variable naming a CA bundle."""
    for name in (*CA_VARIABLES, "TAP_HEYMARKET_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def https_config(url: str, **overrides: object) -> dict:
    config = {"api_secret_id": "id", "api_secret_key": SECRET_KEY, "api_url": url}
    return {**config, "max_retries": 2, "backoff_factor": 0.01, "request_timeout": 2, **overrides}


def error_lines(run: TapRun) -> list[str]:
    return [line.split("| ")[-1] for line in run.stderr.splitlines() if "| ERROR" in line]


def test_tls_verification_stays_on_whatever_the_environment_says(self_signed_https, monkeypatch):
    url, asked = self_signed_https
    for name in CA_VARIABLES:
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("PYTHONHTTPSVERIFY", "0")
    run = run_tap(https_config(url, max_retries=1))

    assert run.returncode == 1
    assert asked == [], "a request (and its credentials) went to an unverified server"
    assert "could not be verified" in run.stderr


def name_ca_bundle(config: dict, env: pytest.MonkeyPatch, where: str, path: str) -> None:
    """Point the tap at ``path`` through the ``ca_bundle`` setting or the variable ``where``."""
    if where == "ca_bundle":
        config["ca_bundle"] = path
    else:
        env.setenv(where, path)


@pytest.mark.parametrize("trust", ["ca_bundle", *CA_VARIABLES])
def test_a_sync_trusts_the_ca_bundle_named_by_the_setting_or_the_environment(
    self_signed_cert, self_signed_https, no_ca_variables, trust
):
    url, asked = self_signed_https
    cert = str(self_signed_cert[0])
    config = https_config(url)
    name_ca_bundle(config, no_ca_variables, trust, cert)

    run = run_tap(config)

    assert run.returncode == 0, run.stderr
    assert asked and run.records == []
    assert_nothing_secret(run, SECRET_KEY)


@pytest.mark.parametrize(
    ("trusted", "ignored"),
    [
        ("ca_bundle", "REQUESTS_CA_BUNDLE"),
        ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"),
        ("CURL_CA_BUNDLE", "SSL_CERT_FILE"),
    ],
)
def test_the_setting_comes_before_requests_variables_which_come_before_openssls(
    self_signed_cert, self_signed_https, no_ca_variables, trusted, ignored
):
    url, asked = self_signed_https
    config = https_config(url)
    no_ca_variables.setenv(ignored, certifi.where())  # a valid bundle without our certificate
    if trusted == "ca_bundle":
        config["ca_bundle"] = str(self_signed_cert[0])
    else:
        no_ca_variables.setenv(trusted, str(self_signed_cert[0]))

    run = run_tap(config)

    assert run.returncode == 0, run.stderr
    assert asked


def test_an_untrusted_certificate_fails_at_once_in_one_line_saying_to_set_ca_bundle(
    self_signed_https, no_ca_variables
):
    url, asked = self_signed_https

    run = run_tap(https_config(url, max_retries=3))

    assert run.returncode == 1
    assert asked == []
    assert "retry" not in run.stderr, "a certificate that fails verification fails the same again"
    assert "Traceback" not in run.stderr
    [line] = [line for line in error_lines(run) if "certificate" in line]
    assert "could not be verified" in line and "self-signed certificate" in line
    assert "ca_bundle" in line and "REQUESTS_CA_BUNDLE" in line
    assert_nothing_secret(run, SECRET_KEY)


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("missing", "ca_bundle"),
        ("directory", "ca_bundle"),
        ("not-pem", "ca_bundle"),
        ("empty", "ca_bundle"),
        ("missing", "REQUESTS_CA_BUNDLE"),
        ("not-pem", "SSL_CERT_FILE"),
    ],
)
def test_a_ca_bundle_that_cannot_be_used_fails_before_any_request_naming_where_it_was_set(
    fake, tmp_path, no_ca_variables, case, named
):
    path = {
        "missing": str(tmp_path / "nowhere.pem"),
        "directory": str(tmp_path),
        "not-pem": str(tmp_path / "notes.txt"),
        "empty": "",
    }[case]
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    config = tap_config(fake)
    name_ca_bundle(config, no_ca_variables, named, path)

    run = run_tap(config)

    assert run.returncode == 1
    assert fake.requests == []
    errors = error_lines(run)
    assert errors and errors[0].startswith(f"{named}:"), run.stderr
    assert "Traceback" not in run.stderr
