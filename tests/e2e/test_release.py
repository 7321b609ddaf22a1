"""The release as users get it: ``python -m build`` makes an sdist and a wheel that pass
``twine check``, and the wheel, installed alone into a fresh virtual environment, describes
itself and syncs a fake Heymarket with nothing from the checkout on the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import PLUGIN_ENV_PREFIXES, PROJECT_ROOT
from testbed.runs import FAST_SETTINGS, parse_messages

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli where tomllib is missing
    import tomli as tomllib

pytestmark = pytest.mark.e2e

VERSION = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "version"
]


@dataclass
class Release:
    sdist: Path
    wheel: Path


@dataclass
class Installed:
    """A virtual environment holding the wheel alone, and where to run its commands from."""

    venv: Path
    cwd: Path
    env: dict[str, str]

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def timed(what: str, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; print how long it took (seen with ``pytest -s``), fail with its output."""
    began = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    print(f"{what}: {time.monotonic() - began:.1f} s")
    assert done.returncode == 0, f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that would put the checkout on the path or
    configure the tap: no PYTHONPATH, no active virtual environment, no TAP_HEYMARKET_*."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
        and not key.startswith(PLUGIN_ENV_PREFIXES)
    }


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """``python -m build``: the sdist, then the wheel built from it, as a release would be."""
    out = tmp_path_factory.mktemp("dist")
    timed(
        "python -m build",
        [sys.executable, "-m", "build", "--outdir", str(out), str(PROJECT_ROOT)],
        cwd=out,
        env=clean_env(),
    )
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return Release(sdist, wheel)


@pytest.fixture(scope="module")
def installed(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh virtual environment with the wheel (and its dependencies) pip-installed."""
    root = tmp_path_factory.mktemp("user")
    venv, cwd = root / "venv", root / "work"
    cwd.mkdir()
    env = clean_env()
    timed("python -m venv", [sys.executable, "-m", "venv", str(venv)], cwd=cwd, env=env)
    timed(
        "pip install the wheel",
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(release.wheel)],
        cwd=cwd,
        env=env,
        timeout=600,
    )
    return Installed(venv, cwd, env)


@pytest.fixture
def small_fake() -> Iterator[FakeHeymarket]:
    with FakeHeymarket(contacts=250, seed=5) as server:
        yield server


def test_sdist_and_wheel_are_this_version_and_pass_twine_check(release: Release):
    assert release.sdist.name == f"tap_heymarket-{VERSION}.tar.gz"
    assert release.wheel.name == f"tap_heymarket-{VERSION}-py3-none-any.whl"
    done = timed(
        "twine check",
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            str(release.sdist),
            str(release.wheel),
        ],
    )
    assert done.stdout.count("PASSED") == 2, done.stdout


def test_wheel_holds_the_tap_package_and_its_metadata_alone(release: Release):
    with zipfile.ZipFile(release.wheel) as wheel:
        names = wheel.namelist()
        entry_points = wheel.read(f"tap_heymarket-{VERSION}.dist-info/entry_points.txt").decode()
        metadata = wheel.read(f"tap_heymarket-{VERSION}.dist-info/METADATA").decode()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"tap_heymarket", f"tap_heymarket-{VERSION}.dist-info"}, tops
    assert not [name for name in names if name.startswith(("tests/", "testbed/"))]
    assert "tap_heymarket/tap.py" in names
    assert "tap-heymarket = tap_heymarket.tap:TapHeymarket.cli" in entry_points
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert f"tap_heymarket-{VERSION}.dist-info/licenses/LICENSE" in names  # the text, beside it


def test_sdist_holds_the_tests_and_the_testbed_they_import(release: Release):
    with tarfile.open(release.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    wanted = {
        path.relative_to(PROJECT_ROOT).as_posix()
        for top in ("tests", "testbed")
        for path in (PROJECT_ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert {"testbed/__init__.py", "tests/conftest.py", "tests/e2e/conftest.py"} <= wanted
    assert sorted(wanted - names) == []
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_installed_package_is_the_wheels_and_the_checkout_is_out_of_reach(installed: Installed):
    done = installed.run(
        installed.bin("python"),
        "-c",
        "import tap_heymarket, importlib.util as u;"
        "print(tap_heymarket.__file__); print(u.find_spec('testbed'), u.find_spec('tests'))",
    )
    assert done.returncode == 0, done.stderr
    module_file, specs = done.stdout.splitlines()
    assert Path(module_file).is_relative_to(installed.venv), module_file
    assert specs == "None None"


def test_installed_about_shows_pyprojects_version(installed: Installed):
    done = installed.run(installed.bin("tap-heymarket"), "--about", "--format=json")
    assert done.returncode == 0, done.stderr
    about = json.loads(done.stdout)
    assert about["name"] == "tap-heymarket"
    assert about["version"] == VERSION


def test_installed_tap_syncs_the_fake_api_with_records_then_state(
    installed: Installed, small_fake: FakeHeymarket
):
    config = {
        **FAST_SETTINGS,
        "api_url": small_fake.url,
        "api_secret_id": small_fake.secret_id,
        "api_secret_key": small_fake.secret_key,
    }
    config_file = installed.cwd / "config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    done = installed.run(installed.bin("tap-heymarket"), "--config", str(config_file))
    assert done.returncode == 0, done.stderr[-3000:]
    messages = parse_messages(done.stdout)
    records = [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == "contacts"]
    assert {r["id"] for r in records} == {c["id"] for c in small_fake.contacts()}
    assert len(records) == 250
    assert messages[-1]["type"] == "STATE"
    bookmark = messages[-1]["value"]["bookmarks"]["contacts"]["replication_key_value"]
    assert bookmark == max(r["updated"] for r in records)
