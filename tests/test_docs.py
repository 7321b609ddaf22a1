"""The README documents what the code does."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_settings_table_matches_the_taps_about_output():
    done = subprocess.run(
        [sys.executable, "scripts/update_readme_settings.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_about_output_shows_no_secret_values():
    env = {
        "TAP_HEYMARKET_API_SECRET_KEY": "sk-never-print-me",
        "TAP_HEYMARKET_API_KEY": "ak-nor-me",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tap_heymarket", "--about", "--format=json", "--config", "ENV"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    assert "api_secret_key" in done.stdout
    assert "never-print-me" not in done.stdout + done.stderr
    assert "nor-me" not in done.stdout + done.stderr


def test_every_relative_link_in_the_readme_and_docs_leads_to_a_file():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in pages
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text())
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert len(pages) >= 4 and not broken, broken
