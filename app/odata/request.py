"""One OData request as the handlers see it, and the steps every version takes with it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, OperationalError, ProgrammingError

from app.odata.auth import authenticate_request
from app.odata.errors import ODataFilterError, ODataMethodNotAllowedError
from app.settings import Settings


@dataclass
class ODataRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    client_ip: str | None
    base_url: str  # scheme://host/root_path/
    state: Any  # the app's state: settings, sessionmaker, engine

    @property
    def settings(self) -> Settings:
        settings: Settings = self.state.settings
        return settings


async def admit(request: ODataRequest) -> None:
    """Authenticated (the same credentials for every version) and a read."""
    await authenticate_request(
        request.state.sessionmaker,
        request.settings,
        authorization=request.headers.get("authorization"),
        client_ip=request.client_ip,
    )
    if request.method not in ("GET", "HEAD"):
        msg = "This OData service is read-only."
        raise ODataMethodNotAllowedError(msg)


@contextmanager
def filter_evaluation(filter_text: str | None) -> Iterator[None]:
    """A filter that compiles but the database cannot evaluate (a value out of its range,
    a function this SQLite build lacks) is the client's problem, not a 500."""
    try:
        yield
    except (DataError, ProgrammingError, OperationalError) as exc:
        if filter_text is None or not _is_evaluation_error(exc):
            raise
        msg = "The $filter could not be evaluated by the database."
        raise ODataFilterError(msg) from exc


def _is_evaluation_error(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError):
        return "no such function" in str(exc.orig)
    return True
