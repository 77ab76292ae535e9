"""The command lines Salesbridge prints for people to paste, written so each works as printed.

In a checkout the program is ``bin/salesbridge``, which creates ``.venv`` on first use:
relative when the current directory is the checkout, its absolute path otherwise. An
installed package (no ``bin/salesbridge`` beside it) prints ``salesbridge``, its entry
point on PATH. Where the data lives, when the environment says so, goes in front: a new
shell does not have the variables this process was started with.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = ROOT / "bin" / "salesbridge"
DEFAULT_DATA_DIR = Path(".salesbridge")
# Where the data is; the other settings (ports, log format) a pasted command can do without.
_LOCATION_VARIABLES = ("SALESBRIDGE_DATA_DIR", "SALESBRIDGE_DATABASE_URL")


def program() -> str:
    if not WRAPPER.exists():
        return "salesbridge"
    try:
        return str(WRAPPER.relative_to(Path.cwd().resolve()))
    except ValueError:
        return shlex.quote(str(WRAPPER))


def _location_prefix() -> str:
    words = []
    for name in _LOCATION_VARIABLES:
        value = os.environ.get(name, "")
        if not value or (name == "SALESBRIDGE_DATA_DIR" and Path(value) == DEFAULT_DATA_DIR):
            continue
        if name == "SALESBRIDGE_DATABASE_URL" and _has_password(value):
            continue  # never print a password; whoever set it has it in their environment
        words.append(f"{name}={shlex.quote(value)}")
    return " ".join(words) + " " if words else ""


def command_line(arguments: str) -> str:
    """``bin/salesbridge sync status`` (with ``SALESBRIDGE_DATA_DIR=... `` when it is set)."""
    return f"{_location_prefix()}{program()} {arguments}"


def _has_password(url: str) -> bool:
    from sqlalchemy.engine import make_url

    return make_url(url).password is not None
