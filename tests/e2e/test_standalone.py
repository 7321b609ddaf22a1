"""The README's standalone recipe, run verbatim: ``tap-heymarket ... | target-postgres ...`` twice."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import PLUGIN_ENV_PREFIXES, PROJECT_ROOT, plugin_executable
from testbed.postgres import ThrowawayPostgres
from testbed.runs import is_bookmark_after_edits
from tests.e2e.conftest import (
    SCHEMA,
    bookmark,
    expected_contacts,
    ids_from,
    loaded_by_last_sync,
    loaded_contacts,
)

pytestmark = pytest.mark.e2e

README = PROJECT_ROOT / "README.md"


def readme_recipe() -> dict[str, str]:
    """The code blocks between the README's standalone markers, by language (json, sh, bash)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("<!-- standalone:start -->")[1].split("<!-- standalone:end -->")[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)
    return dict(blocks)


def shell(script: str, cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_readme_standalone_recipe_syncs_then_resumes_from_the_saved_state(
    meltano_sys_dir: Path, warehouse: ThrowawayPostgres, fake: FakeHeymarket, tmp_path: Path
) -> None:
    recipe = readme_recipe()
    target = json.loads(recipe["json"])
    assert target["load_method"] == "upsert"
    info = warehouse.info
    target |= {
        "host": info.host,
        "port": info.port,
        "user": info.user,
        "password": info.password,
        "database": info.database,
    }
    (tmp_path / "target.json").write_text(json.dumps(target))
    tap = {
        "api_url": fake.url,
        "api_secret_id": fake.secret_id,
        "api_secret_key": fake.secret_key,
        "max_requests_per_minute": 100_000,
    }
    (tmp_path / "config.json").write_text(json.dumps(tap))
    (tmp_path / "sync.sh").write_text(recipe["bash"])
    # The recipe's tools: the tap and the target, as Meltano installed them.
    bins = [
        plugin_executable(meltano_sys_dir, "extractors", "tap-heymarket").parent,
        plugin_executable(meltano_sys_dir, "loaders", "target-postgres").parent,
    ]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(PLUGIN_ENV_PREFIXES)},
        "PATH": os.pathsep.join([*map(str, bins), os.environ["PATH"]]),
    }

    shell(recipe["sh"], tmp_path, env)
    shell("bash sync.sh", tmp_path, env)

    contacts = expected_contacts(fake)
    first_bookmark = bookmark(json.loads((tmp_path / "state.json").read_text()))
    assert first_bookmark == max(contact["updated"] for contact in contacts.values())
    assert {row["id"]: row for row in loaded_contacts(warehouse)} == contacts
    note_and_tags = warehouse.query(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = $1"
        " AND table_name = 'contacts' AND column_name IN ('note', 'tags')",
        SCHEMA,
    )
    assert note_and_tags == [("jsonb",), ("jsonb",)], "same table as the Meltano pipeline"

    changed = set(fake.update_contacts(15)) | set(fake.create_contacts(3))
    shell("bash sync.sh", tmp_path, env)

    contacts = expected_contacts(fake)
    sent = ids_from(contacts, first_bookmark)
    assert changed <= sent and len(sent - changed) <= 5
    assert loaded_by_last_sync(warehouse) == sent
    rows = loaded_contacts(warehouse)
    assert len(rows) == len(contacts)
    assert {row["id"]: row for row in rows} == contacts
    saved = bookmark(json.loads((tmp_path / "state.json").read_text()))
    assert is_bookmark_after_edits(saved, max(c["updated"] for c in contacts.values()))
