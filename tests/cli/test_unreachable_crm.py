"""An unreachable CRM is an expected, retriable failure: one log line per failed run."""

from __future__ import annotations

import time
from pathlib import Path

from tests.cli.shell import fresh_env, ok, query, running
from tests.fixtures.services import free_port


def test_three_failed_runs_against_an_unreachable_crm_log_under_20_lines(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = fresh_env(
        SALESBRIDGE_DATA_DIR=str(data), SALESBRIDGE_SANDBOX_PORT=str(free_port()),
        SALESBRIDGE_SCHEDULER_TICK_SECONDS="1",
        SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES="true",  # the sandbox is on 127.0.0.1
    )  # fmt: skip
    ok("bin/salesbridge init", env)
    with running("bin/salesbridge sandbox --memory", env, tmp_path / "sandbox.log") as sandbox:
        sandbox.wait_for("Ctrl-C stops the sandbox")
        ok("bin/salesbridge connection setup --sandbox", env)
        assert sandbox.stop() == 0, sandbox.output
    # The CRM is gone now. Of the entries the setup created, one runs: 3 attempts, 1 s apart.
    database = data / "salesbridge.db"
    query(database, "UPDATE job_queue_entry SET status = 'on_hold'")
    [(entry_id,)] = query(
        database, "SELECT id FROM job_queue_entry WHERE mapping_name = 'ITEM-PRODUCT'"
    )
    query(
        database,
        "UPDATE job_queue_entry SET status = 'ready', attempt = 0, max_attempts = 3, "
        "rerun_delay_seconds = 1, earliest_start_at = NULL WHERE id = ?",
        entry_id,
    )

    port = free_port()
    with running(f"bin/salesbridge serve --port {port}", env, tmp_path / "serve.log") as serve:
        deadline = time.monotonic() + 240
        while query(database, "SELECT status FROM job_queue_entry WHERE id = ?", entry_id) != [
            ("error",)
        ]:
            assert time.monotonic() < deadline, serve.output
            assert serve.process.poll() is None, serve.output
            time.sleep(0.5)
        log = serve.output
        assert serve.stop() == 0, serve.output

    [(attempts, last_error)] = query(
        database, "SELECT attempt, last_error FROM job_queue_entry WHERE id = ?", entry_id
    )
    assert attempts == 3 and "cannot reach the token endpoint" in last_error, last_error
    lines = log.splitlines()
    assert len(lines) < 20, log
    assert "Traceback" not in log
    assert sum("job_failed" in line for line in lines) == 3, log
