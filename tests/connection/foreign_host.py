"""Someone else's host on 127.0.0.1: it records every request and answers as told.

It stands in for a server an attacker controls (where a stolen admin token would send
the stored CRM secret) and for a CRM or token endpoint answering oddly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.hostile.live import serve_asgi


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = "application/json"


@dataclass
class ForeignHost:
    base_url: str
    answers: dict[str, Answer]  # by path suffix; anything else gets 404
    received: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, body

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/tenant/oauth2/v2.0/token"

    def everything_received(self) -> str:
        return "\n".join(" ".join(request) for request in self.received)


@contextmanager
def foreign_host(answers: dict[str, Answer] | None = None) -> Iterator[ForeignHost]:
    host = ForeignHost(base_url="", answers=answers or {})

    async def anything(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", "replace")
        host.received.append((request.method, request.url.path, body))
        answer = next(
            (a for suffix, a in host.answers.items() if request.url.path.endswith(suffix)),
            Answer(404, '{"error": "not here"}'),
        )
        return Response(answer.body, answer.status, media_type=answer.content_type)

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", anything, methods=methods)])
    with serve_asgi(app, http="h11") as port:
        host.base_url = f"http://127.0.0.1:{port}"
        yield host
