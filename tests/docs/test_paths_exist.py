"""The README and docs/ stand alone: every path they link or name exists in the repository.

Checked: Markdown links to local files (relative to the document), and backticked names
that look like repository paths (relative to the checkout: ``app/...``, ``bin/...``,
``docs/...``, ``tests/...``, globs allowed, ``::test`` and ``:line`` suffixes ignored).
Names of files outside the repository (the project's private notes) are refused outright.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
BACKTICKED = re.compile(r"`([^`\n]+)`")
TOP_LEVEL = {path.name for path in ROOT.iterdir() if not path.name.startswith(".git")}
OUTSIDE = re.compile(
    r"(?<![\w/])(?:\.\./)*(?:shared|spec|reference)/[\w./-]+"  # a path: spec/sync.md
    r"|\b(?:spec|reference)\s+(?:`[^`]+`\s+)?§\s*\d"  # a section of one: spec §2
)


def _is_repository_path(text: str) -> bool:
    first = text.removeprefix("./").split("/", 1)[0]
    return "/" in text and " " not in text and first in TOP_LEVEL


def _exists(path: str, *, base: Path) -> bool:
    path = re.sub(r"(::\S+|:\d+(-\d+)?|[:,.;])$", "", path.split("#", 1)[0])
    if any(char in path for char in "*?["):
        return any(base.glob(path))
    if (base / path).exists():
        return True
    # A module and a name in it: app/sync/sync_pass.MappingHooks
    module, _, name = path.partition(".")
    return bool(name) and name.isidentifier() and (base / f"{module}.py").exists()


def referenced_paths(document: Path) -> list[tuple[str, Path]]:
    """(path as written, directory it is relative to) for every local path the text names."""
    text = document.read_text()
    found = []
    for target in LINK.findall(text):
        if not re.match(r"^(https?:|mailto:|#)", target):
            found.append((target, document.parent))
    for span in BACKTICKED.findall(text):
        word = span.split()[0] if span.split() else span
        for candidate in {span, word}:
            if _is_repository_path(candidate):
                found.append((candidate, ROOT))
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_path_a_document_names_exists(document: Path) -> None:
    missing = sorted(
        {path for path, base in referenced_paths(document) if not _exists(path, base=base)}
    )
    assert missing == [], f"{document.name} names paths that are not in the repository"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_no_document_cites_files_outside_the_repository(document: Path) -> None:
    assert OUTSIDE.findall(document.read_text()) == []


def test_the_check_sees_a_missing_path(tmp_path: Path) -> None:
    document = tmp_path / "x.md"
    document.write_text("See [a](nowhere.md), `app/no_such_module.py` and `app/main.py`.\n")
    named = referenced_paths(document)
    assert [path for path, base in named if not _exists(path, base=base)] == [
        "nowhere.md",
        "app/no_such_module.py",
    ]
    assert OUTSIDE.findall("`../shared/reference/dataverse.md`, spec/odata.md, spec §2") == [
        "../shared/reference/dataverse.md",
        "spec/odata.md",
        "spec §2",
    ]
