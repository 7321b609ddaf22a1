"""Generate the Meltano Hub plugin definition, ``hub/tap-heymarket.yml``, from the tap's ``--about``.

    python scripts/hub_definition.py            # print it
    python scripts/hub_definition.py --write    # rewrite hub/tap-heymarket.yml
    python scripts/hub_definition.py --check    # exit 1 if the file is out of date

Settings (name, label, description, kind, default, ``sensitive``) come from the tap's JSON
schema, so a new setting reaches the Hub file by rerunning ``--write``. What ``--about`` cannot
say is written here: the two ways to authenticate, the capabilities the SDK reports but this
tap does not honour (or honours without reporting), and where the project is published.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HUB_FILE = ROOT / "hub" / "tap-heymarket.yml"

#: Not known until the repository is published: replace every TODO before submitting the file
#: to Meltano Hub (the Hub's ``variant`` is the GitHub owner by convention).
OWNER = "TODO-github-owner"
REPO_URL = f"https://github.com/{OWNER}/tap-heymarket"

#: Meltano kind for each JSON schema type. Numbers are declared ``integer`` as in meltano.yml:
#: the Hub has no decimal kind, and Meltano 4.4.1 fails on a ``decimal`` value from an
#: environment variable. A fraction can still be written in meltano.yml.
KIND_OF_TYPE = {
    "string": "string",
    "integer": "integer",
    "number": "integer",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
}

#: The minimal groups of settings that let the tap sign in: API secrets, or the legacy key.
AUTH_GROUPS = [["api_secret_id", "api_secret_key"], ["api_key"]]

#: Capabilities the SDK reports in ``--about`` that this tap does not honour, and why.
NOT_HONOURED: dict[str, str] = {}
#: Capabilities the tap honours that the SDK does not report.
ALSO_HONOURED = {
    # `tap-heymarket --test` syncs one record per stream (the SDK's connection test).
    "test": "--test syncs one record per stream",
}

#: The Hub's order of a definition's keys: what it is, then how to install it, then settings.
HEADER = (
    "# Meltano Hub plugin definition of tap-heymarket, generated from\n"
    "# `tap-heymarket --about --format=json` by scripts/hub_definition.py: do not edit by hand,\n"
    "# run `python scripts/hub_definition.py --write`. Replace each TODO before submitting it.\n"
)


def tap_about() -> dict[str, t.Any]:
    """The tap's ``--about --format=json``, run with this interpreter."""
    done = subprocess.run(
        [sys.executable, "-m", "tap_heymarket", "--about", "--format=json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return t.cast("dict[str, t.Any]", json.loads(done.stdout))


def setting_kind(name: str, schema: dict[str, t.Any]) -> str:
    """The Meltano kind of one setting's JSON schema (a date-time string is a date)."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    kinds = [kind for kind in types if kind != "null"]
    if len(kinds) != 1 or kinds[0] not in KIND_OF_TYPE:
        msg = f"{name}: no Meltano kind for JSON schema type {types!r}; add one to KIND_OF_TYPE"
        raise ValueError(msg)
    if kinds[0] == "string" and schema.get("format") == "date-time":
        return "date_iso8601"
    return KIND_OF_TYPE[kinds[0]]


def setting(name: str, schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """One Hub setting: name, label, description, kind, then a default and secrecy if any."""
    entry: dict[str, t.Any] = {
        "name": name,
        "label": schema.get("title") or name.replace("_", " ").capitalize(),
    }
    if schema.get("description"):
        entry["description"] = schema["description"]
    entry["kind"] = setting_kind(name, schema)
    if "default" in schema:
        entry["value"] = schema["default"]
    if schema.get("secret"):
        entry["sensitive"] = True
    return entry


def capabilities(about: dict[str, t.Any]) -> list[str]:
    """What the SDK reports, less what this tap does not honour, plus what it does unreported."""
    reported = [name for name in about["capabilities"] if name not in NOT_HONOURED]
    return sorted({*reported, *ALSO_HONOURED})


def definition(about: dict[str, t.Any]) -> dict[str, t.Any]:
    """The Hub definition of the tap ``about`` describes."""
    properties = about["settings"]["properties"]
    for group in AUTH_GROUPS:
        missing = [name for name in group if name not in properties]
        if missing:
            msg = f"settings_group_validation names settings the tap lacks: {missing}"
            raise ValueError(msg)
    return {
        "name": about["name"],
        "variant": OWNER,
        "namespace": about["name"].replace("-", "_"),
        "label": "Heymarket",
        "description": about["description"],
        "keywords": ["api", "meltano_sdk"],
        "maintenance_status": "development",
        "domain_url": "https://www.heymarket.com",
        "repo": REPO_URL,
        "docs": f"{REPO_URL}#readme",
        "pip_url": about["name"],
        "executable": about["name"],
        "capabilities": capabilities(about),
        "settings_group_validation": AUTH_GROUPS,
        "settings": [setting(name, schema) for name, schema in properties.items()],
    }


def render(about: dict[str, t.Any]) -> str:
    """The Hub file's text: the header, then the definition as YAML."""
    body = yaml.safe_dump(definition(about), sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body


def main(argv: list[str]) -> int:
    """Print, ``--write`` or ``--check`` the Hub definition."""
    text = render(tap_about())
    if "--check" in argv:
        current = HUB_FILE.read_text(encoding="utf-8") if HUB_FILE.exists() else ""
        if current != text:
            print(
                f"{HUB_FILE.relative_to(ROOT)} is out of date: "
                "run `python scripts/hub_definition.py --write`"
            )
            return 1
        return 0
    if "--write" in argv:
        HUB_FILE.parent.mkdir(exist_ok=True)
        HUB_FILE.write_text(text, encoding="utf-8")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
