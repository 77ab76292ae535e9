"""docs/setup.md's sandbox recipe, followed literally: its commands are read from the document.

Each ``sh`` block of "Recipe 1" runs line by line in a new shell in the checkout, in the
order written; ``serve`` and ``sandbox`` keep running (in their own "terminals") while the
later lines run. The environment is a fresh shell's plus a fresh data dir and two free
ports (other processes on this machine may hold the defaults). The sandbox's own banner
command is pasted too, in a second test.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.shell import ROOT, Background, fresh_env, ok, query, running
from tests.cli.test_printed_commands import LONG_RUNNING, printed_commands
from tests.fixtures.services import free_port

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[(info|warning|error|debug) *\] \S")
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def recipe_commands() -> list[str]:
    text = (ROOT / "docs" / "setup.md").read_text()
    section = text.split("## Recipe 1", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for block in SH_BLOCK.findall(section) for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _environment(tmp_path: Path) -> dict[str, str]:
    return fresh_env(
        SALESBRIDGE_DATA_DIR=str(tmp_path / "data"), SALESBRIDGE_PORT=str(free_port()),
        SALESBRIDGE_SANDBOX_PORT=str(free_port()), SALESBRIDGE_SCHEDULER_TICK_SECONDS="1",
    )  # fmt: skip


def _wait_until_started(command: str, process: Background, env: dict[str, str]) -> None:
    if " serve" in command:
        process.wait_until_answers(f"http://127.0.0.1:{env['SALESBRIDGE_PORT']}/readyz")
    else:
        process.wait_for("Ctrl-C stops the sandbox")


def _check_synchronized(tmp_path: Path, outputs: dict[str, str]) -> None:
    test = next(command for command in outputs if command.endswith("connection test"))
    assert "The connection works." in outputs[test]
    assert "The full synchronization has finished." in outputs["bin/salesbridge sync full"]
    database = tmp_path / "data" / "salesbridge.db"
    full_sync = query(
        database, "SELECT status FROM job_queue_entry WHERE kind = 'full_sync' AND recurring = 0"
    )
    assert full_sync and {status for (status,) in full_sync} == {"finished"}, full_sync
    jobs = query(database, "SELECT count(*) FROM integration_synch_job WHERE finished_at IS NULL")
    assert jobs == [(0,)]


def test_the_sandbox_recipe_of_setup_md_works_as_written(tmp_path: Path) -> None:
    commands = recipe_commands()
    assert commands[:2] == [
        "SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES=true bin/salesbridge serve",
        "bin/salesbridge sandbox",
    ], commands
    env = _environment(tmp_path)
    outputs: dict[str, str] = {}
    with (
        running(commands[0], env, tmp_path / "serve.log") as serve,
        running(commands[1], env, tmp_path / "sandbox.log") as sandbox,
    ):
        for command, process in ((commands[0], serve), (commands[1], sandbox)):
            assert LONG_RUNNING.search(command)
            _wait_until_started(command, process, env)
        for command in commands[2:]:
            assert not LONG_RUNNING.search(command), command
            outputs[command] = ok(command, env)
        _check_synchronized(tmp_path, outputs)
        assert sandbox.stop() == 0, sandbox.output
        assert serve.stop() == 0, serve.output


def test_the_command_the_sandbox_prints_connects_a_running_serve(tmp_path: Path) -> None:
    env = _environment(tmp_path)
    serve_env = {**env, "SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES": "true"}  # as the banner says
    with (
        running("bin/salesbridge serve", serve_env, tmp_path / "serve.log") as serve,
        running("bin/salesbridge sandbox --memory", env, tmp_path / "sandbox.log") as sandbox,
    ):
        _wait_until_started("bin/salesbridge serve", serve, serve_env)
        _wait_until_started("bin/salesbridge sandbox", sandbox, env)
        banner = sandbox.output
        for label in ("Web API", "Token URL", "Tenant", "Client id", "Secret"):
            assert re.search(rf"^  {label} +\S+", banner, re.MULTILINE), banner
        pasted = printed_commands(banner)
        setup = next(command for command in pasted if "connection setup" in command)
        assert "--client-secret sandbox-secret" in setup and "--token-url http" in setup
        assert "SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES=true" in banner
        outputs = {command.split("bin/salesbridge ")[1]: ok(command, env) for command in pasted}
        assert "The connection works." in outputs["connection test"]
        assert "The full synchronization has finished." in outputs["sync full"]
        assert sandbox.stop() == 0, sandbox.output
        assert serve.stop() == 0, serve.output
    # The sandbox logs as the service does: structlog's console lines, a request per call.
    log_lines = [line for line in sandbox.output.splitlines() if line[:2] == "20"]
    assert log_lines and all(LOG_LINE.match(line) for line in log_lines), sandbox.output
    assert any("request" in line and "path=/api/data/v9.2/" in line for line in log_lines)
