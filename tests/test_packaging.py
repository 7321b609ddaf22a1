"""The version and the lint tools' pins each live in one place, and everything else agrees."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 has no tomllib; pytest depends on tomli there, which reads the same.
    import tomli as tomllib

import tap_heymarket

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_about_shows_the_version_pyproject_sets():
    done = subprocess.run(
        [sys.executable, "-m", "tap_heymarket", "--about", "--format=json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["version"] == PYPROJECT["project"]["version"]


def test_package_version_is_pyprojects():
    assert tap_heymarket.__version__ == PYPROJECT["project"]["version"]


def test_pre_commit_runs_the_ruff_pyproject_pins():
    pinned = [dep for dep in PYPROJECT["project"]["optional-dependencies"]["dev"] if "ruff" in dep]
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    ruff_hooks = [
        hook
        for repo in config["repos"]
        for hook in repo["hooks"]
        if hook["entry"].startswith("ruff ")
    ]
    assert {hook["id"] for hook in ruff_hooks} == {"ruff-check", "ruff-format"}
    for hook in ruff_hooks:
        assert hook["additional_dependencies"] == pinned, hook["id"]
