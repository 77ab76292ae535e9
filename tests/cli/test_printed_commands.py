"""Every command the product prints works when pasted into a new shell in the checkout.

``serve``'s first start and the demo's banner run as real processes on a fresh data dir;
each command they print is pasted, as printed, into ``bash`` in the checkout with an
environment that has no ``SALESBRIDGE_*`` variable except the two ports (other processes
on this machine may hold the defaults, 8000 and 8100). Long-running ones (the demo) are
stopped with Ctrl-C, which must end them with exit code 0 too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from tests.cli.shell import Background, fresh_env, ok, running
from tests.fixtures.services import free_port

COMMAND_START = re.compile(r"^((SALESBRIDGE_\w+=\S+ )*bin/salesbridge|curl|TOKEN=)")
BACKTICKED = re.compile(r"`([^`]+)`")
LONG_RUNNING = re.compile(r"bin/salesbridge (demo|serve|sandbox)\b")


def printed_commands(text: str) -> list[str]:
    """In the order printed: commands in backticks, and blocks of indented command lines
    (pasted together, as a person copies a block)."""
    found: list[tuple[int, str]] = []
    block: list[str] = []
    for number, line in enumerate([*text.splitlines(), ""]):
        stripped = line.strip()
        is_continued = bool(block) and block[-1].endswith("\\")
        if line.startswith(" ") and (COMMAND_START.match(stripped) or is_continued):
            block.append(stripped)
            continue
        if block:
            found.append((number - len(block), "\n".join(block)))
            block = []
        spans = BACKTICKED.findall(line)
        found += [(number, span) for span in spans if COMMAND_START.match(span)]
    return [command for _number, command in sorted(found, key=lambda pair: pair[0])]


def _count_wrapper_mentions(text: str) -> int:
    return text.count("bin/salesbridge")


def test_printed_commands_are_complete() -> None:
    text = """
Lost it? `bin/salesbridge user reset-password admin`.

  bin/salesbridge sync status
  TOKEN=$(bin/salesbridge token admin)
  curl -s -H "Authorization: Bearer $TOKEN" http://x/api \\
      -d y

  or open http://x/docs
"""
    assert printed_commands(text) == [
        "bin/salesbridge user reset-password admin",
        "bin/salesbridge sync status\nTOKEN=$(bin/salesbridge token admin)\n"
        'curl -s -H "Authorization: Bearer $TOKEN" http://x/api \\\n-d y',
    ]


def _paste_all(output: str, env: dict[str, str], tmp_path: Path) -> list[str]:
    """Paste every command of ``output``; the outputs of the short ones, in order."""
    commands = printed_commands(output)
    assert sum(map(_count_wrapper_mentions, commands)) == _count_wrapper_mentions(output), (
        f"a command was printed in a form this test does not recognize:\n{output}"
    )
    outputs = []
    for number, command in enumerate(commands):
        if LONG_RUNNING.search(command):
            with running(command, env, tmp_path / f"pasted-{number}.log") as process:
                outputs.append(_demo_banner_commands_work(process, env, tmp_path))
        else:
            outputs.append(ok(command, env))
    return outputs


def _demo_banner_commands_work(demo: Background, env: dict[str, str], tmp_path: Path) -> str:
    assert demo.command.endswith("bin/salesbridge demo"), demo.command
    demo.wait_for(r"Ctrl-C stops the service", seconds=300)
    banner = demo.output[demo.output.index("Salesbridge demo is running") :]
    outputs = _paste_all(banner, env, tmp_path / "banner")
    items = json.loads(outputs[0])["value"]  # the OData curl
    assert {"ItemNo", "Description", "Inventory"} <= set(items[0])
    sync_log = outputs[1]  # sync status, then the sync log over REST with a token
    assert "ITEM-PRODUCT" in sync_log and '"items"' in sync_log
    # The way back: a salesperson's change made in the sandbox CRM (as that person).
    assert any("Changed accounts(" in output for output in outputs), outputs
    assert demo.stop() == 0, demo.output
    return demo.output


def test_commands_printed_by_serve_and_the_demo_work_as_pasted(tmp_path: Path) -> None:
    (tmp_path / "banner").mkdir()
    ports = {"SALESBRIDGE_PORT": str(free_port()), "SALESBRIDGE_SANDBOX_PORT": str(free_port())}
    data = {
        "SALESBRIDGE_DATA_DIR": str(tmp_path / "data"),
        "SALESBRIDGE_SCHEDULER_TICK_SECONDS": "1",
    }
    with running(
        "bin/salesbridge serve", fresh_env(**ports, **data), tmp_path / "serve.log"
    ) as serve:
        base_url = f"http://127.0.0.1:{ports['SALESBRIDGE_PORT']}"
        serve.wait_until_answers(f"{base_url}/readyz")
        first_start = serve.output
        # No terminal here (a new session), as under a service manager: the first admin's
        # password is in a file only this account reads, never in the log.
        password_file = tmp_path / "data" / "first-admin-password"
        assert f"where={password_file}" in first_start, first_start
        assert password_file.stat().st_mode & 0o777 == 0o600
        password = password_file.read_text().strip()
        assert password not in first_start
        signed_in = httpx.post(
            f"{base_url}/api/v1/auth/token", data={"username": "admin", "password": password}
        )
        assert signed_in.status_code == 200, signed_in.text
        assert serve.stop() == 0, serve.output
    pasted = _paste_all(first_start, fresh_env(**ports), tmp_path)
    assert len(pasted) == 2  # reset-password and the demo
    assert "Reusing" not in pasted[1] and "Coupled 3 salespeople" in pasted[1]
