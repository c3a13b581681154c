"""The arrows between the packages run one way (api → maps → geo → layers) with no import cycles
between siblings: the import-linter contracts in pyproject.toml, run as `make lint` runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout


def test_every_room_of_geo_says_what_it_owns():
    rooms = [p for p in (ROOT / "geo").iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert {p.name for p in rooms} >= {"store", "spatial", "access", "features", "cases", "programme", "io", "demo"}
    for room in rooms:
        text = (room / "__init__.py").read_text(encoding="utf-8").strip()
        assert text.startswith('"""') and len(text) > 40, f"geo/{room.name}/__init__.py needs a docstring"
