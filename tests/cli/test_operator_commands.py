"""The commands that show what exists, run in-process against a fresh data dir."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from app.settings import get_settings
from tests.cli.shell import query
from tests.cli.test_commands import data_dir as data_dir  # the fixture, shared
from tests.cli.test_commands import invoke, ok
from tests.fixtures.sandbox import RunningSandbox


@pytest.fixture(autouse=True)
def _sandbox_on_this_machine(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox answers on 127.0.0.1, like an on-premises CRM: allowed by the setting."""
    monkeypatch.setenv("SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES", "true")
    get_settings.cache_clear()


def _connect(sandbox: RunningSandbox) -> str:
    return ok(
        "connection", "setup", "--crm-url", sandbox.base_url, "--token-url", sandbox.token_url,
        "--client-id", sandbox.config.client_id, "--client-secret", sandbox.config.client_secret,
    ).stderr  # fmt: skip


def test_version_and_short_help(data_dir: Path) -> None:
    assert ok("--version").stdout.startswith("salesbridge ")
    short = ok("-h").stdout
    assert short == ok("--help").stdout
    assert "connection" in short and "mapping" in short
    assert "<bool>" not in ok("sandbox", "-h").stdout + ok("user", "create", "-h").stdout


def test_a_fresh_service_says_where_mappings_come_from(data_dir: Path) -> None:
    ok("db", "upgrade")
    refused = invoke("sync", "run", "ITEM-PRODUCT")
    assert refused.exit_code == 1
    assert "no mappings yet" in refused.stderr and "connection setup" in refused.stderr
    assert "POST /api/v1/mappings/reset-defaults" in refused.stderr
    assert "no mappings yet" in ok("mapping", "list").stderr
    assert "(not set)" in ok("connection", "status").stdout
    assert "job queue is empty" in ok("sync", "status").stderr


def test_connect_then_see_mappings_status_and_a_known_mapping(
    data_dir: Path, sandbox: RunningSandbox
) -> None:
    ok("init")
    said = _connect(sandbox)
    assert f"Connected to {sandbox.base_url}" in said and "Item availability published" in said
    assert "CRM change notifications registered" in said
    assert "bin/salesbridge connection test" in said
    tested = ok("connection", "test")
    assert "ok    token" in tested.stdout and "The connection works." in tested.stderr
    status = ok("connection", "status").stdout
    assert "enabled" in status and "sandbox-client" in status and "sandbox-secret" not in status
    mappings = ok("mapping", "list").stdout
    assert mappings.splitlines()[0].split() == ["NAME", "ERP", "TABLE", "CRM", "TABLE",
                                                "DIRECTION", "JOB"]  # fmt: skip
    assert re.search(r"^ITEM-PRODUCT +item +product +bidirectional +scheduled$", mappings, re.M)
    queued = ok("sync", "full").stderr  # no serve on this data dir: queued, not waited for
    assert "queuing without waiting" in queued and "Queued a full synchronization" in queued
    full = query(data_dir / "salesbridge.db", "SELECT count(*) FROM job_queue_entry "
                 "WHERE kind = 'full_sync' AND status != 'finished'")  # fmt: skip
    assert full[0][0] > 0
    unknown = invoke("sync", "run", "ITEM-PRODUKT")
    assert unknown.exit_code == 1 and "The mappings are: " in unknown.stderr
    assert "ITEM-PRODUCT" in unknown.stderr


def test_sync_status_fits_80_columns_and_wide_shows_whole_errors(
    data_dir: Path, sandbox: RunningSandbox
) -> None:
    ok("init")
    _connect(sandbox)
    error = "RetriableSyncError: Could not reach the CRM " + "and this goes on " * 10 + "END"
    query(data_dir / "salesbridge.db", "UPDATE job_queue_entry SET status = 'error', "
          "last_error = ? WHERE mapping_name = 'CUSTOMER'", error)  # fmt: skip
    query(data_dir / "salesbridge.db", "UPDATE job_queue_entry SET status = "
          "'on_hold_with_inactivity_timeout' WHERE mapping_name = 'CURRENCY'")  # fmt: skip
    narrow = ok("sync", "status").stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80, narrow
    assert "resting" in narrow and "failed" in narrow and "scheduled" in narrow
    assert "on_ho" not in narrow and "END" not in narrow
    wide = ok("sync", "status", "--wide").stdout
    assert "END" in wide.replace("\n", " ") and "mapping_sync" in wide


def test_keys_are_listed_and_users_deleted(data_dir: Path) -> None:
    ok("init")
    ok("user", "create", "crm", "--role", "product-availability", "--key-only")
    assert "has no access keys" in ok("key", "list", "crm").stderr
    key = ok("key", "new", "crm").stdout.strip()
    listing = ok("key", "list", "crm").stdout
    key_id = key.split("_")[1]
    assert key_id in listing and "active" in listing and key not in listing
    assert "Deleted user 'crm' and its 1 access key." in ok("user", "delete", "crm").stderr
    last_admin = invoke("user", "delete", "admin")
    assert last_admin.exit_code == 1 and "last enabled integration-admin" in last_admin.stderr


def test_serve_checks_its_port_before_starting_anything(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", "--port", str(port))
    assert result.exit_code == 1
    assert f"port 127.0.0.1:{port} is in use: choose another with --port" in result.stderr
    assert not (data_dir / "salesbridge.db").exists()  # no migration, no Redis, no worker
