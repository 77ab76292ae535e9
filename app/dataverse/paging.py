"""Following ``@odata.nextLink`` safely (PAD webapi/query/page-results.md).

Each page is requested with the same ``Prefer: odata.maxpagesize``; the next link is used
as given, never edited. Remote input is suspect: a link to another origin would carry our
bearer token away, a repeated link would loop forever, and a page cap bounds the run.
"""

from __future__ import annotations

import httpx

from app.dataverse.errors import DataverseProtocolError

MAX_PAGE_SIZE = 5000  # Dataverse's maximum odata.maxpagesize
DEFAULT_MAX_PAGES = 100_000  # 500 million rows at the maximum page size


def prefer_page_size(page_size: int) -> str:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        msg = f"page_size must be between 1 and {MAX_PAGE_SIZE}"
        raise ValueError(msg)
    return f"odata.maxpagesize={page_size}"


class NextLinkGuard:
    """Checks each next link: same origin and API root, never seen before, under the cap."""

    def __init__(self, api_url: httpx.URL, *, max_pages: int = DEFAULT_MAX_PAGES) -> None:
        self._api_url = api_url
        self._max_pages = max_pages
        self._seen: set[int] = set()  # hashes: memory stays small for long runs
        self.pages = 1

    def check(self, next_link: str) -> str:
        url = httpx.URL(next_link)
        api = self._api_url
        same_origin = (url.scheme, url.host, url.port) == (api.scheme, api.host, api.port)
        if not same_origin or not url.path.startswith(api.path):
            msg = f"refusing a nextLink outside the Dataverse API root ({url.host}{url.path})"
            raise DataverseProtocolError(msg)
        fingerprint = hash(next_link)
        if fingerprint in self._seen:
            msg = f"Dataverse repeated a nextLink after {self.pages} pages; stopping a loop"
            raise DataverseProtocolError(msg)
        self.pages += 1
        if self.pages > self._max_pages:
            msg = f"more than {self._max_pages} pages; raise max_pages or narrow the query"
            raise DataverseProtocolError(msg)
        self._seen.add(fingerprint)
        return next_link
