"""How much of Dataverse's allowed request rate the client uses under service protection limits.

Starts the sandbox in its own process (so its clock and event loop are not shared with the
client), sets the requests-per-window limit scaled down 100x (6000 / 300 s -> 60 / 3 s, the
same 20 requests/s), and lets the client create rows as fast as it will go for a while.
Prints one JSON line: achieved vs allowed rate, 429s, and early requests (must be 0).

    .venv/bin/python bench/dataverse_limits.py [--seconds 20] [--limit 60] [--window 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.dataverse import ClientCredentials, DataverseClient  # noqa: E402

SERVE = (
    "import uvicorn; from app.sandbox import SandboxConfig, create_sandbox_app; "
    "uvicorn.run(create_sandbox_app(SandboxConfig()), host='127.0.0.1', port={port}, "
    "log_level='warning', access_log=False)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class WireLog(httpx.AsyncHTTPTransport):
    """Client-side times: a request sent after a 429 arrived and before its Retry-After ran
    out would be a client bug. The server's "early" count also includes requests sent before
    the 429 reached the client whenever the round trip exceeds its grace."""

    def __init__(self) -> None:
        super().__init__(limits=httpx.Limits(max_connections=52))
        self.sent: list[float] = []
        self.holds: list[tuple[float, float]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(time.monotonic())
        response = await super().handle_async_request(request)
        if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
            got = time.monotonic()
            self.holds.append((got, got + float(response.headers.get("Retry-After", 0))))
        return response

    def sent_during_known_hold(self) -> int:
        return sum(any(a <= t < b for a, b in self.holds) for t in self.sent)


def _start_sandbox(port: int) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen([sys.executable, "-c", SERVE.format(port=port)], cwd=root)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sandbox", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    msg = "the sandbox did not start"
    raise RuntimeError(msg)


async def _drive(base_url: str, seconds: float) -> dict[str, float | int]:
    credentials = ClientCredentials(
        "sandbox-client", "sandbox-secret", token_url=f"{base_url}/sandbox-tenant/oauth2/v2.0/token"
    )
    created = 0
    stop_at = time.monotonic() + seconds
    wire = WireLog()
    async with DataverseClient(base_url, credentials=credentials, transport=wire) as crm:
        await crm.whoami()  # sign in before the clock starts

        async def worker() -> None:
            nonlocal created
            while time.monotonic() < stop_at:
                await crm.create("accounts", {"name": "bench"})
                created += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(52)))  # the limiter decides in flight
        elapsed = time.monotonic() - started
        return {
            "created": created,
            "elapsed_s": round(elapsed, 2),
            "client_429": crm.stats.throttled,
            "client_requests": crm.stats.requests,
            "final_concurrency": crm.limiter.limit,
            "peak_in_flight": crm.limiter.peak_in_flight,
            "client_sent_during_known_hold": wire.sent_during_known_hold(),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--limit", type=int, default=60, help="requests per window")
    parser.add_argument("--window", type=float, default=3.0, help="window seconds")
    args = parser.parse_args()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = _start_sandbox(port)
    try:
        limits = {"max_requests_per_window": args.limit, "window_seconds": args.window}
        httpx.put(f"{base_url}/_sandbox/limits", json=limits).raise_for_status()
        figures = asyncio.run(_drive(base_url, args.seconds))
        counters = httpx.get(f"{base_url}/_sandbox/counters").json()
    finally:
        process.terminate()
        process.wait(timeout=10)
    allowed_rate = args.limit / args.window
    achieved_rate = figures["created"] / figures["elapsed_s"]
    result = {
        "benchmark": "dataverse_limits",
        **figures,
        "allowed_rate_per_s": round(allowed_rate, 2),
        "achieved_rate_per_s": round(achieved_rate, 2),
        "share_of_allowed_rate": round(achieved_rate / allowed_rate, 3),
        "server_429": counters["throttled"],
        "server_early_requests": counters["early_requests"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
