"""The next-link guard: same origin, no loops, a page cap."""

from __future__ import annotations

import httpx
import pytest

from app.dataverse.errors import DataverseProtocolError
from app.dataverse.paging import NextLinkGuard, prefer_page_size

API = httpx.URL("https://org.crm4.dynamics.com/api/data/v9.2/")
LINK = (
    "https://org.crm4.dynamics.com/api/data/v9.2/accounts?$skiptoken=%3Ccookie%20pagenumber=%222%22"
)


def test_accepts_new_links_on_the_api_root() -> None:
    guard = NextLinkGuard(API)
    assert guard.check(LINK) == LINK  # returned unmodified
    assert guard.check(LINK.replace("%222%22", "%223%22"))
    assert guard.pages == 3


def test_refuses_a_repeated_link() -> None:
    guard = NextLinkGuard(API)
    guard.check(LINK)
    with pytest.raises(DataverseProtocolError, match="repeated a nextLink"):
        guard.check(LINK)


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example.com/api/data/v9.2/accounts?$skiptoken=1",
        "http://org.crm4.dynamics.com/api/data/v9.2/accounts?$skiptoken=1",
        "https://org.crm4.dynamics.com/other/accounts?$skiptoken=1",
    ],
)
def test_refuses_links_that_would_carry_the_token_elsewhere(link: str) -> None:
    with pytest.raises(DataverseProtocolError, match="outside the Dataverse API root"):
        NextLinkGuard(API).check(link)


def test_page_cap() -> None:
    guard = NextLinkGuard(API, max_pages=2)
    guard.check(LINK + "a")
    with pytest.raises(DataverseProtocolError, match="more than 2 pages"):
        guard.check(LINK + "b")


def test_page_size_bounds() -> None:
    assert prefer_page_size(5000) == "odata.maxpagesize=5000"
    with pytest.raises(ValueError, match="between 1 and 5000"):
        prefer_page_size(5001)
