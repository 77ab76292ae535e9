"""Commands in the README and docs/ are written as they are typed in a checkout, and exist.

Each ``salesbridge`` command a document shows starts with ``bin/salesbridge`` (the
wrapper that creates .venv on first use), and its sub-command path names a real command
of the CLI.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer

from app.cli import cli
from tests.docs.test_paths_exist import DOCUMENTS, ROOT

CODE = re.compile(r"`([^`\n]+)`|```[a-z]*\n(.*?)```", re.DOTALL)
BARE = re.compile(r"(?<![\w/.-])salesbridge (?:[a-z][\w-]*)")
WRAPPED = re.compile(r"bin/salesbridge((?: [a-z][\w-]*)+)")


def code_spans(text: str) -> list[str]:
    return [inline or block for inline, block in CODE.findall(text)]


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")  # typer carries its own copy of click's classes


def _resolves(words: list[str]) -> bool:
    """The longest prefix of ``words`` that is a command path must end on a command."""
    command: Any = typer.main.get_command(cli)
    for word in words:
        if not _is_group(command):
            return True  # the rest are arguments
        sub = command.get_command(command.context_class(command), word)
        if sub is None:
            return False
        command = sub
    return not _is_group(command)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_documented_commands_use_the_wrapper_and_exist(document: object) -> None:
    text = (ROOT / str(document)).read_text()
    spans = code_spans(text)
    assert [bare for span in spans for bare in BARE.findall(span)] == []
    unknown = [
        f"bin/salesbridge{words}"
        for span in spans
        for words in WRAPPED.findall(span)
        if not _resolves(words.split())
    ]
    assert unknown == []


def test_the_checks_see_bad_commands() -> None:
    assert BARE.findall("run `salesbridge sync status`") == ["salesbridge sync"]
    assert not _resolves(["sync", "statuz"])
    assert _resolves(["user", "create", "alice"])
    assert _resolves(["connection", "setup"])
