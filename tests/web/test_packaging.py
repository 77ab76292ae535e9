"""The console's templates and assets ship inside the wheel, so a non-editable install
serves them (package data of ``app.web`` in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from app.web.rendering import STATIC_DIR, TEMPLATES_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_carries_every_template_and_static_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("salesbridge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"app/web/{path.relative_to(TEMPLATES_DIR.parent).as_posix()}"
        for folder in (TEMPLATES_DIR, STATIC_DIR)
        for path in folder.rglob("*")
        if path.is_file()
    }
    assert "app/web/static/htmx.min.js" in expected
    assert "app/web/templates/base.html" in expected
    assert expected <= names, sorted(expected - names)
