"""``salesbridge serve`` as a user runs it: a fresh data dir, no Redis URL, Ctrl-C at the end."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from app.embedded_redis import redis_server_binary, server_processes
from tests.fixtures.services import free_port

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 90


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    log_file: Path
    data_dir: Path
    base_url: str

    @property
    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    def wait_ready(self) -> dict[str, str]:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited early:\n{self.output}"
            try:
                response = httpx.get(f"{self.base_url}/readyz", timeout=2)
                if response.status_code == 200:
                    body: dict[str, str] = response.json()
                    return body
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"serve was not ready after {STARTUP_SECONDS} s:\n{self.output}")

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=60)

    def redis_servers(self) -> list[psutil.Process]:
        return [
            p
            for p in server_processes(self.data_dir.resolve() / "redis")
            if p.status() != psutil.STATUS_ZOMBIE
        ]


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBRIDGE_")}
    env["SALESBRIDGE_DATA_DIR"] = str(data_dir)
    env["SALESBRIDGE_SCHEDULER_TICK_SECONDS"] = "1"
    return env


@pytest.fixture
def start_serve(tmp_path: Path) -> Iterator[Callable[[], Served]]:
    """Start ``salesbridge serve`` on a free port with a fresh data dir (killed at the end)."""
    started: list[Served] = []

    def start() -> Served:
        port = free_port()
        log_file = tmp_path / "serve.log"
        with log_file.open("wb") as sink:
            process = subprocess.Popen(
                [str(BIN / "salesbridge"), "serve", "--port", str(port)],
                cwd=tmp_path,
                env=_environment(tmp_path / "data"),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # no controlling terminal, as under a service manager
            )
        started.append(Served(process, log_file, tmp_path / "data", f"http://127.0.0.1:{port}"))
        return started[-1]

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(timeout=10)


def first_admin_password(data_dir: Path, output: str) -> str:
    """Without a terminal, serve leaves the first password in a private file, not the log."""
    path = data_dir / "first-admin-password"
    assert path.stat().st_mode & 0o777 == 0o600
    password = path.read_text().strip()
    assert password and password not in output, output
    return password


def _sign_in(served: Served) -> dict[str, str]:
    password = first_admin_password(served.data_dir, served.output)
    response = httpx.post(
        f"{served.base_url}/api/v1/auth/token",
        data={"username": "admin", "password": password},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _run_a_purge_now(served: Served, headers: dict[str, str]) -> dict[str, object]:
    entries = f"{served.base_url}/api/v1/job-queue-entries"
    body = {"kind": "purge_sync_log", "recurring": False, "status": "on_hold"}
    entry = httpx.post(entries, json=body, headers=headers, timeout=10).json()
    httpx.post(f"{entries}/{entry['id']}/run-now", headers=headers, timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entry = httpx.get(f"{entries}/{entry['id']}", headers=headers, timeout=10).json()
        if entry["status"] == "finished":
            return entry
        time.sleep(0.2)
    pytest.fail(f"the embedded worker did not run the entry: {entry}\n{served.output}")


def test_fresh_serve_is_ready_runs_jobs_and_leaves_no_redis_after_ctrl_c(
    start_serve: Callable[[], Served],
) -> None:
    serve = start_serve()
    assert serve.wait_ready() == {"database": "ok", "redis": "ok", "status": "ready"}
    assert f"Salesbridge web console: {serve.base_url}/" in serve.output
    [redis_server] = serve.redis_servers()
    assert (serve.data_dir / "redis").stat().st_mode & 0o777 == 0o700
    headers = _sign_in(serve)
    assert _run_a_purge_now(serve, headers)["run_count"] == 1

    # A second worker process finds the embedded Redis through the data dir.
    worker_log = serve.log_file.with_name("worker.log")
    with worker_log.open("wb") as sink:
        worker = subprocess.Popen(
            [str(BIN / "salesbridge"), "worker"],
            env=_environment(serve.data_dir),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "worker_started" not in worker_log.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, worker_log.read_text()
            time.sleep(0.2)
        assert "worker_started" in worker_log.read_text()
    finally:
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 0, worker_log.read_text()

    assert serve.stop(signal.SIGINT) == 0, serve.output
    assert not redis_server.is_running() or redis_server.status() == psutil.STATUS_ZOMBIE
    assert serve.redis_servers() == []
    assert not (serve.data_dir / "redis" / "redis.sock").exists()


def test_serve_stops_a_stale_redis_and_cleans_up_on_sigterm(
    start_serve: Callable[[], Served], tmp_path: Path
) -> None:
    # What a crashed run leaves behind: a redis-server working in the data dir.
    redis_dir = (tmp_path / "data" / "redis").resolve()
    redis_dir.mkdir(parents=True)
    stale = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(redis_dir / "redis.sock")],
        cwd=redis_dir,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        serve = start_serve()
        assert serve.wait_ready()["status"] == "ready"
        assert stale.wait(timeout=30) is not None  # stopped by serve, not by this test
        assert [p.pid for p in serve.redis_servers()] != [stale.pid]
        assert serve.stop(signal.SIGTERM) == 0, serve.output
        assert serve.redis_servers() == []
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait(timeout=10)


def test_sandbox_command_serves_a_dataverse_token_endpoint(tmp_path: Path) -> None:
    port = free_port()
    log_file = tmp_path / "sandbox.log"
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / "salesbridge"), "sandbox", "--port", str(port), "--memory"],
            env=_environment(tmp_path / "data"),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    form = {
        "grant_type": "client_credentials",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "scope": f"http://127.0.0.1:{port}/.default",
    }
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, log_file.read_text()
            try:
                url = f"http://127.0.0.1:{port}/sandbox-tenant/oauth2/v2.0/token"
                response = httpx.post(url, data=form, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log_file.read_text()
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["access_token"]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert not (tmp_path / "data" / "sandbox.db").exists()  # --memory keeps no file


def _read_terminal(master: int, until: str, process: subprocess.Popen[bytes]) -> str:
    seen = b""
    deadline = time.monotonic() + STARTUP_SECONDS
    while until.encode() not in seen:
        assert process.poll() is None and time.monotonic() < deadline, seen.decode()
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            seen += os.read(master, 4096)
    return seen.decode(errors="replace")


def test_with_a_terminal_the_first_password_goes_to_it_not_to_the_log(tmp_path: Path) -> None:
    """stdout and stderr (the log stream) go to a file; the terminal is a pty."""
    master, terminal = pty.openpty()
    terminal_name = os.ttyname(terminal)

    def become_the_terminals_session() -> None:
        os.open(terminal_name, os.O_RDWR)  # a new session's first tty becomes its terminal

    port = free_port()
    log_file = tmp_path / "serve.log"
    with log_file.open("wb") as sink:
        process = subprocess.Popen(  # noqa: PLW1509 - no threads run in this test
            [str(BIN / "salesbridge"), "serve", "--port", str(port)],
            cwd=tmp_path, env=_environment(tmp_path / "data"), stdin=subprocess.DEVNULL,
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=become_the_terminals_session,
        )  # fmt: skip
    served = Served(process, log_file, tmp_path / "data", f"http://127.0.0.1:{port}")
    try:
        shown = _read_terminal(master, "Lost it?", process)
        password = re.search(r"shown only now:\s+(\S+)", shown)
        assert password, shown
        served.wait_ready()
        sign_in = httpx.post(
            f"{served.base_url}/api/v1/auth/token",
            data={"username": "admin", "password": password.group(1)}, timeout=10,
        )  # fmt: skip
        assert sign_in.status_code == 200, sign_in.text
        assert "=" * 72 in shown  # framed, apart from anything else on the screen
        assert password.group(1) not in served.output
        assert "app_started" in served.output  # the log stream is where it was
        assert not (served.data_dir / "first-admin-password").exists()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
        os.close(master)
        os.close(terminal)
