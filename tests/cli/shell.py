"""Commands as a person pastes them: ``bash -c`` in the checkout, a new shell's environment.

The environment is the test process's without any ``SALESBRIDGE_*`` variable (what a
fresh shell has), plus what a test names: a data dir, ports, a tick.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = "bin/salesbridge"
STARTUP_SECONDS = 120


def fresh_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBRIDGE_")}
    env.update(variables)
    return env


def paste(
    command: str, env: dict[str, str], *, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run one pasted command line (or a few lines) in the checkout."""
    return subprocess.run(
        ["bash", "-c", f"set -e\n{command}"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def ok(command: str, env: dict[str, str], *, timeout: float = 300) -> str:
    """Paste and expect exit code 0; returns stdout + stderr."""
    done = paste(command, env, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{output}"
    return output


@dataclass
class Background:
    """A pasted command that keeps running (serve, sandbox, demo), its output in a file."""

    command: str
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    def wait_for(self, pattern: str, *, seconds: float = STARTUP_SECONDS) -> re.Match[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output)
            if found:
                return found
            assert self.process.poll() is None, f"`{self.command}` exited:\n{self.output}"
            time.sleep(0.2)
        pytest.fail(f"no {pattern!r} from `{self.command}` in {seconds} s:\n{self.output}")

    def wait_until_answers(self, url: str) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"`{self.command}` exited:\n{self.output}"
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"{url} did not answer:\n{self.output}")

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; its exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=60)


@contextmanager
def running(command: str, env: dict[str, str], log_file: Path) -> Iterator[Background]:
    """Start a long-running pasted command; killed at the end if the test did not stop it."""
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            ["bash", "-c", command], cwd=ROOT, env=env, stdout=sink,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    background = Background(command, process, log_file)
    try:
        yield background
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def query(database: Path, statement: str, *parameters: Any) -> list[tuple[Any, ...]]:
    """Read or change the SQLite database a command left (for checks and test set-up)."""
    with closing(sqlite3.connect(database, timeout=30)) as connection, connection:
        return connection.execute(statement, parameters).fetchall()
