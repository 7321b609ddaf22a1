"""meltano.yml declares the tap as the tap describes itself, so Meltano shows and passes every setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
#: Meltano kind for each JSON schema type. Numbers are declared `integer`: Meltano 4.4.1 fails
#: on a `decimal` value from an environment variable (see the comment in meltano.yml).
KIND_OF_TYPE = {
    "string": "string",
    "integer": "integer",
    "number": "integer",
    "boolean": "boolean",
    "object": "object",
}


def tap_about() -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tap_heymarket", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_every_tap_setting_is_declared_with_its_kind_secrecy_and_default():
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    tap = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-heymarket")
    declared = {setting["name"]: setting for setting in tap["settings"]}
    about = tap_about()
    properties = about["settings"]["properties"]

    assert set(declared) == set(properties)
    for name, schema in properties.items():
        setting = declared[name]
        [json_type] = [kind for kind in schema["type"] if kind != "null"]
        kind = "date_iso8601" if schema.get("format") == "date-time" else KIND_OF_TYPE[json_type]
        assert setting["kind"] == kind, name
        assert setting.get("sensitive", False) == schema.get("secret", False), name
        assert setting.get("value") == schema.get("default"), name
    assert set(tap["capabilities"]) <= set(about["capabilities"])
