"""A redis-server of the nudge tests' own, which a test may also stop and start again.

Redis pub/sub channels are shared by every database of a server: on the machine's Redis
other test runs' nudges would reach this run's listener. Modules that use ``settings``
from here get the suite's settings with this server's URL, so the app, the worker and
the test's own Redis client all talk to it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis

from app.settings import Settings
from tests.fixtures.services import _redis_server_binary, free_port


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="salesbridge-nudge-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [_redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", self.dir]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not self.answers():
            if time.monotonic() > deadline:
                pytest.fail("the private redis-server did not start")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session", name="private_redis")
def private_redis_server() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(name="settings")
def private_settings(settings: Settings, private_redis: PrivateRedis) -> Settings:
    if not private_redis.answers():  # a test stopped it and failed before restarting it
        private_redis.stop()
        private_redis.start()
    return settings.model_copy(update={"redis_url": private_redis.url})
