"""hub/tap-heymarket.yml is what scripts/hub_definition.py makes of --about, in the Hub's format,
and lists exactly the capabilities the tap honours: each one listed or left out is run here."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import yaml

from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import run_tap, tap_config

ROOT = Path(__file__).resolve().parent.parent
HUB_FILE = ROOT / "hub" / "tap-heymarket.yml"

_spec = importlib.util.spec_from_file_location("hub_definition", ROOT / "scripts/hub_definition.py")
assert _spec is not None and _spec.loader is not None
hub_definition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hub_definition)

#: The Hub's extractor schema (meltano/hub, schemas/): the keys a definition may have, those it
#: must have, and the allowed capabilities and setting kinds and keys. A setting may also be
#: `sensitive` or `hidden`, which Meltano's plugin definition reference documents in place of
#: the deprecated kinds `password` and `hidden`.
HUB_KEYS = {
    "name", "pip_url", "variant", "namespace", "label", "description", "executable", "settings",
    "docs", "repo", "logo_url", "hidden", "settings_group_validation", "commands",
    "capabilities", "metadata", "schema", "select", "maintenance_status", "domain_url",
    "keywords", "requires", "definition", "next_steps", "settings_preamble", "usage", "prereq",
}  # fmt: skip
HUB_REQUIRED = {"name", "namespace", "variant", "label"}
HUB_CAPABILITIES = {
    "properties", "catalog", "discover", "state", "about", "stream-maps", "schema-flattening",
    "activate-version", "batch", "test", "log-based", "structured-logging",
}  # fmt: skip
HUB_KINDS = {
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "options",
    "object", "array", "boolean", "string",
}  # fmt: skip
HUB_SETTING_KEYS = {
    "name", "aliases", "label", "value", "placeholder", "kind", "description", "tooltip",
    "documentation", "protected", "env", "value_processor", "value_post_processor", "oauth",
    "options", "docs", "sensitive", "hidden",
}  # fmt: skip


def hub() -> dict:
    return yaml.safe_load(HUB_FILE.read_text(encoding="utf-8"))


def meltano_yml_tap() -> dict:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    return next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-heymarket")


def test_hub_file_is_what_the_script_generates_from_about_now():
    done = subprocess.run(
        [sys.executable, "scripts/hub_definition.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hub_file_has_only_keys_kinds_and_capabilities_the_hub_schema_allows():
    definition = hub()
    assert HUB_REQUIRED <= set(definition) <= HUB_KEYS
    assert set(definition["capabilities"]) <= HUB_CAPABILITIES
    for setting in definition["settings"]:
        assert set(setting) <= HUB_SETTING_KEYS, setting["name"]
        assert setting["kind"] in HUB_KINDS, setting["name"]
    assert definition["docs"].startswith("https://")
    assert definition["executable"] == definition["pip_url"] == "tap-heymarket"


def test_every_setting_has_its_schema_kind_secrecy_default_and_label():
    about = hub_definition.tap_about()
    properties = about["settings"]["properties"]
    settings = {setting["name"]: setting for setting in hub()["settings"]}
    assert list(settings) == list(properties)
    assert (
        {name for name, s in settings.items() if s.get("sensitive")}
        == {name for name, schema in properties.items() if schema.get("secret")}
        == {"api_secret_key", "api_key"}
    )
    assert settings["start_date"]["kind"] == "date_iso8601"
    assert settings["page_size"] == {**settings["page_size"], "kind": "integer", "value": 100}
    assert settings["stream_maps"]["kind"] == "object"
    assert settings["flattening_enabled"]["kind"] == "boolean"
    for name, schema in properties.items():
        assert settings[name]["label"] == schema["title"], name
        assert settings[name].get("value") == schema.get("default"), name


def test_an_unknown_schema_type_is_refused_rather_than_guessed():
    try:
        hub_definition.setting_kind("odd", {"type": ["string", "integer"]})
    except ValueError as exc:
        assert "odd" in str(exc)
    else:
        raise AssertionError("two types were given one kind")


def test_auth_groups_are_meltano_ymls_and_each_group_alone_signs_in():
    groups = hub()["settings_group_validation"]
    assert groups == meltano_yml_tap()["settings_group_validation"]
    with FakeHeymarket(contacts=5, api_key="fake-legacy-key") as fake:
        credentials = {
            "api_secret_id": fake.secret_id,
            "api_secret_key": fake.secret_key,
            "api_key": fake.api_key,
        }
        for group in groups:
            config = {"api_url": fake.url, **{name: credentials[name] for name in group}}
            run = run_tap(config, "--test")
            assert run.returncode == 0 and len(run.records) == 1, (group, run.stderr[-2000:])


def test_capabilities_are_the_sdks_plus_test_and_meltano_yml_agrees():
    about = hub_definition.tap_about()
    listed = set(hub()["capabilities"])
    assert listed == set(about["capabilities"]) | {"test"}
    # meltano.yml lists what --about reports (tests/test_meltano_yml.py), so all but `test`,
    # which Meltano never reads: `meltano config test` runs a sync whatever is declared.
    assert set(meltano_yml_tap()["capabilities"]) == listed - {"test"}


def test_the_listed_test_capability_works_one_record_then_done(fake: FakeHeymarket):
    run = run_tap(tap_config(fake), "--test")
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records) == 1
    assert "test" in hub()["capabilities"]


def test_the_listed_batch_capability_writes_every_record_in_batch_files(
    fake: FakeHeymarket, tmp_path: Path
):
    plain = run_tap(tap_config(fake))
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": tmp_path.as_uri()},
        "batch_size": 400,
    }
    run = run_tap(tap_config(fake, batch_config=batch_config))
    assert run.returncode == 0, run.stderr[-2000:]
    assert not run.records
    batched = []
    for message in run.messages:
        if message["type"] == "BATCH" and message["stream"] == "contacts":
            for url in message["manifest"]:
                with gzip.open(url.removeprefix("file://"), "rt", encoding="utf-8") as lines:
                    batched += [json.loads(line) for line in lines]
    assert len(batched) == len(plain.records) == len(fake.contacts())
    assert {r["id"]: r for r in batched} == {r["id"]: r for r in plain.records}
    contacts_batches = [
        m for m in run.messages if m["type"] == "BATCH" and m["stream"] == "contacts"
    ]
    assert len(contacts_batches) == 3
    assert run.messages[-1]["type"] == "STATE"
    assert run.bookmark == plain.bookmark
    assert "batch" in hub()["capabilities"]


def test_the_listed_activate_version_capability_is_sent_after_a_deletion_sweep(
    fake: FakeHeymarket,
):
    run = run_tap(tap_config(fake, contacts_deletion_sweep=True))
    assert run.returncode == 0, run.stderr[-2000:]
    kinds = [m["type"] for m in run.messages if m.get("stream") == "contacts"]
    assert kinds.count("ACTIVATE_VERSION") == 1 and kinds[-1] == "ACTIVATE_VERSION"
    assert "activate-version" in hub()["capabilities"]
