"""Regenerate the README's settings table from ``tap-heymarket --about --format=markdown``.

Run with ``--check`` to fail (exit 1) when the README is out of date instead of rewriting it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_table() -> str:
    """The ``## Settings`` table of the tap's own --about output."""
    about = subprocess.run(
        [sys.executable, "-m", "tap_heymarket", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = about.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| Setting"))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return "\n".join(table)


def main() -> int:
    """Rewrite (or with --check, verify) the table between the README's markers."""
    text = README.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{settings_table()}\n{END}{tail}"
    if "--check" in sys.argv:
        if updated != text:
            print("README settings table is out of date: run scripts/update_readme_settings.py")
            return 1
        return 0
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
