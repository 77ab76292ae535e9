"""The real app over real HTTP, for the receiver the CRM posts to."""

from tests.fixtures.live_api import live_api, live_reader  # noqa: F401 - fixtures reused, not copied
