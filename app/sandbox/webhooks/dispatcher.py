"""The sandbox's asynchronous service for webhooks: a queue in memory and a background task.

Each delivery is a system job: it is POSTed with a timeout, and a 5xx, 408 or 429 answer,
a timeout or a connection error is retried with exponential backoff until
``max_attempts``, then the job is recorded as failed. Any other 4xx is the receiver's
refusal of that body (a wrong key, a replay): sending it again would be refused again,
so the job fails at once. Several jobs are in flight at once (``concurrency``) and nothing
orders them. A slow receiver slows nobody else: jobs wait in memory, never dropped for it.

The delivery faults (``drop_rate``, ``duplicate_rate``, ``fail_rate``) are drawn from one
seeded generator when a job is queued, so a seeded run repeats its faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.logs import get_logger
from app.sandbox.config import WebhookSettings

log = get_logger("salesbridge.sandbox.webhooks")
_RECENT_FAILURES = 20
_RETRIED_4XX = (408, 429)


def _is_refusal(error: str) -> bool:
    """A 4xx answer other than 408 and 429 (``_attempt``'s "HTTP <status>")."""
    if not error.startswith("HTTP 4"):
        return False
    return int(error.removeprefix("HTTP ")) not in _RETRIED_4XX


_QUERY = re.compile(r"\?\S*")


@dataclass(frozen=True)
class Delivery:
    operation_id: str
    step_id: str
    url: str
    headers: dict[str, str]
    params: dict[str, str]
    body: bytes
    failing_attempts: int = 0  # attempts fail_rate fails before any is sent
    generation: int = 0  # the reset it belongs to; older ones are forgotten


@dataclass
class DeliveryCounters:
    queued: int = 0  # jobs created (one per change and step)
    pending: int = 0  # copies not finished: held until the answer, queued, in flight, retrying
    in_flight: int = 0
    delivered: int = 0  # copies the receiver answered 2xx
    attempts: int = 0
    retried: int = 0
    failed: int = 0  # copies given up after max_attempts
    dropped: int = 0  # jobs never sent (drop_rate)
    duplicated: int = 0  # jobs sent twice (duplicate_rate)
    failures_injected: int = 0  # attempts failed by fail_rate
    recent_failures: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=_RECENT_FAILURES)
    )

    def snapshot(self) -> dict[str, Any]:
        values = {name: value for name, value in vars(self).items() if name != "recent_failures"}
        return values


def _safe_url(url: str) -> str:
    """The URL without its query (a WebhookKey or HttpQueryString pair is a secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class Dispatcher:
    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.counters = DeliveryCounters()
        self.random = random.Random(settings.seed)  # noqa: S311 - fault injection, not security
        self.generation = 0
        self._lock = threading.Lock()  # commits may come from a test's thread
        self._ready: deque[Delivery] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wakeup: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._client: httpx.AsyncClient | None = None
        self._runner: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    # --- lifecycle (the app's lifespan) ---------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        self._runner = asyncio.create_task(self._run(), name="sandbox-webhooks")
        self._wake()  # jobs committed before the server started

    async def stop(self) -> None:
        """Cancel what is queued or in flight: the queue lives in memory only."""
        tasks = [task for task in (self._runner, *self._jobs) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        self._loop = self._runner = self._client = None

    # --- control --------------------------------------------------------------------------
    def configure(self, values: dict[str, Any]) -> None:
        self.settings.update(values)
        if "seed" in values:
            self.random.seed(self.settings.seed)
        if "concurrency" in values and self._slots is not None:
            self._slots = asyncio.Semaphore(self.settings.concurrency)

    def reset(self, settings: WebhookSettings) -> None:
        """Back to ``settings`` and zero counters; queued and running jobs are forgotten."""
        with self._lock:
            self.generation += 1
            self._ready.clear()
            self.counters = DeliveryCounters()
        self.settings.update(settings.values())
        self.random.seed(self.settings.seed)
        if self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._restart_jobs()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._restart_jobs)

    def _restart_jobs(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        self._slots = asyncio.Semaphore(self.settings.concurrency)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counters = self.counters.snapshot()
            failures = list(self.counters.recent_failures)
        return {
            "pending": counters["pending"],
            "counters": counters,
            "settings": self.settings.values(),
            "recent_failures": failures,
        }

    # --- intake ---------------------------------------------------------------------------
    def prepare(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Count new jobs and draw their faults: the copies to send (none for a dropped
        job, two for a duplicated one), pending from now on."""
        settings = self.settings
        copies: list[Delivery] = []
        with self._lock:
            for delivery in deliveries:
                self.counters.queued += 1
                if settings.drop_rate > 0 and self.random.random() < settings.drop_rate:
                    self.counters.dropped += 1
                    continue
                times = 1
                if settings.duplicate_rate > 0 and self.random.random() < settings.duplicate_rate:
                    self.counters.duplicated += 1
                    times = 2
                for _ in range(times):
                    failing = 0
                    while (
                        settings.fail_rate > 0
                        and failing < settings.max_attempts
                        and self.random.random() < settings.fail_rate
                    ):
                        failing += 1
                    copies.append(
                        replace(delivery, failing_attempts=failing, generation=self.generation)
                    )
            self.counters.pending += len(copies)
        return copies

    def release(self, copies: list[Delivery]) -> None:
        """Hand prepared copies to the background task (from any thread)."""
        if not copies:
            return
        with self._lock:
            self._ready.extend(copies)
        self._wake()

    def _wake(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return  # not started: the copies wait for start()
        if threading.get_ident() == self._loop_thread:
            wakeup.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wakeup.set)

    # --- the background task --------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wakeup is not None  # noqa: S101 - set by start()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while True:
                with self._lock:
                    if not self._ready:
                        break
                    delivery = self._ready.popleft()
                job = asyncio.create_task(self._deliver(delivery))
                self._jobs.add(job)
                job.add_done_callback(self._jobs.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        attempt = 0
        try:
            if self.settings.delay_ms > 0:
                await asyncio.sleep(self.settings.delay_ms / 1000)
            while True:
                attempt += 1
                error = await self._attempt(delivery, attempt)
                if error is None:
                    self._count(delivery, "delivered")
                    return
                if attempt >= self.settings.max_attempts or _is_refusal(error):
                    self._failed(delivery, attempt, error)
                    return
                self._count(delivery, "retried")
                await asyncio.sleep(self._backoff(attempt))
        finally:
            with self._lock:
                if delivery.generation == self.generation:
                    self.counters.pending -= 1

    def _backoff(self, attempt: int) -> float:
        delay_ms = min(self.settings.backoff_ms * 2 ** (attempt - 1), self.settings.max_backoff_ms)
        return float(delay_ms) / 1000

    async def _attempt(self, delivery: Delivery, attempt: int) -> str | None:
        """One try: None when the receiver answered 2xx, else what went wrong."""
        slots, client = self._slots, self._client
        assert slots is not None and client is not None  # noqa: S101 - set by start()
        async with slots:
            self._count(delivery, "attempts")
            self._count(delivery, "in_flight")
            try:
                if attempt <= delivery.failing_attempts:
                    self._count(delivery, "failures_injected")
                    return "injected failure (fail_rate)"
                response = await client.post(
                    delivery.url,
                    params=delivery.params,
                    headers=delivery.headers,
                    content=delivery.body,
                    timeout=self.settings.timeout_ms / 1000,
                )
                if 200 <= response.status_code < 300:
                    return None
                return f"HTTP {response.status_code}"
            except httpx.TimeoutException:
                return "timeout"
            except httpx.HTTPError as exc:
                # The URL in a message may carry the key (WebhookKey, HttpQueryString).
                return f"{type(exc).__name__}: {_QUERY.sub('', str(exc))}"
            finally:
                self._count(delivery, "in_flight", -1)

    def _count(self, delivery: Delivery, name: str, step: int = 1) -> None:
        with self._lock:
            if delivery.generation == self.generation:
                setattr(self.counters, name, getattr(self.counters, name) + step)

    def _failed(self, delivery: Delivery, attempts: int, error: str) -> None:
        failure = {
            "operation_id": delivery.operation_id,
            "step_id": delivery.step_id,
            "url": _safe_url(delivery.url),
            "attempts": attempts,
            "error": error,
        }
        with self._lock:
            if delivery.generation != self.generation:
                return
            self.counters.failed += 1
            self.counters.recent_failures.append(failure)
        log.warning("webhook_delivery_failed", **failure)
